"""The verdict on a training run, and on a group of runs at several training-set sizes.

``diagnose_curves(history, monitor=None, ...)`` reads a history (see ``curves.history_curves``),
picks the monitored curve (``val_loss`` by default; else the first validation loss, else any
validation curve, else the training loss), pairs it with its training curve, computes
``plateau_epoch`` and ``generalization_gap`` and decides one verdict, as a practitioner reads the
curves (``docs/verdicts.md``), in its order of precedence:

``diverged``           a loss became NaN/inf within the monitor's epochs (the first such epoch is
                       reported, even epoch 0 of an all-NaN curve), or the training loss blew up:
                       it ended ``explode_factor`` (10) times above its best and above where it
                       started, or its first epoch was ``blowup_factor`` (100) times the level
                       of the rest, after which every curve stayed flat (a dead net).
``insufficient_data``  fewer than ``min_epochs`` (3) finite epochs of the monitor.
``at_chance``          validation never got clearly better than a constant guess: the model
                       predicts one class (its validation accuracy repeats one value from the
                       start), or its best stays near chance (ln k for a cross-entropy loss, 1/k
                       for accuracy, with k given or read off the run when accuracy and loss
                       agree on it), or, with no class count, accuracy and loss stay flat. A
                       validation value clearly better than chance is never at chance.
``unstable``           the curves jump around so much that no trend can be read (noise or
                       repeated swings, in validation *and* training, as large as the movement
                       of the trend), or validation climbs back half of the way it came while
                       training stops improving, or the training loss climbs back half of the way
                       to where it started over the later epochs.
``overfitting``        after its best, validation clearly worsens (beyond its noise and by a
                       share of how far it came) while training keeps improving; or the gap keeps
                       widening over the later epochs while training improves and validation
                       stays flat. A constant gap is not overfitting.
``not_converged``      validation is still clearly improving: the last epochs set a new best by
                       more than the noise, and the trend still points the right way.
``underfitting``       converged with a small gap but a poor fit: training accuracy stays below
                       0.8, or the training loss stays near chance or never really fell.
``healthy``            converged, no clear worsening, a small or stable gap, a good fit.

Each rule, its thresholds and what a reader sees are in ``rules.py``; the evidence holds every
rule's score (``score_<verdict>``: the deciding number over its threshold, 1.0 is the line) and
``decided_by``, one line of why. ``Diagnosis.alternatives`` lists the verdicts that came close
(a rule within 1.5x of its threshold, either way), each with its number; the summary names the
closest one. Every verdict carries plain-word recommendations.

``scaling_verdict`` (the verdict on a group of runs at several training-set sizes) lives in
``verdict_scaling.py``, the result types in ``diagnosis.py``, the words in ``wording.py``; this
module re-exports their names of its ``__all__``, so ``mlflow_plateau.verdict.X`` keeps working.

``diagnose_curves`` is a pipeline of named steps: pick the curves (``_pick_curves``), cut them
at their first NaN/inf (``_cut``) and stop at a non-finite epoch (``_non_finite``) or too few
epochs; find the plateau and the gap (``_plateau``, ``_gap``); stop at a training loss that blew
up (``_blew_up``); find the chance level (``_chance``); read the curves and run the rules
(``_read_and_decide``); forecast and word the verdict (``_finish``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from .curves import (
    Curve,
    as_fraction,
    finite_part,
    history_curves,
    is_accuracy_name,
    is_loss_name,
    metric_mode,
    pair_curves,
)
from .diagnosis import SCALING_VERDICTS, VERDICTS, Diagnosis, ScalingVerdict
from .forecast import ForecastResult, forecast_curve
from .gap import GapResult, generalization_gap
from .options import DiagnosisOptions, Thresholds
from .plateau import PlateauResult, plateau_epoch
from .rules import close_calls, considered, decide, infer_chance, make_reading
from .verdict_scaling import scaling_verdict
from .wording import NO_RULE_FIRED, RECOMMENDATIONS, run_summary


def diagnose_curves(history: Any, options: DiagnosisOptions | None = None,
                    **option_values: Any) -> Diagnosis:
    """Diagnose one run's history (see the module docstring) with ``options``, or the
    ``DiagnosisOptions`` the keyword arguments make (``monitor=``, ``patience=``, ...; given
    with ``options``, they override its fields). Raises ValueError on bad input."""
    opts = DiagnosisOptions.of(options, **option_values)
    th = opts.thresholds
    run = _pick_curves(history_curves(history), opts)
    cut = _cut(run)
    evidence: dict[str, Any] = {"epochs": len(cut.val), "percent_scaled": run.percent_scaled}
    for name, dropped in ((run.monitor, cut.val_dropped), (run.partner, cut.train_dropped)):
        if dropped:  # said, not hidden: a reader sees the gap in the plot
            evidence.setdefault("non_finite_dropped", {})[name] = list(dropped)
    if not run.train:  # none, or an empty one
        evidence["note"] = "no training curve paired with the monitor; gap not computed"

    non_finite = _non_finite(run, cut)
    if non_finite is not None:
        # Even NaN from the first epoch is a divergence (e.g. NaN inputs or a huge learning
        # rate), not a lack of data: the epoch is reported, the plateau only when there is one.
        p = _plateau(cut.val, run.mode, opts) if len(cut.val) else None
        return _finish("diverged", run, cut, opts, {**evidence, **non_finite}, p, None)
    if len(cut.val) < th.min_epochs:
        return _finish("insufficient_data", run, cut, opts,
                       {**evidence, "min_epochs": th.min_epochs}, None, None)

    p = _plateau(cut.val, run.mode, opts)
    evidence.update(_plateau_evidence(p, cut.val))
    g, gap_evidence = _gap(cut, p, run.mode)
    evidence.update(gap_evidence)
    blew_up = _blew_up(run, cut, th)
    if blew_up is not None:
        return _finish("diverged", run, cut, opts, {**evidence, **blew_up}, p, g)

    chance = _chance(run, cut, opts)
    evidence.update(chance.evidence())
    verdict, rule_evidence, alternatives = _read_and_decide(run, cut, p, chance, th)
    evidence.update(rule_evidence)
    return _finish(verdict, run, cut, opts, evidence, p, g, alternatives)


# --- step 1: read the history and pick the curves --------------------------------------------

@dataclass(frozen=True)
class _Picked:
    """The curves a diagnosis reads: the monitor and its training partner (percent accuracies
    as fractions), the direction of improvement, and every curve of the run (for the chance
    level: its accuracy and loss, whatever the monitor)."""

    curves: dict[str, Curve]
    monitor: str
    partner: str | None
    mode: str
    val: Curve
    train: Curve | None
    percent_scaled: bool


def _pick_curves(curves: dict[str, Curve], opts: DiagnosisOptions) -> _Picked:
    """The monitor (given, or ``_pick_monitor``'s choice), its training partner (given as
    ``train_metric`` or paired by name) and its mode (given, or read off its name)."""
    monitor, partner = _pick_monitor(curves, opts.monitor)
    if opts.train_metric is not None:
        if opts.train_metric not in curves:
            raise ValueError(f"train metric {opts.train_metric!r} not in the history; metrics "
                             f"present: {', '.join(sorted(curves))}")
        partner = opts.train_metric
    mode = opts.mode or metric_mode(monitor)  # a given mode was checked by DiagnosisOptions
    val = curves[monitor]
    val_values, val_pct = as_fraction(val.values, monitor)
    train = None
    if partner is not None:
        tv, _ = as_fraction(curves[partner].values, partner)
        train = Curve(partner, curves[partner].epochs, tv)
    return _Picked(curves, monitor, partner, mode, Curve(val.name, val.epochs, val_values), train,
                   val_pct)


def _pick_monitor(curves: dict[str, Curve], monitor: str | None) -> tuple[str, str | None]:
    """(monitor name, its training partner) — or ValueError naming what exists."""
    pairs = pair_curves(curves)
    if monitor is not None:
        if monitor not in curves:
            raise ValueError(f"monitor {monitor!r} not in the history; metrics present: "
                             f"{', '.join(sorted(curves)) or 'none'}")
        partner = next((p.train for p in pairs.values() if p.val == monitor), None)
        return monitor, partner
    if not pairs:
        raise ValueError("no training curves in the history; metrics present: "
                         f"{', '.join(sorted(curves)) or 'none'}")
    if "val_loss" in curves:
        partner = next((p.train for p in pairs.values() if p.val == "val_loss"), None)
        return "val_loss", partner
    loss_like = [p for p in pairs.values() if is_loss_name(p.base)]
    for group in (loss_like, list(pairs.values())):
        with_val = [p for p in group if p.val]
        if with_val:
            return with_val[0].val, with_val[0].train
    for group in (loss_like, list(pairs.values())):
        if group:
            return group[0].train, None
    raise ValueError("no curve to monitor")  # pragma: no cover - pairs is non-empty


def no_validation_metric(curves: Mapping[str, Curve], monitor: str | None) -> str | None:
    """Why a tracked run cannot be diagnosed without ``monitor``: it has no validation curve (a
    training curve alone says nothing about plateaus or overfitting); None when it can. Each face
    adds how to pass a monitor."""
    if monitor is not None or any(p.val for p in pair_curves(curves).values()):
        return None
    return f"no validation metric (metrics: {', '.join(sorted(curves)) or 'none'})"


def refused_without_monitor(curves: Mapping[str, Curve], options: DiagnosisOptions,
                            how_to_monitor: str) -> str | None:
    """Why ``diagnose_run_history`` refuses this history, with the face's ``how_to_monitor``
    (None when it does not): for a caller that refuses before any other work."""
    missing = no_validation_metric(curves, options.monitor)
    return f"{missing}; {how_to_monitor}" if missing else None


def diagnose_run_history(curves: dict[str, Curve], options: DiagnosisOptions, *,
                         run_id: str | None = None, how_to_monitor: str = "pass monitor=",
                         partial: bool = False) -> Diagnosis:
    """A tracked run's diagnosis, as every face computes it (the command line and Spark through
    ``tracking.diagnose_runs``, the callback, the evaluator): a history without a validation curve
    is refused unless a monitor is given (ValueError ``"no validation metric (...);
    {how_to_monitor}"``: a training curve alone says nothing about plateaus or overfitting), else
    ``diagnose_curves`` with ``run_id`` set and, for a run still running (``partial``),
    ``evidence["partial"] = True``. Writing it back is the tracking layer's
    (``tracking.log_diagnosis``, or ``diagnose_runs``' batched writes of the same metrics, tags
    and artifacts)."""
    refusal = refused_without_monitor(curves, options, how_to_monitor)
    if refusal:
        raise ValueError(refusal)
    diagnosis = diagnose_curves(curves, options)
    evidence = {**diagnosis.evidence, "partial": True} if partial else diagnosis.evidence
    return replace(diagnosis, run_id=run_id, evidence=evidence)


def check_options(**options: Any) -> int | None:
    """Raise ValueError for an option ``diagnose_curves`` cannot use; return ``num_classes`` as an
    int. Kept for callers of earlier versions: ``DiagnosisOptions(**options)`` does the check."""
    return DiagnosisOptions(**options).num_classes


# --- step 2: cut at the first NaN/inf; a non-finite epoch is a divergence --------------------

@dataclass(frozen=True)
class _Cut:
    """The monitor and its partner up to where they turned NaN/inf for good, and that epoch
    (None when they end finite), without the NaN/inf values they recovered from
    (``curves.finite_part``)."""

    val: Curve
    val_bad: int | None
    train: Curve | None
    train_bad: int | None
    val_dropped: tuple[int, ...] = ()    # NaN/inf epochs the curve recovered from (dropped)
    train_dropped: tuple[int, ...] = ()


def _cut(run: _Picked) -> _Cut:
    val_ok, val_bad, val_dropped = finite_part(run.val)
    train_ok, train_bad, train_dropped = (finite_part(run.train) if run.train is not None
                                          else (None, None, ()))
    return _Cut(val_ok, val_bad, train_ok, train_bad, val_dropped, train_dropped)


def _non_finite(run: _Picked, cut: _Cut) -> dict[str, Any] | None:
    """The evidence of a divergence when the monitor or its training curve became NaN/inf
    within the monitor's epochs (the first such epoch; the monitor wins a tie), else None."""
    diverged = sorted((e, n != run.monitor, n) for e, n in ((cut.val_bad, run.monitor),
                                                            (cut.train_bad, run.partner))
                      if e is not None)
    last_val_epoch = int(run.val.epochs[-1]) if len(run.val) else None
    if not diverged or last_val_epoch is None or diverged[0][0] > last_val_epoch:
        return None
    epoch, _, name = diverged[0]
    return {"diverged_epoch": epoch, "diverged_metric": name, "diverged_how": "non-finite"}


# --- step 3: the plateau and the gap; a training loss that blew up ---------------------------

def _plateau(val: Curve, mode: str, opts: DiagnosisOptions) -> PlateauResult:
    return plateau_epoch(val.values, mode=mode, min_delta=opts.min_delta,
                         relative_delta=opts.relative_delta, patience=opts.patience,
                         epochs=val.epochs)


def _plateau_evidence(p: PlateauResult, val: Curve) -> dict[str, Any]:
    return {"first_epoch": int(val.epochs[0]) if len(val) else 0,
            "plateau_epoch": p.epoch, "plateau_low": p.low, "plateau_high": p.high,
            "best_epoch": p.best_epoch, "best_value": p.best_value,
            "final_value": val.values[-1], "tolerance": p.tolerance, "noise": p.noise,
            "improvement": p.improvement, "stop_epoch": p.stop_epoch,
            "wasted_epochs": p.wasted_epochs, "still_improving": p.still_improving}


def _gap(cut: _Cut, p: PlateauResult, mode: str) -> tuple[GapResult | None, dict[str, Any]]:
    """The generalization gap on the epochs both curves share, and its evidence; None (with
    ``gap_error`` when they are too far apart to subtract) when there is none."""
    if cut.train is None or len(cut.train) < 1:
        return None, {}
    common, ia, ib = np.intersect1d(cut.train.epochs, cut.val.epochs, assume_unique=True,
                                    return_indices=True)
    if common.size < 1:
        return None, {}
    try:
        g = generalization_gap(cut.train.values[ia], cut.val.values[ib], mode=mode,
                               epochs=common, best_epoch=p.best_epoch, from_epoch=p.epoch)
    except ValueError as exc:  # train and val too far apart to subtract: diagnose without it
        return None, {"gap_error": str(exc)}
    return g, {"gap_final": g.final, "gap_at_best": g.at_best,
               "gap_relative_final": g.relative_final, "gap_trend": g.trend,
               "gap_trend_low": g.trend_low, "gap_trend_high": g.trend_high}


def _blew_up(run: _Picked, cut: _Cut, th: Thresholds) -> dict[str, Any] | None:
    """The evidence of a training loss that exploded (it ended ``explode_factor`` times above
    its best and above where it started) or blew up in its first epoch and left a dead net;
    None otherwise (and for a monitor that is no loss)."""
    if cut.train is None or len(cut.train) < 1 or run.mode != "min":
        return None
    t = cut.train.values
    if t.size >= 2 and t.min() > 0 and t[-1] >= th.explode_factor * t.min() and t[-1] > t[0]:
        # Report where it exploded: the first epoch at explode_factor x the best before it.
        exploded = np.flatnonzero(t >= th.explode_factor * np.minimum.accumulate(t))
        return {"diverged_epoch": int(cut.train.epochs[exploded[0]]),
                "diverged_metric": run.partner, "diverged_how": "exploded",
                "explode_factor": th.explode_factor, "train_final": float(t[-1]),
                "train_best": float(t.min())}
    ratio = _blew_up_then_dead(t, cut.val.values, th)
    if ratio is None:
        return None
    return {"diverged_epoch": int(cut.train.epochs[0]), "diverged_metric": run.partner,
            "diverged_how": "dead", "blowup_ratio": ratio}


def _blew_up_then_dead(train: np.ndarray, val: np.ndarray, th: Thresholds) -> float | None:
    """The first epoch's training loss over the level of the rest, when it is ``blowup_factor``
    (100) times that level and afterwards training and validation stay flat (within 1% of their
    level): a learning rate that blew the weights up in epoch 0 and left a dead net (its
    accuracy then sits at 1/k, which is no label problem). None otherwise."""
    rest = train[1:]
    if rest.size < 2 or val.size < 3 or not np.all(np.isfinite(train)):
        return None
    level = float(np.median(rest))
    if level <= 0 or train[0] < th.blowup_factor * level:
        return None
    def flat(x: np.ndarray) -> bool:
        return float(np.ptp(x)) <= 0.01 * abs(float(np.median(x)))
    return float(train[0] / level) if flat(rest) and flat(val[1:]) else None


# --- step 4: the chance level -----------------------------------------------------------------

@dataclass(frozen=True)
class _Chance:
    """The run's accuracy and loss curves the rules judge chance by, and the chance level of the
    monitor (None when unknown), its class count and where it came from."""

    val_accuracy: np.ndarray | None
    train_accuracy: np.ndarray | None
    val_loss: np.ndarray | None
    level: float | None
    k: int | None
    source: str

    def evidence(self) -> dict[str, Any]:
        if self.level is not None:
            return {"chance": self.level, "chance_source": self.source}
        return {"chance_source": self.source}


def _chance(run: _Picked, cut: _Cut, opts: DiagnosisOptions) -> _Chance:
    val_acc, train_acc = _accuracy_pair(run.curves)
    val_loss = _loss_values(run.curves, run.monitor, run.mode, cut.val.values, "val")
    is_min = run.mode == "min"
    train_loss = _loss_values(run.curves, run.partner if is_min else None, run.mode,
                              cut.train.values if (cut.train is not None and is_min) else None,
                              "train")
    level, k, source = _chance_level(run.monitor, run.mode, opts.chance, opts.num_classes,
                                     val_acc, [val_loss, train_loss])
    return _Chance(val_acc, train_acc, val_loss, level, k, source)


def _chance_level(monitor: str, mode: str, chance: float | None, num_classes: int | None,
                  val_accuracy: np.ndarray | None, losses: list[np.ndarray | None]
                  ) -> tuple[float | None, int | None, str]:
    """(chance level of the monitor, class count k, where it came from)."""
    if chance is not None:
        return float(chance), num_classes, "given"
    if num_classes is not None:
        k, source = num_classes, f"{num_classes} classes (given)"
    else:
        k, source = infer_chance(val_accuracy, [x for x in losses if x is not None])
        if k is None:
            return None, None, source
    if mode == "max" and is_accuracy_name(monitor):
        return 1.0 / k, k, f"1/{k}: {source}"
    if mode == "min" and "loss" in monitor.lower():
        return math.log(k), k, f"ln({k}): {source}"
    return None, k, f"unknown for {monitor} ({source})"


def _accuracy_pair(curves: dict[str, Curve]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The run's validation and training accuracy (fractions, finite), if it logged them."""
    pairs = pair_curves(curves)
    ranked = sorted((p for p in pairs.values() if is_accuracy_name(p.base)),
                    key=lambda p: (p.base != "accuracy", p.base))
    for pair in ranked:
        out = []
        for name in (pair.val, pair.train):
            if name is None:
                out.append(None)
                continue
            values, _ = as_fraction(curves[name].values, name)
            values = values[np.isfinite(values)]
            out.append(values if values.size else None)
        if out[0] is not None or out[1] is not None:
            return out[0], out[1]
    return None, None


def _loss_values(curves: dict[str, Curve], name: str | None, mode: str,
                 given: np.ndarray | None, role: str) -> np.ndarray | None:
    """The run's main validation (or training) loss values: the monitor's when it is a loss."""
    if given is not None and name is not None and mode == "min" and "loss" in name.lower():
        return given
    pair = pair_curves(curves).get("loss")
    if pair is None:
        return None
    chosen = pair.val if role == "val" else pair.train
    if chosen is None:
        return None
    values = curves[chosen].values
    values = values[np.isfinite(values)]
    return values if values.size else None


# --- step 5: the reading and the rules --------------------------------------------------------

def _read_and_decide(run: _Picked, cut: _Cut, p: PlateauResult, chance: _Chance,
                     th: Thresholds) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """The verdict of the rules (``rules.decide``), the evidence they leave (the reading's noise
    and scale, each considered rule's score, ``decided_by``) and the close calls."""
    # Long curves are read as plateau_epoch read them: in MAX_POINTS equal blocks (their means),
    # so the rules see the same points as the fit, at a bounded cost.
    val_r = _blocks(cut.val, p.fitted.size)
    train_r = _blocks(cut.train, p.fitted.size) if cut.train is not None else None
    reading = make_reading(val_r, run.mode, p.fitted, p.epoch, train_r, chance.val_accuracy,
                           chance.train_accuracy, chance.val_loss, chance.level, chance.k,
                           chance.source)
    evidence: dict[str, Any] = {"noise": reading.sigma, "came": reading.came}
    verdict, chosen, findings = decide(reading, th)
    for f in considered(chosen, findings):
        evidence[f"score_{f.verdict}"] = f.score
    evidence["decided_by"] = chosen.why if chosen is not None else NO_RULE_FIRED
    return verdict, evidence, close_calls(chosen, findings, verdict)


def _blocks(curve: Curve, size: int) -> Curve:
    """``curve`` averaged in ``size`` equal blocks (as ``plateau_epoch`` does beyond MAX_POINTS);
    unchanged when it has no more points than that."""
    if len(curve) <= size:
        return curve
    edges = np.linspace(0, len(curve), size + 1).astype(np.int64)
    counts = np.diff(edges)
    values = np.add.reduceat(curve.values, edges[:-1]) / counts
    epochs = curve.epochs[np.minimum(edges[:-1] + counts // 2, len(curve) - 1)]
    return Curve(curve.name, epochs, values)


# --- step 6: the forecast, the words and the result -------------------------------------------

def _finish(verdict: str, run: _Picked, cut: _Cut, opts: DiagnosisOptions,
            evidence: dict[str, Any], p: PlateauResult | None, g: GapResult | None,
            alternatives: list[dict[str, Any]] | None = None) -> Diagnosis:
    evidence = {**evidence, "verdict_rule": verdict}
    alts = alternatives or []
    f = None if verdict in ("diverged", "insufficient_data") else _forecast_for(cut.val, run.mode)
    summary = run_summary(verdict, run.monitor, p, g, evidence, f, alts)
    return Diagnosis(verdict, summary, evidence, list(RECOMMENDATIONS[verdict]), run.monitor,
                     run.partner, run.mode, p, g, _config(run, opts), alternatives=alts,
                     forecast=f)


def _forecast_for(curve: Curve, mode: str) -> ForecastResult | None:
    """The forecast of the monitor's finite curve; None below forecast.MIN_EPOCHS epochs (and,
    as decided by the caller, for a diverged run: more epochs of it are not worth forecasting)."""
    result = forecast_curve(curve.values, epochs=curve.epochs, mode=mode)
    return None if result.insufficient else result


def _config(run: _Picked, opts: DiagnosisOptions) -> dict[str, Any]:
    """The options and thresholds the diagnosis used (``Diagnosis.config``), with the monitor,
    partner and mode it picked."""
    th = opts.thresholds
    return {"given": opts.given(), "monitor": run.monitor, "train_metric": run.partner,
            "mode": run.mode, "min_delta": opts.min_delta, "relative_delta": opts.relative_delta,
            "patience": opts.patience, "chance": opts.chance, "num_classes": opts.num_classes,
            **{f.name: getattr(th, f.name) for f in fields(th)}}


__all__ = [
    "SCALING_VERDICTS",
    "VERDICTS",
    "Diagnosis",
    "ScalingVerdict",
    "Thresholds",
    "check_options",
    "diagnose_curves",
    "diagnose_run_history",
    "no_validation_metric",
    "refused_without_monitor",
    "scaling_verdict",
]
