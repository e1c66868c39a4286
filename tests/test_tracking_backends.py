"""The tracking package on three real backends: a SQLite store, a PostgreSQL store, and an
``mlflow server`` backed by PostgreSQL (the ``backend`` fixture of conftest).

On each: reads equal ``MlflowClient.get_metric_history`` point for point (NaN, +/-inf, a step logged
twice), through ``read_run_curves`` (what ``diagnose`` reads) and the public ``read_histories``;
re-diagnosing writes nothing new; bad input fails the run it names while the batch completes; two
``diagnose`` processes at once store one row per value; a batch killed part-way resumes without
duplicates. ``test_tracking.py`` and ``test_tracking_faults.py`` hold the SQLite-only details.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import Backend, free_port, log_curves, unique_name
from test_tracking import TRAIN, VAL, assert_same_curves, client_curves, histories, log_tricky_run

from mlflow_plateau.tracking import (
    GAP_METRICS,
    PLATEAU_METRICS,
    TAG_DIGEST,
    RunFailure,
    diagnose_run,
    diagnose_runs,
    read_run_curves,
)
from mlflow_plateau.tracking.frames import read_histories

SCRIPT = [sys.executable, "-m", "mlflow_plateau.cli"]
EPOCHS = np.arange(20)
TOP = np.finfo(np.float64).max
ROOT = Path(__file__).resolve().parent.parent


def curves(i: int) -> dict[str, np.ndarray]:
    val = 0.3 + (EPOCHS - 5.0 - i % 7) ** 2 / 300.0 + i / 1000
    return {"loss": 1.0 / (1.0 + EPOCHS) + 0.05, "val_loss": val}


def sql_count(backend: Backend, statement: str, **params) -> list[tuple]:
    """Rows of a read-only query on the database behind the backend."""
    import sqlalchemy as sa

    engine = sa.create_engine(backend.sql_uri)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(statement), params)]
    finally:
        engine.dispose()


def diagnosis_rows(backend: Backend, run_ids: list[str]) -> dict[tuple[str, str], int]:
    """(run, diagnosis metric) -> number of rows in MLflow's metrics table."""
    names = ", ".join(f"'{n}'" for n in PLATEAU_METRICS + GAP_METRICS)
    rows = sql_count(backend, f"SELECT run_uuid, key, COUNT(*) FROM metrics WHERE key IN ({names}) "
                              "GROUP BY run_uuid, key")
    wanted = set(run_ids)
    return {(r, k): n for r, k, n in rows if r in wanted}


def client_points(client, run_id: str) -> list[tuple]:
    """(key, step, timestamp, value) of every point, in get_metric_history's order, +/-inf given back."""
    out = []
    for key in sorted(client.get_run(run_id).data.metrics):
        for p in client.get_metric_history(run_id, key):
            value = math.copysign(math.inf, p.value) if abs(p.value) == TOP else p.value
            out.append((key, p.step, p.timestamp, "nan" if math.isnan(value) else value))
    return out


def test_reads_equal_get_metric_history(backend: Backend):
    client = backend.client()
    exp = client.create_experiment(unique_name("read"))
    runs = [log_tricky_run(client, exp) for _ in range(2)]
    runs.append(log_curves(client, exp, {"Train Loss": [3, 2, 1], "Val Loss": [4, 3, 3.5]}))
    empty = log_curves(client, exp, {})
    read = read_run_curves([*runs, empty, "0" * 32], tracking_uri=backend.uri)
    for run_id in runs:
        assert_same_curves(read[run_id], client_curves(client, run_id))
    assert read[runs[0]]["val_loss"].value_at(3) == 9.0
    assert read[runs[0]]["odd"].value_at(5) == math.inf
    assert read[empty] == {} and read["0" * 32] == {}

    frame = read_histories([*runs, empty], tracking_uri=backend.uri)
    assert list(frame.columns) == ["run_id", "key", "step", "value", "timestamp"]
    assert str(frame["step"].dtype) == "int64" and str(frame["timestamp"].dtype) == "int64"
    for run_id in [*runs, empty]:
        part = frame[frame["run_id"] == run_id]
        got = [(k, s, t, "nan" if math.isnan(v) else v)
               for k, s, t, v in zip(part["key"], part["step"], part["timestamp"], part["value"],
                                     strict=True)]
        assert got == client_points(client, run_id), run_id
    by_exp = read_histories(experiment_id=exp, tracking_uri=backend.uri)
    assert len(by_exp) == len(frame) and set(by_exp["run_id"]) == set(runs)
    only = read_histories(experiment_id=exp, keys=["val_loss"], tracking_uri=backend.uri)
    assert set(only["key"]) == {"val_loss"} and len(only) == 2 * (len(VAL) + 2)
    with pytest.raises(ValueError, match=f"run {'f' * 32}: run not found"):
        read_histories([runs[0], "f" * 32], tracking_uri=backend.uri)


