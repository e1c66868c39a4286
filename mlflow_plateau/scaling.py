"""How error falls with training-set size: a power law with an offset, fitted robustly.

Given runs at training sizes ``n`` with errors ``err`` (validation loss, or 1 - accuracy), fit

    err(n) = a * n^(-b) + c          a > 0, b >= 0, 0 <= c < min(err)

by minimising a robust (Huber) loss of ``log(model) - log(err)``, from several starting points
(the log-space residuals weigh a 10% miss equally at every size; the Huber loss is least squares
for misses up to 5% and linear beyond, so one bad run does not bend the curve, while a curve whose
best floor is 0 gets exactly the least-squares log-log line). Sizes are divided by their geometric
mean for conditioning. Reported:

- ``exponent`` (b), ``floor`` (c), ``coefficient`` (a, in units of the original sizes);
- ``slope``: the plain least-squares slope of ``log err`` on ``log n`` (no offset);
- ``low``, ``high``: the 5th and 95th percentiles of b over a seeded pairs bootstrap (resamples with
  fewer than 3 distinct sizes are skipped);
- ``predict(n)``, ``gain_at_2x`` (the predicted relative drop in error from doubling the largest
  size: ``1 - err(2 n_max) / err(n_max)``) and ``n_for_error(target)`` (None when the target is at
  or below the fitted floor, i.e. more data alone cannot reach it, or needs more than a float).

Fewer than 3 distinct sizes gives a result with ``insufficient_points = True`` and no fit, not an
error. Sizes must be finite and > 0, errors finite and > 0 (a log-space fit needs both); a fit
that overflows float64 (sizes or errors spanning hundreds of decades) is a ``ValueError`` too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import least_squares

_BOOTSTRAP = 200
_B_MAX = 5.0


@dataclass(frozen=True)
class ScalingResult:
    """The fitted learning curve (see the module docstring)."""

    sizes: np.ndarray
    errors: np.ndarray
    n_distinct: int
    insufficient_points: bool
    coefficient: float | None = None
    exponent: float | None = None
    floor: float | None = None
    slope: float | None = None
    low: float | None = None
    high: float | None = None
    gain_at_2x: float | None = None
    residual_rms: float | None = None
    bootstrap_samples: int = 0
    _ref: float = field(default=1.0, repr=False)

    def predict(self, n: Any) -> np.ndarray:
        """Predicted error at size(s) ``n``."""
        if self.insufficient_points:
            raise ValueError(f"no fit: only {self.n_distinct} distinct sizes (3 are needed)")
        n_arr = np.asarray(n, dtype=np.float64)
        return self.coefficient * n_arr ** (-self.exponent) + self.floor

    def n_for_error(self, target: float) -> float | None:
        """Training size predicted to reach ``target`` error; None if the floor is above it."""
        if self.insufficient_points:
            raise ValueError(f"no fit: only {self.n_distinct} distinct sizes (3 are needed)")
        if target <= self.floor or self.exponent <= 0 or self.coefficient <= 0:
            return None
        try:
            n = float(((target - self.floor) / self.coefficient) ** (-1.0 / self.exponent))
        except OverflowError:  # beyond any float: as unreachable as a target below the floor
            return None
        return n if math.isfinite(n) else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sizes": self.sizes.tolist(), "errors": self.errors.tolist(),
            "n_distinct": self.n_distinct, "insufficient_points": self.insufficient_points,
            "coefficient": self.coefficient, "exponent": self.exponent, "floor": self.floor,
            "slope": self.slope, "low": self.low, "high": self.high,
            "gain_at_2x": self.gain_at_2x, "residual_rms": self.residual_rms,
            "bootstrap_samples": self.bootstrap_samples,
        }


def _residuals(theta: np.ndarray, x: np.ndarray, log_err: np.ndarray) -> np.ndarray:
    log_a, b, c = theta
    return np.log(np.exp(log_a) * x ** (-b) + c) - log_err


def _jacobian(theta: np.ndarray, x: np.ndarray, log_err: np.ndarray) -> np.ndarray:
    # Analytic: 3x fewer model evaluations than finite differences, and the bootstrap refits
    # the model 200 times.
    log_a, b, c = theta
    power = np.exp(log_a) * x ** (-b)
    model = power + c
    return np.column_stack((power / model, -power * np.log(x) / model, 1.0 / model))


def _fit_once(x: np.ndarray, err: np.ndarray,
              starts: list[np.ndarray]) -> tuple[np.ndarray | None, float]:
    log_err = np.log(err)
    c_max = float(err.min()) * (1 - 1e-9)
    lower = [-50.0, 0.0, 0.0]
    upper = [50.0, _B_MAX, c_max]
    best, best_cost = None, np.inf
    for start in starts:
        start = np.clip(start, np.array(lower) + 1e-12, np.array(upper) - 1e-12)
        try:
            sol = least_squares(_residuals, start, jac=_jacobian, args=(x, log_err),
                                bounds=(lower, upper), loss="huber", f_scale=0.05, method="trf",
                                max_nfev=300)
        except ValueError:  # residuals not finite at this start (sizes over 100s of decades)
            continue
        if sol.cost < best_cost:
            best, best_cost = sol.x, float(sol.cost)
    return best, best_cost


def _starts(x: np.ndarray, err: np.ndarray) -> list[np.ndarray]:
    e_min = float(err.min())
    e_mid = float(np.exp(np.mean(np.log(err))))  # error near x = 1 (the geometric mean size)
    out = []
    for b in (0.1, 0.3, 0.7, 1.5):
        for frac in (0.0, 0.5, 0.9):
            c = frac * e_min
            out.append(np.array([np.log(max(e_mid - c, e_mid * 1e-3)), b, c]))
    return out


def scaling_fit(sizes: Any, errors: Any) -> ScalingResult:
    """Fit ``err(n) = a n^-b + c`` to runs at training sizes ``sizes`` (see the module docstring)."""
    n = np.asarray(sizes, dtype=np.float64).reshape(-1)
    err = np.asarray(errors, dtype=np.float64).reshape(-1)
    if n.size != err.size:
        raise ValueError(f"{n.size} sizes but {err.size} errors")
    for i in range(n.size):
        if not np.isfinite(n[i]) or n[i] <= 0:
            raise ValueError(f"training size #{i} is {n[i]!r}: sizes must be finite and > 0")
        if not np.isfinite(err[i]) or err[i] <= 0:
            raise ValueError(f"error #{i} (size {n[i]:g}) is {err[i]!r}: errors must be finite "
                             "and > 0 for a log-space fit")
    order = np.argsort(n, kind="stable")
    n, err = n[order], err[order]
    distinct = int(np.unique(n).size)
    if distinct < 3:
        return ScalingResult(n, err, distinct, True)

    # Sizes or errors spanning hundreds of decades overflow intermediate powers; such a fit is
    # refused below with a ValueError rather than leaking a numpy warning or an OverflowError.
    try:
        with np.errstate(all="ignore"):
            result = _fit(n, err, distinct)
    except OverflowError:
        result = None
    if result is None or not all(np.isfinite(v) for v in (
            result.coefficient, result.exponent, result.floor, result.slope, result.low,
            result.high, result.gain_at_2x, result.residual_rms)):
        raise ValueError(f"cannot fit sizes {n.min():g}..{n.max():g} with errors "
                         f"{err.min():g}..{err.max():g}: the power law overflows float64")
    return result


def _fit(n: np.ndarray, err: np.ndarray, distinct: int) -> ScalingResult | None:
    ref = float(np.exp(np.mean(np.log(n))))
    x = n / ref
    theta, _ = _fit_once(x, err, _starts(x, err))
    if theta is None:
        return None
    slope = float(np.polyfit(np.log(n), np.log(err), 1)[0])

    rng = np.random.default_rng(7)
    boot = []
    for _ in range(_BOOTSTRAP):
        pick = rng.integers(0, n.size, n.size)
        if np.unique(n[pick]).size < 3:
            continue
        th, _ = _fit_once(x[pick], err[pick], [theta])
        if th is not None:
            boot.append(th[1])
    low = float(np.percentile(boot, 5)) if boot else float(theta[1])
    high = float(np.percentile(boot, 95)) if boot else float(theta[1])

    log_a, b, c = (float(v) for v in theta)
    a = float(np.exp(log_a) * ref ** b)  # back to original size units
    pred = a * n ** (-b) + c
    n_max = float(n.max())
    at_max = a * n_max ** (-b) + c
    gain = 1.0 - (a * (2 * n_max) ** (-b) + c) / at_max
    rms = float(np.sqrt(np.mean((np.log(pred) - np.log(err)) ** 2)))
    return ScalingResult(n, err, distinct, False, coefficient=a, exponent=b, floor=c, slope=slope,
                         low=min(low, b), high=max(high, b), gain_at_2x=float(gain),
                         residual_rms=rms, bootstrap_samples=len(boot), _ref=ref)
