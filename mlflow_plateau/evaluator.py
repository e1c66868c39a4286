"""The ``plateau`` model evaluator: diagnose a training history with ``mlflow.models.evaluate``.

Usage (the evaluator is registered through the ``mlflow.model_evaluator`` entry point ``plateau``)::

    history_df = pd.read_csv("training.log")          # a Keras CSVLogger file, or
    history_df = pd.DataFrame(model.fit(...).history)  # a Keras History, one row per epoch
    with mlflow.start_run():
        result = mlflow.models.evaluate(data=history_df, model_type="training-curve",
                                        evaluators="plateau",
                                        evaluator_config={"patience": 5})
    result.metrics["plateau/epoch"], result.artifacts["report.html"].uri

How this fits MLflow 3's evaluation API (``mlflow/models/evaluation/base.py``):

- ``model_type`` is not checked against a fixed list: ``evaluate`` only insists on ``targets`` for
  ``"classifier"``/``"regressor"`` and on ``extra_metrics`` for ``None``, then asks every chosen
  evaluator's ``can_evaluate``. A plugin's own model type is therefore the supported way in, and
  ``can_evaluate`` here accepts exactly ``"training-curve"``: with ``evaluators=None`` (all
  registered evaluators) a classifier or regressor evaluation never reaches this evaluator, and the
  built-in evaluators (``default`` accepts only MLflow's own model types) never see a training
  curve. ``evaluators="plateau"`` is still the clearest call.
- ``model`` stays ``None``: the data is the model's training history, not inputs to predict on.
  MLflow wraps the DataFrame in an ``EvaluationDataset`` (and records it as a dataset input of the
  run); the evaluator reads its ``features_data`` back as the history. Columns are read like
  ``curves.history_curves`` reads a DataFrame (an ``epoch`` column is the step; index and
  non-numeric columns are ignored). A column passed as ``targets=`` (or ``predictions=``) is put
  back, and ``targets`` names the monitored metric unless ``evaluator_config`` sets ``monitor``.
- ``evaluate`` reuses the active run or starts (and ends) one; ``run_id`` is that run. The
  diagnosis is written to it through ``tracking.log_diagnosis``, so the run gets exactly the
  metrics, tags and artifacts ``mlflow-plateau diagnose`` writes (idempotently), and the returned
  ``EvaluationResult`` carries the same metrics (docs/design.md names, e.g. ``plateau/epoch``; a value
  that does not apply is left out) and the artifacts ``diagnosis.json``, ``curves.png`` and
  ``report.html`` (``JsonEvaluationArtifact``, ``ImageEvaluationArtifact``,
  ``TextEvaluationArtifact``, pointing at ``plateau/...`` in the run's artifact store).
- Inside ``mlflow.set_active_model(...)`` (or with ``model_id=``) MLflow itself logs the result's
  metrics a second time, to the active run and the logged model; that is MLflow's behaviour for
  every evaluator and adds points to the ``plateau/*`` metrics.

``evaluator_config`` keys: ``monitor``, ``train_metric``, ``mode``, ``patience``, ``min_delta``,
``relative_delta``, ``num_classes``, ``chance`` (as for ``diagnose_curves``), ``artifacts``
(``"all"``, ``"json"``, ``"none"``) and ``log`` (False: return the result without writing to the
run). Any other key is an error naming it, so a typo is not silently ignored. MLflow's generic
``col_mapping`` is accepted for ``monitor``/``train_metric`` (``{"val_loss": "validation
loss"}``: that column is read as ``val_loss``, the name kept with the run). A history that cannot
be diagnosed raises ``MlflowException`` (INVALID_PARAMETER_VALUE) naming the run and the reason.
"""

from __future__ import annotations

from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.models.evaluation.artifacts import (
    ImageEvaluationArtifact,
    JsonEvaluationArtifact,
    TextEvaluationArtifact,
)
from mlflow.models.evaluation.base import EvaluationResult, ModelEvaluator
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.tracking.artifact_utils import get_artifact_uri

from .curves import history_curves
from .options import DiagnosisOptions
from .tracking import (
    best_metrics,
    diagnosis_metrics,
    log_diagnosis,
    run_kept_options,
    user_curves,
)
from .verdict import Diagnosis, diagnose_run_history

MODEL_TYPE = "training-curve"
_DIAGNOSIS_KEYS = DiagnosisOptions.names()
_OWN_KEYS = ("artifacts", "log")
_MLFLOW_KEYS = ("col_mapping",)
_ARTIFACTS = {  # result name -> (file under plateau/, artifact class, levels that write it)
    "diagnosis.json": ("plateau/diagnosis.json", JsonEvaluationArtifact, ("all", "json")),
    "curves.png": ("plateau/curves.png", ImageEvaluationArtifact, ("all",)),
    "report.html": ("plateau/report.html", TextEvaluationArtifact, ("all",)),
}


