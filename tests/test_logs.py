"""Training-log files in every shape users write them, read into the right curves.

Each shape is a small file written here, as the tool meets it in the wild; the last tests read
the labelled real logs of ``benchmarks/data/real_logs`` (in the repository) and check the epoch
counts recorded in its ``SOURCES.tsv`` and the verdict agreement.
"""

from __future__ import annotations

import csv
import json
import math
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
