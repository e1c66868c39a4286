"""``early_stopping_replay`` agrees with the real ``keras.callbacks.EarlyStopping`` on every sequence.

The real callback is driven exactly as ``model.fit`` drives it: ``on_train_begin``, then
``on_epoch_end(epoch, {"val_loss": value})`` with Python floats (Keras passes pythonified logs)
until it sets ``model.stop_training``. Keras's ``stopped_epoch == 0`` means "did not stop", which
the replay reports as ``None``. Sequences are built to hit the edges of the rule: ties, plateaus,
repeated values, differences near float32 resolution (Keras compares in float32), and min_delta
values equal to the steps of the sequence.
"""

from __future__ import annotations

import itertools
import math
import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mlflow_plateau.plateau import early_stopping_replay  # noqa: E402


class _Model:
    """The one thing EarlyStopping touches on its model without restore_best_weights."""

    stop_training = False


def keras_early_stopping(values, *, mode, min_delta, patience, baseline, start_from_epoch):
    cb = keras.callbacks.EarlyStopping(monitor="val_loss", mode=mode, min_delta=min_delta,
                                       patience=patience, baseline=baseline,
                                       start_from_epoch=start_from_epoch)
    model = _Model()
    cb.set_model(model)
    cb.on_train_begin()
    for epoch, value in enumerate(values):
        cb.on_epoch_end(epoch, {"val_loss": float(value)})
        if model.stop_training:
            break
    return cb.best_epoch, (cb.stopped_epoch or None)


def _near_float32(base: float, steps: list[int]) -> list[float]:
    """Values a few float32 ulps apart (plus sub-float32 offsets that float32 rounds away)."""
    ulp = math.ulp(float(abs(base)) or 1.0) * 2.0 ** 29  # float32 ulp is 2^29 float64 ulps
    return [base + k * ulp / 2 for k in steps]


# TensorFlow's CPU kernels flush float32 subnormals (|x| < 1.18e-38) to zero, and so must the
# replay: some generated values are drawn at and around that edge.
FLOAT32_TINY = 1.1754943508222875e-38
finite = st.one_of(
    st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 1.85e-45, -1.85e-45, 1e-40, FLOAT32_TINY, 2 * FLOAT32_TINY, 1e-37]),
)
pool_values = st.lists(st.sampled_from([0.5, 0.4, 0.3, 0.3, 0.2, 0.25, 1.0, 0.0, -0.1]),
                       min_size=0, max_size=30)
noisy = st.lists(finite, min_size=1, max_size=30)
ints = st.lists(st.integers(-5, 5), min_size=1, max_size=30).map(lambda v: [0.1 * x for x in v])
plateaued = st.tuples(
    st.lists(st.floats(0.01, 10.0), min_size=1, max_size=10),
    st.integers(0, 15),
    st.lists(st.floats(-0.01, 0.01), min_size=0, max_size=10),
).map(lambda t: sorted(t[0], reverse=True) + [min(t[0])] * t[1] + [min(t[0]) + d for d in t[2]])
tiny = st.tuples(st.floats(1e-3, 1e3), st.lists(st.integers(-6, 6), min_size=1, max_size=30)).map(
    lambda t: _near_float32(t[0], t[1]))

sequences = st.one_of(pool_values, noisy, ints, plateaued, tiny)


@st.composite
def cases(draw):
    values = draw(sequences)
    diffs = [abs(a - b) for a, b in itertools.pairwise(values)] or [0.0]
    min_delta = draw(st.one_of(
        st.just(0.0),
        st.floats(1e-9, 1e-3),                       # small
        st.floats(0.05, 100.0),                      # large
        st.sampled_from(diffs),                      # exactly a step of the sequence: ties
        st.floats(-1.0, -1e-6),                      # negative: Keras takes abs
    ))
    span = values or [0.0]
    baseline = draw(st.one_of(st.none(), st.sampled_from(span),
                              st.floats(min(span) - 1, max(span) + 1)))
    return dict(values=values, mode=draw(st.sampled_from(["min", "max"])), min_delta=min_delta,
                patience=draw(st.integers(0, 12)), baseline=baseline,
                start_from_epoch=draw(st.integers(0, 5)))


@settings(max_examples=2000, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases())
def test_replay_matches_keras_early_stopping(case):
    values = case.pop("values")
    best_epoch, stopped = keras_early_stopping(values, **case)
    ours = early_stopping_replay(values, **case)
    assert (ours.best_epoch, ours.stopped_epoch) == (best_epoch, stopped), case


@pytest.mark.parametrize("mode, values, kwargs, expected", [
    # Ties never improve: best stays at the first of equal values.
    ("min", [1.0, 1.0, 1.0, 1.0], dict(patience=2), (0, 2)),
    # Patience 0 and 1 behave alike: stop at the first non-improving epoch.
    ("min", [3.0, 2.0, 2.5, 1.0], dict(patience=0), (1, 2)),
    ("min", [3.0, 2.0, 2.5, 1.0], dict(patience=1), (1, 2)),
    # An improvement of exactly min_delta does not count.
    ("min", [1.0, 0.5, 0.25], dict(min_delta=0.25, patience=5), (1, None)),
    # Negative min_delta is taken as its absolute value.
    ("max", [0.1, 0.2, 0.25, 0.26], dict(min_delta=-0.05, patience=1), (1, 2)),
    # Baseline: best moves but wait keeps counting until the baseline is beaten.
    ("min", [1.0, 0.9, 0.95, 0.96], dict(baseline=0.5, patience=2), (1, 2)),
    # start_from_epoch: the first monitored epoch always becomes best.
    ("min", [0.1, 0.2, 0.9, 0.8, 0.85], dict(start_from_epoch=2, patience=1), (3, 4)),
    # Float32: 1 + 1e-9 equals 1 in float32, so it is a tie, not a worsening or improvement.
    ("min", [1.0, 1.0 - 1e-9, 1.0 - 2e-9], dict(patience=5), (0, None)),
])
def test_replay_known_cases_match_keras(mode, values, kwargs, expected):
    kwargs = {"min_delta": 0.0, "patience": 0, "baseline": None, "start_from_epoch": 0, **kwargs}
    assert keras_early_stopping(values, mode=mode, **kwargs) == expected
    ours = early_stopping_replay(values, mode=mode, **kwargs)
    assert (ours.best_epoch, ours.stopped_epoch) == expected


def test_replay_float32_subnormals_flush_to_zero_like_keras():
    values = [1.85e-45, 0.0]
    expected = keras_early_stopping(values, mode="min", min_delta=0.0, patience=0, baseline=None,
                                    start_from_epoch=0)
    assert expected == (0, 1)  # Keras sees 0.0 < denormal as False: no improvement, stops
    ours = early_stopping_replay(values, mode="min", patience=0)
    assert (ours.best_epoch, ours.stopped_epoch) == expected


def test_replay_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        early_stopping_replay([1.0, 2.0], mode="auto")
    with pytest.raises(ValueError, match="patience"):
        early_stopping_replay([1.0, 2.0], patience=-1)
