"""How close is ``plateau_epoch`` to the true plateau, against Keras's rule and a knee detector?

Synthetic validation-loss curves of several shapes (exponential and power-law decay, decay then
flat, decay then rising) get Gaussian noise of 0, 0.5, 1, 2 and 5% of the curve's range. Every
method gets the same user tolerance ``min_delta`` (1% of the range by default).

Truth for each curve: the record rule (EarlyStopping's rule with unbounded patience) on the
noise-free curve with tolerance ``max(min_delta, 2 sigma)``, sigma being the noise the generator
added: an improvement smaller than twice the noise is not one a person can see in the curve. The
strict truth (tolerance = min_delta) is printed too.

Methods: ``plateau_epoch`` (ours); the best epoch of a Keras ``EarlyStopping`` replay with
patience 5 and 10 on the noisy curve; the Kneedle knee (``kneed``, convex/decreasing, on the noisy
curve; the last epoch when it finds none). Prints the mean absolute error in epochs per noise level
and the ratio ours / best baseline. Target: exact at noise 0, at most 0.9x the best baseline at
every noise level; aim for 0.5x.

    python benchmarks/plateau_accuracy.py [--reps 20] [--epochs 100] [--min-delta 0.01]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from mlflow_plateau.plateau import early_stopping_replay, plateau_epoch

NOISE_LEVELS = (0.0, 0.005, 0.01, 0.02, 0.05)


def shapes(n: int) -> dict[str, np.ndarray]:
    """Noise-free curves on epochs 0..n-1, each from 1.0 down towards ~0.1-0.3."""
    e = np.arange(n, dtype=np.float64)
    out = {}
    for tau in (4.0, 10.0, 25.0):
        out[f"exp tau={tau:g}"] = 0.9 * np.exp(-e / tau) + 0.1
    for alpha in (0.5, 1.0, 2.0):
        out[f"power a={alpha:g}"] = 0.9 * (1 + e) ** -alpha + 0.1
    for stop in (0.3, 0.6):
        e0 = stop * n
        out[f"decay-flat at {stop:g}n"] = 0.9 * (1 - np.minimum(e, e0) / e0) ** 2 + 0.1
    for rise in (0.003, 0.01):
        out[f"decay-rise {rise:g}/ep"] = 0.8 * np.exp(-e / 8.0) + 0.2 + rise * np.maximum(e - 25, 0)
    out["U quadratic"] = 0.5 * ((e - 0.45 * n) / (0.45 * n)) ** 2 + 0.2
    return out


def record_rule(values: np.ndarray, tol: float) -> int:
    best, best_epoch = values[0], 0
    for i in range(1, values.size):
        if values[i] < best - tol:
            best, best_epoch = values[i], i
    return best_epoch


def kneedle(values: np.ndarray) -> int:
    from kneed import KneeLocator

    x = np.arange(values.size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        knee = KneeLocator(x, values, curve="convex", direction="decreasing").knee
    return int(knee) if knee is not None else values.size - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=20, help="noisy draws per shape and level")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--min-delta", type=float, default=0.01,
                        help="user tolerance as a fraction of the curve's range")
    args = parser.parse_args()

    rng = np.random.default_rng(12345)
    methods = ("ours", "keras p=5", "keras p=10", "kneedle")
    errors = {(lvl, m): [] for lvl in NOISE_LEVELS for m in methods}
    strict = {(lvl, m): [] for lvl in NOISE_LEVELS for m in methods}
    elapsed = 0.0
    for name, clean in shapes(args.epochs).items():
        span = float(np.ptp(clean))
        md = args.min_delta * span
        for lvl in NOISE_LEVELS:
            sigma = lvl * span
            truth = record_rule(clean, max(md, 2 * sigma))
            truth_strict = record_rule(clean, md)
            for _ in range(args.reps if lvl > 0 else 1):
                y = clean + rng.normal(0.0, sigma, clean.size) if sigma > 0 else clean.copy()
                t0 = time.perf_counter()
                ours = plateau_epoch(y, min_delta=md, relative_delta=None).epoch
                elapsed += time.perf_counter() - t0
                est = {
                    "ours": ours,
                    "keras p=5": early_stopping_replay(y, min_delta=md, patience=5).best_epoch,
                    "keras p=10": early_stopping_replay(y, min_delta=md, patience=10).best_epoch,
                    "kneedle": kneedle(y),
                }
                for m, v in est.items():
                    errors[(lvl, m)].append(abs(v - truth))
                    strict[(lvl, m)].append(abs(v - truth_strict))
                if lvl == 0 and ours != truth:
                    print(f"  not exact at noise 0: {name}: ours {ours}, truth {truth}")

    def table(title: str, errs: dict) -> None:
        print(f"\n{title}")
        print(f"{'noise':>6} " + " ".join(f"{m:>11}" for m in methods) + f" {'ours/best':>10}")
        for lvl in NOISE_LEVELS:
            maes = {m: float(np.mean(errs[(lvl, m)])) for m in methods}
            best = min(v for m, v in maes.items() if m != "ours")
            ratio = maes["ours"] / best if best > 0 else (0.0 if maes["ours"] == 0 else float("inf"))
            print(f"{100 * lvl:>5.1f}% " + " ".join(f"{maes[m]:>11.2f}" for m in methods)
                  + f" {ratio:>9.2f}x")

    print(f"{len(shapes(args.epochs))} shapes x {len(NOISE_LEVELS)} noise levels, {args.reps} draws "
          f"per noisy level, {args.epochs} epochs, min_delta = {args.min_delta:g} x range")
    table("Mean absolute error in epochs (truth: record rule, tolerance max(min_delta, 2 sigma))",
          errors)
    table("Against the strict truth (tolerance = min_delta)", strict)
    calls = sum(len(v) for (lvl, m), v in errors.items() if m == "ours")
    print(f"\nplateau_epoch: {1e3 * elapsed / calls:.2f} ms per curve")


if __name__ == "__main__":
    main()
