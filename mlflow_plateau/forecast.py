"""Would more epochs help? Extrapolate one learning curve from the epochs seen so far.

``forecast_curve(values, *, epochs=None, mode="min", level=0.8)`` fits an ensemble of parametric
learning-curve families (Domhan et al. 2015; LCDB, Mohr et al. 2022) to the curve and returns a
``ForecastResult``.

How the members are fitted, weighted and averaged, in which space, and how a curve that has
turned (got worse since its best) is forecast: ``forecast_fit.py``.

What is reported (in the curve's own units and epochs):

- ``best(epoch)``: the best value expected by ``epoch``: the better of the best seen so far and
  the forecast level at ``epoch``; ``best_interval(epoch)`` the same at both ends of the interval,
  the better end also lowered by the luck of the extra noisy epochs (the best of ``k`` noisy
  values lies up to ``sigma sqrt(2 ln(1 + k))`` beyond their level; at most ``1 sigma``);
- ``asymptote``: the forecast level at ``HORIZON`` (100) x the epochs seen (for a turned curve, a
  level still rising);
- ``epochs_to_plateau``: the first epoch from which the forecast stays within the tolerance of the
  asymptote (``max(0.01 x the fitted improvement, 2 sigma)``, the plateau tolerance of
  ``diagnose_curves``), searched up to 100 x the epochs seen; None beyond; for a turned curve, its
  best epoch (where it stopped improving);
- ``epoch_2x = origin + 2 t_last - 1``, the last epoch of twice as many epochs of training (79
  for epochs 0-39, 80 for epochs 1-40, 2079 for a run resumed at epoch 1000): ``value_at_2x``
  (``value_at_2x_low``, ``value_at_2x_high``) = ``predict`` / ``interval`` there, ``best_at_2x``,
  and ``gain_if_doubled`` (``gain_low``, ``gain_high``): how much better the best value gets by
  then, positive = better, from ``best_interval``;
- ``weights``: member name -> weight, so a report can say which shape it saw.

Input handling is that of ``plateau_epoch``: values must be finite (cut a curve at its first NaN
with ``curves.finite_prefix``), epochs strictly increasing integers, ``mode`` "min" or "max".
Fewer than ``MIN_EPOCHS`` (5) values give ``insufficient=True`` with every number None; then
``predict`` and the other methods raise ValueError.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from .curves import Mode
from .forecast_fit import FAMILIES, MIN_EPOCHS, CurveFit, ForecastState, fit_curve
from .numerics import checked_epochs, mode_sign, normal_quantile

HORIZON = 100            # epochs_to_plateau is searched up to HORIZON x the epochs seen
_FAR = 10                # forecast_sentence: levelling off past this many x the epochs is "slowly"
_ROUNDING = 1e-9         # h differences below this are rounding, not a distance
_PROBES = 2000           # epochs_to_plateau: at most this many epochs probed after the last one


def _z(level: float) -> float:
    """The normal quantile of a two-sided ``level`` interval."""
    return normal_quantile(0.5 + level / 2)


@dataclass(frozen=True)
class ForecastResult:
    """The forecast of one curve (see the module docstring); numbers in the curve's units."""

    insufficient: bool
    mode: str
    level: float
    n_epochs: int
    last_epoch: int | None = None
    best_value: float | None = None
    best_epoch: int | None = None
    space: str | None = None
    asymptote: float | None = None
    epochs_to_plateau: int | None = None
    epoch_2x: int | None = None
    value_at_2x: float | None = None
    value_at_2x_low: float | None = None
    value_at_2x_high: float | None = None
    best_at_2x: float | None = None
    gain_if_doubled: float | None = None
    gain_low: float | None = None
    gain_high: float | None = None
    weights: dict[str, float] = field(default_factory=dict)
    turned: bool = False   # worse since its best: forecast by "rising" and "last" alone
    state: ForecastState | None = field(default=None, repr=False, compare=False)

    def _state(self) -> ForecastState:
        if self.insufficient:
            raise ValueError(f"no forecast: only {self.n_epochs} usable epoch(s), at least "
                             f"{MIN_EPOCHS} are needed")
        if self.state is None:
            raise ValueError("this forecast was read back from its to_dict(): its numbers are "
                             "here, but forecast_curve must be run again to evaluate it")
        return self.state

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ForecastResult:
        """The numbers of a ``to_dict()`` back as a result (``predict`` and the other methods
        then raise: the fitted members are not part of the dict)."""
        names = {f.name for f in fields(cls)} - {"state"}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown ForecastResult fields: {sorted(unknown)}")
        return cls(**{k: (dict(v) if k == "weights" else v) for k, v in data.items()})

    def _q(self) -> float:
        return _z(self.level)

    def predict(self, epoch: Any) -> Any:
        """The forecast level of the curve at ``epoch`` (a number or an array of them)."""
        st = self._state()
        mean, _ = st.at(epoch)
        return st.space.from_h(mean)

    def interval(self, epoch: Any) -> tuple[Any, Any]:
        """(low, high) of the curve's level at ``epoch``, at the result's ``level``."""
        st = self._state()
        mean, sd = st.at(epoch)
        a, b = st.space.from_h(mean - self._q() * sd), st.space.from_h(mean + self._q() * sd)
        return np.minimum(a, b) if np.ndim(a) else min(a, b), \
            np.maximum(a, b) if np.ndim(a) else max(a, b)

    def best(self, epoch: float) -> float:
        """The best value expected to have been seen by ``epoch`` (see the module docstring)."""
        st = self._state()
        return st.space.from_h(st.best_at(epoch, 0.0))

    def best_interval(self, epoch: float) -> tuple[float, float]:
        """(low, high) of ``best(epoch)`` at the result's ``level``."""
        st = self._state()
        a = st.space.from_h(st.best_at(epoch, -self._q(), luck=True))
        b = st.space.from_h(st.best_at(epoch, self._q()))
        return min(a, b), max(a, b)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe numbers (None for what does not apply); the fitted state is left out."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "state":
                continue
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            out[f.name] = dict(value) if isinstance(value, dict) else value
        return out




