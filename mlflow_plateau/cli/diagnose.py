"""``mlflow-plateau diagnose``: diagnose tracked runs and write the results back to them.

A progress bar on stderr (for a terminal only), the failures one line each with a summary when a
batch did not complete, then a table (or ``--json``) on stdout, then how to open the runs in the
MLflow UI. With ``--spark`` the runs are spread over Spark tasks (``spark.diagnose_experiment``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..tracking.environment import stop_retrying
from .output import debug, err, first_line, fmt, print_table, printable
from .parser import (
    EXIT_FAILED,
    add_artifacts_option,
    add_diagnosis_options,
    add_fail_on_option,
    add_run_selection,
    add_store_options,
    diagnosis_options,
    gate,
)
from .selection import check_selection, expand_ids, experiment_missing, store_missing


def add_parser(sub: Any) -> None:
    """The ``diagnose`` command and its options, on the subcommands ``sub``."""
    diagnose = sub.add_parser(
        "diagnose", help="diagnose tracked MLflow runs and write the results back to them",
        description="Diagnose MLflow runs (the ids given, or the runs of one experiment) and write "
        "plateau/* and gap/* metrics, plateau.* tags and plateau/ artifacts to each run.")
    add_run_selection(diagnose, "diagnose", "runs to diagnose")
    add_store_options(diagnose)
    diagnose.add_argument("--database-uri", metavar="URI",
                          help="the tracking server's backend database (e.g. postgresql://...): "
                          "read histories from it with SQL where it can be reached, everything "
                          "else through --tracking-uri; through the server where it cannot")
    add_artifacts_option(diagnose)
    diagnose.add_argument("--dry-run", action="store_true",
                          help="compute and print, write nothing to the runs")
    add_diagnosis_options(diagnose)
    add_fail_on_option(diagnose)
    _add_spark_options(diagnose)


def _connection_failed(reason: str) -> bool:
    from ..tracking.store import UNREACHABLE

    return bool(UNREACHABLE.search(reason))


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``diagnose``: the runs selected diagnosed (and written to unless ``--dry-run``), printed;
    the exit code."""
    check_selection(args, parser, "RUN_ID ...")
    if store_missing(args):
        return EXIT_FAILED
    ids_ok = expand_ids(args)
    if not ids_ok and not args.run_ids:
        return EXIT_FAILED
    if args.spark is not None:
        return _run_spark(args, parser)
    if experiment_missing(args):
        return EXIT_FAILED

    from ..tracking import diagnose_runs

    results = diagnose_runs(args.run_ids or None, experiment_name=args.experiment_name,
                            experiment_id=args.experiment_id, filter_string=args.filter_string,
                            tracking_uri=args.tracking_uri, log=not args.dry_run,
                            artifacts=args.artifacts, database_uri=args.database_uri,
                            options=diagnosis_options(args))
    if results.read_note:
        err(f"--database-uri not used, histories are read through the tracking server "
            f"({results.read_note})")
    total = len(set(args.run_ids)) if args.run_ids else None
    diagnosed, failed, stopped, done = _consume(results, total, as_json=args.json)
    _report_failures(diagnosed, failed, stopped, total)
    if results.skipped:
        ids = ", ".join(f.run_id for f in results.skipped[:5])
        more = f" and {len(results.skipped) - 5} more" if len(results.skipped) > 5 else ""
        err(f"left out {len(results.skipped)} parent run(s) of nested runs with no curve of "
            f"their own: {ids}{more}")
    if args.json:
        print(json.dumps({"dry_run": args.dry_run, "runs": diagnosed,
                          "failures": [f.to_dict() for f in failed], "stopped": stopped,
                          "skipped": [f.to_dict() for f in results.skipped]}, indent=2))
    elif diagnosed:
        title = f"{len(diagnosed)} run(s) diagnosed" + (" (dry run: nothing written)"
                                                        if args.dry_run else "")
        print_table(title, ["run", "verdict", "plateau epoch", "best value", "gap",
                            "wasted epochs"], diagnosed)
    if done and not args.dry_run and stopped is None \
            and not any(_connection_failed(f.reason) for f in failed):  # not a store gone away
        _ui_lines(args, results, done)
    if not diagnosed and not failed and stopped is None and not results.skipped:
        # Not a failure: nothing asked for was left undone (a script looping over experiments or
        # filters should not stop here). Still said, because a typo in a filter looks the same.
        which = (f"experiment {args.experiment_name!r}" if args.experiment_name is not None
                 else f"experiment id {args.experiment_id!r}")
        err(f"nothing to diagnose: no active run of {which} matches the filter"
            if args.filter_string else f"nothing to diagnose: {which} has no active runs")
    if failed or stopped is not None or not ids_ok:
        return EXIT_FAILED
    # A JSON entry is the diagnosis' dict, a table row has the verdict in its second cell.
    return gate([d["verdict"] if args.json else d[1] for d in diagnosed], args.fail_on)


