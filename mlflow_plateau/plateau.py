"""When did a curve stop improving? Keras's EarlyStopping replayed, and a noise-robust plateau epoch.

``early_stopping_replay(values, mode, min_delta, patience, baseline, start_from_epoch)`` runs the
rule of ``keras.callbacks.EarlyStopping`` over a finished curve, exactly as Keras 3 does it:

- an epoch improves when ``value - min_delta < best`` (``min_delta = -|min_delta|`` in min mode,
  ``+|min_delta|`` in max mode, and ``>`` instead of ``<`` in max mode), compared in float32 like
  ``keras.ops.less``; the first monitored epoch always improves;
- ``best`` and ``best_epoch`` move only on improvement; ``wait`` is incremented every monitored
  epoch and reset on an improvement that also beats ``baseline`` (when given);
- training stops at the first epoch with ``wait >= patience and epoch > 0`` (so patience 0 and 1
  behave alike); epochs before ``start_from_epoch`` are not monitored.

``plateau_epoch(values, ...)`` estimates the epoch after which no improvement larger than the
tolerance comes, through the noise:

1. fit a smooth curve: a Whittaker smoother (penalised second differences, the discrete cubic
   smoothing spline) whose smoothing is chosen by generalised cross-validation; series longer than
   ``MAX_POINTS`` are first averaged in equal blocks;
2. estimate the noise ``sigma`` robustly from the residuals (1.4826 x MAD, corrected for the degrees
   of freedom the fit used); a curve the fit reproduces to within rounding is noise-free and is
   used as it is;
3. the tolerance is ``max(min_delta, relative_delta x total improvement, 2 sigma)``: an improvement
   smaller than twice the noise is not one a person can see in the curve;
4. the plateau epoch is the *record rule* on the fit: the last epoch whose fitted value beats the
   best earlier record by more than the tolerance (EarlyStopping's rule with unbounded patience).
   On a noise-free curve this equals ``early_stopping_replay(values, min_delta=tol,
   patience=len(values)).best_epoch``.

It also reports an interval (``low``, ``high``: the 10th and 90th percentiles of the plateau epoch
over a residual bootstrap of the fit, seeded, so a run always gets the same answer),
``best_epoch`` (the epoch of the best raw value), ``stop_epoch`` (where EarlyStopping with the given
``patience`` and ``min_delta`` would have stopped, or None), ``wasted_epochs`` (epochs trained after
``stop_epoch``) and ``still_improving`` (the last quarter of the curve still goes the right way:
a Theil-Sen slope whose 90% interval excludes zero, with the plateau inside that quarter).

The smoother is written out here rather than taken from ``scipy.interpolate.make_smoothing_spline``
because its GCV search costs ~24 ms per curve, too slow for thousands of runs; with the
eigen-decomposition of the penalty cached per length, the whole GCV path costs well under 1 ms.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.stats import theilslopes

from .curves import Mode

MAX_POINTS = 400
_BOOTSTRAP = 40
_LAMBDAS = np.logspace(-4, 8, 49)


@dataclass(frozen=True)
class ReplayResult:
    """What Keras's EarlyStopping would have done on the curve."""

    best_epoch: int
    stopped_epoch: int | None
    best_value: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_mode(mode: str) -> int:
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
    return 1 if mode == "min" else -1


def early_stopping_replay(values: Any, *, mode: Mode = "min", min_delta: float = 0.0,
                          patience: int = 0, baseline: float | None = None,
                          start_from_epoch: int = 0) -> ReplayResult:
    """Replay ``keras.callbacks.EarlyStopping`` over ``values`` (epoch i = index i)."""
    sign = _check_mode(mode)
    if patience < 0:
        raise ValueError(f"patience must be >= 0, not {patience}")
    y = np.asarray(values, dtype=np.float64).reshape(-1)
    delta = abs(float(min_delta))
    with np.errstate(over="ignore", invalid="ignore"):
        # Keras computes ``value - min_delta`` in float64, then keras.ops compares in float32.
        shifted = (y + sign * delta).astype(np.float32).tolist()
        stored = y.astype(np.float32).tolist()
        base32 = None if baseline is None else float(np.float32(baseline))
    better = (lambda a, b: a < b) if sign == 1 else (lambda a, b: a > b)
    best = None
    best_epoch, wait = 0, 0
    for epoch in range(max(0, int(start_from_epoch)), len(stored)):
        wait += 1
        if best is None or better(shifted[epoch], best):
            best, best_epoch = stored[epoch], epoch
            if base32 is None or better(shifted[epoch], base32):
                wait = 0
            continue
        if wait >= patience and epoch > 0:
            return ReplayResult(best_epoch, epoch, float(y[best_epoch]))
    return ReplayResult(best_epoch, None, None if best is None else float(y[best_epoch]))


