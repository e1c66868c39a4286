"""Where runs live: tracking URIs, clients, reachability, the options kept with a run.

Everything the other modules of ``tracking`` share about a store: the limits of MLflow's APIs,
resolving and checking a tracking URI (a store that does not exist is never created to read it),
the probe that turns a server that is down into one clear line, and ``get_runs`` (runs by id, an
id that fails becoming its ``RunFailure``). The names written to MLflow are ``names.py``'s and the
failures ``failures.py``'s; both are re-exported here for the modules that import them from here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..options import KEPT, DiagnosisOptions, kept_from_tag
from .failures import (  # noqa: F401  (re-exported: the rest of tracking imports them from here)
    UNREACHABLE,
    Breaker,
    RunFailure,
    no_curve_of_its_own,
    one_line,
    parent_without_curve,
    redact,
)
from .file_store import file_store_folder, open_file_store
from .names import (  # noqa: F401  (re-exported, as above)
    BEST_PREFIX,
    FORECAST_METRICS,
    GAP_METRICS,
    KIND_CONTAINER,
    MAX_TAG_CHARS,
    NOT_TRAINING_KINDS,
    OWN_PREFIXES,
    PLATEAU_METRICS,
    SCALING_METRICS,
    TAG_DIGEST,
    TAG_HISTORY,
    TAG_KIND,
    TAG_MONITOR,
    TAG_OPTIONS,
    TAG_PARENT,
    TAG_PARTIAL,
    TAG_SCALING_GROUP,
    TAG_SCALING_METRIC,
    TAG_SCALING_SIZE_PARAM,
    TAG_SCALING_VERDICT,
    TAG_SUMMARY,
    TAG_VERDICT,
    TAG_VERSION,
    is_own_key,
    user_curves,
)

if TYPE_CHECKING:  # mlflow is imported lazily: `import mlflow_plateau` must stay light
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

Artifacts = Literal["all", "json", "none"]


def check_artifacts(artifacts: object) -> None:
    """ValueError unless ``artifacts`` is one of the artifact levels (``Artifacts``)."""
    if artifacts not in ("all", "json", "none"):
        raise ValueError(f"artifacts must be 'all', 'json' or 'none', not {artifacts!r}")

KEPT_OPTIONS = KEPT


def kept_options(tags: Mapping[str, str]) -> dict:
    """The options stored with a run's diagnosis (``plateau.options``); {} when none or garbled,
    and without any value the options would refuse."""
    return kept_from_tag(tags.get(TAG_OPTIONS))


def with_kept_options(options: DiagnosisOptions, tags: Mapping[str, str]) -> DiagnosisOptions:
    """``options`` with every unset (None) kept option filled in from the run's tag."""
    return options.with_kept(kept_options(tags))


def run_kept_options(run_id: str, tracking_uri: str | None = None) -> dict:
    """The options kept with one run's earlier diagnosis ({} for a run without them)."""
    uri = existing_store(tracking_uri)
    return kept_options(client_for(uri).get_run(run_id).data.tags)

SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
SQL_CHUNK = 500           # run ids per IN clause (SQLite allows 999 bound parameters by default)
HTTP_BULK_RUNS = 100      # MLflow's GetMetricHistoryBulk limit on run ids per request
HTTP_BULK_MAX = 25000     # ... and on points per response
HTTP_BULK_ENDPOINT = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
PAGE_SIZE = 500           # runs per search_runs page and per diagnosis batch (bounds memory)
THREADS = 8               # concurrent requests where a store is read one call at a time


def writer_threads(uri: str) -> int:
    """Threads that diagnose and write runs side by side against ``uri``.

    SQLite serializes writers: 2. A SQL database driven from this process (``postgresql://``, ...)
    keeps MLflow's store code, SQLAlchemy and the diagnosis on this process's cores, where more
    threads than twice the cores only contend for the GIL (8 threads cost 40% more CPU than 2 on
    2 cores, timed on PostgreSQL): at most twice the cores. A server does the store's work itself,
    and the threads mostly wait on it: ``THREADS``.
    """
    import os

    if uri_scheme(uri) == "sqlite":
        return 2
    if is_sql(uri):
        return max(2, min(THREADS, 2 * (os.cpu_count() or 1)))
    return THREADS



