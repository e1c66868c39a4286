"""The tracking package against real MLflow stores: reads equal get_metric_history, writes are idempotent."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import log_curves, unique_name

from mlflow_plateau.curves import Curve, drop_restored_epoch
from mlflow_plateau.tracking import (
    RunFailure,
    diagnose_run,
    diagnose_runs,
    diagnose_scaling,
    history,
    log_diagnosis,
    read_run_curves,
    redact,
)
from mlflow_plateau.verdict import diagnose_curves

EPOCHS = np.arange(30)
# A U-shaped validation loss (best at epoch 10) under a steadily falling training loss: the
# EarlyStopping stop epoch moves with the patience, so a changed configuration changes values.
VAL = 0.3 + (EPOCHS - 10.0) ** 2 / 200.0
TRAIN = 1.0 / (1.0 + EPOCHS) + 0.05


def histories(client, run_id: str) -> dict[str, list[tuple]]:
    """Every metric point of a run, NaN made comparable."""
    run = client.get_run(run_id)
    out = {}
    for key in sorted(run.data.metrics):
        out[key] = [(m.step, m.timestamp, "nan" if math.isnan(m.value) else m.value)
                    for m in client.get_metric_history(run_id, key)]
    return out


def read_json(client, run_id: str, path: str):
    return json.loads(Path(client.download_artifacts(run_id, path)).read_text(encoding="utf-8"))


def client_curves(client, run_id: str) -> dict[str, Curve]:
    """What the slow path gives: Curve.from_points over get_metric_history, key by key, with the
    +/-inf that MLflow's SQL store keeps as +/-1.7976931348623157e308 given back."""
    out = {}
    top = np.finfo(np.float64).max
    for key in client.get_run(run_id).data.metrics:
        points = client.get_metric_history(run_id, key)
        values = [math.copysign(math.inf, p.value) if abs(p.value) == top else p.value
                  for p in points]
        out[key] = Curve.from_points(key, [p.step for p in points], values,
                                     order=[p.timestamp for p in points])
    return out


def assert_same_curves(a: dict[str, Curve], b: dict[str, Curve]) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name].epochs, b[name].epochs, err_msg=name)
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)  # NaN == NaN


def log_tricky_run(client, experiment_id: str) -> str:
    """A run with NaN, +/-inf, duplicated steps (newer and same-timestamp), negative steps."""
    from mlflow.entities import Metric

    run_id = log_curves(client, experiment_id, {"loss": TRAIN, "val_loss": VAL},
                        params={"lr": "0.01"}, tags={"team": "a"})
    t = int(time.time() * 1000) + 10_000
    client.log_batch(run_id, metrics=[
        Metric("val_loss", 9.0, t, 3),          # step 3 logged again, later: this one wins
        Metric("val_loss", 7.0, t - 20_000, 4),  # step 4 logged again, earlier: the old one stays
        Metric("odd", float("nan"), t, 0),
        Metric("odd", 2.0, t, -1), Metric("odd", 1.0, t, -1),  # same step and timestamp
        Metric("odd", float("inf"), t, 5), Metric("odd", float("-inf"), t + 1, 6),
        Metric("odd", 3.0, t + 2, -7),
        # Logged without step= (all at step 0): a curve in timestamp order, ties by value.
        Metric("odd_unstepped", 0.5, t + 3, 0), Metric("odd_unstepped", 0.4, t + 3, 0),
        Metric("odd_unstepped", float("nan"), t + 4, 0), Metric("odd_unstepped", 0.3, t - 5, 0),
    ])
    return run_id


def test_sql_read_equals_client_history(client):
    exp = client.create_experiment("read")
    runs = [log_tricky_run(client, exp) for _ in range(2)]
    runs.append(log_curves(client, exp, {"Train Loss": [3, 2, 1], "Val Loss": [4, 3, 3.5]}))
    empty = log_curves(client, exp, {})
    hostile = "x' OR '1'='1"  # not a run id: reads nothing, whatever the database's quoting
    read = read_run_curves([*runs, empty, "0" * 32, hostile], tracking_uri=client.tracking_uri)
    assert read[hostile] == {}
    for run_id in runs:
        assert_same_curves(read[run_id], client_curves(client, run_id))
    assert read[runs[0]]["val_loss"].value_at(3) == 9.0
    assert read[runs[0]]["val_loss"].value_at(4) == VAL[4]
    unstepped = read[runs[0]]["odd_unstepped"]
    assert unstepped.unstepped and unstepped.epochs.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(unstepped.values, [0.3, 0.4, 0.5, np.nan])
    assert read[empty] == {} and read["0" * 32] == {}
    # The same rows through the general (client) path.
    keys = {r: list(client.get_run(r).data.metrics) for r in runs}
    slow = history._read_client(client, keys)
    for run_id in runs:
        assert_same_curves(read[run_id], slow[run_id])


