"""Replay forecast stopping against Keras's EarlyStopping on real training logs.

Data: the same curves as ``forecast_backtest.py`` (the monitored validation curve of every real
log of ``benchmarks/data/real_logs/`` with 40 finite epochs or more; ``--data DIR``), or with
``--sweeps`` every trial of the recorded sweeps of ``benchmarks/data/sweeps/`` (``val_loss``, 40
epochs; a second set the rule was not chosen on). Each curve is replayed epoch by epoch, its
length being the epoch budget (``budget_end`` = its last epoch):

- ``EarlyStopping(patience=5)`` and ``(patience=10)``: ``plateau.early_stopping_replay``, Keras's
  rule exactly (``min_delta=0``);
- ``forecast``: ``stopping.forecast_stopping_replay`` with ``ForecastStopping``'s defaults,
  ``patience=10``, ``relative_delta=0.01`` (a gain must be at least 1% of the best so far),
  ``level=0.8``: it stops when the optimistic end of the forecast's interval promises less than
  that by the end of the budget, or where patience 10 would.

For each: the epochs trained (the stop epoch + 1, or all of them), and the regret: ``|log(best
at the stop / best over the whole run)|`` (0 when the run's best was already reached). Printed:
the total and median epochs trained, the saving against patience 10, the median and mean regret,
and how often each method lost more than 1% (regret > 0.01). Two reference rows, not methods:
``oracle`` stops every run at its own best epoch (the fewest epochs any rule can train with no
regret on any run), and the epochs patience 10 trains after its best (the waiting that any
earlier stop on a plateau could save).

Then the plane of (epochs trained over all curves, mean regret): the patience family,
EarlyStopping with patience 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, and its lower envelope (the points
no other patience beats on both axes, joined by straight lines); and ForecastStopping at patience
10 (its defaults) and, moved, 5 and 20, each marked ``on/below`` or ``above`` the envelope's mean
regret at the same total epochs (linear interpolation; left of the envelope, ``on/below`` when it
beats the fewest-epochs patience on both axes, otherwise ``beyond``).

``--sweep`` also prints the trade-off forecast stopping offers: epochs against regret for
``relative_delta`` in 0.01-0.1 and ``level`` 0.5/0.8 (how many runs keep zero regret decides the
median). Run ``python benchmarks/stopping_replay.py [--data DIR | --sweeps] [--sweep]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from forecast_backtest import DATA_DIR, load_curves

from mlflow_plateau.curves import Curve
from mlflow_plateau.plateau import early_stopping_replay
from mlflow_plateau.stopping import forecast_stopping_replay

SWEEPS = Path(__file__).resolve().parent / "data" / "sweeps"


def sweep_curves(folder: Path = SWEEPS) -> dict:
    """Every trial of the recorded sweeps (``record_sweeps.py``) as a ``val_loss`` curve."""
    out = {}
    for path in sorted(folder.glob("*.csv")):
        frame = pd.read_csv(path).sort_values(["trial", "epoch"])
        for trial, part in frame.groupby("trial"):
            out[f"{path.stem} trial {trial}"] = (Curve.from_points(
                "val_loss", part["epoch"].tolist(), part["val_loss"].tolist()), "min")
    return out


def _regret(best_at_stop: float, best_all: float) -> float:
    if best_at_stop > 0 and best_all > 0:
        return abs(float(np.log(best_at_stop / best_all)))
    return abs(best_at_stop - best_all) / max(abs(best_all), 1e-12)


def replay(curves: dict) -> pd.DataFrame:
    rows = []
    for name, (curve, mode) in curves.items():
        y = curve.values
        sign = 1.0 if mode == "min" else -1.0
        best_all = float(sign * np.min(sign * y))
        results = {f"patience {p}": early_stopping_replay(y, mode=mode, patience=p)
                   for p in (5, 10)}
        results["forecast"] = forecast_stopping_replay(y, mode=mode, patience=10,
                                                       relative_delta=0.01, level=0.8).result
        for method, r in results.items():
            stop = r.stopped_epoch
            trained = y.size if stop is None else stop + 1
            best = float(sign * np.min(sign * y[:trained]))
            rows.append({"file": name, "method": method, "epochs": trained, "n": y.size,
                         "regret": _regret(best, best_all), "best_epoch": r.best_epoch})
        rows.append({"file": name, "method": "oracle", "epochs": int(np.argmin(sign * y)) + 1,
                     "n": y.size, "regret": 0.0, "best_epoch": int(np.argmin(sign * y))})
    return pd.DataFrame(rows)


def sweep(curves: dict, ref: int) -> None:
    """Epochs against regret of forecast stopping over its two knobs (patience 10 throughout)."""
    print(f"\n{'rel_delta':>9} {'level':>5} {'epochs':>7} {'vs p10':>7} {'regret med':>11} "
          f"{'mean':>7} {'zero':>5}")
    for relative_delta in (0.01, 0.02, 0.05, 0.1):
        for level in (0.5, 0.8):
            epochs, regrets = 0, []
            for curve, mode in curves.values():
                y = curve.values
                sign = 1.0 if mode == "min" else -1.0
                r = forecast_stopping_replay(y, mode=mode, patience=10,
                                             relative_delta=relative_delta, level=level).result
                trained = y.size if r.stopped_epoch is None else r.stopped_epoch + 1
                epochs += trained
                regrets.append(_regret(float(sign * np.min(sign * y[:trained])),
                                       float(sign * np.min(sign * y))))
            regrets_arr = np.asarray(regrets)
            print(f"{relative_delta:>9.2f} {level:>5.1f} {epochs:>7} {epochs / ref - 1:>+7.0%} "
                  f"{np.median(regrets_arr):>11.4f} {regrets_arr.mean():>7.4f} "
                  f"{int(np.sum(regrets_arr == 0)):>5}")


PATIENCES = (2, 3, 4, 5, 6, 8, 10, 12, 15, 20)


def stopped_point(curves: dict, stopper) -> tuple[int, float]:
    """(epochs trained over all curves, mean regret) of ``stopper(y, mode) -> ReplayResult``."""
    epochs, regrets = 0, []
    for curve, mode in curves.values():
        y = curve.values
        sign = 1.0 if mode == "min" else -1.0
        stop = stopper(y, mode).stopped_epoch
        trained = y.size if stop is None else stop + 1
        epochs += trained
        regrets.append(_regret(float(sign * np.min(sign * y[:trained])),
                               float(sign * np.min(sign * y))))
    return epochs, float(np.mean(regrets))


def lower_envelope(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """The points no other point beats on both axes (fewer or as many epochs, lower or equal
    regret), by epochs: the best regret the family offers for a given number of epochs."""
    out: list[tuple[int, float]] = []
    for e, r in sorted(points):
        if out and r >= out[-1][1]:
            continue  # a point with fewer epochs already does at least as well
        while out and out[-1][0] == e:
            out.pop()
        out.append((e, r))
    return out


def envelope_regret(envelope: list[tuple[int, float]], epochs: float) -> float | None:
    """The envelope's mean regret at ``epochs`` by linear interpolation (None outside it)."""
    es = [e for e, _ in envelope]
    if not es[0] <= epochs <= es[-1]:
        return None
    return float(np.interp(epochs, es, [r for _, r in envelope]))


