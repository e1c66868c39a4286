"""Stores as others left them: numpy-stepped SQLite, plain ``mlruns/`` folders (as MLflow 2.x and
3.x write them, and as git keeps them), and the metric names of other frameworks.

Every store here is real: written by MLflow itself (``log_batch`` with numpy integers, the file
store with ``MLFLOW_ALLOW_FILE_STORE``), or laid out file by file exactly as MLflow 2.x wrote a run
and as a repository that committed its ``mlruns/`` holds it (no empty folders).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import _start_server

from mlflow_plateau import diagnose_curves, diagnose_run, read_histories
from mlflow_plateau.cli import main
from mlflow_plateau.curves import history_curves, integers_as_stored, metric_mode, pair_curves
from mlflow_plateau.tracking.file_store import ALLOW_VARIABLE, missing_run_folders

EPOCHS = np.arange(40)
TRAIN = 1.0 / (1.0 + EPOCHS) + 0.02
VAL = 0.3 + (EPOCHS - 15.0) ** 2 / 400.0  # best at epoch 15, then clearly worse: overfitting


def _numpy_stepped_run(uri: str) -> str:
    """A run whose steps and timestamps were logged as numpy integers (stored as 8-byte blobs)."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    run = client.create_run("0")
    now = int(time.time() * 1000)
    points = [Metric(key, float(values[e]), np.int64(now + e), np.int64(e))
              for e in EPOCHS for key, values in (("loss", TRAIN), ("val_loss", VAL))]
    client.log_batch(run.info.run_id, metrics=points)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


@pytest.fixture
def numpy_store(tracking_uri: str) -> tuple[str, str]:
    run_id = _numpy_stepped_run(tracking_uri)
    db = tracking_uri[len("sqlite:///"):]
    with sqlite3.connect(db) as conn:  # what makes this store special: blobs, not integers
        kinds = set(conn.execute("SELECT typeof(step), typeof(timestamp) FROM metrics"))
    assert kinds == {("blob", "blob")}
    return tracking_uri, run_id


def test_integers_stored_as_bytes_are_read_little_endian():
    blobs = [np.int64(v).tobytes() for v in (0, 1, 256, -3, 1_700_000_000_000)]
    assert integers_as_stored(blobs).tolist() == [0, 1, 256, -3, 1_700_000_000_000]
    assert integers_as_stored([1, blobs[2]]).tolist() == [1, 256]
    assert integers_as_stored(np.arange(3)).tolist() == [0, 1, 2]


def test_numpy_stepped_sqlite_store_reads_on_every_path(numpy_store, tmp_path):
    uri, run_id = numpy_store
    expected = diagnose_curves({"loss": TRAIN, "val_loss": VAL})
    assert expected.verdict == "overfitting"
    # SQL path (the CLI's), and the frame.
    d = diagnose_run(run_id, tracking_uri=uri, log=False)
    assert (d.verdict, d.plateau.best_epoch) == (expected.verdict, expected.plateau.best_epoch)
    frame = read_histories([run_id], tracking_uri=uri)
    assert frame["step"].dtype == np.int64 and frame["timestamp"].dtype == np.int64
    assert sorted(frame.loc[frame["key"] == "val_loss", "step"]) == list(EPOCHS)
    # Client path (MLflow hands back bytes): the same curves.
    from mlflow.tracking import MlflowClient

    history = MlflowClient(uri).get_metric_history(run_id, "val_loss")
    assert isinstance(history[0].step, bytes)
    from mlflow_plateau.curves import Curve

    curve = Curve.from_points("val_loss", [p.step for p in history], [p.value for p in history],
                              order=[p.timestamp for p in history])
    assert curve.epochs.tolist() == list(EPOCHS)
    np.testing.assert_allclose(curve.values, VAL)
    # The CLI writes the diagnosis back to such a run.
    assert main(["diagnose", run_id, "--tracking-uri", uri, "--artifacts", "none"]) == 0
    tags = MlflowClient(uri).get_run(run_id).data.tags
    assert tags["plateau.verdict"] == "overfitting"


