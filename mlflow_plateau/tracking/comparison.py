"""Comparing tracked runs: which stopped learning first, and why, logged as a comparison run.

``compare_runs`` diagnoses the runs given (or an experiment's active runs, optionally filtered)
without writing anything to them, ranks them (``comparison.compare_diagnoses``), renders the overlay
and the report (``report.comparison_png`` / ``comparison_html``) and, with ``log``, logs one
comparison run in the experiment of the first run compared:

- tags ``plateau.kind = comparison``, ``plateau.compared_runs`` (the compared run ids in the order
  they stopped learning, comma-separated, cut to whole ids under MLflow's tag length limit; the full
  list is in the JSON), ``plateau.first_run``, ``plateau.summary`` (the one-line answer),
  ``plateau.version`` and ``plateau.comparison_key``;
- artifacts ``comparison/overlay.png``, ``comparison/report.html``, ``comparison/comparison.json``.

Comparing the same runs with the same options again updates that comparison run (found by
``plateau.comparison_key``, a hash of the sorted run ids and the options, in any of the compared
runs' experiments: named in another order, it may be in another one) instead of adding another.
Runs that cannot be diagnosed are listed with their reason and the rest compared; fewer than two
runs to compare raises ``TooFewRuns``. The comparison and scaling summary runs this package logs
are never compared.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..comparison import Comparison, RankBy, compare_diagnoses
from ..curves import Curve, as_epochs
from ..options import DiagnosisOptions
from ..verdict import Diagnosis
from . import (
    MAX_TAG_CHARS,
    TAG_KIND,
    TAG_SUMMARY,
    TAG_VERSION,
    RunFailure,
    check_reachable,
    diagnose_runs,
    existing_store,
    iter_runs,
    one_line,
    read_run_curves,
)
from .runs import experiment_id_of, selected_run_ids
from .store import TAG_PARENT, end_run, not_training, parent_without_curve

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

KIND_COMPARISON = "comparison"
TAG_COMPARED_RUNS = "plateau.compared_runs"
TAG_FIRST_RUN = "plateau.first_run"
TAG_COMPARISON_KEY = "plateau.comparison_key"
ARTIFACT_DIR = "comparison"
MAX_COMPARED = 100  # an overlay of more runs is unreadable; narrow the selection with a filter


class TooFewRuns(ValueError):
    """Fewer than two runs could be diagnosed; ``failures`` says why for each run that failed,
    ``diagnosed`` is how many could be."""

    def __init__(self, message: str, failures: Sequence[RunFailure], diagnosed: int = 0) -> None:
        super().__init__(message)
        self.failures = list(failures)
        self.diagnosed = diagnosed


@dataclass(frozen=True)
class ComparisonResult:
    """A comparison of tracked runs: the ranking, the diagnoses behind it, the runs that failed."""

    comparison: Comparison
    diagnoses: list[Diagnosis]
    labels: dict[str, str]                   # run id -> run name shown (id when unnamed)
    failures: list[RunFailure] = field(default_factory=list)
    run_id: str | None = None                # the comparison run (None when not logged)
    experiment_id: str | None = None
    names: dict[str, str] = field(default_factory=dict)  # run id -> run name ("" when unnamed)

    @property
    def answer(self) -> str:
        return self.comparison.answer

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe; each entry of ``runs`` also has its ``run_name`` (None when unnamed), as
        ``diagnose --json`` has: ``label`` is what the table shows, not the name itself."""
        ranked = self.comparison.to_dict()
        ranked["runs"] = [{**r, "run_name": self.names.get(r["key"]) or None}
                          for r in ranked["runs"]]
        return {"comparison_run_id": self.run_id, "experiment_id": self.experiment_id,
                **ranked,
                "failures": [f.to_dict() for f in self.failures],
                "config": self.diagnoses[0].config if self.diagnoses else {}}


def client_for(uri: str) -> MlflowClient:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _labels(runs: Sequence[Run]) -> dict[str, str]:
    """Run id -> the name people read: the run name, with the id's start when names repeat."""
    names = {r.info.run_id: (r.info.run_name or "").strip() for r in runs}
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    return {rid: (name if name and counts[name] == 1 else
                  f"{name} ({rid[:8]})" if name else rid) for rid, name in names.items()}


def _fetch_runs(client: MlflowClient, run_ids: Sequence[str]) -> list[Run | RunFailure]:
    from mlflow.exceptions import MlflowException

    out: list[Run | RunFailure] = []
    for rid in run_ids:
        try:
            out.append(client.get_run(rid))
        except MlflowException as exc:
            code = getattr(exc, "error_code", "")
            missing = code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
            out.append(RunFailure(rid, "run not found" if missing else one_line(exc)))
    return out


