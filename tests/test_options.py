"""``DiagnosisOptions``: one checked value every face takes (issue 24).

The check, the merge with the options kept with a run, the digest values, and that each face
given a ``DiagnosisOptions`` diagnoses exactly as when given the same keyword arguments (the
curves and a real SQLite store; the callback, the evaluator and Spark have their own files).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import log_curves
from hypothesis import given
from hypothesis import strategies as st

from mlflow_plateau import DiagnosisOptions, Thresholds, diagnose_curves
from mlflow_plateau.options import KEPT, kept_from_tag
from mlflow_plateau.verdict import check_options


def _overfitting_history(n: int = 40) -> dict:
    e = np.arange(n, dtype=float)
    return {"loss": 1.0 * np.exp(-e / 8) + 0.05,
            "val_loss": 0.6 * np.exp(-e / 6) + 0.3 + 0.004 * np.maximum(e - 12, 0) ** 1.3}


@pytest.mark.parametrize("name, value", [
    ("mode", "up"), ("patience", -1), ("patience", 2.5), ("patience", True), ("min_delta", -0.1),
    ("min_delta", math.nan), ("relative_delta", 1.0), ("chance", math.inf), ("num_classes", 1),
    ("num_classes", 2.5), ("monitor", 3), ("thresholds", {"overfit_rise": 0.1}),
])
def test_a_bad_value_is_a_value_error_naming_the_option(name, value):
    with pytest.raises(ValueError, match=name):
        DiagnosisOptions(**{name: value})
    if name != "thresholds":  # the function earlier versions offered does the same check
        with pytest.raises(ValueError, match=name):
            check_options(**{name: value})


def test_an_unknown_name_is_a_type_error_listing_the_known_ones():
    with pytest.raises(TypeError, match=r"'patiance'.*known: monitor, train_metric"):
        DiagnosisOptions.of(patiance=5)
    with pytest.raises(TypeError, match="unknown diagnosis option"):
        diagnose_curves(_overfitting_history(), patiance=5)


@given(st.integers(2, 10_000))
def test_num_classes_is_kept_as_an_int_whatever_number_type_gave_it(k):
    for given_as in (k, float(k), np.int64(k)):
        options = DiagnosisOptions(num_classes=given_as)
        assert options.num_classes == k and type(options.num_classes) is int


def test_keyword_arguments_override_the_fields_of_options():
    base = DiagnosisOptions(monitor="val_loss", patience=3)
    changed = DiagnosisOptions.of(base, patience=7)
    assert (changed.monitor, changed.patience) == ("val_loss", 7)
    assert DiagnosisOptions.of(base) is base
    assert DiagnosisOptions.of(thresholds=None) == DiagnosisOptions()  # None: the defaults
    with pytest.raises(TypeError, match="DiagnosisOptions"):
        DiagnosisOptions.of({"patience": 3})


def test_the_kept_options_round_trip_through_their_tag_and_fill_only_what_is_unset():
    options = DiagnosisOptions(num_classes=10, mode="min", patience=4)
    assert options.given() == {"mode": "min", "num_classes": 10}
    assert DiagnosisOptions().kept_tag() is None
    kept = kept_from_tag(options.kept_tag())
    assert kept == {"mode": "min", "num_classes": 10}
    merged = DiagnosisOptions(monitor="val_acc", mode="max").with_kept(kept)
    assert (merged.monitor, merged.mode, merged.num_classes) == ("val_acc", "max", 10)
    assert merged.patience == 10  # not a kept option: never taken from a run


@pytest.mark.parametrize("text", [None, "", "not json", "[1, 2]", json.dumps({"chance": "nan"}),
                                  json.dumps({"num_classes": 1, "monitor": ""}),
                                  json.dumps({"patience": 3})])
def test_a_garbled_or_refused_kept_value_is_dropped_not_failed_on(text):
    assert kept_from_tag(text) == {}


def test_as_dict_covers_the_thresholds_only_when_they_are_not_the_defaults():
    plain = DiagnosisOptions().as_dict()
    assert set(plain) == {"monitor", "train_metric", "mode", "patience", "min_delta",
                          "relative_delta", "num_classes", "chance"}
    strict = DiagnosisOptions(thresholds=Thresholds(overfit_rise=0.2)).as_dict()
    assert strict["thresholds"]["overfit_rise"] == 0.2
    assert set(KEPT) <= set(plain)


def test_diagnose_curves_with_options_equals_with_keyword_arguments():
    history = _overfitting_history()
    by_value = diagnose_curves(history, DiagnosisOptions(patience=5, num_classes=None))
    by_keywords = diagnose_curves(history, patience=5)
    assert by_value.to_dict() == by_keywords.to_dict()
    assert by_value.verdict == "overfitting"


def test_custom_thresholds_travel_in_the_options_and_change_the_verdict():
    history = _overfitting_history()
    # A rise in validation loss must be 100x its path to count: no longer overfitting.
    lenient = DiagnosisOptions(thresholds=Thresholds(overfit_rise=100.0, gap_growth_came=100.0,
                                                     gap_growth_came_long=100.0))
    assert diagnose_curves(history, lenient).verdict != "overfitting"
    assert diagnose_curves(history, lenient).config["overfit_rise"] == 100.0


def test_tracked_runs_take_options_and_keywords_alike(tracking_uri, client):
    from mlflow_plateau.tracking import diagnose_run, diagnose_runs

    exp = client.create_experiment("options-value")
    run_id = log_curves(client, exp, _overfitting_history())
    options = DiagnosisOptions(patience=5)
    one = diagnose_run(run_id, options, log=False)
    batch = list(diagnose_runs([run_id], options, log=False))
    keywords = diagnose_run(run_id, log=False, patience=5)
    assert one.to_dict() == batch[0].to_dict() == keywords.to_dict()
    with pytest.raises(ValueError, match="patience"):
        diagnose_runs([run_id], patience=-1)
