"""``theil.theil_slope`` is ``scipy.stats.theilslopes`` (slope and interval), only cheaper."""

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import theilslopes

from mlflow_plateau.theil import theil_slope

values = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
# Few distinct values, so ties in y (and in x) are common: the interval's tie corrections matter.
tied = st.sampled_from([0.0, 0.5, 1.0, 1.0, 2.0, -3.0])


def scipy_reference(y, x, alpha):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = theilslopes(y, x, alpha=alpha)
    return float(r.slope), float(r.low_slope), float(r.high_slope)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(values | tied, values | tied), min_size=0, max_size=45),
       st.sampled_from([0.90, 0.95, 0.8, 0.1]))
def test_equals_scipy_bit_for_bit(points, alpha):
    y = np.array([p[0] for p in points], dtype=np.float64)
    x = np.array([p[1] for p in points], dtype=np.float64)
    ours = theil_slope(y, x, alpha=alpha)
    np.testing.assert_array_equal(np.array(ours), np.array(scipy_reference(y, x, alpha)))


@settings(max_examples=100, deadline=None)
@given(st.lists(values, min_size=2, max_size=30), st.integers(0, 29))
def test_nan_propagates_like_scipy(ys, at):
    y = np.array(ys)
    y[at % y.size] = np.nan
    x = np.arange(y.size, dtype=np.float64)
    assert all(np.isnan(v) for v in theil_slope(y, x, alpha=0.9))
    assert all(np.isnan(v) for v in scipy_reference(y, x, 0.9))


def test_a_clean_line_and_its_interval():
    x = np.arange(20, dtype=np.float64)
    slope, low, high = theil_slope(3.0 - 0.5 * x, x, alpha=0.9)
    assert slope == low == high == -0.5
    noisy = 3.0 - 0.5 * x + np.random.default_rng(0).normal(0, 1, 20)
    slope, low, high = theil_slope(noisy, x, alpha=0.9)
    assert low < slope < high < 0
