"""The MLproject: every entry point through ``mlflow run``, parameter validation, memory refusal.

The slow test launches every entry point with ``epochs=1`` through MLflow's own project runner
(``mlflow.projects.run``, what the ``mlflow run`` command calls, two at a time from threads: it
creates the run, logs the ``-P`` params and runs the entry point's command in a subprocess) against
a temporary SQLite store and checks what each logged. One bad value
goes through the ``mlflow run`` command itself to see the message a user sees.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # projects/ is run from the checkout, not installed

from projects.claims import CLAIMS, SOURCES, Outcome, claim_for  # noqa: E402
from projects.params import (  # noqa: E402
    COMMON,
    SCENARIO_PARAMS,
    SUITE_PARAMS,
    ParamError,
    parse_params,
    scenario_spec,
)
from projects.run import parse_flags  # noqa: E402

BIN = Path(sys.executable).parent
MLFLOW = BIN / "mlflow"
CLASSIFIERS = {"limited_diversity", "high_capacity", "augmentation", "small_model_large_data",
               "regularization", "augmentation_generator", "lr_schedule", "limited_images"}


def _env(store: Path) -> dict[str, str]:
    # The entry points run `python -m projects.run` from PATH (env manager "local"): this venv's.
    # Run from the store's folder (so MLflow's default ./mlruns artifacts land there, not in the
    # checkout), with the checkout importable.
    return {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}", "TF_CPP_MIN_LOG_LEVEL": "3",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": str(ROOT)}


# --- parameters (fast) -----------------------------------------------------------------------

@pytest.mark.parametrize(("entry", "raw", "expected"), [
    ("limited_diversity", {"epochs": "1.5"}, "'epochs' must be a whole number >= 0"),
    ("limited_diversity", {"epochs": "-1"}, "'epochs' must be a whole number >= 0"),
    ("limited_diversity", {"seed": "abc"}, "'seed' must be a whole number >= 0"),
    ("limited_diversity", {"profile": "fast"}, "'profile' must be one of quick, seed"),
    ("limited_diversity", {"fraction": "0"}, "'fraction' must be a fraction of the training set"),
    ("limited_diversity", {"fraction": "1/0"}, "'fraction' must be a fraction"),
    ("limited_diversity", {"augment": "true"}, "unknown parameter(s) augment"),
    ("regularization", {"dropout": "1"}, "'dropout' must be a number in [0, 1)"),
    ("regularization", {"dropout": "nan"}, "'dropout' must be a number in [0, 1)"),
    ("augmentation", {"augment": "maybe"}, "'augment' must be true or false"),
    ("memory_pressure", {"mode": "disk"}, "'mode' must be one of in_memory, streaming"),
    ("memory_pressure", {"num_images": "1e5"}, "'num_images' must be a whole number"),
    ("data_scaling", {"sizes": "1000,abc"}, "'sizes' must be comma-separated whole numbers"),
    ("data_scaling", {"sizes": " , "}, "'sizes' must be comma-separated"),
])
def test_bad_values_are_clear_errors(entry: str, raw: dict, expected: str) -> None:
    with pytest.raises(ParamError) as info:
        parse_params(entry, raw, scenario_spec(entry))
    assert expected in str(info.value)
    assert str(info.value).startswith(f"{entry}:")


def test_values_parse_with_defaults_for_empty() -> None:
    opts = parse_params("data_scaling", {"epochs": "", "sizes": "100, 200;400", "fraction": "1/4"},
                        scenario_spec("data_scaling"))
    assert opts["epochs"] == 0 and opts["sizes"] == (100, 200, 400) and opts["fraction"] == 0.25
    opts = parse_params("learning_curve", {"fractions": "1/8,0.25,1"}, SUITE_PARAMS["learning_curve"])
    assert opts["fractions"] == (0.125, 0.25, 1.0)
    assert parse_params("augmentation", {"augment": "No"}, scenario_spec("augmentation"))["augment"] is False
    assert parse_flags("x", ["--num-images", "3", "--mode=in_memory"]) == {"num_images": "3",
                                                                          "mode": "in_memory"}
    with pytest.raises(ParamError, match="has no value"):
        parse_flags("x", ["--epochs"])


def test_mlproject_declares_what_the_code_accepts() -> None:
    from mlflow.projects._project_spec import load_project

    project = load_project(str(ROOT))
    for scenario, own in SCENARIO_PARAMS.items():
        entry = project.get_entry_point(scenario)
        assert set(entry.parameters) == set(COMMON) | set(own), scenario
        assert f"projects.run {scenario} " in entry.command
    for name, spec in SUITE_PARAMS.items():
        assert set(project.get_entry_point(name).parameters) == set(spec)
    assert project.get_entry_point("diagnose").parameters.keys() == {"args"}
    assert (ROOT / "python_env.yaml").is_file() and project.env_type == "python_env"


def test_every_claim_is_a_runnable_variant_with_a_source() -> None:
    assert {c.scenario for c in CLAIMS} == set(SCENARIO_PARAMS)
    assert len({c.key for c in CLAIMS}) == len(CLAIMS)
    for claim in CLAIMS:
        assert claim.source in SOURCES.values()
        parse_params(claim.scenario, {k: str(v) for k, v in claim.options.items()},
                     scenario_spec(claim.scenario))
    opts = parse_params("augmentation", {"augment": "false"}, scenario_spec("augmentation"))
    assert claim_for("augmentation", opts).key == "augmentation augment=false"
    # A claim is judged on its verdict and its check; no verdict means it could not be measured.
    high = next(c for c in CLAIMS if c.key == "high_capacity")
    low = Outcome("limited_diversity", verdict="overfitting", gap=0.05)
    assert high.judge(Outcome("high_capacity", verdict="overfitting", gap=0.1), {low.key: low}) is True
    assert high.judge(Outcome("high_capacity", verdict="overfitting", gap=0.01), {low.key: low}) is False
    assert high.judge(Outcome("high_capacity", verdict="healthy", gap=0.1), {low.key: low}) is False
    assert high.judge(Outcome("high_capacity", verdict="error"), {}) is None


def test_memory_check_refuses_the_documents_config_with_both_numbers() -> None:
    from projects.scenarios import MemoryRefused, check_fits, projected_bytes

    assert projected_bytes(100_000, 256) == 100_000 * 256 * 256 * 3 * 4  # 78.6 GB
    with pytest.raises(MemoryRefused) as info:
        check_fits(100_000, 256, available=16 * 10**9)
    assert "78.6 GB (78,643,200,000 bytes)" in str(info.value)
    assert "16.0 GB (16,000,000,000 bytes)" in str(info.value)
    assert check_fits(10, 8, available=16 * 10**9) == (7680, 16 * 10**9)


def test_bad_value_fails_before_anything_is_logged(tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    proc = subprocess.run([sys.executable, "-m", "projects.run", "regularization", "--dropout", "2"],
                          cwd=tmp_path, env=_env(store), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "error: regularization: parameter 'dropout' must be a number in [0, 1); got '2'" in proc.stderr
    assert not store.exists()  # no store opened: nothing ran


@pytest.mark.slow
def test_in_memory_refuses_the_documents_size_without_allocating(tmp_path: Path) -> None:
    import psutil

    if psutil.virtual_memory().available > 100_000 * 256 * 256 * 3 * 4:
        pytest.skip("this machine could hold the document's 78.6 GB in memory")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, "-m", "projects.run", "memory_pressure", "--mode", "in_memory",
                           "--num_images", "100000", "--image_size", "256", "--profile", "seed"],
                          cwd=tmp_path, env=_env(tmp_path / "mlflow.db"), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert re.search(r"refusing to load 100,000 images of 256x256x3 float32 into memory: that needs "
                     r"78\.6 GB \(78,643,200,000 bytes\) but only [\d.]+ GB \([\d,]+ bytes\) is available",
                     proc.stderr)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest of every child this process waited for (a Spark JVM of
    # an earlier test in the same worker, say): it tells about this child only when it grew.
    if peak_kb > before:
        assert peak_kb < 4 * 1024 * 1024  # the child never came near 78.6 GB (< 4 GiB)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert run.info.status == "FAILED"
    assert run.data.tags["memory.refused"] == "true"
    assert run.data.metrics["memory/projected_bytes"] == 78_643_200_000


# --- every entry point through mlflow run (slow) ----------------------------------------------

@pytest.mark.slow
def test_one_scenario_through_the_mlflow_run_command_ends_diagnosed(tmp_path: Path) -> None:
    """The README's first scenario command, as a user types it: the run ends with its diagnosis."""
    store = tmp_path / "mlflow.db"
    proc = subprocess.run([str(MLFLOW), "run", str(ROOT), "-e", "small_model_large_data",
                           "-P", "profile=quick", "-P", "epochs=4", "--env-manager", "local",
                           "--experiment-name", "first-contact"],
                          cwd=tmp_path, env=_env(store), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store}")
    (run,) = client.search_runs([client.get_experiment_by_name("first-contact").experiment_id])
    run_id = run.info.run_id
    # Random labels: nothing to learn, whatever the capacity.
    assert run.data.tags["plateau.verdict"] == "at_chance"
    assert run.data.tags["scenario.claim_held"] == "no"  # the document expected underfitting
    for key in ("plateau/epoch", "plateau/best_epoch", "plateau/best_value", "plateau/wasted_epochs",
                "gap/final", "gap/at_best"):
        assert key in run.data.metrics, key
    assert run.data.metrics["plateau/best_epoch"] in range(4)
    assert {a.path for a in client.list_artifacts(run_id, "plateau")} == {
        "plateau/diagnosis.json", "plateau/curves.png", "plateau/report.html"}
    out = proc.stdout
    assert "verdict: at_chance\n" in out
    assert f"summary: {run.data.tags['plateau.summary']}\n" in out
    assert "claim (001_fd2b6a7ad9be7d30.txt): A Dense(16) model" in out
    assert "claim held: no (expected underfitting; measured at_chance)" in out
    experiment_id = run.info.experiment_id
    assert (f"run {run.info.run_name!r} ({run_id[:8]}) in experiment 'first-contact': mlflow ui "
            f"--backend-store-uri sqlite:///{store}, then open "
            f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run_id}") in out
    assert client.search_runs(["0"]) == []  # nothing in Default


