"""Logging a scenario's training to MLflow: per-epoch metrics, and peak memory.

Metrics use the names Keras puts in ``History.history`` (``loss``, ``val_loss``, ``accuracy``,
``val_accuracy``, ``learning_rate``), which are also the names ``mlflow.keras.autolog`` logs, at
step = epoch (0-based). We do not use autolog itself: it works with Keras 3, but it commits every
epoch to the store separately (about 0.1 s an epoch on a local SQLite store, a third of a small
model's epoch here), logs ``validation_*`` duplicates at step 0, and re-logs a restored epoch after
``EarlyStopping``; the buffered writer below logs the same names once per epoch in batched writes
(every ``flush_every`` epochs and at the end), and custom ``GradientTape`` loops, which autolog
cannot see, use the same writer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import keras
import mlflow
import psutil
from mlflow.entities import Metric, Param, RunTag

from mlflow_plateau.scaling import scaling_fit
from mlflow_plateau.verdict import ScalingVerdict, scaling_verdict


class MetricBuffer:
    """Per-epoch metrics of one run, written to MLflow in batches.

    ``history`` keeps every value added, in the shape of ``keras.callbacks.History.history``.
    """

    def __init__(self, run_id: str, flush_every: int = 10) -> None:
        self.run_id = run_id
        self.flush_every = max(1, flush_every)
        self.history: dict[str, list[float]] = {}
        self._pending: list[Metric] = []
        self._epochs_pending = 0
        self._client = mlflow.MlflowClient()

    def add(self, epoch: int, values: Mapping[str, float]) -> None:
        """Record one epoch's values (non-numeric values are skipped)."""
        stamp = int(time.time() * 1000)
        for name, value in values.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            self.history.setdefault(name, []).append(number)
            # NaN/inf are kept: the diagnosis reads them as the epoch training diverged.
            self._pending.append(Metric(name, number, stamp, int(epoch)))
        self._epochs_pending += 1
        if self._epochs_pending >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        """Write what is pending (MLflow takes at most 1000 metrics per batch)."""
        while self._pending:
            chunk, self._pending = self._pending[:1000], self._pending[1000:]
            self._client.log_batch(self.run_id, metrics=chunk)
        self._epochs_pending = 0


class EpochLogger(keras.callbacks.Callback):
    """Keras callback feeding a ``MetricBuffer`` at the end of every epoch."""

    def __init__(self, buffer: MetricBuffer) -> None:
        super().__init__()
        self.buffer = buffer

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self.buffer.add(epoch, logs or {})

    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
        self.buffer.flush()


class PeakRss(keras.callbacks.Callback):
    """Samples this process's resident memory; ``peak`` is the largest value seen.

    ``ru_maxrss`` would give the peak of the whole process's life, which in ``main`` includes every
    earlier scenario; sampling at each batch measures this run alone.
    """

    def __init__(self) -> None:
        super().__init__()
        self._process = psutil.Process()
        self.start = self._process.memory_info().rss
        self.peak = self.start

    def sample(self) -> int:
        rss = self._process.memory_info().rss
        self.peak = max(self.peak, rss)
        return rss

    def on_train_batch_end(self, batch: int, logs: Mapping[str, float] | None = None) -> None:
        self.sample()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self.sample()


def log_scaling(parent_run_id: str, member_run_ids: list[str], sizes: list[int],
                errors: list[float]) -> ScalingVerdict:
    """Fit the learning curve of a parent run's children and log it under docs/design.md's names.

    The parent gets ``scaling/slope``, ``scaling/exponent``, ``scaling/gain_at_2x``, the tags
    ``scaling.verdict`` / ``scaling.group`` (the parent's run id) and ``scaling/fit.json``; each
    member gets the two tags. The fit and verdict come from ``mlflow_plateau``.
    """
    fit = scaling_fit(sizes, errors)
    verdict = scaling_verdict(fit)
    client = mlflow.MlflowClient()
    tags = {"scaling.verdict": verdict.verdict, "scaling.group": parent_run_id}
    for run_id in member_run_ids:
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    stamp = int(time.time() * 1000)
    values = {"scaling/slope": fit.slope, "scaling/exponent": fit.exponent,
              "scaling/gain_at_2x": fit.gain_at_2x}
    metrics = [Metric(k, float(v), stamp, 0) for k, v in values.items() if v is not None]
    client.log_batch(parent_run_id, metrics=metrics,
                     tags=[RunTag(k, v) for k, v in {**tags, "scaling.summary": verdict.summary}.items()])
    client.log_dict(parent_run_id, verdict.to_dict(), "scaling/fit.json")
    return verdict


def log_params(run_id: str, params: Mapping[str, object]) -> None:
    """Log params without clashing with those already on the run.

    ``mlflow run`` logs the ``-P`` values itself, as typed (``epochs=0``, ``augment=1``,
    ``fractions=1/4,1/2``); MLflow refuses to change a param. A value that differs from the one
    already there (the profile's resolved epochs, a normalized boolean) is logged as
    ``resolved.<name>`` instead, so both what was asked and what ran are visible.
    """
    client = mlflow.MlflowClient()
    existing = client.get_run(run_id).data.params
    wanted: dict[str, str] = {}
    for name, value in params.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        key = name if existing.get(name, text) == text else f"resolved.{name}"
        if existing.get(key) != text:
            wanted[key] = text
    items = [Param(k, v) for k, v in wanted.items()]
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=items[i:i + 100])
