"""The MLflow adapter: read metric histories of tracked runs, write diagnoses back.

This is the only module that talks to MLflow tracking stores (see DESIGN.md "Layers").

Reading (``read_run_curves``) takes the fastest path that returns exactly what
``MlflowClient.get_metric_history`` returns, point for point:

- SQL stores (``sqlite``, ``postgresql``, ``mysql``, ``mssql`` URIs): read-only ``SELECT`` on MLflow's
  ``metrics`` table, 500 run ids per ``IN`` clause, ordered like the client orders a history
  (timestamp, step, value); NaN is stored as ``is_nan = 1``.
- HTTP servers: the server's bulk endpoint ``/ajax-api/2.0/mlflow/metrics/get-history-bulk`` (one
  metric key, at most 100 runs and 25,000 points a request, same order as the client); a request
  that could be truncated is split, a single run's history that could be truncated is read with the
  client, and a server without the endpoint falls back to the client.
- Anything else (file stores, Databricks): ``get_metric_history`` per run and key in a thread pool.

Every path turns points into ``Curve.from_points(name, steps, values, order=timestamps)``, so a step
logged twice keeps the newest point (by timestamp, then by the client's order).

Writing (``log_diagnosis``) puts the names of DESIGN.md on the run: metrics at step 0, tags and
artifacts under ``plateau/``. It is idempotent: it compares with what the run already has and logs
only changed values, in one ``log_batch``; artifacts are re-uploaded only when their content would
change. Two tags beyond DESIGN.md's list are written, both internal and documented here:

- ``plateau.digest``: SHA-256 of the diagnosis JSON, the curves behind it and the artifact level;
  equal digest means the uploaded artifacts are already current, so they are not uploaded again.
- ``plateau.partial``: ``true`` while the run was still RUNNING when diagnosed (set back to
  ``false`` once a finished run is re-diagnosed).

A metric whose value does not apply (e.g. ``plateau/stop_epoch`` when EarlyStopping would not have
stopped) is not logged; if the run already has that metric from an earlier diagnosis, NaN is logged
so the stale value does not stay current.

Scaling (``diagnose_scaling``) groups the runs of an experiment that differ only in a size param,
fits a learning curve per group, logs one summary run per group (tag ``plateau.kind = scaling``,
found again by its tags on re-runs) and tags the members (``scaling.verdict``, ``scaling.group``,
metrics ``scaling/slope``, ``scaling/exponent``, ``scaling/gain_at_2x``).

Credentials in a tracking URI (``user:password@host``) never appear in messages (``redact``).
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import json
import math
import re
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from . import __version__
from .curves import Curve, drop_restored_epoch, metric_mode, pair_curves
from .verdict import Diagnosis, ScalingVerdict, diagnose_curves, scaling_verdict

if TYPE_CHECKING:  # mlflow is imported lazily: `import mlflow_plateau` must stay light
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

Artifacts = Literal["all", "json", "none"]

OWN_PREFIXES = ("plateau/", "gap/", "scaling/")
PLATEAU_METRICS = ("plateau/epoch", "plateau/epoch_low", "plateau/epoch_high", "plateau/best_epoch",
                   "plateau/best_value", "plateau/stop_epoch", "plateau/wasted_epochs")
GAP_METRICS = ("gap/final", "gap/at_best", "gap/relative_final", "gap/trend")
SCALING_METRICS = ("scaling/slope", "scaling/exponent", "scaling/gain_at_2x")
TAG_VERDICT, TAG_SUMMARY, TAG_MONITOR, TAG_VERSION = (
    "plateau.verdict", "plateau.summary", "plateau.monitor", "plateau.version")
TAG_DIGEST, TAG_PARTIAL, TAG_KIND = "plateau.digest", "plateau.partial", "plateau.kind"
TAG_SCALING_VERDICT, TAG_SCALING_GROUP = "scaling.verdict", "scaling.group"
TAG_SCALING_SIZE_PARAM = "scaling.size_param"

SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
SQL_CHUNK = 500           # run ids per IN clause (SQLite allows 999 bound parameters by default)
HTTP_BULK_RUNS = 100      # MLflow's GetMetricHistoryBulk limit on run ids per request
HTTP_BULK_MAX = 25000     # ... and on points per response
HTTP_BULK_ENDPOINT = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
PAGE_SIZE = 500           # runs per search_runs page and per diagnosis batch (bounds memory)
THREADS = 8               # concurrent requests where a store is read one call at a time
MAX_TAG_CHARS = 5000      # MLflow limits tag values to 8000 characters; stay well below


@dataclass(frozen=True)
class RunFailure:
    """A run that could not be diagnosed."""

    run_id: str
    reason: str  # one line naming the problem, e.g. "no metric history", "run not found"

    def to_dict(self) -> dict[str, str]:
        return {"run_id": self.run_id, "error": self.reason}


# ---------------------------------------------------------------------------------------------
# URIs, clients, messages

_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/@\s]+@")


def redact(text: str) -> str:
    """``text`` with the user/password part of every URL replaced by ``***``."""
    return _CREDENTIALS.sub(lambda m: f"{m.group('scheme')}***@", str(text))


def one_line(exc: BaseException | str) -> str:
    """A one-line, credential-free message from an exception (MLflow's can span many lines)."""
    if isinstance(exc, BaseException):
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    else:
        message = exc
    first = next((line.strip() for line in str(message).splitlines() if line.strip()), "")
    return redact(first)[:500]


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """The URI given, else MLFLOW_TRACKING_URI, else MLflow's own default (``sqlite:///mlflow.db``)."""
    if tracking_uri:
        return tracking_uri
    import mlflow

    return mlflow.get_tracking_uri()


def _scheme(uri: str) -> str:
    return uri.split(":", 1)[0].split("+", 1)[0].lower() if "://" in uri else "file"


def _is_sql(uri: str) -> bool:
    return _scheme(uri) in SQL_SCHEMES


def _is_http(uri: str) -> bool:
    return _scheme(uri) in ("http", "https")


def _client(uri: str) -> MlflowClient:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Raise ConnectionError (one clear line) when an HTTP tracking server does not answer.

    MLflow's client retries a refused connection for minutes; probing first makes a server that is
    down a prompt, clear failure. Any HTTP answer (even 401/404) counts as reachable.
    """
    if not _is_http(uri):
        return
    import requests

    try:
        requests.get(uri.rstrip("/") + "/health", timeout=timeout)
    except requests.RequestException as exc:
        kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
        raise ConnectionError(f"tracking server {redact(uri)} is not reachable ({kind})") from None


def _run_not_found(exc: Exception) -> bool:
    code = getattr(exc, "error_code", "")
    return code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE") or "not found" in str(
        exc).lower()


def _own(name: str) -> bool:
    return name.startswith(OWN_PREFIXES)


def user_curves(curves: Mapping[str, Curve]) -> dict[str, Curve]:
    """The run's own curves: everything but the ``plateau/``, ``gap/``, ``scaling/`` results."""
    return {name: c for name, c in curves.items() if not _own(name)}


# ---------------------------------------------------------------------------------------------
# Reading

def _curves_from_rows(rows: Iterable[tuple], out: dict[str, dict[str, Curve]]) -> None:
    """Rows (run_id, key, step, timestamp, value) grouped by (run_id, key) -> Curves in ``out``."""
    for (run_id, key), group in groupby(rows, key=itemgetter(0, 1)):
        points = list(group)
        steps = [p[2] for p in points]
        stamps = [p[3] for p in points]
        values = [p[4] for p in points]
        out.setdefault(run_id, {})[key] = Curve.from_points(key, steps, values, order=stamps)


def _sql_engine(client: MlflowClient, uri: str):
    store = client._tracking_client.store
    engine = getattr(store, "engine", None)
    if engine is None:  # a store that does not expose its engine: open our own
        import sqlalchemy as sa

        engine = sa.create_engine(uri)
    return engine


@contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_RUN_ID = re.compile(r"[a-zA-Z0-9][\w\-]{0,255}", re.ASCII)  # MLflow's own run-id rule


def _fetch_all(engine, query) -> list[tuple]:
    """Run a SELECT on the raw DBAPI cursor: plain tuples, about twice as fast as Row objects.

    The statement is compiled with its values inlined (SQLAlchemy escapes them), so no driver
    paramstyle is involved; it holds no user-supplied text besides quoted run ids.
    """
    sql = str(query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.execute(sql)
            return cursor.fetchall()
        finally:
            cursor.close()


def _curves_from_sorted_rows(rows: list[tuple], out: dict[str, dict[str, Curve]]) -> None:
    """Rows (run_id, key, step, timestamp, value, is_nan) sorted by run, key and step -> Curves.

    Of several rows at one step the newest is kept, ties in timestamp broken by the larger stored
    value, which is exactly the point ``Curve.from_points(order=timestamps)`` keeps over
    ``get_metric_history``'s (timestamp, step, value) order.
    """
    if not rows:
        return
    run_col, key_col, step_col, stamp_col, value_col, nan_col = zip(*rows, strict=True)
    steps = np.asarray(step_col, dtype=np.int64)
    stored = np.asarray(value_col, dtype=np.float64)
    is_nan = np.asarray(nan_col, dtype=bool)
    values = np.where(is_nan, np.nan, stored)  # MLflow stores NaN as value 0, is_nan 1
    stamps = None
    start = 0
    for (run_id, key), group in groupby(zip(run_col, key_col, strict=True)):
        end = start + sum(1 for _ in group)
        if not _own(key):
            s, v = steps[start:end], values[start:end]
            if s.size > 1 and np.any(s[1:] == s[:-1]):  # a step logged more than once
                if stamps is None:
                    stamps = np.asarray(stamp_col, dtype=np.int64)
                part = slice(start, end)
                idx = np.lexsort((is_nan[part], stored[part], stamps[part], s))
                newest = idx[np.append(s[idx][1:] != s[idx][:-1], True)]
                s, v = s[newest], v[newest]
            out.setdefault(run_id, {})[key] = Curve(key, s, v)
        start = end


def _read_sql(engine, run_ids: Sequence[str]) -> dict[str, dict[str, Curve]]:
    """All metric points of ``run_ids`` with read-only SELECTs on MLflow's ``metrics`` table."""
    import sqlalchemy as sa

    m = sa.table("metrics", sa.column("run_uuid"), sa.column("key"), sa.column("step"),
                 sa.column("timestamp"), sa.column("value"), sa.column("is_nan"))
    out: dict[str, dict[str, Curve]] = {}
    # Only strings shaped like MLflow run ids reach the SQL text (others name no run anyway), so
    # no quoting rule of any database can be played with through an id given on the command line.
    run_ids = [r for r in map(str, run_ids) if _RUN_ID.fullmatch(r)]
    for begin in range(0, len(run_ids), SQL_CHUNK):
        chunk = run_ids[begin:begin + SQL_CHUNK]
        # This order is MLflow's index (run_uuid, key, step): no sort in the database. Points
        # logged twice at one step are resolved in numpy.
        query = (sa.select(m.c.run_uuid, m.c.key, m.c.step, m.c.timestamp, m.c.value, m.c.is_nan)
                 .where(m.c.run_uuid.in_(chunk))
                 .order_by(m.c.run_uuid, m.c.key, m.c.step))
        with _gc_paused():  # hundreds of thousands of fresh tuples would trigger GC passes
            rows = _fetch_all(engine, query)
            _curves_from_sorted_rows(rows, out)
        del rows
    return out


def _read_client(client: MlflowClient, keys_by_run: Mapping[str, Iterable[str]]
                 ) -> dict[str, dict[str, Curve]]:
    """One get_metric_history call per (run, key), THREADS at a time (the slow, general path)."""
    jobs = [(rid, key) for rid, keys in keys_by_run.items() for key in keys]

    def fetch(job: tuple[str, str]) -> list[tuple]:
        rid, key = job
        return [(rid, key, p.step, p.timestamp, p.value) for p in client.get_metric_history(rid, key)]

    out: dict[str, dict[str, Curve]] = {}
    with ThreadPoolExecutor(THREADS) as pool:
        for rows in pool.map(fetch, jobs):
            _curves_from_rows(rows, out)
    return out


class _BulkUnavailable(Exception):
    """The server has no usable bulk-history endpoint."""


def _bulk_request(creds, key: str, run_ids: Sequence[str]) -> list[dict]:
    from mlflow.utils.rest_utils import http_request

    response = http_request(creds, HTTP_BULK_ENDPOINT, "GET",
                            params={"run_id": list(run_ids), "metric_key": key,
                                    "max_results": HTTP_BULK_MAX})
    if response.status_code != 200:
        # Missing on this server (404), disabled, or limited differently: the public API is the
        # fallback, and it reports real errors (auth, run not found) in its own words.
        raise _BulkUnavailable(f"HTTP {response.status_code}")
    try:
        return response.json().get("metrics", [])
    except ValueError as exc:  # not JSON: a proxy's page, not MLflow's answer
        raise _BulkUnavailable("response is not JSON") from exc


def _read_http(client: MlflowClient, keys_by_run: Mapping[str, Iterable[str]]
               ) -> dict[str, dict[str, Curve]]:
    """Histories through the server's bulk endpoint, per key in groups of 100 runs."""
    creds = client._tracking_client.store.get_host_creds()
    runs_by_key: dict[str, list[str]] = {}
    for rid, keys in keys_by_run.items():
        for key in keys:
            runs_by_key.setdefault(key, []).append(rid)
    jobs = [(key, sorted(rids[i:i + HTTP_BULK_RUNS]))
            for key, rids in runs_by_key.items() for i in range(0, len(rids), HTTP_BULK_RUNS)]
    single: list[tuple[str, str]] = []  # (run, key) histories too long for one bulk response

    def fetch(job: tuple[str, list[str]]) -> list[tuple]:
        key, rids = job
        points = _bulk_request(creds, key, rids)
        if len(points) < HTTP_BULK_MAX:
            # The server returns points sorted by run, then like get_metric_history.
            return [(p["run_id"], p["key"], int(p.get("step", 0)), int(p.get("timestamp", 0)),
                     float(p["value"])) for p in points]
        if len(rids) == 1:  # this one run may have more points than a response holds
            single.append((rids[0], key))
            return []
        half = len(rids) // 2
        return fetch((key, rids[:half])) + fetch((key, rids[half:]))

    out: dict[str, dict[str, Curve]] = {}
    with ThreadPoolExecutor(THREADS) as pool:
        for rows in pool.map(fetch, jobs):
            # Responses are sorted by run id, then (timestamp, step, value) within a run.
            rows.sort(key=itemgetter(0, 1))  # stable: keeps the server's order within (run, key)
            _curves_from_rows(rows, out)
    if single:
        keys: dict[str, list[str]] = {}
        for rid, key in single:
            keys.setdefault(rid, []).append(key)
        for rid, curves in _read_client(client, keys).items():
            out.setdefault(rid, {}).update(curves)
    return out


def _read_curves(client: MlflowClient, uri: str, runs: Sequence[Run]) -> dict[str, dict[str, Curve]]:
    """Full histories of the user metrics of ``runs`` (keys known from each run's latest metrics)."""
    run_ids = [r.info.run_id for r in runs]
    if _is_sql(uri):
        read = _read_sql(_sql_engine(client, uri), run_ids)
    else:
        keys = {r.info.run_id: [k for k in r.data.metrics if not _own(k)] for r in runs}
        read = None
        if _is_http(uri):
            try:
                read = _read_http(client, keys)
            except _BulkUnavailable:
                read = None
        if read is None:
            read = _read_client(client, keys)
    return {rid: user_curves(read.get(rid, {})) for rid in run_ids}


def _get_runs(client: MlflowClient, run_ids: Sequence[str]) -> list[Run | RunFailure]:
    """``get_run`` for each id, THREADS at a time; an id that fails becomes a RunFailure."""
    from mlflow.exceptions import MlflowException

    def fetch(run_id: str) -> Run | RunFailure:
        if not _RUN_ID.fullmatch(run_id):
            return RunFailure(run_id, "not a valid run id")
        try:
            return client.get_run(run_id)
        except MlflowException as exc:
            if _run_not_found(exc):
                return RunFailure(run_id, "run not found")
            return RunFailure(run_id, one_line(exc))

    if len(run_ids) <= 1:
        return [fetch(r) for r in run_ids]
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(fetch, run_ids))


def read_run_curves(run_ids: Sequence[str], *, tracking_uri: str | None = None
                    ) -> dict[str, dict[str, Curve]]:
    """Full metric histories of many runs at once: run id -> metric name -> Curve.

    Results equal ``Curve.from_points(key, steps, values, order=timestamps)`` over
    ``MlflowClient.get_metric_history`` for every key, whichever path is taken (module docstring).
    The ``plateau/``, ``gap/`` and ``scaling/`` results this package writes are left out. A run id
    that is unknown or has no metrics maps to an empty dict (``diagnose_runs`` names the reason).
    """
    uri = resolve_tracking_uri(tracking_uri)
    check_reachable(uri)
    client = _client(uri)
    ids = list(dict.fromkeys(run_ids))
    if _is_sql(uri):
        read = _read_sql(_sql_engine(client, uri), ids)
        return {rid: user_curves(read.get(rid, {})) for rid in ids}
    runs = [r for r in _get_runs(client, ids) if not isinstance(r, RunFailure)]
    read = _read_curves(client, uri, runs)
    return {rid: read.get(rid, {}) for rid in ids}


# ---------------------------------------------------------------------------------------------
# Writing

def diagnosis_metrics(diagnosis: Diagnosis) -> dict[str, float | None]:
    """The metrics DESIGN.md names, from a diagnosis (None where a value does not apply)."""
    p, g = diagnosis.plateau, diagnosis.gap

    def num(x: Any) -> float | None:
        if x is None:
            return None
        x = float(x)
        return x if math.isfinite(x) else None

    out: dict[str, float | None] = dict.fromkeys(PLATEAU_METRICS + GAP_METRICS)
    if p is not None:
        out.update({"plateau/epoch": num(p.epoch), "plateau/epoch_low": num(p.low),
                    "plateau/epoch_high": num(p.high), "plateau/best_epoch": num(p.best_epoch),
                    "plateau/best_value": num(p.best_value), "plateau/stop_epoch": num(p.stop_epoch),
                    "plateau/wasted_epochs": num(p.wasted_epochs)})
    if g is not None:
        out.update({"gap/final": num(g.final), "gap/at_best": num(g.at_best),
                    "gap/relative_final": num(g.relative_final), "gap/trend": num(g.trend)})
    return out


def diagnosis_tags(diagnosis: Diagnosis) -> dict[str, str]:
    """The tags DESIGN.md names, from a diagnosis."""
    return {TAG_VERDICT: diagnosis.verdict, TAG_SUMMARY: diagnosis.summary[:MAX_TAG_CHARS],
            TAG_MONITOR: diagnosis.monitor or "", TAG_VERSION: __version__}


def _same(old: float | None, new: float) -> bool:
    if old is None:
        return False
    return old == new or (math.isnan(old) and math.isnan(new))


def _changed_metrics(existing: Mapping[str, float], wanted: Mapping[str, float | None]
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


def _log_batch(client: MlflowClient, run_id: str, metrics: Mapping[str, float],
               tags: Mapping[str, str]) -> None:
    if not metrics and not tags:
        return
    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                     tags=[RunTag(k, v) for k, v in tags.items()], synchronous=True)


def diagnosis_json(diagnosis: Diagnosis) -> str:
    """The content of ``plateau/diagnosis.json`` (report.diagnosis_json when available)."""
    try:
        from .report import diagnosis_json as render
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
    """Render the artifacts into a temp dir under fixed names and upload them under plateau/."""
    with tempfile.TemporaryDirectory(prefix="mlflow-plateau-") as tmp:
        folder = Path(tmp)
        (folder / "diagnosis.json").write_text(diagnosis_json(diagnosis), encoding="utf-8")
        if artifacts == "all":
            try:
                from . import report
            except ImportError:
                report = None
            if report is not None:
                png = report.curves_png(diagnosis, curves)
                (folder / "curves.png").write_bytes(png)
                html = report.report_html(diagnosis, curves, run_name=run.info.run_name,
                                          params=dict(run.data.params), tags=_user_tags(run),
                                          png=png)  # embed the same figure, not a second drawing
                (folder / "report.html").write_text(html, encoding="utf-8")
        _upload(client, run, folder, "plateau")


def _upload(client: MlflowClient, run: Run, folder: Path, artifact_path: str) -> None:
    """Upload a folder to the run's artifacts through its repository, resolved from the run we
    already hold (``client.log_artifacts`` would fetch the run again for every upload)."""
    try:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    except ImportError:  # pragma: no cover - older/newer MLflow layouts
        client.log_artifacts(run.info.run_id, str(folder), artifact_path=artifact_path)
        return
    repo = get_artifact_repository(run.info.artifact_uri, tracking_uri=client.tracking_uri)
    repo.log_artifacts(str(folder), artifact_path)


def _write(client: MlflowClient, run: Run, diagnosis: Diagnosis, curves: Mapping[str, Curve],
           artifacts: str, partial: bool | None = None) -> None:
    """Bring the run's plateau/gap metrics, tags and artifacts up to date with ``diagnosis``."""
    if artifacts not in ("all", "json", "none"):
        raise ValueError(f"artifacts must be 'all', 'json' or 'none', not {artifacts!r}")
    curves = user_curves(curves)
    existing_tags = run.data.tags
    metrics = _changed_metrics(run.data.metrics, diagnosis_metrics(diagnosis))
    wanted_tags = diagnosis_tags(diagnosis)
    if partial:
        wanted_tags[TAG_PARTIAL] = "true"
    elif existing_tags.get(TAG_PARTIAL) == "true":
        wanted_tags[TAG_PARTIAL] = "false"
    if artifacts != "none":
        digest = _digest(diagnosis, curves, artifacts)
        if existing_tags.get(TAG_DIGEST) != digest:
            _write_artifacts(client, run, diagnosis, curves, artifacts)
            wanted_tags[TAG_DIGEST] = digest  # only once the upload succeeded
    tags = {k: v for k, v in wanted_tags.items() if existing_tags.get(k) != v}
    _log_batch(client, run.info.run_id, metrics, tags)


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
    client = _client(uri)
    run = client.get_run(run_id)
    if diagnosis.run_id != run_id:
        diagnosis = replace(diagnosis, run_id=run_id)
    if partial is None:
        partial = run.info.status == "RUNNING"
    _write(client, run, diagnosis, curves, artifacts, partial=partial)


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
    client = _client(uri)
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
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id)
    return run_id


