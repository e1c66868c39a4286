"""Learning curves across runs: group an experiment's runs by a size param, fit, log summaries.

``diagnose_scaling`` groups the runs of an experiment that differ only in a size param (or by the
params named; ``grouping`` decides the keys, leaving out Keras's auto-numbered names), fits a
learning curve per group (``scaling.scaling_fit``, ``verdict.scaling_verdict``), logs one summary
run per group with 3 or more sizes (tag ``plateau.kind = scaling``, found again by its tags on
re-runs) and tags its members (``scaling.verdict``, ``scaling.group``, metrics ``scaling/slope``,
``scaling/exponent``, ``scaling/gain_at_2x``). Re-running updates the same summary runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..curves import Curve, metric_mode
from ..grouping import auto_numbered, distinguishing_labels, group_key, short_label
from ..numerics import mode_sign
from ..verdict import ScalingVerdict, scaling_verdict
from .batch_writes import log_many
from .history import read_curves
from .runs import experiment_id_of, iter_runs
from .store import (
    MAX_TAG_CHARS,
    SCALING_METRICS,
    TAG_DIGEST,
    TAG_KIND,
    TAG_SCALING_GROUP,
    TAG_SCALING_METRIC,
    TAG_SCALING_SIZE_PARAM,
    TAG_SCALING_VERDICT,
    TAG_SUMMARY,
    TAG_VERSION,
    RunFailure,
    check_reachable,
    client_for,
    end_run,
    existing_store,
    not_training,
    writer_threads,
)
from .writing import PendingWrite, changed_metrics, log_metric_batch

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient


@dataclass(frozen=True)
class ScalingGroup:
    """One learning curve: runs that differ only in the size param, and its fitted verdict."""

    label: str                   # "all runs" or "param=value, ..." (the scaling.group tag)
    params: dict[str, str]       # the params the group shares (its key)
    run_ids: list[str]
    sizes: list[float]
    errors: list[float]
    verdict: ScalingVerdict
    summary_run_id: str | None = None
    # What people read (the summary run's name, tables): the params whose values differ between
    # the groups fitted together, e.g. "model=big", or the experiment's name when none differ.
    name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.label, "name": self.name or self.label, "params": self.params,
                "run_ids": self.run_ids,
                "sizes": self.sizes, "errors": self.errors, "summary_run_id": self.summary_run_id,
                **self.verdict.to_dict()}


_MEMBER_TAGS = (TAG_SCALING_VERDICT, TAG_SCALING_GROUP)


def _group_label(params: Mapping[str, str]) -> str:
    label = ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "all runs"
    if len(label) > 200:  # keep the tag short and still unique
        label = label[:150] + " #" + hashlib.sha256(label.encode()).hexdigest()[:12]
    return label


def _summary_key(tags: Mapping[str, str]) -> tuple[str, str, str]:
    """What a summary run summarizes: its group, size param and metric (a summary from before
    the metric was tagged is one of val_loss, the default). A fit of another metric or size param
    of the same group gets its own summary, never overwrites this one."""
    return (tags.get(TAG_SCALING_GROUP, ""), tags.get(TAG_SCALING_SIZE_PARAM, ""),
            tags.get(TAG_SCALING_METRIC, "val_loss"))


def _run_error(curve: Curve, metric: str, mode: str | None) -> float | str:
    """The run's error on ``metric`` (best loss, or 1 - best score, in fractions, not percent),
    or why the run is not a point of a learning curve."""
    from ..curves import as_fraction

    values, _ = as_fraction(curve.values, metric)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size == values.size:
        return f"no finite values of {metric!r}"
    if bad.size:  # its best is that of a training that broke off, not of its data
        return (f"{metric} is {values[bad[0]]} at epoch {int(curve.epochs[bad[0]])}: a run that "
                "diverged is not a point of the learning curve")
    mode = mode or metric_mode(metric)
    error = float(values.min()) if mode == "min" else 1.0 - float(values.max())
    if error <= 0:
        best = float(values.min() if mode == "min" else values.max())
        return (f"its best {metric} is {best:g}, an error of {error:g}: a learning curve is "
                "fitted in log space and needs errors > 0")
    return error


def diagnose_scaling(*, experiment_name: str | None = None, experiment_id: str | None = None,
                     size_param: str = "train_size", group_by: Sequence[str] | None = None,
                     metric: str = "val_loss", mode: str | None = None,
                     filter_string: str | None = None, tracking_uri: str | None = None,
                     log: bool = True) -> tuple[list[ScalingGroup], list[RunFailure]]:
    """Fit a learning curve per group of an experiment's runs at several values of ``size_param``.

    Runs group by every other param (runs that differ only in the size) but those carrying only
    Keras's auto-numbering (``grouping.auto_numbered``), or by ``group_by``. The error of a run is
    the best value of ``metric`` (``1 - best`` for a score). With ``log``, each group with 3 or more
    distinct sizes gets a summary run (found again by its tags, so re-running updates it, also when
    fewer than 3 sizes are left) with the fit as metrics, ``scaling/fit.json`` and
    ``scaling/learning_curve.png``, and each member the ``scaling.*`` tags and metrics. Runs
    without the size param are not part of any group; runs whose size is not a positive number,
    that lack the metric, whose metric became NaN/inf (diverged) or whose error is not above 0 (an
    accuracy of 1.0: the fit is in log space) are returned as failures and the others fitted;
    summary runs of earlier calls are skipped (and found again with a filter too).
    """
    if mode is not None:
        mode_sign(mode)
    if (experiment_name is None) == (experiment_id is None):
        raise ValueError("give exactly one of an experiment name or an experiment id")
    uri = existing_store(tracking_uri)
    check_reachable(uri)
    client = client_for(uri)
    exp_id = experiment_id_of(client, experiment_name, experiment_id)
    points: list[tuple[str, dict[str, str], float, float]] = []  # run id, params, size, error
    failures: list[RunFailure] = []
    summaries: dict[tuple[str, str, str], Run] = {}
    state: dict[str, tuple[dict[str, str], dict[str, float]]] = {}  # member: scaling tags, metrics
    # Pages of 1,000 (MLflow's most for one search_runs call): the points of every run are kept
    # anyway, so the diagnosis's smaller memory-bounding pages would only add round trips.
    for page in iter_runs(client, exp_id, filter_string, page_size=1000):
        members = []
        for run in page:
            if run.data.tags.get(TAG_KIND) == "scaling":
                summaries[_summary_key(run.data.tags)] = run
                continue
            if not_training(run) is not None:
                continue  # a comparison summary or a container run: no curve of its own
            params = dict(run.data.params)
            if size_param not in params:
                continue  # not a point of any learning curve (e.g. an unrelated run)
            try:
                size = float(params[size_param])
            except ValueError:
                failures.append(RunFailure(run.info.run_id, f"param {size_param!r} is not a "
                                           f"number: {params[size_param]!r}"))
                continue
            if not (math.isfinite(size) and size > 0):
                failures.append(RunFailure(run.info.run_id, f"param {size_param!r} must be a "
                                           f"positive number, not {params[size_param]!r}"))
                continue
            members.append((run, size))
        if not members:
            continue
        curves = read_curves(client, uri, [r for r, _ in members])
        for run, size in members:
            curve = curves.get(run.info.run_id, {}).get(metric)
            error = (_run_error(curve, metric, mode) if curve is not None and len(curve)
                     else f"no metric {metric!r}")
            if isinstance(error, str):  # this run is left out, the others are fitted
                failures.append(RunFailure(run.info.run_id, error))
                continue
            points.append((run.info.run_id, dict(run.data.params), size, error))
            if log:  # what the member's tagging compares with: no second read of each run
                state[run.info.run_id] = (
                    {k: v for k, v in run.data.tags.items() if k in _MEMBER_TAGS},
                    {k: v for k, v in run.data.metrics.items() if k in SCALING_METRICS})

    if filter_string and log:
        # The summary runs of earlier calls hold no params: a filter on params never selects them.
        for page in iter_runs(client, exp_id, f"tags.`{TAG_KIND}` = 'scaling'", page_size=1000):
            for run in page:
                summaries.setdefault(_summary_key(run.data.tags), run)

    # Keras's auto-numbered object names (optimizer_name = adam, adam_1, ...) are not a setup.
    ignored = auto_numbered([p for _, p, _, _ in points]) if not group_by else set()
    groups: dict[str, tuple[dict[str, str], list[tuple[str, float, float]]]] = {}
    for run_id, params, size, error in points:
        key_params = group_key(params, size_param=size_param, group_by=group_by, ignored=ignored)
        label = _group_label(key_params)
        groups.setdefault(label, (key_params, []))[1].append((run_id, size, error))

    from ..scaling import scaling_fits

    labels = sorted(groups)
    for label in labels:
        groups[label][1].sort(key=lambda r: (r[1], r[0]))
    # All groups in one batch: a sweep of hundreds of groups costs little more than a few.
    fits = scaling_fits([([r[1] for r in groups[label][1]], [r[2] for r in groups[label][1]])
                         for label in labels])
    # Named by what tells the groups apart, not by the dozens of params autolog logs for each.
    names = distinguishing_labels([groups[label][0] for label in labels], none_differ="")
    if any(not n for n in names):
        names = [n or _experiment_name(client, exp_id) for n in names]
    results = []
    for label, fit, name in zip(labels, fits, names, strict=True):
        key_params, rows = groups[label]
        sizes = [r[1] for r in rows]
        errors = [r[2] for r in rows]
        results.append(ScalingGroup(label, key_params, [r[0] for r in rows], sizes, errors,
                                    scaling_verdict(fit), name=name))
    if not log:
        return results, failures
    # Groups are logged side by side: each waits on the store (commits, an HTTP round trip) and
    # draws its picture in the shared process pool (store.writer_threads: how many side by side).
    workers = writer_threads(uri)
    with ThreadPoolExecutor(workers) as pool:
        # A group of fewer than 3 sizes gets no summary of nothing; one that had a summary
        # (a member was deleted since) has it updated, not left with a fit of runs now gone.
        summary_ids = [
            None if summary is None and group.verdict.verdict == "insufficient_points" else
            pool.submit(_log_scaling_group, client, exp_id, group, summary, state,
                        size_param=size_param, metric=metric, mode=mode)
            for group in results
            for summary in [summaries.get((group.label, size_param, metric))]]
        results = [group if future is None else replace(group, summary_run_id=future.result())
                   for group, future in zip(results, summary_ids, strict=True)]
    return results, failures


def _experiment_name(client: MlflowClient, experiment_id: str) -> str:
    return client.get_experiment(experiment_id).name


def _scaling_metrics(verdict: ScalingVerdict) -> dict[str, float | None]:
    fit = verdict.fit

    def num(x: Any) -> float | None:
        return float(x) if x is not None and math.isfinite(float(x)) else None

    return {"scaling/slope": num(fit.slope), "scaling/exponent": num(fit.exponent),
            "scaling/gain_at_2x": num(fit.gain_at_2x)}


def _log_scaling_group(client: MlflowClient, experiment_id: str, group: ScalingGroup,
                       summary: Run | None,
                       state: Mapping[str, tuple[dict[str, str], dict[str, float]]], *,
                       size_param: str, metric: str, mode: str | None = None) -> str:
    """Create or update the group's summary run and tag its members (``state``: each member's
    scaling tags and metrics as read); returns the summary run id. The picture's y axis names
    ``metric`` (and ``mode``: one minus the best of a score)."""
    metrics = _scaling_metrics(group.verdict)
    member_tags = {TAG_SCALING_VERDICT: group.verdict.verdict, TAG_SCALING_GROUP: group.label}
    now = int(time.time() * 1000)
    writes = []
    for rid in group.run_ids:
        tags_now, metrics_now = state.get(rid, ({}, {}))
        tags = {k: v for k, v in member_tags.items() if tags_now.get(k) != v}
        writes.append(PendingWrite(rid, changed_metrics(metrics_now, metrics), tags, now))
    failures = log_many(client, writes)  # the members in one transaction on a SQL store
    if failures:
        raise next(iter(failures.values()))

    fit_doc = {**group.to_dict(), "size_param": size_param, "metric": metric,
               "version": __version__}
    fit_doc.pop("summary_run_id")
    fit_json = json.dumps(fit_doc, indent=2, sort_keys=True, default=str)
    run_name = f"scaling: {short_label(group.name or group.label, 60)}"
    if summary is None:
        summary = client.create_run(
            experiment_id, run_name=run_name,
            tags={TAG_KIND: "scaling", TAG_SCALING_GROUP: group.label,
                  TAG_SCALING_SIZE_PARAM: size_param, TAG_SCALING_METRIC: metric})
        end_run(client, summary.info.run_id)
        summary = client.get_run(summary.info.run_id)
    rid = summary.info.run_id
    if summary.info.run_name != run_name:  # named before, by other groups or an older version
        client.update_run(rid, name=run_name)
    digest = hashlib.sha256(fit_json.encode()).hexdigest()
    wanted = {TAG_KIND: "scaling", TAG_SCALING_GROUP: group.label, TAG_SCALING_METRIC: metric,
              TAG_SCALING_VERDICT: group.verdict.verdict,
              TAG_SUMMARY: group.verdict.summary[:MAX_TAG_CHARS], TAG_VERSION: __version__}
    if summary.data.tags.get(TAG_DIGEST) != digest:
        with tempfile.TemporaryDirectory(prefix="mlflow-plateau-") as tmp:
            folder = Path(tmp)
            (folder / "fit.json").write_text(fit_json, encoding="utf-8")
            try:
                from ..report import scaling_png_pooled
            except ImportError:
                scaling_png_pooled = None
            if scaling_png_pooled is not None:
                (folder / "learning_curve.png").write_bytes(
                    scaling_png_pooled(group.verdict, size_param=size_param,
                                       title=group.name or group.label, metric=metric, mode=mode))
            client.log_artifacts(rid, str(folder), artifact_path="scaling")
        wanted[TAG_DIGEST] = digest
    tags = {k: v for k, v in wanted.items() if summary.data.tags.get(k) != v}
    log_metric_batch(client, rid, changed_metrics(summary.data.metrics, metrics), tags)
    return rid
