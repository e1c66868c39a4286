"""Writing the diagnoses of many runs in one transaction, on SQLite and PostgreSQL stores.

MLflow's ``log_batch`` writes one run a call, and commits its metrics and its tags separately;
each commit waits for the disk (SQLite) or the database's fsync (PostgreSQL). On 1,000 runs those
commits cost more than reading every history, so ``diagnose`` writes the runs of a SQL tracking
store ``RUNS_PER_COMMIT`` at a time, in one transaction each, with the rows ``log_batch`` writes:

- a ``metrics`` row per metric, with MLflow's own encoding (the store's ``sanitize_metric_value``:
  NaN as ``is_nan`` with value 0, +/-inf as +/-1.7976931348623157e308);
- ``latest_metrics`` inserted, or updated where the new point is more recent by (step, timestamp,
  value), MLflow's rule; the rows are locked first (``FOR UPDATE`` on PostgreSQL) as MLflow does;
- ``tags`` inserted or updated.

The tables are MLflow's own definitions (``mlflow.store.tracking.dbmodels.models``), checked for the
columns written here, on the engine of the client's store, which MLflow opened only after checking
the database's schema is the one it knows. Only active runs are written this way, and only values
MLflow's validation accepts. Anything else goes through ``log_batch`` one run at a time, and so
does the whole transaction when anything in it fails (a row another process wrote in between, a
locked database, a deadlock): it is rolled back, so a run is never half written and never lost,
and a failure names one run, not the batch. ``MLFLOW_PLATEAU_BATCH_WRITES=0`` turns this off.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from .store import uri_scheme
from .writing import SQLITE_WRITES, PendingWrite, log_metric_batch

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

RUNS_PER_COMMIT = 100
_ROWS_PER_STATEMENT = 150  # 6 columns: 900 bound values, under SQLite's oldest limit of 999
_METRIC_COLUMNS = ("run_uuid", "key", "value", "timestamp", "step", "is_nan")
_SCHEMES = ("sqlite", "postgresql")
_COLUMNS = {
    "metrics": set(_METRIC_COLUMNS),
    "latest_metrics": set(_METRIC_COLUMNS),
    "tags": {"key", "value", "run_uuid"},
    "runs": {"run_uuid", "lifecycle_stage"},
}


def batch_writes(uri: str) -> bool:
    """Whether ``diagnose`` writes the runs of ``uri`` in shared transactions."""
    return (uri_scheme(uri) in _SCHEMES
            and os.environ.get("MLFLOW_PLATEAU_BATCH_WRITES", "1").strip() != "0")


@lru_cache(maxsize=1)
def _tables() -> dict | None:
    """MLflow's table definitions, or None when they lack a column written here."""
    try:
        from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlRun, SqlTag
    except ImportError:
        return None
    tables = {m.__table__.name: m.__table__ for m in (SqlMetric, SqlLatestMetric, SqlTag, SqlRun)}
    for name, columns in _COLUMNS.items():
        if name not in tables or not columns <= {c.name for c in tables[name].columns}:
            return None
    # A table gaining a required column this module does not fill would make every insert fail.
    for name in ("metrics", "latest_metrics", "tags"):
        extra = {c.name for c in tables[name].columns if not c.nullable and c.default is None
                 and c.server_default is None} - _COLUMNS[name]
        if extra:
            return None
    return tables


@lru_cache(maxsize=256)
def _keys_valid(metric_keys: tuple[str, ...], tag_keys: tuple[str, ...]) -> bool:
    """Whether MLflow's ``log_batch`` validation accepts these names (checked once per set)."""
    from mlflow.entities import Metric, RunTag
    from mlflow.utils.validation import _validate_batch_log_data, _validate_batch_log_limits

    metrics = [Metric(k, 0.0, 0, 0) for k in metric_keys]
    tags = [RunTag(k, "") for k in tag_keys]
    try:
        _validate_batch_log_data(metrics, [], tags)
        _validate_batch_log_limits(metrics, [], tags)
    except Exception:
        return False
    return True


