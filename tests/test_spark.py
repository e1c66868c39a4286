"""``mlflow_plateau.spark`` in ``local[2]`` mode (one SparkSession for the whole test session).

On a SQLite store and on an ``mlflow server`` backed by PostgreSQL, 200 runs each: the Spark rows
equal the single-process diagnoses (verdicts and docs/design.md metrics), a second job writes nothing,
a task whose Python worker is killed mid-way is retried by Spark and leaves exactly one row per
diagnosis metric, and a server that is down gives a failed row per run within moments.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time

import numpy as np
import pytest
from conftest import free_port, log_curves, unique_name
from postgres_cluster import postgres_bin  # noqa: F401  (the pg_server fixture needs it)

from mlflow_plateau.tracking import GAP_METRICS, PLATEAU_METRICS, TAG_DIGEST, RunFailure, diagnose_runs

pytest.importorskip("pyspark")
pytestmark = pytest.mark.slow

EPOCHS = np.arange(20)
RUNS = 200
METRICS = PLATEAU_METRICS + GAP_METRICS


def curves(i: int) -> dict[str, np.ndarray]:
    val = 0.3 + (EPOCHS - 3.0 - i % 11) ** 2 / 300.0 + i / 1000
    train = 1.0 / (1.0 + EPOCHS) + 0.05 + (i % 3) * 0.1
    return {"loss": train, "val_loss": val}


@pytest.fixture(scope="session")
def spark():
    """local[2] with up to 3 attempts per task (local mode retries nothing by default)."""
    import shutil

    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java runtime (apt-get install openjdk-17-jre-headless; .ci/run does)")
    from mlflow_plateau.spark import spark_session

    session = spark_session("local[2,3]", app_name="mlflow-plateau-tests")
    yield session
    session.stop()


def _store(request, name: str) -> str:
    if name == "sqlite":
        return request.getfixturevalue("tracking_uri")
    return request.getfixturevalue("pg_server").uri


def _rows(frame) -> dict[str, dict]:
    return {r["run_id"]: r.asDict() for r in frame.collect()}


def _metric_rows(uri: str, run_ids: list[str]) -> dict[tuple[str, str], int]:
    """(run, diagnosis metric) -> number of stored points, through the client."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    return {(r, k): len(client.get_metric_history(r, k)) for r in run_ids for k in
            ("plateau/epoch", "plateau/best_epoch", "gap/final")}


@pytest.mark.parametrize("store", ["sqlite", "server-postgresql"])
def test_spark_equals_single_process_and_reruns_write_nothing(spark, request, store):
    from mlflow.tracking import MlflowClient

    from mlflow_plateau.spark import diagnose_experiment

    uri = _store(request, store)
    client = MlflowClient(uri)
    name = unique_name("spark")
    exp = client.create_experiment(name)
    ids = [log_curves(client, exp, curves(i)) for i in range(RUNS - 1)]
    bad = log_curves(client, exp, {"loss": EPOCHS * 0.1})  # no validation metric: a failed row
    expected = {r.run_id: r for r in diagnose_runs(experiment_name=name, tracking_uri=uri,
                                                   log=False)}

    first = _rows(diagnose_experiment(spark, experiment_name=name, tracking_uri=uri,
                                      runs_per_task=50, artifacts="json"))
    assert set(first) == {*ids, bad}
    assert first[bad]["error"].startswith("no validation metric") and first[bad]["verdict"] is None
    assert isinstance(expected[bad], RunFailure)
    for run_id in ids:
        row, single = first[run_id], expected[run_id]
        assert row["error"] is None and row["verdict"] == single.verdict, run_id
        assert row["summary"] == single.summary
        want = single.to_dict()
        for metric in METRICS:
            value = row[metric]
            assert (value is None) == (metric not in row["metrics"])
        assert row["plateau/best_epoch"] == want["plateau"]["best_epoch"]
        stop = want["plateau"]["stop_epoch"]
        assert row["plateau/stop_epoch"] == (None if stop is None else float(stop))
        assert row["gap/final"] == pytest.approx(want["gap"]["final"])
    run = client.get_run(ids[0])
    assert run.data.tags["plateau.verdict"] == first[ids[0]]["verdict"] and TAG_DIGEST in run.data.tags

    counts = _metric_rows(uri, ids[:40])
    assert set(counts.values()) == {1}
    second = _rows(diagnose_experiment(spark, experiment_name=name, tracking_uri=uri,
                                       runs_per_task=50, artifacts="json"))
    assert {k: {c: v for c, v in r.items() if c != "metrics"} for k, r in second.items()} == \
        {k: {c: v for c, v in r.items() if c != "metrics"} for k, r in first.items()}
    assert _metric_rows(uri, ids[:40]) == counts


def _python_workers() -> list[int]:
    """Pids of the Python workers our Spark JVM forked (children of its pyspark.daemon)."""
    import psutil

    out = []
    for proc in psutil.Process(os.getpid()).children(recursive=True):
        try:
            parent = proc.parent()
            if parent is not None and "pyspark.daemon" in " ".join(parent.cmdline()) and \
                    "pyspark.daemon" in " ".join(proc.cmdline()):
                out.append(proc.pid)
        except psutil.Error:
            continue
    return out


