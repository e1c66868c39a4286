"""The rules that read a curve's shape: ``unstable``, ``overfitting``, ``not_converged`` and
``underfitting``, in that order of precedence (after ``at_chance``, see ``rules.RULES``).

Each judges a ``Reading`` (see ``reading.py``) with the lines of ``RuleThresholds`` and returns
a ``Finding`` whose why quotes its amounts in the run's terms (percentages or factors for a loss
read in log10). ``tail_window`` is the "last epochs" a reader looks at, ``tail_still_falling``
whether they still improve beyond their noise:

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

Nothing here imports mlflow or keras.
"""

from __future__ import annotations

import math

import numpy as np

from .reading import (
    Finding,
    Reading,
    RuleThresholds,
    late_noise,
    robust_noise,
    running_median,
    safe_ratio,
)
from .theil import theil_slope


def _theil(y: np.ndarray, x: np.ndarray) -> tuple[float, float, float]:
    if y.size < 3 or np.ptp(y) == 0:
        return 0.0, 0.0, 0.0
    slope, low, high = theil_slope(y, x, alpha=0.90)
    return float(slope), float(low), float(high)


def tail_window(n: int) -> int:
    """The "last epochs" a reader looks at: a quarter of the run, at least 5 (3 on runs of up to
    10 epochs) and at most 20."""
    return int(min(20, max(3 if n <= 10 else 5, n // 4)))


# A loss read in log10 (``Reading.log_scale``) is judged by ratios: its amounts are said as the
# percentages or factors a reader sees on a log axis, never as log10 numbers in the loss's place.

def _power10(x: float) -> float:
    """10**x, inf where a float cannot hold it (a curve spanning hundreds of decades)."""
    return 10.0 ** x if x < 308.0 else math.inf


def _fall(r: Reading, x: float) -> str:
    """An improvement of ``x`` on the reading's scale, in the run's terms."""
    return f"{100 * (1 - _power10(-x)):.3g}%" if r.log_scale else f"{x:.3g}"


def _rise(r: Reading, x: float) -> str:
    """A worsening of ``x`` on the reading's scale, in the run's terms."""
    return f"{100 * (_power10(x) - 1):.3g}%" if r.log_scale else f"{x:.3g}"


def _spread(r: Reading, x: float) -> str:
    """A noise or a movement of ``x`` on the reading's scale, in the run's terms."""
    return f"a factor of {_power10(x):.3g}" if r.log_scale else f"{x:.3g}"


def _last_epochs(r: Reading, w: int) -> str:
    """"the last w epochs", saying which when the points skip epochs (validation every k epochs,
    or a long run read in blocks)."""
    first, last = int(r.epochs[-w]), int(r.epochs[-1])
    if last - first + 1 == w:
        return f"the last {w} epochs"
    return f"the last {w} points (epochs {first}-{last})"


def rule_unstable(r: Reading, th: RuleThresholds) -> Finding:
    width = 5 if r.z.size >= 10 else 3
    yardstick = _yardstick(r, float(np.ptp(running_median(r.z, width))))
    z = r.z[-(-r.z.size // 5):] if r.z.size >= 10 else r.z
    trend = running_median(z, width)
    # The noise after the first fifth too: the spikes of the first epochs settle, and readers
    # discount them.
    sigma = robust_noise(z) if z.size >= 5 else r.sigma
    ratio = safe_ratio(sigma, yardstick)
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
    swing_score = safe_ratio(second, th.unstable_jump * yardstick)
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
            share = safe_ratio(rise, fall)
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
    share = safe_ratio(rise, r.came)
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
    moved = float(np.ptp(running_median(t, width)))
    floor = math.log10(1.5) if r.log_scale else 0.5 * abs(float(np.median(t)))
    line = th.train_jump * max(moved, floor)
    part = t[t.size // 5:] if t.size >= 10 else t
    peaks = _excursions(np.abs(part - running_median(part, width)), line)
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
    rise_score = min(safe_ratio(rise, max(2.0 * sigma, 1e-300)), safe_ratio(rise, th.overfit_rise * came)) \
        if rise > 0 else 0.0
    if train_after and rise_score >= 1.0:
        return Finding("overfitting", True, rise_score,
                       f"validation ended {_rise(r, rise)} above its best "
                       f"({100 * safe_ratio(rise, came):.0f}% of how far it came) while training kept "
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
    growth_score = safe_ratio(growth, line * came) if growth > 0 else 0.0
    # ...and never inside the noise: curves that track each other within it are not diverging.
    growth_score = min(growth_score, safe_ratio(growth, 2.0 * sigma)) if sigma > 0 else growth_score
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
    sd = safe_ratio(record, sigma) if sigma > 0 else (math.inf if record > 0 else 0.0)
    frac = safe_ratio(record, r.came)
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
        best = float(np.max(running_median(ta)))
        # Judged on the error (1 - accuracy) against the line's (0.2): an accuracy of 0.99 is 20
        # times under the line, not "0.8 of it" (a ratio of accuracies cannot exceed 1.25).
        score = safe_ratio(1.0 - best, 1.0 - th.good_accuracy) if best < 1 else 0.0
        return Finding("underfitting", score >= 1.0, score,
                       f"training accuracy only reaches {best:.3g} (good: {th.good_accuracy:g})"
                       if score >= 1.0 else f"training accuracy reaches {best:.3g}")
    if r.train is None or not r.is_loss:
        return Finding("underfitting", False, 0.0, "no training loss to judge the fit by")
    # The training loss in its own units: how far it fell, and where it is against chance, are
    # ratios of raw losses (log10 values would make the verdict depend on the loss's units).
    t = np.power(10.0, r.train) if r.log_scale else r.train
    if r.chance is not None and r.chance > 0:
        share = safe_ratio(float(t.min()), r.chance)
        score = share / th.underfit_chance_fraction
        return Finding("underfitting", score >= 1.0, score,
                       f"the training loss stays at {100 * share:.0f}% of chance ({r.chance:.4g})")
    first = float(t[0])
    if first > 0:
        fell = safe_ratio(first - float(np.min(running_median(t))), first)
        score = safe_ratio(th.flat_fraction, fell) if fell > 0 else math.inf
        return Finding("underfitting", score >= 1.0, score,
                       f"the training loss fell by only {100 * fell:.0f}% of its first value"
                       if score >= 1.0 else f"the training loss fell by {100 * fell:.0f}%")
    return Finding("underfitting", False, 0.0, "no sign of a poor fit")


__all__ = ["rule_not_converged", "rule_overfitting", "rule_underfitting", "rule_unstable",
           "tail_still_falling", "tail_window"]
