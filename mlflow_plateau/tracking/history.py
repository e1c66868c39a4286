"""Reading metric histories of many runs at once, on the fastest path a store offers.

``read_run_curves`` (and ``read_curves``, for runs already fetched) returns exactly what
``MlflowClient.get_metric_history`` returns, point for point, as ``Curve``s:

- SQL stores (``sqlite``, ``postgresql``, ``mysql``, ``mssql`` URIs): read-only ``SELECT`` on MLflow's
  ``metrics`` table, 500 run ids per ``IN`` clause, in the order of MLflow's index; NaN is stored as
  ``is_nan = 1``; a step logged twice keeps the newest point.
- HTTP servers: the server's bulk endpoint ``/ajax-api/2.0/mlflow/metrics/get-history-bulk`` (one
  metric key, at most 100 runs and 25,000 points a request, same order as the client); a request
  that could be truncated is split, a single run's history that could be truncated is read with the
  client, and a server without the endpoint falls back to the client.
- Anything else (file stores, Databricks): ``get_metric_history`` per run and key in a thread pool.

A tracking server's own database can be given as well (``database_engine(database_uri)``, the
``--database-uri`` of ``diagnose``): where it can be reached (a 3-second connect that finds MLflow's
``metrics`` table), histories are read from it with SQL while everything else, writes included,
goes through the server; a run the database does not hold (a wrong database) is read through the
server after all, so a database that is not the server's never loses a run.

The ``plateau/``, ``gap/`` and ``scaling/`` results this package writes are left out.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING

import numpy as np

from ..curves import Curve, integers_as_stored, unstepped_steps
from .store import (
    HTTP_BULK_ENDPOINT,
    HTTP_BULK_MAX,
    HTTP_BULK_RUNS,
    RUN_ID_PATTERN,
    SQL_CHUNK,
    THREADS,
    RunFailure,
    check_reachable,
    client_for,
    existing_store,
    get_runs,
    is_http,
    is_own_key,
    is_sql,
    one_line,
    uri_scheme,
    user_curves,
)

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient


def infinite_restored(values: np.ndarray) -> np.ndarray:
    """MLflow's SQL store saves +/-inf as +/-1.7976931348623157e308: give the infinities back.

    Otherwise a loss that hit inf reads as one huge finite spike (``unstable``, not ``diverged``).
    """
    huge = np.abs(values) == np.finfo(np.float64).max
    return np.where(huge, np.copysign(np.inf, values), values) if huge.any() else values


def _curves_from_rows(rows: Iterable[tuple], out: dict[str, dict[str, Curve]]) -> None:
    """Rows (run_id, key, step, timestamp, value) grouped by (run_id, key) -> Curves in ``out``."""
    for (run_id, key), group in groupby(rows, key=itemgetter(0, 1)):
        points = list(group)
        steps = [p[2] for p in points]
        stamps = [p[3] for p in points]
        values = infinite_restored(np.asarray([p[4] for p in points], dtype=np.float64))
        out.setdefault(run_id, {})[key] = Curve.from_points(key, steps, values, order=stamps)


def sql_engine(client: MlflowClient, uri: str):
    store = client._tracking_client.store
    engine = getattr(store, "engine", None)
    if engine is None:  # a store that does not expose its engine: open our own
        import sqlalchemy as sa

        engine = sa.create_engine(uri)
    return engine


@contextmanager
def gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def fetch_all(engine, query) -> list[tuple]:
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


def int64_column(column: Sequence) -> np.ndarray:
    """Steps or timestamps as int64, also where the store handed some back as bytes
    (``curves.integers_as_stored``)."""
    try:
        return np.asarray(column, dtype=np.int64)
    except (TypeError, ValueError):
        return integers_as_stored(list(column)).astype(np.int64)


def _curves_from_sorted_rows(rows: list[tuple], out: dict[str, dict[str, Curve]]) -> None:
    """Rows (run_id, key, step, timestamp, value, is_nan) sorted by run, key and step -> Curves.

    Of several rows at one step the newest is kept, ties in timestamp broken by the larger stored
    value, which is exactly the point ``Curve.from_points(order=timestamps)`` keeps over
    ``get_metric_history``'s (timestamp, step, value) order; rows all at one step (3 or more) are
    a curve logged without steps, kept whole in that same order.
    """
    if not rows:
        return
    run_col, key_col, step_col, stamp_col, value_col, nan_col = zip(*rows, strict=True)
    try:
        steps = np.asarray(step_col, dtype=np.int64)
    except (TypeError, ValueError):
        # Steps stored as blobs (numpy integers bound by sqlite3) sort as bytes in the database,
        # not as numbers: read them as integers and sort the rows again.
        steps = int64_column(step_col)
        order = np.lexsort((steps, np.asarray(key_col, dtype=object).astype(str),
                            np.asarray(run_col, dtype=object).astype(str)))
        rows = [rows[i] for i in order]
        run_col, key_col, step_col, stamp_col, value_col, nan_col = zip(*rows, strict=True)
        steps = steps[order]
    stored = np.asarray(value_col, dtype=np.float64)
    is_nan = np.asarray(nan_col, dtype=bool)
    values = infinite_restored(np.where(is_nan, np.nan, stored))  # NaN is stored as 0, is_nan 1
    stamps = None
    start = 0
    for (run_id, key), group in groupby(zip(run_col, key_col, strict=True)):
        end = start + sum(1 for _ in group)
        if not is_own_key(key):
            s, v = steps[start:end], values[start:end]
            unstepped = unstepped_steps(s)
            if s.size > 1 and np.any(s[1:] == s[:-1]):  # a step logged more than once
                if stamps is None:
                    stamps = int64_column(stamp_col)
                part = slice(start, end)
                if unstepped:  # a curve logged without steps: every point, oldest first
                    idx = np.lexsort((is_nan[part], stored[part], stamps[part]))
                    s, v = s[0] + np.arange(s.size), v[idx]
                else:
                    idx = np.lexsort((is_nan[part], stored[part], stamps[part], s))
                    newest = idx[np.append(s[idx][1:] != s[idx][:-1], True)]
                    s, v = s[newest], v[newest]
            out.setdefault(run_id, {})[key] = Curve(key, s, v, unstepped=unstepped)
        start = end


def _read_sql(engine, run_ids: Sequence[str]) -> dict[str, dict[str, Curve]]:
    """All metric points of ``run_ids`` with read-only SELECTs on MLflow's ``metrics`` table."""
    import sqlalchemy as sa

    m = sa.table("metrics", sa.column("run_uuid"), sa.column("key"), sa.column("step"),
                 sa.column("timestamp"), sa.column("value"), sa.column("is_nan"))
    out: dict[str, dict[str, Curve]] = {}
    # Only strings shaped like MLflow run ids reach the SQL text (others name no run anyway), so
    # no quoting rule of any database can be played with through an id given on the command line.
    run_ids = [r for r in map(str, run_ids) if RUN_ID_PATTERN.fullmatch(r)]
    for begin in range(0, len(run_ids), SQL_CHUNK):
        chunk = run_ids[begin:begin + SQL_CHUNK]
        # This order is MLflow's index (run_uuid, key, step): no sort in the database. Points
        # logged twice at one step are resolved in numpy.
        query = (sa.select(m.c.run_uuid, m.c.key, m.c.step, m.c.timestamp, m.c.value, m.c.is_nan)
                 .where(m.c.run_uuid.in_(chunk))
                 .order_by(m.c.run_uuid, m.c.key, m.c.step))
        with gc_paused():  # hundreds of thousands of fresh tuples would trigger GC passes
            rows = fetch_all(engine, query)
            _curves_from_sorted_rows(rows, out)
        del rows
    return out


