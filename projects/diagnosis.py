"""The end of an entry point: diagnose the runs a scenario logged, judge its claim, say so.

``diagnose_scenarios`` diagnoses finished scenario runs through ``mlflow_plateau.tracking``
(which writes the verdict tags, metrics and report onto each run): a run with curves is diagnosed
itself; a parent that only groups nested runs (``data_scaling``) has its children diagnosed, and
its own result is its scaling verdict. ``outcome_of`` turns a run and its diagnosis into the
``claims.Outcome`` a claim is judged on. ``report_scenario`` does both for one entry point and
prints the verdict, the summary, the claim with whether it held, and ``ui_line``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

import mlflow

from .claims import Claim, Outcome, claim_for
from .claims_report import HELD_TEXT

if TYPE_CHECKING:
    from .runner import ScenarioRun

def diagnose_scenarios(runs: Mapping[str, ScenarioRun]) -> dict[str, Any]:
    """run id -> ``Diagnosis`` or ``RunFailure`` for every run with curves among ``runs``
    (the children of a parent run in its place), written back to each run."""
    from mlflow_plateau.tracking import diagnose_runs

    by_classes: dict[int | None, list[str]] = {}
    for run in runs.values():
        ids = [run.run_id] if not run.trained.children else list(run.trained.children)
        by_classes.setdefault(run.trained.num_classes, []).extend(ids)
    results = {}
    for num_classes, ids in by_classes.items():
        for result in diagnose_runs(ids, num_classes=num_classes):
            results[result.run_id] = result
    return results


def outcome_of(key: str, run: ScenarioRun, diagnoses: Mapping[str, Any]) -> Outcome:
    """What was measured for one variant: its scaling verdict for a parent of a learning curve,
    else its run's diagnosis (verdict ``error`` with the reason when it could not be diagnosed)."""
    trained = run.trained
    out = Outcome(key, run.run_id, params=dict(trained.params), metrics=dict(trained.metrics))
    if trained.scaling is not None:
        out.verdict, out.detail = trained.scaling.verdict, trained.scaling.summary
        gain = trained.scaling.fit.gain_at_2x
        if gain is not None:
            out.metrics["scaling/gain_at_2x"] = gain
        return out
    d = diagnoses.get(run.run_id)
    if d is None or not hasattr(d, "verdict"):
        out.verdict, out.detail = "error", getattr(d, "reason", "not diagnosed")
        return out
    out.verdict, out.detail = d.verdict, d.summary
    out.plateau_epoch = d.plateau.epoch if d.plateau is not None else None
    out.best = d.plateau.best_value if d.plateau is not None else None
    out.gap = d.gap.final if d.gap is not None else None
    return out


def ui_line(run_id: str) -> str:
    """One line naming the run and how to open the MLflow UI on it (a server's own URL, or the
    ``mlflow ui`` command for a local store: ``tracking.ui.run_line``)."""
    from mlflow_plateau.tracking.ui import run_line

    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    where = f"run {run.info.run_name!r} ({run_id[:8]}) in experiment {experiment.name!r}"
    return f"{where}: {run_line(mlflow.get_tracking_uri(), experiment.experiment_id, run_id)}"


def _held_text(claim: Claim, out: Outcome, held: bool | None) -> str:
    if held is None:
        if claim.check is not None and out.verdict not in (None, "error"):
            return ("n/a: it compares with another variant of the scenario; `mlflow run . -e main` "
                    "runs them all and judges every claim")
        return f"n/a: not measured ({out.detail})"
    expected = f"expected {' or '.join(sorted(claim.expected))}; " if claim.expected else ""
    check = f"{claim.check_text}; " if claim.check_text else ""
    return f"{HELD_TEXT[held]} ({expected}{check}measured {out.verdict})"


def report_scenario(scenario: str, options: Mapping[str, Any], run: ScenarioRun,
                    out: TextIO = sys.stdout) -> Outcome:
    """Diagnose what one entry point logged, tag ``scenario.claim_held``, print the verdict, the
    summary, the claim with whether it held, each nested run's verdict and ``ui_line``."""
    diagnoses = diagnose_scenarios({run.key: run})
    claim = claim_for(scenario, options)
    result = outcome_of(run.key, run, diagnoses)
    held = claim.judge(result, {run.key: result})
    mlflow.MlflowClient().set_tag(run.run_id, "scenario.claim_held", HELD_TEXT[held])
    print(f"verdict: {result.verdict}\nsummary: {result.detail}\n"
          f"claim ({claim.source}): {claim.claim}\nclaim held: {_held_text(claim, result, held)}",
          file=out)
    for child in run.trained.children:
        d = diagnoses.get(child)
        print(f"  nested run {child[:8]}: {getattr(d, 'verdict', None) or 'not diagnosed'}"
              f" ({getattr(d, 'summary', None) or getattr(d, 'reason', '')})", file=out)
    print(ui_line(run.run_id), file=out, flush=True)
    return result