def _invalid(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def _history_frame(dataset: Any, run_id: str):
    """The history DataFrame behind MLflow's EvaluationDataset, with targets/predictions put back."""
    import pandas as pd

    frame = getattr(dataset, "features_data", None)
    if not isinstance(frame, pd.DataFrame):
        raise _invalid(f"run {run_id}: the plateau evaluator needs data= as a pandas DataFrame of "
                       "epochs x metrics (e.g. pd.DataFrame(history.history) or a CSVLogger "
                       f"file), not {type(frame).__name__}")
    frame = frame.copy()
    for name, values in ((getattr(dataset, "targets_name", None), dataset.labels_data),
                         (getattr(dataset, "predictions_name", None), dataset.predictions_data)):
        if name is not None and values is not None and name not in frame.columns:
            frame[name] = values
    return frame


def _options(config: dict[str, Any] | None, targets: str | None, run_id: str) -> dict[str, Any]:
    config = dict(config or {})
    unknown = sorted(set(config) - set(_DIAGNOSIS_KEYS) - set(_OWN_KEYS) - set(_MLFLOW_KEYS))
    if unknown:
        raise _invalid(f"run {run_id}: unknown evaluator_config key(s) for the plateau evaluator: "
                       f"{', '.join(map(repr, unknown))}; known keys: "
                       f"{', '.join(_DIAGNOSIS_KEYS + _OWN_KEYS + _MLFLOW_KEYS)}")
    options = {key: config[key] for key in _DIAGNOSIS_KEYS if key in config}
    if options.get("monitor") is None and targets is not None:
        options["monitor"] = targets
    return options


def _mapped_columns(config: dict[str, Any] | None, options: dict[str, Any]) -> dict[str, str]:
    """Column -> metric name, from ``col_mapping`` (metric name -> the DataFrame's column) for the
    monitor and the training metric: the history is read under the names the user gave, so
    those are the names kept with the run (a column name exists only in that one DataFrame)."""
    mapping = (config or {}).get("col_mapping") or {}
    return {mapping[name]: name for name in (options.get("monitor"), options.get("train_metric"))
            if name is not None and name in mapping}


class PlateauEvaluator(ModelEvaluator):
    """``mlflow.models.evaluate(data=history_df, model_type="training-curve", evaluators="plateau")``."""

    @classmethod
    def can_evaluate(cls, *, model_type: str | None, evaluator_config: dict[str, Any] | None,
                     **kwargs: Any) -> bool:
        return model_type == MODEL_TYPE

    def evaluate(self, *, model_type: str, dataset: Any, run_id: str,
                 evaluator_config: dict[str, Any] | None, model: Any = None,
                 extra_metrics: Any = None, custom_artifacts: Any = None, predictions: Any = None,
                 **kwargs: Any) -> EvaluationResult:
        config = dict(evaluator_config or {})
        options = _options(config, getattr(dataset, "targets_name", None), run_id)
        artifacts = config.get("artifacts", "all")
        if artifacts not in ("all", "json", "none"):
            raise _invalid(f"run {run_id}: evaluator_config artifacts must be 'all', 'json' or "
                           f"'none', not {artifacts!r}")
        # Options given for this run before (plateau.options) hold unless evaluator_config sets them.
        options = {**run_kept_options(run_id), **options}
        frame = _history_frame(dataset, run_id)
        renamed = {c: name for c, name in _mapped_columns(config, options).items()
                   if c in frame.columns}
        # The mapping says which column is the metric: a column already of that name is not.
        frame = frame.drop(columns=[n for n in renamed.values() if n in frame.columns])
        frame = frame.rename(columns=renamed)
        try:
            curves = history_curves(frame)
            diagnosis: Diagnosis = diagnose_run_history(  # as diagnose_run and the callback
                curves, DiagnosisOptions(**options), run_id=run_id,
                how_to_monitor="set evaluator_config={'monitor': ...} or targets= to diagnose a "
                "training metric")
        except ValueError as exc:
            raise _invalid(f"run {run_id}: the training history could not be diagnosed: {exc}") \
                from None
        if config.get("log", True):
            # The history handed to evaluate() is complete, though the run is still open.
            log_diagnosis(run_id, diagnosis, curves, artifacts=artifacts, partial=False)
        else:
            artifacts = "none"
        # The metrics the run gets: the diagnosis's and best/<metric> (the model kept).
        metrics = {k: v for k, v in {**diagnosis_metrics(diagnosis),
                                     **best_metrics(diagnosis, user_curves(curves))}.items()
                   if v is not None}
        result_artifacts = {
            name: cls(uri=get_artifact_uri(run_id, path))
            for name, (path, cls, levels) in _ARTIFACTS.items() if artifacts in levels}
        self.diagnosis = diagnosis  # for callers holding the evaluator instance
        return EvaluationResult(metrics=metrics, artifacts=result_artifacts, run_id=run_id)


__all__ = ["MODEL_TYPE", "PlateauEvaluator"]
