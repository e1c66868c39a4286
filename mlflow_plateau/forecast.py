"""Would more epochs help? Extrapolate one learning curve from the epochs seen so far.

``forecast_curve(values, *, epochs=None, mode="min", level=0.8)`` fits an ensemble of parametric
learning-curve families (Domhan et al. 2015; LCDB, Mohr et al. 2022) to the curve and returns a
``ForecastResult``.

Fitting space: ``h = log(value)`` for a min-mode curve of positive values (losses),
``h = log(1 - value)`` for a max-mode curve inside (0, 1) (accuracy -> log error rate), else
``h = sign x value``; standardised by its median and largest deviation. ``h`` falls as the curve
improves; ``t = epoch - first epoch + 1``.

Members, each ``h(t) = c + a g(t; theta)`` with ``a >= 0`` (no member predicts a curve that gets
worse: a rising curve is fitted as flat):

- ``pow3``: ``g = t^-alpha``; ``pow4``: ``g = (t + b)^-alpha``; ``ilog2``: ``g = 1 / log(t + 1)``;
- ``exp3``: ``g = exp(-t / tau)``; ``wbl4`` (Weibull, also Janoschek's form):
  ``g = exp(-(t / tau)^delta)``; ``mmf4`` (Morgan-Mercer-Flodin): ``g = 1 / (1 + (t / tau)^delta)``;
- ``loglin``: ``g = -log t`` (a straight line in log-log space when ``h`` is a log);
- ``last``: the mean of the last ``max(3, n/10)`` values of ``h``, held flat ("last value",
  LCDB's hard baseline late in a curve).

Fitting is variable projection on a fixed grid of the nonlinear parameters (``alpha``, ``b``,
``tau``, ``delta``): at each grid point ``c`` and ``a`` are a closed-form least-squares fit, and
each family keeps its grid point of least squared error. The grid is one matrix product, so the
answer is deterministic and a 300-epoch curve costs a few milliseconds.

Weights come from a backtest inside the curve, not from the in-sample fit: each member is fitted
on the first 50% and on the first 70% of the epochs and predicts the rest; ``mse`` is the mean
squared error of those predictions against the values observed there (in ``h``). The weight is
``mse^-p`` normalised, with ``p = 0.5 x min(1, n / 80)``: the backtest's say grows with the epochs
it holds out (a 12-epoch curve holds out 6 noisy values, and equal weights beat its choice). The
members are then refitted on the whole curve and averaged with these weights: ``predict(epoch)``.

``interval(epoch)``: the weighted mean +- ``z_(1/2 + level/2)`` weighted sd of the members at
``epoch`` (in ``h``, so multiplicative for a loss): the interval of the curve's level, not of one
noisy value. ``sigma`` is the robust noise of ``h`` (``plateau._noise_from_differences``, from the
residual second differences).

What is reported (in the curve's own units and epochs):

- ``best(epoch)``: the best value expected by ``epoch``: the better of the best seen so far and
  the forecast level at ``epoch``; ``best_interval(epoch)`` the same at both ends of the interval,
  the better end also lowered by the luck of the extra noisy epochs (the best of ``k`` noisy
  values lies up to ``sigma sqrt(2 ln(1 + k))`` beyond their level; at most ``1 sigma``);
- ``asymptote``: the forecast level at ``HORIZON`` (100) x the epochs seen;
- ``epochs_to_plateau``: the first epoch from which the forecast stays within the tolerance of the
  asymptote (``max(0.01 x the fitted improvement, 2 sigma)``, the plateau tolerance of
  ``diagnose_curves``), searched up to 100 x the epochs seen; None beyond;
- ``epoch_2x = 2 (last + 1) - 1``, the last epoch of twice as many epochs: ``value_at_2x``
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
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.stats import norm

from .curves import Mode
from .plateau import _check_mode, _checked_epochs, _noise_from_differences

MIN_EPOCHS = 5
HORIZON = 100            # epochs_to_plateau is searched up to HORIZON x the epochs seen
_SPLITS = (0.5, 0.7)     # backtest: fit the first fraction, predict the rest
_WEIGHT_POWER = 0.5      # member weight = 1 / backtest MSE ** (power), power up to this
_FULL_SAY = 80           # ... reached at this many epochs (power = 0.5 min(1, n / 80))
_LUCK_MAX = 1.0
FAMILIES = ("pow3", "pow4", "ilog2", "exp3", "wbl4", "mmf4", "loglin", "last")


@lru_cache(maxsize=64)
def _params(span: int) -> np.ndarray:
    """The grid of every family: rows of (family index, p1, p2), fixed for a curve's span."""
    alphas = np.geomspace(0.02, 4.0, 24)
    shifts = np.array([1.0, 3.0, 10.0, 30.0])
    taus = np.geomspace(0.5, 2.0 * span, 14)
    deltas = np.array([0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0])
    rows = [np.column_stack([np.full(alphas.size, 0.0), alphas, np.zeros(alphas.size)])]
    s, a = np.meshgrid(shifts, alphas, indexing="ij")
    rows.append(np.column_stack([np.full(s.size, 1.0), a.ravel(), s.ravel()]))
    rows.append(np.array([[2.0, 0.0, 0.0]]))
    rows.append(np.column_stack([np.full(taus.size, 3.0), taus, np.ones(taus.size)]))
    d, ta = np.meshgrid(deltas, taus, indexing="ij")
    for k in (4.0, 5.0):
        rows.append(np.column_stack([np.full(d.size, k), ta.ravel(), d.ravel()]))
    rows.append(np.array([[6.0, 0.0, 0.0]]))
    out = np.vstack(rows)
    out.setflags(write=False)
    return out


