"""Stopping on the forecast: stop when the rest of the epoch budget would not buy a real gain.

``forecast_stop_decision(values, *, budget_end, ...)`` decides, at the last epoch of ``values``
(epoch i = index i unless ``epochs`` are given), whether training should stop:

- ``patience``: Keras's ``EarlyStopping(patience, min_delta)`` rule, replayed exactly
  (``plateau.early_stopping_replay``), would stop here. The forecast never keeps training past
  that point, so forecast stopping never trains longer than EarlyStopping with the same patience;
- ``forecast``: from ``max(MIN_EPOCHS, patience)`` epochs on (a forecast from a handful of
  epochs is mostly noise), ``forecast_curve(values, level=level)`` says that
  even the optimistic end of its interval for the best value at ``budget_end`` (the last epoch
  training would run, e.g. ``epochs - 1`` of ``model.fit``) improves the best so far by less than
  ``tolerance``; ``tolerance = max(min_delta, relative_delta x |best so far|)``: a relative gain
  (a loss at 0.3 with ``relative_delta = 0.01`` must still be able to gain 0.003; one at 0.003,
  0.00003). "Optimistic" is ``ForecastResult.best_interval``'s better end, which includes the luck
  of the remaining noisy epochs, so on a noisy curve whose interval still holds a real gain the
  decision falls back on ``patience``, exactly as EarlyStopping would. With a best of exactly 0
  and ``min_delta = 0`` the tolerance is 0 and only patience stops.

Why relative to the best and not to the improvement so far (the diagnosis's ``relative_delta``):
the worth of a gain is relative, and the loss near the end of a run is often a small fraction of
where it started. With "1% of the improvement so far", a loss that fell from 0.3 to 0.003 and
could still fall to 0.0005 was stopped (the rest was under 1% of 0.297), and on the replay of
``benchmarks/stopping_replay.py`` that rule lay above Keras's patience family on the (epochs
trained, mean log regret) plane at every patience tried (mean regret 0.162 at 1262 epochs, where
patience traded 0.045); relative to the best it lies below it (0.037 at 1241 epochs) and stays
below it at ``relative_delta`` 0.02-0.1 and on the recorded sweeps of ``benchmarks/data/sweeps``.

``forecast_stopping_replay(values, *, budget_end=None, ...)`` replays the rule epoch by epoch over
a finished curve (``budget_end`` defaults to its last epoch) and returns a ``plateau.ReplayResult``
(``best_epoch`` up to the stop, ``stopped_epoch`` or None) plus the reason. Pure numpy: the Keras
callback (``callback.ForecastStopping``) and ``benchmarks/stopping_replay.py`` both call it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .curves import Mode
from .forecast import MIN_EPOCHS, forecast_curve
from .numerics import mode_sign
from .plateau import ReplayResult, early_stopping_replay

_WARMUP = 1  # the forecast may stop training from _WARMUP x patience epochs on


@dataclass(frozen=True)
class StopDecision:
    """Whether to stop at the curve's last epoch, why, and the numbers behind it."""

    stop: bool
    reason: str | None            # "forecast", "patience" or None
    tolerance: float
    gain_high: float | None       # optimistic gain of the best by budget_end (None: no forecast)
    epoch: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check(min_delta: float, relative_delta: float, patience: int, level: float) -> None:
    if not np.isfinite(min_delta) or min_delta < 0:
        raise ValueError(f"min_delta must be a finite number >= 0, not {min_delta}")
    if not 0 <= relative_delta < 1:
        raise ValueError(f"relative_delta must be in [0, 1), not {relative_delta}")
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
        raise ValueError(f"patience must be an int >= 0, not {patience!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), not {level}")


def decision_curve(values: Any, epochs: Any, who: str) -> tuple[np.ndarray, np.ndarray]:
    """The values (finite, at least one) and their epochs that a stop or prune decision reads;
    ValueError naming ``who`` otherwise."""
    y = np.asarray(values, dtype=np.float64).reshape(-1)
    if y.size == 0:
        raise ValueError(f"{who} needs at least one value")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{who} needs finite values")
    x = np.arange(y.size) if epochs is None else np.asarray(epochs).reshape(-1)
    return y, x


def forecast_stop_decision(values: Any, *, budget_end: int, mode: Mode = "min",
                           min_delta: float = 0.0, relative_delta: float = 0.01,
                           patience: int = 10, level: float = 0.8,
                           epochs: Any = None) -> StopDecision:
    """Whether to stop at the last epoch of ``values`` (see the module docstring)."""
    sign = mode_sign(mode)
    _check(min_delta, relative_delta, patience, level)
    y, x = decision_curve(values, epochs, "forecast_stop_decision")
    last = int(x[-1])
    z = sign * y
    tol = max(float(min_delta), relative_delta * abs(float(z.min())))
    if early_stopping_replay(y, mode=mode, min_delta=min_delta,
                             patience=patience).stopped_epoch == y.size - 1:
        return StopDecision(True, "patience", tol, None, last)
    if y.size < max(MIN_EPOCHS, _WARMUP * patience) or budget_end <= last:
        return StopDecision(False, None, tol, None, last)
    f = forecast_curve(y, epochs=epochs, mode=mode, level=level)
    low, high = f.best_interval(float(budget_end))
    optimistic = low if mode == "min" else high
    gain_high = float(sign * (float(f.best_value) - optimistic))
    stop = tol > 0 and gain_high < tol
    return StopDecision(bool(stop), "forecast" if stop else None, tol, gain_high, last)


@dataclass(frozen=True)
class StoppingReplay:
    """``forecast_stopping_replay``'s answer: Keras's ``ReplayResult`` and why it stopped."""

    result: ReplayResult
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {**self.result.to_dict(), "reason": self.reason}


def forecast_stopping_replay(values: Any, *, budget_end: int | None = None, mode: Mode = "min",
                             min_delta: float = 0.0, relative_delta: float = 0.01,
                             patience: int = 10, level: float = 0.8) -> StoppingReplay:
    """Replay forecast stopping epoch by epoch over a finished curve (epoch i = index i)."""
    y = np.asarray(values, dtype=np.float64).reshape(-1)
    if y.size == 0 or not np.all(np.isfinite(y)):
        raise ValueError("forecast_stopping_replay needs finite values")
    end = y.size - 1 if budget_end is None else int(budget_end)
    sign = mode_sign(mode)
    for i in range(y.size):
        d = forecast_stop_decision(y[:i + 1], budget_end=end, mode=mode, min_delta=min_delta,
                                   relative_delta=relative_delta, patience=patience, level=level)
        if d.stop:
            best = int(np.argmin(sign * y[:i + 1]))
            return StoppingReplay(ReplayResult(best, i, float(y[best])), d.reason)
    best = int(np.argmin(sign * y))
    return StoppingReplay(ReplayResult(best, None, float(y[best])), None)


__all__ = ["StopDecision", "StoppingReplay", "forecast_stop_decision", "forecast_stopping_replay"]
