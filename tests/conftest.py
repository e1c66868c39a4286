"""Shared fixtures: real MLflow tracking stores for the tests (no mocks of MLflow).

- ``tracking_uri``: a fresh SQLite store ``sqlite:///<tmp_path>/mlflow.db`` for one test. The test
  runs with ``tmp_path`` as its working directory (so MLflow's default ``./mlruns`` /
  ``./mlartifacts`` artifact roots land there, never in the checkout) and with
  ``MLFLOW_TRACKING_URI`` set to the store, so ``mlflow.*`` fluent calls and the ``mlflow-plateau``
  command use it by default. The empty, migrated database is built once per session and copied,
  because MLflow's schema migrations take seconds per new store.
- ``client``: an ``MlflowClient`` on ``tracking_uri``.
- ``mlflow_server``: a real ``mlflow server`` subprocess on 127.0.0.1 at a free port, with its own
  SQLite backend and artifact folder; started once per session (it takes seconds), terminated
  afterwards. Its ``.uri`` is the HTTP tracking URI and ``.backend_uri`` the SQL store behind it, so
  tests can compare the HTTP and SQL paths on the same data. Tests sharing it must use their own
  experiment names (``unique_name``).
- ``log_curves(client, experiment_id, metrics, ...)``: log a run with per-epoch metrics, the
  building block for stores with known content.
- ``free_port()``: a TCP port nobody listens on right now.
- ``postgres``: a throwaway PostgreSQL cluster for the session (``tests/postgres_cluster.py``: Debian's
  binaries, run as ``nobody`` when the tests run as root, data and socket in a temporary folder,
  127.0.0.1 at a free port); skipped with the reason only where PostgreSQL or its Python driver is missing.
  ``pg_tracking_uri``: a fresh ``postgresql://`` store per test (a copy of a migrated template
  database). ``pg_server``: an ``mlflow server`` backed by PostgreSQL for the session.
- ``backend``: parametrizes a test over the three backends ``sqlite``, ``postgresql`` and
  ``server-postgresql`` (a ``Backend`` with ``uri``, ``sql_uri`` and ``client()``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from postgres_cluster import PostgresCluster, migrated_template, postgres_bin

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# A server that is down must fail fast in tests instead of MLflow's minutes of retries.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at the moment of the call."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique_name(prefix: str = "exp") -> str:
    """An experiment name no other test uses (for stores shared across tests)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def _empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite tracking database with MLflow's schema, built once per session."""
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("empty-store")
    db = folder / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()  # runs the migrations
    return db


@pytest.fixture
def tracking_uri(tmp_path: Path, _empty_store: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite store in ``tmp_path``; cwd and MLFLOW_TRACKING_URI point at it."""
    db = tmp_path / "mlflow.db"
    shutil.copyfile(_empty_store, db)
    yield from _using_store(f"sqlite:///{db}", tmp_path, monkeypatch)


def _using_store(uri: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point cwd and MLFLOW_TRACKING_URI (and MLflow's fluent API) at ``uri`` for one test."""
    monkeypatch.chdir(folder)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    import mlflow

    mlflow.set_tracking_uri(uri)
    yield uri
    if mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)  # back to MLFLOW_TRACKING_URI / the default
    # mlflow.set_experiment sets a process-wide experiment (and MLFLOW_EXPERIMENT_ID): the next
    # test's fresh store does not hold it, and its fluent runs would fail.
    import mlflow.tracking.fluent

    mlflow.tracking.fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


