"""The verdict rules: what a practitioner reads from a run's curves, as small named functions.

``make_reading(...)`` measures, once, everything the rules look at (a frozen ``Reading``); ``RULES``
lists the rules in the order of precedence of ``docs/verdicts.md``::

    at_chance > unstable > overfitting > not_converged > underfitting > healthy

(``diverged`` and ``insufficient_data`` are decided before, from NaN/inf and the epoch count). Each
rule returns a ``Finding``: whether it fires, a ``score`` (the deciding number over its threshold,
so 1.0 is the line and 0.8 "came close") and one line of why, in a reader's words.

Every number is judged against the curve's own scale, as a reader does (see Scales below).

The rules:

``at_chance``      validation never got clearly better than a constant guess, shown by one of
                   (a) the validation accuracy repeats one value (below 0.99) from its first
                   epochs on at least half of the epochs (``constant_accuracy_share``): the model
                   predicts one class; (b) a chance level is known (given as ``chance`` or
                   ``num_classes``, or read off the run: a validation accuracy near 1/k *and* a
                   loss near ln k for the same k, see ``infer_chance``) and the best raw
                   validation loss is within ``chance_loss_margin`` (10%) of ln k or above it, or
                   the validation accuracy's robust best is within a quarter of the way from 1/k
                   to 1 and within half of 1/k above it; when both curves are logged, the other
                   one must agree; (c) with no class count, the validation accuracy stays flat at
                   a level of at most 0.5 and the validation loss stays flat too (or is on no
                   cross-entropy scale). The margin never grows with the noise.
``unstable``       no trend can be read: the noise is at least ``unstable_noise_ratio`` (0.3) of
                   the trend's movement; or validation swings away from its trend by
                   ``unstable_jump`` (half) of that movement in two separate excursions while the
                   training curve also jumps (by ``train_jump``, a quarter of its own movement):
                   spikes in validation alone are a small validation set's noise; or validation
                   climbs back ``train_rise`` (half) of the way it came after its best while
                   training stops improving (clearly worse, yet not overfitting); or the training
                   loss climbs back ``train_rise`` (half) of the way from its best to its start.
``overfitting``    (a) validation ends above its best by more than twice its late noise and
                   ``overfit_rise`` (5%) of how far it came, while training improves after that
                   best; or (b) from the plateau epoch on, training improves, validation stays
                   flat (moves by less than its noise, 5% of how far it came or a quarter of
                   training's gain) and the gap widens: a Theil-Sen trend with its 90% interval
                   above zero, growing by ``gap_growth_came`` (half) of how far validation came and
                   twice its noise. A gap that stays constant is not overfitting.
``not_converged``  the last window (a quarter of the epochs, 3 to 20) sets a new best of the
                   smoothed curve, beating the best before it by ``tail_gain_sd`` (2) late noise
                   sd and ``tail_gain_came`` (5%) of how far it came, and the smoothed curve still
                   falls across the window.
``underfitting``   the training accuracy's robust best stays below ``good_accuracy`` (0.8; scored
                   on the error, 1 - accuracy, against 0.2), or (no accuracy) the training loss,
                   in its own units even when read in log10, stays above
                   ``underfit_chance_fraction`` (0.6) of a known chance loss, or it fell by less
                   than ``flat_fraction`` (10%) of its first value.
``healthy``        none of the above: converged, no clear worsening, a small or stable gap.

Scales: **noise** is the robust noise of one epoch (1.4826 x MAD of second differences / sqrt 6;
0 for a curve that changes direction at most once; "late" noise is that of the second half);
**came** is how far the smoothed validation curve came (first - best; its range when it started
at its best); positive losses whose trend spans a factor of 10 after the first epoch are read in
log10, as a reader plots them; the amounts the summaries quote are then percentages or factors
of the loss, never log10 differences.

Nothing here imports mlflow or keras.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .curves import Curve
from .numerics import difference_noise
from .theil import theil_slope


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


def _ratio(a: float, b: float) -> float:
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


def _flat(values: np.ndarray, higher_is_better: bool) -> bool:
    """The curve never clearly improved: its last third is no better than its first third by
    more than twice its noise and 5% of its level (medians, so single epochs do not count)."""
    z = -values if higher_is_better else values
    if z.size < 3:
        return False
    third = max(1, z.size // 3)
    head, late = float(np.median(z[:third])), float(np.median(z[-third:]))
    return head - late <= max(2.0 * robust_noise(z), 0.05 * abs(head))

def _running_median(z: np.ndarray, width: int = 3) -> np.ndarray:
    if z.size < width:
        return z
    pad = width // 2
    padded = np.concatenate([np.repeat(z[:1], pad), z, np.repeat(z[-1:], pad)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)
    return np.median(windows, axis=1)


def infer_chance(val_accuracy: np.ndarray | None, losses: list[np.ndarray]) -> tuple[int | None, str]:
    """The number of classes k read off the run, or None with the reason it stays unknown.

    A constant guess on k balanced classes scores accuracy 1/k and cross-entropy ln k. k is read
    from the validation accuracy's median level (k = round(1/level), at least 2) and kept only
    when a logged loss (validation or training, its median) also sits within 30% of ln k: the two
    curves agree that the run is at that chance level, rather than k being guessed from one
    number. Nothing is guessed from the first epoch's loss: a bad start or a fast first epoch
    moves it far from ln k.
    """
    if val_accuracy is None or val_accuracy.size == 0:
        return None, "unknown (no validation accuracy; pass num_classes or chance)"
    level = float(np.median(val_accuracy))
    if not 0 < level <= 0.55:
        return None, "unknown (validation accuracy above 0.55 says nothing of k)"
    if level < 1e-4:
        return None, "unknown (validation accuracy near 0: no constant guess scores that)"
    k = max(2, round(1.0 / level))
    for loss in losses:
        if loss is not None and loss.size:
            median = float(np.median(loss))
            if abs(median - math.log(k)) <= 0.3 * math.log(k):
                return k, f"{k} classes (validation accuracy near 1/{k} and loss near ln {k})"
    return None, "unknown (accuracy and loss do not agree on a class count)"


def _theil(y: np.ndarray, x: np.ndarray) -> tuple[float, float, float]:
    if y.size < 3 or np.ptp(y) == 0:
        return 0.0, 0.0, 0.0
    slope, low, high = theil_slope(y, x, alpha=0.90)
    return float(slope), float(low), float(high)


def tail_window(n: int) -> int:
    """The "last epochs" a reader looks at: a quarter of the run, at least 5 (3 on runs of up to
    10 epochs) and at most 20."""
    return int(min(20, max(3 if n <= 10 else 5, n // 4)))


def rule_at_chance(r: Reading, th: RuleThresholds) -> Finding:
    acc = r.val_accuracy
    if acc is not None and acc.size >= 3:
        values, counts = np.unique(np.round(acc, 6), return_counts=True)
        share = float(counts.max() / acc.size)
        constant = float(values[np.argmax(counts)])
        # A constant predictor is constant from the start; a model that learned can repeat a
        # value on a small validation set once it has converged, which is no sign of chance.
        from_start = bool(np.any(np.abs(np.round(acc[:2], 6) - constant) < 1e-9))
        if constant < 0.99 and from_start and not _loss_learns_beyond_constant(r, constant):
            score = share / th.constant_accuracy_share
            if score >= 1.0:
                return Finding("at_chance", True, score,
                               f"validation accuracy is {constant:.4g} on {100 * share:.0f}% of "
                               "the epochs: the model predicts one class")
    scores = []
    if r.chance is not None:
        # The best raw value: the margin does not grow with the noise.
        z_best = float(np.min(r.raw_z))
        if r.is_loss:
            # How close the best loss comes to chance, relative to the allowed margin.
            margin = th.chance_loss_margin * abs(r.chance)
            below = r.chance - z_best
            score = _ratio(margin, below) if below > 0 else math.inf
            agree = True
            if r.chance_k is not None and acc is not None and acc.size:
                # The accuracy must agree: its level (90th percentile of a running median, so
                # noise on a small validation set is not learning) stays near 1/k.
                agree = float(np.percentile(_running_median(acc), 90)) <= \
                    1 / r.chance_k + _accuracy_margin(1 / r.chance_k, th)
            scores.append(score)
            if score >= 1.0 and agree:
                near = (f"is within {100 * th.chance_loss_margin:.0f}% of" if below > 0
                        else "is no better than")
                return Finding("at_chance", True, score,
                               f"best validation {_what(r)} {z_best:.4g} {near} chance "
                               f"{r.chance:.4g} ({r.chance_source})")
        else:
            # The accuracy a reader sees the run reach: a running median's best, so the luckiest
            # of many noisy epochs on a small validation set does not count as learning.
            best = float(np.max(_running_median(-r.raw_z)))
            level = r.chance
            margin = _accuracy_margin(level, th)
            above = best - level
            score = _ratio(margin, above) if above > 0 else math.inf
            agree = True
            if r.chance_k is not None and r.val_loss is not None and r.val_loss.size:
                agree = float(np.min(r.val_loss)) >= (1 - th.chance_loss_margin) * math.log(r.chance_k)
            scores.append(score)
            if score >= 1.0 and agree:
                near = ("is within a quarter of the way from chance {:.4g} to 1" if above > 0
                        else "is no better than chance {:.4g}").format(level)
                return Finding("at_chance", True, score,
                               f"best validation {_what(r)} {best:.4g} {near} "
                               f"({r.chance_source})")
    if r.chance_k is None and acc is not None and acc.size >= 5 \
            and float(np.median(acc)) <= 0.5 and _flat(acc, higher_is_better=True):
        loss = r.val_loss
        loss_flat = loss is None or loss.size < 3 or _flat(loss, higher_is_better=False) \
            or float(np.median(loss)) > math.log(1e4)
        if loss_flat:
            return Finding("at_chance", True, 1.0,
                           f"validation accuracy stays flat near {float(np.median(acc)):.3g} "
                           "and the validation loss never clearly improves: nothing was learned")
    return Finding("at_chance", False, max(scores, default=0.0),
                   "validation is clearly better than chance" if r.chance is not None
                   else "no sign of a constant guess")


def _loss_learns_beyond_constant(r: Reading, majority: float) -> bool:
    """A validation loss that falls steadily (its last third clearly below its first, see
    ``_flat``) to well below (90% of) the cross-entropy of the best constant guess on a task
    whose majority class has share ``majority`` (its binary entropy): the model is learning, and
    the repeated accuracy is the majority share of an imbalanced task, not a sign of chance. A
    loss that sits flat from the first epochs says nothing of the sort."""
    loss = r.val_loss
    if loss is None or loss.size < 3 or not 0 < majority < 1:
        return False
    constant_guess = -(majority * math.log(majority) + (1 - majority) * math.log(1 - majority))
    return not _flat(loss, higher_is_better=False) and float(np.min(loss)) < 0.9 * constant_guess


def _accuracy_margin(level: float, th: RuleThresholds) -> float:
    """How far above a chance accuracy still reads as chance: a quarter of the way to 1, and at
    most half of the chance level itself (0.29 on a 6-class task is clearly above 1/6)."""
    return min(th.chance_accuracy_margin * (1 - level), 0.5 * level)


def _what(r: Reading) -> str:
    return "loss" if r.is_loss else "score"


# A loss read in log10 (``Reading.log_scale``) is judged by ratios: its amounts are said as the
# percentages or factors a reader sees on a log axis, never as log10 numbers in the loss's place.

def _fall(r: Reading, x: float) -> str:
    """An improvement of ``x`` on the reading's scale, in the run's terms."""
    return f"{100 * (1 - 10 ** -x):.3g}%" if r.log_scale else f"{x:.3g}"


def _rise(r: Reading, x: float) -> str:
    """A worsening of ``x`` on the reading's scale, in the run's terms."""
    return f"{100 * (10 ** x - 1):.3g}%" if r.log_scale else f"{x:.3g}"


def _spread(r: Reading, x: float) -> str:
    """A noise or a movement of ``x`` on the reading's scale, in the run's terms."""
    return f"a factor of {10 ** x:.3g}" if r.log_scale else f"{x:.3g}"


def _last_epochs(r: Reading, w: int) -> str:
    """"the last w epochs", saying which when the points skip epochs (validation every k epochs,
    or a long run read in blocks)."""
    first, last = int(r.epochs[-w]), int(r.epochs[-1])
    if last - first + 1 == w:
        return f"the last {w} epochs"
    return f"the last {w} points (epochs {first}-{last})"


def rule_unstable(r: Reading, th: RuleThresholds) -> Finding:
    width = 5 if r.z.size >= 10 else 3
    yardstick = _yardstick(r, float(np.ptp(_running_median(r.z, width))))
    z = r.z[-(-r.z.size // 5):] if r.z.size >= 10 else r.z
    trend = _running_median(z, width)
    # The noise after the first fifth too: the spikes of the first epochs settle, and readers
    # discount them.
    sigma = robust_noise(z) if z.size >= 5 else r.sigma
    ratio = _ratio(sigma, yardstick)
    if ratio >= th.unstable_noise_ratio:
        return Finding("unstable", True, ratio / th.unstable_noise_ratio,
                       f"validation noise ({_spread(r, sigma)}) is {100 * ratio:.0f}% of its "
                       f"improvement ({_spread(r, yardstick)}): no trend can be read")
    # Swings: separate excursions from a running median (a run of consecutive epochs is one
    # excursion), after the first fifth of the run (readers discount early spikes). Spikes in
    # validation alone are the noise of a small validation set over a readable trend; when the
    # training curve jumps too, the optimisation itself is unstable (too high a learning rate).
    peaks = _excursions(np.abs(z - trend), th.unstable_jump * yardstick)
    train_jumps = _train_excursions(r, th) if r.train is not None else 0
    second = peaks[1] if len(peaks) > 1 else 0.0
    swing_score = _ratio(second, th.unstable_jump * yardstick)
    if train_jumps == 0:
        swing_score = min(swing_score, 0.99)
    finding = Finding("unstable", False, max(ratio / th.unstable_noise_ratio, swing_score),
                      "validation and training do not both jump away from their trends")
    if swing_score >= 1.0:
        big = sum(p >= th.unstable_jump * yardstick for p in peaks)
        return Finding("unstable", True, swing_score,
                       f"validation swings away from its trend {big} times by half of its "
                       f"movement ({_spread(r, yardstick)}) or more, and training jumps too")
    relapse = _validation_relapse(r, th)
    if relapse is not None:
        return relapse
    if r.train is not None and r.train.size >= 5 and r.is_loss:
        t = r.train
        best_i = int(np.argmin(t))
        fall = float(t[0] - t[best_i])
        rise = float(t[-1] - t[best_i])
        late = best_i <= t.size - 2
        if fall > 0 and late and rise > 3.0 * late_noise(t):
            share = _ratio(rise, fall)
            score = share / th.train_rise
            if score >= 1.0:
                return Finding("unstable", True, score,
                               f"the training loss climbed back {100 * share:.0f}% of the way "
                               f"from its best to where it started")
            finding = max(finding, Finding("unstable", False, score, "training loss rose late"),
                          key=lambda f: f.score)
    return finding


def _excursions(distance: np.ndarray, line: float) -> list[float]:
    """Peak distance of each run of consecutive epochs at or beyond ``line``, largest first;
    runs below the line contribute their largest distance only when there is no run at all."""
    peaks: list[float] = []
    current = 0.0
    for d in distance:
        if d >= line:
            current = max(current, float(d))
        elif current:
            peaks.append(current)
            current = 0.0
    if current:
        peaks.append(current)
    below = [float(d) for d in distance if d < line]
    return sorted(peaks, reverse=True) + sorted(below, reverse=True)[:2]


def _validation_relapse(r: Reading, th: RuleThresholds) -> Finding | None:
    """Validation climbs back ``train_rise`` (half) of the way it came after its best while
    training does not keep improving: no overfitting (training is not pulling away), no healthy
    run (it clearly got worse): the run fell apart, as an unstable optimisation does."""
    if r.train is None or r.train.size < 3 or r.came <= 0:
        return None
    rise = float(r.fit[-1] - r.fit[r.fit_best_index])
    share = _ratio(rise, r.came)
    if share < th.train_rise or rise <= 2.0 * late_noise(r.z):
        return None
    after = r.train[r.train_epochs >= int(r.epochs[r.fit_best_index])]
    improving, _ = _improves(after, late_noise(r.train), float(np.ptp(r.train)))
    if improving:
        return None
    return Finding("unstable", True, share / th.train_rise,
                   f"validation climbed back {100 * share:.0f}% of the way it came after its best "
                   "while training stopped improving")


def _train_excursions(r: Reading, th: RuleThresholds) -> int:
    """How often the training curve jumps away from its own trend by ``train_jump`` (a quarter)
    of its movement, after the first fifth of the run: a training curve is smooth (it averages a
    whole epoch), so a smaller jump there is already conspicuous."""
    t = r.train
    if t is None or t.size < 5:
        return 0
    width = 5 if t.size >= 10 else 3
    moved = float(np.ptp(_running_median(t, width)))
    floor = math.log10(1.5) if r.log_scale else 0.5 * abs(float(np.median(t)))
    line = th.train_jump * max(moved, floor)
    part = t[t.size // 5:] if t.size >= 10 else t
    peaks = _excursions(np.abs(part - _running_median(part, width)), line)
    return sum(p >= line for p in peaks)


def _yardstick(r: Reading, trend_range: float) -> float:
    """The movement noise and swings are judged against: how far the validation trend (a
    running median, which heavy-tailed noise does not move) travelled, down and back up for a
    U-shaped curve, and at least half of where it is (a flat curve's tiny "improvement" is no
    scale to judge its swings by; half is log10(1.5) on a log scale)."""
    floor = math.log10(1.5) if r.log_scale else 0.5 * abs(float(np.median(r.z)))
    return max(trend_range, floor)


def _improves(values: np.ndarray, noise: float, scale: float) -> tuple[bool, float]:
    """Did a curve (lower is better) improve from its first to its last epochs, beyond noise?"""
    if values.size < 2:
        return False, 0.0
    gain = float(values[0] - min(np.median(values[-3:]), values[-1]))
    # Beyond twice its noise; a curve with no noise at all must still move by 1% of its range.
    return gain > max(2.0 * noise, 0.01 * scale if noise == 0 else 0.0), gain


def rule_overfitting(r: Reading, th: RuleThresholds) -> Finding:
    if r.train is None or r.train.size < 3:
        return Finding("overfitting", False, 0.0, "no training curve to compare with")
    t, te = r.train, r.train_epochs
    t_noise, t_scale = late_noise(t), float(np.ptp(t))
    came = max(r.came, 1e-300)
    sigma = late_noise(r.z)
    # (a) validation ends clearly worse than its best while training improves after that best.
    best_epoch = int(r.epochs[r.fit_best_index])
    train_after, _ = _improves(t[te >= best_epoch], t_noise, t_scale)
    rise = float(r.fit[-1]) - float(r.fit[r.fit_best_index])
    rise_score = min(_ratio(rise, max(2.0 * sigma, 1e-300)), _ratio(rise, th.overfit_rise * came)) \
        if rise > 0 else 0.0
    if train_after and rise_score >= 1.0:
        return Finding("overfitting", True, rise_score,
                       f"validation ended {_rise(r, rise)} above its best "
                       f"({100 * _ratio(rise, came):.0f}% of how far it came) while training kept "
                       "improving")
    # (b) after validation stopped improving, the gap widens while validation stays flat.
    n = r.z.size
    start = min(int(np.searchsorted(r.epochs, r.plateau_epoch)), n - tail_window(n))
    common, iv, it = np.intersect1d(r.epochs[start:], te, return_indices=True)
    if common.size < 3:
        return Finding("overfitting", False, rise_score if train_after else 0.0,
                       "validation did not clearly worsen")
    val_w, train_w = r.z[start:][iv], t[it]
    train_in_window, _ = _improves(train_w, t_noise, t_scale)
    gap = val_w - train_w
    x = common.astype(np.float64)
    slope, low, _high = _theil(gap, x)
    growth = slope * float(x[-1] - x[0])
    v_slope, _, _ = _theil(val_w, x)
    t_slope, _, _ = _theil(train_w, x)
    # Flat: validation moves by no more than its noise, a twentieth of how far it came, or a
    # quarter of what training gains over the same epochs.
    val_flat = -v_slope * float(x[-1] - x[0]) <= max(2.0 * sigma, 0.05 * came,
                                                      -0.25 * t_slope * float(x[-1] - x[0]))
    # Against how far validation came (not as a ratio of two small numbers)... A long window
    # (``long_window`` epochs or more) over which the gap grew ``gap_fold``-fold is read with a
    # lower line: there the widening is a steady trend, not a few epochs' wobble.
    edge = min(5, gap.size // 3 or 1)
    start_gap, end_gap = float(np.median(gap[:edge])), float(np.median(gap[-edge:]))
    several_fold = common.size >= th.long_window and start_gap > 0 \
        and end_gap >= th.gap_fold * start_gap
    line = th.gap_growth_came_long if several_fold else th.gap_growth_came
    growth_score = _ratio(growth, line * came) if growth > 0 else 0.0
    # ...and never inside the noise: curves that track each other within it are not diverging.
    growth_score = min(growth_score, _ratio(growth, 2.0 * sigma)) if sigma > 0 else growth_score
    still = rule_not_converged(r, th).fires
    val_flat = val_flat and not still
    if train_in_window and low > 0 and val_flat and gap[-1] > 0 and growth_score >= 1.0:
        return Finding("overfitting", True, growth_score,
                       f"from epoch {int(common[0])} the gap grew by {_rise(r, growth)} while "
                       "validation stayed flat and training kept improving")
    score = max(rise_score if train_after else 0.0,
                growth_score if (train_in_window and low > 0 and val_flat) else 0.0)
    return Finding("overfitting", False, score,
                   "validation did not clearly worsen and the gap did not clearly widen")


def tail_still_falling(z: np.ndarray, epochs: np.ndarray) -> bool:
    """The last window still improves beyond its noise (lower is better): its Theil-Sen trend
    falls across the window by more than three late noise sd (a window of pure noise rarely
    does: its trend's fall spreads by about one sd) and by 1% of the curve's range, and the
    trend's whole 90% interval lies below zero."""
    w = tail_window(z.size)
    x = epochs[-w:].astype(np.float64)
    slope, _, high = _theil(z[-w:], x)
    fall = -slope * float(x[-1] - x[0])
    # Beyond three noise sd, and at least the plateau's tolerance, 1% of the curve's range (a
    # noise-free curve has no noise to beat; a creep of 0% of the range is converged): then the
    # verdict and the plateau's ``still_improving`` read the tail alike.
    noise = late_noise(z)
    return high < 0 and fall > max(3.0 * noise, 0.01 * float(np.ptp(z)))


def rule_not_converged(r: Reading, th: RuleThresholds) -> Finding:
    n = r.z.size
    w = tail_window(n)
    if n <= w:
        # A run as short as the window: still learning when its last epoch is its best and the
        # whole run still falls beyond its noise (an underfitting verdict would say "converged").
        if r.best_index == n - 1 and tail_still_falling(r.z, r.epochs):
            return Finding("not_converged", True, 1.0, f"all {n} epochs: the last is the best and "
                           "validation still falls beyond its noise")
        return Finding("not_converged", False, 0.0, "too few epochs to tell")
    # Still improving = the last window sets a new best beyond the noise (a recovery from a
    # spike back to an earlier level is not), and the smoothed curve still falls across it.
    record = float(np.min(r.fit[: n - w]) - np.min(r.fit[n - w:]))
    fall = float(r.fit[-w - 1] - r.fit[-1])
    sigma = late_noise(r.z)
    sd = _ratio(record, sigma) if sigma > 0 else (math.inf if record > 0 else 0.0)
    frac = _ratio(record, r.came)
    score = min(sd / th.tail_gain_sd, frac / th.tail_gain_came) if record > 0 and fall > 0 \
        else 0.0
    # The best epoch is the last and the trend over the last window still falls beyond the noise
    # (``tail_still_falling``): still learning, however small the share of how far it came. The
    # record then stays under its own line: a close call, scored 1.0 and said so.
    falling = r.best_index == n - 1 and tail_still_falling(r.z, r.epochs)
    below_line = score < 1.0
    if falling:
        score = max(score, 1.0)
    # A curve without measurable late noise (a smooth one) is "beyond noise" by any amount: say
    # so rather than "inf noise sd".
    noise = f"{max(sd, 0.0):.1f} noise sd" if math.isfinite(sd) else "no measurable noise"
    if score >= 1.0:
        trend = ("; its last epoch is its best and the trend still falls beyond the noise"
                 if falling and below_line else "")
        return Finding("not_converged", True, score,
                       f"over {_last_epochs(r, w)} validation still improved on its earlier best "
                       f"by {_fall(r, max(record, 0.0))} ({noise}, {100 * max(frac, 0.0):.0f}% "
                       f"of how far it came){trend}")
    return Finding("not_converged", False, score,
                   f"over {_last_epochs(r, w)} validation improved on its earlier best by "
                   f"{_fall(r, max(record, 0.0))} ({noise}, {100 * max(frac, 0.0):.0f}% of how "
                   "far it came)")


def rule_underfitting(r: Reading, th: RuleThresholds) -> Finding:
    ta = r.train_accuracy
    if ta is not None and ta.size:
        best = float(np.max(_running_median(ta)))
        # Judged on the error (1 - accuracy) against the line's (0.2): an accuracy of 0.99 is 20
        # times under the line, not "0.8 of it" (a ratio of accuracies cannot exceed 1.25).
        score = _ratio(1.0 - best, 1.0 - th.good_accuracy) if best < 1 else 0.0
        return Finding("underfitting", score >= 1.0, score,
                       f"training accuracy only reaches {best:.3g} (good: {th.good_accuracy:g})"
                       if score >= 1.0 else f"training accuracy reaches {best:.3g}")
    if r.train is None or not r.is_loss:
        return Finding("underfitting", False, 0.0, "no training loss to judge the fit by")
    # The training loss in its own units: how far it fell, and where it is against chance, are
    # ratios of raw losses (log10 values would make the verdict depend on the loss's units).
    t = np.power(10.0, r.train) if r.log_scale else r.train
    if r.chance is not None and r.chance > 0:
        share = _ratio(float(t.min()), r.chance)
        score = share / th.underfit_chance_fraction
        return Finding("underfitting", score >= 1.0, score,
                       f"the training loss stays at {100 * share:.0f}% of chance ({r.chance:.4g})")
    first = float(t[0])
    if first > 0:
        fell = _ratio(first - float(np.min(_running_median(t))), first)
        score = _ratio(th.flat_fraction, fell) if fell > 0 else math.inf
        return Finding("underfitting", score >= 1.0, score,
                       f"the training loss fell by only {100 * fell:.0f}% of its first value"
                       if score >= 1.0 else f"the training loss fell by {100 * fell:.0f}%")
    return Finding("underfitting", False, 0.0, "no sign of a poor fit")


Rule = Callable[[Reading, RuleThresholds], Finding]

RULES: tuple[tuple[str, Rule], ...] = (
    ("at_chance", rule_at_chance),
    ("unstable", rule_unstable),
    ("overfitting", rule_overfitting),
    ("not_converged", rule_not_converged),
    ("underfitting", rule_underfitting),
)


def decide(r: Reading, th: RuleThresholds) -> tuple[str, Finding | None, list[Finding]]:
    """Every rule's finding in order of precedence, and the verdict: the first rule that fires,
    else ``healthy``."""
    findings = [rule(r, th) for _name, rule in RULES]
    chosen = next((f for f in findings if f.fires), None)
    return (chosen.verdict if chosen else "healthy"), chosen, findings


def considered(chosen: Finding | None, findings: list[Finding]) -> list[Finding]:
    """The findings a reader weighs before deciding: the rules up to the one that fired."""
    return findings if chosen is None else findings[:findings.index(chosen) + 1]


def close_calls(chosen: Finding | None, findings: list[Finding], verdict: str,
                band: float = 1.5) -> list[dict[str, Any]]:
    """The verdicts that came close, each with the number that decided it.

    A rule up to the chosen one that did not fire but scored at least ``1/band`` of its threshold
    came close; so did the verdict next in line (the next rule that fires, or healthy) when the
    chosen rule fired by less than ``band`` times its threshold. ``findings`` are ``decide``'s.
    """
    out: list[dict[str, Any]] = []
    seen = {verdict}
    for f in considered(chosen, findings):
        if not f.fires and f.score >= 1.0 / band and f.verdict not in seen:
            out.append({"verdict": f.verdict, "score": round(float(f.score), 3), "why": f.why})
            seen.add(f.verdict)
    if chosen is not None and chosen.score < band:
        later = findings[findings.index(chosen) + 1:]
        following = next((f.verdict for f in later if f.fires), "healthy")
        if following not in seen:
            out.append({"verdict": following, "score": round(float(1.0 / chosen.score), 3),
                        "why": f"{chosen.verdict} only by {chosen.score:.2f}x its threshold "
                               f"({chosen.why})"})
    return out[:2]


def _spans_a_decade(values: np.ndarray) -> bool:
    """The curve's trend (a running median, after the first epoch) spans a factor of 10: noise
    dipping towards zero is not what makes a reader switch to a log axis."""
    if values.size < 3:
        return False
    trend = _running_median(values[1:])
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
