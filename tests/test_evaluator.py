"""The ``plateau`` model evaluator plugin, through ``mlflow.models.evaluate`` on a real SQLite store.

Checks that the entry point is registered, that ``model_type="training-curve"`` diagnoses a history
DataFrame, writes docs/design.md's names to the run and returns them with the artifacts, that its
options and errors are honoured, and that it stays out of ordinary classifier evaluations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlflow_plateau.evaluator import MODEL_TYPE, PlateauEvaluator
from mlflow_plateau.verdict import diagnose_curves


def _overfitting_history(n: int = 30) -> pd.DataFrame:
    """Training loss keeps falling; validation bottoms out and then rises (clear overfitting)."""
    e = np.arange(n)
    return pd.DataFrame({
        "epoch": e,
        "loss": np.exp(-e / 5) + 0.1,
        "val_loss": np.exp(-e / 5) + 0.2 + 0.012 * np.maximum(e - 12, 0),
        "accuracy": 0.6 + 0.39 * (1 - np.exp(-e / 5)),
        "val_accuracy": 0.6 + 0.3 * (1 - np.exp(-e / 5)) - 0.002 * np.maximum(e - 12, 0),
        "note": ["from a CSV"] * n,   # a non-numeric column is ignored
    })


def _evaluate(df: pd.DataFrame, **kwargs):
    import mlflow

    with mlflow.start_run() as run:
        result = mlflow.models.evaluate(data=df, model_type=MODEL_TYPE, **kwargs)
    return run.info.run_id, result


def test_entry_point_registers_the_evaluator(tracking_uri):
    import mlflow

    assert "plateau" in mlflow.models.list_evaluators()


@pytest.mark.parametrize("model_type", ["classifier", "regressor", "question-answering", "text",
                                        None, "training-curves", "Training-Curve"])
def test_can_evaluate_accepts_only_its_model_type(model_type):
    assert not PlateauEvaluator.can_evaluate(model_type=model_type, evaluator_config={})
    assert PlateauEvaluator.can_evaluate(model_type="training-curve", evaluator_config={})


def test_evaluate_returns_and_writes_the_diagnosis(tracking_uri, client):
    df = _overfitting_history()
    run_id, result = _evaluate(df, evaluators="plateau")
    expected = diagnose_curves(df)
    assert expected.verdict == "overfitting"

    # The result carries docs/design.md's metric names with the core's values.
    assert result.metrics["plateau/epoch"] == expected.plateau.epoch
    assert result.metrics["plateau/best_epoch"] == expected.plateau.best_epoch
    assert result.metrics["gap/final"] == pytest.approx(expected.gap.final)
    assert all(k.startswith(("plateau/", "gap/", "forecast/", "best/")) for k in result.metrics)
    # best/<metric>, the model kept at the best epoch, as the run gets them (they were missing)
    best = expected.plateau.best_epoch
    assert result.metrics["best/val_accuracy"] == pytest.approx(df["val_accuracy"][best])
    assert result.metrics["best/loss"] == pytest.approx(df["loss"][best])
    assert result.metrics["forecast/value_at_2x"] == pytest.approx(expected.forecast.value_at_2x)
    assert all(np.isfinite(v) for v in result.metrics.values())

    # ... and the run got the same values at step 0, the tags and the artifacts.
    run = client.get_run(run_id)
    for key, value in result.metrics.items():
        history = client.get_metric_history(run_id, key)
        assert [(m.step, m.value) for m in history] == [(0, pytest.approx(value))]
    assert run.data.tags["plateau.verdict"] == "overfitting"
    assert run.data.tags["plateau.monitor"] == "val_loss"
    assert run.data.tags["plateau.summary"] == expected.summary
    # evaluate() ran inside the open run, but the history it was given is complete.
    assert run.data.tags.get("plateau.partial") != "true"
    stored = {a.path for a in client.list_artifacts(run_id, "plateau")}
    assert stored == {"plateau/diagnosis.json", "plateau/curves.png", "plateau/report.html"}

    assert set(result.artifacts) == {"diagnosis.json", "curves.png", "report.html"}
    content = result.artifacts["diagnosis.json"].content
    assert content["verdict"] == "overfitting" and content["run_id"] == run_id
    assert "schema_version" in content
    assert result.artifacts["curves.png"].content.format == "PNG"
    assert "<html" in result.artifacts["report.html"].content.lower()


def test_evaluate_twice_adds_no_metric_points(tracking_uri, client):
    import mlflow

    df = _overfitting_history()
    with mlflow.start_run() as run:
        first = mlflow.models.evaluate(data=df, model_type=MODEL_TYPE, evaluators="plateau")
        second = mlflow.models.evaluate(data=df, model_type=MODEL_TYPE, evaluators="plateau")
    assert first.metrics == second.metrics
    for key in first.metrics:
        assert len(client.get_metric_history(run.info.run_id, key)) == 1


def test_all_evaluators_resolve_to_plateau_alone(tracking_uri):
    # evaluators=None asks every registered evaluator; only this one accepts "training-curve".
    df = _overfitting_history()
    _, result = _evaluate(df)
    assert result.metrics["plateau/epoch"] == diagnose_curves(df).plateau.epoch
    assert set(result.artifacts) == {"diagnosis.json", "curves.png", "report.html"}


def test_config_options_reach_the_diagnosis(tracking_uri, client):
    df = _overfitting_history()
    run_id, result = _evaluate(df, evaluators="plateau",
                               evaluator_config={"monitor": "val_accuracy", "patience": 3,
                                                 "artifacts": "json"})
    expected = diagnose_curves(df, monitor="val_accuracy", patience=3)
    assert client.get_run(run_id).data.tags["plateau.monitor"] == "val_accuracy"
    assert result.metrics["plateau/epoch"] == expected.plateau.epoch
    assert result.metrics["plateau/stop_epoch"] == expected.plateau.stop_epoch
    assert set(result.artifacts) == {"diagnosis.json"}
    assert {a.path for a in client.list_artifacts(run_id, "plateau")} == {"plateau/diagnosis.json"}
    assert result.artifacts["diagnosis.json"].content["config"]["patience"] == 3


def test_targets_column_is_the_monitor(tracking_uri, client):
    df = _overfitting_history()
    run_id, _ = _evaluate(df, evaluators="plateau", targets="val_accuracy")
    assert client.get_run(run_id).data.tags["plateau.monitor"] == "val_accuracy"


def test_log_false_returns_without_writing(tracking_uri, client):
    df = _overfitting_history()
    run_id, result = _evaluate(df, evaluators="plateau", evaluator_config={"log": False})
    assert "plateau/epoch" in result.metrics
    assert result.artifacts == {}
    run = client.get_run(run_id)
    assert not any(k.startswith(("plateau/", "gap/")) for k in run.data.metrics)
    assert "plateau.verdict" not in run.data.tags


def test_unknown_config_key_is_named(tracking_uri):
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match="'patients'"):
        _evaluate(_overfitting_history(), evaluators="plateau",
                  evaluator_config={"patients": 5})


def test_history_that_cannot_be_diagnosed_names_run_and_reason(tracking_uri, client):
    import mlflow
    from mlflow.exceptions import MlflowException

    df = _overfitting_history()
    with mlflow.start_run() as run, pytest.raises(MlflowException) as info:
        mlflow.models.evaluate(data=df, model_type=MODEL_TYPE, evaluators="plateau",
                               evaluator_config={"monitor": "val_auc"})
    assert run.info.run_id in str(info.value.message)
    assert "val_auc" in str(info.value.message)
    assert "plateau.verdict" not in client.get_run(run.info.run_id).data.tags


def test_a_history_without_validation_is_refused_as_diagnose_run_refuses_it(tracking_uri,
                                                                           client):
    """Training metrics only: the training loss was diagnosed as if it were validation ("over
    the last 7 epochs validation still improved") and the verdict written to the run."""
    import mlflow
    from mlflow.exceptions import MlflowException

    df = _overfitting_history()[["epoch", "loss", "accuracy"]]
    with mlflow.start_run() as run, pytest.raises(MlflowException,
                                                   match="no validation metric") as info:
        mlflow.models.evaluate(data=df, model_type=MODEL_TYPE, evaluators="plateau")
    assert run.info.run_id in str(info.value.message)
    assert "plateau.verdict" not in client.get_run(run.info.run_id).data.tags
    # Asked for, a training metric is diagnosed.
    run_id, _ = _evaluate(df, evaluators="plateau", evaluator_config={"monitor": "loss"})
    assert client.get_run(run_id).data.tags["plateau.monitor"] == "loss"


def test_col_mapping_reads_a_column_under_the_metric_name_kept_with_the_run(tracking_uri,
                                                                             client):
    """The mapped column name ("validation loss") was kept as the run's monitor: every later
    default diagnosis failed with monitor 'validation loss' not in the history."""
    import json

    df = _overfitting_history().rename(columns={"val_loss": "validation loss"})
    run_id, result = _evaluate(df, evaluators="plateau", evaluator_config={
        "monitor": "val_loss", "col_mapping": {"val_loss": "validation loss"}})
    tags = client.get_run(run_id).data.tags
    assert tags["plateau.monitor"] == "val_loss"
    assert json.loads(tags["plateau.options"]) == {"monitor": "val_loss"}
    assert result.metrics["plateau/best_epoch"] == int(_overfitting_history()["val_loss"].idxmin())
    # A column already named val_loss is not the one the mapping names.
    both = _overfitting_history().assign(**{"validation loss": lambda d: d["val_loss"][::-1].values})
    _, result = _evaluate(both, evaluators="plateau", evaluator_config={
        "monitor": "val_loss", "col_mapping": {"val_loss": "validation loss"}})
    assert result.metrics["plateau/best_epoch"] == int(both["validation loss"].idxmin())


def test_classifier_evaluation_is_unaffected(tracking_uri, client):
    """With the plugin installed, a default classifier evaluation runs as before, without it."""
    import mlflow

    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, 200)
    pred = np.where(rng.random(200) < 0.8, label, 1 - label)
    df = pd.DataFrame({"x": rng.normal(size=200), "label": label, "pred": pred})
    with mlflow.start_run() as run:
        result = mlflow.models.evaluate(data=df, targets="label", predictions="pred",
                                        model_type="classifier",
                                        evaluator_config={"log_model_explainability": False})
    assert result.metrics["accuracy_score"] == pytest.approx(float(np.mean(label == pred)))
    assert not any(k.startswith(("plateau/", "gap/")) for k in result.metrics)
    tags = client.get_run(run.info.run_id).data.tags
    assert not any(k.startswith("plateau.") for k in tags)


@pytest.mark.slow
def test_evaluates_a_real_keras_csvlogger_file(tracking_uri, client, tmp_path):
    import keras
    import mlflow

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy", metrics=["accuracy"])
    log = tmp_path / "training.log"
    history = model.fit(x, y, validation_split=0.25, epochs=8, batch_size=16, verbose=0,
                        callbacks=[keras.callbacks.CSVLogger(str(log))])

    df = pd.read_csv(log)
    with mlflow.start_run() as run:
        result = mlflow.models.evaluate(data=df, model_type=MODEL_TYPE, evaluators="plateau")
    expected = diagnose_curves(history.history)
    tags = client.get_run(run.info.run_id).data.tags
    assert tags["plateau.verdict"] == expected.verdict
    assert result.metrics["plateau/best_epoch"] == expected.plateau.best_epoch
    assert result.metrics["plateau/best_value"] == pytest.approx(expected.plateau.best_value)
