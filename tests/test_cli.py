"""The ``mlflow-plateau`` command against real SQLite stores: output, writes and exit codes."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import free_port, log_curves

from mlflow_plateau.cli import build_parser, main

EPOCHS = np.arange(30)
VAL = 0.3 + (EPOCHS - 10.0) ** 2 / 200.0
TRAIN = 1.0 / (1.0 + EPOCHS) + 0.05


@pytest.fixture
def experiment(client):
    """An experiment 'cli' with three diagnosable runs; returns (experiment id, run ids)."""
    exp = client.create_experiment("cli")
    runs = [log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL + i / 50},
                       params={"opt": ("adam", "sgd", "adam")[i]}, tags={"owner": "me"})
            for i in range(3)]
    return exp, runs


def plateau_keys(client, run_id: str) -> list[str]:
    return sorted(k for k in client.get_run(run_id).data.metrics if k.startswith(("plateau/",
                                                                                 "gap/")))


def test_diagnose_experiment_prints_a_table_and_writes_runs(client, experiment, capsys):
    _, runs = experiment
    # No --tracking-uri: MLFLOW_TRACKING_URI (set by the fixture) is honoured.
    assert main(["diagnose", "--experiment-name", "cli", "--artifacts", "json"]) == 0
    out = capsys.readouterr().out
    for run_id in runs:
        run = client.get_run(run_id)
        assert f"{run.info.run_name} ({run_id[:8]})" in out  # the name beside a short id
        assert run.data.tags["plateau.verdict"] in out
        assert run.data.tags["owner"] == "me"
        assert "plateau/epoch" in run.data.metrics and "gap/final" in run.data.metrics
    assert "plateau epoch" in out and "wasted epochs" in out


def test_diagnose_json_filter_and_dry_run(client, experiment, capsys):
    _, runs = experiment
    code = main(["diagnose", "--experiment-name", "cli", "--filter", "params.opt = 'adam'",
                 "--json", "--dry-run", "--patience", "3"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["dry_run"] is True and doc["failures"] == []
    assert sorted(r["run_id"] for r in doc["runs"]) == sorted([runs[0], runs[2]])
    assert all(r["config"]["patience"] == 3 for r in doc["runs"])
    assert all(plateau_keys(client, r) == [] for r in runs)  # nothing written
    assert "plateau.verdict" not in client.get_run(runs[0]).data.tags


def test_changed_patience_updates_the_run(client, experiment, capsys):
    _, runs = experiment
    assert main(["diagnose", runs[0], "--patience", "3", "--artifacts", "none"]) == 0
    first = client.get_run(runs[0]).data.metrics["plateau/stop_epoch"]
    assert main(["diagnose", runs[0], "--patience", "8", "--artifacts", "none"]) == 0
    assert client.get_run(runs[0]).data.metrics["plateau/stop_epoch"] == first + 5


def test_some_runs_fail_exit_1_and_the_rest_complete(client, experiment, capsys):
    _, runs = experiment
    unknown = "e" * 32
    code = main(["diagnose", runs[0], unknown, runs[1], "--artifacts", "none"])
    captured = capsys.readouterr()
    assert code == 1
    assert f"mlflow-plateau: run {unknown}: run not found" in captured.err.splitlines()
    assert f"({runs[0][:8]})" in captured.out and f"({runs[1][:8]})" in captured.out
    assert plateau_keys(client, runs[1])  # diagnosed and written despite the failure before it
    assert "Traceback" not in captured.err
    assert main(["diagnose", "bad\nid", "--artifacts", "none"]) == 1
    assert capsys.readouterr().err == "mlflow-plateau: run bad\\nid: not a valid run id\n"


@pytest.mark.parametrize("argv", [
    ["diagnose"],                                                   # no selector
    ["diagnose", "abc", "--experiment-name", "cli"],                # ids and an experiment
    ["diagnose", "--experiment-name", "cli", "--experiment-id", "1"],
    ["diagnose", "abc", "--filter", "params.opt = 'adam'"],         # filter without experiment
    ["diagnose", "--experiment-name", "cli", "--bogus"],            # unknown option
    ["diagnose", "--experiment-name", "cli", "--artifacts", "png"],
    ["diagnose", "--experiment-name", "cli", "--patience", "-1"],
    ["diagnose", "--experiment-name", "cli", "--chance", "nan"],     # kept with the runs before
    ["diagnose", "--experiment-name", "cli", "--min-delta", "-5"],  # failed once per run before
    ["diagnose", "--experiment-name", "cli", "--relative-delta", "nan"],
    ["compare", "a", "b", "--relative-delta", "1"],
    ["curves", "x.csv", "--chance", "inf"],
    ["import", "x.csv", "--num-classes", "1"],
    ["scaling", "--size-param", "train_size"],                      # no experiment
    ["nope"],
    [],
])
def test_usage_errors_exit_2(tracking_uri, argv, capsys):
    assert main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_unknown_experiment_is_one_line_and_debug_shows_traceback(tracking_uri, capsys,
                                                                  monkeypatch):
    assert main(["diagnose", "--experiment-name", "missing"]) == 1
    assert capsys.readouterr().err == (f"mlflow-plateau: experiment 'missing' not found in "
                                       f"{tracking_uri}; its experiments: 'Default'\n")
    monkeypatch.setenv("MLFLOW_PLATEAU_DEBUG", "1")
    with pytest.raises(ValueError, match="missing"):
        main(["diagnose", "--experiment-name", "missing"])


def test_unreachable_server_one_line_no_traceback_no_password(tmp_path):
    """The installed console script, as a user runs it."""
    uri = f"http://bob:hunter2@127.0.0.1:{free_port()}"
    script = Path(sys.executable).with_name("mlflow-plateau")
    proc = subprocess.run([str(script), "diagnose", "a" * 32, "--tracking-uri", uri],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"mlflow-plateau: run {'a' * 32}: tracking server http://***@127.0.0.1:"
                     f"{uri.rsplit(':', 1)[1]} is not reachable (connection failed)"]
    assert "hunter2" not in proc.stdout + proc.stderr
    proc = subprocess.run([str(script), "diagnose", "--experiment-name", "x"], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path,
                          env={"MLFLOW_TRACKING_URI": uri, "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "not reachable" in proc.stderr and "hunter2" not in proc.stderr


def test_import_lightning_metrics_csv(client, tmp_path, capsys):
    # Lightning's CSVLogger: train and val metrics on separate rows, blanks between.
    rows = ["epoch,step,train_loss,val_loss"]
    for e in range(12):
        rows.append(f"{e},{10 * e + 9},{TRAIN[e]},")
        rows.append(f"{e},{10 * e + 9},,{VAL[e]}")
    path = tmp_path / "metrics.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert main(["import", str(path), "--experiment-name", "imported", "--artifacts", "none"]) == 0
    run_id = capsys.readouterr().out.strip()
    run = client.get_run(run_id)
    assert run.info.run_name == "metrics" and run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "imported"
    history = client.get_metric_history(run_id, "val_loss")
    assert [m.step for m in history] == list(range(12))
    np.testing.assert_allclose([m.value for m in history], VAL[:12])
    assert run.data.tags["plateau.monitor"] == "val_loss"
    assert "plateau.verdict" in run.data.tags


def test_import_bad_file_is_one_line(tracking_uri, tmp_path, capsys):
    path = tmp_path / "log.json"
    path.write_text("[1, 2]", encoding="utf-8")
    assert main(["import", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "JSON log must be an object" in err
    assert main(["import", str(tmp_path / "missing.csv")]) == 1


def test_import_without_validation_logs_the_run_and_exits_1(client, tmp_path, capsys):
    path = tmp_path / "train_only.csv"
    path.write_text("epoch,loss\n0,1.0\n1,0.5\n2,0.4\n", encoding="utf-8")
    assert main(["import", str(path), "--run-name", "t"]) == 1
    captured = capsys.readouterr()
    run_id = captured.out.strip()
    assert client.get_run(run_id).info.run_name == "t"
    assert "no validation metric" in captured.err and run_id in captured.err


def test_scaling_command(client, capsys):
    exp = client.create_experiment("sizes")
    for n in (100, 200, 400, 800):
        curve = 2.0 * n ** -0.5 + (EPOCHS - 8.0) ** 2 / 300.0
        log_curves(client, exp, {"loss": curve - 0.05, "val_loss": curve},
                   params={"train_size": n, "units": 16})
    argv = ["scaling", "--experiment-name", "sizes", "--size-param", "train_size", "--json"]
    assert main(argv) == 0
    (group,) = json.loads(capsys.readouterr().out)["groups"]
    assert group["group"] == "units=16" and group["verdict"] == "data_limited"
    assert group["sizes"] == [100, 200, 400, 800]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["groups"][0]["summary_run_id"] == \
        group["summary_run_id"]
    assert main(["scaling", "--experiment-name", "sizes", "--size-param", "batch"]) == 1
    assert "no runs with param 'batch'" in capsys.readouterr().err


@pytest.mark.slow
def test_import_real_keras_csvlogger(client, tmp_path, capsys):
    import keras

    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("float32")
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    log = tmp_path / "training.log"
    history = model.fit(x, y, validation_split=0.25, epochs=5, batch_size=16, verbose=0,
                        callbacks=[keras.callbacks.CSVLogger(str(log))])
    assert main(["import", str(log), "--experiment-name", "csvlogger", "--run-name", "old",
                 "--json", "--artifacts", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    run_id = doc["run_id"]
    assert doc["diagnosis"]["monitor"] == "val_loss" and doc["diagnosis"]["run_id"] == run_id
    for name in ("loss", "val_loss", "accuracy", "val_accuracy"):
        points = client.get_metric_history(run_id, name)
        assert [p.step for p in points] == list(range(5))
        np.testing.assert_allclose([p.value for p in points], history.history[name], rtol=1e-5)
    assert client.get_run(run_id).data.tags["plateau.source"] == "training.log"


def test_container_runs_are_skipped_when_diagnosing_an_experiment(client, experiment, capsys):
    exp, runs = experiment
    # A parent that only groups other runs (no curve), and one refused before training (a metric
    # at step 0 but no validation curve): both tagged as containers, as the MLproject tags them.
    parent = log_curves(client, exp, {}, params={"sizes": "100,200"},
                        tags={"plateau.kind": "container"}, run_name="data_scaling")
    refused = log_curves(client, exp, {"memory/projected_bytes": [7.8e10]},
                         tags={"plateau.kind": "container", "scenario.error": "refused"})
    assert main(["diagnose", "--experiment-name", "cli", "--artifacts", "none"]) == 0
    captured = capsys.readouterr()
    assert [line for line in captured.err.splitlines() if "viewStateShareKey" not in line] == []
    assert all(r[:8] in captured.out for r in runs)
    assert parent[:8] not in captured.out and refused[:8] not in captured.out
    for run_id in (parent, refused):
        assert "plateau.verdict" not in client.get_run(run_id).data.tags
    # Named by id, a container is a clear failure, not a hint to pass --monitor.
    assert main(["diagnose", parent]) == 1
    err = capsys.readouterr().err
    assert f"run {parent}: a container run (it groups other runs), not a training run" in err
    assert "--monitor" not in err


def test_missing_experiment_in_a_sqlite_store_fails_before_mlflow_is_imported(tmp_path):
    # A typo in the name must not wait for MLflow to import and open (or create) the store.
    code = ("import sys\nfrom mlflow_plateau.cli import main\n"
            "code = main(['diagnose', '--experiment-name', 'newcomer', '--tracking-uri', "
            f"'sqlite:///{tmp_path / 'absent.db'}'])\n"
            "print(code, 'mlflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "False"]
    absent = tmp_path / "absent.db"
    assert out.stderr == (f"mlflow-plateau: no tracking store at sqlite:///{absent}: no such file "
                          f"{absent}; point at your store with --tracking-uri URI or "
                          "MLFLOW_TRACKING_URI\n")
    assert not absent.exists()  # no store was created by asking


def test_missing_experiment_of_an_existing_store_names_it_and_the_close_names(
        client, experiment, tracking_uri, capsys):
    client.create_experiment("cifar10-resnet")
    for command in (["diagnose"], ["scaling"], ["compare"]):
        assert main([*command, "--experiment-name", "cifar10-resnt"]) == 1  # a typo
        assert capsys.readouterr().err == (
            f"mlflow-plateau: experiment 'cifar10-resnt' not found in {tracking_uri}; did you "
            "mean 'cifar10-resnet'?\n")
    assert main(["diagnose", "--experiment-name", "CLI", "--dry-run"]) == 1  # case, too
    assert capsys.readouterr().err.endswith("; did you mean 'cli'?\n")
    assert main(["diagnose", "--experiment-name", "zzzz"]) == 1  # nothing close: what there is
    assert capsys.readouterr().err.endswith(
        "; its experiments: 'Default', 'cifar10-resnet', 'cli'\n")
    assert main(["diagnose", "--experiment-name", "cli", "--dry-run"]) == 0  # an existing one


def test_the_library_names_the_store_and_close_names_too(client, experiment, tracking_uri):
    # Not only the command's SQLite shortcut: MLflow's answer, for any store.
    from mlflow_plateau.tracking import diagnose_runs
    from mlflow_plateau.tracking.comparison import compare_runs

    for call in (diagnose_runs, compare_runs):
        with pytest.raises(ValueError) as info:
            call(experiment_name="cl", tracking_uri=tracking_uri)
        assert str(info.value) == (f"experiment 'cl' not found in {tracking_uri}; did you mean "
                                   "'cli'?")
    with pytest.raises(ValueError, match=f"experiment id '999' not found in {tracking_uri}$"):
        diagnose_runs(experiment_id="999", tracking_uri=tracking_uri)


# Every reading command, by experiment and by run id (a prefix, a full id), in a folder without
# a store and without MLFLOW_TRACKING_URI: MLflow would create ./mlflow.db by opening it.
READING = [["diagnose", "--experiment-name", "my-exp"], ["diagnose", "1cc124a6"],
           ["diagnose", "a" * 32, "--dry-run"], ["scaling", "--experiment-name", "my-exp"],
           ["compare", "1cc124a6", "9f3e2b10"], ["compare", "--experiment-name", "my-exp"],
           ["export", "--experiment-name", "my-exp", "-o", "out.csv"],
           ["export", "1cc124a6", "-o", "out.parquet"]]
_RUN_EACH = """import contextlib, io, json, sys
from mlflow_plateau.cli import build_parser, main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""


