"""The MLflow adapter: read metric histories of tracked runs, write diagnoses back.

This is the only package that talks to MLflow tracking stores (see docs/design.md "Layers"). Its modules:
``store`` (URIs, clients, names, ``RunFailure``, redaction), ``history`` (reading), ``writing``
(metrics, tags, artifacts of a diagnosis; ``log_history``), ``runs`` (``diagnose_run``,
``diagnose_runs``), ``frames`` (``read_histories``, ``iter_histories``, ``history_frame``:
histories as pandas DataFrames, the public face of the batched reader), ``scaling``
(``diagnose_scaling``), ``unchanged`` (recognizing a run whose
diagnosis is current), ``comparison`` (``compare_runs``), ``ids`` (run id prefixes), ``ui``
(MLflow UI links, the runs table's plateau view). Readers never create a store: a SQLite file or
local folder that does not exist raises ``StoreNotFound`` (``store.existing_store``).

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

Writing (``log_diagnosis``) puts the names of docs/design.md on the run: metrics at step 0, tags and
artifacts under ``plateau/``. It is idempotent: it compares with what the run already has and logs
only changed values, in one ``log_batch``; artifacts are re-uploaded only when their content would
change, one ``log_artifact`` per complete file (never seen half-written). The metric timestamps are
a function of the run as read (``writing._metric_timestamp``), so two processes writing the same
diagnosis write identical rows, which MLflow stores once. When the artifact store refuses the
upload, the metrics and tags are written all the same and the run is reported as failed.
It also writes three internal tags, ``plateau.digest`` (unchanged runs are skipped),
``plateau.history`` (on SQL stores, the same recognized without reading the histories) and
``plateau.partial``, and skips metrics that do not apply: see ``writing``'s docstring. The options
a user gave for a run (monitor, train_metric, mode, num_classes, chance) are kept in
``plateau.options``; every later diagnosis of that run (``diagnose``, ``compare``, the evaluator)
reuses them unless it overrides them, so a default run never silently flips a verdict.

Scaling (``diagnose_scaling``) groups the runs of an experiment that differ only in a size param,
fits a learning curve per group, logs one summary run per group (tag ``plateau.kind = scaling``,
found again by its tags on re-runs) and tags the members (``scaling.verdict``, ``scaling.group``,
metrics ``scaling/slope``, ``scaling/exponent``, ``scaling/gain_at_2x``).

The package imports its modules on first use of a name (``__getattr__``), so that
``tracking.store``'s light checks (an experiment missing from a SQLite store) answer before MLflow
and SciPy are imported.

Credentials in a tracking URI (``user:password@host``) never appear in messages (``redact``).
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "read_run_curves": "history",
    **dict.fromkeys(["history_frame", "iter_histories", "list_run_ids", "read_histories"], "frames"),
    **dict.fromkeys(["diagnose_run", "diagnose_runs", "iter_runs"], "runs"),
    **dict.fromkeys(["ScalingGroup", "diagnose_scaling"], "scaling"),
    **dict.fromkeys([
        "GAP_METRICS", "KIND_CONTAINER", "MAX_TAG_CHARS", "NOT_TRAINING_KINDS", "OWN_PREFIXES",
        "PAGE_SIZE", "PLATEAU_METRICS", "SCALING_METRICS", "TAG_DIGEST", "TAG_KIND", "TAG_MONITOR",
        "TAG_OPTIONS", "TAG_PARTIAL", "BEST_PREFIX", "FORECAST_METRICS", "run_kept_options",
        "TAG_SCALING_GROUP", "TAG_SCALING_SIZE_PARAM", "TAG_SCALING_VERDICT",
        "TAG_SUMMARY", "TAG_VERDICT", "TAG_VERSION", "Artifacts", "RunFailure", "check_reachable",
        "one_line", "redact", "resolve_tracking_uri", "user_curves", "existing_store",
        "missing_store", "StoreNotFound"], "store"),
    **dict.fromkeys(["best_metrics", "diagnosis_json", "diagnosis_metrics", "diagnosis_tags",
                     "log_diagnosis", "log_history"], "writing"),
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first use (PEP 562)."""
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
