"""Store-side faults (issue 6) against real SQLite stores and real ``mlflow-plateau`` processes.

- An artifact store that cannot be written (a regular file where the run's artifact folder should
  be: root ignores chmod, a file used as a directory stops everyone): metrics and tags are still
  written, the run is reported as failed with the reason, and the exit code says so.
- Two ``diagnose`` processes on one experiment at once: both finish, and every diagnosis metric
  of every run has exactly one history point (identical rows are stored once).
- A batch killed part-way resumes: the second invocation diagnoses the rest, skips what was done
  (the digest), and leaves no duplicate metric points.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import log_curves

from mlflow_plateau.tracking import (
    GAP_METRICS,
    PLATEAU_METRICS,
    TAG_DIGEST,
    TAG_VERDICT,
    RunFailure,
    diagnose_runs,
)

EPOCHS = np.arange(20)
SCRIPT = Path(sys.executable).with_name("mlflow-plateau")


def curves(i: int) -> dict[str, np.ndarray]:
    val = 0.3 + (EPOCHS - 5.0 - i % 7) ** 2 / 300.0 + i / 1000
    return {"loss": 1.0 / (1.0 + EPOCHS) + 0.05, "val_loss": val}


def metric_rows(db: Path, run_ids: list[str]) -> dict[tuple[str, str], int]:
    """(run, diagnosis metric) -> number of rows in MLflow's metrics table."""
    names = PLATEAU_METRICS + GAP_METRICS
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            f"SELECT run_uuid, key, COUNT(*) FROM metrics WHERE key IN ({','.join('?' * len(names))})"
            " GROUP BY run_uuid, key", names).fetchall()
    wanted = set(run_ids)
    return {(r, k): n for r, k, n in rows if r in wanted}


def done_runs(db: Path) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute("SELECT COUNT(*) FROM tags WHERE key = ?", (TAG_DIGEST,)).fetchone()[0]


