"""The ``at_chance`` rule: validation never got clearly better than a constant guess.

``infer_chance`` reads the class count k off a run when its accuracy and its loss agree on it;
``rule_at_chance`` judges a ``Reading`` (see ``reading.py``) with the lines of
``RuleThresholds``:

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

It is the first rule in the order of precedence (``rules.RULES``). Nothing here imports mlflow or
keras.
"""

from __future__ import annotations

import math

import numpy as np

from .reading import Finding, Reading, RuleThresholds, robust_noise, running_median, safe_ratio


def _flat(values: np.ndarray, higher_is_better: bool) -> bool:
    """The curve never clearly improved: its last third is no better than its first third by
    more than twice its noise and 5% of its level (medians, so single epochs do not count)."""
    z = -values if higher_is_better else values
    if z.size < 3:
        return False
    third = max(1, z.size // 3)
    head, late = float(np.median(z[:third])), float(np.median(z[-third:]))
    return head - late <= max(2.0 * robust_noise(z), 0.05 * abs(head))


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
            score = safe_ratio(margin, below) if below > 0 else math.inf
            agree = True
            if r.chance_k is not None and acc is not None and acc.size:
                # The accuracy must agree: its level (90th percentile of a running median, so
                # noise on a small validation set is not learning) stays near 1/k.
                agree = float(np.percentile(running_median(acc), 90)) <= \
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
            best = float(np.max(running_median(-r.raw_z)))
            level = r.chance
            margin = _accuracy_margin(level, th)
            above = best - level
            score = safe_ratio(margin, above) if above > 0 else math.inf
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


__all__ = ["infer_chance", "rule_at_chance"]