def sql_history_stats(engine, run_ids: Sequence[str]) -> dict[str, tuple[tuple, ...]]:
    """Per run, its user metrics' rows summarized by SQL: (key, rows, first step, last step) for
    each key, sorted by key; a run without metric rows is left out.

    MLflow only ever appends metric rows, so a history whose summary is unchanged has gained no
    point; the summary is read with one GROUP BY on MLflow's (run_uuid, key, step) index alone,
    without fetching the points (``unchanged.history_digest``, the re-diagnosis shortcut of
    ``diagnose_runs``). Timestamps are left out: they are not in that index.
    """
    import sqlalchemy as sa

    m = sa.table("metrics", sa.column("run_uuid"), sa.column("key"), sa.column("step"))
    run_ids = [r for r in map(str, run_ids) if RUN_ID_PATTERN.fullmatch(r)]
    out: dict[str, list[tuple]] = {}
    for begin in range(0, len(run_ids), SQL_CHUNK):
        query = (sa.select(m.c.run_uuid, m.c.key, sa.func.count(), sa.func.min(m.c.step),
                           sa.func.max(m.c.step))
                 .where(m.c.run_uuid.in_(run_ids[begin:begin + SQL_CHUNK]))
                 .group_by(m.c.run_uuid, m.c.key))
        for run_id, key, *counts in fetch_all(engine, query):
            if not is_own_key(key):
                out.setdefault(run_id, []).append((key, *map(int, counts)))
    return {run_id: tuple(sorted(rows)) for run_id, rows in out.items()}