def test_unwritable_artifact_store_keeps_metrics_and_tags(client, tracking_uri, tmp_path):
    blocker = tmp_path / "regular_file"
    blocker.write_text("not a folder")
    exp = client.create_experiment("no-artifacts", artifact_location=(blocker / "sub").as_uri())
    run_id = log_curves(client, exp, curves(0))
    (result,) = diagnose_runs(experiment_name="no-artifacts", tracking_uri=tracking_uri,
                              artifacts="json")
    assert isinstance(result, RunFailure)
    assert result.reason.startswith("diagnosis written as metrics and tags, but its artifacts "
                                    "could not be uploaded: ")
    run = client.get_run(run_id)
    assert run.data.tags[TAG_VERDICT] == "overfitting"
    assert {"plateau/epoch", "gap/final"} <= set(run.data.metrics)
    assert TAG_DIGEST not in run.data.tags  # so the next invocation retries the upload
    # The command reports the run and fails; a second invocation writes no second point.
    proc = subprocess.run([str(SCRIPT), "diagnose", "--experiment-name", "no-artifacts",
                           "--artifacts", "json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert f"run {run_id}: diagnosis written as metrics and tags" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(client.get_metric_history(run_id, "plateau/epoch")) == 1


@pytest.mark.parametrize("failing", ["sql_experiment_run_ids", "sql_runs"])
def test_runs_the_sql_listing_cannot_read_are_listed_with_search_runs(client, tracking_uri,
                                                                     monkeypatch, caplog,
                                                                     failing):
    """A store whose tables the SQL listing cannot read (a schema this version does not know,
    made here by our own listing raising: MLflow's ``search_runs`` reads the same tables) is
    listed with ``search_runs`` instead: when the id listing fails, and when reading a page fails
    (that page is read by id). Every run is diagnosed once, in the same order, with the same
    diagnosis."""
    import sqlalchemy.exc

    from mlflow_plateau.tracking import runs as runs_module

    exp = client.create_experiment("listing-falls-back")
    ids = [log_curves(client, exp, curves(i)) for i in range(7)]
    want = [d.to_dict() for d in diagnose_runs(experiment_id=exp, tracking_uri=tracking_uri,
                                               log=False, batch_size=3)]
    assert sorted(d["run_id"] for d in want) == sorted(ids)

    real = getattr(runs_module, failing)
    calls = []

    def breaks(*args, **kwargs):
        calls.append(args)
        if failing == "sql_experiment_run_ids" or len(calls) == 2:
            raise sqlalchemy.exc.OperationalError("SELECT", {}, Exception("no such column"))
        return real(*args, **kwargs)

    monkeypatch.setattr(runs_module, failing, breaks)
    with caplog.at_level("WARNING", logger="mlflow_plateau.tracking.runs"):
        got = [d.to_dict() for d in diagnose_runs(experiment_id=exp, tracking_uri=tracking_uri,
                                                  log=False, batch_size=3)]
    assert got == want
    # A page that failed is read with search_runs; the next one tries SQL again.
    assert len(calls) == (1 if failing == "sql_experiment_run_ids" else 3)
    # The user is told, once per fallback, with the reason and no SQL statement.
    told = [r.getMessage() for r in caplog.records if r.name == "mlflow_plateau.tracking.runs"]
    assert len(told) == 1
    assert f"experiment {exp}" in told[0] and "no such column" in told[0]
    assert "search_runs" in told[0] and "SELECT" not in told[0]


def _diagnose_command(experiment: str) -> list[str]:
    return [str(SCRIPT), "diagnose", "--experiment-name", experiment, "--artifacts", "json",
            "--json"]


@pytest.mark.slow
def test_two_processes_at_once_write_one_set_of_values(client, tracking_uri, tmp_path):
    exp = client.create_experiment("twice")
    ids = [log_curves(client, exp, curves(i)) for i in range(40)]
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    procs = [subprocess.Popen(_diagnose_command("twice"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
             for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        report = json.loads(out)
        assert len(report["runs"]) == 40 and report["failures"] == []
    rows = metric_rows(tmp_path / "mlflow.db", ids)
    assert rows and set(rows.values()) == {1}, {k: n for k, n in rows.items() if n != 1}
    assert {r for r, _ in rows} == set(ids)
    for rid in ids:
        run = client.get_run(rid)
        assert TAG_DIGEST in run.data.tags
        doc = json.loads(Path(client.download_artifacts(rid, "plateau/diagnosis.json")).read_text())
        assert doc["run_id"] == rid and doc["verdict"] == run.data.tags[TAG_VERDICT]


_RESUME = """
import sys
from mlflow_plateau.tracking import RunFailure, diagnose_runs
for r in diagnose_runs(experiment_name="resume", artifacts="json"):
    if isinstance(r, RunFailure):
        print("failed", r.run_id, r.reason)
    else:  # a diagnosis loaded from diagnosis.json (the digest matched) has no arrays
        print("skipped" if r.plateau.fitted.size == 0 else "computed", r.run_id)
"""


@pytest.mark.slow
def test_killed_batch_resumes_without_rediagnosing_or_duplicates(client, tracking_uri, tmp_path):
    exp = client.create_experiment("resume")
    # Runs are committed RUNS_PER_COMMIT (100) at a time: 250 leave a second of computing
    # between the first commit and the next, for the kill to land in.
    ids = [log_curves(client, exp, curves(i)) for i in range(250)]
    db = tmp_path / "mlflow.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    first = subprocess.Popen([sys.executable, "-c", _RESUME], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env, cwd=tmp_path)
    deadline = time.monotonic() + 300
    while done_runs(db) < 10 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)  # no clean-up of any kind: like a crash or a lost machine
    first.wait(timeout=60)
    done = done_runs(db)
    assert 10 <= done < 250, f"the first process was not stopped part-way ({done} runs done)"

    second = subprocess.run([sys.executable, "-c", _RESUME], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=600)
    assert second.returncode == 0, second.stderr
    outcome = dict(reversed(line.split()[:2]) for line in second.stdout.splitlines())
    assert set(outcome) == set(ids)
    assert list(outcome.values()).count("skipped") >= done
    assert "failed" not in outcome.values()
    rows = metric_rows(db, ids)
    assert {r for r, _ in rows} == set(ids) and set(rows.values()) == {1}
    # A third invocation finds every run current.
    third = subprocess.run([sys.executable, "-c", _RESUME], capture_output=True, text=True,
                           env=env, cwd=tmp_path, timeout=600)
    assert {line.split()[0] for line in third.stdout.splitlines()} == {"skipped"}


def test_a_batch_closed_part_way_leaves_no_half_written_run(client, tracking_uri, monkeypatch):
    """A caller that stops iterating ``diagnose_runs`` and closes it (a UI that shows the first
    results, Ctrl-C in a loop): every run whose diagnosis was started has its metrics, tags and
    artifacts, and is written once; no run of a later page is touched; the next invocation does
    the rest and rewrites nothing."""
    from mlflow_plateau.tracking import runs as runs_module

    exp = client.create_experiment("closed-part-way")
    ids = [log_curves(client, exp, curves(i)) for i in range(10)]
    logged: list[str] = []
    real = runs_module.log_many

    def counting(client_, writes, *args, **kwargs):
        logged.extend(w.run_id for w in writes)
        return real(client_, writes, *args, **kwargs)

    monkeypatch.setattr(runs_module, "log_many", counting)
    batch = diagnose_runs(experiment_id=exp, tracking_uri=tracking_uri, artifacts="json",
                          batch_size=4)
    first = next(batch)
    batch.results.close()
    assert not isinstance(first, RunFailure)

    written = {r for r in ids if TAG_DIGEST in client.get_run(r).data.tags}
    assert len(written) == 4 and first.run_id in written  # the first page, and only it
    assert sorted(logged) == sorted(written)              # each written once, none again on close
    for run_id in ids:
        has_json = any(a.path == "plateau/diagnosis.json"
                       for a in client.list_artifacts(run_id, "plateau"))
        has_metrics = "plateau/epoch" in client.get_run(run_id).data.metrics
        assert has_json == has_metrics == (run_id in written), run_id

    results = list(diagnose_runs(experiment_id=exp, tracking_uri=tracking_uri, artifacts="json",
                                 batch_size=4))
    assert sorted(r.run_id for r in results) == sorted(ids)
    assert not any(isinstance(r, RunFailure) for r in results)
    db = Path(tracking_uri.removeprefix("sqlite:///"))
    assert set(metric_rows(db, ids).values()) == {1}


def test_failures_held_for_sweep_parents_are_given_when_the_batch_breaks_off():
    """A run without curves is held until the batch is done (it may be a parent listed before its
    children); a store failing between pages still gets it reported, before the error."""
    from mlflow_plateau.tracking import RunFailure
    from mlflow_plateau.tracking.runs import RunBatch

    def results():
        yield RunFailure("a" * 32, "no validation metric (metrics: best_val_loss)")
        yield RunFailure("b" * 32, "run is deleted")
        raise ConnectionError("the store went away")

    batch = RunBatch()
    got = []
    with pytest.raises(ConnectionError):
        for result in batch.parents_left_out(results()):
            got.append(result.run_id)
    assert got == ["b" * 32, "a" * 32] and batch.skipped == []
    # A parent whose child was read after it, before the break, is still left out.
    batch = RunBatch()

    def child_then_break():
        yield RunFailure("a" * 32, "no metric history")
        batch.parents.add("a" * 32)  # its child's page was listed
        raise ConnectionError("the store went away")

    with pytest.raises(ConnectionError):
        got = [r.run_id for r in batch.parents_left_out(child_then_break())]
    assert [f.run_id for f in batch.skipped] == ["a" * 32]
