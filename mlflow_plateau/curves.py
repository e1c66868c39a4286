"""Training curves: one metric's history as (epochs, values), and how histories are read.

A *curve* is the history of one metric: the 0-based epochs (MLflow steps) at which it was logged and
the values logged there. This module turns what users have into curves and finds the pairs the
diagnostics need:

- ``Curve.from_points`` sorts by epoch and keeps the newest value of a step logged twice (MLflow
  keeps every point; a re-logged step means the newer value replaced the older one). A metric
  whose points, 3 or more, all sit at one step was logged without ``step=`` (MLflow's default is
  0; also ``mlflow.keras.autolog``'s ``validation_*`` metrics): it is read as a curve in logging
  order (epochs ``step, step + 1, ...``, ``Curve.unstepped``), as MLflow's UI draws it over time.
- ``finite_prefix`` cuts a curve at its first NaN/inf; ``finite_part`` (what the diagnosis reads)
  drops a NaN/inf the curve recovers from (a logging glitch) and cuts it where it turned NaN/inf
  for good, the epoch the diagnosis reports as the one where training diverged.
- ``history_curves`` reads a Keras ``History.history`` mapping (name -> values, step = index), a
  mapping of name -> ``Curve``, or a DataFrame (a ``CSVLogger`` file: its ``epoch`` column is the
  step; the index and non-numeric columns are ignored; a NaN is a logged value when each epoch has
  one row, and a blank cell when epochs span several rows, as in Lightning's ``metrics.csv``). It
  drops the point ``mlflow.tensorflow`` re-logs at ``stopped_epoch + 1`` after ``EarlyStopping``
  restored the best weights, which is not a real epoch.
- ``metric_role`` / ``pair_curves`` match train and validation series by name as they occur in the
  wild (``loss``/``val_loss``, ``train_loss``/``valid_loss``, ``Train Loss``/``Val Loss``,
  ``TrainLoss``/``ValLoss``, ``acc``/``val_acc``, ``validation_*``): when several names fill one
  slot, a curve logged with steps beats one logged without, then the one with the most epochs
  wins (so the ``validation_loss`` that autolog logs repeatedly at step 0 loses to ``val_loss``).
- ``metric_mode`` says whether lower (loss-like) or higher (score-like) is better.
- ``as_fraction`` turns an accuracy logged in percent (values above 1, at most 100) into a fraction.

Nothing here imports mlflow or keras.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Mode = Literal["min", "max"]
Role = Literal["train", "val", "test"]

# Errors are losses too: LightGBM's and XGBoost's ``l1``, ``l2``, ``rmse``, ``logloss``, ``error``
# (``l2.valid``), speech's word and character error rates.
_LOSS_WORDS = ("loss", "error", "err", "mse", "mae", "rmse", "mape", "msle", "rmsle", "perplexity",
               "ppl", "crossentropy", "entropy", "nll", "hinge", "huber", "logcosh", "kld",
               "divergence", "cost", "distance", "l1", "l2", "wer", "cer")
_SCORE_WORDS = ("accuracy", "acc", "auc", "f1", "fbeta", "precision", "recall", "r2",
                "iou", "dice", "map", "bleu", "rouge", "score", "top", "kappa", "correlation",
                "specificity", "sensitivity", "reward", "rew", "return")
_VAL_PREFIXES = ("val", "valid", "validation", "eval", "evaluation", "dev")
_TRAIN_PREFIXES = ("train", "training", "tr")
# Words before a role that say how the epoch's value was aggregated (``avg_val_loss``,
# ``mean_train_loss``, ``epoch_val_accuracy``): the curve is the role's curve all the same.
_AGGREGATE_WORDS = ("avg", "average", "mean", "epoch")
# Plural base names (``avg_train_losses``) are the singular's curve.
_SINGULAR = {"losses": "loss", "accuracies": "accuracy", "accs": "accuracy", "errors": "error"}
# Many PyTorch scripts call their held-out split "test" and log no other: a ``test_*`` curve is
# the validation curve when no ``val_*`` curve of the same base exists.
_TEST_PREFIXES = ("test", "testing")
# Names that mlflow.tensorflow / Keras (and Hugging Face's Trainer: eval_runtime,
# train_samples_per_second, total_flos, grad_norm) log beside the curves and that are not curves
# to pair.
_BOOKKEEPING = {"stopped_epoch", "restored_epoch", "learning_rate", "lr", "epoch", "epochs",
                "step", "steps", "time", "epoch_time", "timestamp", "duration", "time_ms",
                "time_s", "seconds", "wall_time", "training_time", "training_time_minutes",
                "runtime", "samples_per_second", "steps_per_second", "total_flos", "flos",
                "grad_norm"}
# First words of per-epoch series that are schedules or timing, not curves (``lr-SGD``, ``x/lr``
# in YOLOv5's results.csv, ``Time (ms)``).
_BOOKKEEPING_WORDS = {"lr", "time", "timestamp", "momentum", "wd", "weight_decay"}


@dataclass(frozen=True)
class Curve:
    """One metric's history: strictly increasing ``epochs`` and the ``values`` logged there.
    ``unstepped``: its points were all logged at one step, and are numbered in logging order."""

    name: str
    epochs: np.ndarray
    values: np.ndarray
    unstepped: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        epochs = np.asarray(self.epochs, dtype=np.int64).reshape(-1)
        values = np.asarray(self.values, dtype=np.float64).reshape(-1)
        if epochs.shape != values.shape:
            raise ValueError(f"metric {self.name!r}: {epochs.size} epochs but {values.size} values")
        if epochs.size > 1 and np.any(np.diff(epochs) <= 0):
            raise ValueError(f"metric {self.name!r}: epochs must be strictly increasing; "
                             "build the curve with Curve.from_points to sort and de-duplicate")
        object.__setattr__(self, "epochs", epochs)
        object.__setattr__(self, "values", values)

    def __len__(self) -> int:
        return int(self.values.size)

    @classmethod
    def from_points(cls, name: str, epochs: Any, values: Any, order: Any = None) -> Curve:
        """Sort points by epoch; of several points at one epoch keep the newest. Three or more
        points all at one step are a curve logged without steps: numbered from that step in
        logging order (``unstepped``).

        ``order`` ranks the points by age (e.g. MLflow timestamps); without it the later position
        in the input is the newer point.
        """
        epochs_arr = integers_as_stored(epochs).reshape(-1)
        values_arr = _as_float_array(values, name).reshape(-1)
        if epochs_arr.size != values_arr.size:
            raise ValueError(f"metric {name!r}: {epochs_arr.size} steps but {values_arr.size} values")
        try:
            as_float = epochs_arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"metric {name!r}: steps must be integers, got {epochs_arr[:5]!r}") \
                from None
        if epochs_arr.size and not np.all(np.abs(as_float) < 2.0 ** 62):
            raise ValueError(f"metric {name!r}: steps must be finite integers")
        epochs_int = epochs_arr.astype(np.int64)
        if epochs_int.size and np.any(epochs_int != epochs_arr):
            raise ValueError(f"metric {name!r}: steps must be integers, got {epochs_arr[:5]!r}")
        age = (np.arange(epochs_int.size) if order is None
               else integers_as_stored(order).astype(np.float64).reshape(-1))
        if unstepped_steps(epochs_int):
            idx = np.lexsort((np.arange(epochs_int.size), age))  # oldest first, then as given
            return cls(name, epochs_int[0] + np.arange(idx.size), values_arr[idx], unstepped=True)
        # lexsort: primary key epoch, secondary age; the last point of each epoch is the newest.
        idx = np.lexsort((np.arange(epochs_int.size), age, epochs_int))
        epochs_sorted = epochs_int[idx]
        last_of_epoch = np.append(epochs_sorted[1:] != epochs_sorted[:-1], True) if idx.size else idx
        keep = idx[last_of_epoch.astype(bool)] if idx.size else idx
        return cls(name, epochs_int[keep], values_arr[keep])

    def drop_epoch(self, epoch: int) -> Curve:
        keep = self.epochs != epoch
        return Curve(self.name, self.epochs[keep], self.values[keep])

    def value_at(self, epoch: int) -> float | None:
        hit = np.flatnonzero(self.epochs == epoch)
        return float(self.values[hit[0]]) if hit.size else None


UNSTEPPED_MIN = 3  # points at one step that make a curve logged without steps, not re-logs


def unstepped_steps(steps: np.ndarray) -> bool:
    """A metric's steps are those of a curve logged without ``step=``: 3 or more, all equal."""
    return steps.size >= UNSTEPPED_MIN and bool(np.all(steps == steps[0]))


