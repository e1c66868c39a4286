"""Which of several runs stopped learning first, and why: a ranking of their diagnoses.

``compare_diagnoses(diagnoses, labels=)`` orders runs by the epoch they stopped learning and returns
a ``Comparison`` (frozen, ``to_dict()``): one ``ComparisonRow`` per run in that order, the run that
stopped first and a one-line ``answer`` ("<run> stopped learning first (epoch N): <its summary>").

The order, best first:

1. runs that stopped learning: a plateau before the last epoch that is not ``still_improving``,
   at ``plateau.epoch``; a diverged run at its plateau or its ``diverged_epoch``, whichever came
   first;
2. runs still improving at their last epoch (they never stopped), by plateau epoch: the plateau's
   ``still_improving``, a plateau at the last epoch (a short run that improved at every epoch)
   or the verdict ``not_converged``;
3. runs with no plateau at all (``insufficient_data``).

Within one epoch, runs with the same monitor are ordered by their best value (the better first,
so the tie goes to the run that got further before stopping); then by label. Two runs at the same
epoch are named in the answer as a tie.

``by="forecast"`` ranks instead by the forecast (``Diagnosis.forecast``): the best value each run
is predicted to reach with twice its epochs (``best_at_2x``), the better first, grouped by monitor;
runs without a forecast come last. The answer names the run forecast to do best. This is core: it
reads only ``Diagnosis`` objects and never imports mlflow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from .verdict import Diagnosis

RankBy = Literal["plateau", "forecast"]


@dataclass(frozen=True)
class ComparisonRow:
    """One run of a comparison, with the numbers its table row shows."""

    rank: int                       # 1 = stopped learning first
    key: str                        # the run id (or "run N" for a diagnosis without one)
    label: str                      # what people read: the run name, else the id
    verdict: str
    summary: str
    monitor: str | None
    mode: str | None
    stopped_epoch: int | None       # when it stopped learning (None: it did not)
    stopped: bool                   # whether it stopped learning within its epochs
    plateau_epoch: int | None
    plateau_low: int | None
    plateau_high: int | None
    best_epoch: int | None
    best_value: float | None
    stop_epoch: int | None          # where EarlyStopping would have stopped
    wasted_epochs: int | None
    still_improving: bool | None
    last_epoch: int | None
    gap_final: float | None
    forecast_epoch: int | None = None           # epoch_2x: the last of twice the epochs
    forecast_best: float | None = None          # best value forecast by then (best_at_2x)
    forecast_value: float | None = None         # forecast level there, and its interval
    forecast_low: float | None = None
    forecast_high: float | None = None
    gain_if_doubled: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    """Runs ordered by when they stopped learning (see the module docstring)."""

    rows: tuple[ComparisonRow, ...]
    answer: str
    first: ComparisonRow | None          # the run that stopped learning first (None: none did)
    tied_with: tuple[str, ...] = ()      # labels of runs that stopped at the same epoch
    by: str = "plateau"                  # what ranked them: "plateau" or "forecast"

    def to_dict(self) -> dict[str, Any]:
        return {"answer": self.answer, "by": self.by,
                "first": self.first.key if self.first else None,
                "tied_with": list(self.tied_with), "runs": [r.to_dict() for r in self.rows]}


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _int(x: Any) -> int | None:
    return None if x is None else int(x)


def _row(key: str, label: str, d: Diagnosis) -> ComparisonRow:
    p, g = d.plateau, d.gap
    diverged_at = _int(d.evidence.get("diverged_epoch"))
    # A plateau at the last epoch is a run that improved to its end (a diverged run's plateau
    # is that of its finite prefix: its last improvement, before the NaN).
    improving = p is not None and (bool(p.still_improving) or d.verdict == "not_converged" or (
        d.verdict != "diverged" and p.epoch >= p.last_epoch))
    stopped_epoch = int(p.epoch) if p is not None and not improving else None
    if d.verdict == "diverged" and diverged_at is not None:
        # A run that blew up stopped learning there at the latest, improving until then or not.
        stopped_epoch = diverged_at if stopped_epoch is None else min(stopped_epoch, diverged_at)
    return ComparisonRow(
        rank=0, key=key, label=label, verdict=d.verdict, summary=d.summary, monitor=d.monitor,
        mode=d.mode, stopped_epoch=stopped_epoch, stopped=stopped_epoch is not None,
        plateau_epoch=_int(p.epoch) if p else None, plateau_low=_int(p.low) if p else None,
        plateau_high=_int(p.high) if p else None, best_epoch=_int(p.best_epoch) if p else None,
        best_value=_num(p.best_value) if p else None, stop_epoch=_int(p.stop_epoch) if p else None,
        wasted_epochs=_int(p.wasted_epochs) if p else None,
        still_improving=improving if p else None,
        last_epoch=_int(p.last_epoch) if p else None, gap_final=_num(g.final) if g else None,
        **_forecast_fields(d))


def _forecast_fields(d: Diagnosis) -> dict[str, Any]:
    f = d.forecast
    if f is None or f.insufficient or d.verdict == "diverged":
        return {}
    return {"forecast_epoch": _int(f.epoch_2x), "forecast_best": _num(f.best_at_2x),
            "forecast_value": _num(f.value_at_2x), "forecast_low": _num(f.value_at_2x_low),
            "forecast_high": _num(f.value_at_2x_high), "gain_if_doubled": _num(f.gain_if_doubled)}


def _forecast_order(row: ComparisonRow) -> tuple:
    best = row.forecast_best
    if best is None:
        return (1, row.monitor or "", math.inf, row.label, row.key)
    return (0, row.monitor or "", -best if row.mode == "max" else best, row.label, row.key)


def _order(row: ComparisonRow) -> tuple:
    group = 0 if row.stopped else (1 if row.plateau_epoch is not None else 2)
    epoch = row.stopped_epoch if row.stopped else row.plateau_epoch
    # Better best value first within a monitor: negate scores so smaller always sorts first.
    best = row.best_value if row.best_value is not None else math.inf
    if row.mode == "max" and row.best_value is not None:
        best = -best
    return (group, epoch if epoch is not None else math.inf, row.monitor or "", best, row.label,
            row.key)


def run_keys(diagnoses: Sequence[Diagnosis]) -> list[str]:
    """The key of each diagnosis in a comparison: its run id, else ``run N`` (1-based position).
    Raises ValueError when two diagnoses share a run id."""
    keys = [d.run_id or f"run {i + 1}" for i, d in enumerate(diagnoses)]
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"run {key} appears twice in the comparison")
        seen.add(key)
    return keys


def _answer(rows: Sequence[ComparisonRow]) -> tuple[str, ComparisonRow | None, tuple[str, ...]]:
    if not rows:
        return "No runs to compare.", None, ()
    first = rows[0]
    if not first.stopped:
        if all(r.still_improving for r in rows):
            return (f"None of the {len(rows)} runs stopped learning: all were still improving at "
                    "their last epoch.", None, ())
        return f"None of the {len(rows)} runs has a plateau to compare.", None, ()
    tied = tuple(r.label for r in rows[1:] if r.stopped and r.stopped_epoch == first.stopped_epoch)
    tie = f", tied with {', '.join(tied)}" if tied else ""
    return (f"{first.label} stopped learning first (epoch {first.stopped_epoch}{tie}): "
            f"{first.summary}", first, tied)


def _forecast_answer(rows: Sequence[ComparisonRow]) -> tuple[str, ComparisonRow | None]:
    first = rows[0] if rows else None
    if first is None or first.forecast_best is None:
        return f"None of the {len(rows)} runs has a forecast (5 or more epochs needed).", None
    monitors = {r.monitor for r in rows if r.forecast_best is not None}
    note = "" if len(monitors) == 1 else " (runs with other monitors are ranked apart)"
    return (f"{first.label} is forecast to do best with twice its epochs: {first.monitor} about "
            f"{first.forecast_best:.4g} by epoch {first.forecast_epoch} (now "
            f"{first.best_value:.4g}){note}.", first)


def compare_diagnoses(diagnoses: Sequence[Diagnosis], labels: Mapping[str, str] | None = None,
                      *, by: RankBy = "plateau") -> Comparison:
    """Rank ``diagnoses`` by when each run stopped learning, or ``by="forecast"`` by the best
    value forecast at twice its epochs (see the module docstring).

    ``labels`` maps a run's key (its run id, or ``run N``) to the name people read; a run without a
    label is shown by its key.
    """
    if by not in ("plateau", "forecast"):
        raise ValueError(f"by must be 'plateau' or 'forecast', not {by!r}")
    labels = labels or {}
    keys = run_keys(diagnoses)
    rows = sorted((_row(k, str(labels.get(k) or k), d) for k, d in zip(keys, diagnoses, strict=True)),
                  key=_order if by == "plateau" else _forecast_order)
    ranked = tuple(replace(r, rank=i + 1) for i, r in enumerate(rows))
    if by == "forecast":
        answer, first = _forecast_answer(ranked)
        return Comparison(rows=ranked, answer=answer, first=first, by=by)
    answer, first, tied = _answer(ranked)
    return Comparison(rows=ranked, answer=answer, first=first, tied_with=tied)


__all__ = ["Comparison", "ComparisonRow", "RankBy", "compare_diagnoses", "run_keys"]
