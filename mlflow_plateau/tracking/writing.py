"""Writing a diagnosis to its run: metrics at step 0, tags, artifacts under ``plateau/``.

The names are docs/design.md's contract. Writing is idempotent: it compares with what the run already
has and logs only changed values, in one ``log_batch`` (``diagnose`` on a SQL store: in one
transaction with other runs', ``batch_writes``); artifacts are re-uploaded only when their
content would change. Three tags beyond docs/design.md's list are written, all internal:

- ``plateau.digest``: SHA-256 of the inputs (``unchanged.input_digest``: version and source
  code, options, artifact level, RUNNING or not, the run's curves bit for bit, what the report
  shows); written last, with the metrics and tags, once the artifacts are uploaded. A run whose
  digest equals that of its current inputs is neither recomputed nor written again
  (``log_diagnosis``, which is not given the options, digests the diagnosis, its curves and the
  artifact level instead).
- ``plateau.history``: the same inputs with each curve summarized by SQL instead of read
  (``unchanged.history_digest``), on SQL stores, with ``plateau.digest``: an unchanged run is then
  recognized without reading its histories.
- ``plateau.partial``: ``true`` while the run was still RUNNING when diagnosed (set back to
  ``false`` once a finished run is re-diagnosed).

A metric whose value does not apply (e.g. ``plateau/stop_epoch`` when EarlyStopping would not have
stopped) is not logged; if the run already has that metric from an earlier diagnosis, NaN is logged
so the stale value does not stay current. ``log_history`` logs curves recorded outside MLflow as a
new run.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..curves import Curve
from ..verdict import Diagnosis
from .store import (
    BEST_PREFIX,
    FORECAST_METRICS,
    GAP_METRICS,
    KEPT_OPTIONS,
    MAX_TAG_CHARS,
    PLATEAU_METRICS,
    TAG_DIGEST,
    TAG_HISTORY,
    TAG_MONITOR,
    TAG_OPTIONS,
    TAG_PARTIAL,
    TAG_SUMMARY,
    TAG_VERDICT,
    TAG_VERSION,
    Artifacts,
    check_artifacts,
    check_reachable,
    client_for,
    end_run,
    is_own_key,
    one_line,
    resolve_tracking_uri,
    uri_scheme,
    user_curves,
)

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient


def diagnosis_metrics(diagnosis: Diagnosis) -> dict[str, float | None]:
    """The metrics docs/design.md names, from a diagnosis (None where a value does not apply)."""
    p, g = diagnosis.plateau, diagnosis.gap

    def num(x: Any) -> float | None:
        if x is None:
            return None
        x = float(x)
        return x if math.isfinite(x) else None

    out: dict[str, float | None] = dict.fromkeys(PLATEAU_METRICS + GAP_METRICS + FORECAST_METRICS)
    if p is not None:
        out.update({"plateau/epoch": num(p.epoch), "plateau/epoch_low": num(p.low),
                    "plateau/epoch_high": num(p.high), "plateau/best_epoch": num(p.best_epoch),
                    "plateau/best_value": num(p.best_value), "plateau/stop_epoch": num(p.stop_epoch),
                    "plateau/wasted_epochs": num(p.wasted_epochs)})
    if g is not None:
        out.update({"gap/final": num(g.final), "gap/at_best": num(g.at_best),
                    "gap/relative_final": num(g.relative_final), "gap/trend": num(g.trend)})
    f = diagnosis.forecast
    if f is not None and not f.insufficient:
        out.update({"forecast/value_at_2x": num(f.value_at_2x),
                    "forecast/value_at_2x_low": num(f.value_at_2x_low),
                    "forecast/value_at_2x_high": num(f.value_at_2x_high),
                    "forecast/epochs_to_plateau": num(f.epochs_to_plateau),
                    "forecast/gain_if_doubled": num(f.gain_if_doubled)})
    return out


def best_metrics(diagnosis: Diagnosis, curves: Mapping[str, Curve],
                 existing: Mapping[str, float] | None = None) -> dict[str, float | None]:
    """``best/<metric>``: every curve's value at the monitor's best epoch (``plateau.best_epoch``).

    That epoch's model is the one ``EarlyStopping(restore_best_weights=True)`` keeps. A curve not
    logged at that epoch, or not finite there, gets None, and so does one whose ``best/`` value an
    earlier diagnosis wrote when this one has no best epoch (the stale value is retired). Only the
    names of the run's curves are touched: a ``best/f1`` the user logged, with no curve ``f1``,
    is theirs. A name past MLflow's 250-character limit for a metric key is left out (MLflow
    would refuse the whole write).
    """
    from mlflow.utils.validation import MAX_ENTITY_KEY_LENGTH

    names = {BEST_PREFIX + name: name for name in curves
             if len(BEST_PREFIX + name) <= MAX_ENTITY_KEY_LENGTH}
    out: dict[str, float | None] = {k: None for k in names if k in (existing or {})}
    p = diagnosis.plateau
    if p is None:
        return out
    for key, name in names.items():
        value = curves[name].value_at(p.best_epoch)
        out[key] = value if value is not None and math.isfinite(value) else None
    return out


def diagnosis_tags(diagnosis: Diagnosis) -> dict[str, str]:
    """The tags docs/design.md names, from a diagnosis, and the options the user gave for it."""
    tags = {TAG_VERDICT: diagnosis.verdict, TAG_SUMMARY: diagnosis.summary[:MAX_TAG_CHARS],
            TAG_MONITOR: diagnosis.monitor or "", TAG_VERSION: __version__}
    given = {k: v for k, v in (diagnosis.config.get("given") or {}).items() if k in KEPT_OPTIONS}
    if given:
        tags[TAG_OPTIONS] = json.dumps(given, sort_keys=True)
    return tags


def _same(old: float | None, new: float) -> bool:
    if old is None:
        return False
    return old == new or (math.isnan(old) and math.isnan(new))


def changed_metrics(existing: Mapping[str, float], wanted: Mapping[str, float | None]
                     ) -> dict[str, float]:
    """What to log so the run's latest values equal ``wanted`` (None: absent or NaN)."""
    out = {}
    for key, value in wanted.items():
        old = existing.get(key)
        if value is None:
            if old is not None and not math.isnan(old):
                out[key] = math.nan  # retire a stale value from an earlier diagnosis
        elif not _same(old, value):
            out[key] = value
    return out