def test_sql_read_chunks_run_ids(client, monkeypatch):
    exp = client.create_experiment("chunks")
    runs = [log_curves(client, exp, {"val_loss": [i, i + 1.0, i + 2.0]}) for i in range(5)]
    monkeypatch.setattr(history, "SQL_CHUNK", 2)
    read = read_run_curves(runs, tracking_uri=client.tracking_uri)
    assert [read[r]["val_loss"].values[0] for r in runs] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_rediagnosis_is_idempotent_and_leaves_user_data_alone(client):
    exp = client.create_experiment("idem")
    run_id = log_tricky_run(client, exp)
    before = client.get_run(run_id)
    user_history = histories(client, run_id)

    first = diagnose_run(run_id, tracking_uri=client.tracking_uri, patience=3)
    after_first = histories(client, run_id)
    run = client.get_run(run_id)
    assert first.run_id == run_id
    assert run.data.tags["plateau.verdict"] == first.verdict
    assert run.data.tags["plateau.summary"] == first.summary
    assert run.data.tags["plateau.monitor"] == "val_loss"
    assert run.data.metrics["plateau/best_epoch"] == first.plateau.best_epoch
    assert run.data.metrics["plateau/stop_epoch"] == first.plateau.stop_epoch
    assert run.data.metrics["gap/final"] == pytest.approx(first.gap.final)
    arts = {a.path for a in client.list_artifacts(run_id, "plateau")}
    assert arts == {"plateau/diagnosis.json", "plateau/curves.png", "plateau/report.html"}
    doc = read_json(client, run_id, "plateau/diagnosis.json")
    assert doc["run_id"] == run_id and doc["verdict"] == first.verdict and doc["schema_version"]

    from mlflow.utils.file_utils import local_file_uri_to_path

    stored = Path(local_file_uri_to_path(run.info.artifact_uri)) / "plateau"
    stamps = {p.name: p.stat().st_mtime_ns for p in stored.iterdir()}
    time.sleep(0.05)
    second = diagnose_run(run_id, tracking_uri=client.tracking_uri, patience=3)
    assert {p.name: p.stat().st_mtime_ns for p in stored.iterdir()} == stamps  # not re-uploaded
    assert second.to_dict() == first.to_dict()
    assert histories(client, run_id) == after_first  # no new point under any key
    assert client.get_run(run_id).data.tags == run.data.tags

    # The run's own metrics, params and tags are exactly as they were.
    for key, points in user_history.items():
        assert after_first[key] == points
    run = client.get_run(run_id)
    assert run.data.params == before.data.params
    assert {k: v for k, v in run.data.tags.items() if not k.startswith("plateau.")} == \
        before.data.tags

    # A changed configuration updates only the values that change.
    third = diagnose_run(run_id, tracking_uri=client.tracking_uri, patience=8)
    assert third.plateau.stop_epoch != first.plateau.stop_epoch
    after_third = histories(client, run_id)
    changed = {k for k in after_third if after_third[k] != after_first.get(k)}
    assert changed == {"plateau/stop_epoch", "plateau/wasted_epochs"}
    run = client.get_run(run_id)
    assert run.data.metrics["plateau/stop_epoch"] == third.plateau.stop_epoch
    assert run.data.metrics["plateau/wasted_epochs"] == third.plateau.wasted_epochs


def test_log_diagnosis_json_only_and_no_artifacts(client):
    exp = client.create_experiment("logd")
    run_id = log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL})
    d = diagnose_curves({"loss": TRAIN, "val_loss": VAL})
    curves = read_run_curves([run_id], tracking_uri=client.tracking_uri)[run_id]
    log_diagnosis(run_id, d, curves, tracking_uri=client.tracking_uri, artifacts="none")
    assert client.list_artifacts(run_id) == []
    assert client.get_run(run_id).data.tags["plateau.verdict"] == d.verdict
    log_diagnosis(run_id, d, curves, tracking_uri=client.tracking_uri, artifacts="json")
    assert [a.path for a in client.list_artifacts(run_id, "plateau")] == ["plateau/diagnosis.json"]
    doc = read_json(client, run_id, "plateau/diagnosis.json")
    assert doc["run_id"] == run_id  # run_id filled in although the diagnosis had none
    with pytest.raises(ValueError, match="artifacts"):
        log_diagnosis(run_id, d, curves, tracking_uri=client.tracking_uri, artifacts="png")


