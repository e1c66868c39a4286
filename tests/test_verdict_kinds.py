"""The kinds of run that readers judged differently on real MLflow stores (docs/verdicts.md's
examples of judgement), each as a curve that shows it."""

from __future__ import annotations

import numpy as np

from mlflow_plateau import diagnose_curves
from mlflow_plateau.verdict import Thresholds


def _long_gap_widening(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    e = np.arange(120)
    val = 0.45 + 0.55 * np.exp(-e / 10) + rng.normal(0, 0.006, e.size)
    train = (0.42 + 0.58 * np.exp(-e / 10) - 0.25 * (1 - np.exp(-np.maximum(e - 40, 0) / 50))
             + rng.normal(0, 0.002, e.size))
    return {"loss": train, "val_loss": val}


def test_long_run_whose_gap_grows_several_fold_while_validation_is_flat_is_overfitting():
    d = diagnose_curves(_long_gap_widening())
    assert d.verdict == "overfitting", d.evidence["decided_by"]
    assert "gap grew" in d.evidence["decided_by"]
    # The lower line is the long-window one: with the short-window line it is not overfitting.
    strict = Thresholds(gap_growth_came_long=Thresholds().gap_growth_came)
    assert diagnose_curves(_long_gap_widening(), thresholds=strict).verdict != "overfitting"


def test_a_constant_gap_on_a_long_run_is_still_not_overfitting():
    e = np.arange(120)
    rng = np.random.default_rng(1)
    train = 0.3 + 0.7 * np.exp(-e / 10) + rng.normal(0, 0.002, e.size)
    val = train + 0.1 + rng.normal(0, 0.006, e.size)
    assert diagnose_curves({"loss": train, "val_loss": val}).verdict == "healthy"


def test_long_noisy_curve_with_repeated_swings_is_unstable():
    rng = np.random.default_rng(0)
    n = 400
    val = 0.8 + np.abs(rng.normal(0, 0.35, n))
    train = 0.7 + np.abs(rng.normal(0, 0.35, n))
    assert diagnose_curves({"loss": train, "val_loss": val}).verdict == "unstable"


def test_a_single_early_spike_on_a_short_run_is_not_instability():
    val = [1.0, 0.8, 3.0, 0.6, 0.55, 0.5, 0.48, 0.47, 0.46, 0.46, 0.455, 0.455]
    train = [1.1, 0.7, 1.9, 0.55, 0.5, 0.45, 0.42, 0.40, 0.39, 0.38, 0.37, 0.37]
    assert diagnose_curves({"loss": train, "val_loss": val}).verdict != "unstable"


def test_majority_share_accuracy_with_a_falling_loss_is_not_at_chance():
    """0.766 accuracy throughout (a 77/23 task) while the loss falls far below the constant
    guess's 0.54: the model learns; judge the loss."""
    e = np.arange(30)
    rng = np.random.default_rng(0)
    val_loss = 0.54 * np.exp(-e / 12) + 0.25 + rng.normal(0, 0.004, e.size)
    history = {"loss": 0.54 * np.exp(-e / 10) + 0.22, "val_loss": val_loss,
               "accuracy": np.full(30, 0.77), "val_accuracy": np.full(30, 0.766)}
    d = diagnose_curves(history)
    assert d.verdict == "not_converged", d.evidence["decided_by"]


def test_majority_share_accuracy_with_a_flat_loss_is_still_at_chance():
    e = np.arange(30)
    rng = np.random.default_rng(0)
    val_loss = 0.15 + rng.normal(0, 0.004, e.size)
    history = {"loss": 0.14 + rng.normal(0, 0.002, e.size), "val_loss": val_loss,
               "accuracy": np.full(30, 0.938), "val_accuracy": np.full(30, 0.9375)}
    assert diagnose_curves(history).verdict == "at_chance"


def test_loss_that_blew_up_in_epoch_zero_then_died_is_diverged_not_at_chance():
    k = 10
    history = {"loss": np.r_[500.0, np.full(19, np.log(k) + 0.0003)],
               "val_loss": np.full(20, np.log(k) + 0.0002),
               "accuracy": np.full(20, 0.1), "val_accuracy": np.full(20, 0.1)}
    d = diagnose_curves(history)
    assert d.verdict == "diverged"
    assert d.evidence["diverged_how"] == "dead" and d.evidence["diverged_epoch"] == 0
    assert "lower the learning rate" in " ".join(d.recommendations).lower()
    assert "dead" in d.summary
    # Without the blow-up, the same dead curves are at chance (check the labels).
    calm = dict(history, loss=np.full(20, np.log(k) + 0.0003))
    assert diagnose_curves(calm).verdict == "at_chance"
