"""Every verdict is reachable with a curve that shows it, built like a real Keras history.

The synthetic histories follow what ``model.fit`` logs: ``loss``/``val_loss`` (and
``accuracy``/``val_accuracy`` for classifiers) per epoch, with the epoch-to-epoch noise of a
validation set of a few hundred samples. Each verdict is checked on several noise draws so a test
pins the behaviour, not one lucky sample.
"""

from __future__ import annotations

import io
import json
import math
import re

import numpy as np
import pytest

from mlflow_plateau.curves import history_curves
from mlflow_plateau.scaling import scaling_fit
from mlflow_plateau.verdict import (
    SCALING_VERDICTS,
    VERDICTS,
    Diagnosis,
    diagnose_curves,
    scaling_verdict,
)

SEEDS = range(5)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def healthy(seed: int, n: int = 40) -> dict:
    """A regression that converges with a small, stable gap."""
    r, x = _rng(seed), np.arange(n)
    return {"loss": 0.6 * np.exp(-x / 5) + 0.08 + 0.004 * r.standard_normal(n),
            "val_loss": 0.6 * np.exp(-x / 5) + 0.10 + 0.005 * r.standard_normal(n)}


def overfitting(seed: int, n: int = 50) -> dict:
    """Seed 004 example 1: a deep net on a tiny dataset; val U-shape, train keeps falling."""
    r, x = _rng(seed), np.arange(n)
    train = 0.7 * np.exp(-x / 6) + 0.02 * np.exp(-x / 30) + 0.003 * np.abs(r.standard_normal(n))
    val = 0.7 * np.exp(-x / 6) + 0.15 + 0.006 * np.maximum(x - 12, 0) \
        + 0.006 * r.standard_normal(n)
    return {"loss": train, "val_loss": val}


def underfitting(seed: int, n: int = 40) -> dict:
    """Seed 001 example 3: a small model on a binary task stuck well above a good fit."""
    r, x = _rng(seed), np.arange(n)
    acc = 0.5 + 0.2 * (1 - np.exp(-x / 3)) + 0.005 * r.standard_normal(n)
    return {"loss": 0.15 * np.exp(-x / 3) + 0.55 + 0.003 * r.standard_normal(n),
            "val_loss": 0.15 * np.exp(-x / 3) + 0.56 + 0.004 * r.standard_normal(n),
            "accuracy": acc, "val_accuracy": acc - 0.01}


def random_labels_binary(seed: int, n: int = 30, sd_loss: float = 0.02,
                         sd_acc: float = 0.05) -> dict:
    """Random labels, 100 validation samples: val_loss hovers at ln 2, val_accuracy at 0.5."""
    r, x = _rng(seed), np.arange(n)
    return {"loss": 0.70 - 0.006 * x + 0.005 * r.standard_normal(n),
            "val_loss": math.log(2) + 0.003 * x + sd_loss * r.standard_normal(n),
            "accuracy": 0.5 + 0.005 * x + 0.01 * r.standard_normal(n),
            "val_accuracy": 0.5 + sd_acc * r.standard_normal(n)}


def random_images_5_classes(seed: int, n: int = 50) -> dict:
    """Seed 004 example 2: 100 random images, 5 random classes; train memorises, val rises."""
    r, x = _rng(seed), np.arange(n)
    return {"loss": 1.62 * np.exp(-x / 15) + 0.02 + 0.01 * r.standard_normal(n),
            "val_loss": math.log(5) + 0.03 * np.maximum(x - 3, 0) + 0.02 * r.standard_normal(n),
            "accuracy": np.minimum(0.2 + 0.02 * x, 1.0),
            "val_accuracy": 0.2 + 0.05 * r.standard_normal(n)}


def slow_learning_rate(seed: int, n: int = 10) -> dict:
    """Seed 001 example 2: Adam at lr=1e-5, 10 epochs, MSE still falling at the end."""
    r, x = _rng(seed), np.arange(n)
    return {"loss": 0.30 * np.exp(-x / 25) + 0.09 + 0.0005 * r.standard_normal(n),
            "val_loss": 0.30 * np.exp(-x / 25) + 0.095 + 0.0005 * r.standard_normal(n)}


