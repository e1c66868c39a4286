"""The generalization gap: how much worse the model does on validation than on training data.

For every epoch both curves have, the gap is ``val - train`` for a loss and ``train - val`` for a
score, so a positive gap always means worse on validation. Reported:

- ``at_best``: the gap at ``best_epoch`` (the epoch of the best validation value, given by the
  caller; by default the best raw validation value);
- ``final``: the gap at the last common epoch;
- ``relative_final``: ``final / |val at the last epoch|`` (None when that value is 0 or the
  ratio overflows);
- ``trend``: the Theil-Sen slope of the gap per epoch from ``from_epoch`` (usually the plateau
  epoch) to the end, with its 90% interval ``trend_low``..``trend_high`` (None with fewer than 3
  epochs there); ``growing`` is True when the whole interval lies above zero.

Curves of different lengths are compared on their common epochs only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .curves import Mode
from .numerics import mode_sign
from .theil import theil_slope

_MAX_TREND_POINTS = 400


@dataclass(frozen=True)
class GapResult:
    """The gap series and its summaries (see the module docstring)."""

    epochs: np.ndarray
    series: np.ndarray
    final: float
    at_best: float
    best_epoch: int
    relative_final: float | None
    trend: float | None
    trend_low: float | None
    trend_high: float | None
    growing: bool
    mode: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("series")
        out.pop("epochs")
        return out


def generalization_gap(train: Any, val: Any, *, mode: Mode = "min", epochs: Any = None,
                       best_epoch: int | None = None, from_epoch: int | None = None) -> GapResult:
    """Gap between ``train`` and ``val`` curves logged at the same ``epochs`` (default 0..n-1).

    With curves of unequal length the common prefix is used (pass aligned curves for anything
    else). Values must be finite, and their differences too; ``epochs`` strictly increasing
    integers.
    """
    mode_sign(mode)
    t = np.asarray(train, dtype=np.float64).reshape(-1)
    v = np.asarray(val, dtype=np.float64).reshape(-1)
    n = min(t.size, v.size)
    if n == 0:
        raise ValueError("generalization_gap needs at least one epoch with both train and val")
    t, v = t[:n], v[:n]
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(v))):
        raise ValueError("generalization_gap needs finite values; cut the curves at the first NaN")
    if epochs is None:
        x = np.arange(n, dtype=np.int64)
    else:
        given = np.asarray(epochs, dtype=np.float64).reshape(-1)[:n]
        if given.size != n:
            raise ValueError(f"{given.size} epochs for {n} values")
        if not (np.all(np.abs(given) < 2.0 ** 62) and np.all(given == np.round(given))):
            raise ValueError("epochs must be integers")
        x = given.astype(np.int64)
        if np.any(np.diff(x) <= 0):
            raise ValueError("epochs must be strictly increasing")
    with np.errstate(over="ignore", invalid="ignore"):
        gap = v - t if mode == "min" else t - v
    if not np.all(np.isfinite(gap)):
        raise ValueError("train and val differ by more than the float64 range; the gap overflows")

    if best_epoch is None:
        best_idx = int(np.argmin(v) if mode == "min" else np.argmax(v))
    else:
        hits = np.flatnonzero(x <= best_epoch)
        best_idx = int(hits[-1]) if hits.size else 0
    final = float(gap[-1])
    # None when validation ends at (or so near) 0 that the ratio is not a finite number.
    relative = final / abs(float(v[-1])) if v[-1] != 0 else None
    if relative is not None and not math.isfinite(relative):
        relative = None

    start = 0 if from_epoch is None else int(np.searchsorted(x, from_epoch))
    if n - start < 3:
        start = max(0, n - max(3, n // 2))
    tx, tg = x[start:].astype(np.float64), gap[start:]
    trend = low = high = None
    if tx.size >= 3:
        if tx.size > _MAX_TREND_POINTS:  # Theil-Sen is O(n^2): thin long tails evenly
            keep = np.linspace(0, tx.size - 1, _MAX_TREND_POINTS).astype(np.int64)
            tx, tg = tx[keep], tg[keep]
        if np.all(tg == tg[0]):
            trend = low = high = 0.0
        else:
            # Differences of gaps near the float64 maximum can overflow: no trend then.
            with np.errstate(over="ignore", invalid="ignore"):
                slope, lo_s, hi_s = theil_slope(tg, tx, alpha=0.90)
            if all(math.isfinite(float(s)) for s in (slope, lo_s, hi_s)):
                trend, low, high = float(slope), float(lo_s), float(hi_s)
    return GapResult(
        epochs=x, series=gap, final=final, at_best=float(gap[best_idx]),
        best_epoch=int(x[best_idx]), relative_final=relative, trend=trend, trend_low=low,
        trend_high=high, growing=bool(low is not None and low > 0), mode=mode,
    )
