"""Many runs' diagnoses in one transaction (``tracking.batch_writes``), on SQLite and PostgreSQL.

The rows written must be exactly those MLflow's ``log_batch`` writes (``metrics``,
``latest_metrics``, ``tags``), NaN and +/-inf included, with existing values updated or kept by
MLflow's rule; a run that cannot be written that way (deleted, invalid) fails alone with MLflow's
own message; a transaction that fails (a row already there) is rolled back and every run of it is
written by ``log_batch``; and ``diagnose`` leaves the store as it does with batch writes off.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import Backend, log_curves
from mlflow.entities import Metric, RunTag
from test_tracking_backends import curves, sql_count

from mlflow_plateau.tracking import RunFailure, diagnose_runs
from mlflow_plateau.tracking import batch_writes as bw
from mlflow_plateau.tracking.writing import PendingWrite, log_metric_batch

WRITE_TS = 10_000


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Backend:
    """A SQLite store and a PostgreSQL store (a server is written through its API, never here)."""
    fixture = "tracking_uri" if request.param == "sqlite" else "pg_tracking_uri"
    uri = request.getfixturevalue(fixture)
    return Backend(request.param, uri, uri)


def rows(backend: Backend, run_ids: list[str]) -> dict[str, list[tuple]]:
    """The diagnosis's metrics, latest_metrics and tags rows of the runs, by run index."""
    index = {r: i for i, r in enumerate(run_ids)}
    out = {}
    for table, columns in (("metrics", "key, value, timestamp, step, is_nan"),
                           ("latest_metrics", "key, value, timestamp, step, is_nan"),
                           ("tags", "key, value")):
        found = sql_count(backend, f"SELECT run_uuid, {columns} FROM {table}")
        # the diagnosis's rows (the user's own curves were logged at different times)
        out[table] = sorted((index[r[0]], *r[1:]) for r in found
                            if r[0] in index and ("/" in r[1] or r[1].startswith("plateau.")))
    return out


def prepared_runs(client, experiment_id: str, n: int) -> list[str]:
    """Runs holding values an earlier diagnosis left: an older ``plateau/epoch``, a newer
    ``gap/final`` (it stays latest), a ``best/acc`` to retire, and tags to change or keep."""
    ids = []
    for i in range(n):
        rid = log_curves(client, experiment_id, {k: list(v) for k, v in curves(i).items()})
        client.log_batch(rid, metrics=[Metric("plateau/epoch", 3.0, WRITE_TS - 500, 0),
                                       Metric("gap/final", 0.5, WRITE_TS + 500, 0),
                                       Metric("best/acc", 0.9, WRITE_TS - 500, 0)],
                         tags=[RunTag("plateau.verdict", "healthy"),
                               RunTag("plateau.version", "0.0.1")])
        ids.append(rid)
    return ids


def writes_for(run_ids: list[str]) -> list[PendingWrite]:
    return [PendingWrite(rid, {"plateau/epoch": 7.0 + i, "gap/final": 0.25, "best/acc": math.nan,
                               "forecast/value_at_2x": math.inf, "gap/trend": -math.inf,
                               "plateau/best_value": 0.125},
                         {"plateau.verdict": "overfitting", "plateau.summary": f"run {i}",
                          "plateau.version": "0.0.1"}, WRITE_TS)
            for i, rid in enumerate(run_ids)]


def refuse_log_batch(*_args, **_kwargs):
    raise AssertionError("log_batch was called: the runs were not written in one transaction")


def test_one_transaction_writes_exactly_what_log_batch_writes(store: Backend, monkeypatch):
    client = store.client()
    by_log_batch = prepared_runs(client, client.create_experiment("one-by-one"), 4)
    together = prepared_runs(client, client.create_experiment("together"), 4)
    for write in writes_for(by_log_batch):
        log_metric_batch(client, write.run_id, write.metrics, write.tags, timestamp=write.timestamp)
    monkeypatch.setattr(bw, "log_metric_batch", refuse_log_batch)
    assert bw.log_many(client, writes_for(together)) == {}
    expected = rows(store, by_log_batch)
    assert rows(store, together) == expected
    # What MLflow's API reads back: the newer gap/final kept, NaN and the infinities as logged.
    run = client.get_run(together[1])
    assert run.data.metrics["plateau/epoch"] == 8.0 and run.data.metrics["gap/final"] == 0.5
    assert math.isnan(run.data.metrics["best/acc"])
    assert run.data.metrics["forecast/value_at_2x"] == np.finfo(np.float64).max
    assert run.data.tags["plateau.verdict"] == "overfitting"
    assert run.data.tags["plateau.summary"] == "run 1"
    assert len(client.get_metric_history(together[1], "plateau/epoch")) == 2


