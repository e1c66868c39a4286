"""The fast path for unchanged runs (tracking/unchanged.py) against a real SQLite store.

A run whose ``plateau.digest`` equals the digest of its current inputs is neither recomputed nor
written: these tests check that the skip leaves exactly the state a recomputation leaves, that the
result it returns equals the recomputed one through ``to_dict()``, and that every input the digest
covers (an option, a new metric point, the artifact level, RUNNING -> FINISHED) invalidates it.
The skip is observable without mocks: a diagnosis loaded from ``diagnosis.json`` has no arrays.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import log_curves

from mlflow_plateau.tracking import TAG_DIGEST, RunFailure, diagnose_run, diagnose_runs
from mlflow_plateau.tracking.unchanged import diagnosis_from_dict, input_digest

EPOCHS = np.arange(30)
VAL = 0.3 + (EPOCHS - 10.0) ** 2 / 200.0   # U-shaped: best at epoch 10, stop moves with patience
TRAIN = 1.0 / (1.0 + EPOCHS) + 0.05


def state(client, run_id: str) -> dict:
    """Everything of a run a diagnosis could touch: every metric point, tags, artifact bytes."""
    run = client.get_run(run_id)
    points = {key: sorted((m.step, m.timestamp, "nan" if math.isnan(m.value) else m.value)
                          for m in client.get_metric_history(run_id, key))
              for key in run.data.metrics}
    tags = {k: v for k, v in run.data.tags.items()}
    files = {}
    for info in client.list_artifacts(run_id, "plateau"):
        path = client.download_artifacts(run_id, info.path)
        files[info.path] = Path(path).read_bytes()
    return {"points": points, "tags": tags, "files": files}


def skipped(diagnosis) -> bool:
    """True for a diagnosis loaded from the run's diagnosis.json (the skip path): no arrays."""
    return diagnosis.plateau is not None and diagnosis.plateau.fitted.size == 0


@pytest.fixture
def experiment(client):
    exp = client.create_experiment("unchanged")
    ids = [log_curves(client, exp, {"loss": TRAIN + i / 100, "val_loss": VAL + i / 100})
           for i in range(3)]
    return exp, ids


def diagnose_all(uri: str, **options) -> dict:
    out = {}
    for result in diagnose_runs(experiment_name="unchanged", tracking_uri=uri, **options):
        assert not isinstance(result, RunFailure), result
        out[result.run_id] = result
    return out


@pytest.mark.parametrize("artifacts", ["json", "all"])
def test_skip_leaves_exactly_the_state_of_a_recomputation(client, tracking_uri, experiment,
                                                          artifacts):
    _, ids = experiment
    first = diagnose_all(tracking_uri, artifacts=artifacts)
    assert not any(skipped(d) for d in first.values())
    before = {rid: state(client, rid) for rid in ids}
    assert all(TAG_DIGEST in s["tags"] for s in before.values())
    time.sleep(0.01)  # a write now would carry another timestamp
    second = diagnose_all(tracking_uri, artifacts=artifacts)
    assert all(skipped(d) for d in second.values())
    assert {rid: state(client, rid) for rid in ids} == before
    # The stand-in equals a fresh computation through to_dict(), value for value.
    fresh = {d.run_id: d for d in diagnose_runs(ids, tracking_uri=tracking_uri, log=False)}
    for rid in ids:
        assert second[rid].to_dict() == fresh[rid].to_dict() == first[rid].to_dict()
        assert second[rid].plateau.best_value == fresh[rid].plateau.best_value
    # diagnose_run takes the same path.
    assert skipped(diagnose_run(ids[0], tracking_uri=tracking_uri, artifacts=artifacts))


def test_a_changed_option_invalidates_the_skip(client, tracking_uri, experiment):
    _, ids = experiment
    diagnose_all(tracking_uri, artifacts="json")
    old = client.get_run(ids[0]).data
    changed = diagnose_all(tracking_uri, artifacts="json", patience=3)
    assert not any(skipped(d) for d in changed.values())
    new = client.get_run(ids[0]).data
    assert new.tags[TAG_DIGEST] != old.tags[TAG_DIGEST]
    assert new.metrics["plateau/stop_epoch"] == changed[ids[0]].plateau.stop_epoch
    assert new.metrics["plateau/stop_epoch"] != old.metrics["plateau/stop_epoch"]
    stored = json.loads(Path(client.download_artifacts(ids[0], "plateau/diagnosis.json")).read_text())
    assert stored["config"]["patience"] == 3
    # ... and the new state is skipped in turn, with one history point per distinct value.
    assert all(skipped(d) for d in diagnose_all(tracking_uri, artifacts="json",
                                                patience=3).values())
    history = client.get_metric_history(ids[0], "plateau/stop_epoch")
    assert len(history) == 2 and history[0].value != history[1].value
    assert history[1].timestamp > history[0].timestamp  # the newer value is the latest