SQLITE_WRITES = threading.Lock()


def log_metric_batch(client: MlflowClient, run_id: str, metrics: Mapping[str, float],
               tags: Mapping[str, str], timestamp: int | None = None) -> None:
    """One ``log_batch`` of metrics at step 0 (at ``timestamp``, default now) and tags."""
    if not metrics and not tags:
        return
    from mlflow.entities import Metric, RunTag

    ts = int(time.time() * 1000) if timestamp is None else int(timestamp)
    # SQLite has one writer at a time: threads of this process take turns here rather than in
    # SQLite's busy handler, whose growing sleeps outlast the commit they wait for.
    lock = SQLITE_WRITES if uri_scheme(client.tracking_uri) == "sqlite" else contextlib.nullcontext()
    with lock:
        client.log_batch(run_id, metrics=[Metric(k, v, ts, 0) for k, v in metrics.items()],
                         tags=[RunTag(k, v) for k, v in tags.items()], synchronous=True)


def _metric_timestamp(run: Run) -> int:
    """The timestamp of the diagnosis metrics written to ``run``, a function of the run as read.

    One millisecond after the newest point of this package's metrics on the run (so a new value
    becomes the latest), and no earlier than the run's end (start while running). Two processes
    that diagnose the same unchanged run therefore write identical rows, which MLflow stores once,
    instead of two points a few milliseconds apart.
    """
    base = run.info.end_time or run.info.start_time or 0
    own = [m.timestamp for m in getattr(run.data, "_metric_objs", None) or () if is_own_key(m.key)]
    if base == 0 and not own:
        return int(time.time() * 1000)
    return max([int(base)] + [int(t) + 1 for t in own])


class ArtifactsNotWritten(RuntimeError):
    """The diagnosis's metrics and tags were written, its artifacts could not be uploaded."""

    def __init__(self, cause: BaseException) -> None:
        self.reason = f"its artifacts could not be uploaded: {one_line(cause)}"
        super().__init__(f"metrics and tags written, {self.reason}")


def diagnosis_json(diagnosis: Diagnosis) -> str:
    """The content of ``plateau/diagnosis.json`` (report.diagnosis_json when available)."""
    try:
        from ..report import diagnosis_json as render
    except ImportError:  # report.py not present: the plain, deterministic JSON
        return json.dumps(diagnosis.to_dict(), indent=2, sort_keys=True)
    return render(diagnosis)


