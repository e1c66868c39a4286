"""The parts of the command line that the commands share.

The exit codes (``EXIT_*``) and the ``--fail-on`` gate (``gate``); the option groups
(``add_run_selection``, ``add_store_options``, ``add_artifacts_option``,
``add_diagnosis_options``, ``add_fail_on_option``) and ``diagnosis_options``, which turns the
parsed diagnosis options into one ``DiagnosisOptions``; ``option``, the argparse ``type`` that
checks a diagnosis option with the core's own check; each command's examples (``EXAMPLES``,
``add_examples``); and ``unrecognized``, which refuses an unknown argument with the usage of the
command it was given to. Nothing here imports mlflow: ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..options import DiagnosisOptions

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# --fail-on: a CI gate. Its own code, so a pipeline can tell "a run has a listed verdict" from
# "the command failed" (1) and "bad usage" (2); a failure to diagnose wins over it.
EXIT_VERDICT = 3


def gate(verdicts: Sequence[str], fail_on: frozenset[str] | None) -> int:
    """The exit code of runs diagnosed with these verdicts: ``EXIT_VERDICT`` when one is listed
    in ``--fail-on``, else ``EXIT_OK``."""
    return EXIT_VERDICT if fail_on and any(v in fail_on for v in verdicts) else EXIT_OK


def option(name: str, parse: Callable[[str], Any] = float) -> Callable[[str], Any]:
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
        from ..options import DiagnosisOptions  # imported when an option is given, not for --help

        try:
            DiagnosisOptions(**{name: value})
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value
    return convert


def add_diagnosis_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``DiagnosisOptions`` (each under its field's name) and ``--json``."""
    group = parser.add_argument_group("diagnosis options")
    group.add_argument("--monitor", "--val-metric", dest="monitor",
                       help="metric to diagnose (default: val_loss, else the first validation "
                       "loss, else any validation metric; a tracked run with only training "
                       "metrics needs this option, a log file falls back to its training loss)")
    group.add_argument("--train-metric", help="training metric paired with the monitor "
                       "(default: found by name, e.g. loss for val_loss)")
    group.add_argument("--mode", choices=["min", "max"],
                       help="whether lower or higher is better (default: from the metric name)")
    group.add_argument("--patience", type=option("patience", int), default=10, metavar="N",
                       help="EarlyStopping patience for the would-be stop epoch (default: 10)")
    group.add_argument("--min-delta", type=option("min_delta"), default=0.0, metavar="X",
                       help="smallest change that counts as an improvement, in the metric's "
                       "units (default: 0)")
    group.add_argument("--relative-delta", type=option("relative_delta"), default=0.01,
                       metavar="F",
                       help="tolerance as a fraction of the curve's total improvement "
                       "(default: 0.01)")
    group.add_argument("--num-classes", type=option("num_classes", int), metavar="K",
                       help="number of classes, for the chance level ln(K) / 1/K (default: read "
                       "off the run when its accuracy and loss agree on one, else unknown); kept "
                       "with the run's diagnosis and reused by later commands")
    group.add_argument("--chance", type=option("chance"), metavar="X",
                       help="the monitor's chance level itself, e.g. the loss of a constant "
                       "predictor (kept with the run's diagnosis like --num-classes)")
    group.add_argument("--json", action="store_true", help="print machine-readable JSON")


def diagnosis_options(args: argparse.Namespace) -> DiagnosisOptions:
    """The ``DiagnosisOptions`` of the command line (every option parser adds one of its fields
    under the same name; each value was checked when parsed)."""
    from ..options import DiagnosisOptions

    return DiagnosisOptions(**{name: getattr(args, name) for name in DiagnosisOptions.names()
                               if hasattr(args, name)})


def _verdict_list(text: str) -> frozenset[str]:
    """``--fail-on``'s value: comma-separated verdict names, each one of ``VERDICTS``."""
    from ..verdict import VERDICTS

    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    unknown = sorted(names - set(VERDICTS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown verdict {', '.join(unknown) or repr(text)}; valid: {', '.join(VERDICTS)}")
    return names


def add_fail_on_option(parser: argparse.ArgumentParser) -> None:
    """``--fail-on VERDICT[,VERDICT...]`` (see ``gate``)."""
    parser.add_argument("--fail-on", type=_verdict_list, metavar="VERDICT[,VERDICT...]",
                        help=f"CI gate: exit {EXIT_VERDICT} when any diagnosed run's verdict is "
                        "one of these (e.g. diverged,at_chance); 0 otherwise")


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """``--tracking-uri``."""
    parser.add_argument("--tracking-uri", metavar="URI",
                        help="tracking store (default: MLFLOW_TRACKING_URI, else MLflow's default "
                        "sqlite:///mlflow.db)")


def add_artifacts_option(parser: argparse.ArgumentParser) -> None:
    """``--artifacts all|json|none``: what a diagnosis writes under ``plateau/``."""
    parser.add_argument("--artifacts", choices=["all", "json", "none"], default="all",
                        help="artifacts to write under plateau/: diagnosis.json, curves.png and "
                        "report.html (all), only diagnosis.json (json), or none (default: all)")


def add_run_selection(parser: argparse.ArgumentParser, verb: str, runs_help: str) -> None:
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


def add_examples(parser: argparse.ArgumentParser) -> None:
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


def unrecognized(parser: argparse.ArgumentParser, command: str | None, extra: list[str]) -> None:
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