@dataclass(frozen=True)
class PlateauResult:
    """The plateau of one curve, in the curve's own epochs (see the module docstring)."""

    epoch: int
    low: int
    high: int
    best_epoch: int
    best_value: float
    stop_epoch: int | None
    wasted_epochs: int
    still_improving: bool
    tolerance: float
    noise: float
    improvement: float
    n_epochs: int
    last_epoch: int
    mode: str
    fitted: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("fitted")
        return out


@lru_cache(maxsize=64)
def _penalty_basis(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of D'D for second differences D on n points (cached: n repeats)."""
    d = np.diff(np.eye(n), n=2, axis=0)
    eigvals, eigvecs = np.linalg.eigh(d.T @ d)
    eigvals[eigvals < 0] = 0.0
    eigvecs.setflags(write=False)
    eigvals.setflags(write=False)
    return eigvals, eigvecs


@dataclass(frozen=True)
class _Smooth:
    fitted: np.ndarray
    noise: float
    shrink: np.ndarray  # per eigen-component factor 1 / (1 + lambda * eigval)
    basis: np.ndarray


def _whittaker_gcv(z: np.ndarray) -> _Smooth:
    n = z.size
    eigvals, basis = _penalty_basis(n)
    coef = basis.T @ z
    shrink = 1.0 / (1.0 + np.outer(_LAMBDAS, eigvals))           # (lambdas, n)
    fits = (shrink * coef) @ basis.T                              # (lambdas, n)
    rss = np.sum((fits - z) ** 2, axis=1)
    dof = shrink.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        gcv = n * rss / (n - dof) ** 2
    gcv[~np.isfinite(gcv)] = np.inf
    k = int(np.argmin(gcv))
    resid = z - fits[k]
    scale = max(float(np.ptp(z)), float(np.max(np.abs(z))) * 1e-12, 1e-300)
    if k == 0 or float(np.max(np.abs(resid))) <= 1e-9 * scale:
        # The fit interpolates: the curve carries no measurable noise; keep it exactly.
        return _Smooth(z.copy(), 0.0, np.ones(n), basis)
    mad = float(np.median(np.abs(resid - np.median(resid))))
    noise = 1.4826 * mad * np.sqrt(n / max(n - dof[k], 1.0))
    return _Smooth(fits[k], noise, shrink[k], basis)


def _record_epochs(fitted: np.ndarray, tol: float) -> np.ndarray:
    """Last record index of each column of ``fitted`` (n, B) under the record rule."""
    best = fitted[0].copy()
    record = np.zeros(fitted.shape[1], dtype=np.int64)
    for i in range(1, fitted.shape[0]):
        improved = fitted[i] < best - tol
        best = np.where(improved, fitted[i], best)
        record[improved] = i
    return record


def _block_means(x: np.ndarray, y: np.ndarray, blocks: int) -> tuple[np.ndarray, np.ndarray]:
    edges = np.linspace(0, x.size, blocks + 1).astype(np.int64)
    sums_x = np.add.reduceat(x, edges[:-1])
    sums_y = np.add.reduceat(y, edges[:-1])
    counts = np.diff(edges)
    return sums_x / counts, sums_y / counts


def plateau_epoch(values: Any, *, mode: Mode = "min", min_delta: float = 0.0,
                  relative_delta: float | None = None, patience: int = 10,
                  epochs: Any = None) -> PlateauResult:
    """The noise-robust plateau epoch of one curve (see the module docstring).

    ``values`` must be finite (cut a curve at its first NaN with ``curves.finite_prefix``);
    ``epochs`` are the steps of the values (default 0, 1, 2, ...), and every epoch reported is one
    of them. ``relative_delta`` is a tolerance as a fraction of the curve's total improvement.
    """
    sign = _check_mode(mode)
    y = np.asarray(values, dtype=np.float64).reshape(-1)
    n = y.size
    if n == 0:
        raise ValueError("plateau_epoch needs at least one value")
    if not np.all(np.isfinite(y)):
        raise ValueError("plateau_epoch needs finite values; cut the curve at its first NaN/inf")
    x = np.arange(n, dtype=np.int64) if epochs is None else np.asarray(epochs).astype(np.int64)
    if x.shape != y.shape:
        raise ValueError(f"{x.size} epochs for {n} values")
    if min_delta < 0 or not np.isfinite(min_delta):
        raise ValueError(f"min_delta must be a finite number >= 0, not {min_delta}")
    if relative_delta is not None and not (0 <= relative_delta < 1):
        raise ValueError(f"relative_delta must be in [0, 1), not {relative_delta}")

    z = sign * y
    # Work relative to the curve's own scale so huge and tiny losses behave alike.
    scale = float(np.max(np.abs(z))) or 1.0
    zs = z / scale
    if n > MAX_POINTS:
        xb, zb = _block_means(np.arange(n, dtype=np.float64), zs, MAX_POINTS)
        block = n / MAX_POINTS
    else:
        xb, zb, block = np.arange(n, dtype=np.float64), zs, 1.0
    if zb.size >= 5:
        smooth = _whittaker_gcv(zb)
    else:
        smooth = _Smooth(zb.copy(), 0.0, np.ones(zb.size), np.eye(zb.size))
    noise = smooth.noise * np.sqrt(block)  # noise of one raw point, not of a block mean
    improvement = float(smooth.fitted[0] - smooth.fitted.min())
    tol = max(min_delta / scale, 2.0 * noise,
              (relative_delta or 0.0) * improvement)

    if smooth.noise == 0.0 and block == 1.0:
        # Noise-free: the record rule on the values themselves, i.e. EarlyStopping's own rule.
        tol_raw = max(float(min_delta), (relative_delta or 0.0) * improvement * scale)
        rec = early_stopping_replay(y, mode=mode, min_delta=tol_raw, patience=n + 1).best_epoch
    else:
        rec = int(_record_epochs(smooth.fitted[:, None], tol)[0])
    low = high = rec
    if smooth.noise > 0 and zb.size >= 5:
        rng = np.random.default_rng(20240917)
        resid = zb - smooth.fitted
        resid = (resid - resid.mean()) * np.sqrt(zb.size / max(zb.size - smooth.shrink.sum(), 1.0))
        draws = smooth.fitted[:, None] + rng.choice(resid, size=(zb.size, _BOOTSTRAP))
        refit = smooth.basis @ (smooth.shrink[:, None] * (smooth.basis.T @ draws))
        boot = _record_epochs(refit, tol)
        low = min(rec, int(np.floor(np.percentile(boot, 10))))
        high = max(rec, int(np.ceil(np.percentile(boot, 90))))

    def to_epoch(i: int) -> int:
        raw = round(float(xb[i])) if block > 1 else i
        return int(x[min(max(raw, 0), n - 1)])

    best_idx = int(np.argmin(z))
    replay = early_stopping_replay(y, mode=mode, min_delta=min_delta, patience=patience)
    stop = None if replay.stopped_epoch is None else int(x[replay.stopped_epoch])
    wasted = 0 if replay.stopped_epoch is None else n - 1 - replay.stopped_epoch

    still = False
    window = max(5, zb.size // 4)
    if zb.size >= 8 and rec >= zb.size - window:
        tail_x, tail_z = xb[-window:], zb[-window:]
        if np.ptp(tail_z) > 0:
            _slope, _, _lo_slope, hi_slope = theilslopes(tail_z, tail_x, alpha=0.90)
            still = bool(hi_slope < 0)

    fitted = sign * smooth.fitted * scale
    return PlateauResult(
        epoch=to_epoch(rec), low=to_epoch(low), high=to_epoch(high),
        best_epoch=int(x[best_idx]), best_value=float(y[best_idx]),
        stop_epoch=stop, wasted_epochs=int(wasted), still_improving=still,
        tolerance=float(tol * scale), noise=float(noise * scale),
        improvement=float(improvement * scale), n_epochs=n, last_epoch=int(x[-1]),
        mode=mode, fitted=fitted,
    )
