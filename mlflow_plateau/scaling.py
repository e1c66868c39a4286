"""How error falls with training-set size: a power law with an offset, fitted robustly.

Given runs at training sizes ``n`` with errors ``err`` (validation loss, or 1 - accuracy), fit

    err(n) = a * n^(-b) + c          a > 0, b >= 0, 0 <= c < min(err)

by minimising a robust (Huber) loss of ``log(model) - log(err)`` (the log-space residuals weigh a
10% miss equally at every size; the Huber loss is least squares for misses up to 5% and linear
beyond, so one bad run does not bend the curve, while a curve whose best floor is 0 gets exactly
the least-squares log-log line). Sizes are divided by their geometric mean for conditioning.

How, in milliseconds: for fixed b the model is linear in (a, c), so a grid of b values with (a, c)
solved in closed form (variable projection, ``_profile_starts``) finds the valley of the minimum;
one box-constrained Levenberg-Marquardt (``_solve``) then refines it, together with a fixed spread
of starts. ``_solve`` works on many independent problems at once as rows of arrays, and the
bootstrap is such a batch: each resample is a row of multiplicities over the points.
``scaling_fits(curves)`` fits many curves in the same batches (a sweep of hundreds of groups).

Reported:

- ``exponent`` (b), ``floor`` (c), ``coefficient`` (a, in units of the original sizes);
- ``slope``: the plain least-squares slope of ``log err`` on ``log n`` (no offset);
- ``low``, ``high``: a 90% interval on b from a seeded pairs bootstrap (200 resamples; those with
  fewer than 3 distinct sizes are skipped; each refit starts from the full fit and gets 30 steps,
  within the 5th/95th percentiles' own Monte Carlo error of convergence):
  the 5th and 95th percentiles, each moved away from b by ``sqrt(n / (n - 3))`` (a bootstrap of
  ``n`` points underestimates the spread of a 3-parameter fit), clipped to b's bounds [0, 5].
  On synthetic noisy power laws it covers the true exponent about 90% of the time (a test checks);
- ``predict(n)``, ``gain_at_2x`` (the predicted relative drop in error from doubling the largest
  size: ``1 - err(2 n_max) / err(n_max)``) and ``n_for_error(target)`` (None when the target is at
  or below the fitted floor, i.e. more data alone cannot reach it, or needs more than a float).

Fewer than 3 distinct sizes gives a result with ``insufficient_points = True`` and no fit, not an
error. Sizes must be finite and > 0, errors finite and > 0 (a log-space fit needs both); a fit
that overflows float64 (sizes or errors spanning hundreds of decades) is a ``ValueError`` too.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

_BOOTSTRAP = 200
_B_MAX = 5.0
_LOG_A = 50.0            # bounds of log a (sizes are divided by their geometric mean)
_F_SCALE = 0.05          # Huber: least squares for log misses up to 5%, linear beyond
_B_GRID = np.concatenate((np.arange(0.0, 0.1, 0.02), np.arange(0.1, 1.0, 0.1),
                          np.arange(1.0, _B_MAX + 1e-9, 0.5)))
_MAX_ITER = 200          # steps of one solve to convergence
_SCOUT_ITER = 20         # steps every start gets before the worse ones are dropped
_BOOT_ITER = 30           # steps of each bootstrap refit (see _fit)
_ROWS_PER_THREAD = 2_000  # a batch this large per core is split over threads
_BOOT_TOL = 1e-5          # a refit stops once a step moves it by less (relative): the interval's
                          # ends then differ from full convergence (1e-10) by < 1e-4


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


def _cost(r: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Huber cost per row of residuals ``r`` with multiplicities ``k`` (scipy's convention:
    ``0.5 f^2 sum rho((r/f)^2)``, rho(z) = z up to 1, 2 sqrt(z) - 1 beyond)."""
    a = np.abs(r)
    rho = np.where(a <= _F_SCALE, 0.5 * r * r, _F_SCALE * a - 0.5 * _F_SCALE ** 2)
    out = np.sum(k * rho, axis=-1)
    return np.where(np.isfinite(out), out, np.inf)