def _digest(diagnosis: Diagnosis, curves: Mapping[str, Curve], artifacts: str,
            extra: str = "") -> str:
    h = hashlib.sha256()
    h.update(f"{__version__}\0{artifacts}\0{extra}\0".encode())
    h.update(json.dumps(diagnosis.to_dict(), sort_keys=True).encode())
    for name in sorted(curves):
        c = curves[name]
        h.update(name.encode() + b"\0")
        h.update(np.ascontiguousarray(c.epochs, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(c.values, dtype=np.float64).tobytes())
    return h.hexdigest()


def _user_tags(run: Run) -> dict[str, str]:
    """The run's tags without this package's own (they describe an earlier diagnosis)."""
    return {k: v for k, v in run.data.tags.items() if not k.startswith(("plateau.", "scaling."))}


def _write_artifacts(client: MlflowClient, run: Run, diagnosis: Diagnosis,
                     curves: Mapping[str, Curve], artifacts: str) -> None:
    """Render the artifacts (all of them first) and upload them under plateau/."""
    files = {"diagnosis.json": diagnosis_json(diagnosis).encode("utf-8")}
    if artifacts == "all":
        try:
            from .. import report
        except ImportError:
            report = None
        if report is not None:
            png = report.curves_png_pooled(diagnosis, curves)  # other cores draw
            files["curves.png"] = png
            files["report.html"] = report.report_html(
                diagnosis, curves, run_name=run.info.run_name, params=dict(run.data.params),
                tags=_user_tags(run), png=png).encode("utf-8")  # the same figure, not redrawn
    _upload(client, run, files, "plateau")


def _upload(client: MlflowClient, run: Run, files: Mapping[str, bytes], artifact_path: str) -> None:
    """Upload ``files`` (name -> content, complete, rendered first), one file at a time.

    The repository is resolved from the run already held (``client.log_artifact`` would fetch the
    run again for every file). Each file is replaced whole: a local repository writes a hidden temp
    file beside the target and renames it over it (``log_artifact_from_stream``, straight from
    memory, or ``log_artifact``), and an object store or ``mlflow-artifacts`` server replaces an
    object in one request, so a reader (or a second ``diagnose`` process) sees the old file or the
    new one, never a half-written one. Never ``log_artifacts`` on a folder.
    """
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    repo = get_artifact_repository(run.info.artifact_uri, tracking_uri=client.tracking_uri)
    from_memory = getattr(repo, "log_artifact_from_stream", None)
    if isinstance(repo, LocalArtifactRepository) and from_memory is not None:
        # No temp folder to create, fill, copy from and remove for each run.
        for name in sorted(files):
            from_memory(io.BytesIO(files[name]), name, artifact_path)
        return
    with tempfile.TemporaryDirectory(prefix="mlflow-plateau-") as tmp:
        for name in sorted(files):
            path = Path(tmp) / name
            path.write_bytes(files[name])
            repo.log_artifact(str(path), artifact_path)


@dataclass(frozen=True)
class PendingWrite:
    """A run's diagnosis metrics and tags, ready to log once its artifacts are uploaded.

    ``failure``: why the artifacts could not be uploaded (the metrics and tags are written all the
    same, without the digest tag, and ``ArtifactsNotWritten`` is raised afterwards)."""

    run_id: str
    metrics: dict[str, float]
    tags: dict[str, str]
    timestamp: int
    failure: Exception | None = None


def prepare_write(client: MlflowClient, run: Run, diagnosis: Diagnosis,
                   curves: Mapping[str, Curve], artifacts: str, partial: bool | None = None,
                   digest: str | None = None, history: str | None = None) -> PendingWrite:
    """Upload the artifacts that changed and return the metrics and tags still to log.

    ``digest``: the input digest of ``unchanged.input_digest`` (``diagnose_runs``); without it,
    the digest covers the diagnosis, its curves and the artifact level. The digest tag is among
    the tags only when the artifacts were uploaded (or were already current), and so is
    ``history`` (``unchanged.history_digest``, taken before the curves were read), when given.
    """
    check_artifacts(artifacts)
    curves = user_curves(curves)
    existing_tags = run.data.tags
    wanted = {**diagnosis_metrics(diagnosis),
              **best_metrics(diagnosis, curves, existing=run.data.metrics)}
    metrics = changed_metrics(run.data.metrics, wanted)
    wanted_tags = diagnosis_tags(diagnosis)
    if partial:
        wanted_tags[TAG_PARTIAL] = "true"
    elif existing_tags.get(TAG_PARTIAL) == "true":
        wanted_tags[TAG_PARTIAL] = "false"
    failure: Exception | None = None
    if artifacts == "none":
        if digest is not None:
            wanted_tags[TAG_DIGEST] = digest
    else:
        digest = digest or _digest(diagnosis, curves, artifacts)
        if existing_tags.get(TAG_DIGEST) != digest:
            try:
                _write_artifacts(client, run, diagnosis, curves, artifacts)
            except Exception as exc:  # read-only or full artifact store: metrics and tags go on
                failure = exc
            else:
                wanted_tags[TAG_DIGEST] = digest  # only once the upload succeeded
        if failure is None and history is not None:
            wanted_tags[TAG_HISTORY] = history
    tags = {k: v for k, v in wanted_tags.items() if existing_tags.get(k) != v}
    return PendingWrite(run.info.run_id, metrics, tags, _metric_timestamp(run), failure)


def commit_write(client: MlflowClient, pending: PendingWrite) -> None:
    """Log one run's pending metrics and tags (one ``log_batch``); raise ``ArtifactsNotWritten``
    afterwards when its artifacts could not be uploaded."""
    log_metric_batch(client, pending.run_id, pending.metrics, pending.tags, timestamp=pending.timestamp)
    if pending.failure is not None:
        raise ArtifactsNotWritten(pending.failure) from pending.failure


def write_diagnosis(client: MlflowClient, run: Run, diagnosis: Diagnosis, curves: Mapping[str, Curve],
           artifacts: str, partial: bool | None = None, digest: str | None = None,
           history: str | None = None) -> None:
    """Bring the run's plateau/gap metrics, tags and artifacts up to date with ``diagnosis``.

    The artifacts are uploaded first and the digest tag is written only when they were, in the
    one ``log_batch`` that writes the metrics and tags. When the upload fails, the metrics and tags
    are written all the same and ``ArtifactsNotWritten`` is raised afterwards (the next run
    retries the upload).
    """
    commit_write(client, prepare_write(client, run, diagnosis, curves, artifacts, partial, digest,
                                   history))


def log_diagnosis(run_id: str, diagnosis: Diagnosis, curves: Mapping[str, Curve], *,
                  tracking_uri: str | None = None, artifacts: Artifacts = "all",
                  partial: bool | None = None) -> None:
    """Write ``diagnosis`` to the run: metrics at step 0, tags, artifacts under ``plateau/``.

    ``artifacts``: ``"all"`` (diagnosis.json, curves.png, report.html), ``"json"`` or ``"none"``.
    ``partial``: whether the history may still grow (tag ``plateau.partial``); None decides from
    the run's status (RUNNING), which callers that know training has ended override with False.
    Idempotent (see the module docstring); the run's other metrics, params and tags are untouched.
    """
    uri = resolve_tracking_uri(tracking_uri)
    check_reachable(uri)
    client = client_for(uri)
    run = client.get_run(run_id)
    if diagnosis.run_id != run_id:
        diagnosis = replace(diagnosis, run_id=run_id)
    if partial is None:
        partial = run.info.status == "RUNNING"
    write_diagnosis(client, run, diagnosis, curves, artifacts, partial=partial)


def log_history(curves: Mapping[str, Curve], *, experiment_name: str | None = None,
                run_name: str | None = None, tracking_uri: str | None = None,
                tags: Mapping[str, str] | None = None) -> str:
    """Log curves recorded outside MLflow as a new, finished run (step = epoch); returns its id.

    The experiment is created when it does not exist; without a name, MLflow's default experiment
    is used. Points are written 1,000 per ``log_batch`` (MLflow's limit).
    """
    from mlflow.entities import Metric

    uri = resolve_tracking_uri(tracking_uri)
    check_reachable(uri)
    client = client_for(uri)
    if experiment_name is None:
        experiment_id = "0"
    else:
        exp = client.get_experiment_by_name(experiment_name)
        experiment_id = exp.experiment_id if exp is not None else client.create_experiment(
            experiment_name)
    run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags or {}))
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)
        points = [Metric(name, float(v), now + i, int(e)) for name, c in curves.items()
                  for i, (e, v) in enumerate(zip(c.epochs.tolist(), c.values.tolist(), strict=True))]
        for start in range(0, len(points), 1000):
            client.log_batch(run_id, metrics=points[start:start + 1000], synchronous=True)
    except Exception:
        end_run(client, run_id, "FAILED")
        raise
    end_run(client, run_id)
    return run_id
