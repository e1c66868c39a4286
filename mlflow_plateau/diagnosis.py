"""The result types of a diagnosis: ``Diagnosis`` (one run) and ``ScalingVerdict`` (a learning
curve over training-set sizes), the verdict names each can carry, and the JSON-safe form both
are written as (``diagnosis.json``, ``scaling/fit.json``).

``verdict.diagnose_curves`` and ``verdict_scaling.scaling_verdict`` build them; the adapters
write them to MLflow and the renderers draw them. Nothing here computes a diagnostic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import __version__
from .forecast import ForecastResult
from .gap import GapResult
from .plateau import PlateauResult
from .scaling import ScalingResult

VERDICTS = ("healthy", "overfitting", "underfitting", "at_chance", "not_converged", "unstable",
            "diverged", "insufficient_data")
SCALING_VERDICTS = ("data_limited", "diminishing_returns", "saturated", "insufficient_points")
SCHEMA_VERSION = 1


def json_safe(obj: Any) -> Any:
    """``obj`` with numpy types made plain and NaN/inf made None (JSON has neither), keys made
    strings, tuples and arrays made lists; anything else unknown becomes its ``str``."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [json_safe(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


@dataclass(frozen=True)
class Diagnosis:
    """The verdict on one run's curves, the numbers behind it and what to try next."""

    verdict: str
    summary: str
    evidence: dict[str, Any]
    recommendations: list[str]
    monitor: str | None
    train_metric: str | None
    mode: str | None
    plateau: PlateauResult | None
    gap: GapResult | None
    config: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    alternatives: list[dict[str, Any]] = field(default_factory=list)
    forecast: ForecastResult | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: no NaN/inf, no numpy types."""
        return json_safe({
            "schema_version": SCHEMA_VERSION, "version": __version__, "run_id": self.run_id,
            "verdict": self.verdict, "summary": self.summary, "evidence": self.evidence,
            "recommendations": self.recommendations, "monitor": self.monitor,
            "train_metric": self.train_metric, "mode": self.mode,
            "plateau": self.plateau.to_dict() if self.plateau else None,
            "gap": self.gap.to_dict() if self.gap else None, "config": self.config,
            "alternatives": self.alternatives,
            "forecast": self.forecast.to_dict() if self.forecast else None,
            "epoch_ranges": [r.to_dict() for r in self.epoch_ranges()],
        })

    def epoch_ranges(self) -> tuple[Any, ...]:
        """Where the verdict shows, as ``epoch_ranges.EpochRange`` values (derived from the
        fields, so ``to_dict`` carries them and a stored diagnosis gives them back)."""
        from .epoch_ranges import epoch_ranges

        return epoch_ranges(self)


@dataclass(frozen=True)
class ScalingVerdict:
    """The verdict on a learning curve (error against training-set size)."""

    verdict: str
    summary: str
    evidence: dict[str, Any]
    recommendations: list[str]
    fit: ScalingResult

    def to_dict(self) -> dict[str, Any]:
        return json_safe({"schema_version": SCHEMA_VERSION, "verdict": self.verdict,
                          "summary": self.summary, "evidence": self.evidence,
                          "recommendations": self.recommendations, "fit": self.fit.to_dict()})


__all__ = ["SCALING_VERDICTS", "SCHEMA_VERSION", "VERDICTS", "Diagnosis", "ScalingVerdict",
           "json_safe"]