def integers_as_stored(values: Any) -> np.ndarray:
    """``values`` as an array, with integers a store handed back as bytes read as integers.

    A step or timestamp logged as a numpy integer (``np.int64(epoch)``) is bound by Python's
    sqlite3 as its 8 raw bytes, so SQLite stores a blob and MLflow returns ``bytes``; such a blob
    is the integer's little-endian two's complement, with no other reading. Anything else is
    returned as ``np.asarray`` gives it.
    """
    if isinstance(values, np.ndarray) and values.dtype != object:
        return values
    items = values if isinstance(values, (list, tuple)) else list(np.asarray(values, dtype=object)
                                                                   .reshape(-1))
    if not any(isinstance(v, (bytes, bytearray, memoryview)) for v in items):
        return np.asarray(values)
    return np.asarray([int.from_bytes(bytes(v), "little", signed=True)
                       if isinstance(v, (bytes, bytearray, memoryview)) else v for v in items])


def _as_float_array(values: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metric {name!r}: values must be numbers ({exc})") from None


def finite_part(curve: Curve) -> tuple[Curve, int | None, tuple[int, ...]]:
    """The curve a diagnosis reads: its finite values up to where it turned NaN/inf for good,
    that epoch (None when it ends finite), and the epochs of the NaN/inf values it dropped
    because the curve was finite again after them.

    A weight that became NaN or infinite stays so: every later value of the curve is NaN too. A
    curve that is finite again after a NaN/inf was not broken by it (an evaluation on an empty
    batch, a step a loss scaler skipped): the point is a logging glitch, dropped, not a
    divergence. Only a stretch of NaN/inf that lasts to the end is one.
    """
    finite = np.isfinite(curve.values)
    if finite.all():
        return curve, None, ()
    tail = np.flatnonzero(finite)
    end = int(tail[-1]) + 1 if tail.size else 0  # the trailing NaN/inf stretch starts here
    keep = finite[:end]
    dropped = tuple(int(e) for e in curve.epochs[:end][~keep])
    turned = int(curve.epochs[end]) if end < len(curve) else None
    return Curve(curve.name, curve.epochs[:end][keep], curve.values[:end][keep]), turned, dropped


def finite_prefix(curve: Curve) -> tuple[Curve, int | None]:
    """The curve up to (not including) its first NaN/inf value, and that value's epoch."""
    bad = np.flatnonzero(~np.isfinite(curve.values))
    if bad.size == 0:
        return curve, None
    cut = int(bad[0])
    return Curve(curve.name, curve.epochs[:cut], curve.values[:cut]), int(curve.epochs[cut])


def _words(name: str) -> list[str]:
    # "TrainLoss" -> "Train_Loss", "valAccuracy" -> "val_Accuracy"; then split on anything else.
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    # \W is Unicode-aware: "Précision (val)" keeps its accented letters instead of losing them.
    return [w for w in re.split(r"[\W_]+", spaced.lower()) if w]


def metric_role(name: str) -> tuple[Role, str] | None:
    """(role, base) of a metric name, or None for per-step and bookkeeping names.

    ``val_loss`` -> ("val", "loss"); ``Training Loss`` -> ("train", "loss"); ``acc`` ->
    ("train", "accuracy"); ``acc_val`` -> ("val", "accuracy"); ``test_loss`` -> ("test", "loss");
    ``train_loss_step`` -> None (a per-batch series, not an epoch curve).
    """
    words = _words(name)
    if not words or "_".join(words) in _BOOKKEEPING:
        return None
    if words[0] in _BOOKKEEPING_WORDS or (len(words) > 1 and words[1] in ("lr",)
                                          and words[0] in ("x", "lr")):
        return None
    if words[-1] == "step" and len(words) > 1:
        return None
    if words[-1] == "epoch" and len(words) > 1:
        words = words[:-1]
    roles = (*_VAL_PREFIXES, *_TEST_PREFIXES, *_TRAIN_PREFIXES)
    aggregated = len(words) > 2 and words[0] in _AGGREGATE_WORDS and words[1] in roles
    if aggregated or (len(words) > 1 and words[0] == "epoch"):  # TensorBoard's epoch_loss too
        words = words[1:]
    if len(words) > 2 and words[1].isdigit() and words[0] in roles:
        words = [words[0], *words[2:]]  # LightGBM's valid_0.l2: the first validation set
    words = [_SINGULAR.get(w, w) for w in words]
    role: Role = "train"
    if words[0] in _VAL_PREFIXES and len(words) > 1:
        role, words = "val", words[1:]
    elif words[0] in _TEST_PREFIXES and len(words) > 1:
        role, words = "test", words[1:]
    elif words[0] in _TRAIN_PREFIXES and len(words) > 1:
        words = words[1:]
    elif len(words) > 1 and words[-1] in _VAL_PREFIXES:  # "acc_val", "macro_f1_val"
        role, words = "val", words[:-1]
    elif len(words) > 1 and words[-1] in _TEST_PREFIXES:
        role, words = "test", words[:-1]
    elif len(words) > 1 and words[-1] in _TRAIN_PREFIXES:  # "acc_train"
        words = words[:-1]
    base = "_".join("accuracy" if w == "acc" else w for w in words)
    if base in _BOOKKEEPING:
        return None
    return role, base


def metric_mode(name: str) -> Mode:
    """``"min"`` for loss-like names, ``"max"`` for score-like names; ValueError when unknown."""
    words = set(_words(name))
    joined = "".join(_words(name))
    if words & set(_LOSS_WORDS) or any(w in joined for w in ("loss", "error", "crossentropy")):
        return "min"
    if words & set(_SCORE_WORDS) or "accuracy" in joined:
        return "max"
    raise ValueError(f"cannot tell whether lower or higher is better for metric {name!r}; "
                     "pass mode='min' or mode='max' (--mode min or --mode max on the command "
                     "line)")


def as_fraction(values: np.ndarray, name: str) -> tuple[np.ndarray, bool]:
    """Accuracy-like values in percent (max above 1, at most 100) scaled to [0, 1]."""
    words = set(_words(name))
    if not words & {"accuracy", "acc", "precision", "recall", "f1", "auc", "iou", "dice"}:
        return values, False
    finite = values[np.isfinite(values)]
    if finite.size and 1.0 < float(finite.max()) <= 100.0 and float(finite.min()) >= 0.0:
        return values / 100.0, True
    return values, False


@dataclass(frozen=True)
class CurvePair:
    """The train and validation curves of one base metric (either may be missing)."""

    base: str
    train: str | None
    val: str | None


def pair_curves(curves: Mapping[str, Curve]) -> dict[str, CurvePair]:
    """Pair curves by base name; of several candidates for one slot one logged with steps wins
    over one logged without (``Curve.unstepped``), then the longest.

    A ``test_*`` curve fills the validation slot of its base when no validation curve does and it
    was logged more than once (a single point is a final test score, not a curve).
    """
    slots: dict[tuple[str, str], list[tuple[int, int, str]]] = {}
    for name, curve in curves.items():
        parsed = metric_role(name)
        if parsed is None:
            continue
        role, base = parsed
        words = _words(name)
        # Prefer the canonical Keras spellings on ties: "val_loss" over "validation_loss".
        canonical = int(words[0] in ("val",) or (role == "train" and words[0] not in _TRAIN_PREFIXES))
        stepped = int(not curve.unstepped)
        slots.setdefault((base, role), []).append((stepped, len(curve), canonical, name))
    pairs: dict[str, CurvePair] = {}
    for base in sorted({b for b, _ in slots}):
        chosen = {role: max(slots[(base, role)])[-1] for role in ("train", "val")
                  if (base, role) in slots}
        if "val" not in chosen and (base, "test") in slots:
            _, length, _, name = max(slots[(base, "test")])
            if length > 1:
                chosen["val"] = name
        pairs[base] = CurvePair(base, chosen.get("train"), chosen.get("val"))
    return pairs


def shadowed_unstepped(curves: Mapping[str, Curve]) -> set[str]:
    """The curves logged without steps whose pairing slot also holds one logged with steps (the
    ``validation_loss`` autolog logs at step 0 beside ``val_loss``): pairing never picks them, and
    a table of epochs leaves them out (their numbering is not the epochs')."""
    stepped = {(parsed[1], parsed[0]) for name, c in curves.items()
               if not c.unstepped and (parsed := metric_role(name)) is not None}
    return {name for name, c in curves.items()
            if c.unstepped and (parsed := metric_role(name)) is not None
            and (parsed[1], parsed[0]) in stepped}


def _epoch_column(frame: Any, columns: dict[str, Any]) -> tuple[Any, np.ndarray | None]:
    """The column that indexes epochs, and its values; (None, None) when there is none.

    ``epoch`` wins over ``epochs``. A candidate must be numeric and never decrease; one that holds
    the same value on every row of a file whose rows are complete is a hyper-parameter repeated
    per row (``epochs`` = 200 beside the curves), not an index.
    """
    import pandas as pd

    ranked = sorted((c for c in columns if c.strip().lower() in ("epoch", "epochs")),
                    key=lambda c: c.strip().lower() != "epoch")
    for label in ranked:
        values = pd.to_numeric(frame[columns[label]], errors="coerce").to_numpy(dtype=np.float64)
        known = values[~np.isnan(values)]
        if known.size == 0 or np.any(np.diff(known) < 0):
            continue
        if known.size > 1 and known[0] == known[-1]:
            others = frame.drop(columns=[columns[label]]).select_dtypes("number")
            if not others.isna().to_numpy().any():
                continue
        return columns[label], values
    return None, None


def _curves_from_frame(frame: Any) -> dict[str, Curve]:
    import pandas as pd

    columns = {str(c): c for c in frame.columns}
    epoch_col, epochs = _epoch_column(frame, columns)
    if epochs is None:
        epochs = np.arange(len(frame), dtype=np.float64)
    # One row per epoch (Keras CSVLogger): a NaN is a value the run logged (a diverged loss is
    # written as "nan"). Several rows per epoch (Lightning's metrics.csv, where train and val rows
    # alternate): a NaN is a blank cell of the other kind of row.
    known = epochs[~np.isnan(epochs)]
    blanks = epoch_col is not None and np.unique(known).size < known.size
    curves: dict[str, Curve] = {}
    all_nan: dict[str, Curve] = {}
    for label, column in columns.items():
        if column is epoch_col or label.lower().startswith("unnamed:"):
            continue
        series = frame[column]
        if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
            continue
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        present = ~np.isnan(epochs)
        if blanks:
            present &= ~np.isnan(values)
        if not present.any():
            continue
        curve = Curve.from_points(label, epochs[present], values[present])
        if np.isnan(values[present]).all():  # an empty column, or NaN from the first epoch
            all_nan[label] = curve
        else:
            curves[label] = curve
    # Beside curves with values, an all-NaN score column is one the run never filled; a loss is
    # computed every epoch, so an all-NaN loss diverged from the first epoch on (CSVLogger writes
    # "nan", and Keras keeps writing the accuracy beside it), as does a file whose every curve
    # is NaN, whatever bookkeeping (a learning rate) was logged beside it.
    if blanks:
        return curves
    if not any(metric_role(label) is not None for label in curves):
        return {**curves, **all_nan}
    return {**curves, **{label: c for label, c in all_nan.items()
                         if metric_role(label) is not None and is_loss_name(label)}}


def is_loss_name(name: str) -> bool:
    """Whether ``name`` reads as a loss (``metric_mode`` "min"); False when it says nothing."""
    try:
        return metric_mode(name) == "min"
    except ValueError:
        return False


def is_accuracy_name(name: str) -> bool:
    """Whether ``name`` reads as an accuracy (``acc``, ``accuracy``, ``val_acc``, ``Accuracy/val``)."""
    return bool(set(_words(name)) & {"acc", "accuracy"})


def is_epoch_metric(name: str) -> bool:
    """Whether ``name`` is the ``epoch`` metric Lightning and Hugging Face log beside their
    curves (the epoch of each global step), not a curve itself."""
    return name.strip().lower() == "epoch"


def _is_table(history: Mapping) -> bool:
    """A mapping of equal-length plain sequences with an ``epoch(s)`` entry: read as a table."""
    names = [str(k).strip().lower() for k in history]
    if not any(n in ("epoch", "epochs") for n in names):
        return False
    lengths = set()
    for series in history.values():
        if not isinstance(series, (list, tuple, np.ndarray)):
            return False
        lengths.add(len(series))
    return len(lengths) == 1


def history_curves(history: Any) -> dict[str, Curve]:
    """Curves from a History mapping, a mapping of Curves, or a DataFrame (see module doc)."""
    if hasattr(history, "history") and isinstance(history.history, Mapping):
        history = history.history  # a keras.callbacks.History object
    if hasattr(history, "columns") and hasattr(history, "to_numpy"):
        curves = _curves_from_frame(history)
    elif isinstance(history, Mapping) and _is_table(history):
        import pandas as pd

        curves = _curves_from_frame(pd.DataFrame({str(k): list(v) for k, v in history.items()}))
    elif isinstance(history, Mapping):
        curves = {}
        for name, series in history.items():
            name = str(name)
            if isinstance(series, Curve):
                curves[name] = series
            elif hasattr(series, "index") and hasattr(series, "to_numpy"):  # pandas Series
                curves[name] = Curve.from_points(name, np.asarray(series.index),
                                                 series.to_numpy(dtype=np.float64))
            else:
                values = _as_float_array(series, name).reshape(-1)
                curves[name] = Curve(name, np.arange(values.size), values)
    else:
        raise ValueError("history must be a mapping of metric name to values (a Keras "
                         f"History.history) or a pandas DataFrame, not {type(history).__name__}")
    return as_epochs(curves)


def as_epochs(curves: dict[str, Curve]) -> dict[str, Curve]:
    """A run's curves by epoch, as every reader of runs takes them: ``drop_restored_epoch``, then
    ``epochs_from_epoch_metric``."""
    return epochs_from_epoch_metric(drop_restored_epoch(curves))


def _epoch_numbers(values: np.ndarray) -> np.ndarray:
    """The epoch each ``epoch`` value belongs to: the value itself when it is whole (Lightning's
    0-based ``current_epoch``, Hugging Face's epochs completed at an evaluation), else the epoch
    in progress, counted like the evaluation that ends it (Hugging Face's 0.25 is in epoch 1)."""
    whole = np.abs(values - np.round(values)) <= 1e-6
    return np.where(whole, np.round(values), np.ceil(values)).astype(np.int64)


def epochs_from_epoch_metric(curves: dict[str, Curve]) -> dict[str, Curve]:
    """Curves logged at global steps beside an ``epoch`` metric, renumbered by epoch.

    PyTorch Lightning's ``MLFlowLogger`` and Hugging Face's ``Trainer`` log every metric at the
    global step (batches so far) and log ``epoch`` at the same steps. When a run holds an
    ``epoch`` metric of 2 or more finite, non-negative, non-decreasing values whose steps run
    ahead of them (steps are batches, not epochs), each point of every curve is read at the epoch
    logged at its step (or at the last step before it; before the first, the whole part of the
    first epoch logged), whole values as they are and fractional
    ones as the epoch in progress (``_epoch_numbers``); of several points in one epoch the last
    (the end of that epoch) is kept. Only a run evaluated once an epoch is renumbered: one that
    evaluated more than once in an epoch (Hugging Face's ``eval_strategy="steps"``, a one-epoch
    fine-tune, Lightning's ``val_check_interval``) or not at all (a fine-tune without an eval set)
    keeps its steps, there the finer axis of its curves. Anything else,
    ``epoch`` logged at step = epoch included, is returned unchanged, as are curves logged without
    steps.
    """
    marker = next((c for name, c in curves.items() if is_epoch_metric(name)), None)
    if marker is None or len(marker) < 2:
        return curves
    values = marker.values
    if not np.all(np.isfinite(values)) or values.min() < 0 or np.any(np.diff(values) < 0):
        return curves
    epoch_at = _epoch_numbers(values)
    if np.array_equal(epoch_at, marker.epochs) or marker.epochs[-1] <= epoch_at[-1]:
        return curves  # the steps are the epochs already (or run behind them: not batches)
    out = {}
    evaluated = False  # a validation curve of 2 or more epochs, one point each
    for name, curve in curves.items():
        if curve.unstepped or len(curve) == 0:
            out[name] = curve
            continue
        at = np.searchsorted(marker.epochs, curve.epochs, side="right") - 1
        # Before the first epoch logged: the epoch it is in, begun (Hugging Face's evaluate()
        # before train(), at step 0, is epoch 0 when its first logged epoch is 0.25).
        epochs = np.where(at >= 0, epoch_at[np.maximum(at, 0)], math.floor(values[0]))
        last = np.append(epochs[1:] != epochs[:-1], True)  # epochs never decrease along steps
        role = metric_role(name)
        if role is not None and role[0] in ("val", "test"):
            if not last.all():
                return curves  # evaluated within epochs: steps are the finer axis
            evaluated = evaluated or len(curve) >= 2
        out[name] = Curve(name, epochs[last], curve.values[last])
    # Without a validation curve evaluated once an epoch (a fine-tune with no eval set), the
    # training curves at their steps are what there is to read: not one point an epoch.
    return out if evaluated else curves


def drop_restored_epoch(curves: dict[str, Curve]) -> dict[str, Curve]:
    """Remove the point mlflow.tensorflow re-logs at ``stopped_epoch + 1`` after restoring weights."""
    stopped = curves.get("stopped_epoch")
    restored = curves.get("restored_epoch")
    if stopped is None or restored is None or len(stopped) == 0:
        return curves
    last = float(stopped.values[-1])
    if not math.isfinite(last):
        return curves
    fake = int(last) + 1
    out = {}
    for name, curve in curves.items():
        if name in ("stopped_epoch", "restored_epoch") or len(curve) == 0 or curve.unstepped:
            out[name] = curve  # an unstepped curve's epochs are its order: no step to drop
        elif int(curve.epochs[-1]) == fake:
            out[name] = curve.drop_epoch(fake)
        else:
            out[name] = curve
    return out