def _digests(uri: str, experiment_id: str) -> int:
    from mlflow.tracking import MlflowClient

    found = MlflowClient(uri).search_runs([experiment_id], f"tags.`{TAG_DIGEST}` != ''",
                                          max_results=1000)
    return len(found)


def test_a_killed_task_is_retried_without_duplicates(spark, tracking_uri):
    from mlflow.tracking import MlflowClient

    from mlflow_plateau.spark import diagnose_experiment

    client = MlflowClient(tracking_uri)
    name = unique_name("killed")
    exp = client.create_experiment(name)
    ids = [log_curves(client, exp, curves(i)) for i in range(RUNS)]
    result: dict = {}

    def job() -> None:
        try:
            result["rows"] = _rows(diagnose_experiment(spark, experiment_name=name,
                                                       tracking_uri=tracking_uri,
                                                       runs_per_task=100, artifacts="json",
                                                       batch_size=20))
        except BaseException as exc:  # surfaced by the assertion below
            result["error"] = exc

    thread = threading.Thread(target=job)
    thread.start()
    deadline = time.monotonic() + 600
    killed: list[int] = []
    while time.monotonic() < deadline and thread.is_alive():
        done = _digests(tracking_uri, exp)
        if 10 <= done < RUNS - 40:
            for pid in _python_workers():
                os.kill(pid, signal.SIGKILL)  # a worker of ours: like a lost executor
                killed.append(pid)
            if killed:
                break
        time.sleep(0.2)
    thread.join(timeout=900)
    assert killed, "no worker was killed mid-way"
    assert "error" not in result, result.get("error")
    rows = result["rows"]
    assert set(rows) == set(ids) and all(r["error"] is None for r in rows.values())
    counts = _metric_rows(tracking_uri, ids)
    assert set(counts.values()) == {1}, {k: n for k, n in counts.items() if n != 1}


def test_tasks_read_the_servers_database_with_sql_where_they_reach_it(spark, pg_server):
    """With ``database_uri``, each task reads by SQL from the server's PostgreSQL when it can
    connect and through the server's bulk endpoint when it cannot; the rows say which, and the
    diagnoses are the same either way."""
    from mlflow.tracking import MlflowClient

    from mlflow_plateau.spark import diagnose_experiment

    client = MlflowClient(pg_server.uri)
    name = unique_name("spark-db")
    exp = client.create_experiment(name)
    ids = [log_curves(client, exp, curves(i)) for i in range(20)]
    expected = {r.run_id: r.verdict for r in diagnose_runs(experiment_name=name, log=False,
                                                           tracking_uri=pg_server.uri)}
    by_sql = _rows(diagnose_experiment(spark, experiment_name=name, tracking_uri=pg_server.uri,
                                       database_uri=pg_server.backend_uri, runs_per_task=10,
                                       artifacts="json"))
    dead = f"postgresql://nobody@127.0.0.1:{free_port()}/mlflow"
    by_http = _rows(diagnose_experiment(spark, experiment_name=name, tracking_uri=pg_server.uri,
                                        database_uri=dead, runs_per_task=10, artifacts="json"))
    assert set(by_sql) == set(by_http) == set(ids)
    assert {r["read"] for r in by_sql.values()} == {"sql"}
    assert {r["read"] for r in by_http.values()} == {"http"}
    for run_id in ids:
        assert by_sql[run_id]["error"] is None and by_sql[run_id]["verdict"] == expected[run_id]
        assert {k: v for k, v in by_http[run_id].items() if k != "read"} == \
            {k: v for k, v in by_sql[run_id].items() if k != "read"}
    with pytest.raises(ValueError, match="database_uri must be"):
        diagnose_experiment(spark, experiment_name=name, tracking_uri=pg_server.uri,
                            database_uri="http://127.0.0.1:1")


def test_a_server_that_is_down_gives_failed_rows_not_a_hung_job(spark):
    from mlflow_plateau.spark import diagnose_experiment

    dead = f"http://127.0.0.1:{free_port()}"
    ids = [f"{i:032x}" for i in range(30)]
    start = time.monotonic()
    rows = _rows(diagnose_experiment(spark, run_ids=ids, tracking_uri=dead, runs_per_task=10))
    assert time.monotonic() - start < 300
    assert set(rows) == set(ids)
    assert all("not reachable" in r["error"] and r["verdict"] is None for r in rows.values())
    assert not any(math.isfinite(r["plateau/epoch"] or math.nan) for r in rows.values())


def test_the_command_with_spark(spark, client, tracking_uri, capsys):
    import json

    from mlflow_plateau.cli import main

    exp = client.create_experiment("cli-spark")
    ids = [log_curves(client, exp, curves(i)) for i in range(4)]
    bad = log_curves(client, exp, {"loss": EPOCHS * 0.1})
    code = main(["diagnose", "--experiment-name", "cli-spark", "--spark", "local[2]",
                 "--runs-per-task", "2", "--artifacts", "none", "--json"])
    captured = capsys.readouterr()
    assert code == 1  # one run failed, named on stderr; the others are done
    assert f"run {bad}: no validation metric" in captured.err
    report = json.loads(captured.out)
    assert {r["run_id"] for r in report["runs"]} == set(ids)
    assert report["failures"][0]["run_id"] == bad
    assert main(["diagnose", "--experiment-name", "cli-spark", "--spark", "--dry-run"]) == 2
