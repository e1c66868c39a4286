"""``mlflow-plateau scaling``: a learning curve per group of an experiment's runs.

Fits error(n) = a*n^-b + c per group of runs that differ only in the size param
(``tracking.diagnose_scaling``), prints one row per group (``print_scaling_table``) and the
verdict's summary of each; with every group short of sizes, says which param split the runs.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from .output import err, fmt, printable, table_width
from .parser import EXIT_FAILED, EXIT_OK, add_store_options
from .selection import experiment_missing, store_missing


def add_parser(sub: Any) -> None:
    """The ``scaling`` command and its options, on the subcommands ``sub``."""
    scaling = sub.add_parser(
        "scaling", help="fit learning curves across runs trained on different data sizes",
        description="Group an experiment's runs that differ only in the size param (or by the "
        "params given), fit error(n) = a*n^-b + c per group, log a summary run per group "
        "(tag plateau.kind = scaling) and tag the member runs.")
    select = scaling.add_mutually_exclusive_group(required=True)
    select.add_argument("--experiment-name", metavar="NAME")
    select.add_argument("--experiment-id", metavar="ID")
    scaling.add_argument("--size-param", default="train_size", metavar="PARAM",
                         help="param holding the training-set size (default: train_size)")
    scaling.add_argument("--group-by", nargs="+", metavar="PARAM",
                         help="group runs by these params (default: by every other param)")
    scaling.add_argument("--metric", default="val_loss", metavar="M",
                         help="metric whose best value is the run's error; for a score, "
                         "1 - best (default: val_loss)")
    scaling.add_argument("--mode", choices=["min", "max"],
                         help="whether lower or higher is better (default: from the name)")
    scaling.add_argument("--filter", dest="filter_string", metavar="FILTER",
                         help="MLflow search filter for the experiment's runs")
    add_store_options(scaling)
    scaling.add_argument("--dry-run", action="store_true", help="fit and print, log nothing")
    scaling.add_argument("--json", action="store_true", help="print machine-readable JSON")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``scaling``: a learning curve fitted (and logged unless ``--dry-run``) per group of runs,
    printed; the exit code."""
    if store_missing(args) or experiment_missing(args):
        return EXIT_FAILED
    from ..tracking import diagnose_scaling

    groups, failures = diagnose_scaling(
        experiment_name=args.experiment_name, experiment_id=args.experiment_id,
        size_param=args.size_param, group_by=args.group_by, metric=args.metric, mode=args.mode,
        filter_string=args.filter_string, tracking_uri=args.tracking_uri, log=not args.dry_run)
    for failure in failures:
        err(f"run {failure.run_id}: {failure.reason}")
    if args.json:
        print(json.dumps({"dry_run": args.dry_run, "groups": [g.to_dict() for g in groups],
                          "failures": [f.to_dict() for f in failures]}, indent=2, default=str))
    elif groups:
        print_scaling_table(groups, args.size_param)
    if not groups:
        err(f"no runs with param {args.size_param!r} and metric {args.metric!r} to fit")
        return EXIT_FAILED
    if all(g.verdict.verdict == "insufficient_points" for g in groups):
        from ..grouping import split_message

        err(split_message([g.params for g in groups], size_param=args.size_param,
                          sizes=[len(set(g.sizes)) for g in groups]))
        return EXIT_FAILED
    return EXIT_FAILED if failures else EXIT_OK


def _exponent_text(fit) -> str:
    """The fitted exponent with its 90% interval, as the summary sentence words it."""
    if fit.exponent is None:
        return "-"
    if fit.low is None or fit.high is None:
        return fmt(fit.exponent, 3)
    return f"{fit.exponent:.2f} ({fit.low:.2f}\u2013{fit.high:.2f})"


def print_scaling_table(groups: Sequence[Any], size_param: str, width: int | None = None) -> None:
    """One row per group, readable at 80 columns: a group is named by the params that tell it
    from the others, or by the experiment when none do (``ScalingGroup.name``; cut to 24
    characters in the table, whole below it, with the verdict's summary and the summary run;
    ``--json`` and the ``scaling.group`` tag hold the full key). The exponent is shown with its
    90% interval."""
    from rich import box
    from rich.console import Console
    from rich.markup import escape  # group labels are param values: text, not rich markup
    from rich.table import Table

    from ..grouping import short_label

    table = Table(title=f"learning curves over {escape(printable(size_param))}",
                  title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("group", min_width=12, max_width=24)
    table.add_column("verdict", no_wrap=True)
    table.add_column("runs", justify="right", no_wrap=True)
    table.add_column("sizes", justify="right", min_width=10)
    table.add_column("exponent (90%)", justify="right", no_wrap=True)
    table.add_column("gain at 2x", justify="right", min_width=7)
    names = [g.name or g.label for g in groups]
    for name, g in zip(names, groups, strict=True):
        table.add_row(escape(printable(short_label(name, 24))), g.verdict.verdict,
                      str(len(g.run_ids)), ", ".join(fmt(s, 6) for s in sorted(set(g.sizes))),
                      _exponent_text(g.verdict.fit), fmt(g.verdict.fit.gain_at_2x))
    Console(width=width or table_width(), highlight=False).print(table)
    for name, g in zip(names, groups, strict=True):
        logged = f" (summary run {g.summary_run_id})" if g.summary_run_id else ""
        print(printable(f"{name}: {g.verdict.summary}{logged}"))
