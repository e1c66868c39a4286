"""How fast ``mlflow-plateau scaling`` fits a sweep: many groups of runs at several data sizes.

    python benchmarks/scaling_speed.py                       # 500 groups x 6 sizes = 3,000 runs
    python benchmarks/scaling_speed.py --groups 100 --store /tmp/scaling-bench

The store (built once under ``--store`` and reused; SQLite, written with ``synchronous=OFF`` as a
throwaway fixture) holds ``--groups`` groups (param ``model``) of runs at ``--sizes`` training sizes
(param ``train_size``, 500 to 16,000), each with a ``val_loss`` history of ``--epochs`` epochs that
falls to a noisy power law of its size. Measured in one run on the same store, so the ratios compare
like with like (absolute times on a shared machine are noise):

1. the floor: listing the experiment's runs with their params and final metrics (``search_runs``,
   all pages) — what any tool needs to read before it can group runs by size;
2. ``mlflow-plateau scaling --dry-run`` (read, group, fit every group with its bootstrap interval);
3. ``mlflow-plateau scaling`` (the same, and log a summary run per group with its ``fit.json`` and
   ``learning_curve.png``, and tag the members), on a fresh copy of the store.

Both commands run in this process through ``mlflow_plateau.cli.main`` after their imports are
loaded, so none of them pays Python's start-up. 1 and 2 alternate ``--repeat`` times (3); the
medians are printed, and the median of the paired ratios. Target: the dry run within 2x of the
floor.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

EXPERIMENT = "scaling-benchmark"
SIZES = (500, 1000, 2000, 4000, 8000, 16000)

_BUILD = textwrap.dedent("""
    import numpy as np, sqlalchemy
    @sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "connect")
    def _fast(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA synchronous=OFF")
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient
    client = MlflowClient(tracking_uri={uri!r})
    exp = client.create_experiment({exp!r}, artifact_location={artifacts!r})
    rng = np.random.default_rng(0)
    sizes = {sizes!r}
    for g in range({groups}):
        a, b, c = rng.uniform(2, 20), rng.uniform(0.1, 0.8), rng.uniform(0.02, 0.3)
        for n in sizes:
            final = (a * n ** -b + c) * np.exp(rng.normal(0, 0.03))
            e = np.arange({epochs})
            curve = final + 0.5 * np.exp(-e / 3) + rng.normal(0, 0.002, e.size)
            run = client.create_run(exp, run_name=f"g{{g:04d}}-n{{n}}")
            client.log_batch(run.info.run_id, metrics=[
                Metric("val_loss", float(v), 1_700_000_000_000 + i, i) for i, v in enumerate(curve)],
                params=[Param("train_size", str(n)), Param("model", f"m{{g:04d}}"),
                        Param("learning_rate", "0.001")])
            client.set_terminated(run.info.run_id)
""")


def build(folder: Path, groups: int, sizes: int, epochs: int) -> Path:
    """``folder/pristine.db`` with the sweep (built once; reused when it has it)."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "pristine.db"
    marker = folder / f"built-{groups}x{sizes}x{epochs}"
    if db.exists() and marker.exists():
        return db
    for stale in (db, *folder.glob("built-*")):
        stale.unlink(missing_ok=True)
    shutil.rmtree(folder / "artifacts", ignore_errors=True)
    t0 = time.perf_counter()
    code = _BUILD.format(uri=f"sqlite:///{db}", exp=EXPERIMENT, groups=groups,
                         sizes=SIZES[:sizes], epochs=epochs,
                         artifacts=(folder / "artifacts").as_uri())
    subprocess.run([sys.executable, "-c", code], check=True, cwd=folder)
    marker.touch()
    print(f"built {groups} groups x {sizes} sizes in {time.perf_counter() - t0:.0f} s",
          file=sys.stderr)
    return db


def fresh_copy(pristine: Path, name: str) -> str:
    target = pristine.with_name(name)
    shutil.copyfile(pristine, target)
    shutil.rmtree(pristine.parent / "artifacts", ignore_errors=True)
    return f"sqlite:///{target}"


def read_floor(uri: str) -> int:
    """Every run of the experiment with its params and final metrics: ``search_runs``, all pages."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    count, token = 0, None
    while True:
        page = client.search_runs([exp_id], max_results=1000, page_token=token)
        count += sum(1 for r in page if "train_size" in r.data.params and r.data.metrics)
        token = page.token
        if not token:
            return count


def scaling(uri: str, *extra: str) -> int:
    """``mlflow-plateau scaling`` in this process, its output discarded; returns its exit code."""
    from mlflow_plateau.cli import main

    argv = ["scaling", "--experiment-name", EXPERIMENT, "--size-param", "train_size",
            "--tracking-uri", uri, "--json", *extra]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(argv)


def timed(fn, *args) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--sizes", type=int, default=6, choices=range(3, len(SIZES) + 1))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--store", type=Path, default=None,
                        help="folder for the store (kept and reused; default: a temp folder)")
    parser.add_argument("--no-log", action="store_true", help="skip the logging command")
    parser.add_argument("--repeat", type=int, default=3,
                        help="alternated floor / dry-run pairs; medians are printed (default 3)")
    args = parser.parse_args()

    tmp = None
    if args.store is None:
        tmp = tempfile.TemporaryDirectory(prefix="scaling-bench-")
        args.store = Path(tmp.name)
    folder = (args.store / f"sqlite-{args.groups}x{args.sizes}x{args.epochs}").resolve()
    pristine = build(folder, args.groups, args.sizes, args.epochs)
    os.chdir(folder)

    uri = f"sqlite:///{pristine}"
    import mlflow_plateau.cli  # imports, once, outside the timings
    import mlflow_plateau.report
    import mlflow_plateau.tracking  # noqa: F401

    read_floor(uri)  # warm the store's engine and the OS cache
    runs = args.groups * args.sizes
    floors, drys = [], []
    for _ in range(args.repeat):  # alternated, so drift on a shared machine hits both alike
        t_floor, counted = timed(read_floor, uri)
        assert counted == runs, (counted, runs)
        t_dry, rc_dry = timed(scaling, uri, "--dry-run")
        floors.append(t_floor)
        drys.append(t_dry)
    ratios = sorted(d / f for d, f in zip(drys, floors, strict=True))
    t_floor, t_dry = statistics.median(floors), statistics.median(drys)
    t_log, rc_log = (None, None) if args.no_log else timed(scaling, fresh_copy(pristine, "log.db"))

    import mlflow

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs (load {load:.1f}), "
          f"Python {platform.python_version()}, MLflow {mlflow.__version__}")
    print(f"store: SQLite, {args.groups} groups x {args.sizes} sizes = {runs:,} runs x "
          f"{args.epochs} epochs of val_loss\n")
    g = args.groups
    print(f"  medians of {args.repeat} runs each")
    print(f"  1. floor: search_runs, params + final metrics   {t_floor:8.2f} s  "
          f"{1000 * t_floor / g:7.2f} ms/group")
    print(f"  2. scaling --dry-run (exit {rc_dry})                {t_dry:8.2f} s  "
          f"{1000 * t_dry / g:7.2f} ms/group")
    if t_log is not None:
        print(f"  3. scaling, logging (exit {rc_log})                 {t_log:8.2f} s  "
              f"{1000 * t_log / g:7.2f} ms/group")
    ratio = statistics.median(ratios)
    print(f"\n  dry run vs floor    {ratio:6.2f}x  median of {args.repeat} alternated pairs "
          f"({', '.join(f'{r:.2f}' for r in ratios)}; target <= 2x: "
          f"{'met' if ratio <= 2 else 'MISSED'})")
    if t_log is not None:
        print(f"  logging vs floor    {t_log / t_floor:6.2f}x")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
