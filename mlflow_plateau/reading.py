"""What a reader measures on a run's curves before any rule decides: the ``Reading``.

``make_reading(...)`` orients the curves (lower is better), picks the scale a reader would plot
them on and measures noise and scale once, into a frozen ``Reading``; the rules
(``rules_chance.py``, ``rules_shape.py``, listed in ``rules.py``) read it and return a
``Finding`` each, judged against the lines of ``RuleThresholds``.

Every number is judged against the curve's own scale, as a reader does. **noise** is the robust
noise of one epoch (``robust_noise``: 1.4826 x MAD of second differences / sqrt 6; 0 for a curve
that changes direction at most once; "late" noise, ``late_noise``, is that of the second half);
**came** is how far the smoothed validation curve came (first - best; its range when it started
at its best); positive losses whose trend spans a factor of 10 after the first epoch are read in
log10, as a reader plots them; the amounts the rules quote are then percentages or factors of the
loss, never log10 differences.

Nothing here imports mlflow or keras.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .curves import Curve
from .numerics import difference_noise


@dataclass(frozen=True)
class RuleThresholds:
    """The lines the rules draw (see the module docstring for what each one means)."""

    chance_loss_margin: float = 0.10
    chance_accuracy_margin: float = 0.25
    constant_accuracy_share: float = 0.5
    unstable_noise_ratio: float = 0.3
    unstable_jump: float = 0.5
    train_rise: float = 0.5
    train_jump: float = 0.25
    overfit_rise: float = 0.05
    gap_growth_came: float = 0.5
    gap_growth_came_long: float = 0.2
    gap_fold: float = 2.0
    long_window: int = 20
    tail_gain_sd: float = 2.0
    tail_gain_came: float = 0.05
    good_accuracy: float = 0.8
    underfit_chance_fraction: float = 0.6
    flat_fraction: float = 0.10


@dataclass(frozen=True)
class Finding:
    """One rule's reading: does it fire, how close it came (``score`` >= 1 fires), and why."""

    verdict: str
    fires: bool
    score: float
    why: str


@dataclass(frozen=True)
class Reading:
    """What a reader measures on the curves before deciding (oriented: lower is better)."""

    z: np.ndarray            # validation (monitor) values, lower is better (log10 if log_scale)
    raw_z: np.ndarray        # the same in the run's own units (chance is judged there)
    log_scale: bool          # losses spanning a factor of 10 or more are read on a log scale
    fit: np.ndarray          # its smoothed fit, same orientation
    epochs: np.ndarray
    sigma: float             # robust noise of one epoch
    came: float              # how far the curve came (see module doc)
    best_index: int          # raw best
    plateau_epoch: int       # where validation stopped improving by more than the noise
    fit_best_index: int
    train: np.ndarray | None  # training partner, lower is better, on the monitor's epochs
    train_epochs: np.ndarray | None
    is_loss: bool            # the monitor is a loss (mode min)
    val_accuracy: np.ndarray | None   # the run's validation accuracy (fraction), if logged
    train_accuracy: np.ndarray | None
    val_loss: np.ndarray | None       # the run's validation loss, if logged
    chance: float | None
    chance_k: int | None
    chance_source: str


def safe_ratio(a: float, b: float) -> float:
    """a / b for the scores: 0 when b is not a positive finite number (or the ratio overflows)."""
    if not (b > 0 and math.isfinite(b)):
        return 0.0
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        out = float(np.float64(a) / np.float64(b))
    return out if math.isfinite(out) else (math.inf if out > 0 else 0.0)


def robust_noise(values: np.ndarray) -> float:
    """Noise sd of one epoch: 0 for a curve that changes direction at most once (monotone or
    U-shaped: nothing in it is noise), else 1.4826 x MAD of second differences / sqrt 6 (robust to
    a few large swings)."""
    steps = np.sign(np.diff(values))
    steps = steps[steps != 0]
    if np.count_nonzero(steps[1:] != steps[:-1]) <= 1:
        return 0.0
    if values.size < 5:
        d = np.diff(values)
        return float(np.median(np.abs(d - np.median(d))))
    return difference_noise(values)


