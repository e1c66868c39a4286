"""How fast ``mlflow-plateau diagnose`` reads, diagnoses and writes a real tracking store (issue 5).

    python benchmarks/diagnose_speed.py --runs 1000             # SQLite, HTTP, one table
    python benchmarks/diagnose_speed.py --runs 1000 --memory    # plus peak RSS on 10,000 runs
    python benchmarks/diagnose_speed.py --backend postgresql    # the same on PostgreSQL (+ Spark)

Everything is measured in one run on the same store, so the ratios compare like with like (the
absolute times of a shared machine are noise). The store (``benchmarks/make_store.py``: Keras-like
runs, 4 metrics per epoch) is built once under ``--store`` and reused; building it writes with
SQLite's ``synchronous=OFF`` (it is a throwaway fixture), every measurement uses MLflow's defaults.
Each phase that writes starts from a fresh copy of the built database, so none sees another's
diagnoses, except re-diagnosis, which runs on the store the first diagnosis left.

Phases (SQLite): 1. the naive client loop (``search_runs``, then ``get_metric_history`` per run and
metric; read only), 2. a raw SQL ``SELECT`` of the same rows (the floor), 3. ``read_run_curves``
after listing the runs, 4. ``diagnose_runs(artifacts="json")`` end to end (list, read, compute,
write metrics/tags/``diagnosis.json``), 5. the floor of writing: one bare ``log_batch`` per run with
the payload a diagnosis writes (its metrics, ``forecast/*`` and ``best/*`` included, and tags),
5b. the same payload written as ``diagnose`` writes a SQL store (``batch_writes``: 100 runs a
transaction), 6. ``artifacts="all"`` (images and HTML) on a subset, scaled to all runs, and each artifact
rendered alone per run (``--cost-runs``), 7. re-diagnosing the unchanged experiment. Then the
same store behind
a ``mlflow server`` on 127.0.0.1 (naive loop vs ours, on ``--http-runs`` runs). ``--memory``
diagnoses ``--memory-runs`` runs in a child process and prints its peak RSS.

``--backend postgresql`` builds the same store in a throwaway PostgreSQL cluster
(``tests/postgres_cluster.py``, PostgreSQL's default durability: ``fsync`` and
``synchronous_commit`` on; building it alone commits asynchronously) and reports the same rows,
where each phase that writes starts from a fresh ``CREATE DATABASE ... TEMPLATE`` copy, plus: the
public reader ``read_histories``, MLflow's own batched read (``search_runs`` + the store's
``get_metric_history_bulk`` per metric, 100 runs a call: what the server's bulk endpoint does),
``spark.diagnose_experiment`` in ``local[2]``, and the same store behind a PostgreSQL-backed
``mlflow server``: the naive loop vs ours over HTTP, the requests and rows a second the server
sustains, and a diagnosis over HTTP (requests per run), from which docs/benchmarks.md derives the bound
on Spark executors.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXPERIMENT = "plateau-benchmark"
TARGETS = {"read_vs_naive": 20.0, "read_vs_floor": 3.0, "e2e_vs_naive": 5.0, "rediag": 10.0,
           "http_vs_naive": 5.0}


# ----------------------------------------------------------------------------------- the store

_BUILD = textwrap.dedent("""
    import sys, sqlalchemy
    sys.path.insert(0, {here!r})
    # A throwaway fixture: no fsync per commit while building it (measurements use the defaults).
    @sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "connect")
    def _fast(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA synchronous=OFF")
    from mlflow.tracking import MlflowClient
    from make_store import build_store
    uri = {uri!r}
    client = MlflowClient(tracking_uri=uri)
    if client.get_experiment_by_name({exp!r}) is None:
        client.create_experiment({exp!r}, artifact_location={artifacts!r})
    build_store(uri, {runs}, {epochs}, {exp!r}, seed=0, quiet=True)
""")


def build(folder: Path, runs: int, epochs: int) -> Path:
    """``folder/pristine.db`` with ``runs`` runs (built once; reused when it has them)."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "pristine.db"
    marker = folder / f"built-{runs}x{epochs}"
    if db.exists() and marker.exists():
        return db
    for stale in (db, *folder.glob("built-*")):
        stale.unlink(missing_ok=True)
    shutil.rmtree(folder / "artifacts", ignore_errors=True)
    t0 = time.perf_counter()
    code = _BUILD.format(here=str(HERE), uri=f"sqlite:///{db}", exp=EXPERIMENT, runs=runs,
                         epochs=epochs, artifacts=(folder / "artifacts").as_uri())
    subprocess.run([sys.executable, "-c", code], check=True, cwd=folder)
    marker.touch()
    print(f"built {runs} runs x {epochs} epochs x 4 metrics in {time.perf_counter() - t0:.0f} s",
          file=sys.stderr)
    return db


def fresh_copy(pristine: Path, name: str) -> str:
    """A copy of the built store (artifacts cleared), as a tracking URI."""
    target = pristine.with_name(name)
    shutil.copyfile(pristine, target)
    shutil.rmtree(pristine.parent / "artifacts", ignore_errors=True)
    return f"sqlite:///{target}"


# ----------------------------------------------------------------------------------- phases

def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def experiment_id(uri: str) -> str:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri).get_experiment_by_name(EXPERIMENT).experiment_id


