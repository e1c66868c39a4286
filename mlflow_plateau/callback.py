"""``PlateauCallback``: diagnose a Keras training run in MLflow when ``model.fit`` ends.

Usage::

    model.fit(x, y, validation_split=0.2, epochs=50, callbacks=[PlateauCallback()])

What it does, in order:

- ``on_train_begin``: uses the active MLflow run, or starts one (and then ends it when training
  ends; a run it did not start is left open). It then decides whether to log the epoch metrics
  itself: only when no MLflow callback already logs them. ``mlflow.keras.autolog()`` and
  ``mlflow.tensorflow.autolog()`` both work by adding their own ``MlflowCallback`` to the
  callbacks of each ``fit`` call (and not in every case: ``exclusive=True`` inside a user run, a
  disabled integration or ``mlflow.utils.autologging_utils.disable_autologging()`` add none), so
  the callback looks at the callbacks of *this* ``fit`` call rather than at autolog's settings:
  Keras calls ``on_train_begin`` from its ``CallbackList``, whose ``callbacks`` hold every
  callback of the call, autolog's included. An ``MlflowCallback`` there (autolog's or one the user
  added) means the metrics are logged already, at step = epoch or, with ``log_every_n_steps``, at
  optimizer steps under the same names, which must not be mixed with epoch steps. Only if that
  list cannot be found (a custom loop driving callbacks by hand) does it fall back to autolog's
  settings (enabled for ``keras`` or ``tensorflow``).
- ``on_epoch_end``: records the epoch's logs (the diagnosis always uses this record, so it never
  waits on what MLflow stored) and, when it logs, sends them as one
  ``MlflowClient().log_batch(run_id, metrics, synchronous=False)`` (step = epoch): MLflow's
  asynchronous queue, so an epoch costs a queue put rather than a store round trip (not
  ``mlflow.log_metrics(run_id=...)``, which reads the run from the store first, every epoch).
- ``on_train_end``: flushes the queue, diagnoses the recorded history with
  ``verdict.diagnose_curves`` (milliseconds), keeps it on ``self.diagnosis``, prints its
  one-sentence summary and writes it to the run through ``tracking.log_diagnosis`` (the same
  metrics, tags and artifacts as ``mlflow-plateau diagnose``). Rendering ``curves.png`` and
  ``report.html`` takes ~0.4 s, several percent of a short fit, so by default the write runs on a
  background thread and ``fit`` returns at once. The thread is not a daemon: the interpreter
  waits for it at exit, so a script that ends right after ``fit`` still gets its artifacts.
  ``callback.wait()`` blocks until the write is done (before reading the run back);
  ``background=False`` writes before ``fit`` returns. The next ``fit`` with the same callback
  waits for the previous write first.

Training never fails because of the diagnosis: a history that cannot be diagnosed (a ValueError,
e.g. no metric to monitor) is reported with a warning and nothing more is written; a run with too
few epochs gets the ``insufficient_data`` verdict and a warning; a tracking error is a warning.

``log_metrics``: ``"auto"`` (above), ``True`` (always log, even beside autolog: duplicates),
``False`` (never; the diagnosis is still written). ``diagnose_every=N`` also diagnoses every N
epochs during training and writes the verdict, metrics and tags (no artifacts) so a running
training can be watched in the UI; off by default because each write is a synchronous round
trip. Each ``fit`` call is diagnosed on its own epochs.
"""

from __future__ import annotations

import importlib
import math
import sys
import threading
import time
import warnings
from typing import Any

import keras
import mlflow
from mlflow.entities import Metric
from mlflow.utils.autologging_utils import autologging_is_disabled

from .curves import Curve, metric_mode
from .options import DiagnosisOptions
from .pruning import forecast_prune_decision
from .stopping import StopDecision, forecast_stop_decision
from .tracking.store import check_artifacts
from .verdict import Diagnosis, diagnose_run_history

_AUTOLOG_FLAVORS = ("keras", "tensorflow")
# Runs a PlateauCallback started and has not ended yet: run id -> (that callback, MLflow's
# ActiveRun). Keras does not call on_train_end when fit raises (KeyboardInterrupt, an error): such
# a run stays active, and the next fit would log into it; the next on_train_begin ends it as
# KILLED instead, unless its callback is part of the same fit (two PlateauCallbacks share the
# run) or it is no longer the same active run (the user ended it and resumed it themselves).
_OPEN_RUNS: dict[str, tuple[Any, Any]] = {}
# How far up the stack the Keras CallbackList may be from on_train_begin (it is the caller).
_MAX_FRAMES = 6


