"""Training-log files in every shape users write them, read into the right curves.

Each shape is a small file written here, as the tool meets it in the wild; the last tests read
the labelled real logs of ``benchmarks/data/real_logs`` (in the repository) and check the epoch
counts recorded in its ``SOURCES.tsv`` and the verdict agreement.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from mlflow_plateau.curves import history_curves, metric_role, pair_curves
from mlflow_plateau.logs import read_log
from mlflow_plateau.verdict import _pick_monitor, diagnose_curves

REAL_LOGS = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "real_logs"


def _write(tmp_path: Path, name: str, text: str, newline: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def _monitor(path: Path) -> tuple[str, str | None, dict]:
    curves = history_curves(read_log(path))
    monitor, partner = _pick_monitor(curves, None)
    return monitor, partner, curves


def test_keras_csvlogger_with_carriage_returns(tmp_path):
    rows = "epoch,accuracy,loss,val_accuracy,val_loss\n" + "".join(
        f"{e},{0.5 + e / 40},{1 / (e + 1)},{0.5 + e / 50},{1.1 / (e + 1)}\n" for e in range(12))
    monitor, partner, curves = _monitor(_write(tmp_path, "training.log", rows, "\r\r\n"))
    assert (monitor, partner) == ("val_loss", "loss")
    assert curves["val_loss"].epochs.tolist() == list(range(12))


def test_a_repeated_hyper_parameter_column_is_not_the_epoch(tmp_path):
    # "epochs" = 200 on every row beside the real "epoch" index, and alone without it.
    rows = "epoch,epochs,train_loss,val_loss\n" + "".join(
        f"{e},200,{1 / (e + 1)},{1.2 / (e + 1)}\n" for e in range(30))
    _, _, curves = _monitor(_write(tmp_path, "a.csv", rows))
    assert len(curves["val_loss"]) == 30 and metric_role("epochs") is None
    alone = "epochs,train_loss,val_loss\n" + "".join(
        f"200,{1 / (e + 1)},{1.2 / (e + 1)}\n" for e in range(30))
    _, _, curves = _monitor(_write(tmp_path, "b.csv", alone))
    assert curves["val_loss"].epochs.tolist() == list(range(30))


def test_pandas_export_with_its_index_column(tmp_path):
    rows = ",loss,accuracy,val_loss,val_accuracy\n" + "".join(
        f"{e},{1 / (e + 1)},{0.5},{1.1 / (e + 1)},0.5\n" for e in range(8))
    monitor, partner, curves = _monitor(_write(tmp_path, "h.csv", rows))
    assert (monitor, partner) == ("val_loss", "loss")
    assert not any(name.lower().startswith("unnamed") for name in curves)


def test_json_history_with_a_config_and_final_scores(tmp_path):
    data = {"config": {"lr": 3e-4, "epochs": 30}, "epochs": list(range(1, 31)),
            "train_loss": [2 / (e + 1) for e in range(30)],
            "val_loss": [2.2 / (e + 1) for e in range(30)], "test_loss": 0.18,
            "training_time_minutes": 9.7, "notes": "baseline"}
    path = tmp_path / "history.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    monitor, partner, curves = _monitor(path)
    assert (monitor, partner) == ("val_loss", "train_loss")
    assert curves["val_loss"].epochs.tolist() == list(range(1, 31))
    assert "config" not in curves and "test_loss" not in curves


def test_json_list_of_records_and_json_errors(tmp_path):
    path = tmp_path / "records.json"
    path.write_text(json.dumps([{"epoch": e, "loss": 1 / (e + 1), "val_loss": 1.1 / (e + 1)}
                                for e in range(5)]), encoding="utf-8")
    assert _monitor(path)[0] == "val_loss"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"config": {"lr": 1}, "name": "x"}), encoding="utf-8")
    with pytest.raises(ValueError, match="no metric in the JSON log is a list of numbers"):
        read_log(bad)
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_log(broken)


def test_lightning_metrics_csv_with_step_and_epoch_rows(tmp_path):
    lines = ["epoch,step,train_loss_step,train_loss_epoch,val_loss,val_acc,test_loss"]
    for e in range(6):
        lines.append(f"{e},{e * 10 + 5},{1 / (e + 1)},,,,")
        lines.append(f"{e},{e * 10 + 9},,,{1.1 / (e + 1)},{0.5 + e / 20},")
        lines.append(f"{e},{e * 10 + 9},,{1 / (e + 1)},,,")
    lines.append("6,69,,,,,0.21")  # the final test row
    monitor, partner, curves = _monitor(_write(tmp_path, "metrics.csv", "\n".join(lines) + "\n"))
    assert (monitor, partner) == ("val_loss", "train_loss_epoch")
    assert curves["val_loss"].epochs.tolist() == list(range(6))
    assert metric_role("train_loss_step") is None


@pytest.mark.parametrize(("train", "val"), [("TrainLoss", "ValLoss"), ("Train Loss", "Val Loss"),
                                            ("Training Loss", "Validation Loss"),
                                            ("train_loss", "test_loss"), ("acc_train", "acc_val"),
                                            ("train/box_loss", "val/box_loss")])
def test_names_in_the_wild_pair_up(train, val):
    pairs = pair_curves(history_curves({train: [1.0, 0.5, 0.4], val: [1.1, 0.6, 0.5]}))
    assert [(p.train, p.val) for p in pairs.values()] == [(train, val)]


def test_test_curves_stand_in_only_when_there_is_no_validation_curve():
    h = {"train_loss": [1.0, 0.5, 0.4], "valid_loss": [1.1, 0.6, 0.5], "test_loss": [0.55]}
    pair = pair_curves(history_curves(h))["loss"]
    assert pair.val == "valid_loss"


def test_yolo_results_with_padded_columns_and_percent_accuracy(tmp_path):
    yolo = ("               epoch,      train/box_loss,        val/box_loss,               x/lr\n"
            + "".join(f"{e:>20},{0.12 - e / 200:>20},{0.11 - e / 250:>20},{0.09:>20}\n"
                      for e in range(10)))
    monitor, partner, curves = _monitor(_write(tmp_path, "results.csv", yolo))
    assert (monitor, partner) == ("val/box_loss", "train/box_loss") and "x/lr" in curves
    assert metric_role("x/lr") is None and metric_role("Time (ms)") is None
    pct = "Epoch,Time (ms),Loss,Acc (%),Val Loss,Val Acc (%)\n" + "".join(
        f"{e},900,{1 / (e + 1)},{50 + e},{1.1 / (e + 1)},{49 + e}\n" for e in range(10))
    d = diagnose_curves(read_log(_write(tmp_path, "p.csv", pct)), monitor="Val Acc (%)")
    assert d.evidence["percent_scaled"] is True and d.plateau.best_value == pytest.approx(0.58)


def test_every_real_log_is_read_with_its_recorded_epoch_count():
    with (REAL_LOGS / "SOURCES.tsv").open(encoding="utf-8") as fh:
        sources = list(csv.DictReader(fh, delimiter="\t"))
    assert len(sources) >= 90
    for row in sources:
        curves = history_curves(read_log(REAL_LOGS / row["file"]))
        monitor, _ = _pick_monitor(curves, None)
        assert len(curves[monitor]) == int(row["epochs"]), row["file"]


def test_verdicts_agree_with_the_readers_on_the_development_set():
    """A guard against regressions of benchmarks/verdict_agreement.py's headline numbers."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from verdict_agreement import impossible_verdict

    labels = json.loads((REAL_LOGS / "labels.json").read_text(encoding="utf-8"))
    accepted = majority = 0
    for name, lab in labels.items():
        history = read_log(REAL_LOGS / name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = diagnose_curves(history)
        accepted += d.verdict in lab["accepted"]
        majority += d.verdict == lab["majority_primary"]
        assert not impossible_verdict(history, d), name
        # A summary never contradicts its own numbers.
        assert "never beat" not in d.summary
        if d.plateau is not None and d.verdict not in ("diverged", "insufficient_data"):
            assert f"at epoch {d.plateau.best_epoch}" in d.summary, (name, d.summary)
    assert accepted / len(labels) >= 0.85
    assert majority / len(labels) >= 0.70


def test_a_close_call_is_reported_with_its_number():
    # Validation reaches its best at the last epoch but barely moves over the last window.
    x = np.arange(40)
    rng = np.random.default_rng(3)
    val = 0.5 * np.exp(-x / 6) + 0.2 - 0.0009 * x + 0.004 * rng.standard_normal(40)
    d = diagnose_curves({"loss": 0.5 * np.exp(-x / 6) + 0.15, "val_loss": val})
    assert d.alternatives, d.evidence
    alt = d.alternatives[0]
    assert alt["verdict"] != d.verdict and math.isfinite(alt["score"]) and alt["why"]
    assert f"Close to {alt['verdict']}" in d.summary
    assert d.to_dict()["alternatives"] == d.alternatives


def _trainer_state(eval_every: int = 100) -> dict:
    """A Hugging Face trainer_state.json as ``Trainer`` saves it: 12 epochs of 100 steps, the
    training loss logged every 50 steps, an evaluation every ``eval_every`` steps, then the
    end-of-training summary entry."""
    history = []
    for step in range(50, 1201, 50):
        epoch = step / 100
        history.append({"epoch": epoch, "grad_norm": 2.0 / epoch, "learning_rate": 5e-5 * (1 - step / 1200),
                        "loss": 1.0 / (1.0 + epoch) + 0.05, "step": step})
        if step % eval_every == 0:
            history.append({"epoch": epoch, "eval_accuracy": 0.9 - (epoch - 5) ** 2 / 400,
                            "eval_loss": 0.3 + (epoch - 5) ** 2 / 100, "eval_runtime": 1.3,
                            "eval_samples_per_second": 770.1, "eval_steps_per_second": 24.6,
                            "step": step})
    history.append({"epoch": 12.0, "step": 1200, "total_flos": 1.3e15, "train_loss": 0.31,
                    "train_runtime": 301.4, "train_samples_per_second": 318.5,
                    "train_steps_per_second": 3.98})
    return {"best_metric": 0.3, "best_model_checkpoint": "out/checkpoint-500", "epoch": 12.0,
            "eval_steps": eval_every, "global_step": 1200, "is_hyper_param_search": False,
            "is_local_process_zero": True, "is_world_process_zero": True, "log_history": history,
            "logging_steps": 50, "max_steps": 1200, "num_input_tokens_seen": 0,
            "num_train_epochs": 12, "save_steps": 500, "stateful_callbacks": {
                "TrainerControl": {"args": {"should_save": True}, "attributes": {}}},
            "total_flos": 1.3e15, "train_batch_size": 8, "trial_name": None, "trial_params": None}


def test_hugging_face_trainer_state_is_read_by_epoch(tmp_path):
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps(_trainer_state(), indent=2), encoding="utf-8")
    curves = history_curves(read_log(path))
    # Evaluated once an epoch: read by Hugging Face's epochs (from 1), the last training loss
    # logged in an epoch standing for it; the summary entry and the state's fields are no points.
    assert curves["eval_loss"].epochs.tolist() == list(range(1, 13))
    assert curves["loss"].epochs.tolist() == list(range(1, 13))
    assert curves["loss"].values[0] == pytest.approx(1 / 2 + 0.05)
    assert not {"train_loss", "train_runtime", "best_metric", "global_step"} & set(curves)
    assert metric_role("eval_loss") == ("val", "loss")
    assert _pick_monitor(curves, None) == ("eval_loss", "loss")
    d = diagnose_curves(read_log(path))
    assert d.verdict == "overfitting" and d.plateau.best_epoch == 5, d.summary