@pytest.mark.slow
def test_numpy_stepped_store_behind_a_server(numpy_store, tmp_path, capsys):
    """MLflow's server cannot serve blob steps (it answers 500): the command fails that run in one
    line naming it, and the store itself reads through SQL."""
    uri, run_id = numpy_store
    folder = tmp_path / "server"
    folder.mkdir()
    server = _start_server(folder, uri)
    srv = next(server)
    try:
        assert main(["diagnose", run_id, "--tracking-uri", srv.uri]) == 1
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and run_id in err[0] and "500" in err[0], err
        assert main(["diagnose", run_id, "--tracking-uri", srv.uri, "--database-uri", uri,
                     "--dry-run"]) in (0, 1)
    finally:
        server.close()


def _file_store_run(root: Path) -> str:
    """A run written by MLflow 3's own file store (allowed for the writing only)."""
    import mlflow

    os.environ[ALLOW_VARIABLE] = "true"
    try:
        client = mlflow.MlflowClient(f"file:{root}")
        run = client.create_run("0", run_name="written-by-mlflow-3")
        for e in EPOCHS:
            client.log_metric(run.info.run_id, "loss", float(TRAIN[e]), step=int(e))
            client.log_metric(run.info.run_id, "val_loss", float(VAL[e]), step=int(e))
        client.set_terminated(run.info.run_id)
    finally:
        del os.environ[ALLOW_VARIABLE]
    return run.info.run_id


