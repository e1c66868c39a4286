"""Run one scenario as one MLflow run: seed, tag, log params, train, log what it measured.

``run_scenario`` is what every entry point (and ``main``, in-process) calls. Inside ``mlflow run``
the run already exists (``MLFLOW_RUN_ID``) and is resumed; otherwise a run is created in the
given experiment (by default the active run's), nested under the active run or under
``parent_run_id`` when given. Diagnosing the run is the caller's part (``diagnosis``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import keras
import mlflow

from mlflow_plateau.tracking.store import KIND_CONTAINER, TAG_KIND

from .claims import claim_for
from .mlflow_log import MetricBuffer, log_params
from .scenarios import DEFAULT_EPOCHS, SCENARIOS, Context, MemoryRefused, Trained

PARENT_TAG = "mlflow.parentRunId"


@dataclass
class ScenarioRun:
    """A finished scenario run: its id, variant key and what it trained."""

    run_id: str
    key: str
    trained: Trained


def resolve_epochs(scenario: str, options: Mapping[str, Any]) -> int:
    """The epochs to train: the ``epochs`` option, or the profile's default when it is 0."""
    quick, seed = DEFAULT_EPOCHS[scenario]
    return int(options["epochs"]) or (quick if options["profile"] == "quick" else seed)


def scenario_tags(scenario: str, options: Mapping[str, Any]) -> dict[str, str]:
    """The tags every run of a scenario carries: name, seed document, claim, variant, profile."""
    claim = claim_for(scenario, options)
    return {"scenario": scenario, "scenario.source": claim.source, "scenario.claim": claim.claim,
            "scenario.variant": claim.key, "scenario.profile": str(options["profile"])}


def _loggable(options: Mapping[str, Any]) -> dict[str, Any]:
    # ``fraction`` is a tag, not a param: runs that differ only in size then share all params
    # but ``train_size``, which is how ``mlflow-plateau scaling`` groups a learning curve.
    # ``diagnose`` says what the entry point does after training, not how it trained.
    out = {}
    for name, value in options.items():
        if name in ("fraction", "diagnose"):
            continue
        out[name] = ",".join(map(str, value)) if isinstance(value, (tuple, list)) else value
    return out


def run_scenario(scenario: str, options: Mapping[str, Any], *, experiment_id: str | None = None,
                 parent_run_id: str | None = None, run_name: str | None = None,
                 extra_tags: Mapping[str, str] | None = None) -> ScenarioRun:
    """Train ``scenario`` with parsed ``options`` (see ``params.scenario_spec``) in one MLflow run.

    Raises ``MemoryRefused`` (the run is marked FAILED with tags ``scenario.error`` and
    ``plateau.kind = container``: it holds no curve) when ``memory_pressure`` in-memory mode would
    not fit.
    """
    options = dict(options)
    epochs = resolve_epochs(scenario, options)
    keras.utils.set_random_seed(int(options["seed"]))
    tags = {**scenario_tags(scenario, options), **(extra_tags or {})}
    if options.get("fraction", 1.0) != 1.0:
        tags["scenario.fraction"] = str(options["fraction"])
    resuming = os.environ.get("MLFLOW_RUN_ID") and mlflow.active_run() is None
    if parent_run_id:
        tags[PARENT_TAG] = parent_run_id
    start: dict[str, Any] = {"run_name": run_name, "tags": tags}
    if not resuming:
        active = mlflow.active_run()
        if experiment_id is None and active is not None:
            experiment_id = active.info.experiment_id  # nested runs stay with their parent
        start["experiment_id"] = experiment_id
        start["nested"] = active is not None
    with mlflow.start_run(**start) as run:
        if resuming:  # tags given to start_run are not applied to a resumed run
            mlflow.set_tags(tags)
        ctx = Context(options, epochs, MetricBuffer(run.info.run_id), tags)
        trained: Trained | None = None
        try:
            trained = SCENARIOS[scenario](ctx)
        except MemoryRefused as exc:
            mlflow.set_tags({"scenario.error": str(exc), "memory.refused": "true",
                             TAG_KIND: KIND_CONTAINER})
            mlflow.log_metrics({"memory/projected_bytes": float(exc.projected),
                                "memory/available_bytes": float(exc.available)})
            raise
        finally:
            ctx.buffer.flush()
            # Logged once at the end so that values the scenario resolved (profile sizes) win.
            log_params(run.info.run_id, {**_loggable(options), "epochs": epochs,
                                         **(trained.params if trained else {})})
        if trained.metrics:
            mlflow.log_metrics(trained.metrics)
    return ScenarioRun(run.info.run_id, tags["scenario.variant"], trained)
