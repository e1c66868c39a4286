"""``PlateauCallback`` on real tiny Keras trainings against a real SQLite MLflow store.

Without autolog the callback logs every epoch's metrics at step = epoch; beside
``mlflow.keras.autolog`` / ``mlflow.tensorflow.autolog`` (or an explicit ``MlflowCallback``) it
does not, so each metric keeps exactly one point per epoch. Either way the run ends up with the
diagnosis (docs/design.md's metrics, tags, artifacts), and nothing about the diagnosis or the tracking
store can make ``fit`` fail.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import free_port

pytestmark = pytest.mark.slow

EPOCHS = 8
CURVE_METRICS = ("loss", "val_loss", "accuracy", "val_accuracy")


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("float32")
    return x, y


def _fit(callbacks, *, epochs: int = EPOCHS, validation: bool = True):
    import keras

    keras.utils.set_random_seed(0)
    x, y = _data()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy", metrics=["accuracy"])
    return model.fit(x, y, validation_split=0.25 if validation else 0.0, epochs=epochs,
                     batch_size=16, verbose=0, callbacks=callbacks)


def _points(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def _assert_one_point_per_epoch(client, run_id: str, history, epochs: int = EPOCHS) -> None:
    for key in CURVE_METRICS:
        points = _points(client, run_id, key)
        assert [s for s, _ in points] == list(range(epochs)), key
        assert [v for _, v in points] == pytest.approx(history.history[key]), key


def _assert_diagnosed(client, run_id: str, callback, *, single: bool = True) -> None:
    """The run holds the callback's diagnosis (``single``: one point per plateau/gap metric)."""
    assert callback.wait(timeout=60)
    run = client.get_run(run_id)
    assert callback.diagnosis is not None and callback.diagnosis.run_id == run_id
    assert run.data.tags["plateau.verdict"] == callback.diagnosis.verdict
    assert run.data.tags["plateau.summary"] == callback.diagnosis.summary
    assert run.data.tags["plateau.monitor"] == "val_loss"
    assert run.data.metrics["plateau/best_epoch"] == callback.diagnosis.plateau.best_epoch
    assert run.data.metrics["plateau/epoch"] == callback.diagnosis.plateau.epoch
    if single:
        for key in ("plateau/epoch", "plateau/best_epoch", "gap/final"):
            assert [s for s, _ in _points(client, run_id, key)] == [0], key
    assert {a.path for a in client.list_artifacts(run_id, "plateau")} == {
        "plateau/diagnosis.json", "plateau/curves.png", "plateau/report.html"}


@pytest.fixture
def autolog_off():
    """Leave both autolog integrations disabled after the test, whatever it enabled."""
    yield
    import mlflow

    mlflow.keras.autolog(disable=True)
    mlflow.tensorflow.autolog(disable=True)


def test_without_autolog_logs_epochs_and_diagnosis_in_its_own_run(tracking_uri, client, capsys):
    import mlflow

    from mlflow_plateau import PlateauCallback

    callback = PlateauCallback()
    history = _fit([callback])
    assert callback.logs_epochs is True
    assert mlflow.active_run() is None  # the run it started is ended again
    run = client.get_run(callback.run_id)
    assert run.info.status == "FINISHED"
    _assert_one_point_per_epoch(client, callback.run_id, history)
    _assert_diagnosed(client, callback.run_id, callback)
    assert run.data.tags.get("plateau.partial") != "true"  # training had ended: not partial
    assert f"PlateauCallback: {callback.diagnosis.summary}" in capsys.readouterr().out


def test_uses_the_active_run_and_leaves_it_open(tracking_uri, client):
    import mlflow

    from mlflow_plateau import PlateauCallback

    callback = PlateauCallback(verbose=0)
    with mlflow.start_run() as run:
        history = _fit([callback])
        assert mlflow.active_run().info.run_id == run.info.run_id
    assert callback.run_id == run.info.run_id
    _assert_one_point_per_epoch(client, run.info.run_id, history)
    _assert_diagnosed(client, run.info.run_id, callback)