def _as_compared(run) -> tuple:
    """A run's info and data as comparable values (NaN made equal to itself)."""
    metrics = sorted((m.key, m.step, m.timestamp, "nan" if math.isnan(m.value) else m.value)
                     for m in run.data._metric_objs)
    return (run.info.to_proto().SerializeToString(deterministic=True), sorted(run.data.params.items()),
            sorted(run.data.tags.items()), metrics)


def test_runs_listed_with_sql_equal_search_runs(backend: Backend):
    """What diagnose lists on a SQL store (``listing``) is what ``search_runs`` gives: the same
    runs in the same order, with the same info, params, tags and latest metrics."""
    from mlflow.entities import ViewType

    from mlflow_plateau.tracking.history import sql_engine
    from mlflow_plateau.tracking.listing import sql_experiment_run_ids, sql_runs

    client = backend.client()
    exp = client.create_experiment(unique_name("listing"))
    ids = [log_tricky_run(client, exp),
           log_curves(client, exp, {"val_loss": [1.0, float("nan")]}, params={"p": "1"},
                      tags={"mlflow.runName": "from-a-tag"}, terminate=False),
           log_curves(client, exp, {}, run_name="empty")]
    deleted = log_curves(client, exp, {"val_loss": [1.0]})
    client.delete_run(deleted)
    client.log_metric(ids[0], "late", float("-inf"))
    other = client.create_experiment(unique_name("other"))
    log_curves(client, other, {"val_loss": [1.0]})

    engine = sql_engine(backend.client(), backend.sql_uri)
    listed = sql_experiment_run_ids(engine, exp)
    expected = client.search_runs([exp], run_view_type=ViewType.ACTIVE_ONLY)
    assert listed == [r.info.run_id for r in expected] and set(listed) == set(ids)
    got = sql_runs(engine, [*listed, deleted, "0" * 32])
    assert [_as_compared(r) for r in got] == [_as_compared(r) for r in expected]
    assert {r.info.run_name for r in got} >= {"from-a-tag", "empty"}


def test_a_servers_database_is_read_with_sql_where_it_can_be_reached(pg_server, tmp_path,
                                                                    capsys):
    """``database_uri``: histories from the server's PostgreSQL with SQL when it answers, through
    the server when it does not or when it is another store's database; the same diagnoses on
    every path, and the writes always through the server."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(pg_server.uri)
    exp = client.create_experiment(unique_name("dburi"))
    runs = [log_tricky_run(client, exp), *(log_curves(client, exp, curves(i)) for i in range(5))]
    want = {d.run_id: d.to_dict() for d in diagnose_runs(runs, tracking_uri=pg_server.uri,
                                                         log=False)}
    assert len(want) == len(runs)

    batch = diagnose_runs(runs, tracking_uri=pg_server.uri, log=False,
                          database_uri=pg_server.backend_uri)
    assert batch.read_path == "sql" and batch.read_note is None
    assert {d.run_id: d.to_dict() for d in batch} == want

    start = time.monotonic()
    down = diagnose_runs(runs, tracking_uri=pg_server.uri, log=False,
                         database_uri=f"postgresql://nobody:s3cret@127.0.0.1:{free_port()}/mlflow")
    assert down.read_path == "http" and down.read_note.startswith("database not reachable")
    assert "s3cret" not in down.read_note
    assert {d.run_id: d.to_dict() for d in down} == want
    assert time.monotonic() - start < 30

    other = tmp_path / "other.db"  # an MLflow database, but not the server's: it holds no run
    MlflowClient(f"sqlite:///{other}").search_experiments()
    elsewhere = diagnose_runs(runs, tracking_uri=pg_server.uri, log=False,
                              database_uri=f"sqlite:///{other}")
    assert elsewhere.read_path == "sql"
    assert {d.run_id: d.to_dict() for d in elsewhere} == want
    missing = diagnose_runs(runs, tracking_uri=pg_server.uri, log=False,
                            database_uri=f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.read_path == "http" and "no SQLite database" in missing.read_note
    assert not (tmp_path / "none.db").exists()  # never created by looking
    with pytest.raises(ValueError, match="database_uri must be MLflow's backend database"):
        diagnose_runs(runs, tracking_uri=pg_server.uri, database_uri=pg_server.uri)

    from mlflow_plateau.cli import main

    dead = f"postgresql://nobody@127.0.0.1:{free_port()}/mlflow"
    assert main(["diagnose", runs[1], "--tracking-uri", pg_server.uri, "--database-uri", dead,
                 "--dry-run", "--json"]) == 0
    err = capsys.readouterr().err
    assert "--database-uri not used, histories are read through the tracking server " \
           "(database not reachable" in err

    written = list(diagnose_runs(runs[:2], tracking_uri=pg_server.uri, artifacts="json",
                                 database_uri=pg_server.backend_uri))
    for d in written:
        run = client.get_run(d.run_id)
        assert run.data.tags["plateau.verdict"] == d.verdict and TAG_DIGEST in run.data.tags
        assert client.list_artifacts(d.run_id, "plateau")[0].path == "plateau/diagnosis.json"


def test_rediagnosis_writes_nothing_new(backend: Backend):
    client = backend.client()
    exp = client.create_experiment(unique_name("idem"))
    run_id = log_tricky_run(client, exp)
    first = diagnose_run(run_id, tracking_uri=backend.uri, patience=3, artifacts="json")
    after_first = histories(client, run_id)
    tags = client.get_run(run_id).data.tags
    second = diagnose_run(run_id, tracking_uri=backend.uri, patience=3, artifacts="json")
    assert second.to_dict() == first.to_dict()
    assert histories(client, run_id) == after_first
    assert client.get_run(run_id).data.tags == tags
    assert set(diagnosis_rows(backend, [run_id]).values()) == {1}
    doc = json.loads(Path(client.download_artifacts(run_id, "plateau/diagnosis.json")).read_text())
    assert doc["run_id"] == run_id and doc["verdict"] == first.verdict


def test_bad_input_fails_the_run_it_names_and_the_batch_completes(backend: Backend):
    client = backend.client()
    exp = client.create_experiment(unique_name("bad"))
    good = log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL})
    train_only = log_curves(client, exp, {"loss": TRAIN})
    no_metrics = log_curves(client, exp, {}, params={"lr": "1"})
    deleted = log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL})
    client.delete_run(deleted)
    unknown, hostile = "f" * 32, "x' OR '1'='1"
    results = list(diagnose_runs([unknown, hostile, train_only, good, no_metrics, deleted],
                                 tracking_uri=backend.uri, artifacts="none"))
    reasons = {r.run_id: r.reason for r in results if isinstance(r, RunFailure)}
    assert reasons == {unknown: "run not found", hostile: "not a valid run id",
                       train_only: reasons[train_only], no_metrics: "no metric history",
                       deleted: "run is deleted"}
    assert reasons[train_only].startswith("no validation metric (metrics: loss)")
    assert not isinstance(results[3], RunFailure)
    with pytest.raises(ValueError, match=f"run {unknown}: run not found"):
        diagnose_run(unknown, tracking_uri=backend.uri)
    with pytest.raises(ValueError, match="not a valid run id"):
        read_histories([hostile], tracking_uri=backend.uri)
    with pytest.raises(ValueError, match="experiment 'no-such-exp' not found"):
        read_histories(experiment_name="no-such-exp", tracking_uri=backend.uri)


def _command(backend: Backend, experiment: str) -> list[str]:
    return [*SCRIPT, "diagnose", "--experiment-name", experiment, "--artifacts", "json", "--json",
            "--tracking-uri", backend.uri]


def _env() -> dict[str, str]:
    """The environment of a child process importing this checkout's package."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.mark.slow
