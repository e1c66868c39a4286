"""The names this package writes to MLflow: the contract of docs/design.md ("What is written to
MLflow"), as code. Every module that writes or recognises one of them imports it from here.

Metrics: ``PLATEAU_METRICS``, ``GAP_METRICS``, ``FORECAST_METRICS``, ``SCALING_METRICS`` and
``best/<metric>`` (``BEST_PREFIX``), all under ``OWN_PREFIXES`` (``is_own_key``; ``user_curves``
leaves them out of a run's own curves). Tags: ``plateau.*`` (``TAG_*``), ``scaling.*`` on the
members of a scaling group, ``plateau.kind`` values of runs that hold no training curve by design
(``NOT_TRAINING_KINDS``), and MLflow's own ``mlflow.parentRunId`` (``TAG_PARENT``).
``MAX_TAG_CHARS`` bounds what a tag value may hold.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..curves import Curve

OWN_PREFIXES = ("plateau/", "gap/", "scaling/", "forecast/", "best/")
PLATEAU_METRICS = ("plateau/epoch", "plateau/epoch_low", "plateau/epoch_high", "plateau/best_epoch",
                   "plateau/best_value", "plateau/stop_epoch", "plateau/wasted_epochs")
GAP_METRICS = ("gap/final", "gap/at_best", "gap/relative_final", "gap/trend")
SCALING_METRICS = ("scaling/slope", "scaling/exponent", "scaling/gain_at_2x")
FORECAST_METRICS = ("forecast/value_at_2x", "forecast/value_at_2x_low", "forecast/value_at_2x_high",
                    "forecast/epochs_to_plateau", "forecast/gain_if_doubled")
BEST_PREFIX = "best/"  # best/<metric>: each metric's value at the monitor's best epoch
TAG_VERDICT, TAG_SUMMARY, TAG_MONITOR, TAG_VERSION = (
    "plateau.verdict", "plateau.summary", "plateau.monitor", "plateau.version")
TAG_DIGEST, TAG_PARTIAL, TAG_KIND = "plateau.digest", "plateau.partial", "plateau.kind"
TAG_HISTORY = "plateau.history"  # unchanged.history_digest, beside plateau.digest
TAG_SCALING_VERDICT, TAG_SCALING_GROUP = "scaling.verdict", "scaling.group"
TAG_SCALING_SIZE_PARAM = "scaling.size_param"
TAG_SCALING_METRIC = "scaling.metric"
# The options a user gave for a run (JSON): reused by later diagnoses unless overridden, so a
# default run of the tool never silently flips a verdict decided with, say, --num-classes.
TAG_OPTIONS = "plateau.options"

KIND_CONTAINER = "container"
# ``plateau.kind`` values of runs that hold no training curve by design, as a message names them:
# the scaling and comparison summaries this package logs, and container runs that only group or
# launch other runs (the MLproject's ``data_scaling`` and ``learning_curve`` parents, ``main``'s
# suite run, a ``memory_pressure`` run refused before training). Diagnosing, comparing and
# scaling skip them.
NOT_TRAINING_KINDS = {"scaling": "a scaling summary run", "comparison": "a comparison summary run",
                      KIND_CONTAINER: "a container run (it groups other runs)"}
TAG_PARENT = "mlflow.parentRunId"  # MLflow's tag on a nested run, naming its parent
MAX_TAG_CHARS = 5000      # MLflow limits tag values to 8000 characters; stay well below


def is_own_key(name: str) -> bool:
    return name.startswith(OWN_PREFIXES)


def user_curves(curves: Mapping[str, Curve]) -> dict[str, Curve]:
    """The run's own curves: everything but this package's results (``OWN_PREFIXES``)."""
    return {name: c for name, c in curves.items() if not is_own_key(name)}