def test_not_applicable_value_retires_stale_metric(client):
    exp = client.create_experiment("stale")
    run_id = log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL})
    uri = client.tracking_uri
    d = diagnose_run(run_id, tracking_uri=uri, patience=3, artifacts="none")
    assert d.plateau.stop_epoch is not None
    d = diagnose_run(run_id, tracking_uri=uri, patience=100, artifacts="none")
    assert d.plateau.stop_epoch is None
    assert math.isnan(client.get_run(run_id).data.metrics["plateau/stop_epoch"])
    n = len(client.get_metric_history(run_id, "plateau/stop_epoch"))
    diagnose_run(run_id, tracking_uri=uri, patience=100, artifacts="none")
    assert len(client.get_metric_history(run_id, "plateau/stop_epoch")) == n


def test_failures_are_named_and_the_batch_completes(client):
    exp = client.create_experiment("fail")
    good = log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL})
    train_only = log_curves(client, exp, {"loss": TRAIN, "accuracy": np.linspace(0.5, 0.9, 30)})
    no_metrics = log_curves(client, exp, {}, params={"lr": "1"})
    deleted = log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL})
    client.delete_run(deleted)
    unknown = "f" * 32
    uri = client.tracking_uri
    results = list(diagnose_runs([unknown, train_only, good, no_metrics, deleted],
                                 tracking_uri=uri, artifacts="none"))
    assert [r.run_id for r in results] == [unknown, train_only, good, no_metrics, deleted]
    reasons = {r.run_id: r.reason for r in results if isinstance(r, RunFailure)}
    assert reasons[unknown] == "run not found"
    assert reasons[train_only].startswith("no validation metric (metrics: accuracy, loss)")
    assert reasons[no_metrics] == "no metric history"
    assert reasons[deleted] == "run is deleted"
    assert not isinstance(results[2], RunFailure) and results[2].verdict
    assert all("\n" not in reason for reason in reasons.values())
    # Single runs: ValueError naming the run and the reason; an explicit monitor works.
    with pytest.raises(ValueError, match=f"run {unknown}: run not found"):
        diagnose_run(unknown, tracking_uri=uri)
    with pytest.raises(ValueError, match=f"run {train_only}: no validation metric"):
        diagnose_run(train_only, tracking_uri=uri)
    assert diagnose_run(train_only, tracking_uri=uri, monitor="loss", log=False).monitor == "loss"
    with pytest.raises(ValueError, match="not in the history"):
        diagnose_run(good, tracking_uri=uri, monitor="val_nope")


def test_running_run_is_diagnosed_as_partial(client):
    exp = client.create_experiment("running")
    run_id = log_curves(client, exp, {"loss": TRAIN[:12], "val_loss": VAL[:12]}, terminate=False)
    d = diagnose_run(run_id, tracking_uri=client.tracking_uri, artifacts="none")
    assert d.evidence["partial"] is True
    assert client.get_run(run_id).data.tags["plateau.partial"] == "true"
    assert client.get_run(run_id).info.status == "RUNNING"  # status left to the trainer
    client.set_terminated(run_id)
    d = diagnose_run(run_id, tracking_uri=client.tracking_uri, artifacts="none")
    assert "partial" not in d.evidence
    assert client.get_run(run_id).data.tags["plateau.partial"] == "false"


def test_experiment_selection_pages_and_filters(client):
    exp_name = "paged"
    exp = client.create_experiment(exp_name)
    ids = [log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL + i / 100},
                      params={"opt": "adam" if i % 2 else "sgd"}) for i in range(7)]
    uri = client.tracking_uri
    results = list(diagnose_runs(experiment_name=exp_name, tracking_uri=uri, batch_size=3,
                                 log=False))
    assert sorted(r.run_id for r in results) == sorted(ids)
    adam = list(diagnose_runs(experiment_id=exp, filter_string="params.opt = 'adam'",
                              tracking_uri=uri, log=False))
    assert sorted(r.run_id for r in adam) == sorted(ids[1::2])
    written = [k for r in ids for k in client.get_run(r).data.metrics if "/" in k]
    assert written == [] and "plateau.verdict" not in client.get_run(ids[0]).data.tags  # log=False
    # A filter on what diagnosing writes: every matching run is diagnosed although each write
    # takes it out of the filter while the pages are read.
    list(diagnose_runs(experiment_name=exp_name, tracking_uri=uri, patience=3, artifacts="none"))
    assert {client.get_run(r).data.metrics["plateau/stop_epoch"] for r in ids} == {13.0}
    moved = list(diagnose_runs(experiment_name=exp_name, tracking_uri=uri, batch_size=2,
                               filter_string="metrics.`plateau/stop_epoch` = 13", patience=8,
                               artifacts="none"))
    assert sorted(r.run_id for r in moved) == sorted(ids)
    assert {client.get_run(r).data.metrics["plateau/stop_epoch"] for r in ids} == {18.0}
    with pytest.raises(Exception, match="quoted string"):
        diagnose_runs(experiment_name=exp_name, tracking_uri=uri, filter_string="params.x ~ 1")
    for bad in ({}, {"experiment_name": "x", "experiment_id": "1"},
                {"run_ids": ids[:1], "experiment_name": exp_name},
                {"run_ids": ids[:1], "filter_string": "params.opt = 'x'"}):
        with pytest.raises(ValueError):
            diagnose_runs(tracking_uri=uri, **bad)
    with pytest.raises(ValueError, match="experiment 'nope' not found"):
        diagnose_runs(experiment_name="nope", tracking_uri=uri)


