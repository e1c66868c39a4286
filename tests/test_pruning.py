"""forecast_prune_decision (pure) and ForecastPruner on a real Optuna study."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlflow_plateau.pruning import forecast_prune_decision


def _curve(floor: float, n: int, scale: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) + 1.0
    return floor + scale / np.sqrt(t) + rng.normal(0, 0.003, n)


def test_a_hopeless_trial_is_pruned_and_a_winner_is_not():
    bad = _curve(1.0, 20)
    assert forecast_prune_decision(bad, budget_end=59, best_completed=0.5).prune
    good = _curve(0.3, 20)
    assert not forecast_prune_decision(good, budget_end=59, best_completed=0.5).prune


def test_never_before_min_epochs_and_never_without_a_completed_trial():
    bad = _curve(1.0, 40)
    for n in range(1, 10):
        assert not forecast_prune_decision(bad[:n], budget_end=59, best_completed=0.5).prune
    assert not forecast_prune_decision(bad, budget_end=59, best_completed=None).prune


def test_max_mode_mirrors_min():
    acc = 1.0 - _curve(0.5, 20)          # tops out near 0.5
    assert forecast_prune_decision(acc, budget_end=59, best_completed=0.9, mode="max").prune
    assert not forecast_prune_decision(acc, budget_end=59, best_completed=0.3, mode="max").prune


@settings(max_examples=25, deadline=None)
@given(floor=st.floats(0.1, 2.0), seed=st.integers(0, 1000), n=st.integers(10, 40),
       b1=st.floats(0.0, 3.0), b2=st.floats(0.0, 3.0))
def test_monotone_in_the_best_and_never_prunes_a_trial_already_better(floor, seed, n, b1, b2):
    y = _curve(floor, n, seed=seed)
    lo, hi = sorted((b1, b2))
    d_lo = forecast_prune_decision(y, budget_end=80, best_completed=lo)
    d_hi = forecast_prune_decision(y, budget_end=80, best_completed=hi)
    # a better (lower) best prunes at least whenever a worse one does
    assert d_lo.prune or not d_hi.prune
    if y.min() <= hi:
        assert not d_hi.prune
    if d_hi.optimistic is not None and d_hi.optimistic <= hi:
        assert not d_hi.prune


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="finite"):
        forecast_prune_decision([1.0, float("nan")], budget_end=5, best_completed=0.1)
    with pytest.raises(ValueError, match="min_epochs"):
        forecast_prune_decision([1.0], budget_end=5, best_completed=0.1, min_epochs=-1)


def test_optuna_study_prunes_the_hopeless_trials():
    optuna = pytest.importorskip("optuna")
    from mlflow_plateau.optuna_pruner import ForecastPruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    floors = [0.3, 1.0, 0.25, 1.5, 0.9]
    study = optuna.create_study(direction="minimize", pruner=ForecastPruner(budget_end=59),
                                storage=optuna.storages.InMemoryStorage())
    pruned = []
    for i, floor in enumerate(floors):
        trial = study.ask()
        y = _curve(floor, 60, seed=i)
        stopped = False
        for step, v in enumerate(y):
            trial.report(float(v), step)
            if trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                stopped = True
                pruned.append((i, step))
                break
        if not stopped:
            study.tell(trial, float(y.min()))
    # the first trial has nothing to lose against; 1.0, 1.5 and 0.9 cannot beat 0.3
    assert [i for i, _ in pruned] == [1, 3, 4]
    assert all(step < 30 for _, step in pruned)
    assert study.best_trial.number == 2