# ---------------------------------------------------------------------------------------------
# Diagnosing

def _diagnose_one(client: MlflowClient, run: Run, curves: Mapping[str, Curve], options: dict,
                  log: bool, artifacts: str) -> Diagnosis | RunFailure:
    run_id = run.info.run_id
    if run.info.lifecycle_stage == "deleted":
        return RunFailure(run_id, "run is deleted")
    if run.data.tags.get(TAG_KIND) == "scaling":
        return RunFailure(run_id, "a scaling summary run, not a training run")
    if not curves:
        return RunFailure(run_id, "no metric history")
    if options.get("monitor") is None and not any(p.val for p in pair_curves(curves).values()):
        return RunFailure(run_id, f"no validation metric (metrics: {', '.join(sorted(curves))}); "
                          "pass monitor= (--monitor) to diagnose a training metric")
    # The point mlflow.tensorflow re-logs after restoring the best weights is not an epoch: drop
    # it here so the report's plots and the digest see the same curves as the diagnosis.
    curves = drop_restored_epoch(dict(curves))
    try:
        diagnosis = diagnose_curves(curves, **options)
    except ValueError as exc:
        return RunFailure(run_id, one_line(exc))
    except Exception as exc:  # a bug or numerical failure on one run must not stop the batch
        return RunFailure(run_id, f"could not diagnose: {type(exc).__name__}: {one_line(exc)}")
    partial = run.info.status == "RUNNING"
    evidence = {**diagnosis.evidence, "partial": True} if partial else diagnosis.evidence
    diagnosis = replace(diagnosis, run_id=run_id, evidence=evidence)
    if log:
        try:
            _write(client, run, diagnosis, curves, artifacts, partial=partial)
        except Exception as exc:  # a failed write names this run; the batch goes on
            return RunFailure(run_id, f"could not write the diagnosis: {one_line(exc)}")
    return diagnosis


