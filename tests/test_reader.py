"""The public reader: ``read_histories``, ``iter_histories``, ``history_frame`` and ``export``.

Against real SQLite stores (the three-backend equality with ``get_metric_history`` is in
``test_tracking_backends.py``): pages, key selection, the export command's Parquet and CSV files,
and the evaluator run on an existing ``mlflow.keras.autolog`` run through ``history_frame``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import log_curves
from test_tracking import TRAIN, VAL, _fit_tiny_keras

import mlflow_plateau
from mlflow_plateau.cli import main
from mlflow_plateau.tracking import diagnose_run, iter_histories, read_histories


def test_public_names_are_exported():
    for name in ("read_histories", "iter_histories", "history_frame"):
        assert name in dir(mlflow_plateau)
        assert callable(getattr(mlflow_plateau, name))


def test_pages_keys_and_empty_runs(client):
    exp = client.create_experiment("pages")
    log_curves(client, exp, {})  # a run with no metrics adds no rows (its page has one run less)
    ids = [log_curves(client, exp, {"loss": TRAIN[:5] + i, "val_loss": VAL[:5]}) for i in range(5)]
    pages = list(iter_histories(experiment_name="pages", tracking_uri=client.tracking_uri,
                                page_size=2))
    assert [p["run_id"].nunique() for p in pages] == [2, 2, 1]
    whole = read_histories(experiment_name="pages", tracking_uri=client.tracking_uri)
    pd.testing.assert_frame_equal(pd.concat(pages, ignore_index=True), whole)
    assert list(dict.fromkeys(whole["run_id"])) == ids[::-1]  # newest first, like search_runs
    filtered = read_histories(experiment_name="pages", keys="loss",
                              filter_string=f"attributes.run_id = '{ids[0]}'",
                              tracking_uri=client.tracking_uri)
    assert filtered["value"].tolist() == list(TRAIN[:5])
    assert read_histories(ids[:2], keys=["nope"], tracking_uri=client.tracking_uri).empty
    with pytest.raises(ValueError, match="give run ids or an experiment, not both"):
        read_histories(ids, experiment_name="pages", tracking_uri=client.tracking_uri)
    with pytest.raises(ValueError, match="keys must be metric names"):
        read_histories(ids, keys=[3], tracking_uri=client.tracking_uri)


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_export_writes_what_read_histories_reads(client, tmp_path, suffix, capsys):
    exp = client.create_experiment("export")
    for i in range(3):
        log_curves(client, exp, {"loss": TRAIN + i, "val_loss": VAL})
    target = tmp_path / f"metrics.{suffix}"
    assert main(["export", "--experiment-name", "export", "-o", str(target)]) == 0
    assert "180 metric points of 3 run(s) written to" in capsys.readouterr().err
    back = pd.read_parquet(target) if suffix == "parquet" else pd.read_csv(target)
    expected = read_histories(experiment_name="export", tracking_uri=client.tracking_uri)
    assert back["run_id"].astype(str).tolist() == expected["run_id"].tolist()
    np.testing.assert_array_equal(back["value"].to_numpy(), expected["value"].to_numpy())
    np.testing.assert_array_equal(back["step"].to_numpy(), expected["step"].to_numpy())
    # Bad input: one line, exit 1, no file left behind.
    bad = tmp_path / "bad.csv"
    assert main(["export", "--experiment-name", "missing", "-o", str(bad)]) == 1
    err = capsys.readouterr().err.strip()  # the store looked in and what it holds are named
    assert err.startswith("mlflow-plateau: experiment 'missing' not found in sqlite:///")
    assert err.endswith("its experiments: 'Default', 'export'") and "\n" not in err
    assert not bad.exists() and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(
        ".export")) == []
    assert main(["export", "-o", str(bad)]) == 2


def test_history_frame_is_epochs_by_metrics(client):
    from mlflow.entities import Metric

    exp = client.create_experiment("frame")
    run_id = log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL})
    client.log_batch(run_id, metrics=[Metric("val_loss", 5.0, 10**13, 2)])  # step 2 again, newer
    frame = mlflow_plateau.history_frame(run_id, tracking_uri=client.tracking_uri)
    assert list(frame.columns) == ["epoch", "loss", "val_loss"]
    assert frame["epoch"].tolist() == list(range(len(VAL)))
    assert frame["val_loss"][2] == 5.0 and frame["val_loss"][3] == VAL[3]
    # autolog's validation_loss, logged at step 0 after every epoch and once more by an
    # evaluate(): val_loss (with steps) fills its slot, so it is left out of the epochs table;
    # a metric logged only without steps is kept, numbered in logging order.
    client.log_batch(run_id, metrics=[Metric("validation_loss", float(v), 10**13 + i, 0)
                                      for i, v in enumerate([*VAL, 0.1])])
    client.log_batch(run_id, metrics=[Metric("val_auc", a, 10**13 + i, 0)
                                      for i, a in enumerate([0.6, 0.7, 0.8])])
    frame = mlflow_plateau.history_frame(run_id, tracking_uri=client.tracking_uri)
    assert list(frame.columns) == ["epoch", "loss", "val_auc", "val_loss"]
    assert frame["epoch"].tolist() == list(range(len(VAL)))
    assert frame["val_auc"][:3].tolist() == [0.6, 0.7, 0.8]
    with pytest.raises(ValueError, match=f"run {'f' * 32}: run not found"):
        mlflow_plateau.history_frame("f" * 32, tracking_uri=client.tracking_uri)
    empty = log_curves(client, exp, {})
    with pytest.raises(ValueError, match=f"run {empty}: no metric history"):
        mlflow_plateau.history_frame(empty, tracking_uri=client.tracking_uri)
    client.delete_run(run_id)  # refused, as diagnose refuses it
    with pytest.raises(ValueError, match=f"run {run_id}: run is deleted"):
        mlflow_plateau.history_frame(run_id, tracking_uri=client.tracking_uri)


@pytest.mark.slow
def test_evaluator_on_an_existing_autolog_run(client):
    """The README's example: the evaluator on a run tracked earlier, inside start_run(run_id=...)."""
    import mlflow

    mlflow.set_experiment("evaluate-existing")  # conftest resets it after the test
    mlflow.keras.autolog(log_models=False, log_datasets=False, silent=True)
    try:
        with mlflow.start_run() as run:
            _fit_tiny_keras(early_stopping=False, epochs=8)
    finally:
        mlflow.keras.autolog(disable=True)
    run_id = run.info.run_id

    # The README's lines, verbatim in spirit:
    from mlflow_plateau import history_frame

    with mlflow.start_run(run_id=run_id):
        result = mlflow.models.evaluate(data=history_frame(run_id), model_type="training-curve",
                                        evaluators="plateau")

    expected = diagnose_run(run_id, tracking_uri=client.tracking_uri, log=False)
    assert result.metrics["plateau/best_epoch"] == expected.plateau.best_epoch
    assert result.metrics["gap/final"] == pytest.approx(expected.gap.final)
    stored = client.get_run(run_id)
    assert stored.data.tags["plateau.verdict"] == expected.verdict
    assert stored.data.metrics["plateau/epoch"] == result.metrics["plateau/epoch"]
    assert stored.info.status == "FINISHED"


