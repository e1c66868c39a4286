"""``mlflow-plateau compare``: which of several runs stopped learning first, and why.

Diagnoses the runs without writing to them (``tracking.comparison.compare_runs``), prints them
ranked with the answer, and logs one comparison run (unless ``--dry-run``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .output import err, fmt, print_table
from .parser import (
    EXIT_FAILED,
    EXIT_OK,
    add_diagnosis_options,
    add_run_selection,
    add_store_options,
    diagnosis_options,
)
from .selection import check_selection, expand_ids, experiment_missing, store_missing


def add_parser(sub: Any) -> None:
    """The ``compare`` command and its options, on the subcommands ``sub``."""
    compare = sub.add_parser(
        "compare", help="which of several runs stopped learning first, and why",
        description="Diagnose several runs (nothing is written to them), rank them by the epoch "
        "they stopped learning, print the table and the answer, and log one comparison run (tag "
        "plateau.kind = comparison) with comparison/overlay.png, comparison/report.html and "
        "comparison/comparison.json in the experiment of the first run. Comparing the same runs "
        "again updates that run.")
    add_run_selection(compare, "compare", "runs to compare (two or more)")
    add_store_options(compare)
    compare.add_argument("--dry-run", action="store_true",
                         help="compare and print, log no comparison run")
    compare.add_argument("--by", choices=("plateau", "forecast"), default="plateau",
                         help="rank by the epoch each run stopped learning (default) or by the "
                              "best value forecast with twice its epochs")
    add_diagnosis_options(compare)


def _compare_row(row) -> list[str]:
    from ..report import comparison_epoch_text

    epoch = comparison_epoch_text(row, dash="-", missing="-")
    best = "-" if row.best_value is None else f"{fmt(row.best_value)} @ {row.best_epoch}"
    name = row.label if row.label == row.key else f"{row.label} ({row.key})"
    from rich.markup import escape  # run names are the user's text, not rich markup

    forecast = "-" if row.forecast_best is None else \
        f"{fmt(row.forecast_best)} @ {row.forecast_epoch}"
    return [escape(cell) for cell in (str(row.rank), name, row.verdict, epoch, best,
                                      fmt(row.stop_epoch), fmt(row.wasted_epochs),
                                      fmt(row.gap_final), forecast)]


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``compare``: the runs selected ranked (and a comparison run logged unless ``--dry-run``),
    printed with the answer; the exit code."""
    check_selection(args, parser, "RUN_ID RUN_ID ...")
    if args.run_ids and len(set(args.run_ids)) < 2:
        parser.error("a comparison needs two or more different RUN_IDs")
    if store_missing(args):
        return EXIT_FAILED
    if not expand_ids(args):  # a comparison of other runs than asked for answers another question
        return EXIT_FAILED
    if experiment_missing(args):
        return EXIT_FAILED

    from ..tracking.comparison import TooFewRuns, compare_runs

    try:
        result = compare_runs(args.run_ids or None, experiment_name=args.experiment_name,
                              experiment_id=args.experiment_id, filter_string=args.filter_string,
                              tracking_uri=args.tracking_uri, log=not args.dry_run, by=args.by,
                              options=diagnosis_options(args))
    except TooFewRuns as exc:
        for failure in exc.failures:
            err(f"run {failure.run_id}: {failure.reason}")
        selected = exc.diagnosed + len(exc.failures)
        why = (f"the selection holds {selected} run{'s' * (selected != 1)}" if not exc.failures
               else f"{exc.diagnosed} of the {selected} runs selected could be diagnosed")
        if args.json:  # the keys of a comparison, empty
            print(json.dumps({"dry_run": args.dry_run, "comparison_run_id": None,
                              "answer": None, "by": args.by, "first": None, "tied_with": [],
                              "runs": [], "failures": [f.to_dict() for f in exc.failures]},
                             indent=2))
        err(f"nothing compared: {why}; a comparison needs 2")
        return EXIT_FAILED
    for failure in result.failures:
        err(f"run {failure.run_id}: {failure.reason}")
    if args.json:
        print(json.dumps({"dry_run": args.dry_run, **result.to_dict()}, indent=2))
    else:
        order = ("in the order they stopped learning" if args.by == "plateau" else
                 "best forecast at twice their epochs first")
        title = (f"{len(result.comparison.rows)} runs, {order}"
                 + (" (dry run: nothing logged)" if args.dry_run else ""))
        print_table(title, ["#", "run", "verdict", "plateau epoch", "best @ epoch", "early stop",
                            "wasted epochs", "final gap", "forecast best @ 2x"],
                    [_compare_row(r) for r in result.comparison.rows])
        print(result.answer)
        if result.run_id:
            print(f"comparison run: {result.run_id} (artifacts under comparison/)")
    return EXIT_FAILED if result.failures else EXIT_OK