def _options(monitor, train_metric, mode, patience, min_delta, relative_delta, num_classes,
             chance) -> dict:
    if mode not in (None, "min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
    if patience is not None and patience < 0:
        raise ValueError(f"patience must be >= 0, not {patience}")
    return {"monitor": monitor, "train_metric": train_metric, "mode": mode, "patience": patience,
            "min_delta": min_delta, "relative_delta": relative_delta, "num_classes": num_classes,
            "chance": chance}


def _check_artifacts(artifacts: str) -> None:
    if artifacts not in ("all", "json", "none"):
        raise ValueError(f"artifacts must be 'all', 'json' or 'none', not {artifacts!r}")


def diagnose_run(run_id: str, *, tracking_uri: str | None = None, log: bool = True,
                 monitor: str | None = None, train_metric: str | None = None,
                 mode: str | None = None, patience: int = 10, min_delta: float = 0.0,
                 relative_delta: float | None = 0.01, num_classes: int | None = None,
                 chance: float | None = None, artifacts: Artifacts = "all") -> Diagnosis:
    """Diagnose one tracked run (and, with ``log``, write the result to it).

    Raises ValueError naming the run and the reason when it cannot be diagnosed (unknown, deleted,
    no metrics, no validation metric, server not reachable).
    """
    options = _options(monitor, train_metric, mode, patience, min_delta, relative_delta,
                       num_classes, chance)
    _check_artifacts(artifacts)
    uri = resolve_tracking_uri(tracking_uri)
    try:
        check_reachable(uri)
    except ConnectionError as exc:
        raise ValueError(f"run {run_id}: {exc}") from None
    client = _client(uri)
    (run,) = _get_runs(client, [run_id])
    if isinstance(run, RunFailure):
        raise ValueError(f"run {run_id}: {run.reason}")
    result = _diagnose_one(client, run, _read_curves(client, uri, [run])[run_id], options, log,
                           artifacts)
    if isinstance(result, RunFailure):
        raise ValueError(f"run {run_id}: {result.reason}")
    return result


def _experiment_id(client: MlflowClient, experiment_name: str | None,
                   experiment_id: str | None) -> str:
    if experiment_name is not None:
        exp = client.get_experiment_by_name(experiment_name)
        if exp is None:
            raise ValueError(f"experiment {experiment_name!r} not found")
        return exp.experiment_id
    from mlflow.exceptions import MlflowException

    try:
        return client.get_experiment(str(experiment_id)).experiment_id
    except MlflowException:
        raise ValueError(f"experiment id {experiment_id!r} not found") from None


def iter_runs(client: MlflowClient, experiment_id: str, filter_string: str | None = None,
              page_size: int = PAGE_SIZE) -> Iterator[list[Run]]:
    """Active runs of an experiment, one ``search_runs`` page (list of runs) at a time."""
    from mlflow.entities import ViewType

    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string=filter_string or "",
                                  run_view_type=ViewType.ACTIVE_ONLY, max_results=page_size,
                                  page_token=token)
        if page:
            yield list(page)
        token = page.token
        if not token:
            return


