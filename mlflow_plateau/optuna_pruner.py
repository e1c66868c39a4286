"""``ForecastPruner``: an Optuna pruner that prunes a trial whose forecast cannot beat the best trial.

A thin face over ``pruning.forecast_prune_decision``: at each ``trial.should_prune()`` it reads
the trial's intermediate values (one per step, step = epoch), the best value of the study's
completed trials, and asks the pure decision. Optuna is an optional extra
(``pip install mlflow-plateau[optuna]``); only this module imports it, and ``mlflow_plateau``
does not import this module, so ``import mlflow_plateau`` works without optuna.
"""

from __future__ import annotations

from typing import Any

try:
    import optuna
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("ForecastPruner needs optuna: pip install 'mlflow-plateau[optuna]'") from e

from .pruning import forecast_prune_decision


class ForecastPruner(optuna.pruners.BasePruner):
    """Prune when the optimistic end of the trial's forecast at ``budget_end`` cannot beat the best.

    ``budget_end`` is the last step a trial would report (e.g. ``epochs - 1``); ``min_epochs``
    steps are always trained; ``level`` is the forecast interval's level (see ``pruning``).
    """

    def __init__(self, budget_end: int, *, min_epochs: int = 10, level: float = 0.9) -> None:
        self.budget_end = int(budget_end)
        self.min_epochs = min_epochs
        self.level = level

    def prune(self, study: Any, trial: Any) -> bool:
        values = trial.intermediate_values
        if not values:
            return False
        steps = sorted(values)
        ys = [values[s] for s in steps]
        if any(y is None or y != y for y in ys):  # a NaN step: leave it to the objective
            return False
        mode = "min" if study.direction == optuna.study.StudyDirection.MINIMIZE else "max"
        done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        finals = [t.value for t in done if t.value is not None]
        best = (min(finals) if mode == "min" else max(finals)) if finals else None
        return forecast_prune_decision(ys, budget_end=self.budget_end, best_completed=best, mode=mode,
                                       min_epochs=self.min_epochs, level=self.level,
                                       epochs=steps).prune


__all__ = ["ForecastPruner"]