def forecast_curve(values: Any, *, epochs: Any = None, mode: Mode = "min",
                   level: float = 0.8) -> ForecastResult:
    """Forecast one curve from its epochs so far (see the module docstring)."""
    sign = mode_sign(mode)
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"level must be a number in (0, 1), not {level!r}")
    y = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(y)):
        raise ValueError("forecast_curve needs finite values; cut the curve at its first NaN/inf "
                         "(curves.finite_prefix)")
    n = y.size
    x = np.arange(n, dtype=np.int64) if epochs is None else checked_epochs(epochs, n)
    if n < MIN_EPOCHS:
        return ForecastResult(True, mode, float(level), n)

    fit = fit_curve(y, x, sign)
    space, state, best_i = fit.space, fit.state, fit.best_i
    last = int(x[-1])
    asym_h = float(state.at(np.array([float(fit.origin + HORIZON * fit.span)]))[0][0])
    plateau_at = int(x[best_i]) if fit.turned else _plateau_epoch(fit, x, asym_h)
    epoch_2x = fit.origin + 2 * fit.span - 1
    result = ForecastResult(
        False, mode, float(level), n, last, float(y[best_i]), int(x[best_i]), space.kind,
        space.from_h(asym_h), plateau_at, epoch_2x,
        weights={name: float(v) for name, v in zip(FAMILIES, state.weights, strict=True)},
        turned=fit.turned, state=state)
    low2, high2 = result.interval(float(epoch_2x))
    best2 = result.best(float(epoch_2x))
    b_lo, b_hi = result.best_interval(float(epoch_2x))
    best_now = float(y[best_i])
    # The best so far can only stay or improve; rounding in the fitted space must not make it
    # worse (a loss of 1e-156 read back through a floored log space, say).
    keep = min if mode == "min" else max
    best2, b_lo, b_hi = keep(best2, best_now), keep(b_lo, best_now), keep(b_hi, best_now)
    # + 0.0: no gain is 0, not -0.0 (a max-mode curve's sign would write "-0" to MLflow)
    gains = sorted(sign * (best_now - b) + 0.0 for b in (b_lo, b_hi))
    return replace(result, value_at_2x=result.predict(float(epoch_2x)), value_at_2x_low=low2,
                   value_at_2x_high=high2, best_at_2x=best2,
                   gain_if_doubled=sign * (best_now - best2) + 0.0, gain_low=gains[0],
                   gain_high=gains[1])


