"""Plain ``mlruns/`` folders: MLflow's file store, as most existing tracked runs are kept.

``open_file_store(uri)`` is called on every tracking URI this package resolves. For a URI that
names a local folder (a plain path such as ``./mlruns``, or a ``file:`` URI) it does, once per
folder and process, what reading such a folder needs, and says what it did in one
``FileStoreNotice`` warning (the command prints it as one line on stderr):

- MLflow 3.7 and later refuse the file store unless ``MLFLOW_ALLOW_FILE_STORE`` is true. When the
  variable is not set at all, it is set to ``true`` for this process: pointing the tool at the
  folder is the user's choice of store. A value the user set (``false`` included) is left alone.
- MLflow finds a run only when its folder holds ``metrics/``, ``params/`` and ``artifacts/``. Git
  does not keep empty folders, so a store committed to a repository lacks them for every run
  that logged no parameters or artifacts, and MLflow answers "run not found". The missing ones
  are created, empty, in each run folder (a folder ``<experiment>/<run>/`` holding ``meta.yaml``
  with a ``run_id``); nothing in the store is changed or removed.

Nothing is done for a folder that does not exist, nor for any other kind of store.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from urllib.parse import unquote, urlparse

ALLOW_VARIABLE = "MLFLOW_ALLOW_FILE_STORE"
# MLflow's FileStore._is_valid_run_directory: a run folder must hold all three.
RUN_FOLDERS = ("metrics", "params", "artifacts")

_opened: set[str] = set()


class FileStoreNotice(UserWarning):
    """What was done to read a plain ``mlruns/`` folder (said once per folder)."""


def file_store_folder(uri: str) -> Path | None:
    """The local folder a file-store URI names, or None for any other kind of store."""
    if "://" in uri and not uri.lower().startswith("file://"):
        return None
    if uri.lower().startswith("file:"):
        parsed = urlparse(uri)
        path = unquote(parsed.path) if uri.lower().startswith("file://") else uri[len("file:"):]
        return Path(path or ".")
    if ":" in uri.split("/", 1)[0] and len(uri.split(":", 1)[0]) > 1:  # "databricks", "uc:..."
        return None
    return Path(uri)


def missing_run_folders(root: Path) -> list[Path]:
    """The folders of ``RUN_FOLDERS`` that run folders under ``root`` lack (see module doc)."""
    missing = []
    for experiment in sorted(p for p in root.iterdir() if p.is_dir()):
        if experiment.name.startswith(".") and experiment.name != ".trash":
            continue
        for run in sorted(p for p in experiment.iterdir() if p.is_dir()):
            lacks = [run / name for name in RUN_FOLDERS if not (run / name).is_dir()]
            if lacks and run.name not in ("tags", "datasets", "traces", "models") \
                    and _is_run_meta(run):
                missing += lacks
    return missing


def _is_run_meta(run: Path) -> bool:
    meta = run / "meta.yaml"
    try:
        return meta.is_file() and "run_id:" in meta.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def open_file_store(uri: str) -> None:
    """Make a plain ``mlruns/`` folder readable by MLflow (see module doc); said once a folder."""
    folder = file_store_folder(uri)
    if folder is None or not folder.is_dir():
        return
    said = []
    if ALLOW_VARIABLE not in os.environ:  # again after a command restored the environment
        os.environ[ALLOW_VARIABLE] = "true"
        said.append(f"set {ALLOW_VARIABLE}=true for this command (MLflow 3.7 and later refuse a "
                    "file store without it)")
    key = str(folder.resolve())
    if key in _opened:
        return
    _opened.add(key)
    made = []
    try:
        for path in missing_run_folders(folder):
            path.mkdir(exist_ok=True)
            made.append(path)
    except OSError as exc:  # a read-only checkout: MLflow will say which run it cannot find
        said.append(f"could not create the empty run folders git does not keep ({exc})")
    if made:
        example = made[0].relative_to(folder)
        said.append(f"created {len(made)} empty run folder(s) that git does not keep and MLflow "
                    f"needs to find a run (e.g. {example})")
    if said:
        warnings.warn(f"{uri} is an MLflow file store: " + "; ".join(said), FileStoreNotice,
                      stacklevel=3)
