"""Evidence as epoch ranges (issue 25): where each verdict shows, from the diagnosis alone."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mlflow_plateau import diagnose_curves
from mlflow_plateau.epoch_ranges import EpochRange, epoch_ranges

E = np.arange(40, dtype=float)


def _ranges(history, **options):
    d = diagnose_curves(history, **options)
    return d, epoch_ranges(d)


def test_overfitting_points_from_the_best_epoch_to_the_last():
    d, ranges = _ranges({"loss": np.exp(-E / 8) + 0.05,
                         "val_loss": 0.6 * np.exp(-E / 6) + 0.3
                         + 0.004 * np.maximum(E - 12, 0) ** 1.3})
    assert d.verdict == "overfitting"
    first = ranges[0]
    assert (first.metric, first.first, first.last, first.kind) == \
        ("val_loss", d.plateau.best_epoch, 39, "verdict")
    assert "worse than its best" in first.text() and f"epochs {d.plateau.best_epoch} to 39" in \
        first.text()
    wasted = [r for r in ranges if r.kind == "wasted"]
    assert wasted and wasted[0].first == d.plateau.stop_epoch + 1 and "patience=10" in wasted[0].what


def test_not_converged_points_at_the_last_window():
    d, ranges = _ranges({"loss": 1 - 0.02 * E, "val_loss": 1.05 - 0.02 * E})
    assert d.verdict == "not_converged"
    assert (ranges[0].first, ranges[0].last) == (30, 39) and "new bests" in ranges[0].what


def test_a_nan_loss_points_at_the_epoch_it_diverged():
    nan = np.full(20, np.nan)
    d, ranges = _ranges({"loss": np.r_[np.exp(-E[:20] / 4), nan],
                         "val_loss": np.r_[np.exp(-E[:20] / 4) + 0.1, nan]})
    assert d.verdict == "diverged"
    assert ranges == (EpochRange("val_loss", 20, 20, "the values became NaN/inf", "verdict"),)
    assert ranges[0].text() == "val_loss: the values became NaN/inf, epoch 20"


def test_at_chance_covers_the_whole_run():
    rng = np.random.default_rng(0)
    d, ranges = _ranges({"loss": 2.30 + 0.01 * rng.standard_normal(40),
                         "val_loss": 2.31 + 0.01 * rng.standard_normal(40),
                         "val_accuracy": np.full(40, 0.1)})
    assert d.verdict == "at_chance"
    assert (ranges[0].first, ranges[0].last) == (0, 39)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.01, 10.0), min_size=1, max_size=60),
       st.lists(st.floats(0.01, 10.0), min_size=1, max_size=60))
def test_every_range_lies_within_the_run_and_is_ordered(val, train):
    n = min(len(val), len(train))
    d = diagnose_curves({"val_loss": np.asarray(val[:n]), "loss": np.asarray(train[:n])})
    for r in epoch_ranges(d):
        assert r.first <= r.last
        if d.plateau is not None:
            assert r.first >= 0 and r.last <= d.plateau.last_epoch
        assert r.kind in ("verdict", "wasted") and r.what


def test_a_healthy_run_points_at_its_flat_tail():
    d, ranges = _ranges({"loss": np.exp(-E / 4) + 0.1, "val_loss": np.exp(-E / 4) + 0.15})
    assert d.verdict == "healthy"
    assert ranges[0].first == d.plateau.epoch and ranges[0].last == 39


def test_to_dict_carries_the_ranges_and_the_curves_command_prints_them(tmp_path, capsys):
    import json

    from mlflow_plateau.cli import main

    history = {"loss": list(np.exp(-E / 8) + 0.05),
               "val_loss": list(0.6 * np.exp(-E / 6) + 0.3 + 0.004 * np.maximum(E - 12, 0) ** 1.3)}
    d = diagnose_curves(history)
    assert d.to_dict()["epoch_ranges"] == [r.to_dict() for r in epoch_ranges(d)]
    path = tmp_path / "history.json"
    path.write_text(json.dumps(history))
    assert main(["curves", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"  where: {epoch_ranges(d)[0].text()}" in out
    assert main(["curves", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["epoch_ranges"][0]["first"] == d.plateau.best_epoch