def _run_each(argv_list: list[list[str]], cwd: Path, **env: str) -> list[tuple[int, str]]:
    """The commands run one after the other by ``main`` in one fresh process in ``cwd`` (no
    ``MLFLOW_TRACKING_URI`` unless given): (exit code, stderr) of each."""
    import os

    base = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run([sys.executable, "-c", _RUN_EACH, json.dumps(argv_list)], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env={**base, **env},
                          check=True)
    return [tuple(r) for r in json.loads(proc.stdout)]


def test_reading_commands_never_create_a_store_and_name_the_one_looked_in(tmp_path):
    db = tmp_path / "mlflow.db"
    for code, err in _run_each(READING, tmp_path):
        assert (code, err) == (1, (
            f"mlflow-plateau: no tracking store at sqlite:///{db} (MLflow's default here: "
            f"MLFLOW_TRACKING_URI is not set): no such file {db}; point at your store with "
            "--tracking-uri URI or MLFLOW_TRACKING_URI\n"))
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no mlflow.db, no mlruns, no out.*
    # A store named by the variable, or by --tracking-uri: a folder (MLflow's file store) too.
    results = _run_each([READING[0], [*READING[1], "--tracking-uri", "sqlite:///runs.db"]],
                        tmp_path, MLFLOW_TRACKING_URI="./mlruns")
    assert results == [
        (1, f"mlflow-plateau: no tracking store at ./mlruns (from MLFLOW_TRACKING_URI): no such "
            f"folder {tmp_path / 'mlruns'}; point at your store with --tracking-uri URI or "
            "MLFLOW_TRACKING_URI\n"),
        (1, f"mlflow-plateau: no tracking store at sqlite:///runs.db: no such file "
            f"{tmp_path / 'runs.db'}; point at your store with --tracking-uri URI or "
            "MLFLOW_TRACKING_URI\n")]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_library_refuses_to_read_a_store_that_does_not_exist(tmp_path):
    from mlflow_plateau.tracking import diagnose_runs, read_histories
    from mlflow_plateau.tracking.store import StoreNotFound

    uri = f"sqlite:///{tmp_path / 'absent.db'}"
    for read in (lambda: diagnose_runs(["a" * 32], tracking_uri=uri),
                 lambda: diagnose_runs(experiment_name="x", tracking_uri=uri),
                 lambda: read_histories(["a" * 32], tracking_uri=uri)):
        with pytest.raises(StoreNotFound, match="no tracking store at sqlite:///"):
            read()
    assert not (tmp_path / "absent.db").exists()


