"""Small numeric checks and estimates the core shares (one definition each).

``mode_sign(mode)``        +1 for ``"min"`` (lower is better), -1 for ``"max"``; ValueError
                           ``mode must be 'min' or 'max'`` for anything else. Every function that
                           takes a mode checks it here (``None``, where a function allows it,
                           is handled by the caller before).
``checked_epochs(e, n)``   the ``n`` epochs as int64: integers (finite, whole, |e| <= 2**62),
                           strictly increasing; ValueError saying which rule is broken.
``difference_noise(z)``    the robust noise sd of one point from second differences,
                           ``1.4826 * MAD(diff(z, 2)) / sqrt(6)``: a smooth trend adds little to
                           most second differences, and the MAD ignores a few large swings
                           (1.4826 makes the MAD an sd for normal noise; a second difference of
                           independent noise has variance 6 sigma^2).
``normal_quantile(p)``     the standard normal quantile (``scipy.special.ndtri``, which
                           ``norm.ppf`` calls with about 20x the overhead), cached: the few
                           levels in use are computed once.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np


def mode_sign(mode: str) -> int:
    """+1 for ``"min"``, -1 for ``"max"``; ValueError otherwise."""
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
    return 1 if mode == "min" else -1


def checked_epochs(epochs: Any, n: int) -> np.ndarray:
    """``epochs`` as ``n`` strictly increasing int64 values; ValueError when they are not."""
    raw = np.asarray(epochs).reshape(-1)
    if raw.size != n:
        raise ValueError(f"{raw.size} epochs for {n} values")
    try:
        as_float = raw.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError("epochs must be integers") from None
    if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)) \
            or np.any(np.abs(as_float) > 2.0**62):
        raise ValueError("epochs must be integers")
    x = as_float.astype(np.int64)
    if n > 1 and np.any(np.diff(x) <= 0):
        raise ValueError("epochs must be strictly increasing (sort and de-duplicate them first)")
    return x


def difference_noise(z: np.ndarray) -> float:
    """Robust noise sd of one point from second differences (module docstring)."""
    d2 = np.diff(z, n=2)
    return float(1.4826 * np.median(np.abs(d2 - np.median(d2))) / np.sqrt(6.0))


@lru_cache(maxsize=32)
def normal_quantile(p: float) -> float:
    """The standard normal quantile of ``p`` in (0, 1)."""
    from scipy.special import ndtri  # here: the checks above are used where scipy is not

    return float(ndtri(p))


__all__ = ["checked_epochs", "difference_noise", "mode_sign", "normal_quantile"]
