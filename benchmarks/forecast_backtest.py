"""Backtest ``forecast_curve`` on real training logs: cut each curve early, predict its final best.

Data: the real logs of ``benchmarks/data/real_logs/`` (``--data DIR``) with a monitored validation
curve of at least 40 finite epochs. Each file is read with ``curves.history_curves`` (CSV through
``pandas.read_csv``, JSON as a mapping); the monitor is the one ``diagnose_curves`` picks
(``verdict._pick_monitor``: the validation loss), and only validation monitors are kept. Each curve
is cut at 25% and at 50% of its epochs; from the cut, every method predicts the best value the run
reaches by its final epoch (the best-so-far is part of every prediction: no method may predict a
best worse than the one already seen):

- ``forecast``: ``forecast_curve(...).best(final_epoch)``, and its 80% ``best_interval``;
- ``last value``: the best value so far (LCDB's hard baseline);
- ``pow3``: a single ``c + a t^-alpha`` fit by ``scipy.optimize.curve_fit`` on the cut curve;
- ``log-log line``: a straight line of ``log value`` against ``log t`` by least squares.

Printed: the median ``|log(predicted / actual)|`` of each method at each cut, the ratio of the
forecast's to the best baseline's, the coverage of the forecast's 80% interval, and the median
time of one ``forecast_curve`` call on a 300-epoch curve (wall clock and CPU time) measured in the
same run against a ``numpy.polyfit`` of the same curve.
Run ``python benchmarks/forecast_backtest.py [--data DIR]``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import curve_fit

from mlflow_plateau.curves import Curve, finite_prefix, history_curves, metric_mode, metric_role
from mlflow_plateau.forecast import forecast_curve
from mlflow_plateau.verdict import _pick_monitor

DATA_DIR = Path(__file__).resolve().parent / "data" / "real_logs"
MIN_EPOCHS = 40
CUTS = (0.25, 0.5)


def load_curves(folder: Path, min_epochs: int = MIN_EPOCHS) -> dict[str, tuple[Curve, str]]:
    """file name -> (finite monitored validation curve, mode), for curves of min_epochs or more."""
    out = {}
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".csv", ".json") or path.name == "labels.json":
            continue
        try:
            raw = pd.read_csv(path) if path.suffix == ".csv" else json.loads(path.read_text())
            curves = history_curves(raw)
            monitor, _ = _pick_monitor(curves, None)
            mode = metric_mode(monitor)
        except ValueError:
            continue
        role = metric_role(monitor)
        curve, _ = finite_prefix(curves[monitor])
        if role is None or role[0] != "val" or len(curve) < min_epochs:
            continue
        out[path.name] = (curve, mode)
    return out


def _pow3(t: np.ndarray, c: float, a: float, alpha: float) -> np.ndarray:
    return c + a * t ** -alpha


def pow3_best(z: np.ndarray, t: np.ndarray, t_final: float) -> float:
    """Best-so-far or a single pow3 fit's value at the final epoch, in z (lower is better)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p, _ = curve_fit(_pow3, t, z, p0=(float(z.min()), float(z[0] - z.min()) or 1.0, 0.5),
                             maxfev=2000)
        pred = float(_pow3(np.array([t_final]), *p)[0])
    except (RuntimeError, ValueError):
        pred = float(z.min())
    return min(float(z.min()), pred) if np.isfinite(pred) else float(z.min())


def loglog_best(z: np.ndarray, t: np.ndarray, t_final: float) -> float:
    """Best-so-far or a straight line in log-log space at the final epoch (z > 0 only)."""
    if np.any(z <= 0):
        return float(z.min())
    slope, icpt = np.polyfit(np.log(t), np.log(z), 1)
    return min(float(z.min()), float(np.exp(icpt + slope * np.log(t_final))))


def backtest(curves: dict[str, tuple[Curve, str]]) -> pd.DataFrame:
    rows = []
    for name, (curve, mode) in curves.items():
        sign = 1.0 if mode == "min" else -1.0
        y, x = curve.values, curve.epochs
        truth = float(np.min(sign * y)) * sign
        for cut in CUTS:
            m = max(5, round(cut * y.size))
            ys, xs = y[:m], x[:m]
            z = sign * ys
            t = (xs - xs[0] + 1).astype(float)
            t_final = float(x[-1] - xs[0] + 1)
            f = forecast_curve(ys, epochs=xs, mode=mode)
            lo, hi = f.best_interval(float(x[-1]))
            preds = {"forecast": f.best(float(x[-1])), "last value": sign * float(z.min()),
                     "pow3": sign * pow3_best(z, t, t_final),
                     "log-log line": sign * loglog_best(z, t, t_final)}
            row = {"file": name, "cut": cut, "truth": truth,
                   "covered": bool(lo - 1e-12 <= truth <= hi + 1e-12)}
            for method, pred in preds.items():
                ok = pred > 0 and truth > 0
                row[method] = abs(np.log(pred / truth)) if ok else abs(pred - truth)
            rows.append(row)
    return pd.DataFrame(rows)


def speed(repeats: int = 30) -> dict[str, float]:
    """Median seconds of forecast_curve and of np.polyfit on one noisy 300-epoch curve: wall
    clock and CPU time of this process (the CPU time holds on a machine busy with other work)."""
    rng = np.random.default_rng(0)
    t = np.arange(1, 301, dtype=float)
    y = 0.3 + 2.0 * t ** -0.7 + rng.normal(0, 0.01, t.size)
    forecast_curve(y)
    ours, ours_cpu, base = [], [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        forecast_curve(y)
        ours.append(time.perf_counter() - start)
        ours_cpu.append(time.process_time() - cpu)
        start = time.perf_counter()
        np.polyfit(np.log(t), np.log(y), 1)
        base.append(time.perf_counter() - start)
    return {"wall": float(np.median(ours)), "cpu": float(np.median(ours_cpu)),
            "polyfit": float(np.median(base))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    args = parser.parse_args()
    curves = load_curves(args.data)
    frame = backtest(curves)
    methods = ["forecast", "last value", "pow3", "log-log line"]
    print(f"{len(curves)} curves of >= {MIN_EPOCHS} epochs from {args.data}")
    print(f"{'cut':>5} " + " ".join(f"{m:>13}" for m in methods)
          + f" {'ratio':>7} {'coverage80':>10}")
    for cut in CUTS:
        part = frame[frame["cut"] == cut]
        med = {m: float(part[m].median()) for m in methods}
        best_base = min(med[m] for m in methods[1:])
        ratio = med["forecast"] / best_base if best_base > 0 else float("inf")
        print(f"{cut:>5.0%} " + " ".join(f"{med[m]:>13.4f}" for m in methods)
              + f" {ratio:>6.2f}x {part['covered'].mean():>9.0%}")
    cost = speed()
    print(f"forecast_curve on 300 epochs: {1000 * cost['wall']:.1f} ms wall, "
          f"{1000 * cost['cpu']:.1f} ms CPU ({cost['wall'] / cost['polyfit']:.0f}x one "
          f"np.polyfit of the same curve, {1e6 * cost['polyfit']:.0f} us)")


if __name__ == "__main__":
    main()
