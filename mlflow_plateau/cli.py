"""The ``mlflow-plateau`` command: parse, call the library, print.

Subcommands:

- ``curves FILE``: diagnose a training log on disk (a Keras ``CSVLogger`` CSV, a pandas export of
  ``History.history``, a Lightning ``metrics.csv``, or a JSON object of metric name -> values)
  without any tracking store.

Exit codes: 0 when everything asked for was diagnosed, 1 when something could not be (each named
with its reason), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _add_diagnosis_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("diagnosis options")
    group.add_argument("--monitor", help="metric to diagnose (default: val_loss, else the first "
                       "validation loss, else any validation metric, else the training loss)")
    group.add_argument("--train-metric", help="training metric paired with the monitor "
                       "(default: found by name, e.g. loss for val_loss)")
    group.add_argument("--mode", choices=["min", "max"],
                       help="whether lower or higher is better (default: from the metric name)")
    group.add_argument("--patience", type=int, default=10, metavar="N",
                       help="EarlyStopping patience for the would-be stop epoch (default: 10)")
    group.add_argument("--min-delta", type=float, default=0.0, metavar="X",
                       help="smallest change that counts as an improvement, in the metric's "
                       "units (default: 0)")
    group.add_argument("--relative-delta", type=float, default=0.01, metavar="F",
                       help="tolerance as a fraction of the curve's total improvement "
                       "(default: 0.01)")
    group.add_argument("--num-classes", type=int, metavar="K",
                       help="number of classes, for the chance level ln(K) / 1/K")
    group.add_argument("--json", action="store_true", help="print machine-readable JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlflow-plateau",
        description="Tell why a training run plateaued and whether more data would help.",
        epilog="Run 'mlflow-plateau COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"mlflow-plateau {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    curves = sub.add_parser("curves", help="diagnose a training log file (CSV or JSON)",
                            description="Diagnose a training log written outside MLflow: a Keras "
                            "CSVLogger file, a pandas History export, a Lightning metrics.csv, "
                            "or a JSON object mapping metric names to lists of values.")
    curves.add_argument("files", nargs="+", type=Path, metavar="FILE")
    _add_diagnosis_options(curves)
    return parser


def _read_log(path: Path):
    import pandas as pd

    if path.suffix.lower() == ".json":
        with path.open(encoding="utf-8") as fh:
            data = json.load(fh)
        if not isinstance(data, dict):
            raise ValueError("a JSON log must be an object mapping metric names to lists")
        return data
    return pd.read_csv(path)


def _diagnosis_kwargs(args: argparse.Namespace) -> dict:
    return {"monitor": args.monitor, "train_metric": args.train_metric, "mode": args.mode,
            "patience": args.patience, "min_delta": args.min_delta,
            "relative_delta": args.relative_delta, "num_classes": args.num_classes}


def _run_curves(args: argparse.Namespace) -> int:
    from .verdict import diagnose_curves

    results, failed = [], 0
    for path in args.files:
        try:
            diagnosis = diagnose_curves(_read_log(path), **_diagnosis_kwargs(args))
        except (OSError, ValueError) as exc:
            failed += 1
            print(f"mlflow-plateau: {path}: {exc}", file=sys.stderr)
            continue
        results.append((path, diagnosis))
    if args.json:
        print(json.dumps([{"file": str(p), **d.to_dict()} for p, d in results], indent=2))
    else:
        for path, d in results:
            print(f"{path}: {d.verdict}\n  {d.summary}")
            for rec in d.recommendations:
                print(f"  - {rec}")
    return EXIT_FAILED if failed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command == "curves":
        return _run_curves(args)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse catches it
    return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