def client_row_batches(client: MlflowClient, keys_by_run: Mapping[str, Iterable[str]]
                        ) -> Iterator[list[tuple]]:
    """Rows (run_id, key, step, timestamp, value) of one get_metric_history call per (run, key),
    in the client's order, THREADS calls at a time (the slow, general path)."""
    jobs = [(rid, key) for rid, keys in keys_by_run.items() for key in keys]

    def fetch(job: tuple[str, str]) -> list[tuple]:
        rid, key = job
        return [(rid, key, p.step, p.timestamp, p.value) for p in client.get_metric_history(rid, key)]

    with ThreadPoolExecutor(THREADS) as pool:
        yield from pool.map(fetch, jobs)


def curves_of_rows(batches: Iterable[list[tuple]]) -> dict[str, dict[str, Curve]]:
    """Run id -> key -> curve, from batches of ``(run_id, key, step, timestamp, value)`` rows (as
    ``client_row_batches`` and ``http_row_batches`` yield them)."""
    out: dict[str, dict[str, Curve]] = {}
    for rows in batches:
        _curves_from_rows(rows, out)
    return out


def _read_client(client: MlflowClient, keys_by_run: Mapping[str, Iterable[str]]
                 ) -> dict[str, dict[str, Curve]]:
    """One get_metric_history call per (run, key), THREADS at a time (the slow, general path)."""
    return curves_of_rows(client_row_batches(client, keys_by_run))


class BulkUnavailable(Exception):
    """The server has no usable bulk-history endpoint."""


def _bulk_request(creds, key: str, run_ids: Sequence[str]) -> list[dict]:
    from mlflow.utils.rest_utils import http_request

    response = http_request(creds, HTTP_BULK_ENDPOINT, "GET",
                            params={"run_id": list(run_ids), "metric_key": key,
                                    "max_results": HTTP_BULK_MAX})
    if response.status_code != 200:
        # Missing on this server (404), disabled, or limited differently: the public API is the
        # fallback, and it reports real errors (auth, run not found) in its own words.
        raise BulkUnavailable(f"HTTP {response.status_code}")
    try:
        return response.json().get("metrics", [])
    except ValueError as exc:  # not JSON: a proxy's page, not MLflow's answer
        raise BulkUnavailable("response is not JSON") from exc


def http_row_batches(client: MlflowClient, keys_by_run: Mapping[str, Iterable[str]]
                      ) -> Iterator[list[tuple]]:
    """Rows (run_id, key, step, timestamp, value) through the server's bulk endpoint, per key in
    groups of 100 runs, THREADS requests at a time; each batch sorted by (run, key) and otherwise
    in the server's order (get_metric_history's). Raises BulkUnavailable before the first batch
    when the server has no usable endpoint."""
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

    with ThreadPoolExecutor(THREADS) as pool:
        for rows in pool.map(fetch, jobs):
            # Responses are sorted by run id, then (timestamp, step, value) within a run.
            rows.sort(key=itemgetter(0, 1))  # stable: keeps the server's order within (run, key)
            yield rows
    if single:
        keys: dict[str, list[str]] = {}
        for rid, key in single:
            keys.setdefault(rid, []).append(key)
        yield from client_row_batches(client, keys)


