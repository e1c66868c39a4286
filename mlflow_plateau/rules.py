"""The verdict rules: what a practitioner reads from a run's curves, as small named functions.

``make_reading(...)`` (``reading.py``) measures, once, everything the rules look at (a frozen
``Reading``); ``RULES`` lists the rules in the order of precedence of ``docs/verdicts.md``::

    at_chance > unstable > overfitting > not_converged > underfitting > healthy

(``diverged`` and ``insufficient_data`` are decided before, from NaN/inf and the epoch count). Each
rule returns a ``Finding``: whether it fires, a ``score`` (the deciding number over its threshold,
so 1.0 is the line and 0.8 "came close") and one line of why, in a reader's words. ``decide``
runs them and picks the verdict; ``close_calls`` lists the verdicts that came close.

The rules, each described where it is defined: ``at_chance`` in ``rules_chance.py`` (with
``infer_chance``, the class count read off a run); ``unstable``, ``overfitting``,
``not_converged`` and ``underfitting`` in ``rules_shape.py``; ``healthy`` is none of them firing:
converged, no clear worsening, a small or stable gap. Every number is judged against the curve's
own scale, as a reader does (noise, how far the curve came, a log10 reading of a loss spanning
a decade: see ``reading.py``); the lines are ``RuleThresholds``.

Every public name of those modules a caller used from here is importable from here. Nothing here
imports mlflow or keras.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .reading import (
    Finding,
    Reading,
    RuleThresholds,
    late_noise,
    make_reading,
    robust_noise,
)
from .rules_chance import infer_chance, rule_at_chance
from .rules_shape import (
    rule_not_converged,
    rule_overfitting,
    rule_underfitting,
    rule_unstable,
    tail_still_falling,
    tail_window,
)

Rule = Callable[[Reading, RuleThresholds], Finding]

RULES: tuple[tuple[str, Rule], ...] = (
    ("at_chance", rule_at_chance),
    ("unstable", rule_unstable),
    ("overfitting", rule_overfitting),
    ("not_converged", rule_not_converged),
    ("underfitting", rule_underfitting),
)


def decide(r: Reading, th: RuleThresholds) -> tuple[str, Finding | None, list[Finding]]:
    """Every rule's finding in order of precedence, and the verdict: the first rule that fires,
    else ``healthy``."""
    findings = [rule(r, th) for _name, rule in RULES]
    chosen = next((f for f in findings if f.fires), None)
    return (chosen.verdict if chosen else "healthy"), chosen, findings


def considered(chosen: Finding | None, findings: list[Finding]) -> list[Finding]:
    """The findings a reader weighs before deciding: the rules up to the one that fired."""
    return findings if chosen is None else findings[:findings.index(chosen) + 1]


def close_calls(chosen: Finding | None, findings: list[Finding], verdict: str,
                band: float = 1.5) -> list[dict[str, Any]]:
    """The verdicts that came close, each with the number that decided it.

    A rule up to the chosen one that did not fire but scored at least ``1/band`` of its threshold
    came close; so did the verdict next in line (the next rule that fires, or healthy) when the
    chosen rule fired by less than ``band`` times its threshold. ``findings`` are ``decide``'s.
    """
    out: list[dict[str, Any]] = []
    seen = {verdict}
    for f in considered(chosen, findings):
        if not f.fires and f.score >= 1.0 / band and f.verdict not in seen:
            out.append({"verdict": f.verdict, "score": round(float(f.score), 3), "why": f.why})
            seen.add(f.verdict)
    if chosen is not None and chosen.score < band:
        later = findings[findings.index(chosen) + 1:]
        following = next((f.verdict for f in later if f.fires), "healthy")
        if following not in seen:
            out.append({"verdict": following, "score": round(float(1.0 / chosen.score), 3),
                        "why": f"{chosen.verdict} only by {chosen.score:.2f}x its threshold "
                               f"({chosen.why})"})
    return out[:2]


__all__ = [
    "RULES",
    "Finding",
    "Reading",
    "Rule",
    "RuleThresholds",
    "close_calls",
    "considered",
    "decide",
    "infer_chance",
    "late_noise",
    "make_reading",
    "robust_noise",
    "rule_at_chance",
    "rule_not_converged",
    "rule_overfitting",
    "rule_underfitting",
    "rule_unstable",
    "tail_still_falling",
    "tail_window",
]
