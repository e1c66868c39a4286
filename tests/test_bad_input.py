"""Bad input, as users meet it: each case logged to a real MLflow store and run through the command.

Every test here registers, with ``@gets(input, outcome)``, the row it proves in the table of bad
inputs in docs/guarantees.md; ``test_the_guarantees_table_is_what_the_tests_assert`` keeps the two
in sync. Cases already proven elsewhere (the core's unit tests, test_cli, test_tracking) are rows of
that table naming their test instead; they are not repeated here.

Histories are logged with ``MlflowClient.log_batch`` to a SQLite store in ``tmp_path`` (the
``client`` fixture) and diagnosed with ``mlflow-plateau diagnose RUN_ID --json`` in-process.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
from conftest import log_curves

from mlflow_plateau.cli import main
from mlflow_plateau.verdict import VERDICTS

ROOT = Path(__file__).resolve().parents[1]
GUARANTEES = ROOT / "docs" / "guarantees.md"

EPOCHS = np.arange(30)
TRAIN = 0.6 * np.exp(-EPOCHS / 5) + 0.08
VAL = 0.6 * np.exp(-EPOCHS / 5) + 0.10

# input -> (what it gets, the test proving it); filled by @gets below
ROWS: dict[str, tuple[str, str]] = {}


def gets(what: str, outcome: str) -> Callable:
    """Register the table row ``| what | outcome | test_bad_input.py::<test> |``."""
    def register(test: Callable) -> Callable:
        assert what not in ROWS, what
        ROWS[what] = (outcome, f"test_bad_input.py::{test.__name__}")
        return test
    return register


@pytest.fixture
def exp(client) -> str:
    return client.create_experiment("bad-input")


def diagnose(capsys, run_id: str, *args: str) -> tuple[int, dict | None, str]:
    """``mlflow-plateau diagnose RUN_ID --json``: exit code, the run's diagnosis (None when it
    failed) and stderr."""
    code = main(["diagnose", run_id, "--json", "--artifacts", "json", *args])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    runs = [r for r in doc["runs"] if r["run_id"] == run_id]
    return code, (runs[0] if runs else None), captured.err


def log_points(client, exp: str, points: Mapping[str, Sequence[tuple[int, float, int]]]) -> str:
    """A finished run with the given (step, value, timestamp offset) points, in the given order."""
    from mlflow.entities import Metric

    run_id = client.create_run(exp).info.run_id
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(name, float(v), now + t, s)
                                      for name, pts in points.items() for s, v, t in pts])
    client.set_terminated(run_id)
    return run_id


def without_run_id(doc: dict) -> dict:
    """A diagnosis without what names the run (its id and, in --json, its name)."""
    return {k: v for k, v in doc.items() if k not in ("run_id", "run_name")}


# --- histories -------------------------------------------------------------------------------

@gets("empty history (a run without metrics)", "failure `no metric history`, exit 1")
def test_run_without_metrics(client, exp, capsys):
    run_id = log_curves(client, exp, {}, params={"lr": "0.1"})
    code, doc, err = diagnose(capsys, run_id)
    assert (code, doc) == (1, None)
    assert err == f"mlflow-plateau: run {run_id}: no metric history\n"


@gets("empty training log file (`{}`, a CSV header only)",
      "`FILE: no training curves in the history; metrics present: none`, exit 1")
def test_empty_log_files(tmp_path, capsys):
    for name, text in (("h.json", "{}"), ("h.csv", "epoch,loss,val_loss\n")):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        assert main(["curves", str(path)]) == 1
        assert capsys.readouterr().err == (f"mlflow-plateau: {path}: no training curves in the "
                                           "history; metrics present: none\n")


@gets("one point", "verdict `insufficient_data`")
def test_one_point(client, exp, capsys):
    run_id = log_curves(client, exp, {"loss": [0.5], "val_loss": [0.6]})
    code, doc, _ = diagnose(capsys, run_id)
    assert code == 0 and doc["verdict"] == "insufficient_data"
    assert doc["plateau"] is None and doc["summary"].startswith("Only 1 usable epoch")
    assert client.get_run(run_id).data.tags["plateau.verdict"] == "insufficient_data"


@gets("all NaN", "verdict `diverged` at epoch 0")
def test_all_nan(client, exp, capsys):
    run_id = log_curves(client, exp, {"loss": [math.nan] * 5, "val_loss": [math.nan] * 5})
    code, doc, _ = diagnose(capsys, run_id)
    assert code == 0 and doc["verdict"] == "diverged"
    assert doc["evidence"]["diverged_epoch"] == 0 and "epoch 0" in doc["summary"]
    assert "plateau/epoch" not in client.get_run(run_id).data.metrics  # nothing to report


@gets("NaN mid-curve", "verdict `diverged`, naming the first NaN epoch")
def test_nan_mid_curve(client, exp, capsys):
    val = VAL.copy()
    val[12:] = math.nan  # Keras' TerminateOnNaN stops here; without it NaN goes on
    run_id = log_curves(client, exp, {"loss": TRAIN, "val_loss": val})
    code, doc, _ = diagnose(capsys, run_id)
    assert code == 0 and doc["verdict"] == "diverged"
    assert doc["evidence"]["diverged_epoch"] == 12 and "epoch 12" in doc["summary"]


@gets("inf mid-curve", "verdict `diverged`, naming the first inf epoch, when the curves stay "
      "inf to the end (also from SQL stores, which keep inf as ±1.8e308); an inf they recover "
      "from is a logging glitch: dropped and listed in `non_finite_dropped`, not a divergence")
def test_inf_mid_curve(client, exp, capsys):
    val, train = VAL.copy(), TRAIN.copy()
    val[12:] = train[12:] = math.inf
    run_id = log_curves(client, exp, {"loss": train, "val_loss": val})
    code, doc, _ = diagnose(capsys, run_id)
    assert code == 0 and doc["verdict"] == "diverged"
    assert doc["evidence"]["diverged_epoch"] == 12
    val, train = VAL.copy(), TRAIN.copy()
    val[12] = train[12] = math.inf
    glitch = log_curves(client, exp, {"loss": train, "val_loss": val})
    code, doc, _ = diagnose(capsys, glitch)
    assert code == 0 and doc["verdict"] != "diverged"
    assert doc["evidence"]["non_finite_dropped"] == {"val_loss": [12], "loss": [12]}
    assert doc["evidence"]["epochs"] == len(VAL) - 1


@gets("constant curves", "verdict `underfitting` (never improved)")
def test_constant(client, exp, capsys):
    run_id = log_curves(client, exp, {"loss": [0.5] * 30, "val_loss": [0.6] * 30})
    code, doc, _ = diagnose(capsys, run_id)
    assert code == 0 and doc["verdict"] == "underfitting"
    assert "fell by only 0%" in doc["evidence"]["decided_by"]


@gets("negative losses", "diagnosed like any loss (lower is better)")
def test_negative_losses(client, exp, capsys):
    # e.g. the negative log-likelihood of a density model: below zero and still a loss
    loss = -2.0 - 6.0 * (1 - np.exp(-EPOCHS / 5))
    run_id = log_curves(client, exp, {"loss": loss, "val_loss": loss + 0.1})
    code, doc, _ = diagnose(capsys, run_id)
    assert code == 0 and doc["mode"] == "min" and doc["plateau"]["best_value"] < -7.5
    assert doc["verdict"] in VERDICTS and doc["verdict"] != "diverged"


@gets("accuracy in percent (0-100)", "read as a fraction; evidence `percent_scaled: true`")
def test_accuracy_in_percent(client, exp, capsys):
    acc = 50 + 45 * (1 - np.exp(-EPOCHS / 5))
    run_id = log_curves(client, exp, {"accuracy": acc, "val_accuracy": acc - 5})
    code, doc, _ = diagnose(capsys, run_id)
    assert code == 0 and doc["monitor"] == "val_accuracy" and doc["mode"] == "max"
    assert doc["evidence"]["percent_scaled"] is True
    assert doc["plateau"]["best_value"] == pytest.approx((acc[-1] - 5) / 100)
    assert client.get_run(run_id).data.metrics["plateau/best_value"] == pytest.approx((acc[-1] - 5) / 100)


@gets("steps not starting at 0", "epochs reported as logged")
def test_steps_not_starting_at_zero(client, exp, capsys):
    steps = list(range(5, 35))
    run_id = log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL},
                        steps={"loss": steps, "val_loss": steps})
    code, doc, _ = diagnose(capsys, run_id)
    assert code == 0 and doc["verdict"] == "healthy"
    assert doc["plateau"]["best_epoch"] == 34 and 5 <= doc["plateau"]["epoch"] <= 34
    assert client.get_run(run_id).data.metrics["plateau/best_epoch"] == 34


@gets("steps with gaps", "epochs reported as logged")
def test_steps_with_gaps(client, exp, capsys):
    steps = list(range(0, 60, 2))
    run_id = log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL},
                        steps={"loss": steps, "val_loss": steps})
    code, doc, _ = diagnose(capsys, run_id)
    assert code == 0 and doc["plateau"]["best_epoch"] == 58
    assert doc["plateau"]["epoch"] % 2 == 0 and doc["plateau"]["last_epoch"] == 58


@gets("steps logged out of order", "sorted by step: the same diagnosis as in order")
def test_unsorted_steps(client, exp, capsys):
    order = np.random.default_rng(0).permutation(30)
    in_order = log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL})
    shuffled = log_points(client, exp, {"loss": [(int(s), TRAIN[s], i) for i, s in enumerate(order)],
                                        "val_loss": [(int(s), VAL[s], i) for i, s in
                                                     enumerate(order)]})
    _, a, _ = diagnose(capsys, in_order)
    code, b, _ = diagnose(capsys, shuffled)
    assert code == 0 and without_run_id(a) == without_run_id(b)


@gets("a step logged twice", "the newest point (by timestamp) wins")
def test_duplicated_steps_newest_wins(client, exp, capsys):
    in_order = log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL})
    # Every step first logged as garbage, then again later with the real value; and one step
    # whose later point was logged first in the batch (timestamps decide, not batch order).
    twice = log_points(client, exp, {
        "loss": [(s, 5.0, 0) for s in range(30)] + [(s, TRAIN[s], 100 + s) for s in range(30)],
        "val_loss": [(s, VAL[s], 100 + s) for s in range(30)] + [(s, 7.0, 0) for s in range(30)]})
    _, a, _ = diagnose(capsys, in_order)
    code, b, _ = diagnose(capsys, twice)
    assert code == 0 and without_run_id(a) == without_run_id(b)


@gets("a curve logged without `step=` (every point at MLflow's default step 0)",
      "read as a curve in logging order: the same diagnosis as with steps")
def test_a_curve_logged_without_steps(client, exp, capsys):
    import mlflow

    stepped = log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL})
    with mlflow.start_run(experiment_id=exp) as run:
        for train, val in zip(TRAIN, VAL, strict=True):
            mlflow.log_metrics({"loss": float(train), "val_loss": float(val)})
            time.sleep(0.002)  # distinct timestamps, as epochs of a real training have
    assert {p.step for p in client.get_metric_history(run.info.run_id, "val_loss")} == {0}
    _, a, _ = diagnose(capsys, stepped)
    code, b, _ = diagnose(capsys, run.info.run_id)
    assert code == 0 and b["verdict"] != "insufficient_data"
    assert without_run_id(a) == without_run_id(b)


@gets("an experiment with a sweep's parent run (nested runs; the parent logs no curve)",
      "the parent is left out (named on stderr, `skipped` in `--json`), the children diagnosed "
      "and compared, exit 0; named by id, it still fails")
def test_a_sweep_parent_is_left_out_of_an_experiment(client, exp, capsys):
    parent = client.create_run(exp, run_name="sweep").info.run_id
    client.log_metric(parent, "best_val_loss", 0.3)
    children = [log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL + i / 50},
                           tags={"mlflow.parentRunId": parent}) for i in range(3)]
    client.set_terminated(parent)
    name = client.get_experiment(exp).name
    code = main(["diagnose", "--experiment-id", exp, "--json", "--dry-run"])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert code == 0 and doc["failures"] == []
    assert sorted(r["run_id"] for r in doc["runs"]) == sorted(children)
    assert [f["run_id"] for f in doc["skipped"]] == [parent]
    assert f"left out 1 parent run(s) of nested runs with no curve of their own: {parent}" \
        in captured.err
    assert main(["compare", "--experiment-name", name, "--dry-run"]) == 0
    assert f"run {parent}" not in capsys.readouterr().err
    # Named, it is what it is: a run without a validation metric.
    code, _, err = diagnose(capsys, parent)
    assert code == 1 and "no validation metric" in err
    # A run without curves that is no parent still fails in the experiment's batch.
    lone = client.create_run(exp).info.run_id
    client.log_metric(lone, "best_val_loss", 0.3)
    assert main(["diagnose", "--experiment-id", exp, "--dry-run"]) == 1
    assert f"run {lone}: no validation metric" in capsys.readouterr().err


@gets("1,000,000 epochs", "diagnosed (about a second for the core)")
def test_a_million_epochs(tmp_path, capsys):
    n = 1_000_000
    x = np.arange(n)
    noise = np.random.default_rng(0).normal(0, 0.002, n)
    history = {"loss": (0.6 * np.exp(-x / 1e5) + 0.08).tolist(),
               "val_loss": (0.6 * np.exp(-x / 1e5) + 0.1 + noise).tolist()}
    path = tmp_path / "history.json"
    path.write_text(json.dumps(history), encoding="utf-8")
    assert main(["curves", str(path), "--json"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    assert doc["verdict"] in VERDICTS and doc["evidence"]["epochs"] == n
    assert 0 <= doc["plateau"]["low"] <= doc["plateau"]["epoch"] <= doc["plateau"]["high"] < n


@gets("training and validation of different lengths",
      "plateau on the whole monitor; gap over the epochs both have")
def test_train_and_val_of_different_lengths(client, exp, capsys):
    run_id = log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL[:20]})
    code, doc, _ = diagnose(capsys, run_id)
    assert code == 0 and doc["plateau"]["last_epoch"] == 19
    assert doc["gap"]["final"] == pytest.approx(VAL[19] - TRAIN[19])


@gets("only training metrics",
      "failure `no validation metric (metrics: ...); pass monitor= (--monitor) ...`, exit 1; "
      "`--monitor loss` diagnoses it")
def test_only_training_metrics(client, exp, capsys):
    run_id = log_curves(client, exp, {"loss": TRAIN, "accuracy": 1 - TRAIN})
    code, doc, err = diagnose(capsys, run_id)
    assert (code, doc) == (1, None)
    assert err == (f"mlflow-plateau: run {run_id}: no validation metric (metrics: accuracy, loss); "
                   "pass monitor= (--monitor) to diagnose a training metric\n")
    code, doc, _ = diagnose(capsys, run_id, "--monitor", "loss")
    assert code == 0 and doc["monitor"] == "loss" and doc["gap"] is None


@gets("only validation metrics", "diagnosed; no gap (no `gap/*` metrics written)")
def test_only_validation_metrics(client, exp, capsys):
    run_id = log_curves(client, exp, {"val_loss": VAL})
    code, doc, _ = diagnose(capsys, run_id)
    assert code == 0 and doc["verdict"] == "healthy" and doc["gap"] is None
    metrics = client.get_run(run_id).data.metrics
    assert "plateau/epoch" in metrics and not any(k.startswith("gap/") for k in metrics)


@gets("metric names with spaces, slashes or unicode",
      "paired and diagnosed (`Train Loss`/`Val Loss`, `train/loss`/`val/loss`, `train_loss_ø`/`val_loss_ø`)")
@pytest.mark.parametrize("train, val", [("Train Loss", "Val Loss"), ("train/loss", "val/loss"),
                                        ("train_loss_ø", "val_loss_ø")])
def test_metric_names_with_spaces_slashes_unicode(client, exp, capsys, train, val):
    run_id = log_curves(client, exp, {train: TRAIN, val: VAL})
    code = main(["diagnose", run_id, "--json", "--artifacts", "all"])  # report and plot too
    (doc,) = json.loads(capsys.readouterr().out)["runs"]
    assert code == 0 and (doc["monitor"], doc["train_metric"]) == (val, train)
    assert doc["verdict"] == "healthy"
    run = client.get_run(run_id)
    assert run.data.tags["plateau.monitor"] == val
    assert {a.path for a in client.list_artifacts(run_id, "plateau")} == {
        "plateau/diagnosis.json", "plateau/curves.png", "plateau/report.html"}


@gets("a metric name that says nothing about its direction (`val_pérdida`)",
      "failure `cannot tell whether lower or higher is better for metric 'val_pérdida'; pass "
      "mode=... (--mode ... on the command line)`, exit 1; `--mode min` diagnoses it")
def test_unicode_name_of_unknown_direction(client, exp, capsys):
    run_id = log_curves(client, exp, {"pérdida": TRAIN, "val_pérdida": VAL})
    code, doc, err = diagnose(capsys, run_id)
    assert (code, doc) == (1, None)
    assert err.startswith(f"mlflow-plateau: run {run_id}: cannot tell whether lower or higher is "
                          "better for metric 'val_pérdida'")
    assert "--mode min or --mode max on the command line" in err  # the flag the user has
    code, doc, _ = diagnose(capsys, run_id, "--mode", "min")
    assert code == 0 and (doc["monitor"], doc["verdict"]) == ("val_pérdida", "healthy")


# --- runs ------------------------------------------------------------------------------------

@gets("a deleted run", "failure `run is deleted`, exit 1; nothing written")
def test_deleted_run(client, exp, capsys):
    run_id = log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL})
    client.delete_run(run_id)
    code, doc, err = diagnose(capsys, run_id)
    assert (code, doc) == (1, None)
    assert err == f"mlflow-plateau: run {run_id}: run is deleted\n"
    assert "plateau.verdict" not in client.get_run(run_id).data.tags


@gets("a run still RUNNING", "diagnosed from what is logged; tag `plateau.partial = true`, "
      "evidence `partial: true`; its status is left alone")
def test_running_run(client, exp, capsys):
    run_id = log_curves(client, exp, {"loss": TRAIN[:12], "val_loss": VAL[:12]}, terminate=False)
    code, doc, _ = diagnose(capsys, run_id)
    assert code == 0 and doc["evidence"]["partial"] is True
    run = client.get_run(run_id)
    assert run.data.tags["plateau.partial"] == "true" and run.info.status == "RUNNING"


@gets("a run of a deleted experiment", "failure `run is deleted`, exit 1")
def test_run_of_a_deleted_experiment(client, capsys):
    gone = client.create_experiment("gone")
    run_id = log_curves(client, gone, {"loss": TRAIN, "val_loss": VAL})
    client.delete_experiment(gone)
    code, doc, err = diagnose(capsys, run_id)
    assert (code, doc) == (1, None)
    assert err == f"mlflow-plateau: run {run_id}: run is deleted\n"


@gets("a deleted experiment by name (`--experiment-name`)",
      "`experiment 'NAME' is deleted (restore it with ...)`, exit 1")
def test_deleted_experiment_by_name(client, capsys):
    gone = client.create_experiment("gone")
    log_curves(client, gone, {"loss": TRAIN, "val_loss": VAL})
    client.delete_experiment(gone)
    assert main(["diagnose", "--experiment-name", "gone"]) == 1
    assert capsys.readouterr().err == (
        f"mlflow-plateau: experiment 'gone' is deleted (restore it with "
        f"'mlflow experiments restore --experiment-id {gone}')\n")


# --- scaling ---------------------------------------------------------------------------------

def size_run(client, exp: str, size, error: float, **params) -> str:
    curve = error + (EPOCHS - 8.0) ** 2 / 300.0
    return log_curves(client, exp, {"loss": curve - 0.05, "val_loss": curve},
                      params={"train_size": size, **params})


@gets("scaling: a size param that is not a number, or is 0",
      "failure `param 'train_size' is not a number: 'abc'` / `must be a positive number, not '0'`"
      ", exit 1; the other runs are fitted")
def test_scaling_sizes_not_numbers_or_zero(client, capsys):
    exp = client.create_experiment("sizes")
    fitted = [size_run(client, exp, n, 2.0 * n ** -0.5) for n in (100, 200, 400, 800)]
    text = size_run(client, exp, "abc", 0.1)
    zero = size_run(client, exp, 0, 0.1)
    assert main(["scaling", "--experiment-name", "sizes", "--json"]) == 1
    captured = capsys.readouterr()
    (group,) = json.loads(captured.out)["groups"]
    assert sorted(group["run_ids"]) == sorted(fitted) and group["verdict"] == "data_limited"
    assert sorted(captured.err.splitlines()) == sorted([
        f"mlflow-plateau: run {text}: param 'train_size' is not a number: 'abc'",
        f"mlflow-plateau: run {zero}: param 'train_size' must be a positive number, not '0'"])


@gets("scaling: repeated sizes (several seeds per size)",
      "every run is a point; 3 distinct sizes are enough")
def test_scaling_repeated_sizes(client, capsys):
    exp = client.create_experiment("seeds")
    for n in (100, 200, 400):
        for seed in range(2):
            size_run(client, exp, n, 2.0 * n ** -0.5 * (1 + 0.01 * seed), seed=seed)
    assert main(["scaling", "--experiment-name", "seeds", "--group-by", "model", "--json"]) == 0
    (group,) = json.loads(capsys.readouterr().out)["groups"]
    assert group["sizes"] == [100, 100, 200, 200, 400, 400]
    assert group["verdict"] == "data_limited"


@gets("scaling: a run whose error is 0 (an accuracy of 1.0) or whose metric diverged",
      "failure `its best val_accuracy is 1, an error of 0: ...` / `val_loss is nan at epoch 3: "
      "a run that diverged is not a point of the learning curve`, exit 1; the other runs and "
      "groups are fitted")
def test_scaling_run_with_zero_error_or_diverged(client, capsys):
    """One perfect accuracy stopped the whole command (no group fitted, nothing logged); a run
    that diverged was fitted with its best from before the NaN."""
    exp = client.create_experiment("zero-error")
    for opt in ("adam", "sgd"):
        for n in (100, 200, 400, 800):
            acc = 1.0 - 2.0 * n ** -0.5 + (EPOCHS - 20.0) ** 2 / 1e4
            log_curves(client, exp, {"loss": 1 - acc, "val_accuracy": acc},
                       params={"train_size": n, "opt": opt})
    perfect = log_curves(client, exp, {"loss": 0.1 + 0 * EPOCHS,
                                       "val_accuracy": np.minimum(1.0, 0.9 + EPOCHS / 20)},
                         params={"train_size": 1600, "opt": "sgd"})
    code = main(["scaling", "--experiment-name", "zero-error", "--metric", "val_accuracy",
                 "--json", "--dry-run"])
    captured = capsys.readouterr()
    assert code == 1
    groups = json.loads(captured.out)["groups"]
    assert [g["group"] for g in groups] == ["opt=adam", "opt=sgd"]
    assert all(len(g["run_ids"]) == 4 and g["verdict"] == "data_limited" for g in groups)
    assert captured.err.splitlines() == [
        f"mlflow-plateau: run {perfect}: its best val_accuracy is 1, an error of 0: a learning "
        "curve is fitted in log space and needs errors > 0"]

    exp = client.create_experiment("diverged-member")
    for n in (100, 200, 400):
        size_run(client, exp, n, 2.0 * n ** -0.5)
    curve = 2.0 * 800 ** -0.5 + (EPOCHS - 8.0) ** 2 / 300.0
    diverged = log_curves(client, exp, {"loss": curve, "val_loss": np.where(EPOCHS < 3, curve,
                                                                              np.nan)},
                          params={"train_size": 800})
    assert main(["scaling", "--experiment-name", "diverged-member", "--json", "--dry-run"]) == 1
    captured = capsys.readouterr()
    (group,) = json.loads(captured.out)["groups"]
    assert diverged not in group["run_ids"] and group["verdict"] == "data_limited"
    assert captured.err.splitlines() == [
        f"mlflow-plateau: run {diverged}: val_loss is nan at epoch 3: a run that diverged is not "
        "a point of the learning curve"]


@gets("scaling: errors that grow with size",
      "verdict `saturated`, the summary says `(error grows with size)`")
def test_scaling_errors_grow_with_size(client, capsys):
    exp = client.create_experiment("grow")
    for n in (100, 200, 400, 800):
        size_run(client, exp, n, 0.2 + n / 4000)
    assert main(["scaling", "--experiment-name", "grow", "--json"]) == 0
    (group,) = json.loads(capsys.readouterr().out)["groups"]
    assert group["verdict"] == "saturated" and "(error grows with size)" in group["summary"]


# --- the command line ------------------------------------------------------------------------

@gets("unknown option", "the command's usage and `unrecognized arguments: ...` with a close option "
     "suggested (`did you mean --patience?`), exit 2")
@pytest.mark.parametrize("command", [["diagnose", "x"], ["scaling", "--experiment-name", "x"],
                                     ["import", "f.csv"], ["curves", "f.csv"], ["compare", "a", "b"]])
def test_unknown_option_in_every_command(tracking_uri, command, capsys):
    assert main([*command, "--bogus"]) == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --bogus" in err and "Traceback" not in err


@gets("an experiment without runs", "`nothing to diagnose: experiment 'NAME' has no active runs`, "
      "exit 0 (nothing asked for was left undone)")
def test_empty_experiment(client, capsys):
    client.create_experiment("empty")
    assert main(["diagnose", "--experiment-name", "empty"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "mlflow-plateau: nothing to diagnose: experiment 'empty' has no active runs\n"
    assert captured.out == ""
    assert main(["diagnose", "--experiment-name", "empty", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"dry_run": False, "runs": [], "failures": [],
                                                   "stopped": None, "skipped": []}


@gets("a filter that matches no run",
      "`nothing to diagnose: no active run of experiment 'NAME' matches the filter`, exit 0")
def test_filter_matching_nothing(client, exp, capsys):
    log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL}, params={"opt": "adam"})
    assert main(["diagnose", "--experiment-id", exp, "--filter", "params.opt = 'sgd'"]) == 0
    assert capsys.readouterr().err == (f"mlflow-plateau: nothing to diagnose: no active run of "
                                       f"experiment id '{exp}' matches the filter\n")


# --- the table in docs/guarantees.md (Guarantees) ------------------------------------------------------

TABLE_ROW = re.compile(r"^\|(?P<what>[^|]+)\|(?P<gets>[^|]+)\|(?P<test>[^|]+)\|\s*$")


def table_rows() -> dict[str, tuple[str, str]]:
    rows = {}
    text = GUARANTEES.read_text(encoding="utf-8")
    section = text[text.index("\n## Guarantees"):]
    section = section[:section.find("\n## ", 1)] if "\n## " in section[1:] else section
    for line in section.splitlines():
        m = TABLE_ROW.match(line)
        if m and not set(m["what"].strip()) <= {"-", ":"} and m["test"].strip() != "Test":
            rows[m["what"].strip()] = (m["gets"].strip(), m["test"].strip().strip("`"))
    return rows


def test_the_guarantees_table_is_what_the_tests_assert():
    rows = table_rows()
    for what, (outcome, test) in ROWS.items():
        assert rows.get(what) == (outcome, test), f"docs/guarantees.md Guarantees row for {what!r}"
    # Rows proven in other files name a test that exists.
    for what, (_, test) in rows.items():
        path, _, name = test.partition("::")
        assert name and f"def {name}(" in (ROOT / "tests" / path).read_text(encoding="utf-8"), \
            f"{what!r}: {test}"
