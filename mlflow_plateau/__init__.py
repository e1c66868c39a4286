"""mlflow-plateau: why did training plateau, and would more data help?

The public names are imported lazily so that ``import mlflow_plateau`` (and the pure-numpy core:
``curves``, ``plateau``, ``gap``, ``scaling``, ``verdict``) loads neither mlflow nor keras.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "early_stopping_replay": "plateau",
    "plateau_epoch": "plateau",
    "ReplayResult": "plateau",
    "PlateauResult": "plateau",
    "generalization_gap": "gap",
    "GapResult": "gap",
    "scaling_fit": "scaling",
    "forecast_curve": "forecast",
    "ForecastResult": "forecast",
    "ScalingResult": "scaling",
    "diagnose_curves": "verdict",
    "scaling_verdict": "verdict",
    "Diagnosis": "verdict",
    "ScalingVerdict": "verdict",
    "Thresholds": "options",
    "DiagnosisOptions": "options",
    "Curve": "curves",
    "diagnose_run": "tracking",
    "diagnose_runs": "tracking",
    "RunFailure": "tracking",
    "read_histories": "tracking",
    "iter_histories": "tracking",
    "history_frame": "tracking",
    "PlateauCallback": "callback",
    "ForecastStopping": "callback",
    "forecast_stop_decision": "stopping",
    "forecast_stopping_replay": "stopping",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'mlflow_plateau' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted(__all__)
