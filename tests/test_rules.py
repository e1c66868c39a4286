"""Each verdict rule alone (``rules.py``), on a ``Reading`` measured from a curve that shows it,
and the same rule with custom thresholds (issue 24: tests that say what they guard).

``decide`` applies the rules in order; here every rule is called by itself, so a test names the
rule it guards and fails only when that rule changes.
"""

from __future__ import annotations

import math

import numpy as np

from mlflow_plateau.curves import Curve
from mlflow_plateau.plateau import plateau_epoch
from mlflow_plateau.rules import (
    RuleThresholds,
    decide,
    make_reading,
    rule_at_chance,
    rule_not_converged,
    rule_overfitting,
    rule_underfitting,
    rule_unstable,
)

N = 40
E = np.arange(N, dtype=float)
RNG = np.random.default_rng(7)
TH = RuleThresholds()


def reading(val, train=None, *, mode="min", val_accuracy=None, train_accuracy=None,
            val_loss=None, chance=None, chance_k=None):
    val = np.asarray(val, dtype=float)
    p = plateau_epoch(val, mode=mode, relative_delta=0.01, patience=10)
    t = Curve("loss", np.arange(len(train)), np.asarray(train, float)) if train is not None else None
    return make_reading(Curve("val", np.arange(len(val)), val), mode, p.fitted, p.epoch, t,
                        val_accuracy, train_accuracy, val_loss, chance, chance_k,
                        "given" if chance is not None else "unknown")


def falling(scale=1.0, floor=0.2, tau=6.0, noise=0.0):
    return scale * np.exp(-E / tau) + floor + noise * RNG.standard_normal(N)


# --- at_chance ------------------------------------------------------------------------------

def test_at_chance_fires_on_a_validation_accuracy_that_repeats_one_value():
    acc = np.full(N, 0.1)
    r = reading(acc, 1 - falling(0.5, 0.3), mode="max", val_accuracy=acc)
    f = rule_at_chance(r, TH)
    assert f.fires and f.verdict == "at_chance" and "one" in f.why


def test_at_chance_fires_when_the_best_loss_stays_near_a_known_chance_level():
    val = math.log(10) + 0.01 * RNG.standard_normal(N)
    f = rule_at_chance(reading(val, falling(0.3, 2.2), chance=math.log(10), chance_k=10), TH)
    assert f.fires and f.score >= 1.0


def test_at_chance_does_not_fire_on_a_loss_far_below_chance():
    val = falling(1.5, 0.2, noise=0.005)
    f = rule_at_chance(reading(val, falling(1.5, 0.1), chance=math.log(10), chance_k=10), TH)
    assert not f.fires and f.score < 1.0


def test_a_wider_chance_margin_makes_a_near_chance_loss_at_chance():
    val = 0.82 * math.log(10) + 0.005 * RNG.standard_normal(N)  # 18% below chance
    r = reading(val, falling(0.3, 1.8), chance=math.log(10), chance_k=10)
    assert not rule_at_chance(r, TH).fires
    assert rule_at_chance(r, RuleThresholds(chance_loss_margin=0.25)).fires


# --- unstable -------------------------------------------------------------------------------

def test_unstable_fires_when_noise_is_as_large_as_the_trend():
    val = falling(0.1, 1.0) + 0.2 * RNG.standard_normal(N)
    train = falling(0.1, 0.9) + 0.2 * RNG.standard_normal(N)
    f = rule_unstable(reading(val, train), TH)
    assert f.fires and f.verdict == "unstable"


def test_unstable_does_not_fire_on_a_smooth_fall():
    f = rule_unstable(reading(falling(noise=0.002), falling(1.0, 0.1)), TH)
    assert not f.fires


def test_a_higher_noise_ratio_line_lets_a_noisy_curve_through():
    val = falling(1.0, 0.3) + 0.06 * RNG.standard_normal(N)
    train = falling(1.0, 0.2) + 0.01 * RNG.standard_normal(N)
    r = reading(val, train)
    fired = rule_unstable(r, TH)
    relaxed = rule_unstable(r, RuleThresholds(unstable_noise_ratio=10.0, unstable_jump=10.0,
                                              train_rise=10.0))
    assert relaxed.score < fired.score and not relaxed.fires