def _basis(params: np.ndarray, t: np.ndarray) -> np.ndarray:
    """g(t; theta) for each row of ``params`` (see ``_params``): (rows, len(t))."""
    fam, p1, p2 = (params[:, i:i + 1] for i in range(3))
    tt = t[None, :]
    out = np.empty((params.shape[0], t.size))
    for k in range(len(FAMILIES) - 1):
        sel = fam[:, 0] == k
        if not sel.any():
            continue
        q1, q2 = p1[sel], p2[sel]
        if k == 0:
            out[sel] = tt ** -q1
        elif k == 1:
            out[sel] = (tt + q2) ** -q1
        elif k == 2:
            out[sel] = 1.0 / np.log(tt + 1.0) + 0.0 * q1
        elif k == 3:
            out[sel] = np.exp(-tt / q1)
        elif k == 4:
            out[sel] = np.exp(-((tt / q1) ** q2))
        elif k == 5:
            out[sel] = 1.0 / (1.0 + (tt / q1) ** q2)
        else:
            out[sel] = -np.log(tt) + 0.0 * q1
    return out


def _grid(t: np.ndarray, span: int) -> tuple[np.ndarray, np.ndarray]:
    """Basis rows g(t; theta) for every family and grid point, and each row's family index."""
    params = _params(span)
    return _basis(params, t), params[:, 0].astype(np.int64)