def _select(client: MlflowClient, run_ids: Sequence[str] | None, experiment_name: str | None,
            experiment_id: str | None, filter_string: str | None
            ) -> tuple[list[Run], list[RunFailure]]:
    """The training runs to compare (in the order given, or the search's order) and the ids that
    name no comparable run."""
    if run_ids:
        found = _fetch_runs(client, list(dict.fromkeys(str(r) for r in run_ids)))
    else:
        exp_id = experiment_id_of(client, experiment_name, experiment_id)
        found = [r for page in iter_runs(client, exp_id, filter_string) for r in page
                 if not_training(r) is None]
    runs, failures = [], []
    for item in found:
        if isinstance(item, RunFailure):
            failures.append(item)
        elif item.info.lifecycle_stage == "deleted":
            failures.append(RunFailure(item.info.run_id, "run is deleted"))
        elif not_training(item) is not None:
            failures.append(RunFailure(item.info.run_id, f"{not_training(item)}, not a training run"))
        else:
            runs.append(item)
    if len(runs) > MAX_COMPARED:
        raise ValueError(f"{len(runs)} runs selected; compare at most {MAX_COMPARED} "
                         "(narrow the selection with a filter or run ids)")
    return runs, failures


def _key(run_ids: Sequence[str], options: Mapping[str, Any]) -> str:
    text = json.dumps({"runs": sorted(run_ids), "options": options}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def compared_runs_tag(run_ids: Sequence[str], limit: int = MAX_TAG_CHARS) -> str:
    """Comma-separated run ids cut to whole ids under ``limit`` characters, ending with
    ``,+N more`` when cut (the full list is in ``comparison.json``)."""
    out: list[str] = []
    for i, rid in enumerate(run_ids):
        rest = len(run_ids) - i - 1
        candidate = ",".join([*out, rid])
        tail = f",+{rest} more" if rest else ""
        if len(candidate) + len(tail) > limit:
            return ",".join([*out, f"+{len(run_ids) - i} more"])
        out.append(rid)
    return ",".join(out)


def _existing(client: MlflowClient, experiment_ids: Sequence[str], key: str) -> str | None:
    """The comparison run of ``key`` in any of the compared runs' experiments: the same runs named
    in another order, their first in another experiment, were compared there."""
    from mlflow.entities import ViewType

    found = client.search_runs(
        sorted(set(experiment_ids)), filter_string=f"tags.`{TAG_KIND}` = '{KIND_COMPARISON}' and "
        f"tags.`{TAG_COMPARISON_KEY}` = '{key}'", run_view_type=ViewType.ACTIVE_ONLY, max_results=1)
    return found[0].info.run_id if found else None


def _log(client: MlflowClient, experiment_id: str, key: str, comparison: Comparison,
         files: Mapping[str, bytes], experiment_ids: Sequence[str] = ()) -> str:
    """Create (or find again, in ``experiment_ids`` too) the comparison run, upload its
    artifacts, then tag it."""
    from mlflow.entities import RunTag

    ids = [r.key for r in comparison.rows]
    tags = {TAG_KIND: KIND_COMPARISON, TAG_COMPARISON_KEY: key,
            TAG_COMPARED_RUNS: compared_runs_tag(ids),
            TAG_FIRST_RUN: comparison.first.key if comparison.first else "",
            TAG_SUMMARY: comparison.answer[:MAX_TAG_CHARS], TAG_VERSION: __version__}
    run_id = _existing(client, [experiment_id, *experiment_ids], key)
    created = run_id is None
    if run_id is None:
        run_id = client.create_run(experiment_id, run_name=f"plateau comparison of {len(ids)} runs",
                                   tags={TAG_KIND: KIND_COMPARISON}).info.run_id
    try:
        with tempfile.TemporaryDirectory(prefix="mlflow-plateau-") as tmp:
            folder = Path(tmp)
            for name, content in files.items():
                (folder / name).write_bytes(content)
            client.log_artifacts(run_id, str(folder), artifact_path=ARTIFACT_DIR)
        # Tags last: a comparison run carries its key only once its artifacts are complete.
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()], synchronous=True)
    except Exception:
        if created:
            end_run(client, run_id, "FAILED")
        raise
    if created:
        end_run(client, run_id)
    return run_id


