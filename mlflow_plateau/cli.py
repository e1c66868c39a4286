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
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import __version__
from .tracking.environment import command_environment, stop_retrying

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# --fail-on: a CI gate. Its own code, so a pipeline can tell "a run has a listed verdict" from
# "the command failed" (1) and "bad usage" (2); a failure to diagnose wins over it.
EXIT_VERDICT = 3


def _debug() -> bool:
    return os.environ.get("MLFLOW_PLATEAU_DEBUG", "") not in ("", "0", "false", "False")


@contextmanager
def _notices_as_lines() -> Iterator[None]:
    """What the tracking layer did to read a store (``FileStoreNotice``) as one line of ours on
    stderr, not Python's two-line warning with a source line."""
    import warnings

    from .tracking.file_store import FileStoreNotice

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, FileStoreNotice):
            _err(str(message))
        else:
            shown(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", FileStoreNotice)
        warnings.showwarning = show
        yield


def _connection_failed(reason: str) -> bool:
    from .tracking.store import UNREACHABLE

    return bool(UNREACHABLE.search(reason))


# Bidirectional overrides and isolates reorder what a terminal shows ("Trojan Source").
_BIDI = {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"}


def _printable(text: str) -> str:
    """``text`` with control characters escaped: run names, params and ids are other people's
    text, and an escape sequence printed raw can rewrite the terminal (title, colours, lines)."""
    out = []
    for ch in str(text):
        if ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append(ch)
        elif ch in _BIDI or unicodedata.category(ch) == "Cc":
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def _redact_uncaught() -> None:
    """In debug mode the exception propagates; if nothing catches it, Python prints its traceback.
    Make that traceback credential-free too (MLflow's messages carry the tracking URI)."""
    if sys.excepthook is not sys.__excepthook__:
        return  # someone else's hook (an IDE, a test runner): leave it alone

    def hook(kind, value, tb) -> None:
        import traceback

        from .tracking import redact

        sys.stderr.write(redact("".join(traceback.format_exception(kind, value, tb))))

    sys.excepthook = hook


def _option(name: str, parse: Callable[[str], Any] = float) -> Callable[[str], Any]:
    """An argparse ``type`` for the diagnosis option ``name``: parsed, then checked by the core's
    own check (``DiagnosisOptions``), so a bad option is a usage error (exit 2) of every command,
    not a failure repeated for each run (``--chance nan`` was kept with the runs and made them at
    chance), and the CLI and the API accept the same values."""
    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{'an integer' if parse is int else 'a number'} is needed, not {text!r}") from None
        from .options import DiagnosisOptions  # imported when an option is given, not for --help

        try:
            DiagnosisOptions(**{name: value})
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value
    return convert


def _add_diagnosis_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("diagnosis options")
    group.add_argument("--monitor", "--val-metric", dest="monitor",
                       help="metric to diagnose (default: val_loss, else the first validation "
                       "loss, else any validation metric; a tracked run with only training "
                       "metrics needs this option, a log file falls back to its training loss)")
    group.add_argument("--train-metric", help="training metric paired with the monitor "
                       "(default: found by name, e.g. loss for val_loss)")
    group.add_argument("--mode", choices=["min", "max"],
                       help="whether lower or higher is better (default: from the metric name)")
    group.add_argument("--patience", type=_option("patience", int), default=10, metavar="N",
                       help="EarlyStopping patience for the would-be stop epoch (default: 10)")
    group.add_argument("--min-delta", type=_option("min_delta"), default=0.0, metavar="X",
                       help="smallest change that counts as an improvement, in the metric's "
                       "units (default: 0)")
    group.add_argument("--relative-delta", type=_option("relative_delta"), default=0.01,
                       metavar="F",
                       help="tolerance as a fraction of the curve's total improvement "
                       "(default: 0.01)")
    group.add_argument("--num-classes", type=_option("num_classes", int), metavar="K",
                       help="number of classes, for the chance level ln(K) / 1/K (default: read "
                       "off the run when its accuracy and loss agree on one, else unknown); kept "
                       "with the run's diagnosis and reused by later commands")
    group.add_argument("--chance", type=_option("chance"), metavar="X",
                       help="the monitor's chance level itself, e.g. the loss of a constant "
                       "predictor (kept with the run's diagnosis like --num-classes)")
    group.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _verdict_list(text: str) -> frozenset[str]:
    """``--fail-on``'s value: comma-separated verdict names, each one of ``VERDICTS``."""
    from .verdict import VERDICTS

    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    unknown = sorted(names - set(VERDICTS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown verdict {', '.join(unknown) or repr(text)}; valid: {', '.join(VERDICTS)}")
    return names


def _add_fail_on_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fail-on", type=_verdict_list, metavar="VERDICT[,VERDICT...]",
                        help=f"CI gate: exit {EXIT_VERDICT} when any diagnosed run's verdict is "
                        "one of these (e.g. diverged,at_chance); 0 otherwise")


def _gate(verdicts: Sequence[str], fail_on: frozenset[str] | None) -> int:
    return EXIT_VERDICT if fail_on and any(v in fail_on for v in verdicts) else EXIT_OK


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", metavar="URI",
                        help="tracking store (default: MLFLOW_TRACKING_URI, else MLflow's default "
                        "sqlite:///mlflow.db)")


def _add_artifacts_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--artifacts", choices=["all", "json", "none"], default="all",
                        help="artifacts to write under plateau/: diagnosis.json, curves.png and "
                        "report.html (all), only diagnosis.json (json), or none (default: all)")


def _add_run_selection(parser: argparse.ArgumentParser, verb: str, runs_help: str) -> None:
    """RUN_ID ... or one experiment (by name or id), optionally filtered."""
    parser.add_argument("run_ids", nargs="*", metavar="RUN_ID", help=runs_help)
    select = parser.add_mutually_exclusive_group()
    select.add_argument("--experiment-name", metavar="NAME", help=f"{verb} this experiment's runs")
    select.add_argument("--experiment-id", metavar="ID", help=f"{verb} this experiment's runs")
    parser.add_argument("--filter", dest="filter_string", metavar="FILTER",
                        help="MLflow search filter for the experiment's runs, "
                        "e.g. \"params.optimizer = 'adam'\"")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps text with line breaks of its own (the examples) as written, like
    ``RawDescriptionHelpFormatter``, and wraps one-paragraph descriptions as argparse does."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return super()._fill_text(text, width, indent)
        return argparse.HelpFormatter._fill_text(self, text, width, indent)


# Two or three command lines a new user would type, shown by each command's --help.
EXAMPLES = {
    None: ["mlflow-plateau diagnose --experiment-name my-experiment",
           "mlflow-plateau curves training_log.csv",
           "mlflow-plateau scaling --experiment-name data-sweep --size-param train_size"],
    "diagnose": [
        "mlflow-plateau diagnose --experiment-name my-experiment",
        "mlflow-plateau diagnose 1cc124a6 --dry-run --json",
        "mlflow-plateau diagnose --experiment-name nightly --tracking-uri http://127.0.0.1:5000 "
        "--fail-on diverged,at_chance"],
    "scaling": [
        "mlflow-plateau scaling --experiment-name data-sweep --size-param train_size",
        "mlflow-plateau scaling --experiment-name data-sweep --group-by model --metric "
        "val_accuracy --dry-run"],
    "compare": [
        "mlflow-plateau compare 1cc124a6 9f3e2b10 5d7a8c44",
        "mlflow-plateau compare --experiment-name sweep --filter \"params.lr = '0.001'\" "
        "--by forecast --dry-run"],
    "export": [
        "mlflow-plateau export --experiment-name my-experiment -o metrics.parquet",
        "mlflow-plateau export 1cc124a6 --keys loss val_loss -o -"],
    "import": [
        "mlflow-plateau import training_log.csv --experiment-name keras-logs",
        "mlflow-plateau import metrics.csv --run-name resnet-baseline --tracking-uri "
        "sqlite:///mlflow.db"],
    "curves": [
        "mlflow-plateau curves training_log.csv",
        "mlflow-plateau curves logs/*.csv --json --fail-on diverged,at_chance"],
}


def _examples(lines: Sequence[str], tail: str = "") -> str:
    return "Examples:\n" + "".join(f"  {line}\n" for line in lines) + (f"\n{tail}" if tail else "")


def _add_examples(parser: argparse.ArgumentParser) -> None:
    """Each command's ``EXAMPLES`` as its --help epilog (set once every parser exists, so the
    commands' definitions stay as they are)."""
    parser.formatter_class = _HelpFormatter
    parser.epilog = _examples(EXAMPLES[None],
                              "Run 'mlflow-plateau COMMAND --help' for the options of a command.")
    for action in parser._actions:  # the one place argparse keeps its subparsers
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                if name in EXAMPLES:
                    command.formatter_class = _HelpFormatter
                    command.epilog = _examples(EXAMPLES[name])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlflow-plateau",
        description="Tell why a training run plateaued and whether more data would help.",
    )
    parser.add_argument("--version", action="version", version=f"mlflow-plateau {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    diagnose = sub.add_parser(
        "diagnose", help="diagnose tracked MLflow runs and write the results back to them",
        description="Diagnose MLflow runs (the ids given, or the runs of one experiment) and write "
        "plateau/* and gap/* metrics, plateau.* tags and plateau/ artifacts to each run.")
    _add_run_selection(diagnose, "diagnose", "runs to diagnose")
    _add_store_options(diagnose)
    diagnose.add_argument("--database-uri", metavar="URI",
                          help="the tracking server's backend database (e.g. postgresql://...): "
                          "read histories from it with SQL where it can be reached, everything "
                          "else through --tracking-uri; through the server where it cannot")
    _add_artifacts_option(diagnose)
    diagnose.add_argument("--dry-run", action="store_true",
                          help="compute and print, write nothing to the runs")
    _add_diagnosis_options(diagnose)
    _add_fail_on_option(diagnose)
    _add_spark_options(diagnose)

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
    _add_store_options(scaling)
    scaling.add_argument("--dry-run", action="store_true", help="fit and print, log nothing")
    scaling.add_argument("--json", action="store_true", help="print machine-readable JSON")

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
    _add_store_options(imp)
    _add_artifacts_option(imp)
    _add_diagnosis_options(imp)

    curves = sub.add_parser("curves", help="diagnose training log files (CSV, JSON, TensorBoard, "
                            "trainer_state.json, export files)",
                            description="Diagnose a training log written outside MLflow: a Keras "
                            "CSVLogger file, a pandas History export, a Lightning metrics.csv, "
                            "a JSON object mapping metric names to lists of values, a TensorBoard "
                            "log dir or event file (Keras's TensorBoard callback), a Hugging Face "
                            "trainer_state.json, or what 'mlflow-plateau export' wrote (each of "
                            "its runs diagnosed and named by run id).")
    curves.add_argument("files", nargs="+", type=Path, metavar="FILE")
    _add_diagnosis_options(curves)
    _add_fail_on_option(curves)
    _add_compare_parser(sub)
    _add_export_parser(sub)
    _add_examples(parser)
    return parser