def spiky(seed: int, n: int = 40) -> dict:
    """Too high a learning rate: the loss falls but spikes back up in several epochs."""
    r, x = _rng(seed), np.arange(n)
    train = 0.8 * np.exp(-x / 4) + 0.3 + 0.03 * r.standard_normal(n)
    val = 0.8 * np.exp(-x / 4) + 0.35 + 0.04 * r.standard_normal(n)
    spikes = r.choice(np.arange(8, n), 5, replace=False)
    val[spikes] += r.uniform(0.5, 0.9, 5)
    train[spikes] += 0.3
    return {"loss": train, "val_loss": val}


def noisy_plateau(seed: int, n: int = 40) -> dict:
    """Fixed-lr SGD bouncing around the minimum: noise as large as a third of the improvement."""
    r, x = _rng(seed), np.arange(n)
    train = 0.3 * np.exp(-x / 3) + 0.25 + 0.1 * r.standard_normal(n) ** 2
    return {"loss": train, "val_loss": train + 0.02 + 0.1 * r.standard_normal(n)}


def exploding(seed: int, n: int = 20) -> dict:
    """The loss falls, then grows exponentially from epoch 8 (no NaN yet)."""
    r, x = _rng(seed), np.arange(n)
    train = np.where(x < 8, 0.6 * np.exp(-x / 3) + 0.1, 0.15 * np.exp((x - 8) * 0.6))
    train = train * (1 + 0.01 * r.standard_normal(n))
    return {"loss": train, "val_loss": train + 0.05}


def _check(d: Diagnosis, verdict: str) -> dict:
    assert d.verdict == verdict, (d.verdict, d.summary, d.evidence)
    assert d.evidence["verdict_rule"] == verdict
    assert d.summary and d.summary.endswith(".") and "\n" not in d.summary
    assert d.recommendations and all(isinstance(s, str) for s in d.recommendations)
    out = d.to_dict()
    text = json.dumps(out, allow_nan=False)  # JSON-safe: no NaN/inf
    _assert_plain_python(out)
    assert json.loads(text)["verdict"] == verdict
    return out


