"""Replay recorded sweeps trial by trial through real Optuna studies, with and without pruning.

Each sweep in ``benchmarks/data/sweeps/*.csv`` (``record_sweeps.py``) is replayed in ``--orders``
seeded random trial orders. A trial is driven by its recorded ``val_loss`` curve through
``study.ask`` / ``trial.report`` / ``trial.should_prune`` / ``study.tell``; a completed trial's value
is its best ``val_loss``. Pruners: none, ``MedianPruner``, ``PatientPruner(MedianPruner, 5)``,
``ForecastPruner``. Printed per pruner: epochs trained (and the ratio to no pruning), % of replays
whose best trial (the sweep's best over all trials) is kept, median and mean regret (best kept
value minus the sweep's best). Then the cost of one pruning decision on a 300-epoch curve beside
one ``forecast_curve`` call, measured in the same run.

``PatientPruner(MedianPruner, 5)`` prunes nothing here, and that is its real behaviour, not the
replay's: it asks the wrapped ``MedianPruner`` only once the trial's best of its last
``patience + 1`` (6) steps is worse than its best before them, i.e. once the trial has stalled.
The hopeless trials of these sweeps (small learning rates) stall never: their ``val_loss`` still
falls, slowly, at every epoch to the 40th. Only 4 of the 36 trials stall at all (digits trials 14,
16, 17 at epochs 32, 29, 30; linear trial 16 at epoch 28), and each is then among the best 5 of 18
at that step, far below the median, so ``MedianPruner`` keeps it. ``PatientPruner`` guards a good
trial against a noisy step; it does not cut a slow one.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import optuna

from mlflow_plateau.forecast import forecast_curve
from mlflow_plateau.optuna_pruner import ForecastPruner
from mlflow_plateau.pruning import forecast_prune_decision

SWEEPS = Path(__file__).resolve().parent / "data" / "sweeps"


def load(path: Path) -> list[np.ndarray]:
    by: dict[int, list[tuple[int, float]]] = defaultdict(list)
    with path.open() as fh:
        for row in csv.DictReader(fh):
            by[int(row["trial"])].append((int(row["epoch"]), float(row["val_loss"])))
    return [np.array([v for _, v in sorted(by[t])]) for t in sorted(by)]


def replay(curves: list[np.ndarray], order: np.ndarray, pruner: optuna.pruners.BasePruner | None
           ) -> tuple[int, float]:
    study = optuna.create_study(direction="minimize", pruner=pruner or optuna.pruners.NopPruner())
    epochs = 0
    for i in order:
        y = curves[i]
        trial = study.ask()
        pruned = False
        for step, v in enumerate(y):
            epochs += 1
            trial.report(float(v), step)
            if trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                pruned = True
                break
        if not pruned:
            study.tell(trial, float(y.min()))
    return epochs, float(study.best_value)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=10)
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sweeps = {p.stem: load(p) for p in sorted(SWEEPS.glob("*.csv"))}
    makers = {
        "none": lambda n: None,
        "MedianPruner": lambda n: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=5),
        "PatientPruner(Median,5)": lambda n: optuna.pruners.PatientPruner(
            optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=5), patience=5),
        "ForecastPruner": lambda n: ForecastPruner(budget_end=n - 1),
    }
    rows: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for name, curves in sweeps.items():
        best = min(float(c.min()) for c in curves)
        n = len(curves[0])
        for seed in range(args.orders):
            order = np.random.default_rng(seed).permutation(len(curves))
            for label, make in makers.items():
                ep, got = replay(curves, order, make(n))
                rows[label].append((ep, got - best, abs(got - best) <= 1e-12))
        print(f"sweep {name}: {len(curves)} trials x {n} epochs, best val_loss {best:.4g}")
    base = np.mean([r[0] for r in rows["none"]])
    print(f"\n{'pruner':26s} {'epochs':>8s} {'x none':>7s} {'best kept':>10s} {'median regret':>14s}"
          f" {'mean regret':>12s}")
    for label, rs in rows.items():
        ep = np.mean([r[0] for r in rs])
        reg = np.array([r[1] for r in rs])
        kept = 100 * np.mean([r[2] for r in rs])
        print(f"{label:26s} {ep:8.0f} {ep / base:7.2f} {kept:9.0f}%"
              f" {np.median(reg):14.4g} {reg.mean():12.4g}")
    # cost of one decision on a 300-epoch curve, beside one forecast_curve call
    t = np.arange(300) + 1.0
    y = 1.0 + 1 / np.sqrt(t) + np.random.default_rng(0).normal(0, 0.01, 300)
    reps = 20
    s = time.perf_counter()
    for _ in range(reps):
        forecast_curve(y)
    fc = (time.perf_counter() - s) / reps
    s = time.perf_counter()
    for _ in range(reps):
        forecast_prune_decision(y, budget_end=400, best_completed=0.5)
    dc = (time.perf_counter() - s) / reps
    print(f"\none decision on a 300-epoch curve: {1000 * dc:.2f} ms; one forecast_curve: {1000 * fc:.2f} ms"
          f" (ratio {dc / fc:.2f})")


if __name__ == "__main__":
    main()