def _model(theta: np.ndarray, log_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(power term, model) for every row of ``theta`` = (log a, b, c) at ``log x``."""
    power = np.exp(theta[:, :1] - theta[:, 1:2] * log_x)
    return power, power + theta[:, 2:3]


def _solve(theta: np.ndarray, log_x: np.ndarray, log_err: np.ndarray, k: np.ndarray,
           c_max: np.ndarray, max_iter: int = _MAX_ITER, tol: float = 1e-10
           ) -> tuple[np.ndarray, np.ndarray]:
    """Minimise the Huber cost from every row of ``theta`` at once: a box-constrained
    Levenberg-Marquardt on iteratively reweighted least squares (the reweighting majorises the
    Huber loss, and a step is kept only when it lowers the true cost). Rows are independent
    problems (a start, or a bootstrap resample given as multiplicities ``k`` with its own upper
    bound on c, ``c_max``; ``log_x`` and ``log_err`` are one row for all, or one per row, padded
    with points of multiplicity 0); a row stops once a step moves it by less than ``tol``
    (relative); returns the solutions and their costs."""
    log_x, log_err = np.broadcast_to(log_x, k.shape), np.broadcast_to(log_err, k.shape)
    theta = theta.copy()
    lower = np.column_stack((np.full(len(theta), -_LOG_A), np.zeros(len(theta)),
                             np.zeros(len(theta))))
    upper = np.column_stack((np.full(len(theta), _LOG_A), np.full(len(theta), _B_MAX), c_max))
    theta = np.clip(theta, lower, upper)
    power, model = _model(theta, log_x)
    r = np.log(model) - log_err
    cost = _cost(r, k)
    lam = np.full(len(theta), 1e-3)
    live = np.isfinite(cost)
    grad, hess = np.zeros((len(theta), 3)), np.zeros((len(theta), 3, 3))
    stale = np.ones(len(theta), dtype=bool)   # rows whose point moved: gradient to recompute
    eye = np.eye(3)
    for _ in range(max_iter):
        idx = np.flatnonzero(live)
        if idx.size == 0:
            break
        upd = idx[stale[idx]]
        if upd.size:
            pw, md, rr = power[upd], model[upd], r[upd]
            w = k[upd] * np.minimum(1.0, _F_SCALE / np.maximum(np.abs(rr), 1e-300))
            jac = np.stack((pw / md, -pw * log_x[upd] / md, 1.0 / md), axis=-1)
            jac_w = np.swapaxes(jac * w[:, :, None], 1, 2)          # (rows, 3, n)
            grad[upd] = (jac_w @ rr[:, :, None])[:, :, 0]
            hess[upd] = jac_w @ jac
        th, lo, hi, g = theta[idx], lower[idx], upper[idx], grad[idx]
        # A parameter at a bound whose gradient pushes it outwards stays there.
        fixed = ((th <= lo) & (g > 0)) | ((th >= hi) & (g < 0))
        free = ~fixed
        g = np.where(free, g, 0.0)
        h = hess[idx] * free[:, :, None] * free[:, None, :]
        diag = np.einsum("bii->bi", h)
        damp = lam[idx, None] * np.maximum(diag, 1e-12 * diag.max(axis=1, keepdims=True) + 1e-300)
        system = h + damp[:, :, None] * eye + fixed[:, :, None] * eye
        ok = np.all(np.isfinite(system), axis=(1, 2)) & np.all(np.isfinite(g), axis=1)
        system[~ok], g[~ok] = eye, 0.0
        try:
            step = np.linalg.solve(system, -g[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            step = np.stack([np.linalg.lstsq(sy, -gg, rcond=None)[0]
                             for sy, gg in zip(system, g, strict=True)])
        new = np.clip(th + step, lo, hi)
        new_power, new_model = _model(new, log_x[idx])
        new_r = np.log(new_model) - log_err[idx]
        new_cost = _cost(new_r, k[idx])
        old_cost = cost[idx]
        better = new_cost < old_cost
        gain = np.where(better, old_cost - new_cost, 0.0)
        moved_rows = idx[better]
        theta[moved_rows], cost[moved_rows] = new[better], new_cost[better]
        power[moved_rows], model[moved_rows], r[moved_rows] = (
            new_power[better], new_model[better], new_r[better])
        stale[idx] = better
        lam[idx] = np.where(better, np.maximum(lam[idx] / 3.0, 1e-12), lam[idx] * 4.0)
        moved = np.max(np.abs(new - th) / (np.abs(th) + 1e-8), axis=1)
        done = (~ok | (lam[idx] > 1e12) | (moved < tol)
                | (better & (gain <= 1e-15 * old_cost + 1e-300) & (moved < 10 * tol)))
        live[idx[done]] = False
    return theta, cost


def _solve_in_threads(theta: np.ndarray, log_x: np.ndarray, log_err: np.ndarray, k: np.ndarray,
                      c_max: np.ndarray, **options: Any) -> tuple[np.ndarray, np.ndarray]:
    """``_solve`` of a large batch split over the machine's cores: rows are independent problems,
    and numpy releases the GIL on arrays this size, so threads share the work (the answer is the
    same row for row)."""
    workers = min(os.cpu_count() or 1, 8, len(theta) // _ROWS_PER_THREAD)
    if workers < 2:
        return _solve(theta, log_x, log_err, k, c_max, **options)
    parts = np.array_split(np.arange(len(theta)), workers)
    with ThreadPoolExecutor(workers) as pool:
        done = list(pool.map(lambda p: _solve(theta[p], log_x[p], log_err[p], k[p], c_max[p],
                                              **options), parts))
    return np.vstack([d[0] for d in done]), np.concatenate([d[1] for d in done])


def _profile_starts(log_x: np.ndarray, log_err: np.ndarray, k: np.ndarray, c_max: np.ndarray,
                    grid: np.ndarray = _B_GRID, steps: int = 2) -> np.ndarray:
    """Variable projection on a grid of b, for every row of multiplicities ``k`` at once: for
    fixed b the model ``a x^-b + c`` is linear in (a, c), so two Gauss-Newton steps of the log
    residual are two weighted 2x2 least-squares solves in closed form (c clipped to its bounds,
    then a refitted). Returns, per row, the (log a, b, c) of the grid point with the lowest Huber
    cost: a start inside the right valley, where a descent from a far start would crawl along
    the flat valley that b and c make together."""
    log_x = np.broadcast_to(log_x, k.shape)[:, None, :]          # (rows, 1, n)
    log_err = np.broadcast_to(log_err, k.shape)[:, None, :]
    u = np.exp(-grid[None, :, None] * log_x)                      # (rows, grid, n)
    kk = k[:, None, :]
    cm = c_max[:, None]
    rows = len(k)
    model = np.broadcast_to(np.exp(log_err), u.shape)
    fallback_a = np.exp(np.where(kk > 0, log_err, np.inf).min(-1)) * 1e-3
    for _ in range(steps):
        p, q = u / model, 1.0 / model
        y = 1.0 - np.log(model) + log_err
        spp, spq, sqq = (kk * p * p).sum(-1), (kk * p * q).sum(-1), (kk * q * q).sum(-1)
        spy, sqy = (kk * p * y).sum(-1), (kk * q * y).sum(-1)
        det = spp * sqq - spq * spq
        c = np.where(det > 1e-12 * spp * sqq, (spp * sqy - spq * spy) / det, 0.0)
        c = np.clip(np.nan_to_num(c, nan=0.0), 0.0, cm)
        a = (spy - c * spq) / spp
        a = np.where(np.isfinite(a) & (a > 0), a, fallback_a)
        model = a[..., None] * u + c[..., None]
    r = np.log(model) - log_err
    cost = _cost(r, kk)
    best = np.argmin(cost, axis=1)
    pick = np.arange(rows)
    a_best = a[pick, best]
    return np.column_stack((np.clip(np.log(a_best), -_LOG_A, _LOG_A), grid[best],
                            c[pick, best]))


def _starts(log_x: np.ndarray, err: np.ndarray, c_max: float) -> np.ndarray:
    """A fixed spread of starts (the variable projection adds its own, see ``_fit_many``)."""
    log_err = np.log(err)
    e_min = float(err.min())
    e_mid = float(np.exp(np.mean(log_err)))  # error near x = 1 (the geometric mean size)
    return np.array([[np.log(max(e_mid - frac * e_min, e_mid * 1e-3)), b, frac * e_min]
                     for b in (0.1, 0.3, 0.7, 1.5) for frac in (0.0, 0.5, 0.9)])


def _checked(sizes: Any, errors: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """Sizes and errors as sorted float arrays, and the number of distinct sizes; a ValueError
    that names the first bad value."""
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
    return n, err, int(np.unique(n).size)


def scaling_fit(sizes: Any, errors: Any) -> ScalingResult:
    """Fit ``err(n) = a n^-b + c`` to runs at training sizes ``sizes`` (see the module docstring)."""
    return scaling_fits([(sizes, errors)])[0]


def scaling_fits(curves: Sequence[tuple[Any, Any]]) -> list[ScalingResult]:
    """``scaling_fit`` of many learning curves, ``(sizes, errors)`` pairs, in one batch: the fits
    of all curves and all their bootstrap resamples are rows of the same arrays, so a sweep of
    hundreds of groups costs a fraction of fitting them one by one. The results are those of one by
    one, to the optimiser's tolerance (padding a short curve changes rounding, not the fit).
    Raises the ValueError of the first curve that ``scaling_fit`` would refuse."""
    checked = [_checked(sizes, errors) for sizes, errors in curves]
    todo = [i for i, (_, _, distinct) in enumerate(checked) if distinct >= 3]
    # Sizes or errors spanning hundreds of decades overflow intermediate powers; such a fit is
    # refused below with a ValueError rather than leaking a numpy warning or an OverflowError.
    try:
        with np.errstate(all="ignore"):
            fitted = _fit_many([checked[i] for i in todo])
    except OverflowError:
        fitted = [None] * len(todo)
    results: list[ScalingResult | None] = [
        ScalingResult(n, err, distinct, True) for n, err, distinct in checked]
    for i, result in zip(todo, fitted, strict=True):
        n, err, _ = checked[i]
        if result is None or not all(np.isfinite(v) for v in (
                result.coefficient, result.exponent, result.floor, result.slope, result.low,
                result.high, result.gain_at_2x, result.residual_rms)):
            raise ValueError(f"cannot fit sizes {n.min():g}..{n.max():g} with errors "
                             f"{err.min():g}..{err.max():g}: the power law overflows float64")
        results[i] = result
    return results


@lru_cache(maxsize=256)
def _resamples(points: int, distinct: int, size_id: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The pairs bootstrap of a curve of ``points`` points (``size_id``: each point's distinct-size
    index, as bytes of int64): ``_BOOTSTRAP`` draws from a generator seeded 7, those with fewer than
    3 distinct sizes dropped, as (the distinct multiplicity rows, each kept draw's row index).

    A resample drawn twice is fitted once (of 200 draws of 6 points about 150 differ), and a sweep
    whose curves share a shape shares one draw: the draws depend on the shape alone."""
    ids = np.frombuffer(size_id, dtype=np.int64)
    picks = np.random.default_rng(7).integers(0, points, (_BOOTSTRAP, points))
    seen = np.zeros((_BOOTSTRAP, distinct), dtype=bool)
    seen[np.arange(_BOOTSTRAP)[:, None], ids[picks]] = True
    picks = picks[seen.sum(1) >= 3]
    counts = np.zeros((len(picks), points))
    np.add.at(counts, (np.arange(len(picks))[:, None], picks), 1.0)
    unique, inverse = np.unique(counts, axis=0, return_inverse=True)
    unique.setflags(write=False)
    inverse = inverse.reshape(-1)
    inverse.setflags(write=False)
    return unique, inverse


def _padded(rows: list[np.ndarray], width: int, fill: float) -> np.ndarray:
    out = np.full((len(rows), width), fill)
    for i, row in enumerate(rows):
        out[i, :row.size] = row
    return out


def _fit_many(curves: list[tuple[np.ndarray, np.ndarray, int]]) -> list[ScalingResult | None]:
    """The fits of ``curves`` (sorted, checked, >= 3 distinct sizes each): every curve's starts in
    one batch, every curve's bootstrap resamples in another. A curve has rows of its own; points
    beyond its length are padding with multiplicity 0."""
    out: list[ScalingResult | None] = [None] * len(curves)
    prepared = []
    for i, (n, err, _) in enumerate(curves):
        ref = float(np.exp(np.mean(np.log(n))))
        x = n / ref
        if np.all(np.isfinite(x) & (x > 0)):  # sizes over hundreds of decades: x overflows
            prepared.append((i, ref, np.log(x), np.log(err), float(err.min()) * (1 - 1e-9)))
    if not prepared:
        return out
    width = max(lx.size for _, _, lx, _, _ in prepared)

    def rows_of(per_curve: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(log_x, log_err, multiplicities of 1 on the real points, c_max) for each row, given
        how many rows each prepared curve gets."""
        lx = np.repeat(_padded([p[2] for p in prepared], width, 0.0), per_curve, axis=0)
        le = np.repeat(_padded([p[3] for p in prepared], width, 0.0), per_curve, axis=0)
        ones = np.repeat(_padded([np.ones(p[2].size) for p in prepared], width, 0.0),
                         per_curve, axis=0)
        return lx, le, ones, np.repeat([p[4] for p in prepared], per_curve)

    # 1. The best point of the variable projection of each curve, and a fixed spread of starts.
    lx1, le1, ones1, cmax1 = rows_of([1] * len(prepared))
    profile = _profile_starts(lx1, le1, ones1, cmax1)
    starts = [np.vstack((profile[j:j + 1], _starts(p[2], np.exp(p[3]), p[4])))
              for j, p in enumerate(prepared)]
    per_curve = [len(st) for st in starts]
    lx, le, ones, cmax = rows_of(per_curve)
    owner = np.repeat(np.arange(len(prepared)), per_curve)
    # Every start a few steps, then only those within 1% of their curve's best so far to
    # convergence (the others crawl along a bound towards worse minima).
    thetas, costs = _solve_in_threads(np.vstack(starts), lx, le, ones, cmax,
                                      max_iter=_SCOUT_ITER)
    best_cost = np.full(len(prepared), np.inf)
    np.minimum.at(best_cost, owner, costs)
    keep = np.isfinite(best_cost[owner]) & (costs <= best_cost[owner] * 1.01)
    thetas, costs = _solve_in_threads(thetas[keep], lx[keep], le[keep], ones[keep], cmax[keep])
    owner = owner[keep]
    theta_of: dict[int, np.ndarray] = {}
    for j in range(len(prepared)):
        mine = np.flatnonzero(owner == j)
        if mine.size:
            theta_of[j] = thetas[mine[int(np.argmin(costs[mine]))]]

    # 2. Pairs bootstrap as multiplicities: each resample of each curve is one row of one batched
    # refit, started from the curve's full fit; resamples with fewer than 3
    # distinct sizes are skipped. Each curve draws from its own generator seeded 7.
    fitted = [j for j in range(len(prepared)) if j in theta_of]
    counts_of, expand_of = [], []
    for j in fitted:
        n, _, distinct = curves[prepared[j][0]]
        size_id = np.unique(n, return_inverse=True)[1].reshape(-1)
        unique, inverse = _resamples(n.size, distinct, size_id.tobytes())
        counts_of.append(np.pad(unique, ((0, 0), (0, width - n.size))))
        expand_of.append(inverse)
    per_boot = [len(c) for c in counts_of]
    boot_lx = np.repeat(_padded([prepared[j][2] for j in fitted], width, 0.0), per_boot, axis=0)
    boot_le = np.repeat(_padded([prepared[j][3] for j in fitted], width, 0.0), per_boot, axis=0)
    counts = np.vstack(counts_of) if counts_of else np.zeros((0, width))
    c_maxes = np.where(counts > 0, np.exp(boot_le), np.inf).min(1) * (1 - 1e-9)
    # Each resample starts from its curve's full fit (its c lowered below the resample's own
    # smallest error): a resample's minimum lies near the full fit's, so 30 steps reach it, and a
    # variable-projection start per resample cost as much as the refits themselves.
    boot_starts = np.vstack([theta_of[j] for j in fitted])[
        np.repeat(np.arange(len(fitted)), per_boot)] if fitted else np.zeros((0, 3))
    boot_starts[:, 2] = np.minimum(boot_starts[:, 2], c_maxes)
    boot_theta, boot_cost = _solve_in_threads(boot_starts, boot_lx, boot_le, counts, c_maxes,
                                              max_iter=_BOOT_ITER, tol=_BOOT_TOL)
    boot_b = np.where(np.isfinite(boot_cost), boot_theta[:, 1], np.nan)
    offsets = np.concatenate(([0], np.cumsum(per_boot)))

    # 3. Each curve's result.
    # Every curve's 5th and 95th percentiles in one call: the resamples' b (NaN where a refit
    # failed, and as padding), one row per curve.
    boots = [boot_b[offsets[pos]:offsets[pos + 1]][expand_of[pos]] for pos in range(len(fitted))]
    table = _padded(boots, max((b.size for b in boots), default=0), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a row of NaN only: no refit succeeded
        ends = np.nanpercentile(table, [5, 95], axis=1) if fitted else np.zeros((2, 0))
    for pos, j in enumerate(fitted):
        i, ref = prepared[j][0], prepared[j][1]
        n, err, distinct = curves[i]
        count = int(np.isfinite(boots[pos]).sum())
        out[i] = _result(n, err, distinct, ref, theta_of[j], count,
                         float(ends[0, pos]), float(ends[1, pos]))
    return out


def _result(n: np.ndarray, err: np.ndarray, distinct: int, ref: float, theta: np.ndarray,
            boot_count: int, boot_low: float, boot_high: float) -> ScalingResult | None:
    """The fit ``theta`` (log a, b, c at sizes divided by ``ref``) and the 5th and 95th
    percentiles of the bootstrap's ``boot_count`` b values as a ``ScalingResult``; None when its
    prediction underflows."""
    log_n, log_e = np.log(n), np.log(err)
    dn = log_n - log_n.mean()
    slope = float(dn @ (log_e - log_e.mean()) / (dn @ dn))  # least-squares slope, as polyfit
    b_fit = float(theta[1])
    low = boot_low if boot_count else b_fit
    high = boot_high if boot_count else b_fit
    # A pairs bootstrap of n points spreads like a variance with divisor n, not n - 3 (three
    # parameters): its percentile interval on 5-20 points covers b ~85% of the time at a nominal
    # 90%. Widening both sides about the fit by sqrt(n / (n - 3)) brings it back to ~90% (see
    # tests/test_scaling.py::test_interval_covers_the_true_exponent_about_90_percent).
    widen = math.sqrt(n.size / max(n.size - 3, 1))
    low = max(0.0, b_fit - (b_fit - min(low, b_fit)) * widen)
    high = min(_B_MAX, b_fit + (max(high, b_fit) - b_fit) * widen)

    log_a, b, c = (float(v) for v in theta)
    a = float(np.exp(log_a) * ref ** b)  # back to original size units
    pred = a * n ** (-b) + c
    n_max = float(n.max())
    at_max = a * n_max ** (-b) + c
    if not at_max > 0:  # the prediction underflows: errors near the smallest float
        return None
    gain = 1.0 - (a * (2 * n_max) ** (-b) + c) / at_max
    rms = float(np.sqrt(np.mean((np.log(pred) - np.log(err)) ** 2)))
    return ScalingResult(n, err, distinct, False, coefficient=a, exponent=b, floor=c, slope=slope,
                         low=low, high=high, gain_at_2x=float(gain),
                         residual_rms=rms, bootstrap_samples=boot_count, _ref=ref)