def _err(message: str) -> None:
    from .tracking import redact

    print(f"mlflow-plateau: {_printable(redact(message))}", file=sys.stderr)  # ids come from users


def _read_log(path: Path):
    from .logs import read_log

    return read_log(path)


def _diagnosis_options(args: argparse.Namespace):
    """The ``DiagnosisOptions`` of the command line (every option parser adds one of its fields
    under the same name; each value was checked when parsed)."""
    from .options import DiagnosisOptions

    return DiagnosisOptions(**{name: getattr(args, name) for name in DiagnosisOptions.names()
                               if hasattr(args, name)})


def _run_curves(args: argparse.Namespace) -> int:
    from .logs import read_log_runs
    from .verdict import diagnose_curves

    options = _diagnosis_options(args)
    results, failed = [], 0
    for path in args.files:
        try:
            runs = read_log_runs(path)
        except (OSError, ValueError) as exc:
            failed += 1
            _err(f"{path}: {_first_line(exc)}")
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
                _err(f"{where}: {_first_line(exc)}")
                continue
            results.append((path, run, where, diagnosis))
    if args.json:
        print(json.dumps([{"file": str(p), **({} if run is None else {"run": run}), **d.to_dict()}
                          for p, run, _, d in results], indent=2))
    else:
        for _, _, where, d in results:
            print(_printable(f"{where}: {d.verdict}") + "\n  " + _printable(d.summary))
            for r in d.epoch_ranges():
                print("  where: " + _printable(r.text()))
            for rec in d.recommendations:
                print(f"  - {rec}")
    return EXIT_FAILED if failed else _gate([d.verdict for *_, d in results], args.fail_on)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _run_label(run_id: str, name: str) -> str:
    """A run as people read it: its name beside a short id (the whole id when it has no name)."""
    return f"{name} ({run_id[:8]})" if name else run_id