def test_two_processes_at_once_write_one_set_of_values(backend: Backend, tmp_path):
    client = backend.client()
    name = unique_name("twice")
    exp = client.create_experiment(name)
    ids = [log_curves(client, exp, curves(i)) for i in range(30)]
    env = _env()
    procs = [subprocess.Popen(_command(backend, name), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
             for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        assert len(json.loads(out)["runs"]) == 30
    rows = diagnosis_rows(backend, ids)
    assert {r for r, _ in rows} == set(ids)
    assert set(rows.values()) == {1}, {k: n for k, n in rows.items() if n != 1}


_RESUME = """
import sys
from mlflow_plateau.tracking import RunFailure, diagnose_runs
for r in diagnose_runs(experiment_name=sys.argv[1], tracking_uri=sys.argv[2], artifacts="json",
                       batch_size=20):
    if isinstance(r, RunFailure):
        print("failed", r.run_id, r.reason, flush=True)
    else:
        print("skipped" if r.plateau.fitted.size == 0 else "computed", r.run_id, flush=True)
"""


def _done(backend: Backend, run_ids: set[str]) -> int:
    rows = sql_count(backend, "SELECT run_uuid FROM tags WHERE key = :k", k=TAG_DIGEST)
    return sum(1 for (r,) in rows if r in run_ids)


@pytest.mark.slow
def test_killed_batch_resumes_without_duplicates(backend: Backend, tmp_path):
    client = backend.client()
    name = unique_name("resume")
    exp = client.create_experiment(name)
    ids = [log_curves(client, exp, curves(i)) for i in range(80)]
    env = _env()
    argv = [sys.executable, "-c", _RESUME, name, backend.uri]
    first = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                             cwd=tmp_path)
    deadline = time.monotonic() + 300
    while _done(backend, set(ids)) < 5 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    done = _done(backend, set(ids))
    assert 5 <= done < 80, f"the first process was not stopped part-way ({done} runs done)"
    second = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path,
                            timeout=600)
    assert second.returncode == 0, second.stderr
    outcome = dict(reversed(line.split()[:2]) for line in second.stdout.splitlines())
    assert set(outcome) == set(ids) and "failed" not in outcome.values()
    rows = diagnosis_rows(backend, ids)
    assert {r for r, _ in rows} == set(ids) and set(rows.values()) == {1}