def _plateau_epoch(fit: CurveFit, x: np.ndarray, asym_h: float) -> int | None:
    """The first epoch from which the learning members stay within the tolerance of their
    asymptote ``asym_h`` (see the module docstring); None beyond ``HORIZON`` x the epochs seen.
    (A turned curve's is its best epoch: it stopped improving there.)"""
    learning, sigma, origin, span = fit.learning, fit.sigma, fit.origin, fit.span
    last = int(x[-1])
    fitted, _ = learning.at(x)
    # A constant curve has no improvement and no noise: differences in the last bits of
    # the members' sums are not a distance from the asymptote.
    tol = max(0.01 * float(fitted[0] - fitted.min()), 2.0 * sigma, _ROUNDING)
    # Every epoch of the next 4 spans (at most _PROBES of them: a run logged at global step
    # numbers spans millions), then a geometric sweep out to the horizon.
    near = np.linspace(last + 1, last + 1 + 4 * span, min(4 * span + 1, _PROBES)).round()
    probe = np.unique(np.concatenate([
        x.astype(np.float64), near,
        np.geomspace(last + 1, origin + HORIZON * span, 200).round()]))
    curve, _ = learning.at(probe)
    off = np.flatnonzero(curve - asym_h > tol)
    return int(probe[0]) if off.size == 0 else (
        int(probe[off[-1] + 1]) if off[-1] + 1 < probe.size else None)


def forecast_sentence(result: ForecastResult | None, monitor: str) -> str:
    """The forecast in words, as a clause to append to a summary ("" without a forecast).

    For example "; training 2x longer would bring val_loss to about 0.31 (0.28–0.35); it levels
    off near epoch 140": ``value_at_2x`` with its interval, then ``epochs_to_plateau``. A curve
    forecast to level off only past ``_FAR`` (10) x its epochs is said to keep improving slowly,
    with how many times its epochs that takes: "near epoch 3563" of a 40-epoch run reads as a
    promise, when it is a power law's slow tail. A turned curve (see the module docstring) is
    said to have stopped improving at its best epoch, and whether it is still getting worse.
    """
    if result is None or result.insufficient or result.value_at_2x is None:
        return ""
    text = (f"; training 2x longer would bring {monitor} to about {result.value_at_2x:.3g} "
            f"({result.value_at_2x_low:.3g}–{result.value_at_2x_high:.3g})")
    if result.turned:
        still = result.weights.get("rising", 0.0) >= 0.5
        return text + (f"; it stopped improving at epoch {result.epochs_to_plateau} and "
                       + ("is still getting worse" if still else "has held a worse level since"))
    if result.epochs_to_plateau is None:
        return text + f"; it does not level off within {HORIZON}x the epochs seen"
    if result.last_epoch is not None and result.epochs_to_plateau <= result.last_epoch:
        return text + f"; it levelled off near epoch {result.epochs_to_plateau}"
    seen, origin = result.n_epochs, 0  # epochs of training seen, and the first one's number
    if result.last_epoch is not None and result.epoch_2x is not None:
        seen = result.epoch_2x - result.last_epoch  # epoch_2x = origin + 2 seen - 1
        origin = result.last_epoch - seen + 1
    times = (result.epochs_to_plateau - origin + 1) / max(seen, 1)
    if times > _FAR:
        return text + (f"; it keeps improving slowly, levelling off only near epoch "
                       f"{result.epochs_to_plateau} ({times:.0f}x the epochs seen)")
    return text + f"; it levels off near epoch {result.epochs_to_plateau}"


__all__ = ["FAMILIES", "MIN_EPOCHS", "ForecastResult", "forecast_curve", "forecast_sentence"]

