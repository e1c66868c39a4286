"""forecast_curve: members, intervals, input handling, and properties on random curves."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlflow_plateau.forecast import FAMILIES, MIN_EPOCHS, forecast_curve


def _pow_curve(n: int, c: float = 0.3, a: float = 2.0, alpha: float = 0.7) -> np.ndarray:
    t = np.arange(1, n + 1, dtype=float)
    return c + a * t ** -alpha


def test_noise_free_power_law_is_extrapolated_towards_its_floor():
    y = _pow_curve(40)
    f = forecast_curve(y)
    truth = _pow_curve(80)[-1]
    assert not f.insufficient and f.epoch_2x == 79
    assert f.best_at_2x == pytest.approx(truth, rel=0.05)
    assert f.best_at_2x < y.min()
    assert f.gain_if_doubled > 0
    assert f.gain_low <= f.gain_if_doubled <= f.gain_high
    assert f.value_at_2x_low <= f.value_at_2x <= f.value_at_2x_high
    assert 0.15 <= f.asymptote < y.min()
    assert sum(f.weights.values()) == pytest.approx(1.0)
    assert set(f.weights) == set(FAMILIES)


def test_flat_curve_forecasts_no_gain_and_has_plateaued():
    rng = np.random.default_rng(1)
    y = 0.5 + rng.normal(0, 0.01, 60)
    f = forecast_curve(y)
    assert abs(f.gain_if_doubled) <= 0.02
    assert f.epochs_to_plateau is not None and f.epochs_to_plateau <= 59


def test_max_mode_accuracy_is_forecast_upwards():
    acc = 1.0 - _pow_curve(30, c=0.05, a=0.5)
    f = forecast_curve(acc, mode="max")
    assert f.space == "error_rate"
    assert f.best_at_2x >= acc.max()
    assert f.gain_if_doubled >= 0
    lo, hi = f.interval(50)
    assert lo <= f.predict(50) <= hi


def test_time_counts_from_the_start_of_training():
    """A log numbered from 1 doubles to epoch 2 x last; a resumed run (epochs 1000-1039) is
    forecast at its distance from the start of training: its 2x forecast holds the truth (with
    time counted from its first logged epoch, 40 epochs were stretched 27-fold and the interval
    missed it); a curve validated every 5 epochs is not stretched either."""
    truth_of = lambda e: _pow_curve(int(e) + 1)[-1]  # noqa: E731  (t = epoch + 1)
    one_based = forecast_curve(_pow_curve(40), epochs=np.arange(1, 41))
    assert one_based.epoch_2x == 80
    resumed_epochs = np.arange(1000, 1040)
    resumed = forecast_curve(_pow_curve(1040)[1000:], epochs=resumed_epochs)
    assert resumed.epoch_2x == 2079
    assert resumed.value_at_2x_low <= truth_of(2079) <= resumed.value_at_2x_high
    every_5 = np.arange(4, 60, 5)
    sparse = forecast_curve(_pow_curve(60)[every_5], epochs=every_5)
    assert sparse.epoch_2x == 119
    assert sparse.best_at_2x == pytest.approx(truth_of(119), rel=0.03)


def test_epochs_are_respected():
    y = _pow_curve(20)
    f = forecast_curve(y, epochs=np.arange(10, 30))
    assert f.last_epoch == 29 and f.epoch_2x == 59 and f.best_epoch == 29
    arr = f.predict(np.array([30, 40]))
    assert arr.shape == (2,) and arr[0] >= arr[1]


def test_short_curve_is_insufficient():
    f = forecast_curve([1.0, 0.8, 0.7, 0.6])
    assert f.insufficient and f.n_epochs == MIN_EPOCHS - 1
    assert f.value_at_2x is None and f.weights == {}
    with pytest.raises(ValueError, match="at least 5"):
        f.predict(10)
    json.dumps(f.to_dict())


@pytest.mark.parametrize("kwargs, match", [
    ({"values": [1.0, math.nan, 0.5, 0.4, 0.3]}, "finite"),
    ({"values": [1.0, 0.9, 0.8, 0.7, 0.6], "mode": "up"}, "mode"),
    ({"values": [1.0, 0.9, 0.8, 0.7, 0.6], "level": 1.0}, "level"),
    ({"values": [1.0, 0.9, 0.8, 0.7, 0.6], "epochs": [0, 1, 1, 2, 3]}, "increasing"),
    ({"values": [1.0, 0.9, 0.8, 0.7, 0.6], "epochs": [0, 1, 2]}, "epochs"),
])
def test_bad_input_is_a_clear_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        forecast_curve(**kwargs)


def test_to_dict_is_json_safe_and_leaves_out_the_fitted_state():
    d = forecast_curve(_pow_curve(25)).to_dict()
    assert "state" not in d
    json.dumps(d, allow_nan=False)


curves = st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=MIN_EPOCHS, max_size=120)


@settings(max_examples=60, deadline=None)
@given(curves, st.sampled_from(["min", "max"]))
def test_properties_on_any_finite_curve(values, mode):
    f = forecast_curve(values, mode=mode)
    y = np.asarray(values)
    best_now = y.min() if mode == "min" else y.max()
    sign = 1 if mode == "min" else -1
    # The best can only get better, and never worse than what was already seen.
    assert sign * f.best_at_2x <= sign * best_now + 1e-9 * max(1.0, abs(best_now))
    assert f.gain_if_doubled >= -1e-9 * max(1.0, abs(best_now))
    assert f.gain_low <= f.gain_if_doubled + 1e-9 * max(1.0, abs(best_now))
    assert f.gain_if_doubled <= f.gain_high + 1e-9 * max(1.0, abs(best_now))
    assert sum(f.weights.values()) == pytest.approx(1.0)
    assert all(w >= 0 for w in f.weights.values())
    json.dumps(f.to_dict(), allow_nan=False)


@settings(max_examples=30, deadline=None)
@given(st.floats(0.01, 10), st.floats(0.1, 100), st.floats(0.1, 2.0), st.integers(8, 80))
def test_noise_free_decreasing_curves_never_forecast_a_rise(c, a, alpha, n):
    y = _pow_curve(n, c=c, a=a, alpha=alpha)
    f = forecast_curve(y)
    future = f.predict(np.arange(n, 4 * n))
    assert np.all(np.diff(future) <= 1e-9 * max(1.0, abs(future).max()))
    assert f.best_at_2x <= y.min()


def test_from_dict_gives_back_the_numbers():
    f = forecast_curve(_pow_curve(25))
    back = type(f).from_dict(f.to_dict())
    assert back.to_dict() == f.to_dict()
    with pytest.raises(ValueError, match="read back"):
        back.predict(30)
    with pytest.raises(ValueError, match="unknown"):
        type(f).from_dict({**f.to_dict(), "extra": 1})


def test_sentence_says_a_slow_power_law_tail_keeps_improving_slowly():
    """A floorless power law levels off only far beyond its epochs: the sentence says "slowly"
    with how many times its epochs that takes, instead of promising a far epoch; a curve that
    has already levelled off says so."""
    from mlflow_plateau.forecast import forecast_sentence

    t = np.arange(1, 41, dtype=float)
    slow = forecast_curve(2.0 * t ** -0.3)
    text = forecast_sentence(slow, "val_loss")
    assert text.startswith("; training 2x longer would bring val_loss to about ")
    if slow.epochs_to_plateau is None:
        assert "does not level off" in text
    else:
        assert slow.epochs_to_plateau > 10 * 40
        times = (slow.epochs_to_plateau + 1) / 40  # epoch N is the (N+1)th of training
        assert f"keeps improving slowly, levelling off only near epoch " \
               f"{slow.epochs_to_plateau} ({times:.0f}x the epochs seen)" in text
        # The same curve logged 1-based: 40 epochs seen, not 41 (its last epoch + 1).
        one_based = forecast_curve(2.0 * t ** -0.3, epochs=t.astype(int))
        said = re.search(r"\((\d+)x the epochs seen\)", forecast_sentence(one_based, "val_loss"))
        assert said and abs(int(said[1]) - times) <= 1
    flat = forecast_curve(0.5 + 2.0 * np.exp(-t / 2.0))
    assert "it levelled off near epoch" in forecast_sentence(flat, "val_loss")
    assert forecast_sentence(forecast_curve([1.0, 0.9]), "val_loss") == ""


def _u_curve(n: int, best: int, rise: float = 0.004, seed: int = 3) -> np.ndarray:
    """A validation loss that learns until ``best`` and then overfits: rising ``rise`` an epoch."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, n + 1, dtype=float)
    learning = 0.3 + 2.0 * np.minimum(t, best + 1) ** -0.7
    return learning + rise * np.maximum(t - best - 1, 0) + rng.normal(0, 0.002, n)


