"""The runs a command is asked for, checked before any of them is read.

``check_selection``: the usage errors of RUN_ID ... / ``--experiment-name`` / ``--experiment-id``
/ ``--filter`` (exit 2). ``expand_ids``: unique run id prefixes replaced by the ids.
``store_missing`` and ``experiment_missing``: a store or experiment that does not exist named in
one line, before MLflow is imported (a reading command never creates a store).
"""

from __future__ import annotations

import argparse

from .output import debug, err


def check_selection(args: argparse.Namespace, parser: argparse.ArgumentParser,
                    runs_usage: str) -> None:
    """Usage errors (exit 2) of the run selection and the diagnosis options, before any I/O."""
    by_experiment = args.experiment_name is not None or args.experiment_id is not None
    if args.run_ids and by_experiment:
        parser.error("give run ids or an experiment, not both")
    if not args.run_ids and not by_experiment:
        parser.error(f"no runs selected: give {runs_usage} or --experiment-name/--experiment-id")
    if args.filter_string and not by_experiment:
        parser.error("--filter applies to an experiment's runs: give --experiment-name/-id")


def expand_ids(args: argparse.Namespace) -> bool:
    """Replace unique run id prefixes in ``args.run_ids`` by their ids; False if one failed.

    A prefix that matches no run or several is named on stderr (with the candidates) and dropped,
    so the other runs are still done, as for a run that is not found.
    """
    if not args.run_ids:
        return True
    from ..tracking.ids import expand_run_ids

    resolved, failed = expand_run_ids(args.run_ids, args.tracking_uri)
    for given, reason in failed.items():
        err(f"run {given}: {reason}")
    args.run_ids = [r for r, given in zip(resolved, args.run_ids, strict=True) if given not in failed]
    return not failed


def store_missing(args: argparse.Namespace) -> bool:
    """Say at once that the store to read does not exist, naming it, rather than let MLflow
    create an empty one there (``MLFLOW_PLATEAU_DEBUG`` goes the long way, to the library's
    ``StoreNotFound`` and its traceback)."""
    from ..tracking.store import missing_store

    problem = None if debug() else missing_store(args.tracking_uri)
    if problem is not None:
        err(problem)
    return problem is not None


def experiment_missing(args: argparse.Namespace) -> bool:
    """Say at once, before MLflow is imported, that a named experiment is not in a SQLite store,
    with the close names there are (other stores: the library says the same)."""
    from ..tracking.store import missing_experiment

    if args.experiment_name is None or debug():
        return False
    problem = missing_experiment(args.tracking_uri, args.experiment_name)
    if problem is not None:
        err(problem)
    return problem is not None