def _diagnosis_row(d, names: Mapping[str, str]) -> list[str]:
    from rich.markup import escape  # run names are the user's text, not rich markup

    p, g = d.plateau, d.gap
    label = _printable(_run_label(d.run_id or "", names.get(d.run_id or "", "")))
    return [escape(label), d.verdict, _fmt(p.epoch if p else None),
            _fmt(float(p.best_value) if p else None), _fmt(float(g.final) if g else None),
            _fmt(p.wasted_epochs if p else None)]


def _table_width() -> int | None:
    """The terminal's width; not a terminal: wide enough for 32-character run ids."""
    return None if sys.stdout.isatty() else 140


def _print_table(title: str, header: Sequence[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, name in enumerate(header):
        table.add_column(name, no_wrap=i == 0, justify="left" if i < 2 else "right")
    for row in rows:
        table.add_row(*row, style=None)
    console = Console(width=_table_width(), highlight=False)
    console.print(table)


def _check_selection(args: argparse.Namespace, parser: argparse.ArgumentParser,
                     runs_usage: str) -> None:
    """Usage errors (exit 2) of the run selection and the diagnosis options, before any I/O."""
    by_experiment = args.experiment_name is not None or args.experiment_id is not None
    if args.run_ids and by_experiment:
        parser.error("give run ids or an experiment, not both")
    if not args.run_ids and not by_experiment:
        parser.error(f"no runs selected: give {runs_usage} or --experiment-name/--experiment-id")
    if args.filter_string and not by_experiment:
        parser.error("--filter applies to an experiment's runs: give --experiment-name/-id")


def _expand_ids(args: argparse.Namespace) -> bool:
    """Replace unique run id prefixes in ``args.run_ids`` by their ids; False if one failed.

    A prefix that matches no run or several is named on stderr (with the candidates) and dropped,
    so the other runs are still done, as for a run that is not found.
    """
    if not args.run_ids:
        return True
    from .tracking.ids import expand_run_ids

    resolved, failed = expand_run_ids(args.run_ids, args.tracking_uri)
    for given, reason in failed.items():
        _err(f"run {given}: {reason}")
    args.run_ids = [r for r, given in zip(resolved, args.run_ids, strict=True) if given not in failed]
    return not failed


def _store_missing(args: argparse.Namespace) -> bool:
    """Say at once that the store to read does not exist, naming it, rather than let MLflow
    create an empty one there (``MLFLOW_PLATEAU_DEBUG`` goes the long way, to the library's
    ``StoreNotFound`` and its traceback)."""
    from .tracking.store import missing_store

    problem = None if _debug() else missing_store(args.tracking_uri)
    if problem is not None:
        _err(problem)
    return problem is not None


def _experiment_missing(args: argparse.Namespace) -> bool:
    """Say at once, before MLflow is imported, that a named experiment is not in a SQLite store,
    with the close names there are (other stores: the library says the same)."""
    from .tracking.store import missing_experiment

    if args.experiment_name is None or _debug():
        return False
    problem = missing_experiment(args.tracking_uri, args.experiment_name)
    if problem is not None:
        _err(problem)
    return problem is not None


def _ui_lines(args: argparse.Namespace, results, done: Sequence[str]) -> None:
    """After a diagnosis was written: how to see it in the MLflow UI (tracking.ui), one line
    per experiment of the diagnosed runs (at most 3)."""
    from .tracking import resolve_tracking_uri
    from .tracking.ui import runs_table_line

    experiments = list(dict.fromkeys(results.experiments[r] for r in done
                                     if r in results.experiments))
    if not experiments:
        return
    uri = resolve_tracking_uri(args.tracking_uri)
    for experiment_id in experiments[:3]:
        _err(runs_table_line(uri, experiment_id, args.artifacts))
    if len(experiments) > 3:
        _err(f"... and {len(experiments) - 3} more experiments")


def _run_diagnose(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    _check_selection(args, parser, "RUN_ID ...")
    if _store_missing(args):
        return EXIT_FAILED
    ids_ok = _expand_ids(args)
    if not ids_ok and not args.run_ids:
        return EXIT_FAILED
    if args.spark is not None:
        return _run_diagnose_spark(args, parser)
    if _experiment_missing(args):
        return EXIT_FAILED

    from .tracking import diagnose_runs

    results = diagnose_runs(args.run_ids or None, experiment_name=args.experiment_name,
                            experiment_id=args.experiment_id, filter_string=args.filter_string,
                            tracking_uri=args.tracking_uri, log=not args.dry_run,
                            artifacts=args.artifacts, database_uri=args.database_uri,
                            options=_diagnosis_options(args))
    if results.read_note:
        _err(f"--database-uri not used, histories are read through the tracking server "
             f"({results.read_note})")
    total = len(set(args.run_ids)) if args.run_ids else None
    diagnosed, failed, stopped, done = _consume(results, total, as_json=args.json)
    _report_failures(diagnosed, failed, stopped, total)
    if results.skipped:
        ids = ", ".join(f.run_id for f in results.skipped[:5])
        more = f" and {len(results.skipped) - 5} more" if len(results.skipped) > 5 else ""
        _err(f"left out {len(results.skipped)} parent run(s) of nested runs with no curve of "
             f"their own: {ids}{more}")
    if args.json:
        print(json.dumps({"dry_run": args.dry_run, "runs": diagnosed,
                          "failures": [f.to_dict() for f in failed], "stopped": stopped,
                          "skipped": [f.to_dict() for f in results.skipped]}, indent=2))
    elif diagnosed:
        title = f"{len(diagnosed)} run(s) diagnosed" + (" (dry run: nothing written)"
                                                        if args.dry_run else "")
        _print_table(title, ["run", "verdict", "plateau epoch", "best value", "gap",
                             "wasted epochs"], diagnosed)
    if done and not args.dry_run and stopped is None \
            and not any(_connection_failed(f.reason) for f in failed):  # not a store gone away
        _ui_lines(args, results, done)
    if not diagnosed and not failed and stopped is None and not results.skipped:
        # Not a failure: nothing asked for was left undone (a script looping over experiments or
        # filters should not stop here). Still said, because a typo in a filter looks the same.
        which = (f"experiment {args.experiment_name!r}" if args.experiment_name is not None
                 else f"experiment id {args.experiment_id!r}")
        _err(f"nothing to diagnose: no active run of {which} matches the filter"
             if args.filter_string else f"nothing to diagnose: {which} has no active runs")
    if failed or stopped is not None or not ids_ok:
        return EXIT_FAILED
    # A JSON entry is the diagnosis' dict, a table row has the verdict in its second cell.
    return _gate([d["verdict"] if args.json else d[1] for d in diagnosed], args.fail_on)


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

    from .tracking import RunFailure

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
            if _debug():
                raise
            stopped = _first_line(exc)
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
        _err(f"run {failure.run_id}: {failure.reason}")
    done = len(diagnosed)
    if not done and not others and stopped is None and len(unreachable) > 1 \
            and len({f.reason for f in unreachable}) == 1:
        _err(f"{unreachable[0].reason}; none of the {len(unreachable)} runs was diagnosed")
        return
    if len(unreachable) == 1 and stopped is None:
        _err(f"run {unreachable[0].run_id}: {unreachable[0].reason}")
    else:
        for failure in unreachable:
            _err(f"run {failure.run_id}: not diagnosed: the tracking server could not be reached")
    seen = done + len(failed)
    if stopped is not None:
        _err(f"stopped after {seen} run(s), {done} diagnosed: {stopped}; the runs after those "
             "were not diagnosed")
    elif seen > 1 and failed:
        parts = [f"{done} of {total or seen} runs diagnosed"]
        if unreachable:
            first = unreachable[0]
            parts.append(f"{len(unreachable)} not diagnosed because the tracking server could not "
                         f"be reached (first: run {first.run_id}: {first.reason[:300]})")
        if others:
            parts.append(f"{len(others)} failed (reasons above)")
        _err("; ".join(parts))
    if stopped is not None or (unreachable and seen > 1):
        _err("run the same command again to finish: runs already diagnosed are not written again")


def _run_scaling(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if _store_missing(args) or _experiment_missing(args):
        return EXIT_FAILED
    from .tracking import diagnose_scaling

    groups, failures = diagnose_scaling(
        experiment_name=args.experiment_name, experiment_id=args.experiment_id,
        size_param=args.size_param, group_by=args.group_by, metric=args.metric, mode=args.mode,
        filter_string=args.filter_string, tracking_uri=args.tracking_uri, log=not args.dry_run)
    for failure in failures:
        _err(f"run {failure.run_id}: {failure.reason}")
    if args.json:
        print(json.dumps({"dry_run": args.dry_run, "groups": [g.to_dict() for g in groups],
                          "failures": [f.to_dict() for f in failures]}, indent=2, default=str))
    elif groups:
        _print_scaling_table(groups, args.size_param)
    if not groups:
        _err(f"no runs with param {args.size_param!r} and metric {args.metric!r} to fit")
        return EXIT_FAILED
    if all(g.verdict.verdict == "insufficient_points" for g in groups):
        from .grouping import split_message

        _err(split_message([g.params for g in groups], size_param=args.size_param,
                           sizes=[len(set(g.sizes)) for g in groups]))
        return EXIT_FAILED
    return EXIT_FAILED if failures else EXIT_OK


def _exponent_text(fit) -> str:
    """The fitted exponent with its 90% interval, as the summary sentence words it."""
    if fit.exponent is None:
        return "-"
    if fit.low is None or fit.high is None:
        return _fmt(fit.exponent, 3)
    return f"{fit.exponent:.2f} ({fit.low:.2f}\u2013{fit.high:.2f})"


def _print_scaling_table(groups: Sequence[Any], size_param: str, width: int | None = None) -> None:
    """One row per group, readable at 80 columns: a group is named by the params that tell it
    from the others, or by the experiment when none do (``ScalingGroup.name``; cut to 24
    characters in the table, whole below it, with the verdict's summary and the summary run;
    ``--json`` and the ``scaling.group`` tag hold the full key). The exponent is shown with its
    90% interval."""
    from rich import box
    from rich.console import Console
    from rich.markup import escape  # group labels are param values: text, not rich markup
    from rich.table import Table

    from .grouping import short_label

    table = Table(title=f"learning curves over {escape(_printable(size_param))}",
                  title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("group", min_width=12, max_width=24)
    table.add_column("verdict", no_wrap=True)
    table.add_column("runs", justify="right", no_wrap=True)
    table.add_column("sizes", justify="right", min_width=10)
    table.add_column("exponent (90%)", justify="right", no_wrap=True)
    table.add_column("gain at 2x", justify="right", min_width=7)
    names = [g.name or g.label for g in groups]
    for name, g in zip(names, groups, strict=True):
        table.add_row(escape(_printable(short_label(name, 24))), g.verdict.verdict,
                      str(len(g.run_ids)), ", ".join(_fmt(s, 6) for s in sorted(set(g.sizes))),
                      _exponent_text(g.verdict.fit), _fmt(g.verdict.fit.gain_at_2x))
    Console(width=width or _table_width(), highlight=False).print(table)
    for name, g in zip(names, groups, strict=True):
        logged = f" (summary run {g.summary_run_id})" if g.summary_run_id else ""
        print(_printable(f"{name}: {g.verdict.summary}{logged}"))


def _run_import(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .curves import history_curves
    from .tracking import diagnose_run, log_history

    try:
        curves = history_curves(_read_log(args.file))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        _err(f"{args.file}: {_first_line(exc)}")
        return EXIT_FAILED
    if not curves:
        _err(f"{args.file}: no numeric metric columns")
        return EXIT_FAILED
    run_id = log_history(curves, experiment_name=args.experiment_name,
                         run_name=args.run_name or args.file.stem, tracking_uri=args.tracking_uri,
                         tags={"plateau.source": args.file.name})
    try:
        diagnosis = diagnose_run(run_id, tracking_uri=args.tracking_uri, artifacts=args.artifacts,
                                 options=_diagnosis_options(args))
    except ValueError as exc:
        print(json.dumps({"run_id": run_id}) if args.json else run_id)
        _err(f"imported {args.file} as run {run_id}, but {_first_line(exc)}")
        return EXIT_FAILED
    if args.json:
        print(json.dumps({"run_id": run_id, "diagnosis": diagnosis.to_dict()}, indent=2))
    else:
        print(run_id)
        print(_printable(f"{args.file}: {diagnosis.verdict}: {diagnosis.summary}"), file=sys.stderr)
    return EXIT_OK


def _add_compare_parser(sub: Any) -> None:
    compare = sub.add_parser(
        "compare", help="which of several runs stopped learning first, and why",
        description="Diagnose several runs (nothing is written to them), rank them by the epoch "
        "they stopped learning, print the table and the answer, and log one comparison run (tag "
        "plateau.kind = comparison) with comparison/overlay.png, comparison/report.html and "
        "comparison/comparison.json in the experiment of the first run. Comparing the same runs "
        "again updates that run.")
    _add_run_selection(compare, "compare", "runs to compare (two or more)")
    _add_store_options(compare)
    compare.add_argument("--dry-run", action="store_true",
                         help="compare and print, log no comparison run")
    compare.add_argument("--by", choices=("plateau", "forecast"), default="plateau",
                         help="rank by the epoch each run stopped learning (default) or by the "
                              "best value forecast with twice its epochs")
    _add_diagnosis_options(compare)


def _compare_row(row) -> list[str]:
    from .report import comparison_epoch_text

    epoch = comparison_epoch_text(row, dash="-", missing="-")
    best = "-" if row.best_value is None else f"{_fmt(row.best_value)} @ {row.best_epoch}"
    name = row.label if row.label == row.key else f"{row.label} ({row.key})"
    from rich.markup import escape  # run names are the user's text, not rich markup

    forecast = "-" if row.forecast_best is None else \
        f"{_fmt(row.forecast_best)} @ {row.forecast_epoch}"
    return [escape(cell) for cell in (str(row.rank), name, row.verdict, epoch, best,
                                      _fmt(row.stop_epoch), _fmt(row.wasted_epochs),
                                      _fmt(row.gap_final), forecast)]


def _run_compare(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    _check_selection(args, parser, "RUN_ID RUN_ID ...")
    if args.run_ids and len(set(args.run_ids)) < 2:
        parser.error("a comparison needs two or more different RUN_IDs")
    if _store_missing(args):
        return EXIT_FAILED
    if not _expand_ids(args):  # a comparison of other runs than asked for answers another question
        return EXIT_FAILED
    if _experiment_missing(args):
        return EXIT_FAILED

    from .tracking.comparison import TooFewRuns, compare_runs

    try:
        result = compare_runs(args.run_ids or None, experiment_name=args.experiment_name,
                              experiment_id=args.experiment_id, filter_string=args.filter_string,
                              tracking_uri=args.tracking_uri, log=not args.dry_run, by=args.by,
                              options=_diagnosis_options(args))
    except TooFewRuns as exc:
        for failure in exc.failures:
            _err(f"run {failure.run_id}: {failure.reason}")
        selected = exc.diagnosed + len(exc.failures)
        why = (f"the selection holds {selected} run{'s' * (selected != 1)}" if not exc.failures
               else f"{exc.diagnosed} of the {selected} runs selected could be diagnosed")
        if args.json:  # the keys of a comparison, empty
            print(json.dumps({"dry_run": args.dry_run, "comparison_run_id": None,
                              "answer": None, "by": args.by, "first": None, "tied_with": [],
                              "runs": [], "failures": [f.to_dict() for f in exc.failures]},
                             indent=2))
        _err(f"nothing compared: {why}; a comparison needs 2")
        return EXIT_FAILED
    for failure in result.failures:
        _err(f"run {failure.run_id}: {failure.reason}")
    if args.json:
        print(json.dumps({"dry_run": args.dry_run, **result.to_dict()}, indent=2))
    else:
        order = ("in the order they stopped learning" if args.by == "plateau" else
                 "best forecast at twice their epochs first")
        title = (f"{len(result.comparison.rows)} runs, {order}"
                 + (" (dry run: nothing logged)" if args.dry_run else ""))
        _print_table(title, ["#", "run", "verdict", "plateau epoch", "best @ epoch", "early stop",
                             "wasted epochs", "final gap", "forecast best @ 2x"],
                     [_compare_row(r) for r in result.comparison.rows])
        print(result.answer)
        if result.run_id:
            print(f"comparison run: {result.run_id} (artifacts under comparison/)")
    return EXIT_FAILED if result.failures else EXIT_OK


def _first_line(exc: BaseException) -> str:
    from .tracking import one_line

    return one_line(exc)


_COMMANDS = {"diagnose": _run_diagnose, "scaling": _run_scaling, "import": _run_import}
_COMMANDS["compare"] = _run_compare


# ---------------------------------------------------------------------------------------------
# export: metric histories to a file (read_histories, page by page)

def _add_export_parser(sub: Any) -> None:
    export = sub.add_parser(
        "export", help="write tracked runs' metric histories to a Parquet or CSV file",
        description="Write every metric point of the runs given (or of an experiment's runs) to "
        "one long table: run_id, key, step, value, timestamp. Parquet (needs pyarrow) for "
        "-o *.parquet, CSV for -o *.csv or '-' (stdout); without pyarrow a .parquet name is "
        "written as CSV next to it.")
    _add_run_selection(export, "export", "runs to export")
    export.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="output file (.parquet or .csv; '-' for CSV on stdout)")
    export.add_argument("--keys", nargs="+", metavar="KEY", help="only these metrics")
    _add_store_options(export)


def _parquet_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def _run_export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    by_experiment = args.experiment_name is not None or args.experiment_id is not None
    if args.run_ids and by_experiment:
        parser.error("give run ids or an experiment, not both")
    if not args.run_ids and not by_experiment:
        parser.error("no runs selected: give RUN_ID ... or --experiment-name/--experiment-id")
    if args.filter_string and not by_experiment:
        parser.error("--filter applies to an experiment's runs: give --experiment-name/-id")
    if not _expand_ids(args):  # a file short of a run would pass for the whole export
        return EXIT_FAILED
    from .tracking import iter_histories

    pages = iter_histories(args.run_ids or None, experiment_name=args.experiment_name,
                           experiment_id=args.experiment_id, filter_string=args.filter_string,
                           keys=args.keys, tracking_uri=args.tracking_uri)
    target = args.output
    parquet = target != "-" and not target.lower().endswith(".csv")
    if parquet and not _parquet_available():
        target = str(Path(target).with_suffix(".csv"))
        parquet = False
        _err(f"pyarrow is not installed: writing CSV to {target} (pip install pyarrow for Parquet)")
    points, runs = _write_pages(pages, target, parquet)
    where = "stdout" if target == "-" else target
    print(f"{points} metric points of {runs} run(s) written to {where}", file=sys.stderr)
    return EXIT_OK


def _write_pages(pages, target: str, parquet: bool) -> tuple[int, int]:
    """Write the frames to ``target`` (a temporary file renamed at the end: a failed export
    leaves no half-written file); returns (points, runs)."""
    import tempfile

    points = runs = 0
    if target == "-":
        header = True
        for frame in pages:
            frame.to_csv(sys.stdout, index=False, header=header)
            header = False
            points, runs = points + len(frame), runs + frame["run_id"].nunique()
        if header:
            print("run_id,key,step,value,timestamp")
        return points, runs
    folder = Path(target).resolve().parent
    fd, tmp = tempfile.mkstemp(prefix=".export-", dir=folder)
    os.close(fd)
    try:
        if parquet:
            import pyarrow as pa
            import pyarrow.parquet as pq

            from .tracking.frames import empty_histories

            writer = None
            for frame in pages:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                writer = writer or pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
                points, runs = points + len(frame), runs + frame["run_id"].nunique()
            if writer is None:
                pq.write_table(pa.Table.from_pandas(empty_histories(), preserve_index=False), tmp)
            else:
                writer.close()
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as out:
                out.write("run_id,key,step,value,timestamp\n")
                for frame in pages:
                    frame.to_csv(out, index=False, header=False)
                    points, runs = points + len(frame), runs + frame["run_id"].nunique()
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return points, runs


_COMMANDS["export"] = _run_export


# ---------------------------------------------------------------------------------------------
# diagnose --spark: the runs spread over Spark tasks (spark.diagnose_experiment)

def _add_spark_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("spark")
    group.add_argument("--spark", nargs="?", const="", default=None, metavar="MASTER",
                       help="diagnose on Spark (pyspark): MASTER such as local[4] or "
                       "spark://host:7077; bare, the master spark-submit or the environment "
                       "configures (local[*] otherwise)")
    group.add_argument("--runs-per-task", type=int, default=250, metavar="N",
                       help="runs per Spark task (default: 250)")


def _run_diagnose_spark(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.dry_run:
        parser.error("--dry-run is not available with --spark")
    if args.runs_per_task < 1:
        parser.error("--runs-per-task must be >= 1")
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        _err("--spark needs pyspark: pip install 'mlflow-plateau[spark]'")
        return EXIT_FAILED
    from .spark import diagnose_experiment, spark_session

    spark = spark_session(args.spark or None)
    frame = diagnose_experiment(spark, run_ids=args.run_ids or None,
                                experiment_name=args.experiment_name,
                                experiment_id=args.experiment_id,
                                filter_string=args.filter_string, tracking_uri=args.tracking_uri,
                                runs_per_task=args.runs_per_task, artifacts=args.artifacts,
                                database_uri=args.database_uri,
                                options=_diagnosis_options(args))
    rows = [r.asDict() for r in frame.collect()]
    failed = [r for r in rows if r["error"] is not None]
    for r in failed:
        _err(f"run {r['run_id']}: {r['error']}")
    done = [r for r in rows if r["error"] is None]
    if args.json:
        print(json.dumps({"runs": [{k: v for k, v in r.items() if k != "error"} for r in done],
                          "failures": [{"run_id": r["run_id"], "error": r["error"]}
                                       for r in failed]}, indent=2))
    elif done:
        _print_table(f"{len(done)} run(s) diagnosed on Spark",
                     ["run", "verdict", "plateau epoch", "best value", "gap", "wasted epochs"],
                     [[_printable(r["run_id"]), r["verdict"], _fmt(r["plateau/epoch"]),
                       _fmt(r["plateau/best_value"]), _fmt(r["gap/final"]),
                       _fmt(r["plateau/wasted_epochs"])] for r in done])
    if not rows:
        _err("nothing to diagnose: no active run matches")
    return EXIT_FAILED if failed else _gate([r["verdict"] for r in done], args.fail_on)


def _unrecognized(parser: argparse.ArgumentParser, command: str | None, extra: list[str]) -> None:
    """Refuse unknown arguments with the usage of the command they were given to.

    argparse reports them with the top-level usage, which shows none of the command's options;
    Python 3.12's ``suggest_on_error`` is not in 3.10, so the suggestion comes from difflib.
    """
    import difflib

    target = parser
    for action in parser._actions:  # the one place argparse keeps its subparsers
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            target = action.choices[command]
    options = [o for a in target._actions for o in a.option_strings]
    hints = []
    for arg in extra:
        if arg.startswith("-"):
            close = difflib.get_close_matches(arg.split("=", 1)[0], options, n=1, cutoff=0.6)
            if close:
                hints.append(f"{arg}: did you mean {close[0]}?")
    target.error(f"unrecognized arguments: {' '.join(extra)}"
                 + ("".join(f"\n  {h}" for h in hints)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:
            _unrecognized(parser, args.command, extra)
    except SystemExit as exc:  # argparse: usage errors exit 2, --help/--version exit 0
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command == "curves":
        if argv is None:  # this process is the command: read event files without TensorFlow
            from .tensorboard_log import without_tensorflow

            without_tensorflow()
        return _run_curves(args)
    try:
        with command_environment(), _notices_as_lines():
            return _COMMANDS[args.command](args, parser)
    except SystemExit as exc:  # parser.error from a command's own checks
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_FAILED
    except Exception as exc:
        if _debug():
            _redact_uncaught()
            raise
        _err(_first_line(exc))
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
