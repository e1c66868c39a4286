"""``generalization_gap``: sign convention, summaries and the robust trend."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlflow_plateau.gap import generalization_gap

FAST = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def _keras_like_pair(n: int, overfit: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train loss falling to ~0.05, val loss falling with it then rising by ``overfit`` per epoch."""
    rng = np.random.default_rng(seed)
    x = np.arange(n, dtype=np.float64)
    train = 1.2 * np.exp(-x / 6.0) + 0.05 + 0.003 * rng.standard_normal(n)
    val = 1.2 * np.exp(-x / 6.0) + 0.12 + overfit * np.maximum(x - 12, 0) \
        + 0.004 * rng.standard_normal(n)
    return train, val


def test_loss_gap_is_val_minus_train_and_positive_when_validation_is_worse():
    g = generalization_gap([0.5, 0.3, 0.2], [0.6, 0.45, 0.4], mode="min")
    np.testing.assert_allclose(g.series, [0.1, 0.15, 0.2])
    assert g.final == pytest.approx(0.2) and g.final > 0
    assert g.best_epoch == 2 and g.at_best == pytest.approx(0.2)
    assert g.relative_final == pytest.approx(0.2 / 0.4)


def test_score_gap_is_train_minus_val_and_positive_when_validation_is_worse():
    g = generalization_gap([0.70, 0.90, 0.99], [0.68, 0.80, 0.79], mode="max")
    np.testing.assert_allclose(g.series, [0.02, 0.10, 0.20])
    assert g.final > 0
    assert g.best_epoch == 1 and g.at_best == pytest.approx(0.10)


def test_negative_gap_when_validation_is_better_than_training():
    # Dropout/augmentation active only in training: training loss above validation loss.
    g = generalization_gap([0.9, 0.7, 0.6], [0.7, 0.5, 0.45])
    assert g.final < 0 and g.at_best < 0


@FAST
@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=60),
       st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=60))
def test_mode_max_on_negated_curves_mirrors_mode_min(train, val):
    t, v = np.array(train), np.array(val)
    lo = generalization_gap(t, v, mode="min")
    hi = generalization_gap(-t, -v, mode="max")
    np.testing.assert_allclose(hi.series, lo.series)
    assert (hi.final, hi.at_best, hi.best_epoch, hi.growing) == (lo.final, lo.at_best,
                                                                 lo.best_epoch, lo.growing)
    n = min(len(t), len(v))
    assert lo.series.size == n and lo.epochs.tolist() == list(range(n))
    assert lo.final == pytest.approx(v[n - 1] - t[n - 1])
    json.dumps(lo.to_dict(), allow_nan=False)


def test_trend_grows_on_a_diverging_pair():
    train, val = _keras_like_pair(60, overfit=0.01)
    g = generalization_gap(train, val, from_epoch=12)
    assert g.growing
    assert g.trend == pytest.approx(0.01, rel=0.2)
    assert g.trend_low <= g.trend <= g.trend_high
    assert g.trend_low > 0


@pytest.mark.parametrize("seed", range(5))
def test_trend_does_not_grow_on_a_parallel_pair(seed):
    train, val = _keras_like_pair(60, overfit=0.0, seed=seed)
    g = generalization_gap(train, val, from_epoch=20)
    assert not g.growing
    assert g.trend_low <= 0 <= g.trend_high or abs(g.trend) < 1e-3
    assert g.final == pytest.approx(0.07, abs=0.02)


def test_constant_gap_has_zero_trend():
    g = generalization_gap(np.linspace(1, 0.5, 10), np.linspace(1, 0.5, 10) + 0.1)
    assert g.trend == pytest.approx(0.0, abs=1e-12) and not g.growing


def test_best_epoch_given_by_the_caller_is_used_for_at_best():
    g = generalization_gap([0.5, 0.4, 0.3, 0.2], [0.6, 0.5, 0.45, 0.5], best_epoch=1)
    assert g.best_epoch == 1 and g.at_best == pytest.approx(0.1)


def test_epochs_with_gaps_and_best_epoch_between_logged_epochs():
    g = generalization_gap([0.5, 0.4, 0.3, 0.2], [0.6, 0.5, 0.45, 0.5], epochs=[10, 20, 30, 40],
                           best_epoch=25)
    assert g.best_epoch == 20  # the last logged epoch at or before the requested one
    assert g.epochs.tolist() == [10, 20, 30, 40]


def test_unequal_lengths_use_the_common_prefix():
    g = generalization_gap([0.5, 0.4, 0.3, 0.2, 0.1], [0.6, 0.5, 0.45])
    assert g.series.size == 3 and g.final == pytest.approx(0.15)


def test_relative_final_is_none_when_validation_ends_at_zero():
    g = generalization_gap([0.1, -0.1], [0.2, 0.0])
    assert g.final == pytest.approx(0.1) and g.relative_final is None


def test_short_curves_have_no_trend():
    g = generalization_gap([0.5, 0.4], [0.6, 0.5])
    assert g.trend is None and g.trend_low is None and not g.growing


def test_trend_window_falls_back_when_the_plateau_is_at_the_end():
    train, val = _keras_like_pair(30, overfit=0.02)
    g = generalization_gap(train, val, from_epoch=29)  # 1 point after: use the last half
    assert g.trend is not None and g.growing


def test_long_curves_thin_the_trend_window():
    train, val = _keras_like_pair(3000, overfit=0.001)
    g = generalization_gap(train, val, from_epoch=12)
    assert g.growing and g.trend == pytest.approx(0.001, rel=0.2)


@pytest.mark.parametrize("kwargs, message", [
    (dict(train=[], val=[0.1]), "at least one"),
    (dict(train=[0.1, float("nan")], val=[0.1, 0.2]), "finite"),
    (dict(train=[0.1, 0.2], val=[0.1, float("inf")]), "finite"),
    (dict(train=[0.1, 0.2], val=[0.1, 0.2], mode="auto"), "mode"),
    (dict(train=[0.1, 0.2], val=[0.1, 0.2], epochs=[0]), "epochs"),
])
def test_bad_input_raises_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generalization_gap(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(train=[-1e308, 0.0], val=[1e308, 1.0]), "overflows"),
    (dict(train=[0.1, 0.2, 0.3], val=[0.1, 0.2, 0.3], epochs=[0, 2, 2]), "strictly increasing"),
    (dict(train=[0.1, 0.2], val=[0.1, 0.2], epochs=[0, 1.5]), "integers"),
    (dict(train=[0.1, 0.2], val=[0.1, 0.2], epochs=[0, 1e300]), "integers"),
])
def test_gaps_and_epochs_that_cannot_be_used_are_value_errors(kwargs, message):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=message):
            generalization_gap(**kwargs)


def test_trend_of_gaps_near_the_float64_maximum_is_none_not_a_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = generalization_gap([0.0, 0.0, 0.0, 0.0], [1.7e308, -1.7e308, 1.7e308, -1.7e308])
    assert g.trend is None and not g.growing
