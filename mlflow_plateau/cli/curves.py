"""The two commands of training logs on disk: ``curves`` and ``import``.

``curves FILE ...`` diagnoses each log (``logs.read_log_runs``; an ``export`` file or a
TensorBoard dir of several runs gives one diagnosis per run, each named) without any tracking
store. ``import LOG`` logs one as a new MLflow run (``tracking.log_history``), diagnoses it and
prints its run id.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .output import err, first_line, printable
from .parser import (
    EXIT_FAILED,
    EXIT_OK,
    add_artifacts_option,
    add_diagnosis_options,
    add_fail_on_option,
    add_store_options,
    diagnosis_options,
    gate,
)


def add_import_parser(sub: Any) -> None:
    """The ``import`` command and its options, on the subcommands ``sub``."""
    imp = sub.add_parser(
        "import", help="log a training log file as an MLflow run, then diagnose it",
        description="Log a training log written outside MLflow (a Keras CSVLogger file, a pandas "
        "History export, a Lightning metrics.csv, or a JSON object of metric -> values) as an "
        "MLflow run with per-epoch metrics, diagnose it, and print its run id.")
    imp.add_argument("file", type=Path, metavar="LOG")
    imp.add_argument("--experiment-name", metavar="NAME",
                     help="experiment to log into (created if missing; default: MLflow's "
                     "default experiment)")
    imp.add_argument("--run-name", metavar="NAME", help="name of the new run (default: file name)")
    add_store_options(imp)
    add_artifacts_option(imp)
    add_diagnosis_options(imp)


def add_curves_parser(sub: Any) -> None:
    """The ``curves`` command and its options, on the subcommands ``sub``."""
    curves = sub.add_parser("curves", help="diagnose training log files (CSV, JSON, TensorBoard, "
                            "trainer_state.json, export files)",
                            description="Diagnose a training log written outside MLflow: a Keras "
                            "CSVLogger file, a pandas History export, a Lightning metrics.csv, "
                            "a JSON object mapping metric names to lists of values, a TensorBoard "
                            "log dir or event file (Keras's TensorBoard callback), a Hugging Face "
                            "trainer_state.json, or what 'mlflow-plateau export' wrote (each of "
                            "its runs diagnosed and named by run id).")
    curves.add_argument("files", nargs="+", type=Path, metavar="FILE")
    add_diagnosis_options(curves)
    add_fail_on_option(curves)


def _read_log(path: Path):
    from ..logs import read_log

    return read_log(path)


def run_curves(args: argparse.Namespace) -> int:
    """``curves``: each log file (each run of it) diagnosed and printed; the exit code."""
    from ..logs import read_log_runs
    from ..verdict import diagnose_curves

    options = diagnosis_options(args)
    results, failed = [], 0
    for path in args.files:
        try:
            runs = read_log_runs(path)
        except (OSError, ValueError) as exc:
            failed += 1
            err(f"{path}: {first_line(exc)}")
            continue
        # A file of several runs (an export, a TensorBoard dir of runs): each one diagnosed and
        # named, as diagnose names the runs of an experiment; a run that fails is named, the
        # others go on.
        for run, history in runs:
            where = str(path) if run is None else f"{path} [run {run}]"
            try:
                diagnosis = diagnose_curves(history, options)
            except ValueError as exc:
                failed += 1
                err(f"{where}: {first_line(exc)}")
                continue
            results.append((path, run, where, diagnosis))
    if args.json:
        print(json.dumps([{"file": str(p), **({} if run is None else {"run": run}), **d.to_dict()}
                          for p, run, _, d in results], indent=2))
    else:
        for _, _, where, d in results:
            print(printable(f"{where}: {d.verdict}") + "\n  " + printable(d.summary))
            for r in d.epoch_ranges():
                print("  where: " + printable(r.text()))
            for rec in d.recommendations:
                print(f"  - {rec}")
    return EXIT_FAILED if failed else gate([d.verdict for *_, d in results], args.fail_on)


def run_import(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``import``: the log file logged as a new run and diagnosed, its run id printed; the exit
    code."""
    from ..curves import history_curves
    from ..tracking import diagnose_run, log_history

    try:
        curves = history_curves(_read_log(args.file))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        err(f"{args.file}: {first_line(exc)}")
        return EXIT_FAILED
    if not curves:
        err(f"{args.file}: no numeric metric columns")
        return EXIT_FAILED
    run_id = log_history(curves, experiment_name=args.experiment_name,
                         run_name=args.run_name or args.file.stem, tracking_uri=args.tracking_uri,
                         tags={"plateau.source": args.file.name})
    try:
        diagnosis = diagnose_run(run_id, tracking_uri=args.tracking_uri, artifacts=args.artifacts,
                                 options=diagnosis_options(args))
    except ValueError as exc:
        print(json.dumps({"run_id": run_id}) if args.json else run_id)
        err(f"imported {args.file} as run {run_id}, but {first_line(exc)}")
        return EXIT_FAILED
    if args.json:
        print(json.dumps({"run_id": run_id, "diagnosis": diagnosis.to_dict()}, indent=2))
    else:
        print(run_id)
        print(printable(f"{args.file}: {diagnosis.verdict}: {diagnosis.summary}"), file=sys.stderr)
    return EXIT_OK