def test_a_deleted_or_invalid_run_fails_alone_and_the_others_are_written(store: Backend):
    client = store.client()
    ids = prepared_runs(client, client.create_experiment("mixed"), 4)
    client.delete_run(ids[1])
    writes = writes_for(ids)
    writes[2] = PendingWrite(ids[2], {"best/" + "x" * 300: 1.0}, {}, WRITE_TS)
    failures = bw.log_many(client, writes)
    assert set(failures) == {ids[1], ids[2]}
    assert "active" in str(failures[ids[1]]) and ids[1] in str(failures[ids[1]])
    assert "x" * 200 in str(failures[ids[2]]) or "250" in str(failures[ids[2]])
    for rid in (ids[0], ids[3]):
        assert client.get_run(rid).data.tags["plateau.verdict"] == "overfitting"
    assert "best/" + "x" * 300 not in client.get_run(ids[2]).data.metrics


def test_a_row_already_there_rolls_back_and_each_run_goes_through_log_batch(store: Backend):
    client = store.client()
    ids = prepared_runs(client, client.create_experiment("conflict"), 3)
    writes = writes_for(ids)
    # Another process wrote run 1's diagnosis first, the same rows (the timestamps are a function
    # of the run): the transaction's insert conflicts and nothing of it stays.
    log_metric_batch(client, ids[1], writes[1].metrics, writes[1].tags, timestamp=WRITE_TS)
    assert bw.log_many(client, writes) == {}
    found = rows(store, ids)["metrics"]
    written = [r for r in found if r[3] == WRITE_TS]
    assert len(written) == len(set(written)) == 3 * len(writes[0].metrics)


def test_diagnose_leaves_the_store_as_log_batch_does(store: Backend, monkeypatch):
    client = store.client()
    results = {}
    for name, setting in (("one-by-one", "0"), ("together", "1")):
        monkeypatch.setenv("MLFLOW_PLATEAU_BATCH_WRITES", setting)
        if setting == "1":  # every run must go through the shared transaction
            monkeypatch.setattr(bw, "log_metric_batch", refuse_log_batch)
        exp = client.create_experiment(name)
        ids = [log_curves(client, exp, {k: list(v) for k, v in curves(i).items()},
                          run_name=f"r{i}") for i in range(12)]
        done = list(diagnose_runs(experiment_id=exp, tracking_uri=store.uri, artifacts="json"))
        assert not [r for r in done if isinstance(r, RunFailure)]
        if setting == "1":
            # the same again writes nothing: one row per diagnosis value, as before
            before = rows(store, ids)
            again = list(diagnose_runs(experiment_id=exp, tracking_uri=store.uri,
                                       artifacts="json"))
            assert len(again) == 12 and rows(store, ids) == before
        by_name = {}
        for rid in ids:
            run = client.get_run(rid)
            own = {k: v for k, v in run.data.metrics.items() if "/" in k}
            history = {k: len(client.get_metric_history(rid, k)) for k in own}
            tags = {k: v for k, v in run.data.tags.items()
                    if k.startswith("plateau.") and k != "plateau.digest"}
            by_name[run.info.run_name] = (own, history, tags)
        results[name] = by_name
    assert results["together"] == results["one-by-one"]
    assert all(own for own, _, _ in results["together"].values())


def test_batch_writes_only_on_sql_stores_and_can_be_turned_off(monkeypatch):
    assert bw.batch_writes("sqlite:///x.db") and bw.batch_writes("postgresql://h/db")
    assert not bw.batch_writes("http://127.0.0.1:5000")
    assert not bw.batch_writes("file:///tmp/mlruns")
    monkeypatch.setenv("MLFLOW_PLATEAU_BATCH_WRITES", "0")
    assert not bw.batch_writes("sqlite:///x.db")