def _fit_members(g_fit: np.ndarray, fam: np.ndarray, z: np.ndarray, n_families: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each family, the grid row of least squared error and its (c, a), with a >= 0."""
    gm = g_fit.mean(axis=1)
    zm = float(z.mean())
    gc = g_fit - gm[:, None]
    sgg = np.einsum("ij,ij->i", gc, gc)
    sgz = gc @ (z - zm)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(sgg > 0, sgz / sgg, 0.0)
    a = np.maximum(a, 0.0)
    c = zm - a * gm
    szz = float(np.sum((z - zm) ** 2))
    sse = szz - 2 * a * sgz + a * a * sgg
    rows = np.empty(n_families, dtype=np.int64)
    for k in range(n_families):
        idx = np.flatnonzero(fam == k)
        rows[k] = idx[int(np.argmin(sse[idx]))]
    return rows, c[rows], a[rows]


@dataclass(frozen=True)
class _Ensemble:
    """Members fitted on a prefix of the curve: evaluated anywhere on the grid's t."""

    rows: np.ndarray
    c: np.ndarray
    a: np.ndarray
    last: float

    def members(self, g_rows: np.ndarray) -> np.ndarray:
        """(members, points): each parametric member, then ``last``, at the grid's columns."""
        return self.at(g_rows[self.rows])

    def at(self, g_own: np.ndarray) -> np.ndarray:
        """(members, points) from the basis rows of the members themselves."""
        par = self.c[:, None] + self.a[:, None] * g_own
        return np.vstack([par, np.full((1, g_own.shape[1]), self.last)])


def _fit(g: np.ndarray, fam: np.ndarray, z: np.ndarray, m: int) -> _Ensemble:
    rows, c, a = _fit_members(g[:, :m], fam, z[:m], len(FAMILIES) - 1)
    k = max(3, m // 10)
    return _Ensemble(rows, c, a, float(z[m - k:m].mean()))


@dataclass(frozen=True)
class _Space:
    """The space the members are fitted in: ``h`` falls as the curve improves.

    ``log``: ``h = log(value)`` for a min-mode curve of positive values (losses); ``log_error``:
    ``h = log(1 - value)`` for a max-mode curve inside (0, 1) (accuracy -> log error rate);
    ``linear``: ``h = sign * value``. Then ``h`` is standardised (``(h - offset) / scale``).
    """

    kind: str
    sign: int
    offset: float
    scale: float

    @staticmethod
    def choose(y: np.ndarray, sign: int) -> _Space:
        if sign == 1 and np.all(y > 0):
            kind, h = "log", np.log(y)
        elif sign == -1 and np.all((y > 0) & (y < 1)):
            kind, h = "log_error", np.log1p(-y)
        else:
            kind, h = "linear", sign * y
        offset = float(np.median(h))
        scale = float(np.max(np.abs(h - offset))) or 1.0
        return _Space(kind, sign, offset, scale)

    def to_h(self, y: np.ndarray) -> np.ndarray:
        if self.kind == "log":
            h = np.log(y)
        elif self.kind == "log_error":
            h = np.log1p(-y)
        else:
            h = self.sign * y
        return (h - self.offset) / self.scale

    def from_h(self, h: Any) -> Any:
        raw = np.asarray(h, dtype=np.float64) * self.scale + self.offset
        with np.errstate(over="ignore"):
            if self.kind == "log":
                out = np.exp(raw)
            elif self.kind == "log_error":
                out = -np.expm1(raw)
            else:
                out = self.sign * raw
        return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class _State:
    """What ``predict``/``interval`` evaluate: the fitted members and their weights."""

    space: _Space
    first_epoch: int
    last_epoch: int
    span: int
    members: _Ensemble
    weights: np.ndarray
    noise: float      # robust noise sd of h
    best_h: float

    def at(self, epoch: Any) -> tuple[np.ndarray, np.ndarray]:
        """Forecast ``h`` and its sd at ``epoch`` (same shape)."""
        e = np.asarray(epoch, dtype=np.float64)
        if not np.all(np.isfinite(e)):
            raise ValueError("epoch must be finite")
        flat = e.reshape(-1)
        t = np.maximum(flat - self.first_epoch + 1.0, 1.0)
        members = self.members.at(_basis(_params(self.span)[self.members.rows], t))
        mean = self.weights @ members
        spread = self.weights @ (members - mean) ** 2
        sd = np.sqrt(spread)
        return mean.reshape(e.shape), sd.reshape(e.shape)

    def best_at(self, epoch: float, shift: float, luck: bool = False) -> float:
        """The best ``h`` expected by ``epoch``, ``shift`` sds above the forecast level.

        ``luck``: less the expected luck of the extra noisy epochs (the lowest of ``k`` draws
        lies about ``sigma sqrt(2 ln(1 + k))`` below their level; at most ``_LUCK_MAX sigma``).
        """
        mean, sd = self.at(np.array([float(epoch)]))
        extra = max(0.0, float(epoch) - float(self.last_epoch))
        drop = min(_LUCK_MAX, math.sqrt(2.0 * math.log1p(extra))) * self.noise if luck else 0.0
        return min(self.best_h, float(mean[0] + shift * sd[0]) - drop)


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
    state: _State | None = field(default=None, repr=False, compare=False)

    def _state(self) -> _State:
        if self.insufficient or self.state is None:
            raise ValueError(f"no forecast: only {self.n_epochs} usable epoch(s), at least "
                             f"{MIN_EPOCHS} are needed")
        return self.state

    def _q(self) -> float:
        return float(norm.ppf(0.5 + self.level / 2))

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
    sign = _check_mode(mode)
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"level must be a number in (0, 1), not {level!r}")
    y = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(y)):
        raise ValueError("forecast_curve needs finite values; cut the curve at its first NaN/inf "
                         "(curves.finite_prefix)")
    n = y.size
    x = np.arange(n, dtype=np.int64) if epochs is None else _checked_epochs(epochs, n)
    if n < MIN_EPOCHS:
        return ForecastResult(True, mode, float(level), n)

    space = _Space.choose(y, sign)
    z = space.to_h(y)
    t = (x - x[0] + 1).astype(np.float64)
    span = int(t[-1])
    g, fam = _grid(t, span)

    # Backtest: fit a prefix, score each member on the rest.
    mse = np.zeros(len(FAMILIES))
    used = 0
    for frac in _SPLITS:
        m = round(frac * n)
        if m < 4 or n - m < 1:
            continue
        pred = _fit(g, fam, z, m).members(g[:, m:])
        mse += np.mean((pred - z[m:]) ** 2, axis=1)
        used += 1
    mse /= max(used, 1)
    sigma = _noise_from_differences(z)
    # The backtest's say grows with the epochs it holds out; on a short curve it is mostly noise.
    power = _WEIGHT_POWER * min(1.0, n / _FULL_SAY)
    w = 1.0 / np.maximum(mse, max(sigma * sigma * 1e-2, 1e-12)) ** power
    w /= w.sum()

    full = _fit(g, fam, z, n)
    best_i = int(np.argmin(z))
    first, last = int(x[0]), int(x[-1])
    state = _State(space, first, last, span, full, w, sigma, float(z[best_i]))
    asym_h = float(state.at(np.array([float(first + HORIZON * span)]))[0][0])

    # epochs_to_plateau: the first epoch from which the forecast stays within tol of the asymptote.
    fitted, _ = state.at(x)
    tol = max(0.01 * float(fitted[0] - fitted.min()), 2.0 * sigma)
    probe = np.unique(np.concatenate([
        x.astype(np.float64), np.arange(last + 1, last + 2 + 4 * span, dtype=np.float64),
        np.geomspace(last + 1, first + HORIZON * span, 200).round()]))
    curve, _ = state.at(probe)
    off = np.flatnonzero(curve - asym_h > tol)
    plateau_at = int(probe[0]) if off.size == 0 else (
        int(probe[off[-1] + 1]) if off[-1] + 1 < probe.size else None)

    epoch_2x = 2 * (last + 1) - 1
    result = ForecastResult(
        False, mode, float(level), n, last, float(y[best_i]), int(x[best_i]), space.kind,
        space.from_h(asym_h), plateau_at, epoch_2x,
        weights={name: float(v) for name, v in zip(FAMILIES, w, strict=True)}, state=state)
    low2, high2 = result.interval(float(epoch_2x))
    best2 = result.best(float(epoch_2x))
    b_lo, b_hi = result.best_interval(float(epoch_2x))
    best_now = float(y[best_i])
    gains = sorted(sign * (best_now - b) for b in (b_lo, b_hi))
    return replace(result, value_at_2x=result.predict(float(epoch_2x)), value_at_2x_low=low2,
                   value_at_2x_high=high2, best_at_2x=best2,
                   gain_if_doubled=sign * (best_now - best2), gain_low=gains[0], gain_high=gains[1])


def forecast_sentence(result: ForecastResult | None, monitor: str) -> str:
    """The forecast in words, as a clause to append to a summary ("" without a forecast).

    For example "; training 2x longer would bring val_loss to about 0.31 (0.28–0.35); it levels
    off near epoch 140": ``value_at_2x`` with its interval, then ``epochs_to_plateau``.
    """
    if result is None or result.insufficient or result.value_at_2x is None:
        return ""
    text = (f"; training 2x longer would bring {monitor} to about {result.value_at_2x:.3g} "
            f"({result.value_at_2x_low:.3g}–{result.value_at_2x_high:.3g})")
    if result.epochs_to_plateau is None:
        return text + f"; it does not level off within {HORIZON}x the epochs seen"
    if result.last_epoch is not None and result.epochs_to_plateau <= result.last_epoch:
        return text + f"; it levelled off near epoch {result.epochs_to_plateau}"
    return text + f"; it levels off near epoch {result.epochs_to_plateau}"


__all__ = ["FAMILIES", "MIN_EPOCHS", "ForecastResult", "forecast_curve", "forecast_sentence"]