def naive_read(uri: str, limit: int | None = None) -> int:
    """search_runs, then get_metric_history per run and metric: the loop users write first."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id(uri)], max_results=min(1000, limit or 1000),
                                  page_token=token)
        runs.extend(page)
        token = page.token
        if not token or (limit and len(runs) >= limit):
            break
    points = 0
    for run in runs[:limit]:
        for key in run.data.metrics:
            points += len(client.get_metric_history(run.info.run_id, key))
    return points


def sql_floor(db: Path) -> int:
    """The same rows with one SELECT on the raw sqlite3 driver: no reading is faster."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT m.run_uuid, m.key, m.step, m.timestamp, m.value, m.is_nan FROM metrics m "
            "JOIN runs r ON r.run_uuid = m.run_uuid JOIN experiments e "
            "ON e.experiment_id = r.experiment_id WHERE e.name = ? AND r.lifecycle_stage = 'active'",
            (EXPERIMENT,)).fetchall()
    return len(rows)


def our_read(uri: str, limit: int | None = None) -> int:
    """What diagnose does to read: list the experiment's runs, then all their histories at once
    (``history.read_curves`` takes the runs the listing returned; ``read_run_curves``, which
    takes bare ids, would fetch each run again over HTTP to learn its metric names)."""
    from mlflow.tracking import MlflowClient

    from mlflow_plateau.tracking import iter_runs
    from mlflow_plateau.tracking.history import read_curves

    client = MlflowClient(tracking_uri=uri)
    pages = iter_runs(client, experiment_id(uri), None, limit or 500)
    runs = next(pages) if limit else [r for page in pages for r in page]
    curves = read_curves(client, uri, runs)
    return sum(len(c) for run in curves.values() for c in run.values())


def diagnose(uri: str, artifacts: str, run_ids: list[str] | None = None) -> tuple[int, int]:
    """diagnose_runs over the experiment (or the ids): (diagnosed, failed)."""
    from mlflow_plateau.tracking import RunFailure, diagnose_runs

    if run_ids is not None:
        results = diagnose_runs(run_ids, tracking_uri=uri, artifacts=artifacts)
    else:
        results = diagnose_runs(experiment_name=EXPERIMENT, tracking_uri=uri, artifacts=artifacts)
    ok = failed = 0
    for result in results:
        if isinstance(result, RunFailure):
            failed += 1
        else:
            ok += 1
    return ok, failed


def artifact_costs(uri: str, run_ids: list[str]) -> dict[str, float]:
    """Seconds per run to render each artifact of ``run_ids`` in this process, one after the
    other (read and diagnosis not counted): ``diagnosis.json``, ``curves.png`` (drawn here, no
    process pool), ``report.html`` (with that PNG embedded, as ``diagnose`` does), the PNG's size."""
    from mlflow.tracking import MlflowClient

    from mlflow_plateau import report
    from mlflow_plateau.tracking.history import read_curves
    from mlflow_plateau.verdict import diagnose_curves

    client = MlflowClient(tracking_uri=uri)
    runs = [client.get_run(rid) for rid in run_ids]
    curves = read_curves(client, uri, runs)
    items = [(run, diagnose_curves(curves[run.info.run_id]), curves[run.info.run_id])
             for run in runs]
    t0 = time.perf_counter()
    for _, d, _ in items:
        report.diagnosis_json(d)
    t1 = time.perf_counter()
    pngs = [report.curves_png(d, c) for _, d, c in items]
    t2 = time.perf_counter()
    for (run, d, c), png in zip(items, pngs, strict=True):
        report.report_html(d, c, run_name=run.info.run_name, params=dict(run.data.params),
                           tags={}, png=png)
    t3 = time.perf_counter()
    n = len(items)
    return {"json": (t1 - t0) / n, "png": (t2 - t1) / n, "html": (t3 - t2) / n,
            "png_kib": sum(len(p) for p in pngs) / n / 1024}