def test_trainer_state_evaluated_within_epochs_keeps_its_steps(tmp_path):
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps(_trainer_state(eval_every=50)), encoding="utf-8")
    curves = history_curves(read_log(path))
    assert curves["eval_loss"].epochs.tolist() == list(range(50, 1201, 50))
    bad = tmp_path / "bad" / "trainer_state.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps({"log_history": [{"loss": 1.0, "epoch": 0.5}]}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"log_history\[0\] has no step"):
        read_log(bad)
    bad.write_text(json.dumps({"log_history": [], "global_step": 0}), encoding="utf-8")
    with pytest.raises(ValueError, match="log_history holds no metric"):
        read_log(bad)


def test_trainer_state_reads_as_the_same_run_logged_to_mlflow(client, tmp_path, capsys):
    """The real CLI: ``curves trainer_state.json`` gives the verdict ``diagnose`` gives the run
    that Hugging Face's MLflowCallback logs from the same logs (every number at the global step,
    the summary included)."""
    from mlflow_plateau.cli import main

    state = _trainer_state()
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps(state), encoding="utf-8")
    run_id = client.create_run(client.create_experiment("hf")).info.run_id
    for entry in state["log_history"]:
        for key, value in entry.items():
            if key != "step":
                client.log_metric(run_id, key, value, step=entry["step"])
    client.set_terminated(run_id)
    assert main(["diagnose", run_id, "--json", "--dry-run"]) == 0
    stored = json.loads(capsys.readouterr().out)["runs"][0]
    assert main(["curves", str(path), "--json"]) == 0
    (read,) = json.loads(capsys.readouterr().out)
    assert (read["verdict"], read["monitor"], read["plateau"]) == (
        stored["verdict"], stored["monitor"], stored["plateau"])


