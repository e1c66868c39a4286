"""Pruning a trial of a sweep: stop a run whose forecast says it cannot beat the best run so far.

``forecast_prune_decision(values, *, budget_end, best_completed, ...)`` decides, at the last
epoch of ``values`` (epoch i = index i unless ``epochs`` are given), whether the trial should be
pruned. It prunes only when

- the trial has at least ``min_epochs`` epochs (``max(forecast.MIN_EPOCHS, min_epochs)``: a
  forecast from a handful of epochs is mostly noise), and
- even the optimistic end of ``forecast_curve(values, level=level)``'s interval for the best
  value at ``budget_end`` (``ForecastResult.best_interval``'s better end, which includes the luck
  of the remaining noisy epochs) is worse than ``best_completed``, the best value of the best
  completed trial.

A trial whose own best so far already beats ``best_completed`` is never pruned. There is no
tolerance: the rule asks "can this trial win", not "is its gain worth the epochs", so the only
knob is the interval's ``level`` (a wider interval prunes later and keeps more trials).

Pure numpy: the Optuna face (``optuna_pruner.ForecastPruner``) and the Keras callback option
(``callback.ForecastStopping(prune_against_experiment=True)``) both call it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .curves import Mode
from .forecast import MIN_EPOCHS, forecast_curve
from .numerics import mode_sign
from .stopping import decision_curve


@dataclass(frozen=True)
class PruneDecision:
    """Whether to prune at the curve's last epoch, and the numbers behind it."""

    prune: bool
    optimistic: float | None   # the optimistic end of the best value's interval at budget_end
    best_completed: float | None
    epoch: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def forecast_prune_decision(values: Any, *, budget_end: int, best_completed: float | None,
                            mode: Mode = "min", min_epochs: int = 10, level: float = 0.9,
                            epochs: Any = None) -> PruneDecision:
    """Whether to prune the trial at the last epoch of ``values`` (see the module docstring)."""
    sign = mode_sign(mode)
    if isinstance(min_epochs, bool) or not isinstance(min_epochs, int) or min_epochs < 0:
        raise ValueError(f"min_epochs must be an int >= 0, not {min_epochs!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), not {level}")
    y, x = decision_curve(values, epochs, "forecast_prune_decision")
    last = int(x[-1])
    if best_completed is None or not math.isfinite(float(best_completed)):
        # nothing completed yet (or no usable best): nothing to lose against
        return PruneDecision(False, None, None, last)
    best = float(best_completed)
    if y.size < max(MIN_EPOCHS, min_epochs) or float(np.min(sign * y)) <= sign * best:
        return PruneDecision(False, None, best, last)
    f = forecast_curve(y, epochs=epochs, mode=mode, level=level)
    if f.insufficient or f.best_value is None:
        return PruneDecision(False, None, best, last)
    low, high = f.best_interval(float(max(budget_end, last)))
    optimistic = float(low if mode == "min" else high)
    # prune only when even the optimistic end is strictly worse than the best completed trial
    return PruneDecision(bool(sign * optimistic > sign * best), optimistic, best, last)


__all__ = ["PruneDecision", "forecast_prune_decision"]