def test_unreachable_server_fails_fast_without_credentials(tracking_uri):
    from conftest import free_port

    uri = f"http://alice:s3cret@127.0.0.1:{free_port()}"
    with pytest.raises(ValueError) as info:
        diagnose_run("a" * 32, tracking_uri=uri)
    message = str(info.value)
    assert message.startswith(f"run {'a' * 32}: tracking server http://***@127.0.0.1")
    assert "not reachable" in message and "s3cret" not in message and "alice" not in message
    (failure,) = diagnose_runs(["b" * 32], tracking_uri=uri)
    assert isinstance(failure, RunFailure) and "s3cret" not in failure.reason
    with pytest.raises(ConnectionError, match="not reachable"):
        diagnose_runs(experiment_name="x", tracking_uri=uri)


def test_redact():
    assert redact("see https://u:p@host:5000/x and mysql+pymysql://root:pw@db/mlflow") == \
        "see https://***@host:5000/x and mysql+pymysql://***@db/mlflow"
    assert redact("http://host:5000") == "http://host:5000"


def test_scaling_groups_log_a_summary_run_and_tag_members(client, tmp_path):
    exp_name = "scaling"
    exp = client.create_experiment(exp_name)
    members = {}
    for model, (a, floor) in {"small": (2.0, 0.3), "big": (3.0, 0.0)}.items():
        for n in (100, 200, 400, 800, 1600):
            best = a * n ** -0.5 + floor
            curve = best + (EPOCHS - 12.0) ** 2 / 400.0
            members[(model, n)] = log_curves(client, exp, {"loss": curve - 0.1, "val_loss": curve},
                                             params={"train_size": n, "model": model})
    unrelated = log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL}, params={"model": "x"})
    no_metric = log_curves(client, exp, {"loss": TRAIN}, params={"train_size": 50, "model": "big"})
    uri = client.tracking_uri

    groups, failures = diagnose_scaling(experiment_name=exp_name, size_param="train_size",
                                        tracking_uri=uri)
    assert [g.label for g in groups] == ["model=big", "model=small"]
    assert [f.run_id for f in failures] == [no_metric]
    big = groups[0]
    assert big.sizes == [100, 200, 400, 800, 1600]
    assert big.errors[0] == pytest.approx(3.0 * 100 ** -0.5)
    assert big.verdict.verdict == "data_limited"
    assert big.verdict.fit.exponent == pytest.approx(0.5, abs=0.05)
    summary = client.get_run(big.summary_run_id)
    assert summary.data.tags["plateau.kind"] == "scaling"
    assert summary.data.tags["scaling.group"] == "model=big"
    assert {a.path for a in client.list_artifacts(big.summary_run_id, "scaling")} == \
        {"scaling/fit.json", "scaling/learning_curve.png"}
    fit = read_json(client, big.summary_run_id, "scaling/fit.json")
    assert fit["verdict"] == "data_limited" and fit["run_ids"] == big.run_ids
    # The picture's y axis names the metric the errors were read from (issue 25).
    from mlflow_plateau.report import scaling_png

    png = Path(client.download_artifacts(big.summary_run_id, "scaling/learning_curve.png",
                                         str(tmp_path))).read_bytes()
    assert png == scaling_png(big.verdict, size_param="train_size", title="model=big",
                              metric="val_loss", mode="min")
    assert png != scaling_png(big.verdict, size_param="train_size", title="model=big")
    member = client.get_run(members[("big", 400)])
    assert member.data.tags["scaling.verdict"] == "data_limited"
    assert member.data.tags["scaling.group"] == "model=big"
    assert member.data.metrics["scaling/exponent"] == pytest.approx(big.verdict.fit.exponent)
    assert "scaling.group" not in client.get_run(unrelated).data.tags

    before = {rid: histories(client, rid) for rid in [*members.values(), big.summary_run_id]}
    again, _ = diagnose_scaling(experiment_name=exp_name, size_param="train_size",
                                tracking_uri=uri)
    assert [g.summary_run_id for g in again] == [g.summary_run_id for g in groups]  # updated
    assert {rid: histories(client, rid) for rid in before} == before  # nothing re-logged
    kinds = client.search_runs([exp], "tags.`plateau.kind` = 'scaling'")
    assert len(kinds) == 2
    # Diagnosing the experiment leaves the summary runs out; named, one is refused.
    diagnosed = list(diagnose_runs(experiment_id=exp, tracking_uri=uri, log=False))
    assert {r.run_id for r in diagnosed} == {*members.values(), unrelated, no_metric}
    with pytest.raises(ValueError, match="scaling summary run"):
        diagnose_run(big.summary_run_id, tracking_uri=uri)

    # With a filter, the summary run (which has no params) is still found: no second one.
    for _ in range(2):
        diagnose_scaling(experiment_id=exp, size_param="train_size",
                         filter_string="params.model = 'small'", tracking_uri=uri)
    kinds = client.search_runs([exp], "tags.`plateau.kind` = 'scaling'")
    assert len(kinds) == 2
    # A fit of another metric is another summary: it never overwrites the val_loss one.
    before = read_json(client, big.summary_run_id, "scaling/fit.json")
    (other, *_), _ = diagnose_scaling(experiment_id=exp, size_param="train_size", metric="loss",
                                      filter_string="params.model = 'big'", tracking_uri=uri)
    assert other.summary_run_id != big.summary_run_id
    assert read_json(client, big.summary_run_id, "scaling/fit.json") == before
    assert client.get_run(other.summary_run_id).data.tags["scaling.metric"] == "loss"
    assert len(client.search_runs([exp], "tags.`plateau.kind` = 'scaling'")) == 3

    # --group-by: one group over both models.
    (one,), _ = diagnose_scaling(experiment_id=exp, size_param="train_size", group_by=["model"],
                                 filter_string="params.model = 'small'", tracking_uri=uri,
                                 log=False)
    assert one.label == "model=small" and len(one.run_ids) == 5


