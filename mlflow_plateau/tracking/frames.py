"""Metric histories as pandas DataFrames: the batched reader of ``diagnose``, made public.

- ``read_histories(run_ids | experiment, keys=None) -> DataFrame``: every metric point of the runs,
  long format, columns ``run_id`` (str), ``key`` (str), ``step`` (int64), ``value`` (float64),
  ``timestamp`` (int64, ms). Within one (run, key) the rows are exactly
  ``MlflowClient.get_metric_history(run_id, key)``, point for point and in its order (timestamp,
  step, value): a step logged twice gives two rows, NaN stays NaN, and the +/-inf that MLflow's SQL
  stores keep as +/-1.7976931348623157e308 is given back as +/-inf. Runs come in the order given
  (an experiment's: newest first), keys sorted. The results this package writes (``plateau/``,
  ``gap/``, ``scaling/``) are rows like any other; ``keys`` narrows the read to some names.
- ``iter_histories(...)``: the same rows as one frame per page of ``page_size`` runs (a page whose
  runs have no metrics is skipped), so an experiment of any size is read in bounded memory.
- ``history_frame(run_id) -> DataFrame``: one run as epochs x metrics, an ``epoch`` column and one
  column per metric of the run (its own results left out), a step logged twice keeping the newest
  point and the point ``mlflow.tensorflow`` re-logs after restoring the best weights dropped (as
  ``diagnose`` reads a run); a metric logged without steps is numbered in logging order, and left
  out when a metric with steps fills its slot (``curves.shadowed_unstepped``); a metric not
  logged at an epoch is NaN there. It is the ``data=`` that ``mlflow.models.evaluate(...,
  model_type="training-curve", evaluators="plateau")`` takes.

``list_run_ids(experiment...)``: the ids ``diagnose_runs`` would diagnose for an experiment (the
Spark face spreads them over tasks).

The paths are those of ``history`` (see its docstring): SQL stores are read with read-only
``SELECT``s on MLflow's ``runs`` and ``metrics`` tables (an experiment's runs are listed from the
``runs`` table unless a filter needs ``search_runs``); a tracking server through its bulk-history
endpoint, per key in groups of 100 runs, the runs and their keys listed with ``search_runs``;
other stores with ``get_metric_history`` in a thread pool. Bad input raises ValueError in one line:
no or conflicting selectors, an unknown or deleted experiment, a run id that is not a valid id or
names no run (the first such id is named), a key that is not a string.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..curves import Curve, as_epochs, is_epoch_metric, shadowed_unstepped
from .history import (
    BulkUnavailable,
    client_row_batches,
    fetch_all,
    gc_paused,
    http_row_batches,
    infinite_restored,
    int64_column,
    sql_engine,
)
from .listing import sql_experiment_run_ids
from .runs import experiment_id_of, iter_runs, selected_run_ids
from .store import (
    NOT_TRAINING_KINDS,
    PAGE_SIZE,
    RUN_ID_PATTERN,
    SQL_CHUNK,
    TAG_KIND,
    RunFailure,
    check_reachable,
    client_for,
    existing_store,
    get_runs,
    is_http,
    is_sql,
)

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.tracking import MlflowClient

COLUMNS = ("run_id", "key", "step", "value", "timestamp")


def empty_histories() -> pd.DataFrame:
    """A frame with ``read_histories``' columns and dtypes and no rows."""
    import pandas as pd

    return pd.DataFrame({"run_id": pd.Series([], dtype=object), "key": pd.Series([], dtype=object),
                         "step": np.array([], np.int64), "value": np.array([], np.float64),
                         "timestamp": np.array([], np.int64)})


def _frame(run: Sequence, key: Sequence, step: Sequence, value: Sequence,
           stamp: Sequence) -> pd.DataFrame:
    import pandas as pd

    if len(run) == 0:
        return empty_histories()
    return pd.DataFrame({
        "run_id": np.asarray(run, dtype=object), "key": np.asarray(key, dtype=object),
        "step": int64_column(step),
        "value": infinite_restored(np.asarray(value, dtype=np.float64)),
        "timestamp": int64_column(stamp)})


def _ordered(frame: pd.DataFrame, run_order: Sequence[str], stored: np.ndarray | None = None
             ) -> pd.DataFrame:
    """Rows by run (in ``run_order``) and key; within a (run, key) by get_metric_history's
    (timestamp, step, stored value) when ``stored`` is given, else in the order they came (the
    client's or the server's, which is already that order). The sort is stable."""
    if frame.empty:
        return frame
    rank = {rid: i for i, rid in enumerate(run_order)}
    run_rank = np.fromiter((rank.get(r, len(rank)) for r in frame["run_id"]), np.int64,
                           count=len(frame))
    _, key_rank = np.unique(frame["key"].to_numpy(dtype=object).astype(str), return_inverse=True)
    within = () if stored is None else (stored, frame["step"].to_numpy(),
                                        frame["timestamp"].to_numpy())
    idx = np.lexsort((*within, key_rank, run_rank))
    return frame.iloc[idx].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# SQL stores


