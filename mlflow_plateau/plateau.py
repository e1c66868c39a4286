"""When did a curve stop improving? Keras's EarlyStopping replayed, and a noise-robust plateau epoch.

``early_stopping_replay(values, mode, min_delta, patience, baseline, start_from_epoch)`` runs the
rule of ``keras.callbacks.EarlyStopping`` over a finished curve, exactly as Keras 3 does it:

- an epoch improves when ``value - min_delta < best`` (``min_delta = -|min_delta|`` in min mode,
  ``+|min_delta|`` in max mode, and ``>`` instead of ``<`` in max mode), compared in float32 like
  ``keras.ops.less`` (float32 subnormals flushed to zero, as TensorFlow does); the first monitored
  epoch always improves;
- ``best`` and ``best_epoch`` move only on improvement; ``wait`` is incremented every monitored
  epoch and reset on an improvement that also beats ``baseline`` (when given);
- training stops at the first epoch with ``wait >= patience and epoch > 0`` (so patience 0 and 1
  behave alike); epochs before ``start_from_epoch`` are not monitored.

``plateau_epoch(values, ...)`` estimates the epoch after which no improvement larger than the
tolerance comes, through the noise:

1. a curve that changes direction at most once (monotone, or down then up) shows no noise and is
   used as it is; otherwise estimate the noise ``sigma`` robustly from second differences
   (1.4826 x MAD / sqrt 6: a smooth trend adds little to most of them, so a sharp early drop does
   not inflate it);
2. fit a smooth curve: a Whittaker smoother (penalised second differences, the discrete cubic
   smoothing spline), the smoothest whose residual rms stays within ``sigma`` (discrepancy rule);
   series longer than ``MAX_POINTS`` are first averaged in equal blocks;
3. the tolerance is ``max(min_delta, relative_delta x total improvement, 2 sigma)``: an improvement
   smaller than twice the noise is not one a person can see in the curve;
4. on a noise-free curve the plateau epoch is the *record rule*: the last epoch that beats the best
   earlier record by more than the tolerance, i.e. ``early_stopping_replay(values,
   min_delta=tol, patience=len(values)).best_epoch`` exactly. On a noisy curve it is the first
   epoch from which the fit never improves by more than the tolerance. That is the record rule's
   lower bound and, unlike the record rule run on a fit, does not depend on where the chain of
   records happened to start (which the noise hides): on ``benchmarks/plateau_accuracy.py`` it
   halves the error of the record rule on the same fit.

It also reports an interval (``low``, ``high``: the 10th and 90th percentiles of the plateau epoch
over a residual bootstrap of the fit, seeded so a run always gets the same answer; a single point
on noise-free curves),
``best_epoch`` (the epoch of the best raw value), ``stop_epoch`` (where EarlyStopping with the given
``patience`` and ``min_delta`` would have stopped, or None), ``wasted_epochs`` (epochs trained after
``stop_epoch``) and ``still_improving`` (the last quarter of the curve still goes the right way:
the plateau lies inside that quarter, the fit improves across it by more than the tolerance, and
a Theil-Sen slope over it has a 90% interval that excludes zero).

The smoother is written out here rather than taken from ``scipy.interpolate.make_smoothing_spline``
because that costs ~24 ms per curve with its GCV search, too slow for thousands of runs, and GCV
under-smooths curves with a sharp early drop; with the eigen-decomposition of the penalty cached
per length, all 49 candidate smoothings and the bootstrap cost about 1 ms per curve.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .curves import Mode
from .numerics import checked_epochs, difference_noise, mode_sign
from .theil import theil_slope

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


def _as_float32(values: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.asarray(values, dtype=np.float64).astype(np.float32)
    out[np.abs(out) < np.finfo(np.float32).tiny] = 0.0
    return out


def early_stopping_replay(values: Any, *, mode: Mode = "min", min_delta: float = 0.0,
                          patience: int = 0, baseline: float | None = None,
                          start_from_epoch: int = 0) -> ReplayResult:
    """Replay ``keras.callbacks.EarlyStopping`` over ``values`` (epoch i = index i)."""
    sign = mode_sign(mode)
    if patience < 0:
        raise ValueError(f"patience must be >= 0, not {patience}")
    y = np.asarray(values, dtype=np.float64).reshape(-1)
    delta = abs(float(min_delta))
    # Keras computes ``value - min_delta`` in float64, then keras.ops compares in float32 (and
    # TensorFlow flushes float32 subnormals to zero).
    shifted = _as_float32(y + sign * delta).tolist()
    stored = _as_float32(y).tolist()
    base32 = None if baseline is None else _as_float32(np.array([baseline]))[0].item()
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
    shrink: np.ndarray  # per eigen-component factor 1 / (1 + lambda * eigval)
    basis: np.ndarray


def _reversals(z: np.ndarray) -> int:
    """How often the curve changes direction (steps of exactly zero do not count)."""
    steps = np.sign(np.diff(z))
    steps = steps[steps != 0]
    return int(np.count_nonzero(steps[1:] != steps[:-1]))


def _whittaker(z: np.ndarray, noise: float) -> _Smooth:
    """The smoothest Whittaker fit whose residual rms stays within the noise (discrepancy rule)."""
    eigvals, basis = _penalty_basis(z.size)
    shrink = 1.0 / (1.0 + np.outer(_LAMBDAS, eigvals))  # (lambdas, n)
    fits = (shrink * (basis.T @ z)) @ basis.T  # (lambdas, n)
    rms = np.sqrt(np.mean((fits - z) ** 2, axis=1))
    ok = np.flatnonzero(rms <= noise)
    k = int(ok[-1]) if ok.size else 0
    return _Smooth(fits[k], shrink[k], basis)


def _settled_index(fitted: np.ndarray, tol: float) -> np.ndarray:
    """First index of each column from which the fit never improves by more than ``tol``."""
    suffix_min = np.minimum.accumulate(fitted[::-1], axis=0)[::-1]
    return np.argmax((fitted - suffix_min) <= tol, axis=0)


def _block_means(x: np.ndarray, y: np.ndarray, blocks: int) -> tuple[np.ndarray, np.ndarray]:
    edges = np.linspace(0, x.size, blocks + 1).astype(np.int64)
    counts = np.diff(edges)
    return np.add.reduceat(x, edges[:-1]) / counts, np.add.reduceat(y, edges[:-1]) / counts


def _unscaled(value: float, scale: float) -> float:
    """``value * scale`` without overflowing past the largest float (curves near 1e308)."""
    with np.errstate(over="ignore"):
        out = float(np.float64(value) * scale)
    return float(np.clip(out, -np.finfo(np.float64).max, np.finfo(np.float64).max))


def plateau_epoch(values: Any, *, mode: Mode = "min", min_delta: float = 0.0,
                  relative_delta: float | None = None, patience: int = 10,
                  epochs: Any = None) -> PlateauResult:
    """The noise-robust plateau epoch of one curve (see the module docstring).

    ``values`` must be finite (cut a curve at its first NaN with ``curves.finite_prefix``);
    ``epochs`` are the steps of the values (default 0, 1, 2, ...), and every epoch reported is one
    of them. ``relative_delta`` is a tolerance as a fraction of the curve's total improvement.
    """
    sign = mode_sign(mode)
    y = np.asarray(values, dtype=np.float64).reshape(-1)
    n = y.size
    if n == 0:
        raise ValueError("plateau_epoch needs at least one value")
    if not np.all(np.isfinite(y)):
        raise ValueError("plateau_epoch needs finite values; cut the curve at its first NaN/inf")
    x = np.arange(n, dtype=np.int64) if epochs is None else checked_epochs(epochs, n)
    if not np.isfinite(min_delta) or min_delta < 0:
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
    noise_free = block == 1.0 and _reversals(zb) <= 1
    noise_b = 0.0 if noise_free or zb.size < 5 else difference_noise(zb)
    if noise_free:
        smooth = _Smooth(zb, np.ones(zb.size), np.eye(zb.size))
        noise_b = 0.0
    else:
        smooth = _whittaker(zb, noise_b)
    noise = noise_b * np.sqrt(block)  # noise of one raw point, not of a block mean
    improvement = float(smooth.fitted[0] - smooth.fitted.min())
    tol = max(min_delta / scale, (relative_delta or 0.0) * improvement, 2.0 * noise)

    if noise_free:
        # The record rule on the values themselves: EarlyStopping's own rule, unbounded patience.
        tol_raw = max(float(min_delta), _unscaled((relative_delta or 0.0) * improvement, scale))
        rec = early_stopping_replay(y, mode=mode, min_delta=tol_raw, patience=n + 1).best_epoch
        low = high = rec
    else:
        rec = int(_settled_index(smooth.fitted[:, None], tol)[0])
        rng = np.random.default_rng(20240917)
        resid = zb - smooth.fitted
        draws = smooth.fitted[:, None] + rng.choice(resid - resid.mean(), (zb.size, _BOOTSTRAP))
        refit = smooth.basis @ (smooth.shrink[:, None] * (smooth.basis.T @ draws))
        boot = _settled_index(refit, tol)
        low = min(rec, int(np.floor(np.percentile(boot, 10))))
        high = max(rec, int(np.ceil(np.percentile(boot, 90))))


    def to_epoch(i: int) -> int:
        raw = round(float(xb[i])) if block > 1 else i
        return int(x[min(max(raw, 0), n - 1)])

    best_idx = int(np.argmin(z))
    replay = early_stopping_replay(y, mode=mode, min_delta=min_delta, patience=patience)
    stop = None if replay.stopped_epoch is None else int(x[replay.stopped_epoch])
    wasted = 0 if stop is None else int(x[-1]) - stop

    still = False
    window = max(5, zb.size // 4)
    tail_gain = float(smooth.fitted[-window] - smooth.fitted[-1]) if zb.size >= window else 0.0
    if zb.size >= 8 and rec >= zb.size - window and tail_gain > tol:
        tail_x, tail_z = xb[-window:], zb[-window:]
        if np.ptp(tail_z) > 0:
            _slope, _lo_slope, hi_slope = theil_slope(tail_z, tail_x, alpha=0.90)
            still = bool(hi_slope < 0)

    with np.errstate(over="ignore"):
        fitted = np.clip(sign * smooth.fitted * scale, -np.finfo(np.float64).max,
                         np.finfo(np.float64).max)
    return PlateauResult(
        epoch=to_epoch(rec), low=to_epoch(low), high=to_epoch(high),
        best_epoch=int(x[best_idx]), best_value=float(y[best_idx]),
        stop_epoch=stop, wasted_epochs=int(wasted), still_improving=still,
        tolerance=_unscaled(tol, scale), noise=_unscaled(noise, scale),
        improvement=_unscaled(improvement, scale), n_epochs=n, last_epoch=int(x[-1]),
        mode=mode, fitted=fitted,
    )