def test_a_curve_that_turned_is_forecast_to_keep_rising_not_to_improve():
    """Validation loss rising for 20 epochs after its best (overfitting): the learning-curve
    members alone would level off at the mean of the rising part, below where the curve is now,
    and forecast an improvement; the forecast instead continues the rise, promises no gain, and
    says the curve stopped improving at its best epoch."""
    y = _u_curve(50, best=29)
    f = forecast_curve(y)
    recent = y[-5:].mean()
    assert f.weights["rising"] > 0.99
    assert f.value_at_2x > recent and f.value_at_2x_low > recent - 0.01
    assert f.predict(60) > y[-10:].mean()
    assert f.gain_if_doubled == pytest.approx(0.0, abs=1e-9)
    assert f.best_at_2x == pytest.approx(y.min())
    assert f.epochs_to_plateau == f.best_epoch == int(np.argmin(y))
    lo, hi = f.interval(70)
    assert lo <= f.predict(70) <= hi
    future = f.predict(np.arange(50, 100))
    assert np.all(np.diff(future) >= 0)


def test_a_short_wiggle_after_the_best_is_not_a_turn():
    """A long learning curve whose last few epochs rise (fewer than a quarter of its epochs) is
    still forecast by the learning-curve members: "rising" has no weight."""
    y = _pow_curve(80)
    y[-6:] += np.linspace(0.002, 0.02, 6)
    f = forecast_curve(y)
    assert f.weights["rising"] == 0.0
    assert f.value_at_2x < y[-6:].max()


