"""Security: no code runs from run data, artifact paths are fixed, credentials are never shown.

- Static: the package source (``mlflow_plateau/``) is parsed with ``ast`` and may not import or
  call anything that turns data into code or objects (pickle and friends, eval/exec/compile,
  unsafe YAML, ``np.load(allow_pickle=True)``, shells). Everything read from a run goes through
  ``json.loads``, pandas' CSV reader, MLflow's entities and SQL rows of numbers and strings.
- Artifact paths: a run whose name, params, tags and metric names hold ``../``, absolute paths,
  NUL and terminal escapes gets exactly the fixed names under ``plateau/`` (and ``scaling/`` for a
  learning-curve summary); nothing else appears on disk.
- Credentials: a tracking URI with ``user:password@`` and ``MLFLOW_TRACKING_TOKEN`` against a real
  ``mlflow server`` (which ignores auth) never show in stdout/stderr (tables, ``--json``, failures),
  in the run's tags/params/metrics, or in the artifacts written.

report.html's escaping of hostile strings is proven in test_report.py and, in a real headless
Chromium, in test_report_browser.py.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import free_port, log_curves, unique_name

from mlflow_plateau.cli import main

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mlflow_plateau"
SCRIPT = str(Path(sys.executable).with_name("mlflow-plateau"))

EPOCHS = np.arange(30)
TRAIN = 0.6 * np.exp(-EPOCHS / 5) + 0.08
VAL = 0.6 * np.exp(-EPOCHS / 5) + 0.10

# --- no code execution from run data ---------------------------------------------------------

# Modules that rebuild arbitrary objects (and so can run code) from bytes, or run commands.
FORBIDDEN_MODULES = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "marshal", "shelve",
                     "joblib", "jsonpickle", "subprocess", "pty", "code", "codeop"}
FORBIDDEN_BUILTINS = {"eval", "exec", "compile", "__import__", "breakpoint"}
# Attribute calls that load objects or run shells, whatever module they hang off.
FORBIDDEN_ATTRIBUTES = {"read_pickle", "to_pickle", "unsafe_load", "full_load", "load_all",
                        "system", "popen", "spawnl", "spawnv", "execv", "execl", "execve"}
# importlib.import_module is used with names fixed in the source only (checked below): the
# package's own lazy public names (__init__.py) and the MlflowCallback classes of mlflow.keras /
# mlflow.tensorflow (callback.py). A new call site must be reviewed and added here.
IMPORT_MODULE_SITES = {"__init__.py", "callback.py"}


def _sources() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
            for path in sorted(PACKAGE.rglob("*.py"))]


def _attribute_chain(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def test_the_source_can_be_parsed_and_is_not_empty():
    sources = _sources()
    assert len(sources) >= 10  # the check below looks at the real package, not at nothing
    assert any(path.parent.name == "tracking" for path, _ in sources)


def test_no_deserialization_or_code_execution_in_the_package():
    problems = []
    for path, tree in _sources():
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
                if node.module == "yaml" or any(a.name in ("load", "unsafe_load", "Loader",
                                                           "UnsafeLoader") for a in node.names
                                                if node.module == "yaml"):
                    problems.append(f"{where}:{node.lineno}: from yaml import ...")
            else:
                names = []
            problems += [f"{where}:{node.lineno}: import {n}" for n in names
                         if n in FORBIDDEN_MODULES]
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_BUILTINS:
                problems.append(f"{where}:{node.lineno}: {func.id}()")
            if isinstance(func, ast.Attribute):
                chain = _attribute_chain(func)
                if func.attr in FORBIDDEN_ATTRIBUTES:
                    problems.append(f"{where}:{node.lineno}: {chain}()")
                if chain in ("yaml.load", "yaml.load_all"):  # yaml.safe_load only
                    problems.append(f"{where}:{node.lineno}: {chain}()")
                if func.attr == "load" and chain.split(".")[0] in ("np", "numpy") and any(
                        k.arg == "allow_pickle" for k in node.keywords):
                    problems.append(f"{where}:{node.lineno}: np.load(allow_pickle=...)")
                if func.attr == "import_module" and path.name not in IMPORT_MODULE_SITES:
                    problems.append(f"{where}:{node.lineno}: importlib.import_module()")
    assert problems == []


def test_import_module_names_come_from_the_source():
    """The two import_module sites take names from literals in their own module."""
    for name in IMPORT_MODULE_SITES:
        tree = ast.parse((PACKAGE / name).read_text(encoding="utf-8"))
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Attribute) and n.func.attr == "import_module"]
        assert calls, name
        for call in calls:
            arg = call.args[0]
            # f".{module}" over the module's own table, or a loop variable over literal names
            assert isinstance(arg, (ast.Constant, ast.JoinedStr, ast.Name)), ast.dump(arg)


def test_a_run_id_shaped_like_sql_reaches_no_query(client, capsys):
    exp = client.create_experiment("sql")
    run_id = log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL})
    hostile = f"{run_id}' OR '1'='1"
    assert main(["diagnose", hostile, "--artifacts", "none"]) == 1
    assert capsys.readouterr().err == f"mlflow-plateau: run {hostile}: not a valid run id\n"
    assert "plateau.verdict" not in client.get_run(run_id).data.tags


# --- fixed artifact paths --------------------------------------------------------------------

HOSTILE = "../../../etc/passwd /abs/path \x00nul \x1b]0;owned\x07 [/red] <script>"


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def _all_artifacts(client, run_id: str, path: str | None = None) -> set[str]:
    out = set()
    for info in client.list_artifacts(run_id, path):
        out |= _all_artifacts(client, run_id, info.path) if info.is_dir else {info.path}
    return out


def test_hostile_run_data_gets_only_the_fixed_artifact_names(client, tracking_uri, tmp_path,
                                                             capsys):
    art = tmp_path / "artifacts"
    exp = client.create_experiment("../../" + HOSTILE, artifact_location=str(art))
    before = _files(tmp_path)
    metrics = {"loss": TRAIN, "val_loss": VAL, "C:/tmp/loss": TRAIN, "etc/passwd/val_acc": 1 - VAL}
    run_id = log_curves(client, exp, metrics, run_name=HOSTILE,
                        params={"path": HOSTILE, "abs": "/etc/shadow", "dots": "../" * 20},
                        tags={"evil": HOSTILE, "abs/tag": "/etc"})
    assert main(["diagnose", run_id, "--artifacts", "all"]) == 0
    capsys.readouterr()
    assert _all_artifacts(client, run_id) == {"plateau/diagnosis.json", "plateau/curves.png",
                                              "plateau/report.html"}
    new = _files(tmp_path) - before
    prefix = f"artifacts/{run_id}/artifacts/plateau/"
    assert new == {prefix + name for name in ("diagnosis.json", "curves.png", "report.html")} | (
        new & {"mlflow.db-journal", "mlflow.db-wal", "mlflow.db-shm"})


def test_hostile_group_labels_get_the_fixed_scaling_names_and_print_as_text(client, tmp_path,
                                                                             capsys):
    art = tmp_path / "artifacts"
    exp = client.create_experiment("scaling", artifact_location=str(art))
    for n in (100, 200, 400, 800):
        curve = 2.0 * n ** -0.5 + (EPOCHS - 8.0) ** 2 / 300.0
        log_curves(client, exp, {"loss": curve - 0.05, "val_loss": curve},
                   params={"train_size": n, "model": HOSTILE})
    # A second group, so the table names the groups by their (hostile) model param.
    for n in (100, 200):
        log_curves(client, exp, {"loss": TRAIN, "val_loss": VAL}, params={"train_size": n,
                                                                           "model": "plain"})
    assert main(["scaling", "--experiment-name", "scaling"]) == 0
    out = capsys.readouterr().out
    (summary,) = client.search_runs([exp], "tags.`plateau.kind` = 'scaling'")
    assert _all_artifacts(client, summary.info.run_id) == {"scaling/fit.json",
                                                           "scaling/learning_curve.png"}
    on_disk = {p for p in _files(art) if "/artifacts/" in p}
    assert on_disk == {f"{summary.info.run_id}/artifacts/scaling/fit.json",
                       f"{summary.info.run_id}/artifacts/scaling/learning_curve.png"}
    # The label is shown as text: rich markup not applied, control characters escaped.
    assert "[/red]" in out and "\\x1b]0;owned\\x07" in out and "\\x00nul" in out
    assert "\x1b" not in out and "\x00" not in out and "\x07" not in out


# --- credentials -----------------------------------------------------------------------------

PASSWORD = "hunter2-7c0a"
TOKEN = "tok-5be1d2"


def _run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([SCRIPT, *argv], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**base, "MLFLOW_TRACKING_TOKEN": TOKEN, **env})


def _no_secret(text: str) -> None:
    assert PASSWORD not in text and TOKEN not in text


@pytest.mark.slow
def test_credentials_never_appear_in_output_runs_or_artifacts(mlflow_server, server_client,
                                                              tmp_path):
    name = unique_name("creds")
    exp = server_client.create_experiment(name)
    ok = [log_curves(server_client, exp, {"loss": TRAIN, "val_loss": VAL + i / 100},
                     params={"train_size": 100 * 2 ** i}) for i in range(3)]
    bad = log_curves(server_client, exp, {"loss": TRAIN})  # fails: no validation metric
    port = mlflow_server.uri.rsplit(":", 1)[1]
    uri = f"http://user:{PASSWORD}@127.0.0.1:{port}"
    log = tmp_path / "log.csv"
    log.write_text("epoch,loss,val_loss\n" + "".join(f"{e},{TRAIN[e]},{VAL[e]}\n" for e in EPOCHS),
                   encoding="utf-8")
    outputs = [
        _run(["diagnose", "--experiment-name", name, "--tracking-uri", uri], tmp_path),
        _run(["diagnose", *ok, bad, "--tracking-uri", uri, "--json"], tmp_path),
        _run(["diagnose", "f" * 32, "--tracking-uri", uri], tmp_path),  # run not found
        _run(["scaling", "--experiment-name", name, "--tracking-uri", uri, "--json"], tmp_path),
        _run(["import", str(log), "--experiment-name", name], tmp_path, MLFLOW_TRACKING_URI=uri),
    ]
    assert [p.returncode for p in outputs] == [1, 1, 1, 0, 0]
    assert f"({ok[0][:8]})" in outputs[0].stdout
    assert f"run {bad}: no validation metric" in outputs[0].stderr
    for proc in outputs:
        _no_secret(proc.stdout + proc.stderr)
    imported = outputs[4].stdout.strip()
    # What was written: every tag, param and metric name of every run of the experiment, and
    # every artifact file the server stored for them.
    for run in server_client.search_runs([exp]):
        _no_secret(json.dumps([run.data.tags, run.data.params, list(run.data.metrics)]))
    artifacts = Path(mlflow_server.backend_uri.removeprefix("sqlite:///")).parent / "artifacts"
    files = [p for p in artifacts.rglob("*") if p.is_file() and any(
        rid in str(p) for rid in [*ok, imported])]
    assert {p.name for p in files} >= {"diagnosis.json", "report.html", "curves.png"}
    for path in files:
        data = path.read_bytes()
        assert PASSWORD.encode() not in data and TOKEN.encode() not in data, path


def test_credentials_never_appear_when_the_server_is_down(tmp_path):
    uri = f"http://user:{PASSWORD}@127.0.0.1:{free_port()}"
    for argv in (["diagnose", "a" * 32, "--json"], ["diagnose", "--experiment-id", "1", "--json"],
                 ["scaling", "--experiment-id", "1", "--json"]):
        proc = _run([*argv, "--tracking-uri", uri], tmp_path, MLFLOW_PLATEAU_DEBUG="1")
        assert proc.returncode == 1 and "http://***@127.0.0.1:" in proc.stdout + proc.stderr
        _no_secret(proc.stdout + proc.stderr)


def test_library_calls_that_end_runs_print_no_run_url(mlflow_server, capsys, monkeypatch):
    # MLflow prints "View run ... at: <tracking URI>" when a run ends against a server; that URI
    # can carry credentials, and a library user's stdout is theirs.
    from mlflow_plateau.curves import Curve
    from mlflow_plateau.tracking import log_history

    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
    port = mlflow_server.uri.rsplit(":", 1)[1]
    uri = f"http://user:{PASSWORD}@127.0.0.1:{port}"
    epochs = np.arange(5)
    curves = {"loss": Curve("loss", epochs, 1.0 / (1 + epochs)),
              "val_loss": Curve("val_loss", epochs, 1.1 / (1 + epochs))}
    log_history(curves, experiment_name=unique_name("quiet"), tracking_uri=uri)
    out = capsys.readouterr().out
    assert "View run" not in out and PASSWORD not in out
    assert "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT" not in os.environ  # restored as it was
