"""The ``mlflow-plateau`` command: parse, call the library, print.

Subcommands:

- ``diagnose [RUN_ID ...] [--experiment-name NAME | --experiment-id ID] [--filter F]``: diagnose
  tracked runs and write the results back to them (``--dry-run``: compute and print only). A progress
  bar on stderr, then a table (or ``--json``) on stdout.
- ``scaling --experiment-name NAME --size-param train_size [--group-by PARAM ...]``: fit a learning
  curve per group of runs that differ only in the size param; log a summary run per group and tag
  the members.
- ``import LOG.csv [--experiment-name NAME] [--run-name NAME]``: log a training log written outside
  MLflow as a run with per-epoch metrics, diagnose it, print its run id.
- ``curves FILE``: diagnose a training log on disk (a Keras ``CSVLogger`` CSV, a pandas export of
  ``History.history``, a Lightning ``metrics.csv``, a JSON object of metric name -> values, a
  TensorBoard log dir or event file, a Hugging Face ``trainer_state.json``, or an ``export`` file,
  whose runs are each diagnosed and named) without any tracking store.
- ``export [RUN_ID ...] [--experiment-name NAME | --experiment-id ID] -o metrics.parquet``: every
  metric point of the runs as one long table (``read_histories``' columns), written page by page
  to Parquet (pyarrow) or CSV, through a temporary file renamed at the end.

The tracking store is ``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else MLflow's default; a
reading command never creates one (a store that does not exist is named in one line), and an
unknown experiment is named with the store and the close names. After writing, ``diagnose`` prints
on stderr how to open the experiment's runs table in the MLflow UI with the plateau columns
(``tracking.ui``). Each command's ``--help`` ends with examples (``EXAMPLES``).
Exit codes: 0 when everything asked for was diagnosed (also when an experiment or filter selects no
run: a line on stderr says so), 1 when something could not be (each named with its reason on stderr,
the rest completed), 2 on usage errors. Every failure is one line on stderr, with control
characters of run data escaped and credentials of URIs replaced by ``***``;
``MLFLOW_PLATEAU_DEBUG=1`` shows tracebacks instead (credentials still replaced).

Each command runs in ``tracking.environment.command_environment()``: MLflow's HTTP retries bounded
unless the variables are set (2 retries, backoff factor 1, 30 s timeout; MLflow's own defaults
retry a request for about four minutes), MLflow's "View run ... at: URL" lines on stdout turned off
(they carry the URI's credentials and would break ``--json``). Once a run fails because the server cannot be
reached, retries are turned off for the rest of the command, so the remaining runs fail within
moments instead of each waiting out the backoff. An interrupted batch (server gone, Ctrl-C)
reports how many runs were diagnosed, names each run that was not, and exits 1; running the same
command again completes the rest (re-diagnosing an unchanged run writes nothing).
The package holds one module per command (``diagnose``, with the Spark path; ``scaling``;
``compare``; ``export``; ``curves``, with ``import``), each with its ``add_parser`` and ``run``,
beside what they share: ``parser`` (exit codes, option groups, examples, unknown arguments),
``selection`` (the run selection's checks) and ``output`` (messages, escaping, tables). Only
``main`` and ``build_parser`` are the command's API. No module imports mlflow at import time:
``import mlflow_plateau.cli`` and ``--help`` stay fast, and a missing store or experiment is
named before MLflow is imported.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .. import __version__
from ..tracking.environment import command_environment
from . import compare, curves, diagnose, export, scaling
from .output import debug, err, first_line, notices_as_lines, redact_uncaught
from .parser import EXIT_FAILED, EXIT_USAGE, add_examples, unrecognized

__all__ = ["build_parser", "main"]

_COMMANDS = {"diagnose": diagnose.run, "scaling": scaling.run, "import": curves.run_import,
             "compare": compare.run, "export": export.run}


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command, in the order ``--help`` lists them, each with its examples."""
    parser = argparse.ArgumentParser(
        prog="mlflow-plateau",
        description="Tell why a training run plateaued and whether more data would help.",
    )
    parser.add_argument("--version", action="version", version=f"mlflow-plateau {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    diagnose.add_parser(sub)
    scaling.add_parser(sub)
    curves.add_import_parser(sub)
    curves.add_curves_parser(sub)
    compare.add_parser(sub)
    export.add_parser(sub)
    add_examples(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:
            unrecognized(parser, args.command, extra)
    except SystemExit as exc:  # argparse: usage errors exit 2, --help/--version exit 0
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command == "curves":
        if argv is None:  # this process is the command: read event files without TensorFlow
            from ..tensorboard_log import without_tensorflow

            without_tensorflow()
        return curves.run_curves(args)
    try:
        with command_environment(), notices_as_lines():
            return _COMMANDS[args.command](args, parser)
    except SystemExit as exc:  # parser.error from a command's own checks
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        err("interrupted")
        return EXIT_FAILED
    except Exception as exc:
        if debug():
            redact_uncaught()
            raise
        err(first_line(exc))
        return EXIT_FAILED

