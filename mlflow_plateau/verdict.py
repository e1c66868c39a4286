"""The verdict on a training run, and on a group of runs at several training-set sizes.

``diagnose_curves(history, monitor=None, ...)`` reads a history (see ``curves.history_curves``),
picks the monitored curve (``val_loss`` by default; else the first validation loss, else any
validation curve, else the training loss), pairs it with its training curve, computes
``plateau_epoch`` and ``generalization_gap`` and decides one verdict, checked in this order:

``diverged``           the monitor or its training curve hit NaN/inf within the monitor's epochs
                       (the first such epoch is reported, even epoch 0 of an all-NaN curve).
``insufficient_data``  fewer than ``Thresholds.min_epochs`` finite epochs of the monitor.
``diverged``           the training loss ended ``explode_factor`` times above its best and above
                       its first value (reported: the first epoch at that factor over the best
                       before it).
``at_chance``          the best validation value (the less optimistic of the raw best and the best
                       of ``PlateauResult.fitted``) is no better than a constant predictor by more
                       than ``chance_margin`` (relative for a loss, absolute for accuracy) or twice
                       the noise, whichever is larger, so the noise of a small validation set does
                       not count as learning. Chance is ``ln k`` for a cross-entropy loss (``ln 2``
                       binary; ``k`` from ``num_classes``, else from an accuracy curve's presence
                       and the first training loss, rounded to the nearest ``ln k``), ``1/k`` for
                       accuracy, or a ``chance`` value given.
``unstable``           the noise is large against the improvement (``noise / improvement >=
                       unstable_noise_ratio``) or the curve jumps back by more than
                       ``unstable_jump`` of its range in one epoch.
``overfitting``        validation ended worse than its best by more than the tolerance while
                       training kept improving, or the gap grows after the plateau (its trend's
                       90% interval above zero) and ends above ``overfit_relative_gap`` relative.
``not_converged``      the monitor is still improving at the end (``PlateauResult.still_improving``).
``underfitting``       converged with a small gap (or a monitor that never improved beyond its
                       tolerance, gap or not) but a poor fit: the training loss stayed above
                       ``underfit_chance_fraction`` of the chance loss, or (no chance level known)
                       ended above ``underfit_improvement`` of its first value.
``healthy``            none of the above.

Every verdict carries its evidence (the numbers that decided it) and plain-word recommendations.
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
from .curves import Curve, as_fraction, finite_prefix, history_curves, metric_mode, pair_curves
from .forecast import ForecastResult, forecast_curve, forecast_sentence
from .gap import GapResult, generalization_gap
from .plateau import PlateauResult, plateau_epoch
from .scaling import ScalingResult

VERDICTS = ("healthy", "overfitting", "underfitting", "at_chance", "not_converged", "unstable",
            "diverged", "insufficient_data")
SCALING_VERDICTS = ("data_limited", "diminishing_returns", "saturated", "insufficient_points")
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Thresholds:
    """The cut-offs behind each verdict (see the module docstring)."""

    min_epochs: int = 3
    explode_factor: float = 10.0
    chance_margin: float = 0.02
    unstable_noise_ratio: float = 0.3
    unstable_jump: float = 0.5
    overfit_relative_gap: float = 0.1
    underfit_chance_fraction: float = 0.6
    underfit_improvement: float = 0.5
    data_limited_gain: float = 0.05
    saturated_gain: float = 0.01


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
    loss_like = [p for p in pairs.values() if _is_loss(p.base)]
    for group in (loss_like, list(pairs.values())):
        with_val = [p for p in group if p.val]
        if with_val:
            return with_val[0].val, with_val[0].train
    for group in (loss_like, list(pairs.values())):
        if group:
            return group[0].train, None
    raise ValueError("no curve to monitor")  # pragma: no cover - pairs is non-empty


def _is_loss(name: str) -> bool:
    try:
        return metric_mode(name) == "min"
    except ValueError:
        return False


def _aligned(a: Curve, b: Curve) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    common, ia, ib = np.intersect1d(a.epochs, b.epochs, assume_unique=True, return_indices=True)
    return common, a.values[ia], b.values[ib]


def _chance_level(curves: dict[str, Curve], monitor: str, train: str | None, mode: str,
                  chance: float | None, num_classes: int | None) -> tuple[float | None, str]:
    if chance is not None:
        return float(chance), "given"
    words = monitor.lower()
    is_accuracy = mode == "max" and "acc" in words
    if num_classes is not None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, not {num_classes}")
        if is_accuracy:
            return 1.0 / num_classes, f"1/{num_classes} classes"
        if mode == "min" and "loss" in words:
            return math.log(num_classes), f"ln({num_classes}) classes"
        return None, "unknown"
    has_accuracy = any("acc" in name.lower() for name in curves)
    if not has_accuracy:
        return None, "unknown (no accuracy metric, pass num_classes or chance)"
    first = curves.get(train) if train else None
    first_loss = float(first.values[0]) if first is not None and len(first) else None
    k = 2
    # A first loss above ln(100000) is no constant predictor's cross-entropy (and exp overflows).
    if first_loss is not None and 0 < first_loss <= math.log(1e5):
        k = max(2, round(math.exp(first_loss)))
    if is_accuracy:
        return 1.0 / k, f"1/{k} classes (from the first training loss)"
    if mode == "min" and "loss" in words:
        return math.log(k), f"ln({k}) classes (from the first training loss)"
    return None, "unknown"


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
        how = (f"exploded (to {ev.get('explode_factor', 10):g}x its best or more)"
               if ev.get("diverged_how") == "exploded" else "became NaN/inf")
        return f"Training diverged: {ev.get('diverged_metric')} {how} at epoch " \
               f"{ev.get('diverged_epoch')}."
    assert p is not None
    stop = (f"; EarlyStopping would have stopped at epoch {p.stop_epoch}, "
            f"{p.wasted_epochs} epochs earlier" if p.stop_epoch is not None and p.wasted_epochs
            else "")
    if verdict == "at_chance":
        return (f"{monitor} never beat a constant predictor (best {p.best_value:.4g} vs chance "
                f"{ev['chance']:.4g}): the model learned nothing that generalizes.")
    if verdict == "unstable":
        if ev.get("unstable_by") == "jump":
            return (f"{monitor} jumped back by {100 * ev['largest_jump_back']:.0f}% of its range "
                    "in one epoch; training is unstable.")
        return (f"{monitor} is too noisy to trust (noise {p.noise:.3g} against a total "
                f"improvement of {p.improvement:.3g}); training is unstable.")
    if verdict == "overfitting":
        gap = f" and the gap grew to {g.final:.3g}" if g is not None else ""
        return (f"{monitor} stopped improving at epoch {p.epoch} while training kept improving"
                f"{gap}: the model is overfitting{stop}.")
    if verdict == "not_converged":
        return (f"{monitor} was still improving at the last epoch ({p.last_epoch}): training "
                "ended before it converged" + forecast_sentence(f, monitor) + ".")
    if verdict == "underfitting":
        if ev.get("monitor_never_improved"):
            return (f"{monitor} never improved by more than {p.tolerance:.3g} and the training "
                    "loss stayed high: the model is underfitting.")
        return (f"{monitor} plateaued at epoch {p.epoch} with a small gap but a poor fit: the "
                "model is underfitting.")
    return (f"{monitor} plateaued at epoch {p.epoch} (best {p.best_value:.4g} at epoch "
            f"{p.best_epoch}) with a small gap{stop}.")


def diagnose_curves(history: Any, *, monitor: str | None = None, train_metric: str | None = None,
                    mode: str | None = None, min_delta: float = 0.0,
                    relative_delta: float | None = 0.01, patience: int = 10,
                    chance: float | None = None, num_classes: int | None = None,
                    thresholds: Thresholds | None = None) -> Diagnosis:
    """Diagnose one run's history (see the module docstring). Raises ValueError on bad input."""
    th = thresholds or Thresholds()
    curves = history_curves(history)
    monitor, partner = _pick_monitor(curves, monitor)
    if train_metric is not None:
        if train_metric not in curves:
            raise ValueError(f"train metric {train_metric!r} not in the history; metrics "
                             f"present: {', '.join(sorted(curves))}")
        partner = train_metric
    mode = mode or metric_mode(monitor)
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
    config = {"monitor": monitor, "train_metric": partner, "mode": mode, "min_delta": min_delta,
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

    def result(verdict: str, p: PlateauResult | None, g: GapResult | None) -> Diagnosis:
        evidence["verdict_rule"] = verdict
        f = None if verdict == "diverged" else _forecast_for(val_ok, mode)
        return Diagnosis(verdict, _summary(verdict, monitor, p, g, evidence, f), evidence,
                         list(_RECOMMENDATIONS[verdict]), monitor, partner, mode, p, g, config,
                         forecast=f)

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
    train_best_ratio = None
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

    level, level_source = _chance_level(curves, monitor, partner, mode, chance, num_classes)
    if level is not None:
        evidence.update(chance=level, chance_source=level_source)
        # Both estimates of the best value are optimistic: the raw best of 30 noisy epochs
        # hovering at chance lies a couple of noise sd beyond it (a small validation set is
        # noisy), and the smoothed curve extrapolates a rise back past the first epochs. The
        # less optimistic of the two is what the model demonstrably reached.
        if mode == "min":
            best_fit = max(float(p.fitted.min()), p.best_value)
        else:
            best_fit = min(float(p.fitted.max()), p.best_value)
        evidence["best_robust"] = best_fit
        # As for the plateau, a gain smaller than twice the noise is not one the curve shows.
        if mode == "min":
            at_chance = best_fit >= level - max(th.chance_margin * level, 2.0 * p.noise)
        else:
            at_chance = best_fit <= level + max(th.chance_margin, 2.0 * p.noise)
        if at_chance:
            return result("at_chance", p, g)

    z = val_ok.values if mode == "min" else -val_ok.values
    span = float(np.ptp(z))
    jump = float(np.max(np.diff(z))) / span if span > 0 and z.size > 1 else 0.0
    ratio = p.noise / p.improvement if p.improvement > 0 else (math.inf if p.noise > 0 else 0.0)
    evidence.update(noise_ratio=ratio, largest_jump_back=jump)
    if ratio >= th.unstable_noise_ratio or jump >= th.unstable_jump:
        evidence["unstable_by"] = "noise" if ratio >= th.unstable_noise_ratio else "jump"
        return result("unstable", p, g)

    fitted_z = p.fitted if mode == "min" else -p.fitted
    worsened = float(fitted_z[-1] - fitted_z.min())
    evidence["val_worsened_by"] = worsened
    train_improving = False
    if train_ok is not None and len(train_ok) >= 3:
        tz = train_ok.values if mode == "min" else -train_ok.values
        after = tz[train_ok.epochs >= p.best_epoch]
        train_improving = bool(after.size >= 2 and after[-1] < after[0])
    evidence["train_improving_after_best"] = train_improving
    gap_growing = bool(g is not None and g.growing and g.relative_final is not None
                       and g.relative_final >= th.overfit_relative_gap)
    if (worsened > p.tolerance and train_improving) or (gap_growing and not p.still_improving):
        return result("overfitting", p, g)
    if p.still_improving:
        return result("not_converged", p, g)

    small_gap = g is None or abs(g.final) <= max(p.tolerance,
                                                 th.overfit_relative_gap * abs(val_ok.values[-1]))
    # A monitor that never improved beyond its tolerance while training barely moved learned
    # nothing, whatever the (then constant) gap: that is a poor fit, not a healthy run.
    flat = p.improvement <= p.tolerance
    evidence["monitor_never_improved"] = flat
    if train_ok is not None and len(train_ok) >= 2 and mode == "min" and (small_gap or flat):
        t = train_ok.values
        if level is not None and "loss" in monitor.lower():
            train_best_ratio = float(t.min()) / level
            evidence["train_best_over_chance"] = train_best_ratio
            if train_best_ratio >= th.underfit_chance_fraction:
                return result("underfitting", p, g)
        elif t[0] > 0 and t.min() > 0:
            evidence["train_final_over_first"] = float(t[-1] / t[0])
            if t[-1] >= th.underfit_improvement * t[0]:
                return result("underfitting", p, g)
    return result("healthy", p, g)


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
    if gain >= th.data_limited_gain:
        return ScalingVerdict(
            "data_limited", f"Doubling the data is predicted to cut the error by {pct}: the model "
            "is still data-limited.", evidence,
            ["Collect more training data, or augment the data you have.",
             "Keep model capacity as is until the learning curve flattens."], fit)
    if gain >= th.saturated_gain:
        return ScalingVerdict(
            "diminishing_returns", f"Doubling the data is predicted to cut the error by only "
            f"{pct}: returns from more data are diminishing.", evidence,
            ["More data helps a little; larger gains are likelier from capacity, features or "
             "regularization."], fit)
    grows = fit.slope is not None and fit.slope > 0
    note = " (error grows with size)" if grows else ""
    return ScalingVerdict(
        "saturated", f"More data is not predicted to help (gain at 2x: {pct}){note}: the "
        "learning curve has flattened at its floor.", evidence,
        ["Change the model (capacity, architecture) or the data quality rather than its "
         "quantity; check label noise."], fit)


__all__ = [
    "SCALING_VERDICTS",
    "VERDICTS",
    "Diagnosis",
    "ScalingVerdict",
    "Thresholds",
    "diagnose_curves",
    "scaling_verdict",
]