def _valid(write: PendingWrite) -> bool:
    """Whether MLflow's validation of a ``log_batch`` accepts this write (names, sizes, types)."""
    from mlflow.utils.validation import MAX_TAG_VAL_LENGTH

    return (_keys_valid(tuple(sorted(write.metrics)), tuple(sorted(write.tags)))
            and all(isinstance(v, float) for v in write.metrics.values())
            and all(isinstance(v, str) and len(v) <= MAX_TAG_VAL_LENGTH
                    for v in write.tags.values()))


def log_many(client: MlflowClient, writes: Sequence[PendingWrite]) -> dict[str, Exception]:
    """Log the metrics and tags of ``writes``; returns the runs whose write failed, with why.

    On a SQL store (``batch_writes``) in transactions of ``RUNS_PER_COMMIT`` runs; otherwise, and
    for the runs a transaction could not take, one ``log_batch`` each.
    """
    writes = [w for w in writes if w.metrics or w.tags]
    alone: list[PendingWrite] = []
    engine = getattr(client._tracking_client.store, "engine", None)
    if writes and batch_writes(client.tracking_uri) and engine is not None and _tables() is not None:
        valid = [_valid(w) for w in writes]
        batchable = [w for w, ok in zip(writes, valid, strict=True) if ok]
        alone = [w for w, ok in zip(writes, valid, strict=True) if not ok]
        for start in range(0, len(batchable), RUNS_PER_COMMIT):
            chunk = batchable[start:start + RUNS_PER_COMMIT]
            try:
                inactive = _write_in_one_transaction(client, engine, chunk)
            except Exception:  # rolled back: each run of the chunk goes through log_batch
                alone.extend(chunk)
            else:
                alone.extend(w for w in chunk if w.run_id in inactive)
    else:
        alone = writes
    failures: dict[str, Exception] = {}
    for write in alone:
        try:
            log_metric_batch(client, write.run_id, write.metrics, write.tags, timestamp=write.timestamp)
        except Exception as exc:
            failures[write.run_id] = exc
    return failures


