"""How ``forecast.forecast_curve`` fits a curve: an ensemble of learning-curve families.

``fit_curve(y, x, sign)`` fits the members to finite values ``y`` at epochs ``x`` (``sign`` 1 for
a curve that improves downwards, -1 upwards) and returns a ``CurveFit``: its ``state`` (a
``ForecastState``) evaluates the forecast level and its spread at any epoch. What is reported
from it, and in which units, is ``forecast.py``'s.

Spaces. The members are fitted to ``z``, which falls as the curve improves: a min-mode curve of
positive values (a loss) is ``z = value / max``, bounded below by 0; a max-mode curve inside
[0, 1] (an accuracy) is its error rate ``z = (1 - value) / max``, bounded by 0; any other curve
is ``z = (sign x value - median) / max deviation``, unbounded. The members are averaged, and
their spread and the backtest measured, in ``h = log z`` for the bounded kinds (a multiplicative
error, as the benchmark scores it), ``h = z`` otherwise.

Time ``t`` is the epochs of training at an epoch: ``t = epoch - origin + 1``. The origin is the
first logged epoch when that is 0 or 1 (a log that starts with training, numbered from 0 as Keras
and MLflow's autolog do, or from 1), and 0 when the first logged epoch is later: a curve validated
every k epochs (Keras's ``validation_freq``: epochs 4, 9, 14, ...) or a resumed run (epochs
1000-1039) is placed at its distance from the start of training, not stretched as if its first
point were the first epoch (a power law in ``t`` is not one in ``t - 999``).

Members, each ``z(t) = c + a g(t; theta)`` with ``a >= 0`` (no member predicts a curve that gets
worse: a rising curve is fitted as flat) and ``c >= 0`` for the bounded kinds (no loss below 0):

- ``pow3``: ``g = t^-alpha`` (with ``c = 0``: a straight line in log-log space);
  ``pow4``: ``g = (t + b)^-alpha``; ``ilog2``: ``g = 1 / log(t + 1)``;
- ``exp3``: ``g = exp(-t / tau)``; ``wbl4`` (Weibull, also Janoschek's form):
  ``g = exp(-(t / tau)^delta)``; ``mmf4`` (Morgan-Mercer-Flodin): ``g = 1 / (1 + (t / tau)^delta)``;
- ``last``: the mean of the last ``max(3, n/10)`` values, held flat ("last value", LCDB's hard
  baseline late in a curve);
- ``rising``: for a curve that has turned (below), the trend of the recent half of its epochs
  since the best continued: ``h = intercept + slope log t`` by least squares (a power law in
  ``z`` rising ever more slowly), never beyond what the curve can take (an accuracy of 0). On any
  other curve it has weight 0.

A curve has turned when it has got worse since its best, for a while and by a trend or a step:
the epochs after the best are at least ``MIN_EPOCHS`` and a quarter of the epochs seen (a rise
over a few epochs of a long curve is one of its wiggles, not a regime), the recent level (the
``last`` member) lies more than ``2 sigma`` above the best, and so does either the least-squares
line through the epochs after the best (``slope x (log t_last - log t_first) > 2 sigma``: a
trend) or their median above the median of the ``_TURN_BEFORE`` (5) epochs before the best (a
step held since; at least 3 of them): the best of a flat noisy curve is a low draw of its noise,
above which its recent level always sits, but neither its trend nor its level after the best
differs. The
learning-curve families describe a curve improving towards a floor; fitted to a curve that
overfits they level off at the mean of its worse part, below where the curve now is, and
forecast an improvement it is not making. A turned curve is therefore forecast by ``rising``,
with the weight ``w`` of its sloped line against a flat one (``_Rise.weight``: the Schwarz
approximation of their likelihood ratio, ``1 / (1 + exp(-(t^2 - ln k) / 2))``, ``t`` the slope
over its standard error, ``k`` its epochs; 0 when the recent half no longer rises), and by
``last`` (the recent level held) with ``1 - w``; the learning-curve members get none. Its
``epochs_to_plateau`` is its best epoch.

Fitting is variable projection on a fixed grid of the nonlinear parameters (``alpha``, ``b``,
``tau``, ``delta``): at each grid point ``c`` and ``a`` are a closed-form least-squares fit
weighted by ``1 / z^2`` for the bounded kinds (relative errors: an early spike does not dominate),
with the bounds held where the free fit breaks them; each family keeps its grid point of least
weighted squared error. The grid is one matrix product, so the answer is deterministic and a
300-epoch curve costs a few milliseconds.

Weights come from a backtest inside the curve, not from the in-sample fit: each member is fitted
on the first 40, 50, 60, 70 and 80% of the epochs and predicts the rest; ``mse`` is the mean
squared error (in ``h``) of those predictions against the values observed there. The weight is
``(mse + sigma^2)^-p`` normalised, with ``p = min(1, n / 60)``: differences within the noise do not
count, and the backtest's say grows with the epochs it holds out (on a 12-epoch curve it predicts
a handful of noisy values, and its choice is mostly noise). The members are then refitted on the
whole curve and averaged in ``h`` with these weights: ``predict(epoch)``.

``interval(epoch)``: the weighted mean +- ``z_(1/2 + level/2)`` weighted sd of the members at
``epoch`` in ``h`` (multiplicative for a loss): the interval of the curve's level, not of one noisy
value. ``rising`` adds the variance of its fitted line there (``s^2 (1/k + (log t - mean)^2 /
Sxx)``), weighted like its spread, and on a turned curve ``last`` adds the variance of its
recent mean. No level goes beyond what the metric can take (``_Space``: an accuracy below 0 or
above 1, a loss below 0 or beyond floats), however far a member or an interval reaches.
``sigma`` is the robust noise of ``h`` (``numerics.difference_noise``: the residual second
differences).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from .numerics import difference_noise

MIN_EPOCHS = 5           # fewer values get no forecast (and a turn spans at least this many)
_SPLITS = (0.4, 0.5, 0.6, 0.7, 0.8)  # backtest: fit the first fraction, predict the rest
_FULL_SAY = 60           # epochs at which the backtest has its full say (see _weights)
_LUCK_MAX = 1.0
_TURN_SPAN = 0.25        # a turn spans at least this share of the epochs seen (and MIN_EPOCHS)
_TURN_BEFORE = 5         # a step is measured against the median of this many epochs before the best
FAMILIES = ("pow3", "pow4", "ilog2", "exp3", "wbl4", "mmf4", "last", "rising")
_PARAMETRIC = len(FAMILIES) - 2
_TINY = 1e-12


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
    out = np.vstack(rows)
    out.setflags(write=False)
    return out


def _basis(params: np.ndarray, t: np.ndarray) -> np.ndarray:
    """g(t; theta) for each row of ``params`` (see ``_params``): (rows, len(t)).

    Powers are taken through logarithms (``t^-alpha = exp(-alpha log t)``), and the Weibull and
    MMF rows share ``(t / tau)^delta``: the grid is most of the cost of a forecast.
    """
    fam = params[:, 0]
    out = np.empty((params.shape[0], t.size))
    log_t = np.log(t)
    starts = np.flatnonzero(np.r_[True, fam[1:] != fam[:-1]])
    ends = np.r_[starts[1:], fam.size]
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        k = int(fam[lo])
        p1, p2 = params[lo:hi, 1:2], params[lo:hi, 2:3]
        if k == 0:
            out[lo:hi] = np.exp(-p1 * log_t)
        elif k == 1:
            out[lo:hi] = np.exp(-p1 * np.log(t + p2))
        elif k == 2:
            out[lo:hi] = 1.0 / np.log(t + 1.0)
        elif k == 3:
            out[lo:hi] = np.exp(-t / p1)
        else:
            with np.errstate(over="ignore"):
                scaled = np.exp(p2 * (log_t - np.log(p1)))
            out[lo:hi] = np.exp(-scaled) if k == 4 else 1.0 / (1.0 + scaled)
    return out


def _grid(t: np.ndarray, span: int) -> tuple[np.ndarray, np.ndarray]:
    """Basis rows g(t; theta) for every family and grid point, and each row's family index."""
    params = _params(span)
    return _basis(params, t), params[:, 0].astype(np.int64)


