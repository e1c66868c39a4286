"""Build a reproducible MLflow tracking store of many Keras-like runs, for the speed benchmarks.

Each run has ``--epochs`` points of ``loss``, ``val_loss``, ``accuracy`` and ``val_accuracy`` at
steps 0..epochs-1 (the names and steps ``mlflow.keras.autolog`` uses), params ``train_size`` and
``learning_rate``, and a ``scenario`` tag. Curves are drawn from a seeded generator: exponential
decays with noise, a quarter of them overfitting (validation turning up), a few still improving.

    python benchmarks/make_store.py --runs 1000 --epochs 100 --uri sqlite:////tmp/bench/mlflow.db

One ``log_batch`` call per run keeps building fast (~10 ms a run on SQLite).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def run_curves(rng: np.random.Generator, epochs: int) -> dict[str, np.ndarray]:
    e = np.arange(epochs, dtype=np.float64)
    tau = rng.uniform(3, 30)
    floor = rng.uniform(0.05, 0.4)
    train = 0.7 * np.exp(-e / tau) + floor * 0.8 + rng.normal(0, 0.004, epochs)
    val = 0.7 * np.exp(-e / tau) + floor + rng.normal(0, rng.uniform(0.002, 0.02), epochs)
    if rng.random() < 0.25:  # overfitting: validation turns up after a while
        val += rng.uniform(0.001, 0.005) * np.maximum(e - rng.uniform(0.2, 0.6) * epochs, 0)
    acc = np.clip(1 - train, 0, 1)
    val_acc = np.clip(1 - val, 0, 1)
    return {"loss": train, "val_loss": val, "accuracy": acc, "val_accuracy": val_acc}


def build_store(uri: str, runs: int, epochs: int, experiment: str, seed: int = 0,
                quiet: bool = False) -> list[str]:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    existing = client.get_experiment_by_name(experiment)
    exp_id = existing.experiment_id if existing else client.create_experiment(experiment)
    rng = np.random.default_rng(seed)
    run_ids = []
    t0 = time.perf_counter()
    base_ts = 1_700_000_000_000
    for i in range(runs):
        run = client.create_run(exp_id, run_name=f"bench-{i:05d}")
        curves = run_curves(rng, epochs)
        metrics = [Metric(name, float(v), base_ts + step * 1000, step)
                   for name, values in curves.items() for step, v in enumerate(values)]
        params = [Param("train_size", str(int(rng.choice([1000, 2000, 4000, 8000])))),
                  Param("learning_rate", f"{rng.choice([1e-3, 3e-4, 1e-4]):g}")]
        client.log_batch(run.info.run_id, metrics=metrics, params=params,
                         tags=[RunTag("scenario", "benchmark")])
        client.set_terminated(run.info.run_id)
        run_ids.append(run.info.run_id)
        if not quiet and (i + 1) % max(1, runs // 10) == 0:
            print(f"  {i + 1}/{runs} runs ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return run_ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--uri", required=True, help="tracking URI, e.g. sqlite:////tmp/b/mlflow.db")
    parser.add_argument("--experiment", default="plateau-benchmark")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    ids = build_store(args.uri, args.runs, args.epochs, args.experiment, args.seed)
    print(f"{len(ids)} runs x {args.epochs} epochs x 4 metrics in {args.uri} "
          f"({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