# --- overfitting ----------------------------------------------------------------------------

def overfit_curves():
    train = falling(1.0, 0.05, tau=8)
    val = 0.6 * np.exp(-E / 6) + 0.3 + 0.004 * np.maximum(E - 12, 0) ** 1.3
    return val, train


def test_overfitting_fires_when_validation_turns_up_while_training_improves():
    val, train = overfit_curves()
    f = rule_overfitting(reading(val, train), TH)
    assert f.fires and f.verdict == "overfitting"


def test_overfitting_does_not_fire_on_a_constant_gap():
    train = falling(1.0, 0.1, noise=0.002)
    f = rule_overfitting(reading(train + 0.2, train), TH)
    assert not f.fires


def test_overfitting_does_not_fire_without_a_training_curve():
    val, _ = overfit_curves()
    assert not rule_overfitting(reading(val), TH).fires


def test_a_larger_rise_line_takes_a_small_turn_up_out_of_overfitting():
    train = falling(1.0, 0.05, tau=8)
    val = 0.6 * np.exp(-E / 6) + 0.3 + 0.0015 * np.maximum(E - 15, 0)  # ends ~6% above its best
    r = reading(val, train)
    strict = RuleThresholds(overfit_rise=0.5, gap_growth_came=5.0, gap_growth_came_long=5.0)
    assert rule_overfitting(r, TH).score > rule_overfitting(r, strict).score
    assert not rule_overfitting(r, strict).fires


# --- not_converged --------------------------------------------------------------------------

def test_not_converged_fires_when_the_last_epochs_still_set_new_bests():
    val = 1.0 - 0.02 * E + 0.002 * RNG.standard_normal(N)
    f = rule_not_converged(reading(val, val - 0.05), TH)
    assert f.fires and f.verdict == "not_converged"


def test_not_converged_does_not_fire_on_a_plateau():
    f = rule_not_converged(reading(falling(tau=4, noise=0.001), falling(tau=4) - 0.05), TH)
    assert not f.fires


def test_a_lower_tail_gain_line_calls_a_slow_late_creep_still_improving():
    val = falling(1.0, 0.2, tau=10) - 0.0008 * E  # the last 10 epochs gain 4% of how far it came
    val[-1] += 0.01  # ... and the last epoch is not the best: the gain alone decides
    r = reading(val, val - 0.05)
    assert not rule_not_converged(r, TH).fires
    assert rule_not_converged(r, RuleThresholds(tail_gain_came=0.02)).fires


# --- underfitting ---------------------------------------------------------------------------

def test_underfitting_fires_on_a_training_accuracy_that_stays_low():
    val = falling(0.5, 1.2, tau=4, noise=0.001)
    train_acc = 0.55 + 0.1 * (1 - np.exp(-E / 4))
    f = rule_underfitting(reading(val, val - 0.02, train_accuracy=train_acc), TH)
    assert f.fires and f.verdict == "underfitting"


def test_underfitting_does_not_fire_on_a_good_fit():
    val = falling(0.5, 0.1, tau=4, noise=0.001)
    train_acc = 0.97 - 0.4 * np.exp(-E / 4)
    assert not rule_underfitting(reading(val, val - 0.02, train_accuracy=train_acc), TH).fires


def test_a_lower_good_accuracy_line_accepts_a_modest_fit():
    val = falling(0.5, 1.2, tau=4, noise=0.001)
    train_acc = 0.55 + 0.1 * (1 - np.exp(-E / 4))
    r = reading(val, val - 0.02, train_accuracy=train_acc)
    assert not rule_underfitting(r, RuleThresholds(good_accuracy=0.6)).fires


# --- the order ------------------------------------------------------------------------------

def test_no_rule_fires_on_a_healthy_run_and_decide_says_healthy():
    val = falling(1.0, 0.2, tau=4, noise=0.001)
    verdict, chosen, findings = decide(reading(val, val - 0.03), TH)
    assert verdict == "healthy" and chosen is None
    assert [f.verdict for f in findings] == ["at_chance", "unstable", "overfitting",
                                             "not_converged", "underfitting"]
    assert not any(f.fires for f in findings)