@pytest.mark.parametrize("flavor", ["keras", "tensorflow"])
def test_beside_autolog_each_metric_has_one_point_per_epoch(tracking_uri, client, autolog_off,
                                                            flavor):
    import mlflow

    from mlflow_plateau import PlateauCallback

    if flavor == "keras":
        mlflow.keras.autolog(log_models=False, log_datasets=False, silent=True)
    else:
        pytest.importorskip("tensorboard", reason="mlflow.tensorflow.autolog needs tensorboard")
        mlflow.tensorflow.autolog(log_models=False, log_datasets=False, checkpoint=False,
                                  silent=True)
    callback = PlateauCallback(verbose=0)
    history = _fit([callback])
    assert callback.logs_epochs is False
    run = client.get_run(callback.run_id)
    assert run.info.status == "FINISHED"  # autolog's own run, ended by autolog
    assert "epochs" in run.data.params     # proof that autolog, not the callback, logged
    _assert_one_point_per_epoch(client, callback.run_id, history)
    _assert_diagnosed(client, callback.run_id, callback)


def test_exclusive_autolog_in_a_user_run_leaves_logging_to_the_callback(tracking_uri, client,
                                                                         autolog_off):
    # autolog(exclusive=True) adds no MlflowCallback inside a user-created run: autolog's
    # settings say "enabled", yet nothing logs the epochs unless the callback does.
    import mlflow

    from mlflow_plateau import PlateauCallback

    mlflow.keras.autolog(log_models=False, log_datasets=False, exclusive=True, silent=True)
    callback = PlateauCallback(verbose=0)
    with mlflow.start_run() as run:
        history = _fit([callback])
    assert callback.logs_epochs is True
    assert "epochs" not in client.get_run(run.info.run_id).data.params
    _assert_one_point_per_epoch(client, run.info.run_id, history)
    _assert_diagnosed(client, run.info.run_id, callback)


def test_beside_an_explicit_mlflow_callback_does_not_double_log(tracking_uri, client):
    import mlflow

    from mlflow_plateau import PlateauCallback

    callback = PlateauCallback(verbose=0)
    with mlflow.start_run() as run:
        history = _fit([callback, mlflow.keras.MlflowCallback()])
    assert callback.logs_epochs is False
    _assert_one_point_per_epoch(client, run.info.run_id, history)
    _assert_diagnosed(client, run.info.run_id, callback)


def test_log_metrics_false_still_writes_the_diagnosis(tracking_uri, client):
    from mlflow_plateau import PlateauCallback

    callback = PlateauCallback(log_metrics=False, verbose=0)
    _fit([callback])
    assert client.get_metric_history(callback.run_id, "val_loss") == []
    _assert_diagnosed(client, callback.run_id, callback)