def _read_http(client: MlflowClient, keys_by_run: Mapping[str, Iterable[str]]
               ) -> dict[str, dict[str, Curve]]:
    """Histories through the server's bulk endpoint, per key in groups of 100 runs."""
    return curves_of_rows(http_row_batches(client, keys_by_run))


def check_database_uri(database_uri: str) -> None:
    """A ValueError unless ``database_uri`` names a SQL database (checked before any connect)."""
    if not is_sql(database_uri):
        raise ValueError(f"database_uri must be MLflow's backend database (postgresql://, "
                         f"mysql://, mssql://, sqlite:///...), not {database_uri!r}")


def database_engine(database_uri: str) -> tuple[object | None, str]:
    """A SQLAlchemy engine on MLflow's backend database ``database_uri`` and ``"sql"`` when it can
    be reached now (a connect of at most 3 seconds that finds MLflow's ``metrics`` table), else
    ``(None, why)``. A URI that is not a SQL database is a ValueError (``check_database_uri``)."""
    check_database_uri(database_uri)
    import sqlalchemy as sa

    scheme = uri_scheme(database_uri)
    if scheme == "sqlite":
        from pathlib import Path

        path = database_uri.split(":///", 1)[-1]
        if not path or not Path(path).is_file():  # connecting would create an empty database
            return None, f"no SQLite database at {path!r}"
    args = {"connect_timeout": 3} if scheme in ("postgresql", "mysql") else {}
    try:
        engine = sa.create_engine(database_uri, connect_args=args, pool_pre_ping=True)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1 FROM metrics WHERE 1 = 0"))
    except Exception as exc:  # any driver's refusal: unreachable, wrong password, not MLflow's
        return None, f"database not reachable: {one_line(exc)}"
    return engine, "sql"


def read_curves(client: MlflowClient, uri: str, runs: Sequence[Run],
                 database: object | None = None) -> dict[str, dict[str, Curve]]:
    """Full histories of the user metrics of ``runs`` (keys known from each run's latest metrics);
    from ``database`` (an engine from ``database_engine``) when given, any run it lacks through
    ``uri``."""
    run_ids = [r.info.run_id for r in runs]
    if database is not None and not is_sql(uri):
        read = _read_sql(database, run_ids)
        # A run whose logged keys the database does not hold is not in it: read it from the server.
        lacking = [r for r in runs if not {k for k in r.data.metrics if not is_own_key(k)}
                   <= set(read.get(r.info.run_id, {}))]
        if lacking:
            read.update(read_curves(client, uri, lacking))
        return {rid: user_curves(read.get(rid, {})) for rid in run_ids}
    if is_sql(uri):
        read = _read_sql(sql_engine(client, uri), run_ids)
    else:
        keys = {r.info.run_id: [k for k in r.data.metrics if not is_own_key(k)] for r in runs}
        read = None
        if is_http(uri):
            try:
                read = _read_http(client, keys)
            except BulkUnavailable:
                read = None
        if read is None:
            read = _read_client(client, keys)
    return {rid: user_curves(read.get(rid, {})) for rid in run_ids}


def read_run_curves(run_ids: Sequence[str], *, tracking_uri: str | None = None
                    ) -> dict[str, dict[str, Curve]]:
    """Full metric histories of many runs at once: run id -> metric name -> Curve.

    Results equal ``Curve.from_points(key, steps, values, order=timestamps)`` over
    ``MlflowClient.get_metric_history`` for every key, whichever path is taken (module docstring).
    The ``plateau/``, ``gap/`` and ``scaling/`` results this package writes are left out. A run id
    that is unknown or has no metrics maps to an empty dict (``diagnose_runs`` names the reason).
    """
    uri = existing_store(tracking_uri)
    check_reachable(uri)
    client = client_for(uri)
    ids = list(dict.fromkeys(run_ids))
    if is_sql(uri):
        read = _read_sql(sql_engine(client, uri), ids)
        return {rid: user_curves(read.get(rid, {})) for rid in ids}
    runs = [r for r in get_runs(client, ids) if not isinstance(r, RunFailure)]
    read = read_curves(client, uri, runs)
    return {rid: read.get(rid, {}) for rid in ids}