@dataclass(frozen=True)
class _Sums:
    """Weighted sums over the prefixes that are fitted (the first ``ends[j]`` epochs), so that
    each fit costs O(grid rows): sums over the segments between the ends, then running sums
    (no BLAS call: a multi-threaded BLAS on small matrices is slow on a busy machine)."""

    ends: tuple[int, ...]
    sw: np.ndarray   # (prefixes,) sum of w
    sz: np.ndarray   # w z
    szz: np.ndarray  # w z^2
    sg: np.ndarray   # (rows, prefixes) w g
    sgg: np.ndarray  # w g^2
    sgz: np.ndarray  # w g z

    @staticmethod
    def of(g: np.ndarray, z: np.ndarray, wts: np.ndarray, ends: tuple[int, ...]) -> _Sums:
        starts = np.array((0, *ends[:-1]))

        def run(a: np.ndarray) -> np.ndarray:
            return np.cumsum(np.add.reduceat(a, starts, axis=-1), axis=-1)

        gw = g * wts
        wz = wts * z
        return _Sums(ends, run(wts), run(wz), run(wz * z), run(gw), run(gw * g), run(gw * z))


def _fit_members(sums: _Sums, m: int, fam: np.ndarray, floor: float, n_families: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each family, the grid row of least weighted squared error over the first ``m``
    epochs and its (c, a).

    ``z ~ c + a g`` by least squares weighted by ``wts``, with ``a >= 0`` and ``c >= floor``
    (a loss is never forecast below zero): where the free fit breaks a bound, the bound is held
    and the other coefficient refitted.
    """
    i = sums.ends.index(m)
    sw, sz, szz = float(sums.sw[i]), float(sums.sz[i]), float(sums.szz[i])
    sg, sgg, sgz = sums.sg[:, i], sums.sgg[:, i], sums.sgz[:, i]
    with np.errstate(divide="ignore", invalid="ignore"):
        vgg = sgg - sg * sg / sw
        a = np.where(vgg > 1e-300, (sgz - sg * sz / sw) / vgg, 0.0)
    a = np.maximum(a, 0.0)
    c = (sz - a * sg) / sw
    low = c < floor
    if low.any():
        c = np.where(low, floor, c)
        with np.errstate(divide="ignore", invalid="ignore"):
            a_fixed = np.where(sgg > 1e-300, (sgz - floor * sg) / sgg, 0.0)
        a = np.where(low, np.maximum(a_fixed, 0.0), a)
    # sum w (z - c - a g)^2, expanded
    sse = szz - 2 * c * sz + c * c * sw - 2 * a * (sgz - c * sg) + a * a * sgg
    rows = np.empty(n_families, dtype=np.int64)
    for k in range(n_families):
        idx = np.flatnonzero(fam == k)
        rows[k] = idx[int(np.argmin(sse[idx]))]
    return rows, c[rows], a[rows]


@dataclass(frozen=True)
class _Rise:
    """The trend of a turned curve since its best epoch: ``h = intercept + slope log t``, with
    what the variance of the fitted line needs (residual variance, points, mean log t, Sxx)."""

    intercept: float
    slope: float
    resid_var: float
    k: int
    mean_log_t: float
    sxx: float
    bounded: bool
    h_max: float   # the highest level z can take: an accuracy of 0, the largest float of a loss
    rising: bool   # the recent half of the epochs since the best still rises
    last_var: float = 0.0  # variance of the recent level (the ``last`` member's mean)

    @staticmethod
    def _line(lt: np.ndarray, hh: np.ndarray) -> tuple[float, float, float, float, float]:
        """Least squares ``hh ~ intercept + slope lt``: (intercept, slope, residual variance,
        mean lt, Sxx)."""
        mean_lt = float(lt.mean())
        dev = lt - mean_lt
        sxx = float(dev @ dev)
        slope = float(dev @ (hh - hh.mean())) / sxx if sxx > 0 else 0.0
        resid = hh - hh.mean() - slope * dev
        return (float(hh.mean()) - slope * mean_lt, slope,
                float(resid @ resid) / max(hh.size - 2, 1), mean_lt, sxx)

    @staticmethod
    def of(h: np.ndarray, t: np.ndarray, best_i: int, last_h: float, sigma: float,
           bounded: bool, h_max: float) -> _Rise | None:
        """The rise of a curve that has turned (see the module docstring), else None."""
        after = slice(best_i + 1, h.size)  # the best is a low draw of the noise: left out
        k = h.size - best_i - 1
        if k < max(MIN_EPOCHS, _TURN_SPAN * h.size) or last_h - h[best_i] <= 2.0 * sigma:
            return None
        lt, hh = np.log(t[after]), h[after]
        slope = _Rise._line(lt, hh)[1]
        # Worse by a trend, or by a step held since: the level after the best (its median) above
        # the level the curve had reached before it (the median of the _TURN_BEFORE epochs before
        # the best, which is left out: one lucky low epoch is not a step; at least 3 of them).
        # A lucky best alone does neither.
        before = h[max(0, best_i - _TURN_BEFORE):best_i]
        step = float(np.median(hh) - np.median(before)) if before.size >= 3 else -math.inf
        if slope * (lt[-1] - lt[0]) <= 2.0 * sigma and step <= 2.0 * sigma:
            return None
        # Still rising now, or a rise that has held level since? The recent half tells.
        half = k // 2
        intercept, slope, resid_var, mean_lt, sxx = _Rise._line(lt[half:], hh[half:])
        return _Rise(intercept, slope, resid_var, k - half, mean_lt, sxx, bounded, h_max,
                     slope > 0 and sxx > 0)

    @property
    def weight(self) -> float:
        """How much the rise is believed over the curve holding level since its best: the
        posterior of the sloped line against the flat one, equal priors, by the Schwarz (BIC)
        approximation of their likelihood ratio for one extra parameter: ``exp((t^2 - ln k) /
        2)``, ``t`` the slope over its standard error; 0 when the recent half of those epochs
        no longer rises (the curve got worse, then held level)."""
        if not self.rising:
            return 0.0
        t2 = self.slope * self.slope * self.sxx / max(self.resid_var, 1e-300)
        return float(1.0 / (1.0 + math.exp(-min(700.0, (t2 - math.log(self.k)) / 2.0))))

    def h(self, t: np.ndarray) -> np.ndarray:
        return np.minimum(self.intercept + self.slope * np.log(t), self.h_max)

    def z(self, t: np.ndarray) -> np.ndarray:
        return np.exp(self.h(t)) if self.bounded else self.h(t)

    def var(self, t: np.ndarray) -> np.ndarray:
        """Variance of the fitted line (the level, not one noisy value) at ``t``."""
        return self.resid_var * (1.0 / self.k + (np.log(t) - self.mean_log_t) ** 2 / self.sxx)


@dataclass(frozen=True)
class _Ensemble:
    """Members fitted on a prefix of the curve, in ``z``: evaluated anywhere on the grid's t."""

    rows: np.ndarray
    c: np.ndarray
    a: np.ndarray
    last: float
    rise: _Rise | None = None

    def members(self, g_rows: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(members, points): each parametric member, then ``last`` and ``rising``, at the grid's
        columns ``t``."""
        return self.at(g_rows[self.rows], t)

    def at(self, g_own: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(members, points) from the basis rows of the members themselves, at ``t``."""
        par = self.c[:, None] + self.a[:, None] * g_own
        last = np.full((1, t.size), self.last)
        rising = last if self.rise is None else self.rise.z(t)[None, :]
        return np.vstack([par, last, rising])


def _origin(first_epoch: int) -> int:
    """The epoch before which training started (see the module docstring): the first logged
    epoch when it is 0 or 1 (or below), else 0."""
    return first_epoch if first_epoch <= 1 else 0


def _recent(m: int) -> int:
    """How many of the first ``m`` epochs the ``last`` member averages: the last ``max(3, m/10)``."""
    return max(3, m // 10)


def _weights(bt_mse: np.ndarray, sigma: float, n: int) -> np.ndarray:
    """Member weights from the backtest: ``(mse + sigma^2)^-p``, ``p = min(1, n / _FULL_SAY)``;
    ``rising`` (the last member) gets none here: on a turned curve it gets its own weight
    (``_Rise.weight``) and these share the rest."""
    w = 1.0 / (bt_mse + sigma * sigma + 1e-12) ** min(1.0, n / _FULL_SAY)
    w[-1] = 0.0
    return w / w.sum()


@dataclass(frozen=True)
class _Space:
    """Where the members live (``z``, falling as the curve improves) and are averaged (``h``).

    ``positive``: a min-mode curve of positive values (a loss): ``z = value / scale``, bounded
    below by 0, ``h = log z``; ``error_rate``: a max-mode curve inside [0, 1] (an accuracy):
    ``z = (1 - value) / scale``, bounded by 0, ``h = log z``; ``linear``: anything else,
    ``z = h = (sign x value - median) / scale``, held within ``[lo, hi]``: a loss that reached 0
    (no loss below 0) or an accuracy that reached 1 (none above 1, none below 0), which the
    log spaces cannot take; unbounded otherwise.
    """

    kind: str
    sign: int
    offset: float
    scale: float
    lo: float = -math.inf   # linear: the lowest z a level may take (the best the metric allows)
    hi: float = math.inf    # linear: the highest (the worst it allows)

    @staticmethod
    def choose(y: np.ndarray, sign: int) -> _Space:
        if sign == 1 and np.all(y > 0):
            return _Space("positive", sign, 0.0, float(np.max(y)))
        if sign == -1 and np.all((y >= 0) & (y < 1)):
            return _Space("error_rate", sign, 0.0, float(np.max(1.0 - y)))
        offset = float(np.median(sign * y))
        scale = float(np.max(np.abs(sign * y - offset))) or 1.0
        if sign == 1 and np.all(y >= 0):  # a loss that reached 0
            return _Space("linear", sign, offset, scale, lo=-offset / scale)
        if sign == -1 and np.all((y >= 0) & (y <= 1)):  # an accuracy that reached 1
            return _Space("linear", sign, offset, scale, lo=(-1.0 - offset) / scale,
                          hi=-offset / scale)
        return _Space("linear", sign, offset, scale)

    @property
    def bounded(self) -> bool:
        return self.kind != "linear"

    @property
    def floor(self) -> float:
        return 0.0 if self.bounded else self.lo

    @property
    def h_max(self) -> float:
        """The highest ``h`` a level may rise to: an accuracy of 0, a loss within floats."""
        if self.kind == "error_rate":
            return -math.log(self.scale)
        if self.kind == "positive":
            return min(700.0, 700.0 - math.log(self.scale))
        return self.hi

    def to_z(self, y: np.ndarray) -> np.ndarray:
        if self.kind == "positive":
            return y / self.scale
        if self.kind == "error_rate":
            return (1.0 - y) / self.scale
        return (self.sign * y - self.offset) / self.scale

    def h_of_z(self, z: np.ndarray) -> np.ndarray:
        return np.log(np.maximum(z, _TINY)) if self.bounded else z

    def from_h(self, h: Any) -> Any:
        # No level beyond what the curve can take (an accuracy below 0, a loss beyond floats),
        # however far a rising member or the upper end of an interval reaches.
        hh = np.minimum(np.asarray(h, dtype=np.float64), self.h_max)
        if not self.bounded:
            hh = np.maximum(hh, self.lo)  # nor better than it allows (a loss below 0)
        with np.errstate(over="ignore"):
            z = np.exp(hh) if self.bounded else hh
        if self.kind == "positive":
            out = z * self.scale
        elif self.kind == "error_rate":
            out = 1.0 - z * self.scale
        else:
            out = self.sign * (z * self.scale + self.offset) + 0.0  # an accuracy of 0, not -0
        return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class ForecastState:
    """What ``predict``/``interval`` evaluate: the fitted members and their weights."""

    space: _Space
    origin: int       # the epoch before which training started: t = epoch - origin + 1
    last_epoch: int
    span: int
    members: _Ensemble
    weights: np.ndarray
    noise: float      # robust noise sd of h
    best_h: float
    backtest_mse: np.ndarray  # per member, in h

    def at(self, epoch: Any) -> tuple[np.ndarray, np.ndarray]:
        """Forecast ``h`` and its sd at ``epoch`` (same shape)."""
        e = np.asarray(epoch, dtype=np.float64)
        if not np.all(np.isfinite(e)):
            raise ValueError("epoch must be finite")
        flat = e.reshape(-1)
        t = np.maximum(flat - self.origin + 1.0, 1.0)
        members = self.space.h_of_z(
            self.members.at(_basis(_params(self.span)[self.members.rows], t), t))
        mean = self.weights @ members
        spread = self.weights @ (members - mean) ** 2
        if self.members.rise is not None:
            rise = self.members.rise
            spread = spread + self.weights[-1] * rise.var(t) + self.weights[-2] * rise.last_var
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
class CurveFit:
    """A curve fitted by ``fit_curve``: the members' ``state`` (the learning-curve members, or on
    a turned curve ``rising`` and ``last``), the learning-curve members' own (``learning``), and
    what the forecast reads off them."""

    space: _Space
    origin: int          # the epoch before which training started (see the module docstring)
    span: int            # t of the last epoch: the epochs of training seen
    sigma: float         # robust noise of h
    best_i: int          # index of the best value seen
    learning: ForecastState
    state: ForecastState
    turned: bool


def fit_curve(y: np.ndarray, x: np.ndarray, sign: int) -> CurveFit:
    """Fit the ensemble to ``y`` (finite, at least ``MIN_EPOCHS`` values) at the increasing
    integer epochs ``x``: backtest weights, the full fit, and the turn (see the module
    docstring)."""
    n = y.size
    space = _Space.choose(y, sign)
    z = space.to_z(y)
    h = space.h_of_z(z)
    # Relative least squares for a bounded curve (a loss): each epoch counts by its own scale.
    wts = 1.0 / np.maximum(z, _TINY) ** 2 if space.bounded else np.ones(n)
    wts = wts / wts.max()
    origin = _origin(int(x[0]))
    t = (x - origin + 1).astype(np.float64)
    span = int(t[-1])
    g, fam = _grid(t, span)

    ends = tuple(sorted({round(frac * n) for frac in _SPLITS if 4 <= round(frac * n) < n} | {n}))
    sums = _Sums.of(g, z, wts, ends)

    def fit(m: int) -> _Ensemble:
        rows, c, a = _fit_members(sums, m, fam, space.floor, _PARAMETRIC)
        return _Ensemble(rows, c, a, float(z[m - _recent(m):m].mean()))

    # Backtest: fit a prefix, score each member (in h) on the rest.
    mse = np.zeros(len(FAMILIES))
    used = 0
    for m in ends[:-1]:
        pred = space.h_of_z(fit(m).members(g[:, m:], t[m:]))
        mse += np.mean((pred - h[m:]) ** 2, axis=1)
        used += 1
    mse /= max(used, 1)
    sigma = difference_noise(h)
    best_i = int(np.argmin(h))
    full = fit(n)
    rise = _Rise.of(h, t, best_i, float(space.h_of_z(np.array(full.last))), sigma,
                    space.bounded, space.h_max)
    learning = ForecastState(space, origin, int(x[-1]), span, full, _weights(mse, sigma, n), sigma,
                             float(h[best_i]), mse)
    state = learning
    if rise is not None:
        recent = h[n - _recent(n):]
        rise = replace(rise, last_var=float(np.var(recent, ddof=1)) / recent.size)
        # Worse than its best: the learning-curve members would level it off at the mean of its
        # worse part, below where it is. It keeps rising, or holds its recent level (last).
        w = np.zeros(len(FAMILIES))
        w[-1] = rise.weight
        w[-2] = 1.0 - rise.weight
        state = replace(learning, members=replace(full, rise=rise), weights=w)
    return CurveFit(space, origin, span, sigma, best_i, learning, state, rise is not None)


__all__ = ["FAMILIES", "MIN_EPOCHS", "CurveFit", "ForecastState", "fit_curve"]