@pytest.mark.slow
def test_nested_runs_go_to_their_parents_experiment(tracking_uri: str) -> None:
    """data_scaling under main's suite run, while the active experiment is another (Default)."""
    from projects.runner import run_scenario
    from projects.suite import variant_options

    client = mlflow.MlflowClient()
    target = client.create_experiment("scenarios")
    suite = client.create_run(target).info.run_id
    claim = next(c for c in CLAIMS if c.scenario == "data_scaling")
    options = {**variant_options(claim, 0, 1, "quick"), "sizes": (50, 100)}
    run = run_scenario("data_scaling", options, experiment_id=target, parent_run_id=suite)
    kids = client.search_runs([target], f"tags.mlflow.parentRunId = '{run.run_id}'")
    assert sorted(k.info.run_id for k in kids) == sorted(run.trained.children)
    assert len(kids) == 2 and client.search_runs(["0"]) == []
    assert client.get_run(run.run_id).data.tags["plateau.kind"] == "container"


ENTRY_PARAMS: dict[str, dict[str, str]] = {
    "limited_diversity": {"epochs": "3"},  # 3 epochs: the diagnose entry point needs a curve
    "high_capacity": {"diagnose": "false"},
    "augmentation": {"augment": "true"},
    "memory_pressure": {"mode": "in_memory", "num_images": "64", "image_size": "8"},
    "slow_convergence": {},
    "small_model_large_data": {},
    "data_scaling": {"sizes": "100,200,400"},
    "regularization": {"dropout": "0.5"},
    "augmentation_generator": {},
    "lr_schedule": {},
    "complex_vs_simple": {"model": "simple"},
    "limited_images": {},
    "optimizer_limits": {"optimizer": "adam"},
    "learning_curve": {"scenario": "complex_vs_simple", "fractions": "1/4,1/2,1"},
    # No -P experiment: main logs to the experiment mlflow run was given.
    "main": {"only": "optimizer_limits,memory_pressure"},
}