def _mlflow_callback_classes() -> tuple[type, ...]:
    """The callbacks autolog adds (and users may add): ``mlflow.{keras,tensorflow}.MlflowCallback``."""
    classes = []
    for module in ("mlflow.keras.callback", "mlflow.tensorflow.callback"):
        try:
            classes.append(importlib.import_module(module).MlflowCallback)
        except Exception:  # that flavor's framework (e.g. tensorflow under a JAX backend) is absent
            continue
    return tuple(classes)


def _autolog_enabled() -> bool:
    return any(not autologging_is_disabled(flavor) for flavor in _AUTOLOG_FLAVORS)


def _as_number(value: Any) -> float | None:
    try:
        return float(value)  # NaN/inf are kept: the diagnosis reports divergence from them
    except (TypeError, ValueError):
        return None


class PlateauCallback(keras.callbacks.Callback):
    """Log epoch metrics when nothing else does, and diagnose the run when training ends.

    Options are those of ``diagnose_curves`` (``monitor``, ``train_metric``, ``mode``,
    ``patience``, ``min_delta``, ``relative_delta``, ``num_classes``, ``chance``, or a
    ``DiagnosisOptions`` as ``options=``; checked here, a bad one is a ValueError) plus ``artifacts`` (what
    ``tracking.log_diagnosis`` renders), ``log_metrics`` (``"auto"``, True, False),
    ``diagnose_every`` (None or N epochs), ``background`` (write the final diagnosis on a thread;
    see ``wait``) and ``verbose`` (print the summary).
    """

    def __init__(self, monitor: str | None = None, train_metric: str | None = None,
                 mode: str | None = None, patience: int = 10, min_delta: float = 0.0,
                 relative_delta: float | None = 0.01, num_classes: int | None = None,
                 chance: float | None = None, artifacts: str = "all", log_metrics: bool | str = "auto",
                 diagnose_every: int | None = None, background: bool = True,
                 verbose: int = 1, options: DiagnosisOptions | None = None) -> None:
        super().__init__()
        if log_metrics not in ("auto", True, False):
            raise ValueError(f"log_metrics must be 'auto', True or False, not {log_metrics!r}")
        if diagnose_every is not None and (isinstance(diagnose_every, bool)
                                           or not isinstance(diagnose_every, int)
                                           or diagnose_every < 1):
            raise ValueError(f"diagnose_every must be None or a positive int, not {diagnose_every!r}")
        check_artifacts(artifacts)
        given = {"monitor": monitor, "train_metric": train_metric, "mode": mode,
                 "patience": patience, "min_delta": min_delta, "relative_delta": relative_delta,
                 "num_classes": num_classes, "chance": chance}
        # With ``options``, only the keyword options changed from their defaults override it.
        defaults = DiagnosisOptions()
        self.options: DiagnosisOptions = DiagnosisOptions.of(
            options, **{k: v for k, v in given.items()
                        if options is None or v != getattr(defaults, k)})
        self.artifacts = artifacts
        self.log_metrics = log_metrics
        self.diagnose_every = diagnose_every
        self.background = background
        self.verbose = verbose
        self.diagnosis: Diagnosis | None = None
        self.run_id: str | None = None
        self.logs_epochs = False  # decided per fit call in on_train_begin
        self._client: Any = None  # the MlflowClient the epochs are logged with, one per fit
        self._points: dict[str, tuple[list[int], list[float]]] = {}
        self._started_run = False
        self._tracking_ok = True
        self._writer: threading.Thread | None = None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the last ``fit``'s diagnosis is written; False if ``timeout`` ran out."""
        writer = self._writer
        if writer is None:
            return True
        writer.join(timeout)
        return not writer.is_alive()

    # -- deciding who logs ------------------------------------------------------------------

    def _fit_callbacks(self) -> list[Any] | None:
        """The callbacks of the running ``fit`` call, read from Keras's CallbackList."""
        frame = sys._getframe(1)
        for _ in range(_MAX_FRAMES):
            if frame is None:
                break
            owner = frame.f_locals.get("self")
            if isinstance(owner, keras.callbacks.CallbackList) and any(
                    cb is self for cb in getattr(owner, "callbacks", ())):
                return list(owner.callbacks)
            frame = frame.f_back
        return None

    def _others_log_epochs(self) -> bool:
        callbacks = self._fit_callbacks()
        if callbacks is None:
            return _autolog_enabled()
        classes = _mlflow_callback_classes()
        return any(isinstance(cb, classes) for cb in callbacks if cb is not self)

    # -- Keras hooks ------------------------------------------------------------------------

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.wait()  # the previous fit's write must not race this fit's state
        self._writer = None
        self._client = None
        self._points = {}
        self.diagnosis = None
        self._tracking_ok = True
        self._started_run = False
        try:
            run = mlflow.active_run()
            owner, started = _OPEN_RUNS.get(run.info.run_id, (None, None)) if run else (None, None)
            if owner is not None and started is not run:
                _OPEN_RUNS.pop(run.info.run_id, None)  # ended, then resumed by the user: theirs
            elif owner is not None and not any(cb is owner and cb is not self
                                               for cb in self._fit_callbacks() or ()):
                warnings.warn(f"PlateauCallback: run {run.info.run_id} of an earlier fit that did "
                              "not finish (interrupted) is ended as KILLED; this fit gets its own "
                              "run", UserWarning, stacklevel=2)
                _OPEN_RUNS.pop(run.info.run_id, None)
                mlflow.end_run("KILLED")
                run = None
            if run is None:
                from .tracking.store import check_reachable

                # A server that is down: fail in seconds, not after minutes of MLflow's retries.
                check_reachable(mlflow.get_tracking_uri())
                run = mlflow.start_run()
                self._started_run = True
                _OPEN_RUNS[run.info.run_id] = (self, run)
            self.run_id = run.info.run_id
        except Exception as exc:  # a tracking problem must not stop training
            self._tracking_failed("could not start an MLflow run", exc)
            self.run_id = None
        if self.log_metrics == "auto":
            self.logs_epochs = self.run_id is not None and not self._others_log_epochs()
        else:
            self.logs_epochs = bool(self.log_metrics) and self.run_id is not None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = {}
        for name, value in (logs or {}).items():
            number = _as_number(value)
            if number is None:
                continue
            epochs, recorded = self._points.setdefault(str(name), ([], []))
            epochs.append(int(epoch))
            recorded.append(number)
            values[str(name)] = number
        if self.logs_epochs and self._tracking_ok and values:
            try:
                # The client's log_batch, not mlflow.log_metrics(run_id=): that one reads the
                # run from the store first, a blocking round trip each epoch.
                now = int(time.time() * 1000)
                if self._client is None:
                    self._client = mlflow.MlflowClient()
                self._client.log_batch(
                    self.run_id, [Metric(k, v, now, int(epoch)) for k, v in values.items()],
                    synchronous=False)
            except Exception as exc:
                self._tracking_failed(f"could not log the metrics of epoch {epoch}", exc)
        if self.diagnose_every and (epoch + 1) % self.diagnose_every == 0:
            self._diagnose(final=False)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.logs_epochs and self._tracking_ok:
            try:
                mlflow.flush_async_logging()
            except Exception as exc:
                self._tracking_failed("could not flush the epoch metrics", exc)
        diagnosis = self._diagnose(final=True)
        if self._started_run:
            # End our own run before writing, so the diagnosis is not marked partial.
            self._started_run = False
            _OPEN_RUNS.pop(self.run_id or "", None)
            try:
                mlflow.end_run()
            except Exception as exc:
                self._tracking_failed("could not end the MLflow run", exc)
        if diagnosis is None:
            return
        if self.verbose:
            print(f"PlateauCallback: {diagnosis.summary}")
        if self.background:
            self._writer = threading.Thread(target=self._write, args=(diagnosis, self.curves()),
                                            kwargs={"final": True}, daemon=False,
                                            name="PlateauCallback-write")
            self._writer.start()
        else:
            self._write(diagnosis, self.curves(), final=True)

    # -- the diagnosis ----------------------------------------------------------------------

    def curves(self) -> dict[str, Curve]:
        """The history recorded during the current (or last) ``fit`` call, as curves."""
        return {name: Curve.from_points(name, epochs, values)
                for name, (epochs, values) in self._points.items()}

    def _diagnose(self, *, final: bool) -> Diagnosis | None:
        """Diagnose the recorded history; None (and a warning at the end) when it cannot be."""
        curves = self.curves()
        where = f"run {self.run_id}" if self.run_id else "this training"
        problem = None
        try:  # as `mlflow-plateau diagnose` and the evaluator do
            diagnosis = diagnose_run_history(
                curves, self.options, run_id=self.run_id,
                how_to_monitor="pass validation_data or validation_split to fit, or monitor=")
        except ValueError as exc:
            problem = str(exc)
        if problem is not None:
            if final:
                warnings.warn(f"PlateauCallback: {where} could not be diagnosed: {problem}",
                              UserWarning, stacklevel=3)
            return None
        self.diagnosis = diagnosis
        if final and diagnosis.verdict == "insufficient_data":
            warnings.warn(f"PlateauCallback: {where}: {diagnosis.summary}", UserWarning,
                          stacklevel=3)
        if not final:
            self._write(diagnosis, curves, final=False)
        return diagnosis

    def _write(self, diagnosis: Diagnosis, curves: dict[str, Curve], *, final: bool) -> None:
        if self.run_id is None or not self._tracking_ok:
            return
        try:
            from .tracking import log_diagnosis

            # At train end the history is complete even though autolog's run is still open.
            log_diagnosis(self.run_id, diagnosis, curves,
                          artifacts=self.artifacts if final else "none",
                          partial=False if final else None)
        except Exception as exc:
            self._tracking_failed("could not write the diagnosis", exc)

    def _tracking_failed(self, what: str, exc: BaseException) -> None:
        # Warn once and stop talking to the tracking store for the rest of this fit call.
        if self._tracking_ok:
            # MLflow's messages can span dozens of lines (SQL, parameters): keep the first one.
            first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
            warnings.warn(f"PlateauCallback: {what} ({type(exc).__name__}: {first[:300]}); "
                          "training continues without it.", UserWarning, stacklevel=3)
        self._tracking_ok = False


