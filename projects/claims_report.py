"""The claims table as text: one formatter for ``main``'s ``claims.md`` and for ``projects/CLAIMS.md``.

A *row* is ``(Claim, Outcome, held)``: one variant, what was measured, whether its claim held
(``None``: not measured). ``claims_table`` renders the rows of one or more seeds as Markdown:
``main`` passes its one seed, ``projects.claims_table`` the seeds it ran. With several seeds a
cell shows each seed's value, ``a / b / c``, or ``a ×3`` when every seed agrees; with one seed it
is that seed's value. ``held_summary`` is the "N of M claims held" sentence. ``rows_to_json`` /
``rows_from_json`` are what ``main`` logs as ``claims.json`` and what ``CLAIMS.md`` is rendered
from, so the committed table is rebuilt from measured outcomes, never typed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from .claims import BY_KEY, Claim, Outcome

Row = tuple[Claim, Outcome, "bool | None"]
HELD_TEXT = {True: "yes", False: "no", None: "n/a"}


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _cell(values: Sequence[str]) -> str:
    """One seed's value, or each seed's joined by " / ", or "v ×N" when all N agree."""
    if len(values) > 1 and len(set(values)) == 1:
        return f"{values[0]} ×{len(values)}"
    return " / ".join(values)


def _aligned(rows_by_seed: Mapping[int, Sequence[Row]]) -> list[list[Row]]:
    """The seeds' rows side by side, one list (a row per seed) per claim, in the first seed's order."""
    seeds = list(rows_by_seed)
    if not seeds:
        raise ValueError("claims table: no seed measured")
    first = [claim.key for claim, _, _ in rows_by_seed[seeds[0]]]
    for seed in seeds[1:]:
        keys = [claim.key for claim, _, _ in rows_by_seed[seed]]
        if keys != first:
            raise ValueError(f"claims table: seed {seed} measured other variants than seed {seeds[0]} "
                             f"({sorted(set(keys) ^ set(first))} differ)")
    return [[rows_by_seed[seed][i] for seed in seeds] for i in range(len(first))]


def claims_table(rows_by_seed: Mapping[int, Sequence[Row]]) -> str:
    """The claims table as Markdown (variant, source, claim, verdict, plateau epoch, gap, held),
    then the notes on the setups and what the diagnosis said, for one seed or several."""
    seeds = list(rows_by_seed)
    per = "" if len(seeds) == 1 else f", seeds {' / '.join(map(str, seeds))}"
    lines = [f"| scenario | source | the document's claim | measured verdict{per} | plateau epoch | gap | "
             f"claim held?{per} |", "|---|---|---|---|---:|---:|---|"]
    notes, details = [], []
    for variant in _aligned(rows_by_seed):
        claim = variant[0][0]
        check = f" ({claim.check_text})" if claim.check_text else ""
        verdicts = _cell([out.verdict or "–" for _, out, _ in variant])
        epochs = _cell([_fmt(out.plateau_epoch) for _, out, _ in variant])
        gaps = _cell([_fmt(out.gap) for _, out, _ in variant])
        held = _cell([HELD_TEXT[h] for _, _, h in variant])
        lines.append(f"| {claim.key} | {claim.source[:3]} | {claim.claim}{check} | {verdicts} | "
                     f"{epochs} | {gaps} | {held} |")
        if claim.note:
            notes.append(f"- **{claim.key}**: {claim.note}")
        for seed, (_, out, _) in zip(seeds, variant, strict=True):
            if out.detail:
                where = "" if len(seeds) == 1 else f", seed {seed}"
                details.append(f"- **{claim.key}**{where}: {out.detail}")
    return "\n".join([*lines, "", "Notes on the setups:", "", *notes, "", "What the diagnosis said:",
                      "", *details, ""])


def held_count(rows: Sequence[Row]) -> tuple[int, int]:
    """(claims held, claims judged) among one seed's rows."""
    return sum(1 for *_, h in rows if h), sum(1 for *_, h in rows if h is not None)


def held_summary(rows_by_seed: Mapping[int, Sequence[Row]]) -> str:
    """"N of M judged claims held (seed S)." for one seed; for several, how many held on every seed,
    failed on every seed, or changed between seeds (naming those), and each seed's count when
    they differ."""
    seeds = list(rows_by_seed)
    counts = [held_count(rows_by_seed[s]) for s in seeds]
    if len(seeds) == 1:
        (held, judged), = counts
        return f"{held} of {judged} judged claims held (seed {seeds[0]})."
    variants = _aligned(rows_by_seed)
    always = sum(1 for v in variants if all(h is True for *_, h in v))
    never = sum(1 for v in variants if all(h is False for *_, h in v))
    moved = [v[0][0].key for v in variants if len({h for *_, h in v}) > 1]
    unmeasured = len(variants) - always - never - len(moved)
    text = (f"{always} of {len(variants)} claims held on every seed ({', '.join(map(str, seeds))}), "
            f"{never} failed on every seed")
    if unmeasured:
        text += f", {unmeasured} could not be measured on any seed"
    if not moved:
        return f"{text}: whether a claim held never changed between seeds."
    each = ", ".join(f"seed {s} {h} of {j}" for s, (h, j) in zip(seeds, counts, strict=True))
    return f"{text}; whether it held changed between seeds for {', '.join(moved)} (held: {each})."


def verdicts_that_moved(rows_by_seed: Mapping[int, Sequence[Row]]) -> list[str]:
    """The variants whose verdict was not the same on every seed."""
    return [v[0][0].key for v in _aligned(rows_by_seed) if len({o.verdict for _, o, _ in v}) > 1]


def rows_to_json(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """One seed's rows as JSON-ready dicts: the variant's key, whether it held, the outcome."""
    return [{"key": claim.key, "held": held, "outcome": dataclasses.asdict(out)} for claim, out, held in rows]


def rows_from_json(items: Sequence[Mapping[str, Any]], where: str) -> list[Row]:
    """``rows_to_json``'s output back as rows, each with its claim from ``claims.CLAIMS``; ``where``
    names the file or run in the error when a key is no longer a claim."""
    rows = []
    for item in items:
        claim = BY_KEY.get(item["key"])
        if claim is None:
            raise ValueError(f"{where}: variant {item['key']!r} is not in projects/claims.py any more; "
                             "measure again (python -m projects.claims_table)")
        rows.append((claim, Outcome(**item["outcome"]), item["held"]))
    return rows