def _sql_existing(engine, run_ids: Sequence[str]) -> set[str]:
    import sqlalchemy as sa

    runs = sa.table("runs", sa.column("run_uuid"))
    found: set[str] = set()
    for begin in range(0, len(run_ids), SQL_CHUNK):
        query = sa.select(runs.c.run_uuid).where(runs.c.run_uuid.in_(run_ids[begin:begin + SQL_CHUNK]))
        found.update(r[0] for r in fetch_all(engine, query))
    return found


def _sql_rows(engine, run_ids: Sequence[str], keys: Sequence[str] | None) -> pd.DataFrame:
    import sqlalchemy as sa

    m = sa.table("metrics", sa.column("run_uuid"), sa.column("key"), sa.column("step"),
                 sa.column("timestamp"), sa.column("value"), sa.column("is_nan"))
    parts = []
    for begin in range(0, len(run_ids), SQL_CHUNK):
        query = (sa.select(m.c.run_uuid, m.c.key, m.c.step, m.c.timestamp, m.c.value, m.c.is_nan)
                 .where(m.c.run_uuid.in_(run_ids[begin:begin + SQL_CHUNK])))
        if keys is not None:
            query = query.where(m.c.key.in_(list(keys)))
        with gc_paused():
            rows = fetch_all(engine, query)
            if not rows:
                continue
            run, key, step, stamp, value, is_nan = zip(*rows, strict=True)
            del rows
            stored = np.asarray(value, dtype=np.float64)  # NaN is stored as 0 with is_nan = 1
            frame = _frame(run, key, step, np.where(np.asarray(is_nan, dtype=bool), np.nan, stored),
                           stamp)
            parts.append(_ordered(frame, run_ids[begin:begin + SQL_CHUNK], stored))
    return _concat(parts)


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    import pandas as pd

    parts = [p for p in parts if not p.empty]
    if not parts:
        return empty_histories()
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


# ---------------------------------------------------------------------------------------------
# Servers and other stores


def _client_rows(client: MlflowClient, uri: str, runs: Sequence, keys: Sequence[str] | None
                 ) -> pd.DataFrame:
    wanted = None if keys is None else set(keys)
    keys_by_run = {r.info.run_id: [k for k in sorted(r.data.metrics) if wanted is None or k in wanted]
                   for r in runs}
    batches = None
    if is_http(uri):
        try:
            batches = list(http_row_batches(client, keys_by_run))
        except BulkUnavailable:
            batches = None
    if batches is None:
        batches = list(client_row_batches(client, keys_by_run))
    rows = [row for batch in batches for row in batch]
    if not rows:
        return empty_histories()
    run, key, step, stamp, value = zip(*rows, strict=True)
    return _ordered(_frame(run, key, step, value, stamp), list(keys_by_run))


# ---------------------------------------------------------------------------------------------
# Public API


def _check_keys(keys: Sequence[str] | str | None) -> list[str] | None:
    if keys is None:
        return None
    if isinstance(keys, str):
        keys = [keys]
    keys = list(keys)
    bad = [k for k in keys if not isinstance(k, str)]
    if bad:
        raise ValueError(f"keys must be metric names (strings), not {bad[0]!r}")
    return keys


def _check_ids(run_ids: Sequence[str]) -> list[str]:
    ids = list(dict.fromkeys(run_ids))
    bad = next((r for r in ids if not RUN_ID_PATTERN.fullmatch(r)), None)
    if bad is not None:
        raise ValueError(f"run {bad!r}: not a valid run id")
    return ids


def iter_histories(run_ids: Sequence[str] | str | None = None, *,
                   experiment_name: str | None = None, experiment_id: str | None = None,
                   filter_string: str | None = None, keys: Sequence[str] | str | None = None,
                   tracking_uri: str | None = None, page_size: int = PAGE_SIZE
                   ) -> Iterator[pd.DataFrame]:
    """``read_histories``' rows as one DataFrame per page of ``page_size`` runs (module docstring).

    The selection is checked (and, for run ids, every id looked up) before the first frame.
    """
    if page_size < 1:
        raise ValueError(f"page_size must be >= 1, not {page_size}")
    selected = selected_run_ids(run_ids, experiment_name, experiment_id, filter_string)
    keys = _check_keys(keys)
    uri = existing_store(tracking_uri)
    check_reachable(uri)
    client = client_for(uri)
    if selected is not None:
        ids = _check_ids(selected)
        if is_sql(uri):
            engine = sql_engine(client, uri)
            found = _sql_existing(engine, ids)
            missing = next((r for r in ids if r not in found), None)
            if missing is not None:
                raise ValueError(f"run {missing}: run not found")
            return _sql_pages(engine, ids, keys, page_size)
        runs = get_runs(client, ids)
        failed = next((r for r in runs if isinstance(r, RunFailure)), None)
        if failed is not None:
            raise ValueError(f"run {failed.run_id}: {failed.reason}")
        pages: Iterator[list] = (runs[i:i + page_size] for i in range(0, len(runs), page_size))
        return _client_pages(client, uri, pages, keys)
    exp_id = experiment_id_of(client, experiment_name, experiment_id)
    if is_sql(uri) and not filter_string:
        engine = sql_engine(client, uri)
        return _sql_pages(engine, sql_experiment_run_ids(engine, exp_id), keys, page_size)
    pages = iter_runs(client, exp_id, filter_string, page_size)
    if is_sql(uri):  # a filter: search_runs selects, SQL reads
        engine = sql_engine(client, uri)
        return (frame for page in pages
                if not (frame := _sql_rows(engine, [r.info.run_id for r in page], keys)).empty)
    return _client_pages(client, uri, pages, keys)