@pytest.fixture
def client(tracking_uri: str):
    """An MlflowClient on the test's SQLite store."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def log_curves(client, experiment_id: str, metrics: Mapping[str, Sequence[float]], *,
               params: Mapping[str, str] | None = None, tags: Mapping[str, str] | None = None,
               run_name: str | None = None, steps: Mapping[str, Sequence[int]] | None = None,
               terminate: bool = True) -> str:
    """Log one run whose metric ``name`` has value ``metrics[name][i]`` at step ``i`` (or at
    ``steps[name][i]``), in one ``log_batch``; returns the run id. ``terminate=False`` leaves the
    run RUNNING."""
    from mlflow.entities import Metric, Param

    run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags or {}))
    now = int(time.time() * 1000)
    points = []
    for name, values in metrics.items():
        at = (steps or {}).get(name) or range(len(values))
        points.extend(Metric(name, float(v), now + i, int(s))
                      for i, (s, v) in enumerate(zip(at, values, strict=True)))
    for start in range(0, len(points), 1000):  # MLflow accepts at most 1000 metrics a batch
        client.log_batch(run.info.run_id, metrics=points[start:start + 1000],
                         params=[Param(k, str(v)) for k, v in (params or {}).items()]
                         if start == 0 else [])
    if not points and params:
        client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
    if terminate:
        client.set_terminated(run.info.run_id)
    return run.info.run_id


@dataclass(frozen=True)
class MlflowServer:
    """A running ``mlflow server``: ``uri`` (HTTP) and ``backend_uri`` (its SQLite store)."""

    uri: str
    backend_uri: str
    port: int
    process: subprocess.Popen


def _wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {process.returncode}:\n"
                               f"{log.read_text(errors='replace')[-3000:]}")
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"mlflow server did not become healthy in {timeout:.0f}s:\n"
                       f"{log.read_text(errors='replace')[-3000:]}")


def _start_server(folder: Path, backend: str) -> Iterator[MlflowServer]:
    """Run ``mlflow server`` on ``backend`` at a free port until the generator is closed."""
    port = free_port()
    log = folder / "server.log"
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow_bin) if mlflow_bin.exists() else "mlflow", "server",
               "--backend-store-uri", backend, "--artifacts-destination", str(folder / "artifacts"),
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    # No job runner and huey consumers (GenAI jobs): a dozen processes these tests never use.
    env = {**os.environ, "MLFLOW_TRACKING_URI": backend, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=folder, stdout=out, stderr=subprocess.STDOUT,
                                   env=env, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(uri, process, log)
        yield MlflowServer(uri, backend, port, process)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # our own session: the server and its workers
            try:
                process.wait(timeout=5)  # uvicorn's graceful shutdown can idle for longer
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory, _empty_store: Path
                  ) -> Iterator[MlflowServer]:
    """A real ``mlflow server`` on 127.0.0.1 (free port) for the session; torn down afterwards."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    db = folder / "mlflow.db"
    shutil.copyfile(_empty_store, db)
    yield from _start_server(folder, f"sqlite:///{db}")


@pytest.fixture
def server_client(mlflow_server: MlflowServer):
    """An MlflowClient talking HTTP to the session's ``mlflow server``."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server.uri)


# ---------------------------------------------------------------------------------------------
# PostgreSQL: a throwaway cluster (tests/postgres_cluster.py), a fresh database per test, a server

@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster for the session (as ``nobody`` when root), stopped and removed after.

    Skipped, with the reason, only where PostgreSQL's binaries or MLflow's driver are missing
    (``.ci/run`` installs both, so CI always runs these tests).
    """
    if postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    from sqlalchemy.dialects import registry

    try:  # the driver SQLAlchemy loads for postgresql:// (psycopg on 2.1, psycopg2 on 2.0)
        registry.load("postgresql").import_dbapi()
    except ImportError as exc:
        pytest.skip(f"no PostgreSQL driver ({exc}): pip install -e '.[postgres]'")
    folder = Path(tempfile.mkdtemp(prefix="mlflow-plateau-pg-"))  # /tmp: reachable by nobody
    cluster = PostgresCluster.start(folder)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def _pg_template(postgres: PostgresCluster) -> str:
    """A database with MLflow's migrated schema, copied for each test (migrations take seconds)."""
    return migrated_template(postgres)


def new_pg_database(cluster: PostgresCluster, template: str) -> str:
    """A fresh database with MLflow's schema; returns its URI."""
    return cluster.database(f"t_{uuid.uuid4().hex[:12]}", template=template)


@pytest.fixture
def pg_tracking_uri(tmp_path: Path, postgres: PostgresCluster, _pg_template: str,
                    monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Like ``tracking_uri``, on a fresh PostgreSQL database (``postgresql://`` store)."""
    yield from _using_store(new_pg_database(postgres, _pg_template), tmp_path, monkeypatch)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresCluster,
              _pg_template: str) -> Iterator[MlflowServer]:
    """A real ``mlflow server`` backed by PostgreSQL for the session (``backend_uri`` is its
    database). Tests sharing it use their own experiment names (``unique_name``)."""
    folder = tmp_path_factory.mktemp("mlflow-pg-server")
    yield from _start_server(folder, new_pg_database(postgres, _pg_template))


@dataclass(frozen=True)
class Backend:
    """One tracking backend a test runs on: ``uri`` to give the tool, ``sql_uri`` the database
    holding the runs (the same URI for a SQL store, the server's store for a server)."""

    name: str
    uri: str
    sql_uri: str

    @property
    def is_server(self) -> bool:
        return self.uri.startswith("http")

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.uri)


BACKENDS = ["sqlite", "postgresql", "server-postgresql"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Backend:
    """The test runs three times: on a SQLite store, a PostgreSQL store and an ``mlflow server``
    backed by PostgreSQL (shared by the session: use ``unique_name`` for experiments)."""
    if request.param == "sqlite":
        uri = request.getfixturevalue("tracking_uri")
        return Backend("sqlite", uri, uri)
    if request.param == "postgresql":
        uri = request.getfixturevalue("pg_tracking_uri")
        return Backend("postgresql", uri, uri)
    server = request.getfixturevalue("pg_server")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    import mlflow

    mlflow.set_tracking_uri(server.uri)
    request.addfinalizer(lambda: mlflow.set_tracking_uri(None))
    return Backend("server-postgresql", server.uri, server.backend_uri)
