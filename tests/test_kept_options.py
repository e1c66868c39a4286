"""Options a user gives for a run are kept with its diagnosis and reused, on a real SQLite store.

A run that is at chance only when the class count is known: ``diagnose --num-classes 10`` says
``at_chance``; a later default ``diagnose``, ``compare`` and the evaluator must say the same, not
silently flip it back.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from conftest import log_curves

from mlflow_plateau.cli import main
from mlflow_plateau.tracking import TAG_OPTIONS, TAG_VERDICT, diagnose_runs

N = 30


def _ten_class_run_at_chance(seed: int = 0) -> dict:
    """A 10-class classifier that learned nothing: both losses flat near ln 10, no accuracy."""
    rng = np.random.default_rng(seed)
    e = np.arange(N)
    return {"loss": np.log(10) + 0.02 - 0.0005 * e + 0.004 * rng.standard_normal(N),
            "val_loss": np.log(10) + 0.01 + 0.01 * rng.standard_normal(N)}


def _diagnose(capsys, *args: str) -> tuple[int, dict]:
    code = main(["diagnose", *args, "--json", "--artifacts", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_num_classes_is_kept_and_reused_by_later_commands(tracking_uri, client, capsys):
    exp = client.create_experiment("kept-options")
    run_id = log_curves(client, exp, _ten_class_run_at_chance())
    other = log_curves(client, exp, _ten_class_run_at_chance(1))

    # Without a class count nothing says this loss is chance: a flat, poor fit.
    code, doc = _diagnose(capsys, run_id)
    assert code == 0 and doc["runs"][0]["verdict"] == "underfitting"
    assert TAG_OPTIONS not in client.get_run(run_id).data.tags

    code, doc = _diagnose(capsys, run_id, "--num-classes", "10")
    assert code == 0 and doc["runs"][0]["verdict"] == "at_chance"
    tags = client.get_run(run_id).data.tags
    assert tags[TAG_VERDICT] == "at_chance"
    assert json.loads(tags[TAG_OPTIONS]) == {"num_classes": 10}

    # A later default diagnose keeps the verdict (and the tag).
    code, doc = _diagnose(capsys, run_id)
    assert code == 0 and doc["runs"][0]["verdict"] == "at_chance"
    assert client.get_run(run_id).data.tags[TAG_VERDICT] == "at_chance"
    (d,) = diagnose_runs([run_id], log=False)
    assert d.verdict == "at_chance" and d.config["num_classes"] == 10

    # compare, run without the flag, agrees with the tag stored on the run.
    code = main(["compare", run_id, other, "--json", "--dry-run"])
    rows = {r["key"]: r for r in json.loads(capsys.readouterr().out)["runs"]}
    assert code == 0 and rows[run_id]["verdict"] == "at_chance"

    # An option given again overrides the kept one, and is kept in turn.
    code, doc = _diagnose(capsys, run_id, "--chance", "5.0")
    assert code == 0 and doc["runs"][0]["verdict"] != "at_chance"
    assert json.loads(client.get_run(run_id).data.tags[TAG_OPTIONS]) == {"chance": 5.0,
                                                                         "num_classes": 10}


def test_a_kept_value_the_options_refuse_is_dropped(tracking_uri, client, capsys):
    """An earlier version kept --chance nan (every later default diagnose said at_chance); a tag
    edited by hand can hold a mode that is neither min nor max. Such a value is dropped like
    garbled JSON and the valid ones are still reused."""
    exp = client.create_experiment("kept-refused")
    run_id = log_curves(client, exp, _ten_class_run_at_chance())
    client.set_tag(run_id, TAG_OPTIONS, '{"chance": NaN, "mode": "sideways", "num_classes": 10}')
    code, doc = _diagnose(capsys, run_id)
    assert code == 0 and doc["runs"][0]["verdict"] == "at_chance"
    (d,) = diagnose_runs([run_id], log=False)
    assert d.config["chance"] is None and d.config["mode"] == "min"
    assert d.config["num_classes"] == 10


def test_a_bad_option_fails_the_batch_once_before_any_run_is_read(tracking_uri, client):
    """diagnose_runs(chance=nan) failed every run, one RunFailure each; now it is one
    ValueError; num_classes=10.0 is taken as 10 and kept as an int."""
    import pytest

    exp = client.create_experiment("bad-option")
    run_id = log_curves(client, exp, _ten_class_run_at_chance())
    for bad in ({"chance": float("nan")}, {"num_classes": 1}, {"min_delta": -5.0},
                {"relative_delta": float("nan")}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            list(diagnose_runs(experiment_id=exp, **bad))
    assert TAG_OPTIONS not in client.get_run(run_id).data.tags
    (d,) = diagnose_runs(experiment_id=exp, num_classes=10.0)
    assert d.verdict == "at_chance"
    assert json.loads(client.get_run(run_id).data.tags[TAG_OPTIONS]) == {"num_classes": 10}


def test_the_evaluator_reuses_the_kept_options(tracking_uri, client, capsys):
    import mlflow

    history = _ten_class_run_at_chance()
    exp = client.create_experiment("kept-options-evaluator")
    run_id = log_curves(client, exp, history)
    assert _diagnose(capsys, run_id, "--num-classes", "10")[1]["runs"][0]["verdict"] == "at_chance"
    with mlflow.start_run(run_id=run_id):
        result = mlflow.models.evaluate(data=pd.DataFrame(history), model_type="training-curve",
                                        evaluators="plateau")
    assert result.metrics
    assert client.get_run(run_id).data.tags[TAG_VERDICT] == "at_chance"