def _write_in_one_transaction(client: MlflowClient, engine, writes: Sequence[PendingWrite]
                              ) -> set[str]:
    """Write ``writes`` in one transaction on ``engine`` (the client's store's); returns the run
    ids left out (not active runs)."""
    import sqlalchemy as sa

    t = _tables()
    runs, metrics, latest, tags = t["runs"], t["metrics"], t["latest_metrics"], t["tags"]
    sanitized = client._tracking_client.store.sanitize_metric_value  # MLflow's encoding, as is
    writes = sorted(writes, key=lambda w: w.run_id)  # one locking order: no deadlock between two
    ids = [w.run_id for w in writes]
    metric_keys = sorted({k for w in writes for k in w.metrics})
    tag_keys = sorted({k for w in writes for k in w.tags})
    sqlite = uri_scheme(client.tracking_uri) == "sqlite"
    with SQLITE_WRITES if sqlite else contextlib.nullcontext(), engine.begin() as conn:
        if sqlite:
            # Take SQLite's write lock before reading latest_metrics: Python's sqlite3 would begin
            # the transaction only at the first write, and another process's newer value
            # committed in between would be overwritten.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        active = {row[0] for row in conn.execute(
            sa.select(runs.c.run_uuid).where(runs.c.run_uuid.in_(ids),
                                             runs.c.lifecycle_stage == "active"))}
        newest = {}
        if metric_keys:
            query = (sa.select(latest.c.run_uuid, latest.c.key, latest.c.step, latest.c.timestamp,
                               latest.c.value)
                     .where(latest.c.run_uuid.in_(ids), latest.c.key.in_(metric_keys))
                     .order_by(latest.c.run_uuid, latest.c.key).with_for_update())
            newest = {(r[0], r[1]): (r[2], r[3], r[4]) for r in conn.execute(query)}
        have_tags = set()
        if tag_keys:
            have_tags = {(r[0], r[1]) for r in conn.execute(
                sa.select(tags.c.run_uuid, tags.c.key)
                .where(tags.c.run_uuid.in_(ids), tags.c.key.in_(tag_keys)))}
        rows, latest_rows, latest_stale, tag_rows, tags_stale = [], [], [], [], []
        for w in writes:
            if w.run_id not in active:
                continue
            for key in sorted(w.metrics):
                is_nan, value = sanitized(w.metrics[key])
                row = (w.run_id, key, float(value), w.timestamp, 0, bool(is_nan))
                rows.append(row)
                old = newest.get((w.run_id, key))
                if old is None or (0, w.timestamp, value) > old:
                    latest_rows.append(row)
                    if old is not None:
                        latest_stale.append((w.run_id, key))
            for key in sorted(w.tags):
                tag_rows.append((w.run_id, key, w.tags[key]))
                if (w.run_id, key) in have_tags:
                    tags_stale.append((w.run_id, key))
        # Rows replaced are deleted and inserted again, many rows a statement, as plain SQL:
        # sqlite3 gives up the GIL on every statement step (taking it back from the threads that
        # compute diagnoses cost more than the writing when rows went one a step), and SQLAlchemy
        # compiling a statement of many rows costs more than executing it.
        delete = "DELETE FROM {table} WHERE ({columns}) IN ({rows})"
        _execute_rows(conn, delete, latest, ("run_uuid", "key"), latest_stale)
        _execute_rows(conn, delete, tags, ("run_uuid", "key"), tags_stale)
        _execute_rows(conn, _INSERT, metrics, _METRIC_COLUMNS, rows)
        _execute_rows(conn, _INSERT, latest, _METRIC_COLUMNS, latest_rows)
        _execute_rows(conn, _INSERT, tags, ("run_uuid", "key", "value"), tag_rows)
    return set(ids) - active


_INSERT = "INSERT INTO {table} ({columns}) {rows}"


def _execute_rows(conn, template: str, table, columns: Sequence[str], rows: list[tuple]) -> None:
    """``template`` with ``{table}``, ``{columns}`` and ``{rows}``, the rows as a row source, run
    on the DBAPI cursor.

    PostgreSQL: one statement whatever the number of rows, ``SELECT * FROM unnest(%s::type[],
    ...)`` with one array a column (a short statement: psycopg parses a query of many placeholders
    anew each time, 5 ms for 900). Elsewhere ``VALUES (?, ...), ...``, ``_ROWS_PER_STATEMENT``
    rows a statement (under SQLite's limit on bound values)."""
    if not rows:
        return
    quote = conn.dialect.identifier_preparer
    names = ", ".join(quote.quote(c) for c in columns)
    table_name = quote.format_table(table)
    if conn.dialect.name == "postgresql":
        types = [table.c[c].type.compile(dialect=conn.dialect) for c in columns]
        source = "SELECT * FROM unnest(" + ", ".join(f"%s::{t}[]" for t in types) + ")"
        sql = template.format(table=table_name, columns=names, rows=source)
        conn.exec_driver_sql(sql, tuple(list(column) for column in zip(*rows, strict=True)))
        return
    marks = {"qmark": "?", "format": "%s", "pyformat": "%s"}
    mark = marks[conn.dialect.paramstyle]  # another style: KeyError, and log_batch does the runs
    one = "(" + ", ".join([mark] * len(columns)) + ")"
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start:start + _ROWS_PER_STATEMENT]
        source = "VALUES " + ", ".join([one] * len(chunk))
        sql = template.format(table=table_name, columns=names, rows=source)
        conn.exec_driver_sql(sql, tuple(value for row in chunk for value in row))
