"""The MLflow adapter: read metric histories of tracked runs, write diagnoses back.

This is the only package that talks to MLflow tracking stores (see DESIGN.md "Layers"). Its modules:
``store`` (URIs, clients, names, ``RunFailure``, redaction), ``history`` (reading), ``writing``
(metrics, tags, artifacts of a diagnosis; ``log_history``), ``runs`` (``diagnose_run``,
``diagnose_runs``), ``scaling`` (``diagnose_scaling``).

Reading (``read_run_curves``) takes the fastest path that returns exactly what
``MlflowClient.get_metric_history`` returns, point for point:

- SQL stores (``sqlite``, ``postgresql``, ``mysql``, ``mssql`` URIs): read-only ``SELECT`` on MLflow's
  ``metrics`` table, 500 run ids per ``IN`` clause, ordered like the client orders a history
  (timestamp, step, value); NaN is stored as ``is_nan = 1``.
- HTTP servers: the server's bulk endpoint ``/ajax-api/2.0/mlflow/metrics/get-history-bulk`` (one
  metric key, at most 100 runs and 25,000 points a request, same order as the client); a request
  that could be truncated is split, a single run's history that could be truncated is read with the
  client, and a server without the endpoint falls back to the client.
- Anything else (file stores, Databricks): ``get_metric_history`` per run and key in a thread pool.

Every path turns points into ``Curve.from_points(name, steps, values, order=timestamps)``, so a step
logged twice keeps the newest point (by timestamp, then by the client's order).

Writing (``log_diagnosis``) puts the names of DESIGN.md on the run: metrics at step 0, tags and
artifacts under ``plateau/``. It is idempotent: it compares with what the run already has and logs
only changed values, in one ``log_batch``; artifacts are re-uploaded only when their content would
change, one ``log_artifact`` per complete file (never seen half-written). The metric timestamps are
a function of the run as read (``writing._metric_timestamp``), so two processes writing the same
diagnosis write identical rows, which MLflow stores once. When the artifact store refuses the
upload, the metrics and tags are written all the same and the run is reported as failed.
Two tags beyond DESIGN.md's list are written, both internal and documented here:

- ``plateau.digest``: SHA-256 of the inputs (``unchanged.input_digest``: version, options, artifact
  level, RUNNING or not, the run's curves bit for bit, what the report shows); written last, with
  the metrics and tags, once the artifacts are uploaded. A run whose digest equals that of its
  current inputs is neither recomputed nor written again (``log_diagnosis``, which is not given
  the options, digests the diagnosis, its curves and the artifact level instead).
- ``plateau.partial``: ``true`` while the run was still RUNNING when diagnosed (set back to
  ``false`` once a finished run is re-diagnosed).

A metric whose value does not apply (e.g. ``plateau/stop_epoch`` when EarlyStopping would not have
stopped) is not logged; if the run already has that metric from an earlier diagnosis, NaN is logged
so the stale value does not stay current.

Scaling (``diagnose_scaling``) groups the runs of an experiment that differ only in a size param,
fits a learning curve per group, logs one summary run per group (tag ``plateau.kind = scaling``,
found again by its tags on re-runs) and tags the members (``scaling.verdict``, ``scaling.group``,
metrics ``scaling/slope``, ``scaling/exponent``, ``scaling/gain_at_2x``).

Credentials in a tracking URI (``user:password@host``) never appear in messages (``redact``).
"""

from __future__ import annotations

from .history import read_run_curves
from .runs import diagnose_run, diagnose_runs, iter_runs
from .scaling import ScalingGroup, diagnose_scaling
from .store import (
    GAP_METRICS,
    MAX_TAG_CHARS,
    OWN_PREFIXES,
    PAGE_SIZE,
    PLATEAU_METRICS,
    SCALING_METRICS,
    TAG_DIGEST,
    TAG_KIND,
    TAG_MONITOR,
    TAG_PARTIAL,
    TAG_SCALING_GROUP,
    TAG_SCALING_SIZE_PARAM,
    TAG_SCALING_VERDICT,
    TAG_SUMMARY,
    TAG_VERDICT,
    TAG_VERSION,
    Artifacts,
    RunFailure,
    check_reachable,
    one_line,
    redact,
    resolve_tracking_uri,
    user_curves,
)
from .writing import diagnosis_json, diagnosis_metrics, diagnosis_tags, log_diagnosis, log_history

__all__ = [
    "GAP_METRICS",
    "MAX_TAG_CHARS",
    "OWN_PREFIXES",
    "PAGE_SIZE",
    "PLATEAU_METRICS",
    "SCALING_METRICS",
    "TAG_DIGEST",
    "TAG_KIND",
    "TAG_MONITOR",
    "TAG_PARTIAL",
    "TAG_SCALING_GROUP",
    "TAG_SCALING_SIZE_PARAM",
    "TAG_SCALING_VERDICT",
    "TAG_SUMMARY",
    "TAG_VERDICT",
    "TAG_VERSION",
    "Artifacts",
    "RunFailure",
    "ScalingGroup",
    "check_reachable",
    "diagnose_run",
    "diagnose_runs",
    "diagnose_scaling",
    "diagnosis_json",
    "diagnosis_metrics",
    "diagnosis_tags",
    "iter_runs",
    "log_diagnosis",
    "log_history",
    "one_line",
    "read_run_curves",
    "redact",
    "resolve_tracking_uri",
    "user_curves",
]
