"""Training-log files as users write them, read into something ``history_curves`` takes.

``read_log_runs(path)`` returns ``[(run, history)]``, one entry per run the file holds (``run`` is
None for a file of one unnamed run); ``read_log(path)`` the history of a file of one run. A
history is a pandas DataFrame (CSV, Parquet), a name -> list mapping (JSON) or a name -> ``Curve``
mapping (export files, TensorBoard events, ``trainer_state.json``):

- CSV: Keras ``CSVLogger`` files (also with ``\\r\\r\\n`` line endings), pandas exports of
  ``History.history`` with or without their index column, Lightning ``metrics.csv``, YOLOv5's
  ``results.csv`` (columns padded with spaces); column names are stripped of surrounding spaces;
  blank lines are skipped. Which column is the epoch is decided by ``curves.history_curves``.
- ``mlflow-plateau export`` files (CSV, or Parquet with pyarrow, told by its first bytes): the
  long table of ``read_histories`` (``run_id``, ``key``, ``step``, ``value``, ``timestamp``),
  recognized by those columns. Each run is one entry, named by its run id, in the file's order; each key is
  ``Curve.from_points(key, steps, values, order=timestamps)``, as ``diagnose`` reads the run
  from its store, and this package's own results (``plateau/``, ``gap/``, ...) are left out, as
  is a run with nothing else (a ``scaling`` summary run).
- JSON: an object mapping metric names to lists of numbers (``History.history`` dumped with
  ``json.dump``), or a list of per-epoch records. Entries that are not lists of numbers (a config
  dict, a final test score, a string) are not curves and are left out; a file with no curve at all
  is an error.
- Hugging Face ``trainer_state.json`` (a JSON object with a ``log_history`` list): every number of
  an entry is a point of that key at the entry's ``step`` (the global step), ``epoch`` included;
  the end-of-training summary entry (the one with ``train_runtime``: mean ``train_loss``,
  throughput, ``total_flos``) is not a point of any curve, nor are the state's other fields
  (``best_metric``, ``global_step``, ...). ``history_curves`` then reads the curves by epoch
  exactly as it reads a ``Trainer`` run autologged to MLflow (``curves.epochs_from_epoch_metric``):
  by epoch (Hugging Face's, counted from 1) when evaluated once an epoch, the last training loss
  logged in an epoch standing for it; at global steps when evaluated several times an epoch or
  never. ``eval_*`` keys are the validation curves (``eval_loss`` pairs with ``loss``).
- TensorBoard: a log dir or an ``events.out.tfevents.*`` file, read by ``tensorboard_log`` (each
  run of a log dir one entry).

No mlflow, no keras: the file is only parsed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .curves import Curve


def _numeric_list(value: Any) -> bool:
    if not isinstance(value, list) or not value:
        return False
    return all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
               or (isinstance(v, str) and v.strip().lower() in ("nan", "inf", "-inf", "infinity",
                                                                 "-infinity"))
               for v in value)


def _as_number(v: Any) -> float:
    if v is None:
        return math.nan
    return float(v)


# The columns of ``read_histories`` / ``mlflow-plateau export`` (tracking.frames.COLUMNS); the
# timestamp only orders points logged twice at one step, so a file without it is read too.
EXPORT_COLUMNS = ("run_id", "key", "step", "value", "timestamp")
# The key that marks trainer_state.json's end-of-training summary entry (Trainer.train's last log).
_SUMMARY_KEY = "train_runtime"
_PARQUET_MAGIC = b"PAR1"  # a Parquet file's first bytes, whatever export's -o named it


def read_log(path: str | Path) -> Any:
    """The history of a training-log file of one run; see the module doc.

    Raises ``ValueError`` naming the problem for a file that holds no curve or several runs,
    ``OSError`` for one that cannot be read.
    """
    runs = read_log_runs(path)
    if len(runs) > 1:
        names = ", ".join(str(run) for run, _ in runs[:5]) + (", ..." if len(runs) > 5 else "")
        raise ValueError(f"the file holds {len(runs)} runs ({names}), not one: read it with "
                         "logs.read_log_runs, or export one run")
    return runs[0][1]


def read_log_runs(path: str | Path) -> list[tuple[str | None, Any]]:
    """Every run a training-log file (or TensorBoard log dir) holds: ``[(run, history)]``.

    ``run`` is the run id of an export file, the run's folder in a TensorBoard log dir with
    several runs, else None. Raises ``ValueError`` naming the problem (and the run) for a file
    that holds no curve, ``OSError`` for one that cannot be read.
    """
    from .tensorboard_log import is_event_file, read_tensorboard

    path = Path(path)
    if path.is_dir() or is_event_file(path):
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
        return list(read_tensorboard(path))
    if path.suffix.lower() == ".json":
        return [(None, _read_json(path))]
    with path.open("rb") as fh:
        parquet = fh.read(len(_PARQUET_MAGIC)) == _PARQUET_MAGIC
    frame = _read_parquet(path) if parquet else _read_csv(path)
    if set(EXPORT_COLUMNS[:4]) <= set(frame.columns):
        return _export_runs(frame)
    return [(None, frame)]


def _read_json(path: Path) -> Any:
    import pandas as pd

    with path.open(encoding="utf-8") as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc})") from None
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        return pd.DataFrame.from_records(data)
    if isinstance(data, dict) and isinstance(data.get("log_history"), list):
        return _trainer_state_curves(data["log_history"])
    if not isinstance(data, dict):
        raise ValueError("a JSON log must be an object mapping metric names to lists of "
                         "numbers, or a list of per-epoch records")
    curves = {str(k): [_as_number(v) for v in vals] for k, vals in data.items()
              if _numeric_list(vals)}
    if not curves and data:
        raise ValueError("no metric in the JSON log is a list of numbers; metrics present: "
                         f"{', '.join(map(str, data))}")
    return curves


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _trainer_state_curves(log_history: list) -> dict[str, Curve]:
    """A Hugging Face ``log_history`` as name -> Curve at global steps (module doc)."""
    points: dict[str, tuple[list[int], list[float]]] = {}
    for i, entry in enumerate(log_history):
        if not isinstance(entry, dict):
            raise ValueError(f"trainer_state.json: log_history[{i}] is not an object")
        if _SUMMARY_KEY in entry:
            continue  # the end-of-training summary: means and throughput, not points
        step = entry.get("step")
        if not _is_number(step):
            raise ValueError(f"trainer_state.json: log_history[{i}] has no step")
        for key, value in entry.items():
            if key != "step" and _is_number(value):
                steps, values = points.setdefault(str(key), ([], []))
                steps.append(step)
                values.append(float(value))
    if not any(key != "epoch" for key in points):
        raise ValueError("trainer_state.json: log_history holds no metric")
    return {key: Curve.from_points(key, steps, values) for key, (steps, values) in points.items()}


def _read_csv(path: Path) -> Any:
    import pandas as pd

    try:
        header = pd.read_csv(path, nrows=0, skipinitialspace=True)
        columns = {str(c).strip() for c in header.columns}
        if set(EXPORT_COLUMNS[:4]) <= columns:
            # Run ids and metric names are text, whatever they look like ("1e5", "NA").
            text = {c: str for c in ("run_id", "key")}
            frame = pd.read_csv(path, skipinitialspace=True, dtype=text, keep_default_na=False,
                                na_values={"value": ["", "nan", "NaN"]})
        else:
            frame = pd.read_csv(path, skipinitialspace=True, skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        raise ValueError("the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a CSV file pandas can read ({str(exc).splitlines()[0]})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.dropna(how="all")


def _read_parquet(path: Path) -> Any:
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except ImportError:
        raise ValueError("reading Parquet needs pyarrow: pip install pyarrow") from None
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise ValueError(f"not a Parquet file pyarrow can read ({str(exc).splitlines()[0]})") \
            from None


def _export_runs(frame: Any) -> list[tuple[str | None, dict[str, Curve]]]:
    """The runs of an export table, each key a ``Curve`` as ``diagnose`` reads it (module doc)."""
    import pandas as pd

    from .tracking.store import OWN_PREFIXES

    if frame.empty:
        raise ValueError("the export holds no metric point")
    frame = frame.reset_index(drop=True)
    runs: list[tuple[str | None, dict[str, Curve]]] = []
    # sort=False: runs and keys in the order the export wrote them (an experiment's newest first).
    for run_id, rows in frame.groupby("run_id", sort=False):
        curves: dict[str, Curve] = {}
        for key, points in rows.groupby("key", sort=False):
            if str(key).startswith(OWN_PREFIXES):
                continue
            order = points.get("timestamp")
            values = pd.to_numeric(points["value"], errors="coerce")
            try:
                curves[str(key)] = Curve.from_points(str(key), points["step"].to_numpy(),
                                                     values.to_numpy(dtype=float), order=order)
            except ValueError as exc:
                raise ValueError(f"run {run_id}: {exc}") from None
        # A run with nothing but this package's results is a scaling summary run: ``diagnose``
        # skips it too.
        if curves:
            runs.append((str(run_id), curves))
    if not runs:
        raise ValueError("the export holds no run's own metrics, only this package's results")
    return runs
