"""Where a verdict comes from, as epoch ranges: ``epoch_ranges(diagnosis)``.

A reader who is told "overfitting" looks for the epochs that show it; so does a CI log. This
module turns a ``Diagnosis`` (its plateau, gap and evidence, nothing recomputed) into a few
``EpochRange`` values, each a metric, a first and a last epoch and one line saying what happens
there, in the order a reader would point at them:

``diverged``           the epoch the loss became NaN/inf, exploded or blew up; for a dead net, the
                       flat epochs after it.
``insufficient_data``  the few epochs there are.
``at_chance``          the whole run (from ``evidence["first_epoch"]``, 0 when absent): the
                       monitor never left chance.
``unstable``           the whole run: no trend can be read anywhere in it.
``overfitting``        the monitor worse than its best from the best epoch to the last (rule a),
                       or the gap widening from the plateau epoch to the last (rule b).
``not_converged``      the last window (``rules.tail_window``) still setting new bests.
``underfitting``       the training curve poor over the whole run.
``healthy``            the monitor flat from the plateau epoch to the last.

Every verdict that had a plateau also gets, when patience would have stopped earlier, the epochs
after ``EarlyStopping``'s stop (``wasted``). Epoch numbers are the run's own (the last window is
counted in logged epochs, so on a run logged every k epochs it spans k times more).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .rules import tail_window

if TYPE_CHECKING:
    from .verdict import Diagnosis


_GAP_RULE = re.compile(r"from epoch (-?\d+) the gap grew")


@dataclass(frozen=True)
class EpochRange:
    """Epochs ``first`` to ``last`` (inclusive) of ``metric`` show ``what``."""

    metric: str
    first: int
    last: int
    what: str
    kind: str  # "verdict" (where the verdict shows) or "wasted" (after the would-be stop)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        where = f"epoch {self.first}" if self.first == self.last else \
            f"epochs {self.first} to {self.last}"
        return f"{self.metric}: {self.what}, {where}"


def _verdict_range(d: Diagnosis) -> EpochRange | None:
    ev, p, monitor = d.evidence, d.plateau, d.monitor
    if d.verdict == "diverged":
        epoch = ev.get("diverged_epoch")
        if epoch is None:
            return None
        metric = ev.get("diverged_metric") or monitor
        what = {"exploded": "the loss exploded", "dead": "the loss blew up, then every curve "
                "stayed flat"}.get(ev.get("diverged_how"), "the values became NaN/inf")
        last = p.last_epoch if p is not None and ev.get("diverged_how") == "dead" else epoch
        return EpochRange(metric, int(epoch), int(last), what, "verdict")
    if p is None:
        return None
    first, last = int(ev.get("first_epoch", 0)), int(p.last_epoch)
    if d.verdict == "insufficient_data":
        return EpochRange(monitor, first, last, f"only {p.n_epochs} usable epoch(s)", "verdict")
    if d.verdict == "at_chance":
        return EpochRange(monitor, first, last, "at chance level throughout", "verdict")
    if d.verdict == "unstable":
        return EpochRange(monitor, first, last, "no trend can be read", "verdict")
    if d.verdict == "overfitting":
        # rule (b) says from which epoch the gap grew; rule (a) is the turn after the best
        widening = _GAP_RULE.match(str(ev.get("decided_by", "")))
        if widening:
            return EpochRange(monitor, int(widening.group(1)), last, "validation flat while the "
                              f"gap to {d.train_metric} widens", "verdict")
        return EpochRange(monitor, int(p.best_epoch), last, "validation worse than its best "
                          f"({p.best_value:.4g} at epoch {p.best_epoch}) while training improves",
                          "verdict")
    if d.verdict == "not_converged":
        w = tail_window(int(p.n_epochs))
        return EpochRange(monitor, max(first, last - w + 1), last, "still setting new bests",
                          "verdict")
    if d.verdict == "underfitting":
        return EpochRange(d.train_metric or monitor, first, last, "training fit stays poor",
                          "verdict")
    return EpochRange(monitor, int(p.epoch), last, "flat within its tolerance (converged)",
                      "verdict")


def epoch_ranges(d: Diagnosis) -> tuple[EpochRange, ...]:
    """The epoch ranges that show ``d``'s verdict (module docstring); () when there are none."""
    out = []
    found = _verdict_range(d)
    if found is not None:
        out.append(found)
    p = d.plateau
    if d.verdict != "diverged" and p is not None and p.stop_epoch is not None and p.wasted_epochs:
        patience = d.config.get("patience")
        out.append(EpochRange(d.monitor, int(p.stop_epoch) + 1, int(p.last_epoch),
                              f"trained after EarlyStopping(patience={patience}) would have "
                              "stopped", "wasted"))
    return tuple(out)


__all__ = ["EpochRange", "epoch_ranges"]