def test_scaling_with_too_few_sizes_is_insufficient(client):
    exp = client.create_experiment("few")
    runs = [log_curves(client, exp, {"val_accuracy": [0.5, 0.6, 0.7]}, params={"train_size": n})
            for n in (100, 200)]
    (group,), failures = diagnose_scaling(experiment_name="few", metric="val_accuracy",
                                          tracking_uri=client.tracking_uri)
    assert group.verdict.verdict == "insufficient_points" and not failures
    assert group.errors == [pytest.approx(0.3), pytest.approx(0.3)]  # 1 - best accuracy
    # A summary run that fits nothing is not logged, and the members are left as they were.
    assert group.summary_run_id is None
    assert client.search_runs([exp], "tags.`plateau.kind` = 'scaling'") == []
    assert all("scaling.verdict" not in client.get_run(r).data.tags for r in runs)


def test_scaling_summary_follows_its_group_down_to_too_few_sizes(client):
    exp = client.create_experiment("shrinking")
    runs = {n: log_curves(client, exp, {"val_loss": [2.0, 1.0, 3.0 * n ** -0.5]},
                          params={"train_size": n}) for n in (100, 400, 1600)}
    (group,), _ = diagnose_scaling(experiment_id=exp, tracking_uri=client.tracking_uri)
    assert group.verdict.verdict != "insufficient_points" and group.summary_run_id
    client.delete_run(runs[1600])
    # The summary and the members left now say what the 2 remaining sizes support, not the
    # verdict of a fit that included the deleted run.
    (again,), _ = diagnose_scaling(experiment_id=exp, tracking_uri=client.tracking_uri)
    assert again.verdict.verdict == "insufficient_points"
    assert again.summary_run_id == group.summary_run_id
    summary = client.get_run(group.summary_run_id)
    assert summary.data.tags["scaling.verdict"] == "insufficient_points"
    assert read_json(client, group.summary_run_id, "scaling/fit.json")["run_ids"] == \
        [runs[100], runs[400]]
    assert math.isnan(summary.data.metrics["scaling/exponent"])  # the old fit's is retired
    for n in (100, 400):
        assert client.get_run(runs[n]).data.tags["scaling.verdict"] == "insufficient_points"
    assert len(client.search_runs([exp], "tags.`plateau.kind` = 'scaling'")) == 1


# --- HTTP: a real `mlflow server` ------------------------------------------------------------

