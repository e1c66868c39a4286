"""Fuzzing the core over arbitrary float arrays: NaN, inf, 1e300, 1e-300, negatives, constants.

Whatever the input, the core either returns a result that satisfies its invariants or raises a
``ValueError`` (the documented error); it never raises anything else and never emits a warning
(every test runs under ``warnings.simplefilter("error")``, so a numpy overflow or invalid-value
warning fails it). ``test_fuzz_plateau_epoch`` runs 10,000 generated curves.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlflow_plateau.curves import finite_part, history_curves
from mlflow_plateau.gap import generalization_gap
from mlflow_plateau.plateau import plateau_epoch
from mlflow_plateau.scaling import scaling_fit
from mlflow_plateau.verdict import VERDICTS, diagnose_curves, scaling_verdict

SPECIAL = [math.nan, math.inf, -math.inf, 1e300, -1e300, 1e-300, -1e-300, 0.0, -0.0, 5e-324,
           1.0, -1.0, 0.6931471805599453, 100.0]
# Finite values within a factor 2 of the float64 maximum: plateau.py overflows on those (pinned by
# test_plateau_epoch_near_the_float64_maximum), so the fuzzing of plateau_epoch and
# diagnose_curves stops at 1e300; generalization_gap and scaling_fit get them.
EXTREME = [1e308, -1e308, 1.7976931348623157e308]


def _settings(n: int) -> settings:
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


element = st.one_of(st.sampled_from(SPECIAL), st.floats(-1e300, 1e300), st.floats(-10.0, 10.0))
element_extreme = st.one_of(element, st.sampled_from(EXTREME), st.floats())
raw_arrays = st.lists(element, max_size=12).map(lambda v: np.array(v, dtype=np.float64))
raw_arrays_extreme = st.lists(element_extreme, max_size=12).map(
    lambda v: np.array(v, dtype=np.float64))


# Lengths up to 300 from a fixed set, so plateau_epoch's per-length smoother basis (an lru_cache
# of 64 eigen-decompositions, as real runs repeat their lengths) is not recomputed per example.
LENGTHS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15, 16, 20, 25, 30, 33, 40, 50, 64, 77, 100,
           128, 150, 199, 200, 250, 299, 300]


@st.composite
def shaped_arrays(draw) -> np.ndarray:
    """Curves up to 300 epochs built by numpy from drawn parameters (fast to generate), with
    extreme scales, offsets, constant runs and special values injected at drawn positions."""
    n = draw(st.sampled_from(LENGTHS))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = np.arange(n, dtype=np.float64)
    shape = draw(st.sampled_from(["exp", "u", "const", "noise", "linear", "steps"]))
    if shape == "exp":
        y = np.exp(-x / draw(st.floats(0.1, 100.0)))
    elif shape == "u":
        y = (x - draw(st.integers(0, max(n, 1)))) ** 2
    elif shape == "const":
        y = np.full(n, draw(st.sampled_from(SPECIAL[3:])))
    elif shape == "linear":
        y = x * draw(st.floats(-5.0, 5.0))
    elif shape == "steps":
        y = np.floor(x / draw(st.integers(1, 50)))
    else:
        y = np.zeros(n)
    y = y + draw(st.sampled_from([0.0, 1e-6, 0.01, 1.0])) * rng.standard_normal(n)
    scale = draw(st.sampled_from([1.0, -1.0, 1e-300, 1e300, 1e-150, 1e150, 1e-9, 1e9]))
    offset = draw(st.sampled_from([0.0, 1.0, -1.0, 1e300, 1e-300]))
    with np.errstate(all="ignore"):  # building the input may overflow; that is the point
        y = y * scale + offset
    y[np.isfinite(y) & (np.abs(y) > 1e300)] = np.inf
    for _ in range(draw(st.integers(0, 3))):
        if n:
            y[draw(st.integers(0, n - 1))] = draw(st.sampled_from(SPECIAL))
    return y


arrays = st.one_of(raw_arrays, shaped_arrays())
arrays_extreme = st.one_of(raw_arrays_extreme, shaped_arrays())


def _json_safe(obj) -> None:
    json.dumps(obj, allow_nan=False)


def _check_plateau(p, epochs) -> None:
    epochs = list(epochs)
    assert p.epoch in epochs and p.low in epochs and p.high in epochs and p.best_epoch in epochs
    assert p.low <= p.epoch <= p.high
    assert p.stop_epoch is None or p.stop_epoch in epochs
    assert p.wasted_epochs >= 0
    assert p.last_epoch == epochs[-1]


@_settings(3_000)
@given(arrays, arrays, st.sampled_from(["loss", "accuracy", "auc"]),
       st.sampled_from([None, 2, 5]))
def test_fuzz_diagnose_curves(train, val, base, num_classes):
    history = {base: train, f"val_{base}": val}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # No ValueError is allowed: any two arrays are a history the diagnosis reads (at worst
        # insufficient_data or diverged, never a refusal).
        d = diagnose_curves(history, num_classes=num_classes)
        out = d.to_dict()
    assert d.verdict in VERDICTS
    _json_safe(out)
    assert d.monitor == f"val_{base}"
    if d.plateau is not None:  # on the epochs the diagnosis read: curves.finite_part
        part, _, _ = finite_part(history_curves(history)[f"val_{base}"])
        _check_plateau(d.plateau, part.epochs.tolist())
    if d.verdict == "diverged":
        assert isinstance(out["evidence"]["diverged_epoch"], int)
    if d.gap is not None:
        assert d.gap.series.size == d.gap.epochs.size >= 1


@_settings(10_000)
@given(arrays, st.sampled_from(["min", "max"]), st.sampled_from([0.0, 1e-3, 1e300]),
       st.sampled_from([None, 0.0, 0.01, 0.5]), st.integers(0, 1000), st.integers(1, 7))
def test_fuzz_plateau_epoch(values, mode, min_delta, relative_delta, offset, gap):
    epochs = offset + gap * np.arange(values.size)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            p = plateau_epoch(values, mode=mode, min_delta=min_delta,
                              relative_delta=relative_delta, epochs=epochs)
        except ValueError:
            assert values.size == 0 or not np.isfinite(values).all()
            return
        out = p.to_dict()
    assert np.isfinite(values).all() and values.size >= 1  # anything else must be refused
    _check_plateau(p, epochs)
    _json_safe({k: v for k, v in out.items() if not (isinstance(v, float) and math.isinf(v))})
    assert p.fitted.shape[0] >= 1


@_settings(1_000)
@given(arrays_extreme, arrays_extreme, st.sampled_from(["min", "max"]))
def test_fuzz_generalization_gap(train, val, mode):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            g = generalization_gap(train, val, mode=mode)
        except ValueError:
            n = min(train.size, val.size)
            with np.errstate(all="ignore"):
                difference = val[:n] - train[:n]
            assert n == 0 or not np.isfinite(difference).all()  # non-finite input or overflow
            return
        out = g.to_dict()
    n = min(train.size, val.size)
    assert g.series.size == n
    with np.errstate(all="ignore"):
        expected = val[n - 1] - train[n - 1] if mode == "min" else train[n - 1] - val[n - 1]
    # The sign convention: positive = worse on validation, whatever the mode.
    assert g.final == expected or (math.isnan(g.final) and math.isnan(expected))
    if g.trend is not None and all(math.isfinite(v) for v in (g.trend, g.trend_low, g.trend_high)):
        assert g.trend_low <= g.trend <= g.trend_high
    assert g.growing == bool(g.trend_low is not None and g.trend_low > 0)
    assert g.relative_final is None or math.isfinite(g.relative_final)
    assert out["mode"] == mode


positive = st.one_of(st.sampled_from([1e-300, 1e300, 1.0, 1e-9, 5e-324, 1e308]),
                     st.floats(1e-3, 1e6))
scaling_inputs = st.one_of(
    st.tuples(st.lists(element_extreme, max_size=8), st.lists(element_extreme, max_size=8)),
    st.integers(0, 8).flatmap(lambda k: st.tuples(st.lists(positive, min_size=k, max_size=k),
                                                  st.lists(positive, min_size=k, max_size=k))),
)


@_settings(150)
@given(scaling_inputs)
def test_fuzz_scaling_fit(pair):
    sizes, errors = pair
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            fit = scaling_fit(sizes, errors)
        except ValueError as exc:
            # Allowed only for what the docstring refuses: unequal lengths, a size or an error
            # that is not finite and > 0, or sizes/errors no float fit can hold.
            n, e = np.asarray(sizes, dtype=np.float64), np.asarray(errors, dtype=np.float64)
            assert (n.size != e.size or not (np.isfinite(n).all() and (n > 0).all())
                    or not (np.isfinite(e).all() and (e > 0).all())
                    or str(exc).startswith("cannot fit sizes")), str(exc)
            return
        verdict = scaling_verdict(fit)
        out = verdict.to_dict()
    _json_safe(out)
    if fit.insufficient_points:
        assert fit.n_distinct < 3
        return
    assert fit.exponent >= 0 and fit.low <= fit.exponent <= fit.high
    assert 0 <= fit.floor <= min(errors)


def test_plateau_epoch_near_the_float64_maximum():
    values = np.array([1e300, 1e300, 1e308, 1e300, 1e308, 1e300])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = plateau_epoch(values)
    assert math.isfinite(p.tolerance) and math.isfinite(p.improvement)