def late_noise(values: np.ndarray) -> float:
    """The noise of the second half of a curve, where the later-epoch judgements are made (the
    early epochs of a loss that falls by orders of magnitude are noisier in absolute terms)."""
    half = values[values.size // 2:]
    # A short half that happens to change direction once is not noise-free when the whole is not.
    late = robust_noise(half) if half.size >= 5 else 0.0
    return late if late > 0 else robust_noise(values)


def running_median(z: np.ndarray, width: int = 3) -> np.ndarray:
    """The running median of ``width`` (odd) points, the ends padded with the first and last
    values: the trend a reader sees through single noisy epochs."""
    if z.size < width:
        return z
    pad = width // 2
    padded = np.concatenate([np.repeat(z[:1], pad), z, np.repeat(z[-1:], pad)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)
    return np.median(windows, axis=1)


def _spans_a_decade(values: np.ndarray) -> bool:
    """The curve's trend (a running median, after the first epoch) spans a factor of 10: noise
    dipping towards zero is not what makes a reader switch to a log axis."""
    if values.size < 3:
        return False
    trend = running_median(values[1:])
    return bool(trend.min() > 0 and float(trend.max()) >= 10.0 * float(trend.min()))


def make_reading(val: Curve, mode: str, fitted: np.ndarray, plateau_at: int, train: Curve | None,
                 val_accuracy: np.ndarray | None, train_accuracy: np.ndarray | None,
                 val_loss: np.ndarray | None, chance: float | None, chance_k: int | None,
                 chance_source: str) -> Reading:
    """Orient the curves (lower is better) and measure noise and scale once.

    Positive losses are read in log10 when the validation or the training curve spans a factor
    of 10 or more after its first epoch (the first epoch alone, often the untrained loss, does not
    make a reader switch to a log axis), as a reader plots them: a fall from 4.4 to 0.02 and a spike from
    0.02 to 0.1 are then judged by their ratios, not by differences dominated by the first epochs.
    """
    sign = 1.0 if mode == "min" else -1.0
    raw_z = sign * val.values
    z = raw_z
    fit = sign * np.asarray(fitted, dtype=np.float64)
    t = te = None
    if train is not None and len(train) >= 1:
        t = sign * train.values
        te = train.epochs
    both = np.concatenate([raw_z, t]) if t is not None else raw_z
    spans = [c for c in (raw_z, t) if c is not None and c.size]
    log_scale = bool(mode == "min" and both.size and np.all(both > 0)
                     and any(_spans_a_decade(c) for c in spans))
    if log_scale:
        z = np.log10(raw_z)
        # half the smallest value, but never 0 (half of the smallest subnormal rounds to it)
        floor = max(float(raw_z.min()) * 0.5, float(np.finfo(np.float64).smallest_subnormal))
        fit = np.log10(np.clip(fit, floor, None))
        t = np.log10(t) if t is not None else None
    sigma = robust_noise(z)
    fit_best = int(np.argmin(fit))
    came = float(fit[0] - fit[fit_best])
    if came <= 0 or came < 2.0 * sigma:
        came = max(came, float(np.ptp(z)))
    return Reading(z=z, raw_z=raw_z, log_scale=log_scale, fit=fit, epochs=val.epochs,
                   sigma=sigma, came=came, best_index=int(np.argmin(z)),
                   plateau_epoch=int(plateau_at), fit_best_index=fit_best, train=t,
                   train_epochs=te, is_loss=mode == "min",
                   val_accuracy=val_accuracy,
                   train_accuracy=train_accuracy, val_loss=val_loss, chance=chance,
                   chance_k=chance_k, chance_source=chance_source)


__all__ = ["Finding", "Reading", "RuleThresholds", "late_noise", "make_reading",
           "robust_noise", "running_median", "safe_ratio"]