@pytest.mark.slow
def test_http_bulk_read_equals_sql_and_client(mlflow_server, server_client, monkeypatch):
    exp = server_client.create_experiment(unique_name("http"))
    runs = [log_tricky_run(server_client, exp) for _ in range(3)]
    runs.append(log_curves(server_client, exp, {"val_loss": np.linspace(1, 0, 250)}))
    via_http = read_run_curves(runs, tracking_uri=mlflow_server.uri)
    via_sql = read_run_curves(runs, tracking_uri=mlflow_server.backend_uri)
    for run_id in runs:
        assert_same_curves(via_http[run_id], via_sql[run_id])
        assert_same_curves(via_http[run_id], client_curves(server_client, run_id))
    # Responses that could be truncated are split, down to the client for a single long history.
    monkeypatch.setattr(history, "HTTP_BULK_MAX", 40)
    keys = {r: list(server_client.get_run(r).data.metrics) for r in runs}
    split = history._read_http(server_client, keys)
    for run_id in runs:
        assert_same_curves(split[run_id], via_sql[run_id])


@pytest.mark.slow
def test_http_diagnose_is_idempotent(mlflow_server, server_client):
    exp = server_client.create_experiment(unique_name("http-idem"))
    run_id = log_tricky_run(server_client, exp)
    d1 = diagnose_run(run_id, tracking_uri=mlflow_server.uri, artifacts="json")
    h1 = histories(server_client, run_id)
    d2 = diagnose_run(run_id, tracking_uri=mlflow_server.uri, artifacts="json")
    assert d1.to_dict() == d2.to_dict()
    assert histories(server_client, run_id) == h1
    assert [a.path for a in server_client.list_artifacts(run_id, "plateau")] == \
        ["plateau/diagnosis.json"]
    # A whole experiment over HTTP: bulk reads, concurrent writes, then nothing new on a re-run.
    others = [log_curves(server_client, exp, {"loss": TRAIN, "val_loss": VAL + i / 100})
              for i in range(4)]
    first = list(diagnose_runs(experiment_id=exp, tracking_uri=mlflow_server.uri,
                               artifacts="none"))
    assert sorted(r.run_id for r in first) == sorted([run_id, *others])
    assert not any(isinstance(r, RunFailure) for r in first)
    before = {r: histories(server_client, r) for r in others}
    again = list(diagnose_runs(experiment_id=exp, tracking_uri=mlflow_server.uri,
                               artifacts="none"))
    assert [r.to_dict() for r in again] == [r.to_dict() for r in first]
    assert {r: histories(server_client, r) for r in others} == before


# --- Runs logged by MLflow's own Keras integrations --------------------------------------------

def _fit_tiny_keras(early_stopping: bool, epochs: int = 6):
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 8)).astype("float32")
    # Random labels: nothing generalizes, so validation loss rises at once and EarlyStopping fires.
    y = (rng.random(96) < 0.5).astype("float32") if early_stopping else (x[:, 0] > 0).astype(
        "float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy",
                  metrics=["accuracy"])
    callbacks = [keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)] \
        if early_stopping else []
    return model.fit(x, y, validation_split=0.25, epochs=40 if early_stopping else epochs,
                     batch_size=16, verbose=0, callbacks=callbacks)


@pytest.mark.slow
def test_tensorflow_autolog_with_restore_best_weights(client):
    import mlflow

    mlflow.set_experiment("tf-autolog")
    mlflow.tensorflow.autolog(log_models=False, log_datasets=False, silent=True)
    try:
        with mlflow.start_run() as run:
            history = _fit_tiny_keras(early_stopping=True)
    finally:
        mlflow.tensorflow.autolog(disable=True)
    run_id = run.info.run_id
    stopped = int(client.get_run(run_id).data.metrics["stopped_epoch"])
    assert stopped == history.epoch[-1]
    # autolog re-logged the restored epoch at stopped_epoch + 1: in the store, not in our curves.
    assert [m.step for m in client.get_metric_history(run_id, "val_loss")][-1] == stopped + 1
    curves = read_run_curves([run_id], tracking_uri=client.tracking_uri)[run_id]
    assert_same_curves(curves, client_curves(client, run_id))  # read as stored ...
    curves = drop_restored_epoch(curves)  # ... and the re-logged point is what this drops
    assert curves["val_loss"].epochs.tolist() == list(range(stopped + 1))
    np.testing.assert_allclose(curves["val_loss"].values, history.history["val_loss"], rtol=1e-6)
    d = diagnose_run(run_id, tracking_uri=client.tracking_uri, artifacts="json")
    assert d.monitor == "val_loss" and d.train_metric == "loss"
    assert d.plateau.last_epoch == stopped
    assert client.get_run(run_id).data.tags["plateau.verdict"] == d.verdict


@pytest.mark.slow
def test_keras_autolog_run(client):
    import mlflow

    mlflow.set_experiment("keras-autolog")
    mlflow.keras.autolog(log_models=False, log_datasets=False, silent=True)
    try:
        with mlflow.start_run() as run:
            history = _fit_tiny_keras(early_stopping=False, epochs=6)
    finally:
        mlflow.keras.autolog(disable=True)
    curves = read_run_curves([run.info.run_id], tracking_uri=client.tracking_uri)[run.info.run_id]
    assert_same_curves(curves, client_curves(client, run.info.run_id))
    assert curves["val_loss"].epochs.tolist() == history.epoch
    d = diagnose_run(run.info.run_id, tracking_uri=client.tracking_uri, artifacts="none")
    assert d.monitor == "val_loss" and d.train_metric == "loss" and d.plateau.last_epoch == 5


