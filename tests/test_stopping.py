"""Stopping on the forecast (core): never later than EarlyStopping, earlier when nothing is left."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlflow_plateau.plateau import early_stopping_replay
from mlflow_plateau.stopping import forecast_stop_decision, forecast_stopping_replay


def test_a_converged_curve_stops_on_the_forecast_where_patience_never_would():
    e = np.arange(60)
    y = 0.3 + 2.0 * np.exp(-e / 3.0)  # flat to the eye from about epoch 20
    r = forecast_stopping_replay(y, patience=10)
    keras = early_stopping_replay(y, patience=10)
    assert keras.stopped_epoch is None  # strictly decreasing: patience never runs out
    assert r.reason == "forecast" and r.result.stopped_epoch < 50
    assert r.result.best_epoch == r.result.stopped_epoch  # still the best, but by a tiny margin


def test_a_curve_with_a_real_gain_ahead_is_not_stopped():
    t = np.arange(1, 41.0)
    y = 0.1 + 2.0 * t ** -0.5
    d = forecast_stop_decision(y, budget_end=199)
    assert not d.stop and d.gain_high > d.tolerance
    assert forecast_stopping_replay(np.r_[y], budget_end=199).result.stopped_epoch is None


def test_patience_still_stops_an_overfitting_curve():
    e = np.arange(40)
    y = 0.5 + (e - 8.0) ** 2 / 100.0
    r = forecast_stopping_replay(y, patience=5, relative_delta=0.0)
    assert r.result.stopped_epoch == early_stopping_replay(y, patience=5).stopped_epoch
    assert r.reason == "patience" and r.result.best_epoch == 8


def test_a_turned_curve_stops_on_the_forecast_before_patience_at_no_loss():
    """Validation loss that learned until epoch 20 and has risen steadily since (overfitting):
    once the rise spans a quarter of the epochs the forecast holds no gain, so training stops
    before EarlyStopping(patience=10) would, keeping the same best epoch."""
    e = np.arange(60)
    y = 0.3 + 2.0 * np.minimum(e + 1, 21) ** -0.7 + 0.004 * np.maximum(e - 20, 0)
    keras = early_stopping_replay(y, patience=10)
    r = forecast_stopping_replay(y, patience=10)
    assert keras.stopped_epoch == 30 and keras.best_epoch == 20
    assert r.reason == "forecast" and r.result.stopped_epoch < keras.stopped_epoch
    assert r.result.best_epoch == 20


def test_max_mode_and_bad_input():
    acc = 1.0 - 0.5 * np.exp(-np.arange(50) / 3.0)
    assert forecast_stopping_replay(acc, mode="max").result.stopped_epoch is not None
    with pytest.raises(ValueError, match="mode"):
        forecast_stop_decision([1.0, 0.5], budget_end=5, mode="down")
    with pytest.raises(ValueError, match="finite"):
        forecast_stop_decision([1.0, float("nan")], budget_end=5)
    with pytest.raises(ValueError, match="patience"):
        forecast_stop_decision([1.0], budget_end=5, patience=-1)
    with pytest.raises(ValueError, match="relative_delta"):
        forecast_stop_decision([1.0], budget_end=5, relative_delta=1.5)
    assert forecast_stop_decision([1.0], budget_end=5).to_dict()["stop"] is False


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.01, 10.0), min_size=2, max_size=60), st.integers(0, 12))
def test_never_trains_longer_than_early_stopping(values, patience):
    keras = early_stopping_replay(values, patience=patience)
    ours = forecast_stopping_replay(values, patience=patience)
    if keras.stopped_epoch is not None:
        assert ours.result.stopped_epoch is not None
        assert ours.result.stopped_epoch <= keras.stopped_epoch
    if ours.reason == "patience":
        assert ours.result.stopped_epoch == keras.stopped_epoch