def _runs_by_id(client: MlflowClient, experiment_id: str, run_ids: Sequence[str]) -> list[Run]:
    """The runs with these ids (MLflow-issued, hex) in one search, in the order given."""
    from mlflow.entities import ViewType

    quoted = ", ".join(f"'{r}'" for r in run_ids if _RUN_ID.fullmatch(r))
    found = client.search_runs([experiment_id], filter_string=f"attributes.run_id IN ({quoted})",
                               run_view_type=ViewType.ACTIVE_ONLY, max_results=len(run_ids))
    by_id = {r.info.run_id: r for r in found}
    return [by_id[r] for r in run_ids if r in by_id]


def _filtered_pages(client: MlflowClient, experiment_id: str, filter_string: str,
                    page_size: int) -> Iterator[list[Run]]:
    """Pages of the runs a filter selects *now*: the ids are listed first, because writing the
    diagnoses can change which runs a filter on plateau.* tags matches, and offset paging over a
    changing result would skip runs."""
    ids = [r.info.run_id for page in iter_runs(client, experiment_id, filter_string, page_size)
           for r in page]
    for start in range(0, len(ids), page_size):
        page = _runs_by_id(client, experiment_id, ids[start:start + page_size])
        if page:
            yield page


def diagnose_runs(run_ids: Sequence[str] | None = None, *, experiment_name: str | None = None,
                  experiment_id: str | None = None, filter_string: str | None = None,
                  tracking_uri: str | None = None, log: bool = True, monitor: str | None = None,
                  train_metric: str | None = None, mode: str | None = None, patience: int = 10,
                  min_delta: float = 0.0, relative_delta: float | None = 0.01,
                  num_classes: int | None = None, chance: float | None = None,
                  artifacts: Artifacts = "all", batch_size: int = PAGE_SIZE
                  ) -> Iterator[Diagnosis | RunFailure]:
    """Diagnose many runs: the ids given, or the active runs of one experiment (optionally filtered).

    Yields one ``Diagnosis`` or ``RunFailure`` per run, in order, reading and writing ``batch_size``
    runs at a time so memory stays bounded on experiments of any size. Selection errors (no or
    conflicting selectors, unknown experiment) raise ValueError before anything is read; a server
    that is not reachable raises ConnectionError for an experiment and fails each given run.
    """
    options = _options(monitor, train_metric, mode, patience, min_delta, relative_delta,
                       num_classes, chance)
    _check_artifacts(artifacts)
    if isinstance(run_ids, str):  # one id given bare
        run_ids = [run_ids]
    by_ids = run_ids is not None and len(run_ids) > 0
    by_experiment = experiment_name is not None or experiment_id is not None
    if experiment_name is not None and experiment_id is not None:
        raise ValueError("give an experiment name or an experiment id, not both")
    if by_ids and by_experiment:
        raise ValueError("give run ids or an experiment, not both")
    if not by_ids and not by_experiment:
        raise ValueError("no runs selected: give run ids or an experiment")
    if filter_string and not by_experiment:
        raise ValueError("a filter applies to an experiment's runs: give an experiment")
    uri = resolve_tracking_uri(tracking_uri)
    if by_ids:
        ids = list(dict.fromkeys(str(r) for r in run_ids))
        try:
            check_reachable(uri)
        except ConnectionError as exc:
            return iter([RunFailure(rid, str(exc)) for rid in ids])
        client = _client(uri)
        pages: Iterator[list[Run | RunFailure]] = (
            _get_runs(client, ids[i:i + batch_size]) for i in range(0, len(ids), batch_size))
    else:
        check_reachable(uri)
        client = _client(uri)
        exp_id = _experiment_id(client, experiment_name, experiment_id)
        if filter_string:
            pages = _filtered_pages(client, exp_id, filter_string, batch_size)
            first = next(pages, None)  # lists the ids now: a bad filter fails here, not midway
            pages = itertools.chain([first] if first else [], pages)
        else:
            pages = iter_runs(client, exp_id, None, batch_size)
        # The scaling summary runs this package logs in an experiment are not training runs.
        pages = ([r for r in page if r.data.tags.get(TAG_KIND) != "scaling"] for page in pages)
    return _diagnose_pages(client, uri, pages, options, log, artifacts)


