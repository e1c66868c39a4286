"""The Theil-Sen slope of a short series and its confidence interval, as ``scipy.stats.theilslopes``.

``theil_slope(y, x, alpha)`` returns ``(slope, low_slope, high_slope)``, bit for bit what
``scipy.stats.theilslopes(y, x, alpha=alpha)`` returns for them (its intercept is not needed here):
the median of the pairwise slopes ``(y_j - y_i) / (x_j - x_i)`` over ``x_j > x_i``, and the
interval of Sen (1968, eq. 2.6) with the tie corrections for repeated x and y. A NaN anywhere, or
fewer than 2 points, gives NaN for all three, as scipy does with its default
``nan_policy="propagate"``.

Why not call scipy: the diagnosis fits a few of these per curve, on windows of 5 to 40 points,
and on such windows scipy's argument handling (the ``nan_policy`` decorator inspects signatures on
every call) and ``norm.ppf`` cost about 20x the arithmetic; they were a third of the CPU of a
diagnosis. The arithmetic here is scipy's, statement for statement, and a property test checks the
two agree.

Nothing here imports mlflow or keras.
"""

from __future__ import annotations

import numpy as np

from .numerics import normal_quantile


def _z(alpha: float) -> float:
    """``norm.ppf(alpha / 2)``."""
    return normal_quantile(alpha / 2.0)


def _tie_term(values: np.ndarray) -> int:
    """Sum of k(k-1)(2k+5) over the sizes k of groups of equal values."""
    counts = np.unique(values, return_counts=True)[1]
    counts = counts[counts > 1]
    return int(np.sum(counts * (counts - 1) * (2 * counts + 5))) if counts.size else 0


def theil_slope(y: np.ndarray, x: np.ndarray, alpha: float = 0.95) -> tuple[float, float, float]:
    """``(slope, low_slope, high_slope)`` of ``scipy.stats.theilslopes(y, x, alpha=alpha)``."""
    y = np.asarray(y, dtype=np.float64).ravel()
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size != y.size:
        raise ValueError("Array shapes are incompatible for broadcasting.")
    if x.size < 2 or np.isnan(x).any() or np.isnan(y).any():
        return np.nan, np.nan, np.nan
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # inf slopes are values
        deltax = x[:, np.newaxis] - x
        deltay = y[:, np.newaxis] - y
        positive = deltax > 0
        slopes = deltay[positive] / deltax[positive]
        if not slopes.size:
            return np.nan, np.nan, np.nan
        slopes.sort()
        slope = float(np.median(slopes))
    if alpha > 0.5:
        alpha = 1.0 - alpha
    z = _z(alpha)
    nt, ny = slopes.size, y.size
    sigsq = 1 / 18.0 * (ny * (ny - 1) * (2 * ny + 5) - _tie_term(x) - _tie_term(y))
    if sigsq < 0:  # scipy's sqrt gives NaN here and its index arithmetic fails
        return slope, np.nan, np.nan
    sigma = np.sqrt(sigsq)
    upper = min(int(np.round((nt - z * sigma) / 2.0)), nt - 1)
    lower = max(int(np.round((nt + z * sigma) / 2.0)) - 1, 0)
    return slope, float(slopes[lower]), float(slopes[upper])