def test_two_epochs_warn_and_training_completes(tracking_uri, client):
    from mlflow_plateau import PlateauCallback

    callback = PlateauCallback(verbose=0, background=False)
    with pytest.warns(UserWarning, match=f"run {'[0-9a-f]' * 32}: .*"):
        history = _fit([callback], epochs=2)
    assert callback._writer is None  # written before fit returned
    assert len(history.history["loss"]) == 2
    assert callback.diagnosis.verdict == "insufficient_data"
    run = client.get_run(callback.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["plateau.verdict"] == "insufficient_data"
    assert [s for s, _ in _points(client, callback.run_id, "val_loss")] == [0, 1]


def test_without_validation_warns_and_writes_no_diagnosis(tracking_uri, client):
    from mlflow_plateau import PlateauCallback

    callback = PlateauCallback(verbose=0)
    with pytest.warns(UserWarning, match="no validation metric"):
        _fit([callback], validation=False)
    assert callback.diagnosis is None
    run = client.get_run(callback.run_id)
    assert [s for s, _ in _points(client, callback.run_id, "loss")] == list(range(EPOCHS))
    assert not any(k.startswith("plateau") for k in run.data.tags)
    assert not any(k.startswith(("plateau/", "gap/")) for k in run.data.metrics)


def test_diagnose_every_writes_during_training(tracking_uri, client):
    # Mid-training writes happen while the run is RUNNING (tag plateau.partial = true); the final
    # write after the run ended turns it to "false". Without them the tag would never be set.
    from mlflow_plateau import PlateauCallback

    callback = PlateauCallback(diagnose_every=3, verbose=0)
    _fit([callback])
    assert callback.wait(timeout=60)
    run = client.get_run(callback.run_id)
    assert run.data.tags["plateau.partial"] == "false"
    _assert_diagnosed(client, callback.run_id, callback, single=False)
    # every write is at step 0; values that changed between writes got new points
    assert len(client.get_metric_history(callback.run_id, "plateau/best_epoch")) >= 1


def test_unreachable_tracking_server_does_not_stop_training(tracking_uri, monkeypatch):
    import mlflow

    from mlflow_plateau import PlateauCallback

    mlflow.set_tracking_uri(f"http://127.0.0.1:{free_port()}")
    callback = PlateauCallback(verbose=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = _fit([callback])
    assert len(history.history["val_loss"]) == EPOCHS
    assert callback.run_id is None and callback.logs_epochs is False
    assert callback.diagnosis is not None  # the diagnosis itself needs no store
    assert any("could not start an MLflow run" in str(w.message) for w in caught)
    # Probed first: a server that is down is told at once, not after MLflow's minutes of retries.
    assert any("is not reachable" in str(w.message) for w in caught)


def _interrupt_at(at: int):
    """A callback that interrupts fit at the end of epoch ``at``, as Ctrl-C would."""
    import keras

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == at:
                raise KeyboardInterrupt

    return Interrupt()


def test_a_fit_interrupted_before_its_end_does_not_leave_its_run_to_the_next(tracking_uri,
                                                                              client):
    """Keras skips on_train_end when fit raises: the callback's run stayed RUNNING and active,
    and the next fit logged its epochs into it (steps 0, 0, 1, 1, ...)."""

    from mlflow_plateau import PlateauCallback

    first = PlateauCallback(verbose=0)
    with pytest.raises(KeyboardInterrupt):
        _fit([first, _interrupt_at(2)])
    second = PlateauCallback(verbose=0)
    with pytest.warns(UserWarning, match="ended as KILLED"):
        history = _fit([second])
    second.wait()
    assert second.run_id != first.run_id
    assert client.get_run(first.run_id).info.status == "KILLED"
    assert [p[0] for p in _points(client, first.run_id, "val_loss")] == [0, 1, 2]
    _assert_one_point_per_epoch(client, second.run_id, history)
    assert client.get_run(second.run_id).info.status == "FINISHED"


def test_two_callbacks_of_one_fit_share_its_run_and_a_resumed_run_is_the_users(tracking_uri,
                                                                               client):
    """The first callback's new run is not an interrupted fit's to the second callback of the
    same fit (it was ended as KILLED, with a false warning); a run the user ended and resumed
    after an interrupted fit is theirs, not ended."""
    import mlflow

    from mlflow_plateau import PlateauCallback

    a, b = PlateauCallback(verbose=0), PlateauCallback(monitor="val_accuracy", verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        _fit([a, b])
    a.wait(), b.wait()
    assert a.run_id == b.run_id and client.get_run(a.run_id).info.status == "FINISHED"

    first = PlateauCallback(verbose=0)
    with pytest.raises(KeyboardInterrupt):
        _fit([first, _interrupt_at(1)])
    mlflow.end_run()
    with mlflow.start_run(run_id=first.run_id):
        resumed = PlateauCallback(verbose=0)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            _fit([resumed], epochs=3)
        resumed.wait()
    assert resumed.run_id == first.run_id
    assert client.get_run(first.run_id).info.status == "FINISHED"


def test_a_script_ending_right_after_fit_still_gets_the_artifacts(tracking_uri, client, tmp_path):
    # The final write runs on a non-daemon thread: the interpreter waits for it at exit.
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_callback import _fit
        from mlflow_plateau import PlateauCallback
        callback = PlateauCallback(verbose=0)
        _fit([callback])
        print(callback.run_id)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, check=True)
    run_id = done.stdout.strip().splitlines()[-1]
    assert {a.path for a in client.list_artifacts(run_id, "plateau")} == {
        "plateau/diagnosis.json", "plateau/curves.png", "plateau/report.html"}
    assert "plateau.verdict" in client.get_run(run_id).data.tags


@pytest.mark.parametrize("kwargs", [{"log_metrics": "sometimes"}, {"diagnose_every": 0},
                                    {"artifacts": "png"}, {"mode": "up"}])
def test_bad_options_fail_at_construction(kwargs):
    from mlflow_plateau import PlateauCallback

    with pytest.raises(ValueError, match=next(iter(kwargs))):
        PlateauCallback(**kwargs)
