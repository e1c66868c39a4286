"""``plateau_epoch``: exact on noise-free curves, and the invariants that hold on every curve.

On a noise-free monotone or U-shaped curve the plateau epoch is EarlyStopping's own record rule with
unbounded patience (``early_stopping_replay(values, min_delta=tol, patience=len).best_epoch``). On
every curve: the interval is ordered and inside the curve, epochs given with gaps map back to given
epochs, ``mode="max"`` mirrors ``mode="min"``, and the answer does not depend on the loss's units.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mlflow_plateau.plateau import early_stopping_replay, plateau_epoch

FAST = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


# --- curve generators -------------------------------------------------------------------------

@st.composite
def monotone_curves(draw) -> np.ndarray:
    """Noise-free decays of the shapes training produces: exponential, power law, decay-then-flat."""
    n = draw(st.integers(3, 300))
    x = np.arange(n, dtype=np.float64)
    kind = draw(st.sampled_from(["exp", "power", "flat_after", "linear"]))
    amp = draw(st.floats(0.05, 5.0))
    floor = draw(st.floats(0.0, 3.0))
    if kind == "exp":
        y = amp * np.exp(-x / draw(st.floats(0.5, 80.0))) + floor
    elif kind == "power":
        y = amp * (1.0 + x) ** -draw(st.floats(0.1, 2.5)) + floor
    elif kind == "flat_after":
        knee = draw(st.integers(1, n - 1))
        y = amp * np.exp(-np.minimum(x, knee) / draw(st.floats(0.5, 30.0))) + floor
    else:
        y = floor + amp - amp * x / n
    return y


@st.composite
def u_curves(draw) -> np.ndarray:
    """Noise-free U shapes: a decay, then a rise once validation starts to overfit."""
    n = draw(st.integers(5, 300))
    x = np.arange(n, dtype=np.float64)
    bottom = draw(st.integers(1, n - 2))
    if draw(st.booleans()):
        y = 0.3 + draw(st.floats(1e-4, 0.1)) * (x - bottom) ** 2
    else:
        tau = draw(st.floats(0.5, 40.0))
        rise = draw(st.floats(1e-4, 0.05))
        y = np.exp(-x / tau) + rise * np.maximum(x - bottom, 0.0) + 0.2
    return y


@st.composite
def noisy_curves(draw) -> np.ndarray:
    """Realistic noisy validation curves (decay, plateau, rise) with a seeded noise draw."""
    n = draw(st.integers(1, 250))
    x = np.arange(n, dtype=np.float64)
    tau = draw(st.floats(0.5, 60.0))
    rise = draw(st.sampled_from([0.0, 0.0, 0.002, 0.01]))
    y = 1.5 * np.exp(-x / tau) + 0.3 + rise * np.maximum(x - 2 * tau, 0.0)
    sigma = draw(st.sampled_from([0.0, 0.001, 0.01, 0.05, 0.2]))
    seed = draw(st.integers(0, 2**32 - 1))
    return y + sigma * np.random.default_rng(seed).standard_normal(n)


tolerances = st.sampled_from([0.0, 1e-6, 1e-3, 1e-2, 0.05])


# --- exactness on noise-free curves -----------------------------------------------------------



@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(monotone_curves(), u_curves()), tolerances)
def test_noise_free_plateau_equals_keras_record_rule(y, tol):
    result = plateau_epoch(y, min_delta=tol)
    replay = early_stopping_replay(y, min_delta=tol, patience=len(y))
    assert result.epoch == replay.best_epoch
    assert result.low == result.high == result.epoch


@FAST
@given(st.one_of(monotone_curves(), u_curves()), tolerances)
def test_plateau_equals_keras_record_rule_whenever_it_finds_no_noise(y, tol):
    result = plateau_epoch(y, min_delta=tol)
    if result.noise == 0.0:
        assert result.epoch == early_stopping_replay(y, min_delta=tol, patience=len(y)).best_epoch
        assert result.low == result.high == result.epoch


@FAST
@given(st.integers(3, 300), st.floats(0.05, 5.0), st.floats(0.0, 3.0), st.integers(0, 10**6),
       st.floats(1e-4, 0.1), tolerances)
def test_noise_free_straight_and_parabolic_curves_equal_keras_record_rule(n, amp, floor, bottom,
                                                                          curvature, tol):
    x = np.arange(n, dtype=np.float64)
    straight = floor + amp - amp * x / n
    parabola = floor + curvature * (x - bottom % n) ** 2
    for y in (straight, parabola):
        result = plateau_epoch(y, min_delta=tol)
        assert result.epoch == early_stopping_replay(y, min_delta=tol, patience=n).best_epoch
        assert result.low == result.high == result.epoch
        rel = plateau_epoch(y, relative_delta=0.05)
        tol_rel = 0.05 * (y[0] - y.min())
        assert rel.epoch == early_stopping_replay(y, min_delta=tol_rel, patience=n).best_epoch


@pytest.mark.parametrize("values, tol, expected", [
    ([1.0, 0.8, 0.6, 0.5, 0.55, 0.7, 0.9], 0.0, 3),     # U shape: the bottom
    ([2.0, 2.0, 2.0, 2.0, 2.0], 0.0, 0),                # constant: nothing after epoch 0 improves
    ([3.0, 2.0, 1.0, 0.0, -1.0, -2.0], 1.0, 4),         # negative values, steps equal to min_delta
    ([0.9, 0.8, 0.7, 0.6, 0.5, 0.5, 0.5, 0.5], 0.0, 4),  # linear decay, then flat
    ([1.0, 0.5, 0.25, 0.2, 0.19, 0.19, 0.19], 0.0, 4),
    ([1.0, 0.5, 0.25, 0.2, 0.19, 0.19, 0.19], 0.3, 4),  # 0.19 beats the record 0.5 by > 0.3
    (list(np.exp(-np.arange(5.0))), 0.0, 4),
    (list(2.0 * np.exp(-np.arange(30) / 2.33) + 0.5), 0.001, 18),
])
def test_plateau_known_noise_free_cases(values, tol, expected):
    assert early_stopping_replay(values, min_delta=tol, patience=len(values)).best_epoch == expected
    result = plateau_epoch(values, min_delta=tol)
    assert (result.epoch, result.low, result.high) == (expected, expected, expected)


# --- invariants on every curve ----------------------------------------------------------------

@FAST
@given(noisy_curves(), tolerances)
def test_interval_is_ordered_and_inside_the_curve(y, tol):
    r = plateau_epoch(y, min_delta=tol)
    assert 0 <= r.low <= r.epoch <= r.high <= len(y) - 1
    assert 0 <= r.best_epoch <= len(y) - 1
    assert r.best_value == y.min()
    assert r.n_epochs == len(y) and r.last_epoch == len(y) - 1
    assert r.tolerance >= tol and r.noise >= 0 and r.improvement >= 0
    assert r.fitted.shape == (min(len(y), 400),) or len(y) > 400


@FAST
@given(noisy_curves(), st.integers(0, 1000), st.integers(1, 5), st.integers(0, 2**16))
def test_epochs_with_gaps_and_offsets_map_back_to_given_epochs(y, offset, max_gap, seed):
    gaps = np.random.default_rng(seed).integers(1, max_gap + 1, size=len(y))
    epochs = offset + np.cumsum(gaps) - gaps[0]
    plain = plateau_epoch(y)
    mapped = plateau_epoch(y, epochs=epochs)
    for field in ("epoch", "low", "high", "best_epoch"):
        index = getattr(plain, field)
        assert getattr(mapped, field) == epochs[index], field
    assert mapped.last_epoch == epochs[-1]
    if plain.stop_epoch is None:
        assert mapped.stop_epoch is None
    else:
        assert mapped.stop_epoch == epochs[plain.stop_epoch]


@FAST
@given(noisy_curves(), tolerances)
def test_mode_max_mirrors_mode_min(y, tol):
    lo = plateau_epoch(y, mode="min", min_delta=tol)
    hi = plateau_epoch(-y, mode="max", min_delta=tol)
    for field in ("epoch", "low", "high", "best_epoch", "stop_epoch", "wasted_epochs",
                  "still_improving"):
        assert getattr(lo, field) == getattr(hi, field), field
    assert hi.best_value == -lo.best_value
    np.testing.assert_allclose(hi.fitted, -lo.fitted)


@FAST
@given(noisy_curves(), st.sampled_from([1e-6, 1e6]), st.sampled_from([None, 0.001, 0.01, 0.05]))
def test_scale_invariance(y, factor, rel):
    # With no tolerance at all, a noise-free curve is judged by EarlyStopping's float32 comparison,
    # whose resolution (6e-8 relative) depends on where the values fall: improvements that small
    # are ties at one scale and not at another. Every other case must not depend on the units.
    if rel is None and plateau_epoch(y).noise == 0.0:
        rel = 0.001
    base = plateau_epoch(y, relative_delta=rel)
    scaled = plateau_epoch(y * factor, relative_delta=rel)
    for field in ("epoch", "low", "high", "best_epoch", "still_improving"):
        assert getattr(base, field) == getattr(scaled, field), field
    assert scaled.noise == pytest.approx(base.noise * factor, rel=1e-6, abs=1e-300)
    assert scaled.tolerance == pytest.approx(base.tolerance * factor, rel=1e-6, abs=1e-300)


def test_scale_invariance_with_min_delta_in_the_units_of_the_loss():
    rng = np.random.default_rng(3)
    y = 2.0 * np.exp(-np.arange(60) / 8.0) + 0.4 + 0.01 * rng.standard_normal(60)
    base = plateau_epoch(y, min_delta=0.02)
    for factor in (1e-6, 1e6):
        scaled = plateau_epoch(y * factor, min_delta=0.02 * factor)
        assert (scaled.epoch, scaled.low, scaled.high) == (base.epoch, base.low, base.high)


# --- still_improving, stop_epoch, noise ------------------------------------------------------

def test_still_improving_on_a_curve_still_going_down():
    rng = np.random.default_rng(0)
    x = np.arange(40)
    y = 1.0 - 0.015 * x + 0.002 * rng.standard_normal(40)  # linear descent to the last epoch
    r = plateau_epoch(y)
    assert r.still_improving
    assert r.epoch >= 30


def test_still_improving_on_a_slow_exponential_cut_short():
    # Seed 001 example 2: Adam at lr=1e-5, 10 epochs: the loss falls steadily until the end.
    y = 0.35 * np.exp(-np.arange(10) / 30.0) + 0.08
    assert plateau_epoch(y).still_improving


@pytest.mark.parametrize("sigma", [0.0, 0.005, 0.02])
def test_not_still_improving_on_a_flat_tail(sigma):
    rng = np.random.default_rng(1)
    x = np.arange(60)
    y = 1.2 * np.exp(-x / 5.0) + 0.3 + sigma * rng.standard_normal(60)
    r = plateau_epoch(y, relative_delta=0.01)
    assert not r.still_improving
    assert r.epoch < 45


def test_noisy_plateau_is_found_near_where_the_curve_flattens():
    rng = np.random.default_rng(5)
    x = np.arange(100)
    clean = np.where(x < 30, 1.0 - x / 30.0, 0.0) + 0.5
    r = plateau_epoch(clean + 0.01 * rng.standard_normal(100))
    assert 25 <= r.epoch <= 35
    assert r.low <= 30 <= r.high or abs(r.epoch - 30) <= 3
    assert r.noise == pytest.approx(0.01, rel=0.5)


def test_stop_epoch_and_wasted_epochs_follow_keras():
    y = [1.0, 0.8, 0.7, 0.72, 0.71, 0.73, 0.74, 0.75, 0.76, 0.77]
    r = plateau_epoch(y, patience=3)
    assert r.stop_epoch == 5  # best at 2, three epochs without improvement
    assert r.wasted_epochs == 4
    r = plateau_epoch(y, patience=50)
    assert r.stop_epoch is None and r.wasted_epochs == 0


def test_one_and_two_point_curves():
    r = plateau_epoch([0.7])
    assert (r.epoch, r.low, r.high, r.best_epoch, r.still_improving) == (0, 0, 0, 0, False)
    r = plateau_epoch([0.7, 0.5], epochs=[3, 9])
    assert (r.epoch, r.best_epoch, r.last_epoch) == (9, 9, 9)


def test_long_curve_is_block_averaged_and_maps_back():
    rng = np.random.default_rng(2)
    n = 5000
    x = np.arange(n)
    y = np.exp(-x / 400.0) + 0.1 + 0.005 * rng.standard_normal(n)
    r = plateau_epoch(y, relative_delta=0.01)
    assert 0 <= r.low <= r.epoch <= r.high <= n - 1
    assert 1000 <= r.epoch <= 3000  # exp(-t/400) falls below 1% of its range at t ~ 1840


@pytest.mark.parametrize("kwargs, message", [
    (dict(values=[]), "at least one"),
    (dict(values=[1.0, float("nan")]), "finite"),
    (dict(values=[1.0, float("inf")]), "finite"),
    (dict(values=[1.0, 2.0], epochs=[0]), "epochs"),
    (dict(values=[1.0, 2.0], min_delta=-0.1), "min_delta"),
    (dict(values=[1.0, 2.0], min_delta=float("nan")), "min_delta"),
    (dict(values=[1.0, 2.0], relative_delta=1.0), "relative_delta"),
    (dict(values=[1.0, 2.0], mode="auto"), "mode"),
])
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        plateau_epoch(**kwargs)


def test_wasted_epochs_are_epochs_not_logged_points():
    y = [1.0, 0.8, 0.7, 0.72, 0.71, 0.73, 0.74, 0.75, 0.76, 0.77]
    r = plateau_epoch(y, patience=3, epochs=[2 * i for i in range(len(y))])
    assert r.stop_epoch == 10
    assert r.wasted_epochs == r.last_epoch - r.stop_epoch == 8