def test_a_lightning_run_logged_at_global_steps_is_read_by_epoch(client):
    """PyTorch Lightning's MLFlowLogger logs at global steps (50 batches an epoch here) with an
    ``epoch`` metric at the same steps: the diagnosis, what it writes and the epochs table are in
    epochs, the same as for the curves logged at step = epoch; never "best at epoch 749"."""
    from mlflow.entities import Metric

    exp = client.create_experiment("lightning")
    per_epoch = log_curves(client, exp, {"train_loss_epoch": TRAIN, "val_loss": VAL})
    run_id = client.create_run(exp).info.run_id
    t, batches, points = 10**12, 50, []
    for e in range(len(VAL)):
        for b in range(10, batches + 1, 10):  # log_every_n_steps=10
            g = e * batches + b - 1
            points += [Metric("train_loss_step", float(TRAIN[e]) + 0.01, t + g, g),
                       Metric("epoch", float(e), t + g, g)]
        g = (e + 1) * batches - 1
        points += [Metric("val_loss", float(VAL[e]), t + g, g),
                   Metric("train_loss_epoch", float(TRAIN[e]), t + g, g),
                   Metric("epoch", float(e), t + g, g)]
    for i in range(0, len(points), 900):
        client.log_batch(run_id, metrics=points[i:i + 900])
    client.set_terminated(run_id)

    uri = client.tracking_uri
    expected = diagnose_run(per_epoch, tracking_uri=uri)
    got = diagnose_run(run_id, tracking_uri=uri)
    assert got.verdict == expected.verdict
    assert got.plateau.to_dict() == expected.plateau.to_dict()
    assert got.gap.final == pytest.approx(expected.gap.final)
    stored = client.get_run(run_id).data.metrics
    assert stored["plateau/best_epoch"] == expected.plateau.best_epoch < len(VAL)
    assert stored["best/train_loss_epoch"] == pytest.approx(TRAIN[expected.plateau.best_epoch])
    frame = mlflow_plateau.history_frame(run_id, tracking_uri=uri)
    assert frame["epoch"].tolist() == list(range(len(VAL)))
    assert frame["val_loss"].tolist() == pytest.approx(list(VAL))