def _assert_plain_python(obj) -> None:
    """No numpy scalars or arrays anywhere: only dict, list, str, int, float, bool, None."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert type(k) is str
            _assert_plain_python(v)
    elif isinstance(obj, list):
        for v in obj:
            _assert_plain_python(v)
    else:
        assert obj is None or type(obj) in (str, int, float, bool), (type(obj), obj)


# --- each verdict -----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_healthy(seed):
    d = diagnose_curves(healthy(seed))
    _check(d, "healthy")
    assert 15 <= d.plateau.epoch <= 35
    assert d.gap.final == pytest.approx(0.02, abs=0.01)
    assert (d.monitor, d.train_metric, d.mode) == ("val_loss", "loss", "min")


@pytest.mark.parametrize("seed", SEEDS)
def test_overfitting(seed):
    d = diagnose_curves(overfitting(seed))
    out = _check(d, "overfitting")
    assert 8 <= d.plateau.epoch <= 18
    assert d.gap.growing and d.gap.final > 0.3
    assert d.plateau.stop_epoch is not None and d.plateau.wasted_epochs > 10
    assert "training kept improving" in out["evidence"]["decided_by"]
    assert any("regularization" in s for s in d.recommendations)


@pytest.mark.parametrize("seed", SEEDS)
def test_underfitting(seed):
    d = diagnose_curves(underfitting(seed))
    _check(d, "underfitting")
    assert "training accuracy only reaches" in d.evidence["decided_by"]
    assert any("capacity" in s for s in d.recommendations)
    # With the class count known, the training loss at 0.8 x ln 2 says the same.
    x = np.arange(40)
    h = {"loss": 0.15 * np.exp(-x / 3) + 0.55, "val_loss": 0.15 * np.exp(-x / 3) + 0.56}
    d = diagnose_curves(h, num_classes=2)
    _check(d, "underfitting")
    assert d.evidence["chance"] == pytest.approx(math.log(2))
    assert "of chance" in d.evidence["decided_by"]


def test_underfitting_without_a_chance_level():
    # A regression (no accuracy, no class count): the training loss fell by only 5% of its first
    # value and both curves are flat: a poor fit whatever the task.
    x = np.arange(30)
    d = diagnose_curves({"loss": 0.05 * np.exp(-x / 3) + 0.95, "val_loss": 0.05 * np.exp(-x / 3) + 0.97})
    _check(d, "underfitting")
    assert "fell by only" in d.evidence["decided_by"]
    assert "chance" not in d.evidence


def test_constant_curves_are_underfitting_not_healthy():
    d = diagnose_curves({"loss": [0.5] * 20, "val_loss": [0.6] * 20})
    _check(d, "underfitting")
    assert "fell by only 0%" in d.summary


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("monitor", [None, "val_accuracy"])
def test_at_chance_random_labels_binary(seed, monitor):
    d = diagnose_curves(random_labels_binary(seed), monitor=monitor)
    _check(d, "at_chance")
    expected = 0.5 if monitor else math.log(2)
    assert d.evidence["chance"] == pytest.approx(expected)
    assert "2 classes (validation accuracy near 1/2 and loss near ln 2)" in d.evidence["chance_source"]
    assert "chance level" in d.summary


@pytest.mark.parametrize("seed", SEEDS)
def test_at_chance_random_images_five_classes(seed):
    # Validation accuracy flat at 0.2 and a validation loss that never improves: at chance with
    # no class count (the rising val loss and the memorising train loss agree on no ln k).
    d = diagnose_curves(random_images_5_classes(seed))
    _check(d, "at_chance")
    assert "nothing was learned" in d.evidence["decided_by"]
    d = diagnose_curves(random_images_5_classes(seed), num_classes=5)
    _check(d, "at_chance")
    assert d.evidence["chance"] == pytest.approx(math.log(5))
    assert "ln(5)" in d.evidence["chance_source"]


def test_at_chance_with_explicit_num_classes_and_chance():
    h = random_images_5_classes(0)
    del h["accuracy"], h["val_accuracy"]  # nothing left to infer the classes from
    d = diagnose_curves(h)
    assert d.verdict != "at_chance" and "chance" not in d.evidence
    d = diagnose_curves(h, num_classes=5)
    _check(d, "at_chance")
    assert d.evidence["chance"] == pytest.approx(math.log(5))
    d = diagnose_curves(h, chance=1.6)
    _check(d, "at_chance")
    assert d.evidence["chance_source"] == "given"
    h = random_images_5_classes(0)
    d = diagnose_curves(h, monitor="val_accuracy", num_classes=5)
    _check(d, "at_chance")
    assert d.evidence["chance"] == pytest.approx(0.2)


def test_a_weak_but_real_learner_is_not_at_chance():
    # Binary task, val loss settles at 0.45: far below ln 2 = 0.693.
    x = np.arange(30)
    h = {"loss": 0.3 * np.exp(-x / 4) + 0.40, "val_loss": 0.3 * np.exp(-x / 4) + 0.45,
         "accuracy": 0.6 + 0.2 * (1 - np.exp(-x / 4)), "val_accuracy": 0.6 + 0.18 * (1 - np.exp(-x / 4))}
    d = diagnose_curves(h, num_classes=2)
    assert d.verdict != "at_chance"
    assert d.evidence["chance"] == pytest.approx(math.log(2))
    assert diagnose_curves(h).verdict != "at_chance"


def test_num_classes_below_two_is_a_value_error():
    with pytest.raises(ValueError, match="num_classes"):
        diagnose_curves(healthy(0), num_classes=1)


@pytest.mark.parametrize("seed", SEEDS)
def test_not_converged(seed):
    d = diagnose_curves(slow_learning_rate(seed))
    _check(d, "not_converged")
    assert d.plateau.still_improving
    assert any("Train longer" in s for s in d.recommendations)


@pytest.mark.parametrize("seed", SEEDS)
def test_unstable_spikes(seed):
    d = diagnose_curves(spiky(seed))
    _check(d, "unstable")
    assert "training jumps too" in d.evidence["decided_by"]
    assert d.evidence["score_unstable"] >= 1.0
    assert any("learning rate" in s for s in d.recommendations)


@pytest.mark.parametrize("seed", SEEDS)
def test_unstable_noise(seed):
    d = diagnose_curves(noisy_plateau(seed))
    _check(d, "unstable")


@pytest.mark.parametrize("at", [1, 7, 12])
def test_diverged_nan_mid_curve_reports_the_epoch(at):
    h = healthy(0, n=20)
    h["loss"][at:] = np.nan
    h["val_loss"][at:] = np.nan
    d = diagnose_curves(h)
    out = _check(d, "diverged")
    assert out["evidence"]["diverged_epoch"] == at
    assert out["evidence"]["diverged_metric"] == "val_loss"  # the monitor wins a tie
    assert f"epoch {at}" in d.summary


def test_diverged_when_only_the_training_loss_turns_inf_for_good():
    h = healthy(0, n=20)
    h["loss"][9:] = np.inf
    d = diagnose_curves(h)
    _check(d, "diverged")
    assert (d.evidence["diverged_epoch"], d.evidence["diverged_metric"]) == (9, "loss")


@pytest.mark.parametrize("glitch", [np.nan, np.inf])
def test_a_nan_or_inf_the_curves_recover_from_is_dropped_not_a_divergence(glitch):
    """A NaN weight stays NaN: a curve finite again after a NaN/inf was not broken by it (an
    evaluation on an empty batch, a step a loss scaler skipped). The point is dropped and said."""
    h = healthy(0, n=20)
    clean = diagnose_curves(h)
    h["val_loss"][4] = glitch
    h["loss"][9] = glitch
    d = diagnose_curves(h)
    assert d.verdict == clean.verdict != "diverged"
    assert d.evidence["non_finite_dropped"] == {"val_loss": [4], "loss": [9]}
    assert d.evidence["epochs"] == 19
    # ... and a NaN stretch that lasts to the end is still where it diverged, glitch or not.
    h["val_loss"][15:] = np.nan
    d = diagnose_curves(h)
    assert (d.verdict, d.evidence["diverged_epoch"], d.evidence["diverged_metric"]) == \
        ("diverged", 15, "val_loss")


def test_diverged_all_nan_from_the_first_epoch():
    d = diagnose_curves({"loss": [np.nan] * 5, "val_loss": [np.nan] * 5})
    _check(d, "diverged")
    assert d.evidence["diverged_epoch"] == 0 and d.plateau is None
    # The same run as a Keras CSVLogger file (one row per epoch, "nan" written): diverged too,
    # not "no training curves"; beside filled columns an empty one is still just empty.
    import pandas as pd

    frame = pd.read_csv(io.StringIO("epoch,loss,val_loss\n" + "".join(
        f"{e},nan,nan\n" for e in range(5))))
    d = diagnose_curves(frame)
    _check(d, "diverged")
    assert d.evidence["diverged_epoch"] == 0
    # Keras 3's CSVLogger also writes the learning rate: bookkeeping, not a curve with values.
    frame = pd.read_csv(io.StringIO("epoch,learning_rate,loss,val_loss\n" + "".join(
        f"{e},0.001,nan,nan\n" for e in range(5))))
    _check(diagnose_curves(frame), "diverged")
    # Keras keeps writing the accuracy while the loss is NaN: still diverged, not at chance.
    frame = pd.read_csv(io.StringIO("epoch,accuracy,loss,val_accuracy,val_loss\n" + "".join(
        f"{e},0.0986,nan,0.1,nan\n" for e in range(5))))
    _check(diagnose_curves(frame), "diverged")
    frame = pd.read_csv(io.StringIO("epoch,loss,val_loss,val_auc\n" + "".join(
        f"{e},{1 / (e + 1)},{1.1 / (e + 1)},\n" for e in range(8))))
    assert "val_auc" not in history_curves(frame) and diagnose_curves(frame).verdict != "diverged"


@pytest.mark.parametrize("seed", SEEDS)
def test_diverged_exploding_training_loss(seed):
    d = diagnose_curves(exploding(seed))
    _check(d, "diverged")
    assert d.evidence["diverged_how"] == "exploded"
    assert 10 <= d.evidence["diverged_epoch"] <= 14  # 10x the best (~0.15) is reached at ~12
    assert "exploded" in d.summary


@pytest.mark.parametrize("history", [
    {"loss": [], "val_loss": []},
    {"loss": [0.5], "val_loss": [0.6]},
    {"loss": [0.5, 0.4], "val_loss": [0.6, 0.5]},
    {"loss": [0.5, 0.4, 0.3, 0.2], "val_loss": [0.6, 0.5]},
])
def test_insufficient_data(history):
    d = diagnose_curves(history)
    _check(d, "insufficient_data")
    assert d.plateau is None and d.gap is None
    assert d.evidence["epochs"] == len(history["val_loss"])


def test_every_verdict_is_reachable():
    histories = [healthy(0), overfitting(0), underfitting(0), random_labels_binary(0),
                 slow_learning_rate(0), spiky(0), exploding(0), {"loss": [0.1], "val_loss": [0.2]}]
    assert {diagnose_curves(h).verdict for h in histories} == set(VERDICTS)


# --- input handling ---------------------------------------------------------------------------

def test_accuracy_in_percent_is_scaled_and_reported():
    x = np.arange(30)
    h = {"accuracy": 50 + 45 * (1 - np.exp(-x / 5)), "val_accuracy": 48 + 40 * (1 - np.exp(-x / 5))}
    d = diagnose_curves(h)
    assert d.monitor == "val_accuracy" and d.mode == "max"
    assert d.evidence["percent_scaled"] is True
    assert d.plateau.best_value == pytest.approx(0.88, abs=0.01)
    assert d.gap.final == pytest.approx(0.07, abs=0.01)


def test_accuracy_only_history_overfitting():
    x = np.arange(40)
    h = {"accuracy": 0.5 + 0.5 * (1 - np.exp(-x / 5)),
         "val_accuracy": 0.5 + 0.3 * (1 - np.exp(-x / 5)) - 0.004 * np.maximum(x - 12, 0)}
    d = diagnose_curves(h)
    _check(d, "overfitting")
    assert d.gap.final > 0  # positive = worse on validation, for a score too


def test_negative_losses_are_diagnosed():
    # e.g. a negative log-likelihood of a continuous density: below zero and still a loss.
    r, x = _rng(0), np.arange(40)
    h = {"loss": -2.0 - 1.5 * (1 - np.exp(-x / 5)) + 0.01 * r.standard_normal(40),
         "val_loss": -1.9 - 1.5 * (1 - np.exp(-x / 5)) + 0.01 * r.standard_normal(40)}
    d = diagnose_curves(h)
    _check(d, "healthy")
    assert 10 <= d.plateau.epoch <= 30


def test_noise_free_converged_exponential_is_not_still_improving():
    x = np.arange(40)
    h = {"loss": 0.6 * np.exp(-x / 5) + 0.08, "val_loss": 0.6 * np.exp(-x / 5) + 0.1}
    d = diagnose_curves(h)
    tail_gain = h["val_loss"][30] - h["val_loss"][39]
    assert tail_gain < d.plateau.tolerance  # the last quarter improves by less than the tolerance
    assert not d.plateau.still_improving
    assert d.verdict == "healthy"


@pytest.mark.parametrize("history, monitor", [
    ({"loss": 0.6 * np.exp(-np.arange(30) / 5) + 0.1}, "loss"),
    ({"val_loss": 0.6 * np.exp(-np.arange(30) / 5) + 0.1}, "val_loss"),
])
def test_only_training_or_only_validation_metrics(history, monitor):
    d = diagnose_curves(history)
    assert d.monitor == monitor and d.gap is None
    assert d.verdict in VERDICTS
    json.dumps(d.to_dict(), allow_nan=False)


def test_unequal_train_and_val_lengths_use_common_epochs():
    h = healthy(0)
    h["val_loss"] = h["val_loss"][:25]
    d = diagnose_curves(h)
    assert d.gap.epochs.tolist() == list(range(25))
    assert d.verdict == "healthy"


def test_lightning_names_and_explicit_pair():
    x = np.arange(30)
    h = {"train_loss": 0.6 * np.exp(-x / 5) + 0.08, "valid_loss": 0.6 * np.exp(-x / 5) + 0.1,
         "my_val": 0.6 * np.exp(-x / 5) + 0.1}
    d = diagnose_curves(h)
    assert (d.monitor, d.train_metric) == ("valid_loss", "train_loss")
    d = diagnose_curves(h, monitor="my_val", train_metric="train_loss", mode="min")
    assert (d.monitor, d.train_metric, d.verdict) == ("my_val", "train_loss", "healthy")


@pytest.mark.parametrize("kwargs, message", [
    (dict(history={}), "no training curves"),
    (dict(history={"lr": [0.1, 0.1]}), "metrics present: lr"),
    (dict(history={"loss": [1, 2, 3]}, monitor="val_loss"), "monitor 'val_loss' not in"),
    (dict(history={"loss": [1, 2, 3]}, train_metric="acc"), "train metric 'acc' not in"),
    (dict(history={"widgets": [1, 2, 3]}), "'widgets'"),
    (dict(history={"loss": [1, 2, 3]}, mode="down"), "mode must be"),
    (dict(history=[1, 2, 3]), "mapping of metric name"),
])
def test_bad_input_is_a_value_error_naming_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        diagnose_curves(**kwargs)


def test_history_is_not_modified():
    h = overfitting(0)
    copy = {k: v.copy() for k, v in h.items()}
    diagnose_curves(h)
    for k in h:
        np.testing.assert_array_equal(h[k], copy[k])


def test_precedence_documented_in_the_docstring_matches_the_verdicts():
    from mlflow_plateau import verdict

    doc = verdict.__doc__
    positions = [doc.index(f"``{v}``") for v in ("diverged", "insufficient_data", "at_chance",
                                                  "unstable", "overfitting", "not_converged",
                                                  "underfitting", "healthy")]
    assert positions == sorted(positions)
    assert set(VERDICTS) == {"healthy", "overfitting", "underfitting", "at_chance",
                             "not_converged", "unstable", "diverged", "insufficient_data"}


# --- scaling verdicts -------------------------------------------------------------------------

SIZES = np.array([500, 1000, 2000, 4000, 8000], dtype=np.float64)


@pytest.mark.parametrize("errors, verdict", [
    (5.0 * SIZES ** -0.5 + 0.02, "data_limited"),            # steep: doubling cuts ~25%
    (1.0 * SIZES ** -0.5 + 0.1, "diminishing_returns"),      # ~3% from doubling
    (0.05 * SIZES ** -0.5 + 0.3, "saturated"),               # flat at its floor
    (np.array([0.20, 0.22, 0.25, 0.27, 0.3]), "saturated"),  # error grows with size
])
def test_scaling_verdicts(errors, verdict):
    v = scaling_verdict(scaling_fit(SIZES, errors))
    assert v.verdict == verdict, (v.verdict, v.summary, v.evidence)
    out = v.to_dict()
    json.dumps(out, allow_nan=False)
    _assert_plain_python(out)
    assert v.recommendations and v.summary.endswith(".")
    if verdict == "saturated" and errors[-1] > errors[0]:
        assert "grows with size" in v.summary


def test_flat_noisy_errors_do_not_grow_with_size_and_draw_no_floor(monkeypatch):
    """Errors flat around 0.18 with a few percent of noise: saturated, but a least-squares slope
    of the noise is not "error grows with size", and the floor of a fit with exponent 0 (any
    split of a + c) is not drawn as the error with unlimited data."""
    from matplotlib.axes import Axes

    from mlflow_plateau import report

    sizes = np.array([500, 1000, 2000, 4000, 8000, 16000], dtype=np.float64)
    errors = 0.18 * np.exp(np.random.default_rng(2).normal(0, 0.03, 6))
    fit = scaling_fit(sizes, errors)
    v = scaling_verdict(fit)
    assert fit.slope > 0 and fit.exponent < 0.05 and fit.low == 0
    assert v.verdict == "saturated" and "grows with size" not in v.summary
    lines: list[str] = []
    original = Axes.axhline
    monkeypatch.setattr(Axes, "axhline", lambda ax, *a, **k: (
        lines.append(str(k.get("label"))), original(ax, *a, **k))[1])
    assert report.scaling_png(v).startswith(b"\x89PNG")
    assert not any(label.startswith("fitted floor") for label in lines)
    # A fit whose exponent is clearly above 0 keeps its floor line.
    report.scaling_png(scaling_verdict(scaling_fit(SIZES, 1.0 * SIZES ** -0.5 + 0.1)))
    assert any(label.startswith("fitted floor") for label in lines)


def test_scaling_insufficient_points():
    v = scaling_verdict(scaling_fit([1000, 2000, 2000], [0.3, 0.25, 0.26]))
    assert v.verdict == "insufficient_points" and v.evidence["n_distinct"] == 2
    json.dumps(v.to_dict(), allow_nan=False)


def test_every_scaling_verdict_is_reachable():
    fits = [scaling_fit(SIZES, 5.0 * SIZES ** -0.5 + 0.02),
            scaling_fit(SIZES, 1.0 * SIZES ** -0.5 + 0.1),
            scaling_fit(SIZES, 0.05 * SIZES ** -0.5 + 0.3),
            scaling_fit([1, 2], [0.3, 0.2])]
    assert {scaling_verdict(f).verdict for f in fits} == set(SCALING_VERDICTS)


def test_the_diagnosis_carries_the_forecast_of_its_monitor():
    t = np.arange(1, 41.0)
    d = diagnose_curves({"loss": 0.1 + 2 * np.exp(-t / 30), "val_loss": 0.2 + 2 * np.exp(-t / 30)})
    assert d.verdict == "not_converged" and d.forecast is not None
    assert d.forecast.gain_if_doubled > 0
    assert "training 2x longer would bring val_loss to about" in d.summary
    assert d.to_dict()["forecast"]["epoch_2x"] == 79
    short = diagnose_curves({"loss": [1.0, 0.8, 0.7, 0.6], "val_loss": [1.1, 0.9, 0.8, 0.75]})
    assert short.forecast is None and short.to_dict()["forecast"] is None
    nan = diagnose_curves({"loss": [1.0, 0.8, 0.7, 0.6, 0.5, 0.4, float("nan")],
                           "val_loss": [1.1, 0.9, 0.8, 0.75, 0.7, 0.65, 0.6]})
    assert nan.verdict == "diverged" and nan.forecast is None


def test_a_smooth_curve_still_improving_says_no_measurable_noise_not_inf():
    epochs = np.arange(30.0)
    d = diagnose_curves({"loss": 2 / (1 + epochs), "val_loss": 2.5 / (1 + epochs) ** 0.5})
    assert d.verdict == "not_converged"
    assert "no measurable noise" in d.summary and "inf" not in d.summary


def test_a_chance_that_is_not_a_number_is_a_clear_error():
    """diagnose_curves(chance=nan) said at_chance for a run that learned."""
    e = np.arange(30)
    history = {"loss": 1.0 / (e + 1), "val_loss": 1.2 / (e + 1) + 0.1}
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="chance must be a finite number"):
            diagnose_curves(history, chance=bad)
    with pytest.raises(ValueError, match="num_classes must be an int >= 2"):
        diagnose_curves(history, num_classes=2.5)
    d = diagnose_curves(history, num_classes=np.int64(10))
    assert d.config["num_classes"] == 10 and type(d.config["num_classes"]) is int


def test_a_three_epoch_run_still_falling_has_not_converged():
    """3 epochs, each better than the last: the not_converged rule said "too few epochs to tell"
    and the run was called underfitting, "val_loss converged"."""
    d = diagnose_curves({"loss": [2.4, 2.3, 2.25], "val_loss": [2.3353, 2.2842, 2.2444]})
    assert d.verdict == "not_converged" and "val_loss converged" not in d.summary
    # Its best not at the end: too few epochs to say it is still learning.
    d = diagnose_curves({"loss": [2.4, 2.3, 2.25], "val_loss": [2.3353, 2.2442, 2.2444]})
    assert d.verdict != "not_converged"


# --- what the summary says is in the run's own terms -----------------------------------------

@pytest.mark.parametrize("scale", [1e-12, 1.0, 1e6, 1e20, 1e30])
def test_verdict_and_summary_do_not_depend_on_the_loss_units(scale):
    """A loss read on a log scale is judged by ratios: multiplying it by a constant (MSE in
    dollars squared, say) changes no verdict and no close call. The training loss's fall was
    measured on its log10 values: 95% read as 6% at 1e20 (underfitting), 12% at 1e11."""
    r, x = _rng(2), np.arange(50)
    train = 2 * np.exp(-x / 8) + 0.1
    val = train + 0.2 + 0.01 * r.standard_normal(50)
    d = diagnose_curves({"loss": scale * train, "val_loss": scale * val})
    assert d.verdict == "healthy"
    assert "underfitting" not in [a["verdict"] for a in d.alternatives]
    mse = 1e11 * np.exp(-np.arange(60) / 6) + 5e9  # falls by 95%, read in log10
    d = diagnose_curves({"loss": mse * scale, "val_loss": 1.05 * mse * scale + 1e9 * scale})
    assert "fell by" not in d.summary or "fell by 95%" in d.summary


def test_a_near_perfect_training_accuracy_is_not_close_to_underfitting():
    """The underfitting line is a training accuracy of 0.8: 0.999 is far from it (an error of
    0.001 against 0.2), not "0.8 of the line" as a ratio of accuracies read it."""
    x = np.arange(30)
    acc = 0.999 - 0.5 * np.exp(-x / 3)
    h = {**healthy(0, n=30), "accuracy": acc, "val_accuracy": acc - 0.02}
    d = diagnose_curves(h)
    assert d.verdict == "healthy"
    assert "underfitting" not in [a["verdict"] for a in d.alternatives]
    assert d.evidence.get("score_underfitting", 0.0) < 0.1
    # Near the line it is a close call, on either side.
    for top, verdict in ((0.83, "healthy"), (0.78, "underfitting")):
        acc = top - 0.3 * np.exp(-x / 3)
        d = diagnose_curves({**healthy(0, n=30), "accuracy": acc, "val_accuracy": acc - 0.02})
        assert d.verdict == verdict
        assert {a["verdict"] for a in d.alternatives} & {"healthy", "underfitting"}


def test_at_chance_above_the_chance_loss_is_not_said_to_be_within_it():
    """A best validation loss of 3.0 against chance ln 7 = 1.95 is worse than chance, not
    "within 10% of" it."""
    h = random_images_5_classes(0)
    del h["accuracy"], h["val_accuracy"]
    d = diagnose_curves({k: v + 1.5 for k, v in h.items()}, num_classes=5)
    assert d.verdict == "at_chance"
    assert "is no better than chance" in d.summary and "within" not in d.evidence["decided_by"]
    d = diagnose_curves(h, num_classes=5)  # at chance, within the margin: said so
    assert "within 10% of chance" in d.evidence["decided_by"]


def test_log_scale_amounts_are_said_as_percentages():
    """A loss falling by decades is read in log10; what the summary quotes is a percentage of
    the loss, never a log10 difference in the loss's place."""
    x = np.arange(40)
    val = 10.0 ** (-x / 10)  # still falling by 21% an epoch: not converged
    d = diagnose_curves({"loss": 0.8 * val, "val_loss": val})
    assert d.verdict == "not_converged"
    why = d.evidence["decided_by"]
    record = val[-11] / val[-1]  # the last 10 epochs' best against the best before them
    assert f"by {100 * (1 - 1 / record):.3g}%" in why, why
    # Overfitting on a log scale: the rise above the best is a percentage of the best.
    u = np.concatenate([10.0 ** (-x[:25] / 8), 10.0 ** (-24 / 8) * 1.04 ** np.arange(1, 16)])
    d = diagnose_curves({"loss": 10.0 ** (-x / 8) * 0.5, "val_loss": u})
    assert d.verdict == "overfitting"
    assert re.search(r"validation ended \d+(\.\d+)?% above its best", d.evidence["decided_by"])