def _as_git_keeps_it(root: Path) -> None:
    """Remove the empty folders (git keeps no empty folder)."""
    for path in sorted(root.rglob("*"), key=lambda p: -len(p.parts)):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def test_plain_mlruns_folder_is_read_and_written_as_given(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ALLOW_VARIABLE, raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_id = _file_store_run(tmp_path / "mlruns")
    _as_git_keeps_it(tmp_path / "mlruns")
    assert missing_run_folders(tmp_path / "mlruns")  # params/ and artifacts/ are gone
    metrics_before = (tmp_path / "mlruns" / "0" / run_id / "metrics" / "val_loss").read_bytes()

    assert main(["diagnose", "--tracking-uri", "./mlruns", "--experiment-id", "0",
                 "--artifacts", "json", "--json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert [r["verdict"] for r in rows["runs"]] == ["overfitting"]
    # Said once, in one line: what was done to read the folder.
    notices = [line for line in captured.err.splitlines() if "file store" in line]
    assert len(notices) == 1 and ALLOW_VARIABLE in notices[0] and "git does not keep" in notices[0]
    # The diagnosis is written into the folder; the run's own metric file is as it was.
    run_dir = tmp_path / "mlruns" / "0" / run_id
    assert (run_dir / "tags" / "plateau.verdict").read_text() == "overfitting"
    assert (run_dir / "artifacts" / "plateau" / "diagnosis.json").is_file()
    assert (run_dir / "metrics" / "val_loss").read_bytes() == metrics_before
    assert os.environ.get(ALLOW_VARIABLE) is None  # the command leaves the environment as it was

    # file: URIs too, and a second run of the command says nothing more.
    assert main(["diagnose", "--tracking-uri", f"file:{tmp_path / 'mlruns'}", run_id,
                 "--artifacts", "none"]) == 0
    assert "git does not keep" not in capsys.readouterr().err


def test_user_refusal_of_the_file_store_is_left_alone(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run_id = _file_store_run(tmp_path / "mlruns")
    # A fresh process: MLflow caches the store it opened for a URI in this one.
    import subprocess
    import sys

    env = {**os.environ, ALLOW_VARIABLE: "false"}
    proc = subprocess.run([sys.executable, "-m", "mlflow_plateau.cli", "diagnose", "--tracking-uri",
                           "./mlruns", run_id], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 1 and ALLOW_VARIABLE in proc.stderr  # MLflow's own refusal, named


MLFLOW2_RUN_META = """artifact_uri: file:///home/someone/project/mlruns/0/{run}/artifacts
end_time: 1650000100000
entry_point_name: ''
experiment_id: '0'
lifecycle_stage: active
run_id: {run}
run_name: ''
run_uuid: {run}
source_name: ''
source_type: 4
source_version: ''
start_time: 1650000000000
status: 3
tags: []
user_id: someone
"""
MLFLOW2_EXPERIMENT_META = """artifact_location: file:///home/someone/project/mlruns/0
experiment_id: '0'
lifecycle_stage: active
name: Default
"""


def test_mlflow2_store_as_committed_to_git(tmp_path, monkeypatch, capsys):
    """A store laid out as MLflow 2.x wrote it and git kept it: no params/, artifacts/ or .trash;
    a validation loss named avg_val_loss beside avg_train_losses."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ALLOW_VARIABLE, raising=False)
    run = "0123456789abcdef0123456789abcdef"
    exp = tmp_path / "mlruns" / "0"
    (exp / run / "metrics").mkdir(parents=True)
    (exp / run / "tags").mkdir()
    (exp / "meta.yaml").write_text(MLFLOW2_EXPERIMENT_META)
    (exp / run / "meta.yaml").write_text(MLFLOW2_RUN_META.format(run=run))
    (exp / run / "tags" / "mlflow.source.name").write_text("train.py")
    for key, values in (("avg_train_losses", TRAIN), ("avg_val_loss", VAL)):
        (exp / run / "metrics" / key).write_text(
            "".join(f"{1650000000000 + e} {values[e]} {e}\n" for e in EPOCHS))
    assert main(["diagnose", "--tracking-uri", "mlruns", "--experiment-id", "0", "--json",
                 "--artifacts", "none"]) == 0
    rows = json.loads(capsys.readouterr().out)["runs"]
    assert [(r["run_id"], r["verdict"], r["monitor"]) for r in rows] == [
        (run, "overfitting", "avg_val_loss")]


@pytest.mark.parametrize(("train", "val"), [("l2.train", "l2.valid"), ("training.rmse", "valid_0.rmse"),
                                            ("train_mae", "val_mae"), ("logloss", "val_logloss"),
                                            ("train_error", "valid_error"), ("train_l1", "val_l1")])
def test_error_metrics_need_no_mode(train, val):
    assert metric_mode(val) == "min"
    pairs = pair_curves(history_curves({train: TRAIN, val: VAL}))
    assert [(p.train, p.val) for p in pairs.values()] == [(train, val)]
    d = diagnose_curves({train: TRAIN, val: VAL})
    assert (d.monitor, d.verdict) == (val, "overfitting")


def test_aggregated_and_plural_names_pair():
    curves = history_curves({"avg_train_losses": TRAIN, "avg_val_loss": VAL,
                             "mean_train_accuracy": 1 - TRAIN, "epoch_val_accuracy": 1 - VAL})
    pairs = pair_curves(curves)
    assert (pairs["loss"].train, pairs["loss"].val) == ("avg_train_losses", "avg_val_loss")
    assert (pairs["accuracy"].train, pairs["accuracy"].val) == ("mean_train_accuracy",
                                                                 "epoch_val_accuracy")
    # Keras's own metric names keep their meaning.
    keras = pair_curves(history_curves({"mean_absolute_error": TRAIN,
                                        "val_mean_absolute_error": VAL}))
    assert keras["mean_absolute_error"].val == "val_mean_absolute_error"


def test_committed_store_copy_is_untouched_by_listing(tmp_path):
    """missing_run_folders only lists; nothing is created by looking."""
    root = tmp_path / "mlruns"
    (tmp_path / "not-a-store" / "src" / "pkg").mkdir(parents=True)  # folders, no run meta.yaml
    (root / "0" / "abc").mkdir(parents=True)
    (root / "0" / "abc" / "meta.yaml").write_text("run_id: abc\n")
    assert [p.name for p in missing_run_folders(root)] == ["metrics", "params", "artifacts"]
    assert not (root / "0" / "abc" / "params").exists()
    assert missing_run_folders(tmp_path / "not-a-store") == []