# ---------------------------------------------------------------------------------------------
# URIs, clients, messages

def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """The URI given, else MLFLOW_TRACKING_URI, else MLflow's own default (``sqlite:///mlflow.db``);
    a plain ``mlruns/`` folder is made readable first (``file_store.open_file_store``)."""
    if not tracking_uri:
        import mlflow

        tracking_uri = mlflow.get_tracking_uri()
    open_file_store(tracking_uri)
    return tracking_uri


class StoreNotFound(ValueError):
    """The tracking store named (or MLflow's default one) does not exist: reading it would create
    it, since MLflow creates a SQLite file or an ``mlruns/`` folder merely by opening it."""


_SQLITE = re.compile(r"sqlite(\+\w+)?:///", re.IGNORECASE)
_NOT_FOLDERS = ("databricks",)  # a URI without "://" that names a service, not a folder


def _sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` URI (None for other URIs and in-memory databases)."""
    match = _SQLITE.match(uri)
    if not match:
        return None
    path = uri[match.end():].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def _uri_source(tracking_uri: str | None) -> tuple[str, str]:
    """The URI a command reads and where it comes from, in words ("" when given); MLflow is
    imported only when neither ``tracking_uri`` nor ``MLFLOW_TRACKING_URI`` names a store."""
    import os

    if tracking_uri:
        return tracking_uri, ""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"], " (from MLFLOW_TRACKING_URI)"
    import mlflow

    return mlflow.get_tracking_uri(), " (MLflow's default here: MLFLOW_TRACKING_URI is not set)"


def missing_store(tracking_uri: str | None = None) -> str | None:
    """Why the store ``tracking_uri`` resolves to certainly does not exist (one line naming it and
    how to point at one), or None when it exists or is not a local store (a server, a database
    server: those answer for themselves). Nothing is created or written to find out."""
    uri, source = _uri_source(tracking_uri)
    path = _sqlite_path(uri)
    what = "file"
    if path is None:
        path, what = file_store_folder(uri), "folder"
        if path is None or uri.lower().startswith(_NOT_FOLDERS):
            return None
    if path.exists():
        return None
    return (f"no tracking store at {redact(uri)}{source}: no such {what} {path.absolute()}; "
            "point at your store with --tracking-uri URI or MLFLOW_TRACKING_URI")


def existing_store(tracking_uri: str | None = None) -> str:
    """``resolve_tracking_uri`` for reading: raises ``StoreNotFound`` (``missing_store``'s line)
    instead of letting MLflow create an empty store where the user's runs are not."""
    problem = missing_store(tracking_uri)
    if problem is not None:
        raise StoreNotFound(problem)
    return resolve_tracking_uri(tracking_uri)


SUGGESTED_NAMES = 5  # experiment names listed when none is close to the one asked for


def experiment_not_found(name: str, uri: str, names: Sequence[str]) -> str:
    """One line for an experiment ``name`` missing from the store at ``uri`` whose experiments are
    ``names``: the close names (``difflib``), else a few of the names there are."""
    import difflib

    head = f"experiment {name!r} not found in {redact(uri)}"
    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.6)
    if not close:  # case is what a typo of a name most often gets wrong
        lower = {n.lower(): n for n in names}
        close = [lower[n] for n in difflib.get_close_matches(name.lower(), list(lower), n=3,
                                                             cutoff=0.6)]
    if close:
        return f"{head}; did you mean {' or '.join(repr(n) for n in close)}?"
    if not names:
        return f"{head}; it has no experiments"
    shown = ", ".join(repr(n) for n in sorted(names)[:SUGGESTED_NAMES])
    more = f" and {len(names) - SUGGESTED_NAMES} more" if len(names) > SUGGESTED_NAMES else ""
    return f"{head}; its experiments: {shown}{more}"


def experiment_names(client: MlflowClient) -> list[str]:
    """The names of the store's active experiments (for ``experiment_not_found``)."""
    from mlflow.entities import ViewType

    names: list[str] = []
    token = None
    while True:
        page = client.search_experiments(view_type=ViewType.ACTIVE_ONLY, page_token=token)
        names.extend(e.name for e in page)
        token = page.token
        if not token or len(names) >= 10000:
            return names


def missing_experiment(tracking_uri: str | None, name: str) -> str | None:
    """``experiment_not_found``'s line when a SQLite store certainly has no experiment ``name``,
    found without importing MLflow; else None (MLflow answers instead).

    Answers only for a SQLite store given as ``tracking_uri`` or ``MLFLOW_TRACKING_URI`` that
    exists (``missing_store`` tells one that does not), read with the standard library in
    read-only mode, so nothing is created. Any other store, MLflow's default store, or a database
    that cannot be read that way returns None.
    """
    import os
    import sqlite3

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    path = _sqlite_path(uri) if uri.startswith("sqlite:///") and "?" not in uri else None
    if path is None or not path.is_file():
        return None
    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT name, lifecycle_stage FROM experiments").fetchall()
    except sqlite3.Error:
        return None
    if any(row[0] == name for row in rows):
        return None
    return experiment_not_found(name, uri, [n for n, stage in rows if stage == "active"])


def uri_scheme(uri: str) -> str:
    return uri.split(":", 1)[0].split("+", 1)[0].lower() if "://" in uri else "file"


def is_sql(uri: str) -> bool:
    return uri_scheme(uri) in SQL_SCHEMES


def is_http(uri: str) -> bool:
    return uri_scheme(uri) in ("http", "https")


def client_for(uri: str) -> MlflowClient:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Raise ConnectionError (one clear line) when an HTTP tracking server does not answer.

    MLflow's client retries a refused connection for minutes; probing first makes a server that is
    down a prompt, clear failure. Any HTTP answer (even 401/404) counts as reachable.
    """
    if not is_http(uri):
        return
    import requests

    try:
        requests.get(uri.rstrip("/") + "/health", timeout=timeout)
    except requests.RequestException as exc:
        kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
        raise ConnectionError(f"tracking server {redact(uri)} is not reachable ({kind})") from None


def not_training(run: Run) -> str | None:
    """How a message names ``run`` when it holds no training curve by design, else None."""
    kind = run.data.tags.get(TAG_KIND)
    return NOT_TRAINING_KINDS.get(kind) if kind else None


def _run_not_found(exc: Exception) -> bool:
    code = getattr(exc, "error_code", "")
    return code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE") or "not found" in str(
        exc).lower()


RUN_ID_PATTERN = re.compile(r"[a-zA-Z0-9][\w\-]{0,255}", re.ASCII)  # MLflow's own run-id rule


def end_run(client: MlflowClient, run_id: str, status: str = "FINISHED") -> None:
    """``set_terminated`` without MLflow's "View run ... at: URL" lines on stdout: that URL
    carries the tracking URI's credentials, and library users' stdout is theirs."""
    import os

    name = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"
    before = os.environ.get(name)
    os.environ[name] = "true"
    try:
        client.set_terminated(run_id, status=status)
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def get_runs(client: MlflowClient, run_ids: Sequence[str],
              breaker: Breaker | None = None) -> list[Run | RunFailure]:
    """``get_run`` for each id, THREADS at a time; an id that fails becomes a RunFailure.

    With a ``breaker``, the ids after the first that could not reach the store fail at once.
    """
    from mlflow.exceptions import MlflowException

    breaker = breaker or Breaker()

    def fetch(run_id: str) -> Run | RunFailure:
        if not RUN_ID_PATTERN.fullmatch(run_id):
            return RunFailure(run_id, "not a valid run id")
        if breaker.reason is not None:
            return breaker.failure(run_id)
        try:
            return client.get_run(run_id)
        except MlflowException as exc:
            if _run_not_found(exc):
                return RunFailure(run_id, "run not found")
            failure = RunFailure(run_id, one_line(exc))
        except Exception as exc:  # requests/urllib3 errors that MLflow lets through
            failure = RunFailure(run_id, one_line(exc))
        breaker.record(failure)
        return failure

    if len(run_ids) <= 1:
        return [fetch(r) for r in run_ids]
    first = fetch(run_ids[0])  # a dead server costs one request, not THREADS at once
    with ThreadPoolExecutor(THREADS) as pool:
        return [first, *pool.map(fetch, run_ids[1:])]

