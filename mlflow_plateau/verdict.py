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

``scaling_verdict(ScalingResult)`` classifies a learning curve: ``insufficient_points`` (fewer
than 3 sizes), ``data_limited`` (``gain_at_2x >= data_limited_gain``), ``diminishing_returns``
(``gain_at_2x >= saturated_gain``), else ``saturated``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from . import __version__
from .curves import (
    Curve,
    _words,
    as_fraction,
    finite_prefix,
    history_curves,
    is_loss_name,
    metric_mode,
    pair_curves,
)
from .forecast import ForecastResult, forecast_curve, forecast_sentence
from .gap import GapResult, generalization_gap
from .options import DiagnosisOptions, Thresholds
from .plateau import PlateauResult, plateau_epoch
from .rules import close_calls, considered, decide, infer_chance, make_reading
from .scaling import ScalingResult

VERDICTS = ("healthy", "overfitting", "underfitting", "at_chance", "not_converged", "unstable",
            "diverged", "insufficient_data")
SCALING_VERDICTS = ("data_limited", "diminishing_returns", "saturated", "insufficient_points")
SCHEMA_VERSION = 1


_RECOMMENDATIONS = {
    "healthy": ["Training converged with a small gap; to improve further, try more or more "
                "diverse data or a larger model and compare the learning curve."],
    "overfitting": ["Add regularization (dropout, L2 weight decay) or reduce model capacity.",
                    "Add data augmentation or more, more diverse training data.",
                    "Stop earlier: EarlyStopping(restore_best_weights=True) at the plateau epoch."],
    "underfitting": ["Increase model capacity (more units or layers) or train with a better "
                     "learning-rate schedule.",
                     "More data of the same kind will not help until the model fits the "
                     "training set better."],
    "at_chance": ["The model learned nothing beyond a constant guess: check that labels match "
                  "inputs (shuffling, leakage, preprocessing) and that the task is learnable.",
                  "More data or epochs will not help while the signal is missing."],
    "not_converged": ["Train longer: the monitored metric was still improving at the last epoch.",
                      "Or raise the learning rate / use a schedule to converge faster."],
    "unstable": ["Lower the learning rate or add a decay schedule; consider gradient clipping "
                 "and a larger batch size to reduce the noise between epochs."],
    "diverged": ["Lower the learning rate, add gradient clipping, and check inputs for "
                 "NaN/inf or unscaled features."],
    "insufficient_data": ["Log at least 3 epochs of a validation metric (validation_data or "
                          "validation_split in model.fit) so the curve can be diagnosed."],
}


