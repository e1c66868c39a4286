"""The verdict on a group of runs at several training-set sizes: would more data help?

``scaling_verdict(ScalingResult)`` classifies a learning curve fitted by ``scaling.scaling_fit``
(error against training-set size): ``insufficient_points`` (fewer than 3 distinct sizes),
``data_limited`` (``gain_at_2x >= data_limited_gain``, 0.05 by default: doubling the data is
predicted to cut the error by 5% or more), ``diminishing_returns`` (``gain_at_2x >=
saturated_gain``, 0.01), else ``saturated``; a saturated curve whose error clearly rises with the
size says so. The words are ``wording.scaling_summary``'s.

(Not named ``scaling_verdict.py``: importing such a submodule would set the package attribute
``mlflow_plateau.scaling_verdict`` to the module, hiding the function of that name.)
"""

from __future__ import annotations

import math

import numpy as np

from .diagnosis import ScalingVerdict
from .options import Thresholds
from .scaling import ScalingResult
from .wording import SCALING_RECOMMENDATIONS, scaling_summary


def _grows_with_size(fit: ScalingResult) -> bool:
    """The error rises with the size beyond its scatter: the log-log least-squares slope is
    positive by more than twice its standard error (a slope of noise around a flat curve is not
    growth)."""
    if fit.slope is None or fit.slope <= 0 or fit.sizes.size < 3:
        return False
    x, y = np.log(fit.sizes), np.log(fit.errors)
    sxx = float(np.sum((x - x.mean()) ** 2))
    if sxx <= 0:
        return False
    resid = y - y.mean() - fit.slope * (x - x.mean())
    se = math.sqrt(float(np.sum(resid ** 2)) / (x.size - 2) / sxx)
    return fit.slope > 2.0 * se


def scaling_verdict(fit: ScalingResult, thresholds: Thresholds | None = None) -> ScalingVerdict:
    """Classify a learning curve fitted by ``scaling_fit`` (see the module docstring)."""
    th = thresholds or Thresholds()
    if fit.insufficient_points:
        verdict = "insufficient_points"
        return ScalingVerdict(verdict, scaling_summary(verdict, fit, math.nan, math.nan, False),
                              {"n_distinct": fit.n_distinct},
                              list(SCALING_RECOMMENDATIONS[verdict]), fit)
    evidence = {"exponent": fit.exponent, "exponent_low": fit.low, "exponent_high": fit.high,
                "floor": fit.floor, "slope": fit.slope, "gain_at_2x": fit.gain_at_2x,
                "largest_size": float(fit.sizes.max()), "n_distinct": fit.n_distinct}
    gain = fit.gain_at_2x or 0.0
    n_max = float(fit.sizes.max())
    with np.errstate(over="ignore", invalid="ignore"):  # errors near 1e308 overflow a mean
        observed = float(np.mean(fit.errors[fit.sizes == fit.sizes.max()]))
    predicted = float(fit.predict(2 * n_max)) if fit.exponent is not None else float("nan")
    evidence["observed_at_largest"] = observed
    evidence["predicted_at_2x"] = predicted
    if gain >= th.data_limited_gain:
        verdict = "data_limited"
    elif gain >= th.saturated_gain:
        verdict = "diminishing_returns"
    else:
        verdict = "saturated"
    grows = verdict == "saturated" and _grows_with_size(fit)
    return ScalingVerdict(verdict, scaling_summary(verdict, fit, observed, predicted, grows),
                          evidence, list(SCALING_RECOMMENDATIONS[verdict]), fit)


__all__ = ["scaling_verdict"]