def test_a_turned_accuracy_is_forecast_to_keep_falling():
    """The same in max mode: an accuracy that peaked and has been falling since."""
    acc = 1.0 - _u_curve(60, best=30, rise=0.003) / 3.0
    f = forecast_curve(acc, mode="max")
    assert f.space == "error_rate" and f.weights["rising"] > 0.9
    assert f.value_at_2x < acc[-5:].mean()
    assert f.best_at_2x == pytest.approx(acc.max())


def test_a_curve_that_got_worse_then_held_level_is_forecast_at_its_recent_level():
    """Validation loss that rose for 10 epochs after its best and has held level since: no fall
    below where it is (the learning-curve members would level it off at the mean of its worse
    part), and no more than the recent half's own (noise) slope of rise: the recent level."""
    rng = np.random.default_rng(5)
    t = np.arange(1, 61, dtype=float)
    y = 0.3 + 2.0 * np.minimum(t, 31) ** -0.7 + 0.004 * np.clip(t - 31, 0, 10)
    y = y + rng.normal(0, 0.001, t.size)
    f = forecast_curve(y)
    recent = y[-6:].mean()
    assert f.weights["last"] + f.weights["rising"] == pytest.approx(1.0)
    assert f.value_at_2x == pytest.approx(recent, rel=0.01)
    assert f.predict(100) == pytest.approx(recent, rel=0.02)
    assert f.value_at_2x_low < f.value_at_2x < f.value_at_2x_high  # the recent mean's own error
    assert f.epochs_to_plateau == f.best_epoch and f.gain_if_doubled == pytest.approx(0, abs=1e-9)


def test_a_step_in_a_quantized_accuracy_is_not_a_trend():
    """An accuracy that stepped from 0.92 down to 0.91 and stayed there: forecast at 0.91, not
    falling on."""
    acc = np.r_[np.linspace(0.5, 0.92, 18), [0.92] * 3, [0.91] * 19]
    f = forecast_curve(acc, mode="max")
    assert f.weights["rising"] == 0.0
    assert f.value_at_2x == pytest.approx(0.91) and f.asymptote == pytest.approx(0.91)


def test_a_collapsing_accuracy_is_never_forecast_below_zero():
    e = np.arange(60)
    acc = np.where(e <= 30, 0.5 + 0.4 * e / 30, 0.9 - 0.4 * (e - 30) / 29)
    f = forecast_curve(acc, mode="max")
    assert f.weights["rising"] > 0.9 and f.epochs_to_plateau == 30
    assert 0.0 <= f.value_at_2x_low <= f.value_at_2x <= f.value_at_2x_high < acc[-1]
    assert f.asymptote >= 0.0 and np.all(f.predict(np.arange(60, 600)) >= 0.0)


@pytest.mark.parametrize("seed", range(20))
def test_flat_noise_is_not_taken_for_a_rise(seed):
    """The best of a flat noisy curve is a low draw of its noise, so its recent level always
    sits above it: that alone is not a curve getting worse."""
    y = 0.5 + np.random.default_rng(seed).normal(0, 0.01, 60)
    assert forecast_curve(y).weights["rising"] == 0.0


def test_sentence_of_a_turned_curve_says_it_got_worse():
    from mlflow_plateau.forecast import forecast_sentence

    f = forecast_curve(_u_curve(50, best=29))
    assert f.turned and not forecast_curve(_pow_curve(40)).turned
    text = forecast_sentence(f, "val_loss")
    assert text.endswith(f"; it stopped improving at epoch {f.best_epoch} and is still getting "
                         "worse")
    back = type(f).from_dict(f.to_dict())
    assert back.turned and forecast_sentence(back, "val_loss") == text


def _within(values, low, high):
    v = np.asarray(values, dtype=float)
    return bool(np.all((v >= low - 1e-12) & (v <= high + 1e-12)))