@dataclass(frozen=True)
class Diagnosis:
    """The verdict on one run's curves, the numbers behind it and what to try next."""

    verdict: str
    summary: str
    evidence: dict[str, Any]
    recommendations: list[str]
    monitor: str | None
    train_metric: str | None
    mode: str | None
    plateau: PlateauResult | None
    gap: GapResult | None
    config: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    alternatives: list[dict[str, Any]] = field(default_factory=list)
    forecast: ForecastResult | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: no NaN/inf, no numpy types."""
        return _json_safe({
            "schema_version": SCHEMA_VERSION, "version": __version__, "run_id": self.run_id,
            "verdict": self.verdict, "summary": self.summary, "evidence": self.evidence,
            "recommendations": self.recommendations, "monitor": self.monitor,
            "train_metric": self.train_metric, "mode": self.mode,
            "plateau": self.plateau.to_dict() if self.plateau else None,
            "gap": self.gap.to_dict() if self.gap else None, "config": self.config,
            "alternatives": self.alternatives,
            "forecast": self.forecast.to_dict() if self.forecast else None,
        })


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_json_safe(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


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


def _aligned(a: Curve, b: Curve) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    common, ia, ib = np.intersect1d(a.epochs, b.epochs, assume_unique=True, return_indices=True)
    return common, a.values[ia], b.values[ib]


def no_validation_metric(curves: dict[str, Curve], monitor: str | None) -> str | None:
    """Why a tracked run cannot be diagnosed without ``monitor``: it has no validation curve (a
    training curve alone says nothing about plateaus or overfitting); None when it can. Each face
    adds how to pass a monitor."""
    if monitor is not None or any(p.val for p in pair_curves(curves).values()):
        return None
    return f"no validation metric (metrics: {', '.join(sorted(curves)) or 'none'})"


def check_options(**options: Any) -> int | None:
    """Raise ValueError for an option ``diagnose_curves`` cannot use; return ``num_classes`` as an
    int. Kept for callers of earlier versions: ``DiagnosisOptions(**options)`` does the check."""
    return DiagnosisOptions(**options).num_classes


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
    if mode == "max" and _is_accuracy(monitor):
        return 1.0 / k, k, f"1/{k}: {source}"
    if mode == "min" and "loss" in monitor.lower():
        return math.log(k), k, f"ln({k}): {source}"
    return None, k, f"unknown for {monitor} ({source})"


def _forecast_for(curve: Curve, mode: str) -> ForecastResult | None:
    """The forecast of the monitor's finite curve; None below forecast.MIN_EPOCHS epochs (and,
    as decided by the caller, for a diverged run: more epochs of it are not worth forecasting)."""
    result = forecast_curve(curve.values, epochs=curve.epochs, mode=mode)
    return None if result.insufficient else result


def _summary(verdict: str, monitor: str, p: PlateauResult | None, g: GapResult | None,
             ev: dict[str, Any], f: ForecastResult | None = None) -> str:
    if verdict == "insufficient_data":
        return (f"Only {ev.get('epochs', 0)} usable epoch(s) of {monitor}: too few to find a "
                "plateau.")
    if verdict == "diverged":
        how = {"exploded": f"exploded (to {ev.get('explode_factor', 10):g}x its best or more)",
               "dead": (f"blew up ({ev.get('blowup_ratio', 0):.3g}x its later level) and then "
                        "every curve stayed flat: the weights blew up and the net is dead")
               }.get(ev.get("diverged_how"), "became NaN/inf")
        return f"Training diverged: {ev.get('diverged_metric')} {how} at epoch " \
               f"{ev.get('diverged_epoch')}."
    assert p is not None
    why = ev.get("decided_by", "")
    best = f"best {p.best_value:.4g} at epoch {p.best_epoch}"
    stop = (f"; EarlyStopping(patience) would have stopped at epoch {p.stop_epoch}, "
            f"{p.wasted_epochs} epochs before the end" if p.stop_epoch is not None
            and p.wasted_epochs else "")
    if verdict == "at_chance":
        return (f"{monitor} stayed at chance level ({best}): {why}. The model learned nothing "
                "that generalizes.")
    if verdict == "unstable":
        return f"{monitor} is unstable ({best}): {why}."
    if verdict == "overfitting":
        return (f"{monitor} is overfitting ({best}; it stopped improving beyond its noise at epoch "
                f"{p.epoch}): {why}{stop}.")
    if verdict == "not_converged":
        return (f"{monitor} had not converged ({best}, the last epoch is {p.last_epoch}): {why}"
                + forecast_sentence(f, monitor) + ".")
    if verdict == "underfitting":
        return f"{monitor} converged ({best}) with a small gap but a poor fit: {why}."
    return (f"{monitor} converged ({best}; it stopped improving beyond its noise at epoch "
            f"{p.epoch}) with a small or stable gap{stop}.")


def diagnose_curves(history: Any, options: DiagnosisOptions | None = None,
                    **option_values: Any) -> Diagnosis:
    """Diagnose one run's history (see the module docstring) with ``options``, or the
    ``DiagnosisOptions`` the keyword arguments make (``monitor=``, ``patience=``, ...; given
    with ``options``, they override its fields). Raises ValueError on bad input."""
    opts = DiagnosisOptions.of(options, **option_values)
    th = opts.thresholds
    monitor, train_metric, mode = opts.monitor, opts.train_metric, opts.mode
    min_delta, relative_delta, patience = opts.min_delta, opts.relative_delta, opts.patience
    chance, num_classes = opts.chance, opts.num_classes
    given = opts.given()
    curves = history_curves(history)
    monitor, partner = _pick_monitor(curves, monitor)
    if train_metric is not None:
        if train_metric not in curves:
            raise ValueError(f"train metric {train_metric!r} not in the history; metrics "
                             f"present: {', '.join(sorted(curves))}")
        partner = train_metric
    mode = mode or metric_mode(monitor)  # a given mode was checked by DiagnosisOptions
    config = {"given": given, "monitor": monitor, "train_metric": partner, "mode": mode,
              "min_delta": min_delta,
              "relative_delta": relative_delta, "patience": patience, "chance": chance,
              "num_classes": num_classes, **{f.name: getattr(th, f.name) for f in fields(th)}}

    val_curve = curves[monitor]
    val_values, val_pct = as_fraction(val_curve.values, monitor)
    val_curve = Curve(val_curve.name, val_curve.epochs, val_values)
    train_curve = None
    if partner is not None:
        tv, _ = as_fraction(curves[partner].values, partner)
        train_curve = Curve(partner, curves[partner].epochs, tv)

    evidence: dict[str, Any] = {"epochs": 0, "percent_scaled": val_pct}
    val_ok, val_bad = finite_prefix(val_curve)
    train_ok, train_bad = finite_prefix(train_curve) if train_curve is not None else (None, None)
    evidence["epochs"] = len(val_ok)
    if not train_curve:
        evidence["note"] = "no training curve paired with the monitor; gap not computed"

    def result(verdict: str, p: PlateauResult | None, g: GapResult | None,
               alternatives: list[dict[str, Any]] | None = None) -> Diagnosis:
        evidence["verdict_rule"] = verdict
        alts = alternatives or []
        f = None if verdict in ("diverged", "insufficient_data") else _forecast_for(val_ok, mode)
        summary = _summary(verdict, monitor, p, g, evidence, f)
        if alts:
            summary += f" Close to {alts[0]['verdict']}: {alts[0]['why']}."
        return Diagnosis(verdict, summary, evidence, list(_RECOMMENDATIONS[verdict]), monitor,
                         partner, mode, p, g, config, alternatives=alts, forecast=f)

    # The first non-finite epoch of the monitor or its training curve; the monitor wins a tie.
    diverged = sorted((e, n != monitor, n) for e, n in ((val_bad, monitor), (train_bad, partner))
                      if e is not None)
    last_val_epoch = int(val_curve.epochs[-1]) if len(val_curve) else None
    if diverged and last_val_epoch is not None and diverged[0][0] <= last_val_epoch:
        # Even NaN from the first epoch is a divergence (e.g. NaN inputs or a huge learning
        # rate), not a lack of data: the epoch is reported, the plateau only when there is one.
        epoch, _, name = diverged[0]
        evidence.update(diverged_epoch=epoch, diverged_metric=name, diverged_how="non-finite")
        p = plateau_epoch(val_ok.values, mode=mode, min_delta=min_delta,
                          relative_delta=relative_delta, patience=patience,
                          epochs=val_ok.epochs) if len(val_ok) else None
        return result("diverged", p, None)
    if len(val_ok) < th.min_epochs:
        evidence["min_epochs"] = th.min_epochs
        return result("insufficient_data", None, None)

    p = plateau_epoch(val_ok.values, mode=mode, min_delta=min_delta,
                      relative_delta=relative_delta, patience=patience, epochs=val_ok.epochs)
    evidence.update(plateau_epoch=p.epoch, plateau_low=p.low, plateau_high=p.high,
                    best_epoch=p.best_epoch, best_value=p.best_value, final_value=val_ok.values[-1],
                    tolerance=p.tolerance, noise=p.noise, improvement=p.improvement,
                    stop_epoch=p.stop_epoch, wasted_epochs=p.wasted_epochs,
                    still_improving=p.still_improving)

    g = None
    if train_ok is not None and len(train_ok) >= 1:
        common, t_vals, v_vals = _aligned(train_ok, val_ok)
        try:
            g = generalization_gap(t_vals, v_vals, mode=mode, epochs=common,
                                   best_epoch=p.best_epoch, from_epoch=p.epoch) \
                if common.size >= 1 else None
        except ValueError as exc:  # train and val too far apart to subtract: diagnose without it
            evidence["gap_error"] = str(exc)
        if g is not None:
            evidence.update(gap_final=g.final, gap_at_best=g.at_best,
                            gap_relative_final=g.relative_final, gap_trend=g.trend,
                            gap_trend_low=g.trend_low, gap_trend_high=g.trend_high)
        if mode == "min":
            t = train_ok.values
            if t.size >= 2 and t.min() > 0 and t[-1] >= th.explode_factor * t.min() \
                    and t[-1] > t[0]:
                # Report where it exploded: the first epoch at explode_factor x the best before it.
                exploded = np.flatnonzero(t >= th.explode_factor * np.minimum.accumulate(t))
                evidence.update(diverged_epoch=int(train_ok.epochs[exploded[0]]),
                                diverged_metric=partner, diverged_how="exploded",
                                explode_factor=th.explode_factor,
                                train_final=float(t[-1]), train_best=float(t.min()))
                return result("diverged", p, g)
            ratio = _blew_up_then_dead(t, val_ok.values, th)
            if ratio is not None:
                evidence.update(diverged_epoch=int(train_ok.epochs[0]), diverged_metric=partner,
                                diverged_how="dead", blowup_ratio=ratio)
                return result("diverged", p, g)

    val_acc, train_acc = _accuracy_pair(curves, val_ok.epochs)
    val_loss = _loss_values(curves, monitor, mode, val_ok.values, "val")
    train_loss = _loss_values(curves, partner if mode == "min" else None, mode,
                              train_ok.values if (train_ok is not None and mode == "min") else None,
                              "train")
    level, k, level_source = _chance_level(monitor, mode, chance, num_classes, val_acc,
                                           [val_loss, train_loss])
    if level is not None:
        evidence.update(chance=level, chance_source=level_source)
    else:
        evidence["chance_source"] = level_source
    # Long curves are read as plateau_epoch read them: in MAX_POINTS equal blocks (their means),
    # so the rules see the same points as the fit, at a bounded cost.
    val_r, train_r = _blocks(val_ok, p.fitted.size), (
        _blocks(train_ok, p.fitted.size) if train_ok is not None else None)
    reading = make_reading(val_r, mode, p.fitted, p.epoch, train_r, val_acc, train_acc, val_loss, level,
                           k, level_source)
    evidence.update(noise=reading.sigma, came=reading.came)
    verdict, chosen, findings = decide(reading, th)
    for f in considered(chosen, findings):
        evidence[f"score_{f.verdict}"] = f.score
    evidence["decided_by"] = chosen.why if chosen is not None else \
        "no rule fired: converged, no clear worsening, a small or stable gap, a good fit"
    alternatives = close_calls(chosen, findings, verdict)
    return result(verdict, p, g, alternatives)


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


def _is_accuracy(name: str) -> bool:
    words = set(_words(name))
    return bool(words & {"acc", "accuracy"})


def _accuracy_pair(curves: dict[str, Curve], epochs: np.ndarray
                   ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The run's validation and training accuracy (fractions, finite), if it logged them."""
    pairs = pair_curves(curves)
    ranked = sorted((p for p in pairs.values() if _is_accuracy(p.base)),
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


@dataclass(frozen=True)
class ScalingVerdict:
    """The verdict on a learning curve (error against training-set size)."""

    verdict: str
    summary: str
    evidence: dict[str, Any]
    recommendations: list[str]
    fit: ScalingResult

    def to_dict(self) -> dict[str, Any]:
        return _json_safe({"schema_version": SCHEMA_VERSION, "verdict": self.verdict,
                           "summary": self.summary, "evidence": self.evidence,
                           "recommendations": self.recommendations, "fit": self.fit.to_dict()})


def _grows_with_size(fit: ScalingResult) -> bool:
    """The error rises with the size beyond its scatter: the log-log least-squares slope is
    positive by more than twice its standard error (a slope of noise around a flat curve is not
    growth)."""
    if fit.slope is None or fit.slope <= 0 or fit.sizes.size < 3:
        return False
    x, y = np.log(fit.sizes), np.log(fit.errors)
    sxx = float(np.sum((x - x.mean()) ** 2))
    if sxx <= 0:
        return False
    resid = y - y.mean() - fit.slope * (x - x.mean())
    se = math.sqrt(float(np.sum(resid ** 2)) / (x.size - 2) / sxx)
    return fit.slope > 2.0 * se


def scaling_verdict(fit: ScalingResult, thresholds: Thresholds | None = None) -> ScalingVerdict:
    """Classify a learning curve fitted by ``scaling_fit`` (see the module docstring)."""
    th = thresholds or Thresholds()
    if fit.insufficient_points:
        return ScalingVerdict(
            "insufficient_points",
            f"Only {fit.n_distinct} distinct training size(s): at least 3 are needed to fit a "
            "learning curve.", {"n_distinct": fit.n_distinct},
            ["Train the same configuration at 3 or more training-set sizes (e.g. 1/8, 1/4, 1/2 "
             "and all of the data)."], fit)
    evidence = {"exponent": fit.exponent, "exponent_low": fit.low, "exponent_high": fit.high,
                "floor": fit.floor, "slope": fit.slope, "gain_at_2x": fit.gain_at_2x,
                "largest_size": float(fit.sizes.max()), "n_distinct": fit.n_distinct}
    gain = fit.gain_at_2x or 0.0
    pct = f"{100 * gain:.1f}%"
    # The sentence states the numbers the plot draws (observed at the largest size, the fit at
    # twice it), so a predicted drop is never read against an observation it contradicts.
    n_max = float(fit.sizes.max())
    with np.errstate(over="ignore", invalid="ignore"):  # errors near 1e308 overflow a mean
        observed = float(np.mean(fit.errors[fit.sizes == fit.sizes.max()]))
    predicted = float(fit.predict(2 * n_max)) if fit.exponent is not None else float("nan")
    evidence["observed_at_largest"] = observed
    evidence["predicted_at_2x"] = predicted
    where = (f" (observed {observed:.4g} at n={n_max:g} \u2192 predicted {predicted:.4g} at "
             f"n={2 * n_max:g}; exponent {fit.exponent:.2f}, 90% interval "
             f"{fit.low:.2f}\u2013{fit.high:.2f})") if fit.exponent is not None else ""
    if gain >= th.data_limited_gain:
        return ScalingVerdict(
            "data_limited", f"Doubling the data is predicted to cut the error by {pct}{where}: "
            "the model is still data-limited.", evidence,
            ["Collect more training data, or augment the data you have.",
             "Keep model capacity as is until the learning curve flattens."], fit)
    if gain >= th.saturated_gain:
        return ScalingVerdict(
            "diminishing_returns", f"Doubling the data is predicted to cut the error by only "
            f"{pct}{where}: returns from more data are diminishing.", evidence,
            ["More data helps a little; larger gains are likelier from capacity, features or "
             "regularization."], fit)
    note = " (error grows with size)" if _grows_with_size(fit) else ""
    return ScalingVerdict(
        "saturated", f"More data is not predicted to help (gain at 2x: {pct}){where}{note}: the "
        "learning curve has flattened at its floor.", evidence,
        ["Change the model (capacity, architecture) or the data quality rather than its "
         "quantity; check label noise."], fit)


__all__ = [
    "SCALING_VERDICTS",
    "VERDICTS",
    "Diagnosis",
    "ScalingVerdict",
    "Thresholds",
    "check_options",
    "diagnose_curves",
    "no_validation_metric",
    "scaling_verdict",
]
