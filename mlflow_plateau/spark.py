"""Diagnose an experiment's runs on Spark: run ids spread over tasks, one result row per run.

``diagnose_experiment(spark, experiment_id=... | experiment_name=... | run_ids=[...],
tracking_uri=..., runs_per_task=250, filter_string=None, **options) -> pyspark.sql.DataFrame``;
``spark_session(master)`` builds a session whose Python workers run this interpreter.

- The driver lists the run ids only (``tracking.list_run_ids``: the runs ``diagnose`` would take)
  and makes a DataFrame of them with ``ceil(n / runs_per_task)`` partitions.
- ``mapInPandas`` runs one task per partition. A task calls ``tracking.diagnose_runs`` on its ids:
  it reads the histories by the fastest path it can reach: ``SELECT``s when ``tracking_uri`` is
  the database (e.g. ``postgresql://...``), or when it is an ``http(s)://`` tracking server and
  ``database_uri`` names the server's database and the executor reaches it (a 3-second connect);
  the server's bulk-history endpoint otherwise. It diagnoses them and writes the results back to
  the runs through ``tracking_uri`` (artifacts go where the server puts them). Histories stay in
  the task; only the result rows travel, each with the path its task read by (``read``).
- Writes are idempotent (an unchanged run is recognized by its ``plateau.digest`` tag and written
  identically otherwise), so a task that Spark retries after a failure, or a second call, adds no
  metric rows.
- A run that fails (not found, no validation metric, server unreachable) is a row with its
  ``error``; the job does not fail. Each task bounds MLflow's HTTP retries as the command does
  (``tracking.environment.HTTP_DEFAULTS``) and stops knocking once the server is found down, so
  a server that goes away gives failed rows within moments instead of a hung job.

The result, computed once when this returns (the job has run; the small per-run rows are held by
the returned DataFrame, built from them), has the columns ``run_id``, ``verdict``, ``monitor``,
``summary``, the docs/design.md metric names (``plateau/epoch`` ... ``gap/trend``, doubles, null where a
value does not apply), ``metrics`` (a map of every metric the diagnosis writes, including names
added later, such as ``forecast/*``), ``error`` (null unless the run failed) and ``read`` (how its
task read the histories: ``sql``, ``http`` or ``client``). Save it with
``.write.saveAsTable(...)`` for dashboards.

``options`` (a ``DiagnosisOptions``) or keyword arguments (the diagnosis options, ``monitor``,
``patience``, ..., and ``diagnose_runs``' ``log``, ``artifacts``, ``batch_size``,
``database_uri``); an unknown one or a bad value is a ValueError before any task starts. Each
task runs in ``tracking.environment.command_environment()`` (bounded HTTP retries). Workers import
``mlflow_plateau``: on a cluster, install the package on the executors (see docs/usage.md, the cluster
section).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .options import DiagnosisOptions

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

RUNS_PER_TASK = 250
TEXT_COLUMNS = ("run_id", "verdict", "monitor", "summary")


def _metric_names() -> tuple[str, ...]:
    from .tracking import GAP_METRICS, PLATEAU_METRICS

    return PLATEAU_METRICS + GAP_METRICS


def result_schema():
    """The Spark schema of ``diagnose_experiment``'s result."""
    from pyspark.sql.types import DoubleType, MapType, StringType, StructField, StructType

    return StructType(
        [StructField(name, StringType(), name != "run_id") for name in TEXT_COLUMNS]
        + [StructField(name, DoubleType(), True) for name in _metric_names()]
        + [StructField("metrics", MapType(StringType(), DoubleType(), True), True),
           StructField("error", StringType(), True), StructField("read", StringType(), True)])


def result_row(result: Any) -> dict[str, Any]:
    """One result row from a ``Diagnosis`` or a ``RunFailure`` (the same on every path)."""
    from .tracking import RunFailure, diagnosis_metrics

    row: dict[str, Any] = dict.fromkeys([*TEXT_COLUMNS, *_metric_names(), "metrics", "error",
                                         "read"])
    row["run_id"] = result.run_id
    if isinstance(result, RunFailure):
        row["error"] = result.reason
        return row
    metrics = {k: float(v) for k, v in diagnosis_metrics(result).items()
               if v is not None and math.isfinite(v)}
    row.update(verdict=result.verdict, monitor=result.monitor, summary=result.summary,
               metrics=metrics)
    row.update({name: metrics.get(name) for name in _metric_names()})
    return row