def test_other_code_invalidates_the_skip(client, tracking_uri, experiment, monkeypatch):
    """A run diagnosed by other code (an upgrade, or a checkout changed without a version bump)
    is diagnosed again: the package's source is an input of the digest, beside its version."""
    from mlflow_plateau.tracking import unchanged

    _, ids = experiment
    diagnose_all(tracking_uri, artifacts="json")
    assert all(skipped(d) for d in diagnose_all(tracking_uri, artifacts="json").values())
    old = client.get_run(ids[0]).data.tags[TAG_DIGEST]
    assert len(unchanged.code_digest()) == 64
    monkeypatch.setattr(unchanged, "code_digest", lambda: "0" * 64)
    again = diagnose_all(tracking_uri, artifacts="json")
    assert not any(skipped(d) for d in again.values())
    assert client.get_run(ids[0]).data.tags[TAG_DIGEST] != old
    assert all(skipped(d) for d in diagnose_all(tracking_uri, artifacts="json").values())


def test_a_new_metric_point_invalidates_the_skip(client, tracking_uri, experiment):
    from mlflow.entities import Metric

    _, ids = experiment
    diagnose_all(tracking_uri, artifacts="json")
    digest = client.get_run(ids[1]).data.tags[TAG_DIGEST]
    client.log_batch(ids[1], metrics=[Metric("val_loss", 0.01, int(time.time() * 1000), 30)])
    again = diagnose_all(tracking_uri, artifacts="json")
    assert not skipped(again[ids[1]]) and skipped(again[ids[0]]) and skipped(again[ids[2]])
    run = client.get_run(ids[1])
    assert run.data.tags[TAG_DIGEST] != digest
    assert run.data.metrics["plateau/best_epoch"] == again[ids[1]].plateau.best_epoch == 30


def test_artifact_level_and_running_state_are_inputs(client, tracking_uri, experiment):
    exp, ids = experiment
    diagnose_all(tracking_uri, artifacts="json")
    assert not any(skipped(d) for d in diagnose_all(tracking_uri, artifacts="all").values())
    assert {a.path for a in client.list_artifacts(ids[0], "plateau")} == {
        "plateau/diagnosis.json", "plateau/curves.png", "plateau/report.html"}
    # With artifacts="none" nothing is written on a re-run, but there is no JSON to stand in.
    diagnose_all(tracking_uri, artifacts="none")
    before = state(client, ids[0])
    again = diagnose_all(tracking_uri, artifacts="none")
    assert not skipped(again[ids[0]]) and state(client, ids[0]) == before

    running = log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL}, terminate=False)
    (partial,) = diagnose_runs([running], tracking_uri=tracking_uri, artifacts="json")
    assert client.get_run(running).data.tags["plateau.partial"] == "true"
    assert partial.evidence["partial"] is True
    client.set_terminated(running)
    (done,) = diagnose_runs([running], tracking_uri=tracking_uri, artifacts="json")
    assert not skipped(done) and "partial" not in done.evidence
    assert client.get_run(running).data.tags["plateau.partial"] == "false"


def test_digest_covers_curves_bit_for_bit_and_the_report_inputs(client, tracking_uri, experiment):
    from mlflow_plateau.curves import Curve

    _, ids = experiment
    run = client.get_run(ids[0])
    options = {"patience": 10}
    curves = {"val_loss": Curve("val_loss", EPOCHS, VAL)}
    base = input_digest(curves, options, "all", False, run)
    nudged = {"val_loss": Curve("val_loss", EPOCHS, np.nextafter(VAL, 1.0))}
    assert input_digest(nudged, options, "all", False, run) != base
    assert input_digest(curves, options, "all", True, run) != base
    assert input_digest(curves, options, "json", False, run) != base
    client.set_tag(ids[0], "team", "vision")  # shown in report.html: "all" must re-render
    tagged = client.get_run(ids[0])
    assert input_digest(curves, options, "all", False, tagged) != base
    assert input_digest(curves, options, "json", False, tagged) == input_digest(
        curves, options, "json", False, run)