def where(envelope: list[tuple[int, float]], epochs: int, regret: float) -> str:
    """"on/below" or "above" the envelope at ``epochs``; left of it, "on/below" when the point
    beats the family's fewest-epochs point (fewer epochs, no more regret); else "beyond"."""
    ref = envelope_regret(envelope, epochs)
    if ref is not None:
        return "on/below" if regret <= ref + 1e-12 else "above"
    if epochs < envelope[0][0] and regret <= envelope[0][1]:
        return "on/below"
    return "beyond"


def frontier(curves: dict) -> None:
    """The patience family against forecast stopping on the (epochs trained, mean regret) plane."""
    family = {p: stopped_point(curves, lambda y, mode, p=p: early_stopping_replay(
        y, mode=mode, patience=p)) for p in PATIENCES}
    envelope = lower_envelope(list(family.values()))
    print("\npatience family, EarlyStopping(patience=p) (epochs trained in all, mean regret):")
    print("  " + "  ".join(f"p{p}: ({e}, {r:.4f})" for p, (e, r) in family.items()))
    print(f"{'ForecastStopping':>34} {'epochs':>7} {'mean regret':>12} {'patience curve':>15} "
          f"{'where':>8}")
    for patience in (5, 10, 20):  # 10: the callback's defaults; the others: its patience moved
        e, r = stopped_point(curves, lambda y, mode, p=patience: forecast_stopping_replay(
            y, mode=mode, patience=p).result)
        ref = envelope_regret(envelope, e)
        label = f"patience={patience}" + (" (defaults)" if patience == 10 else "")
        curve_at = "-" if ref is None else f"{ref:.4f}"
        print(f"{label:>34} {e:>7} {r:>12.4f} {curve_at:>15} {where(envelope, e, r):>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    parser.add_argument("--sweep", action="store_true",
                        help="also print epochs against regret over relative_delta and level")
    parser.add_argument("--sweeps", action="store_true",
                        help="replay the trials of the recorded sweeps instead of --data")
    args = parser.parse_args()
    curves = sweep_curves() if args.sweeps else load_curves(args.data)
    if args.sweeps:
        args.data = SWEEPS
    start = time.perf_counter()
    frame = replay(curves)
    seconds = time.perf_counter() - start
    total = int(sum(len(c) for c, _ in curves.values()))
    print(f"{len(curves)} curves, {total} epochs in all, from {args.data}")
    ref = frame[frame["method"] == "patience 10"]["epochs"].sum()
    print(f"{'method':>12} {'epochs':>7} {'median':>7} {'vs p10':>7} {'regret med':>11} "
          f"{'mean':>7} {'>1%':>5}")
    for method in ("patience 5", "patience 10", "forecast", "oracle"):
        part = frame[frame["method"] == method]
        print(f"{method:>12} {int(part['epochs'].sum()):>7} {part['epochs'].median():>7.0f} "
              f"{part['epochs'].sum() / ref - 1:>+7.0%} {part['regret'].median():>11.4f} "
              f"{part['regret'].mean():>7.4f} {(part['regret'] > 0.01).mean():>5.0%}")
    p10 = frame[frame["method"] == "patience 10"]
    waiting = int((p10["epochs"] - p10["best_epoch"] - 1).sum())
    oracle = frame[frame["method"] == "oracle"]["epochs"].sum() / ref - 1
    print(f"patience 10 trains {waiting} epochs after its best ({waiting / ref:.0%} of its "
          f"epochs); the oracle, stopping each run at its own best, trains {oracle:+.0%} against "
          f"patience 10 (patience 10 stops some runs before their best)")
    print(f"replayed in {seconds:.1f} s")
    frontier(curves)
    if args.sweep:
        sweep(curves, int(ref))


if __name__ == "__main__":
    main()
