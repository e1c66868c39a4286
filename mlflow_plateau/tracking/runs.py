"""Diagnosing tracked runs: select them, read their histories in batches, diagnose, write back.

``diagnose_run`` diagnoses one run and raises ValueError naming the run when it cannot;
``diagnose_runs`` diagnoses the runs given or an experiment's active runs (optionally filtered),
``PAGE_SIZE`` runs at a time so memory stays bounded, yielding a ``Diagnosis`` or a ``RunFailure``
per run: one run's failure never stops the batch. The scaling summary runs this package logs are
skipped, and so are container runs (tag ``plateau.kind = container``: runs that only group
others). Runs are computed in a small thread pool; on SQL stores their metrics and tags are
written many runs per transaction (``batch_writes``), and a run is reported once written.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..curves import Curve, as_epochs
from ..options import DiagnosisOptions
from ..verdict import Diagnosis, diagnose_run_history, refused_without_monitor
from .batch_writes import RUNS_PER_COMMIT, batch_writes, log_many
from .history import database_engine, gc_paused, read_curves, sql_engine, sql_history_stats
from .listing import sql_experiment_run_ids, sql_runs
from .store import (
    PAGE_SIZE,
    RUN_ID_PATTERN,
    TAG_DIGEST,
    TAG_HISTORY,
    TAG_PARENT,
    Artifacts,
    Breaker,
    RunFailure,
    check_artifacts,
    check_reachable,
    client_for,
    existing_store,
    experiment_names,
    experiment_not_found,
    get_runs,
    is_http,
    is_own_key,
    is_sql,
    no_curve_of_its_own,
    not_training,
    one_line,
    parent_without_curve,
    redact,
    with_kept_options,
    writer_threads,
)
from .unchanged import history_digest, input_digest, stored_diagnosis
from .writing import ArtifactsNotWritten, PendingWrite, commit_write, prepare_write, write_diagnosis

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Deferred:
    """A diagnosis whose artifacts are uploaded and whose metrics and tags are still to log."""

    diagnosis: Diagnosis
    write: PendingWrite


def _run_options(options: DiagnosisOptions, run: Run) -> tuple[DiagnosisOptions, bool]:
    """The options that hold for ``run`` (those given for it before, kept in plateau.options,
    unless the caller overrides them) and whether its diagnosis is partial (still running)."""
    return with_kept_options(options, run.data.tags), run.info.status == "RUNNING"


_HOW_TO_MONITOR = "pass monitor= (--monitor) to diagnose a training metric"


def _diagnose_one(client: MlflowClient, run: Run, curves: Mapping[str, Curve],
                  options: DiagnosisOptions,
                  log: bool, artifacts: str, defer: bool = False, history: str | None = None
                  ) -> Diagnosis | RunFailure | _Deferred:
    """One run's diagnosis, written to it with ``log`` (with ``defer``, only its artifacts: the
    metrics and tags are returned for ``_settled`` to log with other runs'). ``history``: the
    run's ``unchanged.history_digest`` from before its curves were read, written beside the
    digest."""
    run_id = run.info.run_id
    if run.info.lifecycle_stage == "deleted":
        return RunFailure(run_id, "run is deleted")
    kind = not_training(run)
    if kind is not None:
        return RunFailure(run_id, f"{kind}, not a training run")
    if not curves:
        return RunFailure(run_id, "no metric history")
    options, partial = _run_options(options, run)
    refusal = refused_without_monitor(curves, options, _HOW_TO_MONITOR)
    if refusal:  # before any digest or write
        return RunFailure(run_id, refusal)
    digest = None
    if log:
        # An unchanged run (same curves, options, version, artifact level) already holds what a
        # recomputation would write: skip the computing, the rendering and the writing.
        digest = input_digest(curves, options.as_dict(), artifacts, partial, run)
        if run.data.tags.get(TAG_DIGEST) == digest:
            stored = stored_diagnosis(run) if artifacts != "none" else None
            if stored is not None:
                if history is None or run.data.tags.get(TAG_HISTORY) == history:
                    return stored
                # Current, but not recognizable from its summary yet (diagnosed by an earlier
                # version, or a point logged again left the curves as they were): tag it so.
                tag = PendingWrite(run_id, {}, {TAG_HISTORY: history}, 0)
                if defer:
                    return _Deferred(stored, tag)
                with contextlib.suppress(Exception):  # only the next re-diagnosis is slower
                    commit_write(client, tag)
                return stored
            log = False  # the store is current; the diagnosis is recomputed only to return it
    # The point mlflow.tensorflow re-logs after restoring the best weights is not an epoch, and
    # global steps beside an epoch metric are not epochs: read the curves by epoch here, so the
    # report's plots and the best/ values see the same curves as the diagnosis.
    curves = as_epochs(dict(curves))
    try:
        diagnosis = diagnose_run_history(curves, options, run_id=run_id, partial=partial,
                                         how_to_monitor=_HOW_TO_MONITOR)
    except ValueError as exc:
        return RunFailure(run_id, one_line(exc))
    except Exception as exc:  # a bug or numerical failure on one run must not stop the batch
        return RunFailure(run_id, f"could not diagnose: {type(exc).__name__}: {one_line(exc)}")
    if log:
        try:
            if defer:
                return _Deferred(diagnosis, prepare_write(client, run, diagnosis, curves,
                                                           artifacts, partial, digest, history))
            write_diagnosis(client, run, diagnosis, curves, artifacts, partial=partial, digest=digest,
                   history=history)
        except ArtifactsNotWritten as exc:
            return RunFailure(run_id, f"diagnosis written as metrics and tags, but {exc.reason}")
        except Exception as exc:  # a failed write names this run; the batch goes on
            return RunFailure(run_id, f"could not write the diagnosis: {one_line(exc)}")
    return diagnosis


def diagnose_run(run_id: str, options: DiagnosisOptions | None = None, *,
                 tracking_uri: str | None = None, log: bool = True, artifacts: Artifacts = "all",
                 **option_values: Any) -> Diagnosis:
    """Diagnose one tracked run (and, with ``log``, write the result to it) with ``options``, or
    the ``DiagnosisOptions`` the keyword arguments make (``monitor=``, ``patience=``, ...).

    Raises ValueError naming the run and the reason when it cannot be diagnosed (unknown, deleted,
    no metrics, no validation metric, server not reachable).
    """
    options = DiagnosisOptions.of(options, **option_values)
    check_artifacts(artifacts)
    uri = existing_store(tracking_uri)
    try:
        check_reachable(uri)
    except ConnectionError as exc:
        raise ValueError(f"run {run_id}: {exc}") from None
    client = client_for(uri)
    (run,) = get_runs(client, [run_id])
    if isinstance(run, RunFailure):
        raise ValueError(f"run {run_id}: {run.reason}")
    result = _diagnose_one(client, run, read_curves(client, uri, [run])[run_id], options, log,
                           artifacts)
    if isinstance(result, RunFailure):
        raise ValueError(f"run {run_id}: {result.reason}")
    return result


def experiment_id_of(client: MlflowClient, experiment_name: str | None,
                   experiment_id: str | None) -> str:
    from mlflow.exceptions import MlflowException

    if experiment_name is not None:
        exp = client.get_experiment_by_name(experiment_name)
        if exp is None:  # named with the store and the close names: a typo, or the wrong store
            raise ValueError(experiment_not_found(experiment_name, client.tracking_uri,
                                                  experiment_names(client)))
        label = f"experiment {experiment_name!r}"
    else:
        try:
            exp = client.get_experiment(str(experiment_id))
        except MlflowException:
            raise ValueError(f"experiment id {experiment_id!r} not found in "
                             f"{redact(client.tracking_uri)}") from None
        label = f"experiment id {experiment_id!r}"
    if exp.lifecycle_stage == "deleted":
        # Its runs are deleted with it: an empty batch would look like success.
        raise ValueError(f"{label} is deleted (restore it with 'mlflow experiments restore "
                         f"--experiment-id {exp.experiment_id}')")
    return exp.experiment_id


def iter_runs(client: MlflowClient, experiment_id: str, filter_string: str | None = None,
              page_size: int = PAGE_SIZE) -> Iterator[list[Run]]:
    """Active runs of an experiment, one ``search_runs`` page (list of runs) at a time."""
    from mlflow.entities import ViewType

    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string=filter_string or "",
                                  run_view_type=ViewType.ACTIVE_ONLY, max_results=page_size,
                                  page_token=token)
        if page:
            yield list(page)
        token = page.token
        if not token:
            return


def _runs_by_id(client: MlflowClient, experiment_id: str, run_ids: Sequence[str]) -> list[Run]:
    """The runs with these ids (MLflow-issued, hex) in one search, in the order given."""
    from mlflow.entities import ViewType

    quoted = ", ".join(f"'{r}'" for r in run_ids if RUN_ID_PATTERN.fullmatch(r))
    found = client.search_runs([experiment_id], filter_string=f"attributes.run_id IN ({quoted})",
                               run_view_type=ViewType.ACTIVE_ONLY, max_results=len(run_ids))
    by_id = {r.info.run_id: r for r in found}
    return [by_id[r] for r in run_ids if r in by_id]


def _pages_of(ids: Sequence[str], page_size: int,
              read_page: Callable[[Sequence[str]], list[Run]]) -> Iterator[list[Run]]:
    """The runs of ``ids`` read ``page_size`` at a time, in that order (empty pages skipped)."""
    for start in range(0, len(ids), page_size):
        page = read_page(ids[start:start + page_size])
        if page:
            yield page


def _filtered_pages(client: MlflowClient, experiment_id: str, filter_string: str,
                    page_size: int) -> Iterator[list[Run]]:
    """Pages of the runs a filter selects *now*: the ids are listed first, because writing the
    diagnoses can change which runs a filter on plateau.* tags matches, and offset paging over a
    changing result would skip runs."""
    ids = [r.info.run_id for page in iter_runs(client, experiment_id, filter_string, page_size)
           for r in page]
    return _pages_of(ids, page_size, lambda chunk: _runs_by_id(client, experiment_id, chunk))


def _sql_or_searched_pages(client: MlflowClient, uri: str, experiment_id: str,
                           page_size: int) -> Iterator[list[Run]]:
    """An experiment's active runs listed with SQL (``listing``), or with ``search_runs`` where
    the store's tables cannot be read that way (a schema this version does not know): if the
    listing fails, ``search_runs`` pages the experiment; if reading a page fails, that page is
    read by id with ``search_runs``, and the next page tries SQL again (a failed SELECT costs
    little, and a passing error such as "database is locked" should not slow the whole batch)."""
    engine = sql_engine(client, uri)
    try:
        ids = sql_experiment_run_ids(engine, experiment_id)
    except Exception as exc:
        _logger.warning("experiment %s: the store's tables could not be listed with SQL (%s); "
                        "listing its runs with MLflow's search_runs instead (slower, same runs)",
                        experiment_id, one_line(exc))
        return iter_runs(client, experiment_id, None, page_size)

    def read_page(chunk: Sequence[str]) -> list[Run]:
        try:
            return sql_runs(engine, chunk)
        except Exception as exc:
            _logger.warning("experiment %s: %d runs could not be read with SQL (%s); reading "
                            "them with MLflow's search_runs instead", experiment_id, len(chunk),
                            one_line(exc))
            return _runs_by_id(client, experiment_id, chunk)

    return _pages_of(ids, page_size, read_page)


def selected_run_ids(run_ids: Sequence[str] | str | None, experiment_name: str | None,
                     experiment_id: str | None, filter_string: str | None) -> list[str] | None:
    """The run ids asked for (None when an experiment is), or ValueError for a bad selection."""
    if isinstance(run_ids, str):  # one id given bare
        run_ids = [run_ids]
    by_ids = run_ids is not None and len(run_ids) > 0
    by_experiment = experiment_name is not None or experiment_id is not None
    if experiment_name is not None and experiment_id is not None:
        raise ValueError("give an experiment name or an experiment id, not both")
    if by_ids and by_experiment:
        raise ValueError("give run ids or an experiment, not both")
    if not by_ids and not by_experiment:
        raise ValueError("no runs selected: give run ids or an experiment")
    if filter_string and not by_experiment:
        raise ValueError("a filter applies to an experiment's runs: give an experiment")
    return [str(r) for r in run_ids] if by_ids else None


def diagnose_runs(run_ids: Sequence[str] | None = None, options: DiagnosisOptions | None = None,
                  *, experiment_name: str | None = None, experiment_id: str | None = None,
                  filter_string: str | None = None, tracking_uri: str | None = None,
                  log: bool = True, artifacts: Artifacts = "all", batch_size: int = PAGE_SIZE,
                  database_uri: str | None = None, **option_values: Any) -> RunBatch:
    """Diagnose many runs: the ids given, or the active runs of one experiment (optionally filtered),
    with ``options`` or the ``DiagnosisOptions`` the keyword arguments make (checked once, before
    any run is read).

    Returns an iterator (``RunBatch``, which also collects the runs' names) of one ``Diagnosis``
    or ``RunFailure`` per run, in order, reading and writing ``batch_size`` runs at a time so
    memory stays bounded on experiments of any size. Selection errors (no or
    conflicting selectors, unknown experiment, a store that does not exist: ``StoreNotFound``)
    raise ValueError before anything is read; a server
    that is not reachable raises ConnectionError for an experiment and fails each given run.

    ``database_uri``: the tracking server's backend database. Where it can be reached, histories
    are read from it with SQL and everything else goes through ``tracking_uri``; where it cannot,
    they are read through the server as without it (``RunBatch.read_path`` says which: ``"sql"``,
    ``"http"`` or ``"client"``, and ``read_note`` why the database was not used).
    """
    options = DiagnosisOptions.of(options, **option_values)
    check_artifacts(artifacts)
    run_ids = selected_run_ids(run_ids, experiment_name, experiment_id, filter_string)
    uri = existing_store(tracking_uri)
    by_ids = run_ids is not None
    if by_ids:
        ids = list(dict.fromkeys(run_ids))
        try:
            check_reachable(uri)
        except ConnectionError as exc:
            return RunBatch(iter([RunFailure(rid, str(exc)) for rid in ids]))
        client = client_for(uri)
        breaker = Breaker()
        pages: Iterator[list[Run | RunFailure]] = (
            get_runs(client, ids[i:i + batch_size], breaker)
            for i in range(0, len(ids), batch_size))
    else:
        breaker = Breaker()
        check_reachable(uri)
        client = client_for(uri)
        exp_id = experiment_id_of(client, experiment_name, experiment_id)
        if filter_string:
            pages = _filtered_pages(client, exp_id, filter_string, batch_size)
            first = next(pages, None)  # ids listed by the call, first page read: fails here
            pages = itertools.chain([first] if first else [], pages)
        elif is_sql(uri):
            pages = _sql_or_searched_pages(client, uri, exp_id, batch_size)
        else:
            pages = iter_runs(client, exp_id, None, batch_size)
        # Summary and container runs hold no training curve by design: not part of the batch.
        pages = ([r for r in page if not_training(r) is None] for page in pages)
    batch = RunBatch()
    database = None
    batch.read_path = "sql" if is_sql(uri) else ("http" if is_http(uri) else "client")
    if database_uri and not is_sql(uri):
        database, note = database_engine(database_uri)
        if database is not None:
            batch.read_path = "sql"
        else:
            batch.read_note = note
    batch.results = _diagnose_pages(client, uri, batch.named(pages), options, log, artifacts,
                                    breaker, database)
    if not by_ids:  # an experiment's runs: its sweeps' parents hold no curve by design
        batch.results = batch.parents_left_out(batch.results)
    return batch


class RunBatch(Iterator["Diagnosis | RunFailure"]):
    """The results of ``diagnose_runs``, one per run, in order; ``names`` maps the id of every run
    read so far to its name (``""`` when unnamed), for tables that show people names, and
    ``experiments`` to its experiment's id (where to look at it in the UI)."""

    def __init__(self, results: Iterator[Diagnosis | RunFailure] | None = None) -> None:
        self.results: Iterator[Diagnosis | RunFailure] = results or iter(())
        self.names: dict[str, str] = {}
        self.experiments: dict[str, str] = {}  # run id -> its experiment's id, as for names
        self.parents: set[str] = set()     # runs named as the parent of a run read so far
        # Parents of nested runs with no curve of their own, left out of an experiment's batch
        # (known once the batch is done: a parent may be listed before its children).
        self.skipped: list[RunFailure] = []
        self.read_path = "client"      # how histories are read: "sql", "http" or "client"
        self.read_note: str | None = None  # why a database_uri given was not used

    def named(self, pages: Iterator[list[Run | RunFailure]]) -> Iterator[list[Run | RunFailure]]:
        """``pages`` as they are, recording the names of their runs on the way."""
        for page in pages:
            for run in page:
                if not isinstance(run, RunFailure):
                    self.names[run.info.run_id] = run.info.run_name or ""
                    self.experiments[run.info.run_id] = run.info.experiment_id
                    parent = run.data.tags.get(TAG_PARENT)
                    if parent:
                        self.parents.add(parent)
            yield page

    def parents_left_out(self, results: Iterator[Diagnosis | RunFailure]
                         ) -> Iterator[Diagnosis | RunFailure]:
        """``results`` without the failures of parents holding no curve (``skipped``); such
        failures are held until the batch is done, then the others given."""
        held: list[RunFailure] = []  # a parent may be listed before the children naming it
        try:
            for result in results:
                if isinstance(result, RunFailure) and no_curve_of_its_own(result):
                    held.append(result)
                else:
                    yield result
        except Exception:
            # The batch broke off (a store that failed between pages): the failures held so far
            # are still given, before the error that ended it (parents known by then left out).
            yield from self._settled(held)
            raise
        yield from self._settled(held)

    def _settled(self, held: list[RunFailure]) -> Iterator[RunFailure]:
        """The held failures that are not those of a parent known now; parents to ``skipped``."""
        for failure in held:
            if parent_without_curve(failure, self.parents):
                self.skipped.append(failure)
            else:
                yield failure

    def __next__(self) -> Diagnosis | RunFailure:
        return next(self.results)


def _diagnose_pages(client: MlflowClient, uri: str, pages: Iterator[list[Run | RunFailure]],
                    options: DiagnosisOptions, log: bool, artifacts: str, breaker: Breaker,
                    database: object | None = None) -> Iterator[Diagnosis | RunFailure]:
    # Writes wait on the store (a commit, an HTTP round trip): overlap them with the computing and
    # rendering of other runs (store.writer_threads: how many pay off on each kind of store).
    # Where runs are written many per transaction by this thread (batch_writes), nothing waits
    # but the drawing of pictures in the process pool: one thread computes, and more would only
    # contend for the GIL (1,000 SQLite runs, --artifacts json: 8.4 s with 1, 10.9 s with 2).
    # On a SQL store the metrics and tags of up to RUNS_PER_COMMIT runs are logged in one
    # transaction once their artifacts are up (batch_writes); the results wait for that commit.
    defer = log and batch_writes(uri)
    workers = writer_threads(uri) if log else 1
    if defer and artifacts != "all":
        workers = 1
    with ThreadPoolExecutor(workers) as pool:
        yield from _diagnose_pages_with(pool, client, uri, pages, options, log, artifacts,
                                        breaker, database, defer)


def _settled(client: MlflowClient, held: list[Diagnosis | RunFailure | _Deferred]
             ) -> list[Diagnosis | RunFailure]:
    """``held`` with the deferred writes logged together (``batch_writes.log_many``): each a
    ``Diagnosis`` once written, or a ``RunFailure`` naming the run where its write failed."""
    failures = log_many(client, [r.write for r in held if isinstance(r, _Deferred)])
    out: list[Diagnosis | RunFailure] = []
    for result in held:
        if isinstance(result, _Deferred):
            run_id, failure = result.write.run_id, result.write.failure
            if run_id in failures:
                result = RunFailure(run_id, "could not write the diagnosis: "
                                    f"{one_line(failures[run_id])}")
            elif failure is not None:
                reason = ArtifactsNotWritten(failure).reason
                result = RunFailure(run_id, f"diagnosis written as metrics and tags, but {reason}")
            else:
                result = result.diagnosis
        out.append(result)
    return out


def _done(result: Diagnosis) -> Future:
    future: Future = Future()
    future.set_result(result)
    return future


def _recognized(client: MlflowClient, uri: str, runs: Sequence[Run], options: DiagnosisOptions,
                artifacts: str, database: object | None
                ) -> tuple[dict[str, str], dict[str, Diagnosis]]:
    """On a SQL store (or with the server's database): each run's ``history_digest``, and the
    stored diagnoses of the runs it shows unchanged (their histories need not be read)."""
    engine = (sql_engine(client, uri) if is_sql(uri) else database) if runs else None
    if engine is None:
        return {}, {}
    try:
        stats = sql_history_stats(engine, [r.info.run_id for r in runs])
    except Exception:  # a database this cannot summarize: every history is read as before
        return {}, {}
    histories: dict[str, str] = {}
    known: dict[str, Diagnosis] = {}
    with gc_paused():  # thousands of small objects a run: GC passes would double the time
        for run in runs:
            _recognize(run, stats.get(run.info.run_id), options, artifacts, histories, known)
    return histories, known


def _recognize(run: Run, run_stats: tuple | None, options: DiagnosisOptions, artifacts: str,
               histories: dict[str, str], known: dict[str, Diagnosis]) -> None:
    """Add the run's history digest to ``histories`` and, when it shows the run unchanged, its
    stored diagnosis to ``known``."""
    if (run_stats is None or run.info.lifecycle_stage != "active"
            or not_training(run) is not None
            # a run whose logged keys the database lacks is not (all) in it
            or not {k for k in run.data.metrics if not is_own_key(k)} <= {s[0] for s in run_stats}):
        return
    kept, partial = _run_options(options, run)
    history = history_digest(run_stats, kept.as_dict(), artifacts, partial, run)
    histories[run.info.run_id] = history
    tags = run.data.tags
    if tags.get(TAG_HISTORY) == history and TAG_DIGEST in tags:
        stored = stored_diagnosis(run)
        if stored is not None:
            known[run.info.run_id] = stored


def _diagnose_pages_with(pool: ThreadPoolExecutor, client: MlflowClient, uri: str,
                         pages: Iterator[list[Run | RunFailure]], options: DiagnosisOptions, log: bool,
                         artifacts: str, breaker: Breaker, database: object | None = None,
                         defer: bool = False) -> Iterator[Diagnosis | RunFailure]:
    for page in pages:
        if breaker.reason is not None:
            yield from (r if isinstance(r, RunFailure) else breaker.failure(r.info.run_id)
                        for r in page)
            continue
        runs = [r for r in page if not isinstance(r, RunFailure)]
        histories, known = _recognized(client, uri, runs, options, artifacts, database) \
            if log and artifacts != "none" else ({}, {})
        to_read = [r for r in runs if r.info.run_id not in known]
        try:
            curves = read_curves(client, uri, to_read, database) if to_read else {}
        except Exception as exc:  # a read failing for the whole page fails each of its runs
            reason = f"could not read metric histories: {one_line(exc)}"
            failures = [r if isinstance(r, RunFailure) else RunFailure(r.info.run_id, reason)
                        for r in page]
            for failure in failures:
                breaker.record(failure)
            yield from failures
            continue
        futures = [None if isinstance(item, RunFailure) else
                   _done(known[item.info.run_id]) if item.info.run_id in known else
                   pool.submit(_diagnose_one, client, item, curves.get(item.info.run_id, {}),
                               options, log, artifacts, defer, histories.get(item.info.run_id))
                   for item in page]
        del curves  # each task holds its own run's curves; the page's are released as they finish
        held: list[Diagnosis | RunFailure | _Deferred] = []
        waiting = 0  # deferred writes in held
        taken = 0    # futures whose result was taken
        try:
            for item, future in zip(page, futures, strict=True):
                if future is None:
                    result = item
                elif breaker.reason is not None and future.cancel():
                    result = breaker.failure(item.info.run_id)  # not started: no knock on a dead server
                else:
                    result = future.result()
                taken += 1
                held.append(result)
                waiting += isinstance(result, _Deferred)
                if waiting >= RUNS_PER_COMMIT or not waiting:
                    # Written now: held is emptied before yielding, so a caller closing the
                    # iterator at one of these yields does not have them logged again below.
                    done, held, waiting = _settled(client, held), [], 0
                    for settled in done:
                        breaker.record(settled)
                        yield settled
            done, held = _settled(client, held), []
            for settled in done:
                breaker.record(settled)
                yield settled
        finally:
            # Stopped early (the caller closed the iterator, or a run raised): runs whose
            # artifacts are up still get their metrics and tags; runs not started are not started.
            late = [f.result() for f in futures[taken:]
                    if f is not None and not f.cancel() and f.exception() is None]
            unwritten = [r.write for r in held + late if isinstance(r, _Deferred)]
            if unwritten:
                log_many(client, unwritten)