def _launch_all(entries: dict[str, dict[str, str]]) -> dict[str, str]:
    """entry point -> run id, two entry points at a time (threads calling MLflow's project runner)."""
    from concurrent.futures import ThreadPoolExecutor

    from mlflow.projects import run as mlflow_run

    def launch(item: tuple[str, dict[str, str]]) -> tuple[str, str]:
        name, params = item
        submitted = mlflow_run(str(ROOT), entry_point=name, env_manager="local", synchronous=True,
                               experiment_name="projects-test", parameters=params)
        return name, submitted.run_id

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(launch, entries.items()))


def _steps(client: mlflow.MlflowClient, run_id: str, key: str) -> list[int]:
    return [m.step for m in client.get_metric_history(run_id, key)]


@pytest.mark.slow
def test_every_entry_point_through_mlflow_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    # Created before the threads (which would race to create it), with artifacts in tmp_path.
    client.create_experiment("projects-test", artifact_location=(tmp_path / "artifacts").as_uri())
    runs = _launch_all({name: {"epochs": "1", **params} for name, params in ENTRY_PARAMS.items()})
    for scenario in SCENARIO_PARAMS:
        run = client.get_run(runs[scenario])
        tags, params = run.data.tags, run.data.params
        assert tags["scenario"] == scenario
        assert tags["scenario.source"] in SOURCES.values()
        assert tags["scenario.claim"] == claim_for(scenario, parse_params(
            scenario, ENTRY_PARAMS[scenario], scenario_spec(scenario))).claim
        assert params["seed"] == "0" and params["profile"] == "quick"
        for name, value in ENTRY_PARAMS[scenario].items():
            assert params[name] == value, (scenario, name)
        if scenario == "data_scaling":
            continue
        assert params["epochs"] == ENTRY_PARAMS[scenario].get("epochs", "1")
        epochs = int(params["epochs"])
        assert int(params["train_size"]) > 0
        keys = ["loss", "val_loss", *(["accuracy", "val_accuracy"] if scenario in CLASSIFIERS else [])]
        for key in keys:
            assert _steps(client, run.info.run_id, key) == list(range(epochs)), (scenario, key)
        # Every entry point diagnoses its run at its end, unless -P diagnose=false.
        diagnosed = scenario != "high_capacity"
        assert ("plateau.verdict" in tags) is diagnosed, scenario
        assert ("scenario.claim_held" in tags) is diagnosed, scenario
        # (one epoch is insufficient_data, which writes no plateau/* metrics: the metrics are
        # checked by test_one_scenario_through_the_mlflow_run_command_ends_diagnosed)

    lr = client.get_run(runs["lr_schedule"])
    assert lr.data.metrics["learning_rate"] == pytest.approx(0.001)
    mem = client.get_run(runs["memory_pressure"]).data.metrics
    assert mem["memory/projected_bytes"] == 64 * 8 * 8 * 3 * 4
    assert mem["memory/peak_rss_bytes"] > 0
    assert "stopped_epoch" in client.get_run(runs["regularization"]).data.params

    # data_scaling: one nested child per size, the scaling verdict on the parent.
    parent = runs["data_scaling"]
    kids = client.search_runs([lr.info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    assert sorted(int(k.data.params["train_size"]) for k in kids) == [100, 200, 400]
    assert all(_steps(client, k.info.run_id, "val_loss") == [0] for k in kids)
    assert all(k.data.tags["plateau.verdict"] == "insufficient_data" for k in kids)  # one epoch
    top = client.get_run(parent).data
    assert top.tags["scaling.verdict"] in ("data_limited", "diminishing_returns", "saturated")
    assert "scaling/gain_at_2x" in top.metrics
    assert top.tags["plateau.kind"] == "container" and "plateau.verdict" not in top.tags

    # learning_curve: nested runs at 1/4, 1/2 and all of complex_vs_simple's 1000 samples.
    parent = runs["learning_curve"]
    kids = client.search_runs([lr.info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    assert sorted(int(k.data.params["train_size"]) for k in kids) == [250, 500, 1000]
    assert {k.data.tags["scenario"] for k in kids} == {"complex_vs_simple"}
    assert all(k.data.tags["plateau.verdict"] == "insufficient_data" for k in kids)
    top = client.get_run(parent).data
    assert top.tags["plateau.kind"] == "container"
    assert top.tags["scaling.verdict"] in ("data_limited", "diminishing_returns", "saturated")
    assert top.tags["learning_curve.answer"]

    # main: variants nested under the run mlflow run made, diagnosed, claims.md on it.
    main = runs["main"]
    kids = client.search_runs([lr.info.experiment_id], f"tags.mlflow.parentRunId = '{main}'")
    assert {k.data.tags["scenario.variant"] for k in kids} == {
        "optimizer_limits optimizer=sgd", "optimizer_limits optimizer=adam",
        "memory_pressure mode=in_memory document size", "memory_pressure mode=in_memory",
        "memory_pressure mode=streaming"}
    for kid in kids:
        if kid.data.tags["scenario.variant"].endswith("document size"):
            assert kid.info.status == "FAILED" and kid.data.tags["memory.refused"] == "true"
            assert kid.data.tags["scenario.error"] and kid.data.tags["plateau.kind"] == "container"
            assert "plateau.verdict" not in kid.data.tags
        else:
            assert kid.data.tags["plateau.verdict"] == "insufficient_data"  # one epoch only
    claims = client.download_artifacts(main, "claims.md", str(tmp_path))
    text = Path(claims).read_text()
    assert "| optimizer_limits optimizer=sgd | 004 |" in text and "insufficient_data" in text
    # claims.json: the outcomes claims.md was rendered from (what projects.claims_table reads).
    logged = json.loads(Path(client.download_artifacts(main, "claims.json", str(tmp_path))).read_text())
    assert logged["seed"] == 0 and len(logged["rows"]) == 5
    assert {row["outcome"]["verdict"] for row in logged["rows"]} == {"refused", "insufficient_data"}

    # diagnose: passes its arguments to `mlflow-plateau diagnose`, which tags the run.
    target = runs["limited_diversity"]
    _launch_all({"diagnose": {"args": f"{target} --patience 2"}})
    assert client.get_run(target).data.tags["plateau.verdict"]

    # Everything those commands logged is in the one experiment they were given, and diagnosing
    # it again succeeds: the runs without a curve by design (parents, main's suite run, the
    # refused run, the diagnose entry point's own run) are recognised and skipped.
    assert client.search_runs(["0"]) == []
    from mlflow_plateau.cli import main as cli

    assert cli(["diagnose", "--experiment-name", "projects-test", "--artifacts", "none"]) == 0

    # A bad value through the mlflow run command: a clear message, no training.
    proc = subprocess.run([str(MLFLOW), "run", str(ROOT), "-e", "limited_diversity", "--env-manager", "local",
                           "--experiment-name", "projects-test", "-P", "epochs=ten"],
                          cwd=tmp_path, env=_env(tmp_path / "mlflow.db"), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0
    assert "limited_diversity: parameter 'epochs' must be a whole number >= 0" in proc.stdout + proc.stderr