def _run_label(run_id: str, name: str) -> str:
    """A run as people read it: its name beside a short id (the whole id when it has no name)."""
    return f"{name} ({run_id[:8]})" if name else run_id


def _diagnosis_row(d, names: Mapping[str, str]) -> list[str]:
    from rich.markup import escape  # run names are the user's text, not rich markup

    p, g = d.plateau, d.gap
    label = printable(_run_label(d.run_id or "", names.get(d.run_id or "", "")))
    return [escape(label), d.verdict, fmt(p.epoch if p else None),
            fmt(float(p.best_value) if p else None), fmt(float(g.final) if g else None),
            fmt(p.wasted_epochs if p else None)]


def _ui_lines(args: argparse.Namespace, results, done: Sequence[str]) -> None:
    """After a diagnosis was written: how to see it in the MLflow UI (tracking.ui), one line
    per experiment of the diagnosed runs (at most 3)."""
    from ..tracking import resolve_tracking_uri
    from ..tracking.ui import runs_table_line

    experiments = list(dict.fromkeys(results.experiments[r] for r in done
                                     if r in results.experiments))
    if not experiments:
        return
    uri = resolve_tracking_uri(args.tracking_uri)
    for experiment_id in experiments[:3]:
        err(runs_table_line(uri, experiment_id, args.artifacts))
    if len(experiments) > 3:
        err(f"... and {len(experiments) - 3} more experiments")


