"""``main``: every scenario variant of ``claims.CLAIMS`` in one experiment, diagnosed and judged.

The scenario runs are nested under one suite run, so each invocation (one seed) is one tree in the
MLflow UI with ``claims.md`` on its root (the table, rendered by ``claims_report``) and
``claims.json`` (the outcomes it was rendered from, which ``projects.claims_table`` reads to write
the committed ``projects/CLAIMS.md``). Everything goes to one experiment: the one ``mlflow run``
put its own run in (``--experiment-name``), or ``experiment`` when given, or
``mlflow-plateau-scenarios`` when ``main`` runs outside ``mlflow run``. The run ``mlflow run``
made is the suite run when it is in that experiment; when ``experiment`` names another one, a
suite run is created there, the two files go on both runs, and a line says how to keep one
experiment. Suite and launcher runs are tagged ``plateau.kind = container`` (they hold no curve,
so ``mlflow-plateau diagnose`` skips them). Each variant trains in-process (no nested
``mlflow run``: one Python/TensorFlow start-up instead of twenty), then all runs are diagnosed
through ``diagnosis.diagnose_scenarios``, which writes the verdict tags, diagnostic metrics and
report onto each run. A variant that fails is reported and the rest go on.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import Any

import mlflow

from mlflow_plateau.tracking.store import KIND_CONTAINER, TAG_KIND

from .claims import BY_KEY, CLAIMS, Claim, Outcome
from .claims_report import HELD_TEXT, claims_table, held_count, held_summary, rows_to_json
from .diagnosis import diagnose_scenarios, outcome_of, ui_line
from .mlflow_log import log_params
from .params import ParamError, parse_params, scenario_spec
from .runner import ScenarioRun, run_scenario
from .scenarios import MemoryRefused

MAIN_TAGS = {"scenario": "main", "scenario.source": "all", "scenario.claim": "Every claim of the five "
             "seed documents, measured and judged (see claims.md)."}


def variant_options(claim: Claim, seed: int, epochs: int, profile: str) -> dict[str, Any]:
    """The parsed options of one variant: the scenario's defaults, the claim's options, the run's."""
    options = parse_params(claim.scenario, {}, scenario_spec(claim.scenario))
    options.update(claim.options)
    options.update(seed=seed, epochs=epochs, profile=profile)
    return options


DEFAULT_EXPERIMENT = "mlflow-plateau-scenarios"