def _diagnose_pages(client: MlflowClient, uri: str, pages: Iterator[list[Run | RunFailure]],
                    options: dict, log: bool, artifacts: str) -> Iterator[Diagnosis | RunFailure]:
    # Writes wait on the store (a commit, an HTTP round trip): overlap them with the computing and
    # rendering of other runs. SQLite serializes writers, so two threads are enough there.
    workers = 1 if not log else (2 if _scheme(uri) == "sqlite" else THREADS)
    with ThreadPoolExecutor(workers) as pool:
        yield from _diagnose_pages_with(pool, client, uri, pages, options, log, artifacts)


def _diagnose_pages_with(pool: ThreadPoolExecutor, client: MlflowClient, uri: str,
                         pages: Iterator[list[Run | RunFailure]], options: dict, log: bool,
                         artifacts: str) -> Iterator[Diagnosis | RunFailure]:
    for page in pages:
        runs = [r for r in page if not isinstance(r, RunFailure)]
        try:
            curves = _read_curves(client, uri, runs) if runs else {}
        except Exception as exc:  # a read failing for the whole page fails each of its runs
            reason = f"could not read metric histories: {one_line(exc)}"
            yield from (r if isinstance(r, RunFailure) else RunFailure(r.info.run_id, reason)
                        for r in page)
            continue
        futures = [None if isinstance(item, RunFailure) else
                   pool.submit(_diagnose_one, client, item, curves.get(item.info.run_id, {}),
                               options, log, artifacts) for item in page]
        del curves  # each task holds its own run's curves; the page's are released as they finish
        for item, future in zip(page, futures, strict=True):
            yield item if future is None else future.result()