def _diagnose_partition(tracking_uri: str, options: DiagnosisOptions, batch: dict[str, Any]):
    """The function each task runs: its run ids in, its result rows out (pandas frames)."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import pandas as pd

        _quiet_pandas_warning()
        from .tracking import diagnose_runs
        from .tracking.environment import command_environment

        ids = [str(r) for frame in batches for r in frame["run_id"]]
        if not ids:
            return
        with command_environment():
            results = diagnose_runs(ids, options, tracking_uri=tracking_uri, **batch)
            if results.read_note:  # to the executor's log: why this task read through the server
                print(f"mlflow-plateau: database_uri not used ({results.read_note})",
                      file=sys.stderr)
            rows = [{**result_row(r), "read": results.read_path} for r in results]
        columns = [*TEXT_COLUMNS, *_metric_names(), "metrics", "error", "read"]
        yield pd.DataFrame(rows, columns=columns)

    return run


# diagnose_runs' own arguments a Spark job passes on to each task, beside the diagnosis options.
BATCH_OPTIONS = ("log", "artifacts", "batch_size", "database_uri")


def _split_options(options: DiagnosisOptions | None, given: dict[str, Any]
                   ) -> tuple[DiagnosisOptions, dict[str, Any]]:
    """The diagnosis options and the batch options of ``given``, checked before any task starts
    (an unknown name or a bad value is a ValueError here, not a failure in every task)."""
    batch = {k: v for k, v in given.items() if k in BATCH_OPTIONS}
    try:
        diagnosis = DiagnosisOptions.of(options, **{k: v for k, v in given.items()
                                                    if k not in BATCH_OPTIONS})
    except TypeError as exc:
        raise ValueError(f"{exc}; or one of {', '.join(BATCH_OPTIONS)}") from None
    from .tracking.history import check_database_uri
    from .tracking.store import check_artifacts

    check_artifacts(batch.get("artifacts", "all"))

    if batch.get("database_uri"):  # refused here, not in every task
        check_database_uri(batch["database_uri"])
    return diagnosis, batch


def diagnose_experiment(spark: SparkSession, *, experiment_id: str | None = None,
                        experiment_name: str | None = None, tracking_uri: str | None = None,
                        filter_string: str | None = None, run_ids: Sequence[str] | None = None,
                        runs_per_task: int = RUNS_PER_TASK, options: DiagnosisOptions | None = None,
                        **option_values: Any) -> DataFrame:
    """Diagnose an experiment's runs (or the ``run_ids`` given) on ``spark``, writing the results
    back to each run; one result row per run (module docstring)."""
    from .tracking import list_run_ids, resolve_tracking_uri
    from .tracking.runs import selected_run_ids

    if runs_per_task < 1:
        raise ValueError(f"runs_per_task must be >= 1, not {runs_per_task}")
    diagnosis_options, batch = _split_options(options, option_values)
    given = selected_run_ids(run_ids, experiment_name, experiment_id, filter_string)
    uri = resolve_tracking_uri(tracking_uri)  # the executors get the driver's URI, not their own
    if given is not None:
        ids = list(dict.fromkeys(given))
    else:
        ids = list_run_ids(experiment_name=experiment_name, experiment_id=experiment_id,
                           filter_string=filter_string, tracking_uri=uri)
    _quiet_pandas_warning()
    schema = result_schema()
    if not ids:
        return spark.createDataFrame([], schema)
    tasks = max(1, math.ceil(len(ids) / runs_per_task))
    chunks = [ids[i * len(ids) // tasks:(i + 1) * len(ids) // tasks] for i in range(tasks)]
    runs = spark.sparkContext.parallelize(chunks, tasks).flatMap(lambda chunk: [(r,) for r in chunk])
    frame = spark.createDataFrame(runs, "run_id string")
    results = frame.mapInPandas(_diagnose_partition(uri, diagnosis_options, batch), schema)
    # Run the job once: each action on a lazy result would diagnose (and write) again.
    rows = results.collect()
    return spark.createDataFrame(rows, schema)


def _quiet_pandas_warning() -> None:
    """pyspark 4 warns on every pandas UDF that it "does not yet fully support pandas >= 3.0.0".
    What this module uses of it (mapInPandas with plain string, double and map columns) is
    covered by the tests on pandas 3: the warning is noise here."""
    import warnings

    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                            category=FutureWarning)


def spark_session(master: str | None = None, app_name: str = "mlflow-plateau") -> SparkSession:
    """A SparkSession whose Python workers run this interpreter (``PYSPARK_PYTHON`` unless set),
    so they import the same ``mlflow_plateau`` and MLflow as the driver."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    _quiet_pandas_warning()
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    return (builder.config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate())