def _write_payload(uri: str):
    """(run ids, metrics, tags): what ``diagnose`` writes to the first run (its diagnosis metrics,
    ``forecast/*`` and ``best/*`` included, and its tags with a digest), for every run."""
    from mlflow.tracking import MlflowClient

    from mlflow_plateau.tracking import read_run_curves
    from mlflow_plateau.tracking.store import TAG_DIGEST
    from mlflow_plateau.tracking.writing import best_metrics, diagnosis_metrics, diagnosis_tags
    from mlflow_plateau.verdict import diagnose_curves

    client = MlflowClient(tracking_uri=uri)
    ids = [r.info.run_id for r in client.search_runs([experiment_id(uri)], max_results=50000)]
    curves = read_run_curves(ids[:1], tracking_uri=uri)[ids[0]]
    diagnosis = diagnose_curves(curves)
    values = {**diagnosis_metrics(diagnosis), **best_metrics(diagnosis, curves)}
    metrics = {k: float(v) for k, v in values.items() if v is not None}
    tags = {**diagnosis_tags(diagnosis), TAG_DIGEST: "0" * 64}
    return client, ids, metrics, tags


def write_floor(uri: str) -> tuple[int, int, int]:
    """One bare log_batch per run with a diagnosis's payload: MLflow's own cost of the writes.
    Returns (runs, metrics, tags) per call."""
    from mlflow.entities import Metric, RunTag

    client, ids, metrics, tags = _write_payload(uri)
    ts = int(time.time() * 1000)
    for rid in ids:
        client.log_batch(rid, metrics=[Metric(k, v, ts, 0) for k, v in metrics.items()],
                         tags=[RunTag(k, v) for k, v in tags.items()], synchronous=True)
    return len(ids), len(metrics), len(tags)


def batched_writes(uri: str) -> int:
    """The same payload written the way ``diagnose`` writes a SQL store: ``batch_writes.log_many``,
    100 runs a transaction. Returns the runs written."""
    from mlflow_plateau.tracking.batch_writes import log_many
    from mlflow_plateau.tracking.writing import PendingWrite

    client, ids, metrics, tags = _write_payload(uri)
    ts = int(time.time() * 1000)
    failures = log_many(client, [PendingWrite(rid, metrics, tags, ts) for rid in ids])
    assert not failures, failures
    return len(ids)


# ----------------------------------------------------------------------------------- HTTP

def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def mlflow_server(backend_uri: str, folder: Path):
    import requests

    port = free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow_bin) if mlflow_bin.exists() else "mlflow", "server", "--backend-store-uri",
           backend_uri, "--artifacts-destination", str(folder / "server-artifacts"),
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = (folder / "server.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited ({proc.returncode}), see {log.name}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(url + "/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not start in 120 s")
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


# ----------------------------------------------------------------------------------- memory

_MEMORY = textwrap.dedent("""
    import resource, time
    from mlflow_plateau.tracking import RunFailure, diagnose_runs
    t0 = time.perf_counter()
    ok = failed = 0
    for r in diagnose_runs(experiment_name={exp!r}, tracking_uri={uri!r}, artifacts="json"):
        failed += isinstance(r, RunFailure)
        ok += not isinstance(r, RunFailure)
    print(ok, failed, time.perf_counter() - t0,
          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
""")


def memory(folder: Path, runs: int, epochs: int) -> None:
    pristine = build(folder, runs, epochs)
    uri = fresh_copy(pristine, "work.db")
    out = subprocess.run([sys.executable, "-c", _MEMORY.format(exp=EXPERIMENT, uri=uri)],
                         check=True, capture_output=True, text=True).stdout.split()
    ok, failed, seconds, peak_kib = int(out[0]), int(out[1]), float(out[2]), int(out[3])
    peak_mib = peak_kib / 1024
    print(f"\nmemory: diagnose_runs over {runs} runs x {epochs} epochs x 4 metrics "
          f"(artifacts json, written): {ok} diagnosed, {failed} failed in {seconds:.0f} s; "
          f"peak RSS of the process {peak_mib:.0f} MiB (target < 1024 MiB: "
          f"{'met' if peak_mib < 1024 else 'MISSED'})")


# ----------------------------------------------------------------------------------- main

def machine() -> str:
    import mlflow

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{platform.machine()}, {os.cpu_count()} CPUs (load {load:.1f}), "
            f"Python {platform.python_version()}, MLflow {mlflow.__version__}, "
            f"SQLite {sqlite3.sqlite_version}")


