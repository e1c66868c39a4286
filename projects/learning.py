"""``learning_curve``: did my data run out? Train one scenario on growing fractions of its data.

Each fraction is a nested child run (param ``train_size``, in the parent's experiment); the error
of a child is its best ``val_loss``. ``mlflow_plateau``'s ``scaling_fit`` and ``scaling_verdict``
read the curve; the parent run (tag ``plateau.kind = container``: it holds no curve itself) gets
the verdict and ``scaling/gain_at_2x`` and the answer is printed in plain words. Unless
``diagnose`` is false, each child is then diagnosed and the parent is named with how to open the
MLflow UI on it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import mlflow

from mlflow_plateau.tracking.store import KIND_CONTAINER, TAG_KIND
from mlflow_plateau.verdict import ScalingVerdict

from .diagnosis import diagnose_scenarios, ui_line
from .mlflow_log import log_params, log_scaling
from .params import ParamError, parse_params, scenario_spec
from .runner import run_scenario

ANSWERS = {
    "data_limited": "No, your data has not run out: doubling it is predicted to cut the error by {pct}.",
    "diminishing_returns": "Nearly: doubling the data is predicted to cut the error by only {pct}; "
                           "capacity, features or regularization are likelier to pay off.",
    "saturated": "Yes: more of the same data is not predicted to help (gain at 2x: {pct}); change the "
                 "model or the data's quality instead.",
    "insufficient_points": "Cannot tell: fewer than 3 distinct training sizes were trained.",
}


def answer(verdict: ScalingVerdict) -> str:
    """The plain-words answer to "did my data run out?" for a scaling verdict."""
    gain = verdict.fit.gain_at_2x
    pct = f"{100 * gain:.1f}%" if gain is not None else "unknown"
    return ANSWERS[verdict.verdict].format(pct=pct)


def run_learning_curve(options: Mapping[str, Any], out=sys.stdout) -> ScalingVerdict:
    """Train ``options["scenario"]`` at each of ``options["fractions"]`` and diagnose the curve."""
    scenario = options["scenario"]
    if scenario == "data_scaling":
        raise ParamError("learning_curve: data_scaling is itself a learning curve; run it directly")
    fractions = sorted(set(options["fractions"]))
    base = parse_params(scenario, {}, scenario_spec(scenario))
    base.update(seed=options["seed"], epochs=options["epochs"], profile=options["profile"])
    tags = {"scenario": "learning_curve", "scenario.source": "000_3ca61323e7035021.txt",
            "scenario.claim": "Did my training data run out? (the learning curve answers it)",
            "learning_curve.scenario": scenario}
    with mlflow.start_run(run_name=f"learning_curve {scenario}") as parent:
        mlflow.set_tags({**tags, TAG_KIND: KIND_CONTAINER})
        log_params(parent.info.run_id, {"scenario": scenario,
                                        "fractions": ",".join(f"{f:g}" for f in fractions),
                                        **{k: options[k] for k in ("seed", "epochs", "profile")}})
        children, sizes, errors, runs = [], [], [], {}
        for fraction in fractions:
            run = run_scenario(scenario, {**base, "fraction": fraction},
                               run_name=f"{scenario} fraction={fraction:g}")
            history = run.trained.history
            if not history.get("val_loss"):
                raise ValueError(f"learning_curve: {scenario} logged no val_loss to build a curve from")
            children.append(run.run_id)
            runs[run.run_id] = run
            sizes.append(int(run.trained.params["train_size"]))
            errors.append(min(history["val_loss"]))
            print(f"  {scenario} fraction={fraction:g}: train_size={sizes[-1]}, best val_loss="
                  f"{errors[-1]:.4g}", file=out, flush=True)
        verdict = log_scaling(parent.info.run_id, children, sizes, errors)
        text = answer(verdict)
        mlflow.set_tag("learning_curve.answer", text)
    print(f"\nscaling verdict: {verdict.verdict}\n{verdict.summary}\nDid my data run out? {text}",
          file=out, flush=True)
    if options.get("diagnose", True):
        diagnoses = diagnose_scenarios(runs)
        for run_id, run in runs.items():
            d = diagnoses.get(run_id)
            print(f"  {run.key} fraction run {run_id[:8]}: "
                  f"{getattr(d, 'verdict', None) or 'not diagnosed'} "
                  f"({getattr(d, 'summary', None) or getattr(d, 'reason', '')})", file=out)
        print(ui_line(parent.info.run_id), file=out, flush=True)
    return verdict