def test_scaling_split_by_a_param_says_which_and_logs_nothing(client, capsys):
    # One size per seed: every group has a single size, so no curve can be fitted.
    exp = client.create_experiment("split")
    for seed, n in enumerate((100, 200, 400, 800)):
        log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL + 1 / n},
                   params={"train_size": n, "seed": seed, "epochs": 30, "batch_size": 32})
    assert main(["scaling", "--experiment-name", "split"]) == 1
    captured = capsys.readouterr()
    assert captured.err == (
        "mlflow-plateau: no learning curve fitted: every group has fewer than 3 distinct "
        "train_size values (at most 1): the param seed differs between the runs and split them "
        "into 4 groups. Name the params that stay fixed along one curve, e.g. --group-by "
        "epochs batch_size\n")
    assert "seed=3: Only 1 distinct training size(s)" in captured.out
    assert client.search_runs([exp], "tags.`plateau.kind` = 'scaling'") == []
    # The suggestion works: one curve over the four sizes.
    assert main(["scaling", "--experiment-name", "split", "--group-by", "epochs", "batch_size"]) == 0
    assert len(client.search_runs([exp], "tags.`plateau.kind` = 'scaling'")) == 1


def test_fail_on_gates_ci_with_exit_3_and_json_names_runs(client, experiment, capsys):
    _, runs = experiment
    assert main(["diagnose", "--experiment-name", "cli", "--json", "--dry-run"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {r["run_id"]: r["run_name"] for r in doc["runs"]} == {
        r: client.get_run(r).info.run_name for r in runs}
    seen = {r["verdict"] for r in doc["runs"]}
    absent = next(v for v in ("diverged", "at_chance", "unstable", "healthy") if v not in seen)
    listed = f"{absent},{sorted(seen)[0]}"
    assert main(["diagnose", "--experiment-name", "cli", "--dry-run", "--fail-on", listed]) == 3
    assert main(["diagnose", "--experiment-name", "cli", "--dry-run", "--fail-on", absent]) == 0
    capsys.readouterr()
    assert main(["diagnose", runs[0], "--fail-on", "overfit"]) == 2
    err = capsys.readouterr().err
    assert "unknown verdict overfit" in err and "overfitting" in err and "diverged" in err


def test_curves_fail_on(tmp_path, capsys):
    log = tmp_path / "log.csv"
    log.write_text("epoch,loss,val_loss\n" + "".join(
        f"{e},{t},{v}\n" for e, t, v in zip(EPOCHS, TRAIN, VAL, strict=True)))
    assert main(["curves", str(log), "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)[0]["verdict"]
    assert main(["curves", str(log), "--fail-on", verdict]) == 3
    other = "diverged" if verdict != "diverged" else "healthy"
    assert main(["curves", str(log), "--fail-on", other]) == 0


def test_run_id_prefixes_are_accepted_and_ambiguous_or_unknown_ones_named(client, experiment,
                                                                         capsys, tmp_path):
    _, runs = experiment
    short = runs[0][:8]  # as the diagnose table prints it
    assert main(["diagnose", short, "--artifacts", "none"]) == 0
    assert plateau_keys(client, runs[0]) and not plateau_keys(client, runs[1])
    out = tmp_path / "h.csv"
    assert main(["export", runs[1][:8], runs[2][:10], "-o", str(out)]) == 0
    text = out.read_text()
    assert runs[1] in text and runs[2] in text and runs[0] not in text
    capsys.readouterr()
    # One character is shared by several of many runs; an unmatched prefix is not found.
    exp = client.get_experiment_by_name("cli").experiment_id
    more = [log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL}) for _ in range(30)]
    first = {r[0] for r in runs + more}
    shared = next(c for c in sorted(first) if sum(r.startswith(c) for r in runs + more) > 1)
    missing = next(c * 6 for c in "0123456789abcdef"
                   if not any(r.startswith(c * 6) for r in runs + more))
    code = main(["diagnose", shared, missing, runs[1][:8], "--artifacts", "none"])
    captured = capsys.readouterr()
    err = captured.err
    assert code == 1, captured
    assert f"run {shared}: run id prefix is ambiguous" in err
    assert all(r in err for r in runs + more if r.startswith(shared))
    assert f"run {missing}: no run id starts with it" in err
    assert f"({runs[1][:8]})" in captured.out, captured  # the rest of the batch was done


def test_an_option_typo_shows_the_commands_usage_and_a_suggestion(capsys):
    assert main(["diagnose", "abc", "--patiense", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: mlflow-plateau diagnose")
    assert "unrecognized arguments: --patiense 3" in err and "did you mean --patience?" in err
    assert main(["curves", "x.csv", "--fail-onn", "diverged"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: mlflow-plateau curves") and "did you mean --fail-on?" in err


def test_curves_reads_what_export_writes_with_the_verdicts_of_diagnose(client, tmp_path, capsys):
    """Round trip: runs logged with log_metric, diagnosed, exported (CSV and Parquet) by the real
    CLI; ``curves`` on the file diagnoses each run, named by its id, as ``diagnose`` did."""
    exp = client.create_experiment("roundtrip")
    shapes = {"overfit": (TRAIN, VAL), "improving": (TRAIN, 0.2 + 1.0 / (1.0 + EPOCHS))}
    ids = {}
    for name, (train, val) in shapes.items():
        run_id = client.create_run(exp, run_name=name).info.run_id
        for step, (t, v) in enumerate(zip(train, val, strict=True)):
            client.log_metric(run_id, "loss", float(t), timestamp=1000 + step, step=step)
            client.log_metric(run_id, "val_loss", float(v), timestamp=1000 + step, step=step)
        client.set_terminated(run_id)
        ids[run_id] = name
    # Epoch 12 of one run logged again later: the newer value counts, in the store and the file.
    overfit = next(r for r, n in ids.items() if n == "overfit")
    client.log_metric(overfit, "val_loss", 0.9, timestamp=5000, step=12)
    assert main(["diagnose", "--experiment-name", "roundtrip", "--json",
                 "--artifacts", "none"]) == 0
    stored = {r["run_id"]: r for r in json.loads(capsys.readouterr().out)["runs"]}
    assert {r["verdict"] for r in stored.values()} >= {"overfitting"} and len(stored) == 2
    for target in (tmp_path / "h.csv", tmp_path / "h.parquet"):
        # The export holds the plateau/ and gap/ results diagnose wrote: curves leaves them out.
        assert main(["export", "--experiment-name", "roundtrip", "-o", str(target)]) == 0
        capsys.readouterr()
        assert main(["curves", str(target), "--json"]) == 0
        read = {r["run"]: r for r in json.loads(capsys.readouterr().out)}
        assert set(read) == set(stored) == set(ids)
        for run_id, d in read.items():
            assert d["file"] == str(target)
            assert (d["verdict"], d["summary"], d["plateau"], d["gap"]) == (
                stored[run_id]["verdict"], stored[run_id]["summary"], stored[run_id]["plateau"],
                stored[run_id]["gap"]), ids[run_id]
        assert main(["curves", str(target)]) == 0
        out = capsys.readouterr().out
        assert all(f"{target} [run {r}]: {stored[r]['verdict']}" in out for r in ids)
    # import takes one run: an export of two is refused with the runs named.
    assert main(["import", str(tmp_path / "h.csv"), "--artifacts", "none"]) == 1
    assert "holds 2 runs" in capsys.readouterr().err


@pytest.mark.parametrize("command", [None, "diagnose", "curves", "scaling", "compare", "export",
                                     "import"])
def test_help_of_each_command_shows_examples_that_parse(command, capsys):
    assert main([command, "--help"] if command else ["--help"]) == 0
    out = capsys.readouterr().out
    assert "Examples:\n" in out
    lines = [line.strip() for line in out.split("Examples:\n", 1)[1].splitlines()
             if line.startswith("  mlflow-plateau ")]
    assert 2 <= len(lines) <= 3, out
    for line in lines:
        argv = shlex.split(line)[1:]
        assert command is None or argv[0] == command  # a command line of this command
        args, extra = build_parser().parse_known_args(argv)  # and a valid one
        assert extra == [] and args.command == argv[0], line


def test_diagnose_prints_the_ui_runs_table_with_the_plateau_columns(client, experiment,
                                                                     tracking_uri, capsys):
    exp, runs = experiment
    assert main(["diagnose", "--experiment-name", "cli", "--dry-run"]) == 0  # nothing written
    assert "mlflow ui" not in capsys.readouterr().err
    assert not any(k.startswith("mlflow.sharedViewState.")
                   for k in client.get_experiment(exp).tags)
    assert main(["diagnose", "--experiment-name", "cli", "--json"]) == 0
    assert capsys.readouterr().err == (
        f"mlflow-plateau: the runs in the MLflow UI, with the plateau columns: mlflow ui "
        f"--backend-store-uri {tracking_uri}, then open http://127.0.0.1:5000/#/experiments/"
        f"{exp}/runs?viewStateShareKey=plateau; each run's report is in its Artifacts tab "
        "(plateau/report.html)\n")
    # The view that URL opens: an experiment tag holding the columns (the UI's saved view).
    view = json.loads(client.get_experiment(exp).tags["mlflow.sharedViewState.plateau"])
    state = json.loads(view["state"])
    assert view["name"] == "plateau diagnosis" and state["selectedColumns"][0] == \
        "tags.`plateau.verdict`" and "metrics.`plateau/epoch`" in state["selectedColumns"]
    assert view["selectedColumns"] == state["selectedColumns"]  # for UIs before saved views
    assert "plateau/report.html" in {a.path for a in client.list_artifacts(runs[0], "plateau")}
    # Diagnosing again leaves the view as it is; by run id the line is the run's experiment's.
    before = client.get_experiment(exp).tags["mlflow.sharedViewState.plateau"]
    assert main(["diagnose", runs[0][:8], "--artifacts", "json"]) == 0
    err = capsys.readouterr().err
    assert f"#/experiments/{exp}/runs?viewStateShareKey=plateau; each run's diagnosis is in " \
        "its Artifacts tab (plateau/diagnosis.json)\n" in err
    assert client.get_experiment(exp).tags["mlflow.sharedViewState.plateau"] == before


def test_ui_links_name_a_server_without_its_credentials():
    from mlflow_plateau.tracking.ui import run_line, ui_link

    assert ui_link("http://bob:pw@host:5000/", "#/experiments/3/runs") == (
        "open http://***@host:5000/#/experiments/3/runs")
    assert run_line("sqlite:///mlflow.db", "3", "ab") == (
        "mlflow ui --backend-store-uri sqlite:///mlflow.db, then open "
        "http://127.0.0.1:5000/#/experiments/3/runs/ab")