def _sql_pages(engine, ids: list[str], keys: list[str] | None, page_size: int
               ) -> Iterator[pd.DataFrame]:
    for begin in range(0, len(ids), page_size):
        frame = _sql_rows(engine, ids[begin:begin + page_size], keys)
        if not frame.empty:
            yield frame


def _client_pages(client: MlflowClient, uri: str, pages: Iterator[list], keys: list[str] | None
                  ) -> Iterator[pd.DataFrame]:
    for page in pages:
        frame = _client_rows(client, uri, page, keys)
        if not frame.empty:
            yield frame


def read_histories(run_ids: Sequence[str] | str | None = None, *,
                   experiment_name: str | None = None, experiment_id: str | None = None,
                   filter_string: str | None = None, keys: Sequence[str] | str | None = None,
                   tracking_uri: str | None = None) -> pd.DataFrame:
    """Every metric point of the runs given (or of an experiment's active runs, optionally
    filtered) as one long DataFrame: ``run_id``, ``key``, ``step``, ``value``, ``timestamp``.

    Point for point what ``MlflowClient.get_metric_history`` returns (module docstring), read in
    batches. For experiments too large for memory, ``iter_histories`` yields it page by page.
    """
    return _concat(list(iter_histories(run_ids, experiment_name=experiment_name,
                                       experiment_id=experiment_id, filter_string=filter_string,
                                       keys=keys, tracking_uri=tracking_uri)))


def list_run_ids(*, experiment_name: str | None = None, experiment_id: str | None = None,
                 filter_string: str | None = None, tracking_uri: str | None = None) -> list[str]:
    """The ids of the runs ``diagnose_runs`` would diagnose for this experiment selection: its
    active runs (filtered), newest first, without the summary runs this package logs. On a SQL
    store without a filter they are listed from the ``runs`` and ``tags`` tables, else with
    ``search_runs`` pages. Raises ValueError for a bad selection (one line)."""
    if experiment_name is None and experiment_id is None:
        raise ValueError("no runs selected: give an experiment")
    selected_run_ids(None, experiment_name, experiment_id, filter_string)
    uri = existing_store(tracking_uri)
    check_reachable(uri)
    client = client_for(uri)
    exp_id = experiment_id_of(client, experiment_name, experiment_id)
    if is_sql(uri) and not filter_string:
        import sqlalchemy as sa

        engine = sql_engine(client, uri)
        tags = sa.table("tags", sa.column("run_uuid"), sa.column("key"), sa.column("value"))
        query = sa.select(tags.c.run_uuid).where(tags.c.key == TAG_KIND,
                                                  tags.c.value.in_(list(NOT_TRAINING_KINDS)))
        summaries = {r[0] for r in fetch_all(engine, query)}
        return [r for r in sql_experiment_run_ids(engine, exp_id) if r not in summaries]
    return [r.info.run_id for page in iter_runs(client, exp_id, filter_string)
            for r in page if r.data.tags.get(TAG_KIND) not in NOT_TRAINING_KINDS]


def history_frame(run_id: str, *, tracking_uri: str | None = None) -> pd.DataFrame:
    """One run's history as epochs x metrics (an ``epoch`` column, one column per metric): the
    ``data=`` of ``mlflow.models.evaluate(..., model_type="training-curve", evaluators="plateau")``.

    Raises ValueError naming the run when it does not exist, is deleted or has no metric history.
    """
    import pandas as pd

    from .history import read_run_curves

    (run_id,) = _check_ids([str(run_id)])
    uri = existing_store(tracking_uri)
    client = client_for(uri)
    check_reachable(uri)
    (run,) = get_runs(client, [run_id])
    if isinstance(run, RunFailure):
        raise ValueError(f"run {run_id}: {run.reason}")
    if run.info.lifecycle_stage == "deleted":  # as diagnose refuses it: restore it first
        raise ValueError(f"run {run_id}: run is deleted")
    curves: dict[str, Curve] = as_epochs(read_run_curves([run_id], tracking_uri=uri)[run_id])
    shadowed = shadowed_unstepped(curves)
    # An ``epoch`` metric (Lightning's, Hugging Face's) has numbered the epochs: the column is it.
    curves = {name: c for name, c in curves.items()
              if name not in shadowed and not is_epoch_metric(name)}
    if not curves:
        raise ValueError(f"run {run_id}: no metric history")
    epochs = np.unique(np.concatenate([c.epochs for c in curves.values()]))
    frame = pd.DataFrame({"epoch": epochs})
    for name in sorted(curves):
        curve = curves[name]
        column = np.full(epochs.size, np.nan)
        column[np.searchsorted(epochs, curve.epochs)] = curve.values
        frame[name] = column
    return frame