# ---------------------------------------------------------------------------------------------
# Scaling groups

@dataclass(frozen=True)
class ScalingGroup:
    """One learning curve: runs that differ only in the size param, and its fitted verdict."""

    label: str                   # "all runs" or "param=value, ..." (the scaling.group tag)
    params: dict[str, str]       # the params the group shares (its key)
    run_ids: list[str]
    sizes: list[float]
    errors: list[float]
    verdict: ScalingVerdict
    summary_run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.label, "params": self.params, "run_ids": self.run_ids,
                "sizes": self.sizes, "errors": self.errors, "summary_run_id": self.summary_run_id,
                **self.verdict.to_dict()}


def _group_label(params: Mapping[str, str]) -> str:
    label = ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "all runs"
    if len(label) > 200:  # keep the tag short and still unique
        label = label[:150] + " #" + hashlib.sha256(label.encode()).hexdigest()[:12]
    return label


def _run_error(curve: Curve, metric: str, mode: str | None) -> float | None:
    """The run's error on ``metric``: best loss, or 1 - best score (fractions, not percent)."""
    from .curves import as_fraction

    values, _ = as_fraction(curve.values, metric)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    mode = mode or metric_mode(metric)
    return float(values.min()) if mode == "min" else 1.0 - float(values.max())


def diagnose_scaling(*, experiment_name: str | None = None, experiment_id: str | None = None,
                     size_param: str = "train_size", group_by: Sequence[str] | None = None,
                     metric: str = "val_loss", mode: str | None = None,
                     filter_string: str | None = None, tracking_uri: str | None = None,
                     log: bool = True) -> tuple[list[ScalingGroup], list[RunFailure]]:
    """Fit a learning curve per group of an experiment's runs at several values of ``size_param``.

    Runs group by every other param (runs that differ only in the size) or by ``group_by``. The
    error of a run is the best value of ``metric`` (``1 - best`` for a score). With ``log``, each
    group gets a summary run (found again by its tags, so re-running updates it) with the fit as
    metrics, ``scaling/fit.json`` and ``scaling/learning_curve.png``, and each member the
    ``scaling.*`` tags and metrics. Runs without the size param are not part of any group; runs
    whose size is not a positive number or that lack the metric are returned as failures; summary
    runs of earlier calls are skipped.
    """
    if mode not in (None, "min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
    if (experiment_name is None) == (experiment_id is None):
        raise ValueError("give exactly one of an experiment name or an experiment id")
    uri = resolve_tracking_uri(tracking_uri)
    check_reachable(uri)
    client = _client(uri)
    exp_id = _experiment_id(client, experiment_name, experiment_id)
    groups: dict[str, tuple[dict[str, str], list[tuple[str, float, float]]]] = {}
    failures: list[RunFailure] = []
    summaries: dict[str, Run] = {}
    for page in iter_runs(client, exp_id, filter_string):
        members = []
        for run in page:
            if run.data.tags.get(TAG_KIND) == "scaling":
                summaries[run.data.tags.get(TAG_SCALING_GROUP, "")] = run
                continue
            params = dict(run.data.params)
            if size_param not in params:
                continue  # not a point of any learning curve (e.g. an unrelated run)
            try:
                size = float(params[size_param])
            except ValueError:
                failures.append(RunFailure(run.info.run_id, f"param {size_param!r} is not a "
                                           f"number: {params[size_param]!r}"))
                continue
            if not (math.isfinite(size) and size > 0):
                failures.append(RunFailure(run.info.run_id, f"param {size_param!r} must be a "
                                           f"positive number, not {params[size_param]!r}"))
                continue
            members.append((run, size))
        if not members:
            continue
        curves = _read_curves(client, uri, [r for r, _ in members])
        for run, size in members:
            curve = curves.get(run.info.run_id, {}).get(metric)
            error = _run_error(curve, metric, mode) if curve is not None and len(curve) else None
            if error is None:
                failures.append(RunFailure(run.info.run_id, f"no finite values of {metric!r}"))
                continue
            params = dict(run.data.params)
            params.pop(size_param, None)
            key_params = ({p: params.get(p, "") for p in group_by} if group_by else params)
            label = _group_label(key_params)
            groups.setdefault(label, (key_params, []))[1].append((run.info.run_id, size, error))

    from .scaling import scaling_fit

    results = []
    for label in sorted(groups):
        key_params, rows = groups[label]
        rows.sort(key=lambda r: (r[1], r[0]))
        sizes = [r[1] for r in rows]
        errors = [r[2] for r in rows]
        verdict = scaling_verdict(scaling_fit(sizes, errors))
        group = ScalingGroup(label, key_params, [r[0] for r in rows], sizes, errors, verdict)
        if log:
            summary_id = _log_scaling_group(client, exp_id, group, summaries.get(label),
                                            size_param=size_param, metric=metric)
            group = replace(group, summary_run_id=summary_id)
        results.append(group)
    return results, failures


def _scaling_metrics(verdict: ScalingVerdict) -> dict[str, float | None]:
    fit = verdict.fit

    def num(x: Any) -> float | None:
        return float(x) if x is not None and math.isfinite(float(x)) else None

    return {"scaling/slope": num(fit.slope), "scaling/exponent": num(fit.exponent),
            "scaling/gain_at_2x": num(fit.gain_at_2x)}


def _log_scaling_group(client: MlflowClient, experiment_id: str, group: ScalingGroup,
                       summary: Run | None, *, size_param: str, metric: str) -> str:
    """Create or update the group's summary run and tag its members; returns the summary run id."""
    metrics = _scaling_metrics(group.verdict)
    member_tags = {TAG_SCALING_VERDICT: group.verdict.verdict, TAG_SCALING_GROUP: group.label}
    runs = {r.info.run_id: r for r in
            (x for x in _get_runs(client, group.run_ids) if not isinstance(x, RunFailure))}
    for rid, run in runs.items():
        tags = {k: v for k, v in member_tags.items() if run.data.tags.get(k) != v}
        _log_batch(client, rid, _changed_metrics(run.data.metrics, metrics), tags)

    fit_doc = {**group.to_dict(), "size_param": size_param, "metric": metric,
               "version": __version__}
    fit_doc.pop("summary_run_id")
    fit_json = json.dumps(fit_doc, indent=2, sort_keys=True, default=str)
    if summary is None:
        summary = client.create_run(
            experiment_id, run_name=f"scaling: {group.label}"[:250],
            tags={TAG_KIND: "scaling", TAG_SCALING_GROUP: group.label,
                  TAG_SCALING_SIZE_PARAM: size_param})
        client.set_terminated(summary.info.run_id)
        summary = client.get_run(summary.info.run_id)
    rid = summary.info.run_id
    digest = hashlib.sha256(fit_json.encode()).hexdigest()
    wanted = {TAG_KIND: "scaling", TAG_SCALING_GROUP: group.label,
              TAG_SCALING_VERDICT: group.verdict.verdict,
              TAG_SUMMARY: group.verdict.summary[:MAX_TAG_CHARS], TAG_VERSION: __version__}
    if summary.data.tags.get(TAG_DIGEST) != digest:
        with tempfile.TemporaryDirectory(prefix="mlflow-plateau-") as tmp:
            folder = Path(tmp)
            (folder / "fit.json").write_text(fit_json, encoding="utf-8")
            try:
                from .report import scaling_png
            except ImportError:
                scaling_png = None
            if scaling_png is not None:
                (folder / "learning_curve.png").write_bytes(
                    scaling_png(group.verdict, size_param=size_param, title=group.label))
            client.log_artifacts(rid, str(folder), artifact_path="scaling")
        wanted[TAG_DIGEST] = digest
    tags = {k: v for k, v in wanted.items() if summary.data.tags.get(k) != v}
    _log_batch(client, rid, _changed_metrics(summary.data.metrics, metrics), tags)
    return rid


__all__ = [
    "RunFailure",
    "ScalingGroup",
    "check_reachable",
    "diagnose_run",
    "diagnose_runs",
    "diagnose_scaling",
    "diagnosis_json",
    "diagnosis_metrics",
    "diagnosis_tags",
    "log_diagnosis",
    "log_history",
    "one_line",
    "read_run_curves",
    "redact",
    "resolve_tracking_uri",
    "user_curves",
]