def test_an_accuracy_at_1_or_a_loss_at_0_is_not_forecast_past_it():
    """One accuracy of 1.0 (or a loss of exactly 0) kept the curve out of the log spaces, and the
    forecast went past the bound: 1.09 (0.96-1.22) for an accuracy held at 1.0, a gain of 0.09
    over a best of 1.0, a loss forecast at -0.40."""
    held = forecast_curve(np.r_[np.linspace(0.3, 0.99, 20), [1.0] * 20], mode="max")
    assert _within([held.value_at_2x, held.value_at_2x_low, held.value_at_2x_high,
                    held.asymptote, held.best_at_2x], 0.0, 1.0)
    assert held.best_at_2x == 1.0 and held.gain_if_doubled == 0.0 == held.gain_high
    e = np.arange(40)
    collapse = forecast_curve(np.r_[np.linspace(0.5, 1, 10), np.linspace(1, 0.05, 30)],
                              mode="max")
    assert _within([collapse.value_at_2x, collapse.value_at_2x_low, collapse.asymptote,
                    *collapse.predict(np.arange(40, 400))], 0.0, 1.0)
    zero = forecast_curve(np.maximum(0.0, 1 - e / 30))
    assert min(zero.value_at_2x_low, zero.asymptote, zero.best_at_2x) >= 0.0
    assert np.all(zero.predict(np.arange(40, 400)) >= 0.0)
    assert zero.gain_if_doubled == 0.0 == zero.gain_high  # nothing below a loss of 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 1.0]), min_size=MIN_EPOCHS,
                max_size=60), st.sampled_from(["accuracy", "loss"]))
def test_a_bounded_metric_that_reaches_its_bound_stays_within_it(values, kind):
    """Accuracies in [0, 1] and non-negative losses, with values at the bounds themselves (a
    small validation set gives them): every level, interval end and best stays in range, and no
    gain is a negative zero."""
    y = np.asarray(values) if kind == "accuracy" else 2.0 * np.asarray(values)
    f = forecast_curve(y, mode="max" if kind == "accuracy" else "min")
    high = 1.0 if kind == "accuracy" else np.inf
    levels = [f.value_at_2x, f.value_at_2x_low, f.value_at_2x_high, f.asymptote, f.best_at_2x,
              *f.best_interval(200.0), *f.interval(500.0)]
    assert _within(levels, 0.0, high)
    assert all(math.copysign(1.0, g) > 0 for g in (f.gain_if_doubled, f.gain_low, f.gain_high))


def test_a_constant_curve_has_levelled_off_from_its_first_epoch():
    """Its tolerance is 0 (no improvement, no noise): the members' last-bit rounding was read as
    a distance from the asymptote, and a flat 1.0 got epochs_to_plateau 3908."""
    for y, mode in ((np.ones(40), "min"), (np.full(40, 0.7), "max"), (np.full(30, 0.7), "min")):
        assert forecast_curve(y, mode=mode).epochs_to_plateau == 0


def test_a_run_logged_at_large_step_numbers_costs_what_its_points_cost():
    """epochs_to_plateau probed every epoch of the next 4 spans: 30 points logged at steps of
    1e6 asked for an array of 120 million epochs per member (a MemoryError)."""
    y = _pow_curve(30)
    for k in (1, 10**6, 10**9):
        f = forecast_curve(y, epochs=np.arange(30) * k)
        assert f.epoch_2x == 2 * (29 * k + 1) - 1
        assert f.epochs_to_plateau is None or f.epochs_to_plateau > 29 * k


def test_a_step_up_held_since_the_best_is_a_turn():
    """Validation loss that jumped a quarter above its best and held there: no trend among the
    epochs after the best, but a level far above the one the curve had reached. It was left to
    the learning-curve members, which said it levels off near epoch 1978."""
    rng = np.random.default_rng(0)
    e = np.arange(30)
    y = np.where(e <= 15, 2 * np.exp(-e / 6) + 0.3, 0.6) + rng.normal(0, 0.005, 30)
    f = forecast_curve(y)
    assert f.turned and f.epochs_to_plateau == f.best_epoch == 15
    assert f.weights["last"] > 0.5
    assert f.value_at_2x == pytest.approx(y[-5:].mean(), rel=0.03)
    assert f.gain_if_doubled == 0.0
    from mlflow_plateau.forecast import forecast_sentence

    assert "stopped improving at epoch 15" in forecast_sentence(f, "val_loss")


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("where", [1, 2, 3, 5, 12])
def test_one_lucky_low_epoch_is_not_a_step(seed, where):
    """A flat noisy curve whose best is one outlier far below the rest has not turned: the
    level before its best (a median, the best left out) is the level after it, also when the
    outlier is among the first epochs."""
    rng = np.random.default_rng(seed)
    y = 0.5 + rng.normal(0, 0.01, 40)
    y[where] -= 0.1
    assert not forecast_curve(y).turned