def _experiment_id(client: mlflow.MlflowClient, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    return experiment.experiment_id if experiment else client.create_experiment(name)


def target_experiment(client: mlflow.MlflowClient, name: str, launcher: str | None) -> tuple[str, str]:
    """(id, name) of the experiment ``main`` logs to: ``name`` when given, else the launcher run's
    experiment, else ``DEFAULT_EXPERIMENT`` (created when missing)."""
    if not name and launcher:
        experiment = client.get_experiment(client.get_run(launcher).info.experiment_id)
        return experiment.experiment_id, experiment.name
    name = name or DEFAULT_EXPERIMENT
    return _experiment_id(client, name), name


def run_main(options: Mapping[str, Any], out=sys.stdout) -> list[tuple[Claim, Outcome, bool | None]]:
    """Run every variant (or ``options["only"]``), diagnose, judge, print and log the claims table."""
    only = set(options["only"])
    unknown = only - {c.scenario for c in CLAIMS}
    if unknown:
        raise ParamError(f"main: parameter 'only' names unknown scenario(s): {', '.join(sorted(unknown))}")
    claims = [c for c in CLAIMS if not only or c.scenario in only]
    client = mlflow.MlflowClient()
    launcher = os.environ.pop("MLFLOW_RUN_ID", None)  # else every start_run would resume it
    target, experiment = target_experiment(client, options["experiment"], launcher)
    suite_tags = {**MAIN_TAGS, "scenario.profile": options["profile"], TAG_KIND: KIND_CONTAINER}
    if launcher:
        client.set_tag(launcher, TAG_KIND, KIND_CONTAINER)
    if launcher and client.get_run(launcher).info.experiment_id == target:
        suite = launcher
        client.log_batch(suite, tags=[mlflow.entities.RunTag(k, v) for k, v in suite_tags.items()])
    else:
        extra = {"suite.launcher_run_id": launcher} if launcher else {}
        suite = client.create_run(target, run_name=f"main seed={options['seed']}",
                                  tags={**suite_tags, **extra}).info.run_id
        if launcher:
            elsewhere = client.get_experiment(client.get_run(launcher).info.experiment_id).name
            print(f"note: mlflow run logged its own run in experiment {elsewhere!r}, the scenarios "
                  f"go to {experiment!r}; to keep one experiment, pass --experiment-name "
                  f"{experiment!r} to mlflow run instead of -P experiment", file=out, flush=True)
    log_params(suite, {"seed": options["seed"], "epochs": options["epochs"],
                       "profile": options["profile"], "experiment": experiment})

    print(f"mlflow-plateau scenarios: {len(claims)} variants, profile {options['profile']}, seed "
          f"{options['seed']}, experiment {experiment!r}", file=out, flush=True)
    start = time.monotonic()
    runs: dict[str, ScenarioRun] = {}
    failed: dict[str, Outcome] = {}
    for i, claim in enumerate(claims, 1):
        t0 = time.monotonic()
        opts = variant_options(claim, options["seed"], options["epochs"], options["profile"])
        try:
            runs[claim.key] = run_scenario(claim.scenario, opts, experiment_id=target,
                                           parent_run_id=suite, run_name=claim.key)
            status = "trained"
        except MemoryRefused as exc:
            failed[claim.key] = Outcome(claim.key, verdict="refused", detail=str(exc),
                                        metrics={"memory/projected_bytes": exc.projected,
                                                 "memory/available_bytes": exc.available})
            status = f"refused ({exc.projected / 1e9:.1f} GB needed, {exc.available / 1e9:.1f} GB free)"
        except Exception as exc:  # one broken variant must not stop the others
            failed[claim.key] = Outcome(claim.key, verdict="error", detail=f"{type(exc).__name__}: {exc}")
            status = f"ERROR {type(exc).__name__}: {exc}"
        print(f"[{i:2d}/{len(claims)}] {claim.key:<48} {status}  {time.monotonic() - t0:6.1f}s",
              file=out, flush=True)

    print("diagnosing the runs ...", file=out, flush=True)
    t0 = time.monotonic()
    diagnoses = diagnose_scenarios(runs)
    outcomes = {key: outcome_of(key, run, diagnoses) for key, run in runs.items()} | failed
    rows = []
    for claim in claims:
        outcome = outcomes[claim.key]
        held = BY_KEY[claim.key].judge(outcome, outcomes)
        rows.append((claim, outcome, held))
        if outcome.run_id:
            client.set_tag(outcome.run_id, "scenario.claim_held", HELD_TEXT[held])
    table = claims_table({options["seed"]: rows})
    held, judged = held_count(rows)
    for run_id in {suite, launcher} - {None}:
        client.log_text(run_id, table, "claims.md")
        client.log_dict(run_id, {"seed": options["seed"], "profile": options["profile"],
                                 "epochs": options["epochs"], "rows": rows_to_json(rows)}, "claims.json")
        client.log_metric(run_id, "claims/held", held)
        client.log_metric(run_id, "claims/judged", judged)
    print(f"diagnosed in {time.monotonic() - t0:.1f}s\n", file=out)
    print(table, file=out)
    print(f"{held_summary({options['seed']: rows})} Total {time.monotonic() - start:.0f}s.", file=out)
    if launcher is None or suite != launcher:
        client.set_terminated(suite)
    print(f"\nclaims.md is under the suite run's Artifacts, each scenario run nested under it:\n"
          f"{ui_line(suite)}", file=out, flush=True)
    return rows
