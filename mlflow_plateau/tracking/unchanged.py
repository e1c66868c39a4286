"""Recognizing a run whose diagnosis is already current, so re-diagnosing it costs only a comparison.

``input_digest`` is the SHA-256 of everything a diagnosis and its artifacts are made from: this
package's version and source code (``code_digest``: a checkout changed without a version bump
diagnoses again), the diagnosis options, the artifact level, whether the run is still RUNNING, the
run's own metric curves (steps and values, bit for bit) and, for ``artifacts="all"``, what the
report shows besides the curves (run name, params, the run's own tags). ``diagnose_runs`` writes it
as the tag ``plateau.digest`` in the same ``log_batch`` as the diagnosis, after the artifacts are
uploaded; a run whose tag equals the digest of its current inputs therefore already holds exactly
the metrics, tags and artifacts a recomputation would write, and nothing is computed or written.

``history_digest`` is the same digest with each curve summarized (its rows, first and last step,
as one SQL ``GROUP BY`` returns them) instead of read. MLflow only ever
appends metric rows, so an unchanged summary means no point was added. On SQL stores it is written
as the tag ``plateau.history`` beside ``plateau.digest``, from a summary taken *before* the
histories were read: a point logged in between makes the next summary differ from the stored one,
never match it. A run whose tag equals the digest of its current summary is recognized as
unchanged without reading its histories.

``stored_diagnosis`` stands in for the recomputed ``Diagnosis`` of such a run: it loads the run's
``plateau/diagnosis.json`` when the artifact store is a local folder (a file read, cheaper than the
computation; a remote store would cost a download per run, so the diagnosis is recomputed there,
still without writing). It is used only when its ``to_dict()`` reproduces the stored JSON exactly;
its array fields (``plateau.fitted``, ``gap.epochs``, ``gap.series``) are empty, since they are not
part of the JSON and only the rendering of images needs them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..curves import Curve
from ..forecast import ForecastResult
from ..gap import GapResult
from ..plateau import PlateauResult
from ..verdict import Diagnosis

if TYPE_CHECKING:
    from mlflow.entities import Run


def report_inputs(run: Run) -> dict[str, Any]:
    """What ``report.html`` shows of a run besides its curves: name, params, its own tags."""
    tags = {k: v for k, v in run.data.tags.items() if not k.startswith(("plateau.", "scaling."))}
    return {"run_name": run.info.run_name, "params": dict(run.data.params), "tags": tags}


def _source_digest() -> str:
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes().replace(b"\r\n", b"\n"))  # a Windows checkout is the same code
    return h.hexdigest()


# Taken at import, from the code this process runs: sources edited later (a notebook's
# long-lived kernel) are not the code that makes its diagnoses.
_CODE_DIGEST = _source_digest()


def code_digest() -> str:
    """SHA-256 (hex) of this package's Python source as imported, file names included: the code
    that makes a diagnosis is one of its inputs, and the version alone is not bumped for every
    change."""
    return _CODE_DIGEST


def _head(kind: str, options: Mapping[str, Any], artifacts: str, partial: bool,
          run: Run | None) -> bytes:
    head = {"kind": kind, "version": __version__, "code": code_digest(), "options": dict(options),
            "artifacts": artifacts, "partial": bool(partial)}
    if artifacts == "all" and run is not None:
        head["report"] = report_inputs(run)
    return json.dumps(head, sort_keys=True, default=repr).encode()


def history_digest(stats: tuple[tuple, ...], options: Mapping[str, Any], artifacts: str,
                   partial: bool, run: Run | None = None) -> str:
    """SHA-256 (hex) of the same inputs as ``input_digest`` but with the curves summarized by
    ``history.sql_history_stats`` (rows, first and last step per key) instead of
    read point by point (see the module docstring)."""
    h = hashlib.sha256(_head("history", options, artifacts, partial, run))
    h.update(json.dumps(stats).encode())
    return h.hexdigest()


def input_digest(curves: Mapping[str, Curve], options: Mapping[str, Any], artifacts: str,
                 partial: bool, run: Run | None = None) -> str:
    """SHA-256 (hex) of the inputs of a diagnosis and of its artifacts (see the module docstring)."""
    h = hashlib.sha256(_head("inputs", options, artifacts, partial, run))
    for name in sorted(curves):
        c = curves[name]
        h.update(b"\0" + name.encode() + b"\0")
        h.update(np.ascontiguousarray(c.epochs, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(c.values, dtype=np.float64).tobytes())
    return h.hexdigest()


def _local_artifact_dir(artifact_uri: str) -> Path | None:
    """The folder of a local (``file:`` or plain path) artifact URI, else None."""
    if "://" not in artifact_uri and not artifact_uri.startswith("file:"):
        return Path(artifact_uri)
    if artifact_uri.startswith("file:"):
        from mlflow.utils.file_utils import local_file_uri_to_path

        return Path(local_file_uri_to_path(artifact_uri))
    return None


def _result(cls: type, data: Mapping[str, Any], arrays: tuple[str, ...]) -> Any:
    """A Plateau/GapResult from its ``to_dict()``: JSON nulls of float fields back to NaN."""
    kwargs = dict(data)
    for f in dataclasses.fields(cls):
        if f.name in arrays:
            kwargs[f.name] = np.empty(0)
        elif kwargs.get(f.name) is None and f.type == "float":
            kwargs[f.name] = math.nan
    return cls(**kwargs)


def diagnosis_from_dict(data: Mapping[str, Any]) -> Diagnosis:
    """A ``Diagnosis`` from its ``to_dict()`` (arrays empty); raises on a shape it does not know."""
    plateau = data.get("plateau")
    gap = data.get("gap")
    return Diagnosis(
        verdict=data["verdict"], summary=data["summary"], evidence=dict(data["evidence"]),
        recommendations=list(data["recommendations"]), monitor=data["monitor"],
        train_metric=data["train_metric"], mode=data["mode"],
        plateau=_result(PlateauResult, plateau, ("fitted",)) if plateau is not None else None,
        gap=_result(GapResult, gap, ("epochs", "series")) if gap is not None else None,
        config=dict(data["config"]), run_id=data["run_id"],
        alternatives=[dict(a) for a in data.get("alternatives") or []],
        forecast=ForecastResult.from_dict(data["forecast"]) if data.get("forecast") else None)


def stored_diagnosis(run: Run) -> Diagnosis | None:
    """The run's ``plateau/diagnosis.json`` as a Diagnosis when it is local and exact, else None."""
    folder = _local_artifact_dir(run.info.artifact_uri or "")
    if folder is None:
        return None
    try:
        data = json.loads((folder / "plateau" / "diagnosis.json").read_text(encoding="utf-8"))
        if data.get("version") != __version__ or data.get("run_id") != run.info.run_id:
            return None
        diagnosis = diagnosis_from_dict(data)
        # The stand-in must be indistinguishable through to_dict(): check, don't assume. (Both are
        # JSON-safe dicts; == compares them as json.dumps would, but for 1 == 1.0, a type no
        # field of a diagnosis changes between its writing and its reading back.)
        if diagnosis.to_dict() != data:
            return None
        return diagnosis
    except Exception:  # missing, unreadable or of another shape: recompute instead
        return None
