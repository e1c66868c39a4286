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
    r = forecast_stopping_replay(y, patience=10, budget_end=99)  # a fit of 100 epochs
    keras = early_stopping_replay(y, patience=10)
    assert keras.stopped_epoch is None  # strictly decreasing: patience never runs out
    assert r.reason == "forecast" and r.result.stopped_epoch < 59
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


def test_the_tolerance_is_a_gain_relative_to_the_best_not_to_the_improvement_so_far():
    """A loss falling 20% an epoch: at epoch 29 it is at 0.0005, and what it can still gain is
    far below 1% of the improvement so far (0.003) but many times 1% of its value: not a stop."""
    y = 0.3 * 0.8 ** np.arange(60)
    d = forecast_stop_decision(y[:30], budget_end=59)
    assert d.tolerance == pytest.approx(0.01 * y[29])
    assert not d.stop and d.gain_high > d.tolerance
    assert forecast_stop_decision(y[:30], budget_end=59, min_delta=0.01).tolerance == 0.01
    zero = forecast_stop_decision(np.r_[1.0, 0.5, np.zeros(20)], budget_end=99, patience=30)
    assert zero.tolerance == 0 and not zero.stop  # a best of 0: only patience stops


def _curves():
    rng = np.random.default_rng(3)
    e = np.arange(60)
    yield 0.3 + 2.0 * np.exp(-e / 3.0)
    yield 0.1 + 2.0 * (e + 1.0) ** -0.5 + rng.normal(0, 0.01, e.size)
    yield 0.3 + 2.0 * np.minimum(e + 1, 21) ** -0.7 + 0.004 * np.maximum(e - 20, 0)
    yield np.abs(0.5 + 1.5 * np.exp(-e / 8.0) + rng.normal(0, 0.05, e.size))


def test_a_patience_that_also_stops_when_the_budget_cannot_bring_a_gain():
    """What the docs promise: never later than EarlyStopping with the same patience, at its epoch
    when patience is the reason, and no later with less of the budget left."""
    for y in _curves():
        for patience in (5, 10):
            keras = early_stopping_replay(y, patience=patience).stopped_epoch
            ours = forecast_stopping_replay(y, patience=patience)
            stop = ours.result.stopped_epoch
            assert keras is None or (stop is not None and stop <= keras)
            assert ours.reason != "patience" or stop == keras
            longer = forecast_stopping_replay(y, patience=patience, budget_end=3 * y.size)
            later = longer.result.stopped_epoch
            assert (y.size if stop is None else stop) <= (y.size if later is None else later)