def test_lightning_and_custom_names(client):
    exp = client.create_experiment("names")
    lightning = log_curves(client, exp, {"train_loss": TRAIN, "val_loss": VAL,
                                         "train_loss_step": np.linspace(1, 0, 90)})
    custom = log_curves(client, exp, {"Training Loss": TRAIN, "Validation Loss": VAL,
                                      "holdout_mse": VAL * 2})
    uri = client.tracking_uri
    d = diagnose_run(lightning, tracking_uri=uri, log=False)
    assert (d.monitor, d.train_metric) == ("val_loss", "train_loss")
    d = diagnose_run(custom, tracking_uri=uri, log=False)
    assert (d.monitor, d.train_metric) == ("Validation Loss", "Training Loss")
    d = diagnose_run(custom, tracking_uri=uri, monitor="holdout_mse", train_metric="Training Loss",
                     mode="min", log=False)
    assert (d.monitor, d.train_metric, d.mode) == ("holdout_mse", "Training Loss", "min")


def test_forecast_and_best_metrics_are_written_once(client):
    """forecast/* (docs/design.md's names) and best/<metric> at the monitor's best epoch."""
    exp = client.create_experiment("forecast-best")
    acc = np.linspace(0.5, 0.9, EPOCHS.size)
    run_id = log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL, "val_accuracy": acc})
    uri = client.tracking_uri
    d = diagnose_run(run_id, tracking_uri=uri, artifacts="none")
    metrics = client.get_run(run_id).data.metrics
    f = d.forecast
    assert f is not None and not f.insufficient
    assert metrics["forecast/value_at_2x"] == pytest.approx(f.value_at_2x)
    assert metrics["forecast/value_at_2x_low"] <= metrics["forecast/value_at_2x"] \
        <= metrics["forecast/value_at_2x_high"]
    assert metrics["forecast/gain_if_doubled"] == pytest.approx(f.gain_if_doubled)
    assert metrics["forecast/epochs_to_plateau"] == f.epochs_to_plateau
    best = d.plateau.best_epoch
    assert best == 10
    assert metrics["best/val_loss"] == pytest.approx(VAL[best])
    assert metrics["best/loss"] == pytest.approx(TRAIN[best])
    assert metrics["best/val_accuracy"] == pytest.approx(acc[best])
    assert not any(k.startswith("best/best/") or k.startswith("best/forecast/") for k in metrics)
    before = histories(client, run_id)
    diagnose_run(run_id, tracking_uri=uri, artifacts="none")
    assert histories(client, run_id) == before  # re-diagnosing adds nothing


def test_best_metrics_leave_the_users_own_best_names_alone(client):
    """A best/f1 the user logged (no curve f1) was taken for a stale value of ours and got a NaN
    point on every re-diagnosis; a metric whose best/ name would pass MLflow's 250-character key
    limit failed the whole write, after the artifacts were uploaded (half written)."""
    exp = client.create_experiment("users-best")
    long_name = "a" * 250
    run_id = log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL, long_name: VAL})
    client.log_metric(run_id, "best/f1", 0.9, step=0)
    uri = client.tracking_uri
    diagnose_run(run_id, tracking_uri=uri)
    diagnose_run(run_id, tracking_uri=uri, patience=3)
    assert [m.value for m in client.get_metric_history(run_id, "best/f1")] == [0.9]
    run = client.get_run(run_id)
    assert run.data.tags["plateau.verdict"] and "best/val_loss" in run.data.metrics
    assert not any(k.startswith("best/a") for k in run.data.metrics)


def test_too_short_a_curve_writes_no_forecast(client):
    exp = client.create_experiment("forecast-short")
    run_id = log_curves(client, exp, {"loss": TRAIN[:4], "val_loss": VAL[:4]})
    d = diagnose_run(run_id, tracking_uri=client.tracking_uri, artifacts="none")
    assert d.forecast is None
    metrics = client.get_run(run_id).data.metrics
    assert not any(k.startswith("forecast/") for k in metrics)
    assert metrics["best/val_loss"] == pytest.approx(VAL[:4].min())