def test_a_log_validated_every_few_epochs_says_which_epochs_its_window_spans():
    """Validation every 5 epochs: "the last 10 epochs" would be 50 epochs; the points are named."""
    from mlflow_plateau.curves import Curve

    x = np.arange(0, 200, 5)
    val = 2.0 - x / 200
    d = diagnose_curves({"loss": Curve("loss", x, val - 0.05), "val_loss": Curve("val_loss", x, val)})
    assert d.verdict == "not_converged"
    assert "the last 10 points (epochs 150-195)" in d.evidence["decided_by"]
    d = diagnose_curves({"loss": val - 0.05, "val_loss": val})  # every epoch: as it was
    assert "over the last 10 epochs" in d.evidence["decided_by"]


def test_a_converged_curve_creeping_by_a_sliver_of_its_range_is_healthy():
    """Fallen from 1.5 to 0.5, then creeping by 2e-6 an epoch over a noise of 1e-6: its last
    epoch is its best, yet it moved 0% of its range: converged, as the plateau (not still
    improving) says; a clean curve still falling by a few % of its range is not converged."""
    x = np.arange(100)
    r = _rng(0)
    val = 0.5 + np.exp(-x / 4) - 2e-6 * x + 1e-6 * r.standard_normal(100)
    d = diagnose_curves({"loss": val - 0.05, "val_loss": val})
    assert not d.plateau.still_improving
    assert d.verdict == "healthy", d.summary
    e = np.arange(30)
    falling = 2.2 * (e + 1) ** -0.5 + 0.15 + _rng(1).normal(0, 0.003, 30)
    d = diagnose_curves({"loss": 2 * (e + 1) ** -0.5 + 0.1, "val_loss": falling})
    assert d.plateau.still_improving and d.verdict == "not_converged", d.summary
