"""What a verdict says in words: the one-sentence summaries and the recommendations.

``run_summary`` words the verdict on one run (``verdict.diagnose_curves``) from its evidence,
plateau and forecast, naming the closest alternative when one came close; ``RECOMMENDATIONS``
holds what to try next for each run verdict. ``scaling_summary`` and ``SCALING_RECOMMENDATIONS``
do the same for a learning curve (``verdict_scaling.scaling_verdict``). The rules word their own
one line of why (``Finding.why``, see ``rules.py``); the forecast's clause is
``forecast.forecast_sentence``. Nothing here decides a verdict: the numbers come in decided.
"""

from __future__ import annotations

from typing import Any

from .forecast import ForecastResult, forecast_sentence
from .gap import GapResult
from .plateau import PlateauResult
from .scaling import ScalingResult

RECOMMENDATIONS: dict[str, list[str]] = {
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

SCALING_RECOMMENDATIONS: dict[str, list[str]] = {
    "insufficient_points": ["Train the same configuration at 3 or more training-set sizes (e.g. "
                            "1/8, 1/4, 1/2 and all of the data)."],
    "data_limited": ["Collect more training data, or augment the data you have.",
                     "Keep model capacity as is until the learning curve flattens."],
    "diminishing_returns": ["More data helps a little; larger gains are likelier from capacity, "
                            "features or regularization."],
    "saturated": ["Change the model (capacity, architecture) or the data quality rather than its "
                  "quantity; check label noise."],
}

# ``decided_by`` when no rule fired.
NO_RULE_FIRED = "no rule fired: converged, no clear worsening, a small or stable gap, a good fit"


def run_summary(verdict: str, monitor: str, p: PlateauResult | None, g: GapResult | None,
                ev: dict[str, Any], f: ForecastResult | None = None,
                alternatives: list[dict[str, Any]] | None = None) -> str:
    """The verdict on one run in one sentence (the ``plateau.summary`` tag), from its evidence
    ``ev``, plateau ``p`` and forecast ``f``; then the first of ``alternatives`` (the closest
    verdict that did not win) with its reason."""
    text = _verdict_sentence(verdict, monitor, p, ev, f)
    if alternatives:
        text += f" Close to {alternatives[0]['verdict']}: {alternatives[0]['why']}."
    return text


def _verdict_sentence(verdict: str, monitor: str, p: PlateauResult | None, ev: dict[str, Any],
                      f: ForecastResult | None) -> str:
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


def scaling_summary(verdict: str, fit: ScalingResult, observed: float, predicted: float,
                    grows: bool) -> str:
    """The verdict on a learning curve in one sentence. It states the numbers the plot draws
    (``observed`` at the largest size, ``predicted`` by the fit at twice it), so a predicted drop
    is never read against an observation it contradicts; ``grows``: the error rises with the
    size (said only of a saturated curve)."""
    if verdict == "insufficient_points":
        return (f"Only {fit.n_distinct} distinct training size(s): at least 3 are needed to fit a "
                "learning curve.")
    pct = f"{100 * (fit.gain_at_2x or 0.0):.1f}%"
    n_max = float(fit.sizes.max())
    where = (f" (observed {observed:.4g} at n={n_max:g} \u2192 predicted {predicted:.4g} at "
             f"n={2 * n_max:g}; exponent {fit.exponent:.2f}, 90% interval "
             f"{fit.low:.2f}\u2013{fit.high:.2f})") if fit.exponent is not None else ""
    if verdict == "data_limited":
        return (f"Doubling the data is predicted to cut the error by {pct}{where}: the model is "
                "still data-limited.")
    if verdict == "diminishing_returns":
        return (f"Doubling the data is predicted to cut the error by only {pct}{where}: returns "
                "from more data are diminishing.")
    note = " (error grows with size)" if grows else ""
    return (f"More data is not predicted to help (gain at 2x: {pct}){where}{note}: the learning "
            "curve has flattened at its floor.")


__all__ = ["NO_RULE_FIRED", "RECOMMENDATIONS", "SCALING_RECOMMENDATIONS", "run_summary",
           "scaling_summary"]