def _consume(results, total: int | None, *, as_json: bool
             ) -> tuple[list, list, str | None, list[str]]:
    """Diagnoses and failures of a batch, in order, why it stopped early (None: it did not), and
    the ids of the runs diagnosed.

    Only what is printed is kept (a row or a JSON dict per run), so 10,000 runs stay small. After
    the first run that failed for want of a connection, MLflow's retries are turned off (the
    variable is restored by ``command_environment``): the runs still in flight then fail at once with the
    same cause instead of each waiting out the backoff against a server that is gone.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..tracking import RunFailure

    diagnosed: list = []
    failed: list = []
    done: list[str] = []
    stopped = None
    columns = [TextColumn("diagnosing runs"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn()]
    console = Console(stderr=True)
    # A bar only for a person watching: logs and pipes get the failures and the table, no blanks.
    with Progress(*columns, console=console, transient=True,
                  disable=not console.is_terminal) as progress:
        task = progress.add_task("runs", total=total)
        try:
            for result in results:
                if isinstance(result, RunFailure):
                    failed.append(result)
                    if _connection_failed(result.reason):
                        stop_retrying()
                else:
                    done.append(result.run_id or "")
                    names = getattr(results, "names", {})
                    diagnosed.append({**result.to_dict(),
                                      "run_name": names.get(result.run_id or "") or None}
                                     if as_json else _diagnosis_row(result, names))
                progress.advance(task)
        except KeyboardInterrupt:
            stopped = "interrupted"
        except Exception as exc:  # the store failed between runs (e.g. listing the next page)
            if debug():
                raise
            stopped = first_line(exc)
    return diagnosed, failed, stopped, done


def _report_failures(diagnosed: list, failed: list, stopped: str | None,
                     total: int | None) -> None:
    """The failures on stderr, one line each, then a summary when a batch did not complete.

    A run that failed because the server could not be reached gets a short line (the first one's
    full reason is in the summary): after a server went away mid-batch, the list of runs still to
    do stays readable. When nothing got through at all, one line says so.
    """
    unreachable = [f for f in failed if _connection_failed(f.reason)]
    others = [f for f in failed if not _connection_failed(f.reason)]
    for failure in others:
        err(f"run {failure.run_id}: {failure.reason}")
    done = len(diagnosed)
    if not done and not others and stopped is None and len(unreachable) > 1 \
            and len({f.reason for f in unreachable}) == 1:
        err(f"{unreachable[0].reason}; none of the {len(unreachable)} runs was diagnosed")
        return
    if len(unreachable) == 1 and stopped is None:
        err(f"run {unreachable[0].run_id}: {unreachable[0].reason}")
    else:
        for failure in unreachable:
            err(f"run {failure.run_id}: not diagnosed: the tracking server could not be reached")
    seen = done + len(failed)
    if stopped is not None:
        err(f"stopped after {seen} run(s), {done} diagnosed: {stopped}; the runs after those "
            "were not diagnosed")
    elif seen > 1 and failed:
        parts = [f"{done} of {total or seen} runs diagnosed"]
        if unreachable:
            first = unreachable[0]
            parts.append(f"{len(unreachable)} not diagnosed because the tracking server could not "
                         f"be reached (first: run {first.run_id}: {first.reason[:300]})")
        if others:
            parts.append(f"{len(others)} failed (reasons above)")
        err("; ".join(parts))
    if stopped is not None or (unreachable and seen > 1):
        err("run the same command again to finish: runs already diagnosed are not written again")


def _add_spark_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("spark")
    group.add_argument("--spark", nargs="?", const="", default=None, metavar="MASTER",
                       help="diagnose on Spark (pyspark): MASTER such as local[4] or "
                       "spark://host:7077; bare, the master spark-submit or the environment "
                       "configures (local[*] otherwise)")
    group.add_argument("--runs-per-task", type=int, default=250, metavar="N",
                       help="runs per Spark task (default: 250)")


def _run_spark(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.dry_run:
        parser.error("--dry-run is not available with --spark")
    if args.runs_per_task < 1:
        parser.error("--runs-per-task must be >= 1")
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        err("--spark needs pyspark: pip install 'mlflow-plateau[spark]'")
        return EXIT_FAILED
    from ..spark import diagnose_experiment, spark_session

    spark = spark_session(args.spark or None)
    frame = diagnose_experiment(spark, run_ids=args.run_ids or None,
                                experiment_name=args.experiment_name,
                                experiment_id=args.experiment_id,
                                filter_string=args.filter_string, tracking_uri=args.tracking_uri,
                                runs_per_task=args.runs_per_task, artifacts=args.artifacts,
                                database_uri=args.database_uri,
                                options=diagnosis_options(args))
    rows = [r.asDict() for r in frame.collect()]
    failed = [r for r in rows if r["error"] is not None]
    for r in failed:
        err(f"run {r['run_id']}: {r['error']}")
    done = [r for r in rows if r["error"] is None]
    if args.json:
        print(json.dumps({"runs": [{k: v for k, v in r.items() if k != "error"} for r in done],
                          "failures": [{"run_id": r["run_id"], "error": r["error"]}
                                       for r in failed]}, indent=2))
    elif done:
        print_table(f"{len(done)} run(s) diagnosed on Spark",
                    ["run", "verdict", "plateau epoch", "best value", "gap", "wasted epochs"],
                    [[printable(r["run_id"]), r["verdict"], fmt(r["plateau/epoch"]),
                      fmt(r["plateau/best_value"]), fmt(r["gap/final"]),
                      fmt(r["plateau/wasted_epochs"])] for r in done])
    if not rows:
        err("nothing to diagnose: no active run matches")
    return EXIT_FAILED if failed else gate([r["verdict"] for r in done], args.fail_on)