def compare_runs(run_ids: Sequence[str] | None = None, *, experiment_name: str | None = None,
                 experiment_id: str | None = None, filter_string: str | None = None,
                 tracking_uri: str | None = None, log: bool = True, by: RankBy = "plateau",
                 options: DiagnosisOptions | None = None,
                 **diagnosis_options: Any) -> ComparisonResult:
    """Diagnose several runs (nothing is written to them), rank them by when they stopped learning
    and, with ``log``, log one comparison run (see the module docstring) in the experiment of the
    first run compared.

    ``options`` (a ``DiagnosisOptions``) or ``diagnosis_options``, the keyword arguments that make
    one (monitor, train_metric, mode, patience, min_delta, relative_delta, num_classes, chance).
    Selection errors raise ValueError; fewer than two runs that can be diagnosed raise
    ``TooFewRuns`` (with the failures); a run that cannot be diagnosed is listed in ``failures``
    and the rest are compared. ``by``: ``"plateau"`` (when each run stopped learning) or
    ``"forecast"`` (the best value forecast at twice its epochs).
    """
    run_ids = selected_run_ids(run_ids, experiment_name, experiment_id, filter_string)
    for name in ("log", "artifacts", "batch_size"):
        if name in diagnosis_options:
            raise TypeError(f"compare_runs does not take {name}=: it never writes to the runs")
    opts = DiagnosisOptions.of(options, **diagnosis_options)

    uri = existing_store(tracking_uri)
    check_reachable(uri)
    client = client_for(uri)
    runs, failures = _select(client, run_ids, experiment_name, experiment_id, filter_string)
    by_id = {r.info.run_id: r for r in runs}
    # An experiment's sweep parents hold no curve by design: left out, not failures.
    parents = set() if run_ids else {p for r in runs if (p := r.data.tags.get(TAG_PARENT))}
    diagnoses: list[Diagnosis] = []
    if runs:
        for result in diagnose_runs([r.info.run_id for r in runs], opts, tracking_uri=uri,
                                    log=False):
            if isinstance(result, RunFailure):
                if not parent_without_curve(result, parents):
                    failures.append(result)
            else:
                diagnoses.append(result)
    if len(diagnoses) < 2:
        reasons = "; ".join(f"run {f.run_id}: {f.reason}" for f in failures[:3])
        raise TooFewRuns(f"{len(diagnoses)} run(s) could be diagnosed, a comparison needs 2"
                         + (f" ({reasons})" if reasons else ""), failures, len(diagnoses))

    labels = _labels([by_id[d.run_id] for d in diagnoses])
    # The curves the diagnoses were made on (by epoch: ``curves.as_epochs``).
    curves: dict[str, dict[str, Curve]] = {
        rid: as_epochs(dict(c))
        for rid, c in read_run_curves(list(labels), tracking_uri=uri).items()}
    comparison = compare_diagnoses(diagnoses, labels, by=by)
    names = {d.run_id: by_id[d.run_id].info.run_name or "" for d in diagnoses}
    result = ComparisonResult(comparison=comparison, diagnoses=diagnoses, labels=labels,
                              failures=failures, names=names)
    if not log:
        return result

    from .. import report

    first_experiment = by_id[diagnoses[0].run_id].info.experiment_id
    png = report.comparison_png(diagnoses, curves, labels=labels, by=by)
    failure_reasons = {f.run_id: f.reason for f in failures}
    page = report.comparison_html(diagnoses, curves, labels=labels, failures=failure_reasons,
                                  png=png, by=by)
    payload = {**result.to_dict(), "experiment_id": first_experiment, "labels": labels,
               "diagnoses": {d.run_id: d.to_dict() for d in diagnoses}, "version": __version__}
    payload.pop("comparison_run_id")  # not known before the run exists; it is the run itself
    files = {"overlay.png": png, "report.html": page.encode("utf-8"),
             "comparison.json": json.dumps(payload, sort_keys=True, indent=2,
                                           allow_nan=False).encode("utf-8")}
    # The key of a plateau ranking is unchanged from before rankings by forecast existed.
    key_options = opts.as_dict() if by == "plateau" else {**opts.as_dict(), "by": by}
    run_id = _log(client, first_experiment, _key(list(labels), key_options), comparison, files,
                  [by_id[d.run_id].info.experiment_id for d in diagnoses])
    return replace(result, run_id=run_id, experiment_id=first_experiment)


__all__ = ["ARTIFACT_DIR", "KIND_COMPARISON", "MAX_COMPARED", "TAG_COMPARED_RUNS",
           "TAG_COMPARISON_KEY", "TAG_FIRST_RUN", "ComparisonResult", "TooFewRuns", "compare_runs",
           "compared_runs_tag"]