class ForecastStopping(keras.callbacks.Callback):
    """EarlyStopping's patience that also stops when the rest of the epoch budget cannot buy a gain.

    Each epoch, ``stopping.forecast_stop_decision`` is asked about the monitored values so far,
    with the epoch budget of the ``fit`` call (its last epoch, ``epochs - 1``): training stops
    where ``keras.callbacks.EarlyStopping(patience, min_delta)`` would stop, or earlier when the
    optimistic end of the forecast's ``level`` interval improves the best value by less than
    ``max(min_delta, relative_delta x |best so far|)`` (a relative gain: 1% of the best by
    default) by the end of the budget (from ``patience`` epochs on). It never trains longer than
    EarlyStopping, and while the forecast interval holds a real gain it does not stop earlier.
    On ``benchmarks/stopping_replay.py`` its defaults lie below Keras's patience family on the
    (epochs trained, mean regret) plane, though not at every patience (docs/benchmarks.md).
    ``restore_best_weights`` restores the weights of the best epoch when training ends, as
    EarlyStopping does (the best by Keras's rule: an improvement beats the best by more than
    ``min_delta``).

    ``stopped_epoch`` (None when it did not stop), ``stop_reason`` (``"forecast"`` or
    ``"patience"``), ``best_epoch``, ``best`` and ``decision`` (the last ``StopDecision``) are
    kept for inspection. An epoch without the monitor (validation every few epochs) is skipped,
    as EarlyStopping skips it; a NaN or infinite value counts as an epoch without improvement, as
    in EarlyStopping, so a diverged run stops after ``patience`` epochs (one warning each way);
    the forecast is made from the finite values. Unlike EarlyStopping, only a finite value can be
    the best (it keeps a NaN first value as its best for good, and takes -inf as one). No MLflow
    call is made; combine with ``PlateauCallback`` to diagnose the run.

    ``prune_against_experiment=True`` (for a sweep logged to one MLflow experiment): at the start
    of the fit, the best ``best/<monitor>`` of the active run's experiment's finished runs is read
    once (``tracking.experiment_best``); from ``prune_min_epochs`` epochs on, the fit also stops
    (reason ``"pruned"``) when ``pruning.forecast_prune_decision`` says even the optimistic end of
    the forecast at the budget cannot beat it. Without an active run or a finished run to beat,
    nothing is pruned.
    """

    def __init__(self, monitor: str = "val_loss", mode: str | None = None,
                 min_delta: float = 0.0, relative_delta: float = 0.01, patience: int = 10,
                 level: float = 0.8, restore_best_weights: bool = True, verbose: int = 0,
                 prune_against_experiment: bool = False, prune_min_epochs: int = 10,
                 prune_level: float = 0.9) -> None:
        super().__init__()
        if mode not in (None, "min", "max"):
            raise ValueError(f"mode must be None, 'min' or 'max', not {mode!r}")
        self.monitor = monitor
        self.mode = mode or metric_mode(monitor)
        self.options: dict[str, Any] = {"min_delta": float(min_delta),
                                        "relative_delta": float(relative_delta),
                                        "patience": patience, "level": float(level)}
        # Check the options now rather than at the first epoch.
        forecast_stop_decision([1.0], budget_end=0, mode=self.mode, **self.options)
        self.restore_best_weights = restore_best_weights
        self.verbose = verbose
        self.prune_against_experiment = prune_against_experiment
        self.prune_options: dict[str, Any] = {"min_epochs": prune_min_epochs, "level": float(prune_level)}
        forecast_prune_decision([1.0], budget_end=0, best_completed=None, mode=self.mode,
                                **self.prune_options)
        self.experiment_best: float | None = None
        self._reset()

    def _reset(self) -> None:
        self._epochs: list[int] = []
        self._values: list[float] = []
        self._warned: set[str] = set()
        self._wait = 0  # EarlyStopping's own counter: epochs with the monitor since the best
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_weights: list[Any] | None = None
        self.stopped_epoch: int | None = None
        self.stop_reason: str | None = None
        self.decision: StopDecision | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._reset()
        self.experiment_best = None
        run = mlflow.active_run()
        if self.prune_against_experiment and run is not None:
            from .tracking.experiment_best import experiment_best
            self.experiment_best = experiment_best(run.info.experiment_id, self.monitor, self.mode,
                                                   exclude_run_id=run.info.run_id)

    def _improves(self, value: float) -> bool:
        if self.best is None:
            return True
        delta = self.options["min_delta"]
        return value < self.best - delta if self.mode == "min" else value > self.best + delta

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            warnings.warn(f"ForecastStopping: {message}", UserWarning, stacklevel=3)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = _as_number((logs or {}).get(self.monitor))
        if value is None:
            self._warn_once("missing", f"no {self.monitor!r} at epoch {epoch} (logs: "
                            f"{', '.join(sorted(logs or {})) or 'none'}); skipped")
            return
        finite = math.isfinite(value)
        # EarlyStopping takes its first monitored epoch as the best whatever its value (its
        # weights, and the wait starts there); from then on only a finite value can improve.
        first = self.best_epoch is None
        improved = first or (finite and self._improves(value))
        self._wait = 0 if improved else self._wait + 1
        if improved:
            self.best_epoch = int(epoch)
            self.best = value if finite else self.best
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
        if not finite:
            self._warn_once("nan", f"{self.monitor} is {value} at epoch {epoch}: counted as no "
                            "improvement, as EarlyStopping does")
        else:
            self._epochs.append(int(epoch))
            self._values.append(value)
            budget_end = int((self.params or {}).get("epochs", epoch + 1)) - 1
            self.decision = forecast_stop_decision(self._values, budget_end=budget_end,
                                                   mode=self.mode, epochs=self._epochs,
                                                   **self.options)
        if finite and self.decision is not None and self.decision.stop:
            reason = self.decision.reason
        elif finite and self.experiment_best is not None and forecast_prune_decision(
                self._values, budget_end=budget_end, best_completed=self.experiment_best,
                mode=self.mode, epochs=self._epochs, **self.prune_options).prune:
            reason = "pruned"  # cannot beat the experiment's best finished run
        elif not improved and self._wait >= self.options["patience"] and epoch > 0:
            reason = "patience"  # EarlyStopping's rule over every epoch, NaN ones included
        else:
            return
        self.stopped_epoch, self.stop_reason = int(epoch), reason
        self.model.stop_training = True
        if self.verbose:
            best = "none finite" if self.best is None else f"{self.best:.4g}"
            print(f"ForecastStopping: stopped at epoch {epoch} ({reason}); best {self.monitor} "
                  f"{best} at epoch {self.best_epoch}")

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


__all__ = ["ForecastStopping", "PlateauCallback"]
