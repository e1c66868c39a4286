"""The entry point behind every ``MLproject`` entry point.

    python -m projects.run SCENARIO [--seed N] [--epochs N] [--profile quick|seed] [--NAME VALUE ...]
    python -m projects.run main [--seed N] [--epochs N] [--profile P] [--experiment NAME] [--only A,B]
    python -m projects.run learning_curve --scenario NAME [--fractions 1/8,1/4,1/2,1] ...
    python -m projects.run diagnose --args "RUN_ID ... [mlflow-plateau diagnose options]"

Each scenario and ``learning_curve`` end by diagnosing what they logged (``--diagnose false``
skips it) and printing the verdict, the summary, the claim with whether it held, and how to open
the MLflow UI on the run.

Every value is validated (``params``) before TensorFlow is even imported; a bad one exits with
status 2 and a message naming the parameter. Without ``MLFLOW_TRACKING_URI`` the store is
MLflow's default (``sqlite:///mlflow.db`` in the working directory).
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported anywhere

from .params import SCENARIO_PARAMS, SUITE_PARAMS, ParamError, parse_params, scenario_spec

ENTRIES = (*SCENARIO_PARAMS, *SUITE_PARAMS, "diagnose")
USAGE = __doc__


def parse_flags(entry: str, argv: Sequence[str]) -> dict[str, str]:
    """``--name value`` / ``--name=value`` pairs (dashes in names read as underscores)."""
    raw: dict[str, str] = {}
    items = list(argv)
    while items:
        item = items.pop(0)
        if not item.startswith("--") or item == "--":
            raise ParamError(f"{entry}: expected --NAME VALUE, got {item!r}")
        name, eq, value = item[2:].partition("=")
        if not eq:
            if not items:
                raise ParamError(f"{entry}: parameter {name!r} has no value")
            value = items.pop(0)
        raw[name.replace("-", "_")] = value
    return raw


def _quiet() -> None:
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)


def _mark_launcher() -> None:
    """Tag the run ``mlflow run`` made for the ``diagnose`` entry point as a container: it holds
    no curve, and diagnosing its experiment must skip it."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if run_id:
        import mlflow

        from mlflow_plateau.tracking.store import KIND_CONTAINER, TAG_KIND

        mlflow.MlflowClient().set_tag(run_id, TAG_KIND, KIND_CONTAINER)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        print("entry points:", ", ".join(ENTRIES))
        return 0 if args else 2
    entry, rest = args[0], args[1:]
    try:
        if entry == "diagnose":
            raw = parse_flags(entry, rest)
            unknown = set(raw) - {"args"}
            if unknown:
                raise ParamError(f"diagnose: unknown parameter(s) {', '.join(sorted(unknown))}; "
                                 "pass the command's options inside --args")
            from mlflow_plateau.cli import main as cli_main

            _mark_launcher()
            return cli_main(["diagnose", *shlex.split(raw.get("args", ""))])
        if entry in SUITE_PARAMS:
            options = parse_params(entry, parse_flags(entry, rest), SUITE_PARAMS[entry])
        elif entry in SCENARIO_PARAMS:
            options = parse_params(entry, parse_flags(entry, rest), scenario_spec(entry))
        else:
            raise ParamError(f"unknown entry point {entry!r}; choose one of {', '.join(ENTRIES)}")
        _quiet()
        if entry == "main":
            from .suite import run_main

            run_main(options)
        elif entry == "learning_curve":
            from .learning import run_learning_curve

            run_learning_curve(options)
        else:
            from .runner import run_scenario
            from .scenarios import MemoryRefused

            start = time.monotonic()
            try:
                run = run_scenario(entry, options)
            except MemoryRefused as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            print(f"{run.key}: run {run.run_id} finished in {time.monotonic() - start:.1f}s",
                  flush=True)
            if options["diagnose"]:
                from .diagnosis import report_scenario

                report_scenario(entry, options, run)
    except ParamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