@pytest.mark.slow
def test_scaling_of_an_autolog_size_sweep_in_one_process(client, capsys):
    """The most ordinary sweep: one script, mlflow.keras.autolog, one fit per training size."""
    import keras
    import mlflow

    from mlflow_plateau.cli import main

    mlflow.set_experiment("sweep")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 5)).astype("float32")
    y = (x[:, 0] + 0.5 * rng.normal(size=2000) > 0).astype("int32")
    mlflow.keras.autolog(log_models=False, log_datasets=False, silent=True)
    try:
        for n in (50, 100, 200, 400, 800):
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="relu"),
                                      keras.layers.Dense(1, activation="sigmoid")])
            model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
            with mlflow.start_run(run_name=f"n={n}"):
                mlflow.log_param("train_size", n)
                model.fit(x[:n], y[:n], validation_data=(x[1000:], y[1000:]), epochs=3,
                          batch_size=32, verbose=0)
    finally:
        mlflow.keras.autolog(disable=True)
    exp = client.get_experiment_by_name("sweep").experiment_id
    runs = client.search_runs([exp])
    # What made every run a group of its own: Keras numbers the optimizers of one process
    # (adam, adam_1, ...; later in a process that compiled other models before, adam_5, ...).
    names = {r.data.params["optimizer_name"] for r in runs}
    assert len(names) == 5 and all(n.split("_")[0] == "adam" for n in names)

    assert main(["scaling", "--experiment-name", "sweep"]) == 0
    assert "\nsweep: " in capsys.readouterr().out  # one curve of all five, named as its experiment
    (summary,) = client.search_runs([exp], "tags.`plateau.kind` = 'scaling'")
    assert summary.info.run_name == "scaling: sweep"  # not a dump of the autolog params
    assert all(client.get_run(r.info.run_id).data.tags["scaling.group"] ==
               summary.data.tags["scaling.group"] for r in runs)

    # In an 80-column terminal the table stays readable although the group's label (its ~25
    # shared autolog params) is hundreds of characters long.
    from mlflow_plateau.cli.scaling import print_scaling_table
    from mlflow_plateau.tracking import diagnose_scaling

    groups, _ = diagnose_scaling(experiment_name="sweep", log=False)
    assert len(groups[0].label) > 100
    print_scaling_table(groups, "train_size", width=80)
    table = capsys.readouterr().out.split("\nsweep: ")[0].splitlines()
    assert all(len(line) <= 80 for line in table)
    row = next(line for line in table if line.startswith("sweep "))
    assert row.split()[1:3] == [groups[0].verdict.verdict, "5"]  # verdict and runs not cut
    assert "50, 100" in row  # the sizes are readable, not squeezed to nothing


def test_writer_threads_follow_where_the_stores_work_is_done():
    import os

    from mlflow_plateau.tracking.store import THREADS, writer_threads

    assert writer_threads("sqlite:///x.db") == 2  # SQLite serializes writers
    pg = writer_threads("postgresql://u@h/db")   # the store's code runs on these cores
    assert 2 <= pg <= max(2, 2 * (os.cpu_count() or 1)) and pg <= THREADS
    assert writer_threads("postgresql+psycopg://u@h/db") == pg
    assert writer_threads("http://127.0.0.1:5000") == THREADS  # the server does the work


UNGUARDED_SCRIPT = '''
import sys
from pathlib import Path

import numpy as np
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

with open(sys.argv[2], "a") as marks:  # every execution of this file leaves a line
    marks.write("ran\\n")
from mlflow_plateau.tracking import diagnose_runs

uri = sys.argv[1]
client = MlflowClient(uri)
experiment = client.create_experiment("unguarded")
epochs = np.arange(20)
for i in range(12):
    run = client.create_run(experiment)
    curves = {"loss": 1 / (1 + epochs), "val_loss": 0.5 + (epochs - 5 - i % 4) ** 2 / 100}
    client.log_batch(run.info.run_id, metrics=[
        Metric(k, float(v), 0, int(s)) for k, vals in curves.items() for s, v in zip(epochs, vals)])
print("diagnosed", sum(1 for _ in diagnose_runs(experiment_id=experiment, tracking_uri=uri,
                                                artifacts="all")))
'''


@pytest.mark.slow
def test_drawing_workers_never_run_the_callers_script_again(tmp_path):
    """The pictures are drawn in worker processes (forkserver); a caller's script without an
    ``if __name__ == "__main__"`` guard must not run again in them (training again, say)."""
    import os
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED_SCRIPT)
    marks = tmp_path / "marks.txt"
    env = {**os.environ, "MLFLOW_PLATEAU_RENDER_PROCESSES": "2"}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run([sys.executable, str(script), f"sqlite:///{tmp_path / 'm.db'}",
                           str(marks)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("diagnosed 12") == 1
    assert marks.read_text().splitlines() == ["ran"]
    pngs = list(tmp_path.rglob("curves.png"))
    assert len(pngs) == 12  # more than the first few figures drawn in-process: the pool drew
