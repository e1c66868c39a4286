"""``ForecastStopping`` on real tiny Keras trainings (offline data, no MLflow needed)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("float32")
    return x[:120], y[:120], x[120:], y[120:]


def _fit(callbacks, *, epochs: int, lr: float):
    import keras

    keras.utils.set_random_seed(0)
    x, y, xv, yv = _data()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(lr), "binary_crossentropy")
    history = model.fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=30, verbose=0,
                        callbacks=callbacks)
    return model, history.history["val_loss"], (xv, yv)


def test_stops_no_later_than_early_stopping_and_restores_the_best_weights():
    import keras

    from mlflow_plateau.callback import ForecastStopping

    es = keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)
    _, es_curve, _ = _fit([es], epochs=120, lr=0.05)
    fs = ForecastStopping(patience=10)
    model, curve, (xv, yv) = _fit([fs], epochs=120, lr=0.05)
    # Same seed, same data: the two trainings are the same epoch for epoch until one stops.
    assert curve == pytest.approx(es_curve[:len(curve)], rel=1e-5)
    es_trained = len(es_curve)
    assert fs.stopped_epoch is not None and len(curve) == fs.stopped_epoch + 1
    assert len(curve) <= es_trained
    assert fs.stop_reason in ("forecast", "patience")
    assert fs.best_epoch == int(np.argmin(curve))
    # The model kept is the best epoch's, as with restore_best_weights.
    restored = model.evaluate(xv, yv, verbose=0)
    assert restored == pytest.approx(min(curve), rel=1e-4)


def test_a_run_still_learning_is_not_stopped():
    from mlflow_plateau.callback import ForecastStopping

    fs = ForecastStopping(patience=5)
    _, curve, _ = _fit([fs], epochs=25, lr=0.002)  # a slow learning rate: still falling at 25
    assert len(curve) == 25 and fs.stopped_epoch is None
    assert fs.decision is not None and not fs.decision.stop
    assert fs.decision.gain_high is None  # at the last epoch of the budget nothing is forecast
    from mlflow_plateau.stopping import forecast_stop_decision

    before = forecast_stop_decision(curve[:20], budget_end=24, patience=5)
    assert not before.stop and before.gain_high > before.tolerance


def test_bad_options_fail_at_construction():
    from mlflow_plateau.callback import ForecastStopping

    with pytest.raises(ValueError, match="mode"):
        ForecastStopping(mode="down")
    with pytest.raises(ValueError, match="patience"):
        ForecastStopping(patience=-2)
    with pytest.raises(ValueError, match="lower or higher"):
        ForecastStopping(monitor="val_widgets")


def _feed(callback, logs_per_epoch, epochs):
    """Drive a callback through ``fit``'s calls with the given logs (no training needed); the
    epoch it stopped at, or None."""
    import keras

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.stop_training = False  # what fit sets before the first epoch
    callback.set_model(model)
    callback.set_params({"epochs": epochs, "verbose": 0})
    callback.on_train_begin()
    for epoch, logs in enumerate(logs_per_epoch):
        callback.on_epoch_end(epoch, logs)
        if model.stop_training:
            return epoch
    return None


def _stops(logs, *, patience):
    """Where Keras's EarlyStopping and ForecastStopping stop on the same logs, each with
    ``patience`` (ForecastStopping warns once about the epochs it skips or counts)."""
    import keras

    from mlflow_plateau.callback import ForecastStopping

    keras_stop = _feed(keras.callbacks.EarlyStopping(patience=patience), logs, epochs=len(logs))
    with pytest.warns(UserWarning):
        forecast_stop = _feed(ForecastStopping(patience=patience), logs, epochs=len(logs))
    return keras_stop, forecast_stop


@pytest.mark.parametrize("first_bad", [0, 10])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_diverged_run_stops_where_early_stopping_does(first_bad, bad):
    """A NaN or infinite val_loss counts as an epoch without improvement, as in Keras's
    EarlyStopping; it was skipped, and a run NaN from epoch 0 trained its whole budget."""
    values = [1.0 / (e + 1) if e < first_bad else bad for e in range(100)]
    keras_stop, forecast_stop = _stops([{"loss": v, "val_loss": v} for v in values], patience=5)
    assert forecast_stop == keras_stop == first_bad + 5 - (first_bad > 0)


@pytest.mark.parametrize("patience", [0, 1, 3])
def test_an_improving_run_is_never_stopped_by_patience(patience):
    """An improvement resets the wait before the patience check (patience 0 stopped an
    improving run at epoch 1)."""
    import keras

    from mlflow_plateau.callback import ForecastStopping

    logs = [{"loss": 1.0 / (e + 1), "val_loss": 1.0 / (e + 1)} for e in range(30)]
    for callback in (keras.callbacks.EarlyStopping(patience=patience),
                     ForecastStopping(patience=patience, relative_delta=0.0)):
        assert _feed(callback, logs, epochs=30) is None


def test_epochs_without_the_monitor_are_skipped_as_early_stopping_skips_them():
    """validation_freq=5: val_loss only every fifth epoch; neither rule counts the others."""
    logs = [{"loss": 1.0, **({"val_loss": 0.5} if e % 5 == 4 else {})} for e in range(100)]
    keras_stop, forecast_stop = _stops(logs, patience=3)
    assert forecast_stop == keras_stop == 19  # the fourth val_loss: 3 without a gain