def verdict(ratio: float, target: float) -> str:
    return f"{ratio:6.1f}x  (target >= {target:g}x: {'met' if ratio >= target else 'MISSED'})"


# ----------------------------------------------------------------------------------- PostgreSQL

_BUILD_PG = textwrap.dedent("""
    import sys
    sys.path.insert(0, {here!r})
    from mlflow.tracking import MlflowClient
    from make_store import build_store
    uri = {uri!r}
    client = MlflowClient(tracking_uri=uri)
    if client.get_experiment_by_name({exp!r}) is None:
        client.create_experiment({exp!r}, artifact_location={artifacts!r})
    build_store(uri, {runs}, {epochs}, {exp!r}, seed=0, quiet=True)
""")


SEED_RUNS = 50


class PgStore:
    """The benchmark store in a throwaway cluster: a pristine database and template copies."""

    def __init__(self, folder: Path) -> None:
        sys.path.insert(0, str(HERE.parent / "tests"))
        from postgres_cluster import PostgresCluster, migrated_template

        self.folder = folder
        self.pg_folder = Path(tempfile.mkdtemp(prefix="plateau-bench-pg-"))
        self.cluster = PostgresCluster.start(self.pg_folder, fsync=True)
        self.template = migrated_template(self.cluster)
        self.pending: list[str] = []

    def build(self, runs: int, epochs: int, name: str = "pristine", copies: int = 0) -> str:
        """Database ``name`` with ``runs`` runs, then ``copies`` copies of it (``self.copy()``).

        ``SEED_RUNS`` runs are logged through MLflow (``make_store``); the rest are cloned from
        them in SQL with fresh run ids (every table keyed by ``run_uuid``), because logging
        thousands of runs through MLflow takes most of an hour on a shared 2-CPU machine. The
        copies are made before anything connects to ``name`` (a template must be idle).
        """
        uri = self.cluster.database(name, template=self.template)
        seed = SEED_RUNS if runs % SEED_RUNS == 0 else runs
        # Building is not measured: commit without waiting for the disk (libpq's options).
        code = _BUILD_PG.format(here=str(HERE), uri=uri + "?options=-csynchronous_commit%3Doff",
                                exp=EXPERIMENT, runs=seed, epochs=epochs,
                                artifacts=(self.folder / "artifacts").as_uri())
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=self.folder)
        if runs > seed:
            self._clone(name, runs // seed - 1)
        self.cluster.sql("VACUUM ANALYZE", database=name)
        print(f"built {runs} runs x {epochs} epochs x 4 metrics in PostgreSQL ({seed} logged "
              f"through MLflow, the rest cloned) in {time.perf_counter() - t0:.0f} s",
              file=sys.stderr)
        self.pending = [self.cluster.database(f"copy{i}_{name}", template=name)
                        for i in range(copies)]
        return uri

    def _clone(self, name: str, times: int) -> None:
        tables = self.cluster.sql(
            "SELECT table_name FROM information_schema.columns WHERE column_name = 'run_uuid' "
            "AND table_schema = 'public'", database=name).split()
        statements = []
        for table in ["runs", *[t for t in tables if t != "runs"]]:
            columns = self.cluster.sql(
                f"SELECT column_name FROM information_schema.columns WHERE table_name = '{table}' "
                "AND table_schema = 'public' ORDER BY ordinal_position", database=name).split()
            new = "md5(run_uuid || '-' || g)"
            values = [new if c == "run_uuid" else
                      f"replace(artifact_uri, run_uuid, {new})" if c == "artifact_uri" else c
                      for c in columns]
            statements.append(f"INSERT INTO {table} ({', '.join(columns)}) SELECT "
                              f"{', '.join(values)} FROM {table}, generate_series(1, {times}) g")
        self.cluster.sql("; ".join(statements), database=name)

    def copy(self) -> str:
        shutil.rmtree(self.folder / "artifacts", ignore_errors=True)
        return self.pending.pop(0)

    def floor(self, uri: str) -> int:
        import psycopg

        with psycopg.connect(uri) as conn:
            rows = conn.execute(
                "SELECT m.run_uuid, m.key, m.step, m.timestamp, m.value, m.is_nan FROM metrics m "
                "JOIN runs r ON r.run_uuid = m.run_uuid JOIN experiments e "
                "ON e.experiment_id = r.experiment_id WHERE e.name = %s "
                "AND r.lifecycle_stage = 'active'", (EXPERIMENT,)).fetchall()
        return len(rows)

    def close(self) -> None:
        self.cluster.stop()
        shutil.rmtree(self.pg_folder, ignore_errors=True)


def public_read(uri: str) -> int:
    from mlflow_plateau import read_histories

    return len(read_histories(experiment_name=EXPERIMENT, tracking_uri=uri))


def mlflow_bulk_read(uri: str) -> int:
    """MLflow's own batched read: search_runs pages, then the store's get_metric_history_bulk
    per metric key, 100 runs a call (the server's bulk endpoint does the same)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    store = client._tracking_client.store
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id(uri)], max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    keys = sorted({k for r in runs for k in r.data.metrics})
    ids = [r.info.run_id for r in runs]
    points = 0
    for key in keys:
        for i in range(0, len(ids), 100):
            points += len(store.get_metric_history_bulk(ids[i:i + 100], key, 10**9))
    return points


def spark_diagnose(uri: str) -> tuple[int, int]:
    from mlflow_plateau.spark import diagnose_experiment, spark_session

    spark = spark_session("local[2]", app_name="plateau-benchmark")
    rows = diagnose_experiment(spark, experiment_name=EXPERIMENT, tracking_uri=uri,
                               artifacts="json").collect()
    failed = sum(r["error"] is not None for r in rows)
    return len(rows) - failed, failed


def server_requests(log: Path) -> int:
    """Requests the server has answered so far (uvicorn's access lines in its log)."""
    return sum(1 for line in log.read_text(errors="replace").splitlines() if '" 200' in line
               or '" 404' in line or '" 400' in line) if log.exists() else 0


def main_postgresql(args: argparse.Namespace, folder: Path) -> None:
    store = PgStore(folder)
    try:
        _main_postgresql(args, folder, store)
    finally:
        store.close()


def _main_postgresql(args: argparse.Namespace, folder: Path, store: PgStore) -> None:
    from mlflow.tracking import MlflowClient

    n = args.runs
    store.build(n, args.epochs, copies=8)
    uri = store.copy()  # the reads run on a copy: the pristine database stays idle
    os.chdir(folder)
    MlflowClient(tracking_uri=uri).search_experiments()  # imports, once
    import mlflow_plateau.report  # noqa: F401

    t_naive, points = timed(naive_read, uri)
    t_floor, rows = timed(store.floor, uri)
    t_read, ours = timed(our_read, uri)
    t_public, public = timed(public_read, uri)
    t_bulk, bulk = timed(mlflow_bulk_read, uri)
    assert ours == points == rows == public == bulk, (ours, points, rows, public, bulk)

    work = store.copy()
    t_diag, (ok, failed) = timed(diagnose, work, "json")
    t_rediag, (ok2, _) = timed(diagnose, work, "json")
    t_write, (_, n_metrics, n_tags) = timed(write_floor, store.copy())
    t_batched, _ = timed(batched_writes, store.copy())
    images = min(args.image_runs, n)
    img_uri = store.copy()
    ids = [r.info.run_id for r in MlflowClient(tracking_uri=img_uri).search_runs(
        [experiment_id(img_uri)], max_results=images)]
    t_img, (_, failed_img) = timed(diagnose, img_uri, "all", ids)
    rows_spark = []
    if not args.no_spark:
        spark_uri = store.copy()
        from mlflow_plateau.spark import spark_session

        spark_session("local[2]", app_name="plateau-benchmark")  # JVM start: not measured
        t_spark, (ok_s, failed_s) = timed(spark_diagnose, spark_uri)
        rows_spark = [(f"8. Spark local[2] diagnose_experiment, --artifacts json ({ok_s} ok, "
                       f"{failed_s} failed)", t_spark)]

    print(f"\nmachine: {machine()}")
    print(f"store: PostgreSQL {store.cluster.bin.parent.name} (fsync on, synchronous_commit on), "
          f"{n} runs x {args.epochs} epochs x 4 metrics = {points:,} points\n")
    table = [
        ("1. naive read: search_runs + get_metric_history per run, metric", t_naive),
        ("1b. MLflow batched: search_runs + store.get_metric_history_bulk per metric", t_bulk),
        ("2. raw SQL SELECT of the same rows (floor, psycopg)", t_floor),
        ("3. mlflow-plateau read (list runs + read their histories)", t_read),
        ("3b. public reader: read_histories(experiment_name=...) -> DataFrame", t_public),
        (f"4. diagnose end to end, --artifacts json ({ok} ok, {failed} failed)", t_diag),
        (f"5. floor of the writes: one bare log_batch per run ({n_metrics} metrics, "
         f"{n_tags} tags)", t_write),
        ("5b. the same payload, 100 runs a transaction (batch_writes, as diagnose writes)",
         t_batched),
        (f"6. diagnose --artifacts all: {images} runs ({failed_img} failed) in {t_img:.2f} s, "
         f"scaled x{n / images:g}", t_img * n / images),
        (f"7. re-diagnose the unchanged experiment ({ok2} ok)", t_rediag),
        *rows_spark,
    ]
    width = max(len(r[0]) for r in table)
    for label, seconds in table:
        print(f"  {label:<{width}}  {seconds:8.2f} s  {1000 * seconds / n:7.2f} ms/run")
    # PostgreSQL's targets are the floor, end to end, re-diagnosis and memory (issue 14); the read
    # vs naive and HTTP targets are SQLite's, so those ratios are printed without one here.
    print("\nratios (same run, same store):")
    print(f"  read vs naive            {t_naive / t_read:6.1f}x")
    print(f"  read vs MLflow batched   {t_bulk / t_read:6.1f}x")
    print(f"  public reader vs naive   {t_naive / t_public:6.1f}x; vs MLflow batched "
          f"{t_bulk / t_public:.1f}x")
    floor_ratio = t_read / t_floor
    print(f"  read vs SQL floor        {floor_ratio:6.1f}x slower  (target <= 3x: "
          f"{'met' if floor_ratio <= 3 else 'MISSED'})")
    print(f"  public reader vs floor   {t_public / t_floor:6.1f}x slower")
    print(f"  end to end vs naive read {verdict(t_naive / t_diag, TARGETS['e2e_vs_naive'])}")
    print(f"  first vs re-diagnose     {verdict(t_diag / t_rediag, TARGETS['rediag'])}")
    print(f"  writes floor / end to end {t_write / t_diag:5.0%}  (MLflow's log_batch: its commits)")
    print(f"  log_batch per run vs 100 runs a transaction: {t_write / t_batched:5.1f}x")
    if rows_spark:
        print(f"  Spark local[2] vs one process {t_diag / rows_spark[0][1]:6.2f}x")

    if not args.no_http:
        http_runs = min(args.http_runs, n)
        backend = store.copy()
        with mlflow_server(backend, folder) as url:
            log = folder / "server.log"
            naive_read(url, limit=1)
            t_hn, p_hn = timed(naive_read, url, http_runs)
            t_ho, p_ho = timed(our_read, url, http_runs)
            assert p_hn == p_ho, (p_hn, p_ho)
            # Load the server sustains: our read of every run (bulk requests, THREADS at once).
            before = server_requests(log)
            t_all, p_all = timed(our_read, url)
            read_requests = server_requests(log) - before
            # A diagnosis over HTTP, as one Spark task does it: requests per run.
            diag_ids = [r.info.run_id for r in MlflowClient(tracking_uri=url).search_runs(
                [experiment_id(url)], max_results=http_runs)]
            before = server_requests(log)
            t_hd, (ok_h, _) = timed(diagnose, url, "json", diag_ids)
            diag_requests = server_requests(log) - before
        print(f"\nHTTP (mlflow server --workers 1 on PostgreSQL, 127.0.0.1, first {http_runs} runs):")
        print(f"  naive read  {t_hn:8.2f} s  {1000 * t_hn / http_runs:7.1f} ms/run")
        print(f"  our read    {t_ho:8.2f} s  {1000 * t_ho / http_runs:7.1f} ms/run")
        print(f"  ratio       {t_hn / t_ho:6.1f}x")
        print(f"  server load, reading all {n} runs: {read_requests} requests in {t_all:.2f} s = "
              f"{read_requests / t_all:.1f} req/s, {p_all / t_all:,.0f} rows/s")
        print(f"  server load, diagnosing {ok_h} runs (json): {diag_requests} requests in "
              f"{t_hd:.2f} s = {diag_requests / max(ok_h, 1):.1f} req/run, "
              f"{diag_requests / t_hd:.1f} req/s, {ok_h / t_hd:.1f} runs/s")

    if args.memory:
        memory_postgresql(store, folder, args.memory_runs, args.memory_epochs)


def memory_postgresql(store: PgStore, folder: Path, runs: int, epochs: int) -> None:
    uri = store.build(runs, epochs, name="memory")
    out = subprocess.run([sys.executable, "-c", _MEMORY.format(exp=EXPERIMENT, uri=uri)],
                         check=True, capture_output=True, text=True, cwd=folder).stdout.split()
    ok, failed, seconds, peak_mib = int(out[0]), int(out[1]), float(out[2]), int(out[3]) / 1024
    print(f"\nmemory (PostgreSQL): diagnose_runs over {runs} runs x {epochs} epochs x 4 metrics "
          f"(artifacts json, written): {ok} diagnosed, {failed} failed in {seconds:.0f} s; "
          f"peak RSS {peak_mib:.0f} MiB (target < 1024 MiB: "
          f"{'met' if peak_mib < 1024 else 'MISSED'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--store", type=Path, default=None,
                        help="folder for the store (kept and reused; default: a temp folder)")
    parser.add_argument("--image-runs", type=int, default=100,
                        help="runs diagnosed with images and HTML (scaled to --runs)")
    parser.add_argument("--cost-runs", type=int, default=30,
                        help="runs whose artifacts are rendered one by one, each timed")
    parser.add_argument("--http-runs", type=int, default=100,
                        help="runs read over HTTP (the naive loop costs ~0.25 s a run)")
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument("--memory", action="store_true", help="also measure peak RSS")
    parser.add_argument("--memory-runs", type=int, default=10000)
    parser.add_argument("--memory-epochs", type=int, default=30)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite",
                        help="where the store lives (postgresql: a throwaway local cluster)")
    parser.add_argument("--no-spark", action="store_true", help="postgresql: skip the Spark row")
    args = parser.parse_args()

    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    tmp = None
    if args.store is None:
        tmp = tempfile.TemporaryDirectory(prefix="plateau-bench-")
        args.store = Path(tmp.name)
    folder = args.store.resolve()
    if args.backend == "postgresql":
        folder.mkdir(parents=True, exist_ok=True)
        main_postgresql(args, folder)
        if tmp is not None:
            tmp.cleanup()
        return
    pristine = build(folder / f"sqlite-{args.runs}x{args.epochs}", args.runs, args.epochs)
    os.chdir(pristine.parent)  # MLflow's defaults (./mlruns) land next to the store

    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=f"sqlite:///{pristine}").search_experiments()  # imports, once
    import mlflow_plateau.report  # noqa: F401  (matplotlib: imported once, not inside a phase)

    uri = f"sqlite:///{pristine}"
    n = args.runs
    t_naive, points = timed(naive_read, uri)
    t_floor, rows = timed(sql_floor, pristine)
    t_read, ours = timed(our_read, uri)
    assert ours == points == rows, (ours, points, rows)

    work = fresh_copy(pristine, "work.db")
    t_diag, (ok, failed) = timed(diagnose, work, "json")
    t_rediag, (ok2, _) = timed(diagnose, work, "json")

    t_write, (_, n_metrics, n_tags) = timed(write_floor, fresh_copy(pristine, "floor.db"))
    t_batched, _ = timed(batched_writes, fresh_copy(pristine, "batched.db"))

    images = min(args.image_runs, n)
    img_uri = fresh_copy(pristine, "images.db")
    ids = [r.info.run_id for r in MlflowClient(tracking_uri=img_uri).search_runs(
        [experiment_id(img_uri)], max_results=images)]
    t_img_json, _ = timed(diagnose, fresh_copy(pristine, "images-json.db"), "json", ids)
    shutil.rmtree(pristine.parent / "artifacts", ignore_errors=True)
    t_img, (_, failed_img) = timed(diagnose, img_uri, "all", ids)
    costs = artifact_costs(fresh_copy(pristine, "costs.db"), ids[:args.cost_runs])

    print(f"\nmachine: {machine()}")
    print(f"store: SQLite, {n} runs x {args.epochs} epochs x 4 metrics = {points:,} points\n")
    rows_out = [
        ("1. naive read: search_runs + get_metric_history per run, metric", t_naive),
        ("2. raw SQL SELECT of the same rows (floor)", t_floor),
        ("3. mlflow-plateau read (list runs + read their histories)", t_read),
        (f"4. diagnose end to end, --artifacts json ({ok} ok, {failed} failed)", t_diag),
        (f"5. floor of the writes: one bare log_batch per run ({n_metrics} metrics, "
         f"{n_tags} tags)", t_write),
        ("5b. the same payload, 100 runs a transaction (batch_writes, as diagnose writes)",
         t_batched),
        (f"6. diagnose --artifacts all: {images} runs ({failed_img} failed) in {t_img:.2f} s, "
         f"scaled x{n / images:g}",
         t_img * n / images),
        (f"7. re-diagnose the unchanged experiment ({ok2} ok)", t_rediag),
    ]
    width = max(len(r[0]) for r in rows_out)
    for label, seconds in rows_out:
        print(f"  {label:<{width}}  {seconds:8.2f} s  {1000 * seconds / n:7.2f} ms/run")
    print("\nratios (same run, same store):")
    print(f"  read vs naive            {verdict(t_naive / t_read, TARGETS['read_vs_naive'])}")
    floor_ratio = t_read / t_floor
    print(f"  read vs SQL floor        {floor_ratio:6.1f}x slower  (target <= 3x: "
          f"{'met' if floor_ratio <= 3 else 'MISSED'})")
    print(f"  end to end vs naive read {verdict(t_naive / t_diag, TARGETS['e2e_vs_naive'])}")
    print(f"  first vs re-diagnose     {verdict(t_diag / t_rediag, TARGETS['rediag'])}")
    print(f"  writes floor / end to end {t_write / t_diag:5.0%}  (MLflow's log_batch: its commits)")
    print(f"  log_batch per run vs 100 runs a transaction: {t_write / t_batched:5.1f}x")
    print(f"  images+HTML vs json      {t_img / t_img_json:6.1f}x the json-only time "
          f"on the same {images} runs (before issue 13: 8.8x)")
    print(f"  --artifacts all vs naive read, per run: {1000 * t_img / images:.1f} ms vs "
          f"{1000 * t_naive / n:.1f} ms = {(t_img / images) / (t_naive / n):.2f}x "
          f"(aim: <= 1x)")
    print(f"\nper-run cost of each artifact, rendered in this process one after the other "
          f"({min(args.cost_runs, images)} runs):")
    print(f"  diagnosis.json {1000 * costs['json']:7.2f} ms")
    print(f"  curves.png     {1000 * costs['png']:7.2f} ms  ({costs['png_kib']:.0f} KiB)")
    print(f"  report.html    {1000 * costs['html']:7.2f} ms  (the PNG embedded, not redrawn)")

    if not args.no_http:
        http_runs = min(args.http_runs, n)
        backend = fresh_copy(pristine, "http.db")
        with mlflow_server(backend, pristine.parent) as url:
            naive_read(url, limit=1)  # the server's first request loads its stores
            t_hn, p_hn = timed(naive_read, url, http_runs)
            t_ho, p_ho = timed(our_read, url, http_runs)
        assert p_hn == p_ho, (p_hn, p_ho)
        print(f"\nHTTP (mlflow server on 127.0.0.1, same store, first {http_runs} runs):")
        print(f"  naive read  {t_hn:8.2f} s  {1000 * t_hn / http_runs:7.1f} ms/run")
        print(f"  our read    {t_ho:8.2f} s  {1000 * t_ho / http_runs:7.1f} ms/run")
        print(f"  ratio       {verdict(t_hn / t_ho, TARGETS['http_vs_naive'])}")

    if args.memory:
        memory(folder / f"sqlite-{args.memory_runs}x{args.memory_epochs}", args.memory_runs,
               args.memory_epochs)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
