"""``curves``: building curves from what users have, and finding train/validation pairs by name."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlflow_plateau.curves import (
    Curve,
    as_fraction,
    drop_restored_epoch,
    finite_prefix,
    history_curves,
    metric_mode,
    metric_role,
    pair_curves,
)


def _curve(name, values, epochs=None):
    values = np.asarray(values, dtype=np.float64)
    return Curve(name, np.arange(values.size) if epochs is None else np.asarray(epochs), values)


# --- Curve ------------------------------------------------------------------------------------

def test_from_points_sorts_by_epoch():
    c = Curve.from_points("loss", [3, 0, 2, 1], [0.3, 1.0, 0.5, 0.7])
    assert c.epochs.tolist() == [0, 1, 2, 3]
    assert c.values.tolist() == [1.0, 0.7, 0.5, 0.3]


def test_from_points_keeps_the_newest_point_by_position():
    c = Curve.from_points("loss", [0, 1, 1, 2, 1], [1.0, 0.9, 0.8, 0.6, 0.7])
    assert c.epochs.tolist() == [0, 1, 2]
    assert c.values.tolist() == [1.0, 0.7, 0.6]


def test_from_points_keeps_the_newest_point_by_order():
    # MLflow timestamps: the re-logged point at step 1 (t=50) is newer than the later row (t=20).
    c = Curve.from_points("loss", [0, 1, 1, 2], [1.0, 0.9, 0.8, 0.6], order=[10, 50, 20, 30])
    assert c.values.tolist() == [1.0, 0.9, 0.6]


def test_from_points_equal_order_falls_back_to_position():
    c = Curve.from_points("loss", [1, 1], [0.9, 0.8], order=[5, 5])
    assert c.values.tolist() == [0.8]


def test_points_all_logged_at_one_step_are_a_curve_in_logging_order():
    """``mlflow.log_metric("val_loss", v)`` without ``step=`` puts every epoch at step 0: the
    points are the curve, oldest first (by timestamp, then as given), not re-logs of one step."""
    c = Curve.from_points("val_loss", [0, 0, 0, 0], [0.5, 0.9, 0.7, 0.6], order=[30, 10, 20, 20])
    assert c.unstepped and c.epochs.tolist() == [0, 1, 2, 3]
    assert c.values.tolist() == [0.9, 0.7, 0.6, 0.5]
    # Two points at one step stay a re-log (the newest wins), as do repeats beside other steps.
    assert Curve.from_points("m", [0, 0], [1.0, 2.0]).values.tolist() == [2.0]
    mixed = Curve.from_points("m", [0, 0, 0, 1], [1.0, 2.0, 3.0, 4.0])
    assert not mixed.unstepped and mixed.values.tolist() == [3.0, 4.0]
    # A stepped curve of a slot wins over an unstepped one, however long (autolog's repeated
    # validation_loss at step 0, one point more for a model.evaluate, beside val_loss).
    from mlflow_plateau.curves import pair_curves

    pairs = pair_curves({"loss": Curve("loss", np.arange(5), np.ones(5)),
                         "val_loss": Curve("val_loss", np.arange(5), np.ones(5)),
                         "validation_loss": Curve.from_points("validation_loss", [0] * 6,
                                                              np.ones(6))})
    assert pairs["loss"].val == "val_loss"
    only = pair_curves({"loss": Curve("loss", np.arange(5), np.ones(5)),
                        "validation_loss": Curve.from_points("validation_loss", [0] * 6,
                                                             np.ones(6))})
    assert only["loss"].val == "validation_loss"


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(st.integers(-5, 30), st.floats(allow_nan=True)), max_size=60))
def test_from_points_matches_a_dictionary_of_last_writes(points):
    expected: dict[int, float] = {}
    for epoch, value in points:
        expected[epoch] = value
    c = Curve.from_points("m", [p[0] for p in points], [p[1] for p in points])
    if len(points) >= 3 and len(expected) == 1:  # all at one step: a curve logged without steps
        assert c.unstepped and c.epochs.tolist() == list(range(points[0][0], points[0][0] + len(points)))
        np.testing.assert_array_equal(c.values, [p[1] for p in points])
        return
    assert not c.unstepped
    assert c.epochs.tolist() == sorted(expected)
    np.testing.assert_array_equal(c.values, [expected[e] for e in sorted(expected)])


@pytest.mark.parametrize("epochs, values, message", [
    ([0, 1], [1.0], "2 steps but 1 values"),
    ([0, 1.5], [1.0, 2.0], "steps must be integers"),
    ([0, float("nan")], [1.0, 2.0], "finite integers"),
    ([0, 1e300], [1.0, 2.0], "finite integers"),
    (["a", "b"], [1.0, 2.0], "steps must be integers"),
    ([0, 1], ["x", "y"], "values must be numbers"),
])
def test_from_points_rejects_what_it_cannot_read(epochs, values, message):
    with pytest.raises(ValueError, match=message):
        Curve.from_points("loss", epochs, values)


def test_curve_requires_strictly_increasing_epochs():
    with pytest.raises(ValueError, match="strictly increasing"):
        Curve("loss", [0, 0], [1.0, 2.0])
    with pytest.raises(ValueError, match="2 epochs but 1 values"):
        Curve("loss", [0, 1], [1.0])


def test_finite_prefix_cuts_at_the_first_nan_or_inf():
    c = _curve("loss", [1.0, 0.5, np.nan, 0.3], epochs=[5, 6, 7, 8])
    cut, bad = finite_prefix(c)
    assert cut.values.tolist() == [1.0, 0.5] and bad == 7
    cut, bad = finite_prefix(_curve("loss", [np.inf]))
    assert len(cut) == 0 and bad == 0
    cut, bad = finite_prefix(_curve("loss", [1.0, 0.5]))
    assert len(cut) == 2 and bad is None


def test_value_at_and_drop_epoch():
    c = _curve("loss", [1.0, 0.5, 0.4], epochs=[0, 2, 4])
    assert c.value_at(2) == 0.5 and c.value_at(3) is None
    assert c.drop_epoch(2).epochs.tolist() == [0, 4]


# --- names ------------------------------------------------------------------------------------

@pytest.mark.parametrize("train, val, base", [
    ("loss", "val_loss", "loss"),
    ("train_loss", "valid_loss", "loss"),
    ("Train Loss", "Val Loss", "loss"),
    ("Training Loss", "Validation Loss", "loss"),
    ("TrainLoss", "ValLoss", "loss"),
    ("acc", "val_acc", "accuracy"),
    ("accuracy", "val_accuracy", "accuracy"),
    ("train/loss", "eval/loss", "loss"),
    ("train_loss_epoch", "val_loss_epoch", "loss"),
    ("mean_absolute_error", "val_mean_absolute_error", "mean_absolute_error"),
])
def test_names_in_the_wild_pair_up(train, val, base):
    assert metric_role(train) == ("train", base)
    assert metric_role(val) == ("val", base)
    pairs = pair_curves({train: _curve(train, [1, 2, 3]), val: _curve(val, [1, 2, 3])})
    assert pairs[base].train == train and pairs[base].val == val


@pytest.mark.parametrize("name", ["lr", "learning_rate", "stopped_epoch", "restored_epoch",
                                  "epoch", "train_loss_step", "step"])
def test_bookkeeping_and_per_step_names_are_not_curves(name):
    assert metric_role(name) is None


def test_validation_loss_logged_at_step_0_loses_to_val_loss():
    # mlflow autolog logs validation_loss repeatedly at step 0; keras logs val_loss per epoch.
    step0 = Curve.from_points("validation_loss", [0, 0, 0], [0.5, 0.4, 0.3])
    curves = {"loss": _curve("loss", [1.0, 0.8, 0.6, 0.5]),
              "val_loss": _curve("val_loss", [1.1, 0.9, 0.7, 0.65]),
              "validation_loss": step0}
    pairs = pair_curves(curves)
    assert pairs["loss"] == pairs["loss"].__class__("loss", "loss", "val_loss")


def test_equal_length_tie_prefers_the_keras_spelling():
    curves = {"val_loss": _curve("val_loss", [1, 2, 3]),
              "validation_loss": _curve("validation_loss", [1, 2, 3]),
              "loss": _curve("loss", [1, 2, 3])}
    assert pair_curves(curves)["loss"].val == "val_loss"


def test_unpaired_curves_have_a_missing_side():
    pairs = pair_curves({"val_auc": _curve("val_auc", [0.5, 0.6]), "loss": _curve("loss", [1, 2])})
    assert (pairs["auc"].train, pairs["auc"].val) == (None, "val_auc")
    assert (pairs["loss"].train, pairs["loss"].val) == ("loss", None)


@pytest.mark.parametrize("name, mode", [
    ("val_loss", "min"), ("Validation Loss", "min"), ("val_mean_squared_error", "min"),
    ("mae", "min"), ("perplexity", "min"), ("val_sparse_categorical_crossentropy", "min"),
    ("val_accuracy", "max"), ("acc", "max"), ("val_auc", "max"), ("f1", "max"), ("r2", "max"),
    ("top_k_categorical_accuracy", "max"), ("ValAccuracy", "max"),
])
def test_metric_mode(name, mode):
    assert metric_mode(name) == mode


def test_metric_mode_unknown_name_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="'widgets'"):
        metric_mode("widgets")


def test_unicode_names_keep_their_letters():
    assert metric_role("précision (val)") is not None
    assert metric_role("validation précision") == ("val", "précision")
    assert metric_role("Val Loss ✓") == ("val", "loss")


# --- histories --------------------------------------------------------------------------------

def test_keras_history_mapping_and_history_object():
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}
    curves = history_curves(history)
    assert curves["val_loss"].epochs.tolist() == [0, 1]

    class History:  # what model.fit returns: an object with a .history dict
        pass

    h = History()
    h.history = history
    assert history_curves(h)["loss"].values.tolist() == [1.0, 0.5]


def test_mapping_of_curves_and_of_series():
    c = Curve("val_loss", [3, 4], [0.5, 0.4])
    s = pd.Series([0.9, 0.8], index=[4, 3])
    curves = history_curves({"val_loss": c, "loss": s})
    assert curves["val_loss"] is c
    assert curves["loss"].epochs.tolist() == [3, 4] and curves["loss"].values.tolist() == [0.8, 0.9]


def test_csvlogger_frame_uses_the_epoch_column_and_ignores_the_rest():
    text = ("epoch,accuracy,loss,val_accuracy,val_loss,note\n"
            "0,0.5,0.9,0.48,0.95,a\n1,0.7,0.6,0.66,0.7,b\n2,0.8,0.45,0.7,0.65,c\n")
    frame = pd.read_csv(io.StringIO(text), index_col=None)
    frame.index = [10, 11, 12]  # the index is not the epoch
    curves = history_curves(frame)
    assert set(curves) == {"accuracy", "loss", "val_accuracy", "val_loss"}
    assert curves["val_loss"].epochs.tolist() == [0, 1, 2]
    assert curves["val_loss"].values.tolist() == [0.95, 0.7, 0.65]


def test_csv_saved_with_its_index_ignores_the_unnamed_column():
    frame = pd.DataFrame({"epoch": [5, 6, 7], "loss": [0.9, 0.8, 0.7]})
    reread = pd.read_csv(io.StringIO(frame.to_csv()))  # adds "Unnamed: 0"
    curves = history_curves(reread)
    assert set(curves) == {"loss"} and curves["loss"].epochs.tolist() == [5, 6, 7]


def test_csvlogger_nan_is_a_logged_value_so_divergence_is_seen():
    text = "epoch,loss,val_loss\n0,0.9,0.95\n1,nan,nan\n2,nan,nan\n"
    curves = history_curves(pd.read_csv(io.StringIO(text)))
    cut, bad = finite_prefix(curves["loss"])
    assert len(cut) == 1 and bad == 1


def test_lightning_metrics_csv_with_blank_cells():
    text = ("epoch,step,train_loss,val_loss,val_acc\n"
            "0,49,0.90,,\n0,49,,0.80,0.50\n"
            "1,99,0.70,,\n1,99,,0.60,0.60\n"
            "2,149,0.55,,\n")
    curves = history_curves(pd.read_csv(io.StringIO(text)))
    assert curves["train_loss"].epochs.tolist() == [0, 1, 2]
    assert curves["val_loss"].values.tolist() == [0.8, 0.6]
    assert curves["val_acc"].epochs.tolist() == [0, 1]
    assert pair_curves(curves)["loss"] == pair_curves(curves)["loss"].__class__(
        "loss", "train_loss", "val_loss")


def test_frame_without_epoch_column_uses_row_order_and_skips_empty_columns():
    frame = pd.DataFrame({"loss": [0.9, 0.7, 0.6], "empty": [np.nan] * 3, "flag": [True, False, True],
                          "name": ["a", "b", "c"]})
    curves = history_curves(frame)
    assert "name" not in curves and "empty" not in curves
    assert curves["loss"].epochs.tolist() == [0, 1, 2]


def test_history_of_another_type_is_a_value_error():
    with pytest.raises(ValueError, match="mapping of metric name"):
        history_curves([0.1, 0.2])
    with pytest.raises(ValueError, match="'loss'"):
        history_curves({"loss": ["a", "b"]})


# --- percent and restored epoch ---------------------------------------------------------------

def test_accuracy_in_percent_becomes_a_fraction():
    values, scaled = as_fraction(np.array([48.0, 65.5, 81.0]), "val_accuracy")
    assert scaled and values.tolist() == pytest.approx([0.48, 0.655, 0.81])
    values, scaled = as_fraction(np.array([0.48, 0.655]), "val_accuracy")
    assert not scaled and values.tolist() == [0.48, 0.655]
    values, scaled = as_fraction(np.array([48.0, 65.5]), "val_loss")  # a loss is never scaled
    assert not scaled
    values, scaled = as_fraction(np.array([48.0, np.nan, 65.0]), "acc")
    assert scaled and np.isnan(values[1])


def test_the_point_relogged_after_restoring_best_weights_is_dropped():
    # EarlyStopping stopped at epoch 5 and restored epoch 2; mlflow.tensorflow re-logs epoch 2's
    # values at step 6, which is not an epoch that was trained.
    history = {
        "loss": Curve("loss", np.arange(7), [1.0, 0.7, 0.5, 0.45, 0.42, 0.4, 0.5]),
        "val_loss": Curve("val_loss", np.arange(7), [1.0, 0.8, 0.6, 0.62, 0.64, 0.66, 0.6]),
        "stopped_epoch": Curve("stopped_epoch", [0], [5.0]),
        "restored_epoch": Curve("restored_epoch", [0], [2.0]),
    }
    curves = history_curves(history)
    assert curves["val_loss"].epochs.tolist() == [0, 1, 2, 3, 4, 5]
    assert curves["loss"].epochs.tolist() == [0, 1, 2, 3, 4, 5]
    assert len(curves["stopped_epoch"]) == 1


def test_restored_epoch_point_is_kept_without_restored_epoch_metric():
    curves = {"loss": _curve("loss", [1.0, 0.5, 0.4]),
              "stopped_epoch": Curve("stopped_epoch", [0], [1.0])}
    assert len(drop_restored_epoch(curves)["loss"]) == 3


def _global_steps(per_epoch: dict[str, np.ndarray], batches: int, hf: bool) -> dict[str, Curve]:
    """Curves logged the way Lightning's MLFlowLogger (``hf=False``: ``epoch`` = current_epoch at
    each global step) or Hugging Face's Trainer (``hf=True``: fractional ``epoch`` every 10 steps,
    evaluation at the end of each epoch with the epochs completed) log them."""
    n = len(next(iter(per_epoch.values())))
    steps, epochs, train = [], [], []
    for e in range(n):
        for b in range(10, batches + 1, 10):
            g = e * batches + b
            steps.append(g)
            epochs.append(g / batches if hf else e)
            train.append(per_epoch["loss"][e] + 0.01 * b / batches)
    ends = [(e + 1) * batches for e in range(n)]
    out = {"loss": Curve.from_points("loss", steps, train),
           "epoch": Curve.from_points("epoch", steps + ends, epochs + [
               float(e + 1) if hf else e for e in range(n)])}
    for name, values in per_epoch.items():
        if name != "loss":
            out[name] = Curve(name, np.asarray(ends), values)
    return out


@pytest.mark.parametrize("hf", [False, True])
def test_global_steps_beside_an_epoch_metric_are_read_as_epochs(hf):
    from mlflow_plateau.curves import epochs_from_epoch_metric

    x = np.arange(12)
    per_epoch = {"loss": 1.0 / (1 + x), "val_loss": 1.2 / (1 + x) + 0.1}
    read = epochs_from_epoch_metric(_global_steps(per_epoch, batches=40, hf=hf))
    first = 1 if hf else 0  # Hugging Face counts the epochs completed at each evaluation
    assert read["val_loss"].epochs.tolist() == list(range(first, first + 12))
    np.testing.assert_array_equal(read["val_loss"].values, per_epoch["val_loss"])
    # The training loss: the last point of each epoch, at the same epoch numbers.
    assert read["loss"].epochs.tolist() == read["val_loss"].epochs.tolist()
    np.testing.assert_allclose(read["loss"].values, per_epoch["loss"] + 0.01)
    assert epochs_from_epoch_metric(read) == read  # read again: nothing moves


def test_evaluations_within_an_epoch_keep_their_steps():
    """A one-epoch fine-tune evaluated every 100 steps (Hugging Face's eval_strategy="steps"):
    renumbered by epoch its validation curve would be one point; its steps are kept."""
    from mlflow_plateau.curves import epochs_from_epoch_metric

    steps = np.arange(100, 1001, 100)
    curves = {"eval_loss": Curve("eval_loss", steps, 1.0 / np.arange(1, 11)),
              "loss": Curve("loss", steps - 50, 1.0 / np.arange(1, 11)),
              "epoch": Curve("epoch", steps, steps / 1000)}
    assert epochs_from_epoch_metric(curves) is curves
    # Without an eval set at all (a fine-tune of 3 epochs, loss every 10 steps): the training
    # curve at its steps, not 3 points.
    steps = np.arange(10, 1201, 10)
    curves = {"loss": Curve("loss", steps, 1.0 / np.sqrt(steps)),
              "epoch": Curve("epoch", steps, steps / 400)}
    assert epochs_from_epoch_metric(curves) is curves


def test_an_epoch_metric_that_is_not_a_step_counter_changes_nothing():
    from mlflow_plateau.curves import epochs_from_epoch_metric

    val = Curve("val_loss", np.arange(5), np.linspace(1, 0.5, 5))
    cases = [Curve("epoch", np.arange(5), np.arange(5.0)),            # step = epoch already
             Curve("epoch", np.arange(5) * 10, [0, 1, 3, 2, 4.0]),    # goes back: not a counter
             Curve("epoch", np.arange(5) * 10, [0, 1, np.nan, 3, 4]),
             Curve("epoch", np.array([3]), np.array([3.0]))]           # one point
    for epoch in cases:
        curves = {"val_loss": val, "epoch": epoch}
        assert epochs_from_epoch_metric(curves) is curves


def test_hugging_face_bookkeeping_is_not_a_curve():
    """A Trainer run that evaluated no loss is "no validation metric", not "cannot tell whether
    lower or higher is better for 'eval_runtime'"."""
    from mlflow_plateau.curves import metric_role
    from mlflow_plateau.verdict import no_validation_metric

    names = ["eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "train_runtime",
             "train_samples_per_second", "total_flos", "grad_norm"]
    assert [metric_role(n) for n in names] == [None] * len(names)
    curves = {n: Curve(n, np.arange(3), np.ones(3)) for n in [*names, "loss", "epoch"]}
    assert "no validation metric" in no_validation_metric(curves, None)


def test_an_evaluation_before_training_is_epoch_zero():
    """Hugging Face's trainer.evaluate() before train() logs eval_loss at step 0 without an
    epoch (its first logged epoch is 0.25): epoch 0, before the per-epoch evaluations 1, 2, ..."""
    from mlflow_plateau.curves import epochs_from_epoch_metric

    x = np.arange(6)
    curves = _global_steps({"loss": 1.0 / (1 + x), "eval_loss": 1.2 / (1 + x) + 0.1},
                           batches=40, hf=True)
    ev = curves["eval_loss"]
    curves["eval_loss"] = Curve("eval_loss", np.r_[0, ev.epochs], np.r_[2.0, ev.values])
    read = epochs_from_epoch_metric(curves)
    assert read["eval_loss"].epochs.tolist() == list(range(7))
    assert read["eval_loss"].values[0] == 2.0