def test_a_stored_diagnosis_that_does_not_round_trip_is_recomputed(client, tracking_uri,
                                                                   experiment):
    _, ids = experiment
    diagnose_all(tracking_uri, artifacts="json")
    from mlflow.utils.file_utils import local_file_uri_to_path

    # The stored file itself (download_artifacts would hand back a copy).
    path = Path(local_file_uri_to_path(client.get_run(ids[2]).info.artifact_uri),
                "plateau", "diagnosis.json")
    data = json.loads(Path(path).read_text())
    assert diagnosis_from_dict(data).to_dict() == data
    data["verdict"] = "tampered"
    data["surprise"] = 1  # not a field of Diagnosis: to_dict() cannot reproduce it
    Path(path).write_text(json.dumps(data))
    again = diagnose_all(tracking_uri, artifacts="json")
    assert not skipped(again[ids[2]]) and again[ids[2]].verdict != "tampered"
    assert skipped(again[ids[0]])


def test_a_close_call_is_skipped_too(client, tracking_uri):
    """A diagnosis with close alternatives round-trips through diagnosis.json, so re-diagnosing
    it is the skip, not a recomputation (a field missing from ``diagnosis_from_dict`` once made
    every such run recompute)."""
    rng = np.random.default_rng(0)
    a, b, c = rng.uniform(0.1, 0.5), rng.uniform(2, 15), rng.uniform(-0.004, 0.004)
    val = 0.3 + a * np.exp(-EPOCHS / b) + c * EPOCHS + rng.normal(0, 0.01, EPOCHS.size)
    train = 0.25 + a * np.exp(-EPOCHS / b) - 0.002 * EPOCHS
    exp = client.create_experiment("close-call")
    run_id = log_curves(client, exp, {"loss": train, "val_loss": val})
    first = diagnose_run(run_id, tracking_uri=tracking_uri, artifacts="json")
    assert first.alternatives and not skipped(first)
    again = diagnose_run(run_id, tracking_uri=tracking_uri, artifacts="json")
    assert skipped(again) and again.to_dict() == first.to_dict()


def test_an_unchanged_history_is_recognized_without_reading_it(client, tracking_uri, experiment,
                                                               monkeypatch):
    """On a SQL store a run whose ``plateau.history`` (rows, first and last step per key) is
    unchanged is skipped without its points being read; a history summarized
    differently but with the same curves is read, skipped by its digest, and tagged anew."""
    from mlflow.entities import Metric

    from mlflow_plateau.tracking import runs as runs_module
    from mlflow_plateau.tracking.store import TAG_HISTORY

    _, ids = experiment
    read: list[str] = []
    real_read = runs_module.read_curves

    def recording_read(client_, uri, runs, database=None):
        read.extend(r.info.run_id for r in runs)
        return real_read(client_, uri, runs, database)

    monkeypatch.setattr(runs_module, "read_curves", recording_read)
    diagnose_all(tracking_uri, artifacts="json")
    assert sorted(read) == sorted(ids)
    tagged = {rid: client.get_run(rid).data.tags[TAG_HISTORY] for rid in ids}

    read.clear()
    again = diagnose_all(tracking_uri, artifacts="json")
    assert read == [] and all(skipped(d) for d in again.values())

    # Step 5 logged again with an older timestamp: the curve keeps its newer point, the summary
    # of the rows changes. Another run lost its tag (diagnosed by an earlier version).
    old = client.get_metric_history(ids[0], "val_loss")[5].timestamp - 1
    client.log_batch(ids[0], metrics=[Metric("val_loss", 123.0, old, 5)])
    client.delete_tag(ids[1], TAG_HISTORY)
    read.clear()
    again = diagnose_all(tracking_uri, artifacts="json")
    assert sorted(read) == sorted(ids[:2]) and all(skipped(d) for d in again.values())
    assert client.get_run(ids[0]).data.tags[TAG_HISTORY] != tagged[ids[0]]
    assert client.get_run(ids[1]).data.tags[TAG_HISTORY] == tagged[ids[1]]
    read.clear()
    diagnose_all(tracking_uri, artifacts="json")
    assert read == []

    # A new point is read and recomputed; an option changed is too.
    client.log_batch(ids[2], metrics=[Metric("val_loss", 0.01, int(time.time() * 1000), 30)])
    read.clear()
    again = diagnose_all(tracking_uri, artifacts="json")
    assert read == [ids[2]] and not skipped(again[ids[2]])
    read.clear()
    again = diagnose_all(tracking_uri, artifacts="json", patience=3)
    assert sorted(read) == sorted(ids) and not any(skipped(d) for d in again.values())