def _write_events(folder: Path, points: list[tuple[str, int, float, float]], *,
                  tensors: bool = False) -> Path:
    """An event file as TensorBoard writers leave it, written with tensorboard's own record
    writer (no TensorFlow): (tag, step, value, wall time) scalars, as old-style ``simple_value``
    or, with ``tensors``, as the one-value tensors of TF 2 / Keras 3."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter
    from tensorboard.util import tensor_util

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"events.out.tfevents.{len(list(folder.iterdir()))}.host.1.v2"
    scalars = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    with path.open("wb") as fh:
        writer = RecordWriter(fh)
        writer.write(event_pb2.Event(wall_time=0.0, file_version="brain.Event:2")
                     .SerializeToString())
        for tag, step, value, wall in points:
            summary_value = (summary_pb2.Summary.Value(
                tag=tag, metadata=scalars, tensor=tensor_util.make_tensor_proto(value))
                if tensors else summary_pb2.Summary.Value(tag=tag, simple_value=value))
            writer.write(event_pb2.Event(wall_time=wall, step=step, summary=summary_pb2.Summary(
                value=[summary_value])).SerializeToString())
    return path


def test_tensorboard_log_dirs_of_one_and_several_runs(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    from mlflow_plateau.logs import read_log_runs

    logs = tmp_path / "logs"
    for i, run in enumerate(("run_a", "run_b")):
        train = [("epoch_loss", e, 1 / (e + 1), 10.0 + e) for e in range(8)]
        train += [("batch_loss", s, 2.0, 10.0 + s) for s in range(20)]
        if i:  # a training resumed into the same folder logged epoch 3 again, later
            train.append(("epoch_loss", 3, 0.7, 99.0))
        _write_events(logs / "fit" / run / "train", train)
        val = [("epoch_loss", e, 1.1 / (e + 1) + i, 10.5 + e) for e in range(8)]
        val += [("evaluation_loss_vs_iterations", 5 * e, 1.0, 10.5 + e) for e in range(8)]
        _write_events(logs / "fit" / run / "validation", val, tensors=True)
    runs = dict(read_log_runs(logs))
    assert sorted(runs) == ["fit/run_a", "fit/run_b"]
    assert sorted(runs["fit/run_a"]) == ["loss", "val_loss"]  # per-batch series left out
    assert runs["fit/run_a"]["val_loss"].values == pytest.approx(1.1 / np.arange(1, 9))
    assert runs["fit/run_b"]["loss"].value_at(3) == pytest.approx(0.7)  # the newest
    with pytest.raises(ValueError, match="holds 2 runs"):
        read_log(logs)
    one = history_curves(read_log(logs / "fit" / "run_a"))
    assert _pick_monitor(one, None) == ("val_loss", "loss")
    val_file = next((logs / "fit" / "run_a" / "validation").iterdir())
    assert sorted(read_log(val_file)) == ["val_loss"]  # its folder says it is validation
    assert sorted(read_log(logs / "fit" / "run_a" / "validation")) == ["val_loss"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no TensorBoard event file"):
        read_log(tmp_path / "empty")
    monkeypatch.setitem(sys.modules, "tensorboard.backend.event_processing.event_accumulator",
                        None)
    with pytest.raises(ValueError, match="pip install tensorboard"):
        read_log(logs)


@pytest.mark.slow
def test_keras_tensorboard_logs_are_read_by_the_curves_command(tmp_path, capsys):
    """A real Keras training with the TensorBoard callback; the real CLI reads its log dir, in a
    fresh process (tensorboard's reader without TensorFlow) and in this one (TensorFlow loaded)."""
    import subprocess

    keras = pytest.importorskip("keras")
    pytest.importorskip("tensorboard")
    from sklearn.datasets import load_digits

    from mlflow_plateau.cli import main

    x, y = load_digits(return_X_y=True)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    logs = tmp_path / "logs"
    history = model.fit((x / 16).astype("float32"), y, validation_split=0.25, epochs=8,
                        batch_size=64, verbose=0,
                        callbacks=[keras.callbacks.TensorBoard(log_dir=str(logs))])
    curves = history_curves(read_log(logs))
    for name in ("loss", "val_loss", "accuracy", "val_accuracy"):
        assert curves[name].epochs.tolist() == list(range(8)), name
        assert curves[name].values == pytest.approx(history.history[name], rel=1e-6), name
    expected = diagnose_curves(history.history)
    proc = subprocess.run([sys.executable, "-m", "mlflow_plateau.cli", "curves", str(logs),
                           "--json"], capture_output=True, text=True, check=True, timeout=300)
    assert main(["curves", str(logs), "--json"]) == 0
    for out in (proc.stdout, capsys.readouterr().out):
        (read,) = json.loads(out)
        assert (read["verdict"], read["monitor"], read["train_metric"]) == (
            expected.verdict, "val_loss", "loss")
        assert read["plateau"] == expected.to_dict()["plateau"]
