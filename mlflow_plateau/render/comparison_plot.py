"""``overlay.png``: several runs' monitored validation curves overlaid, for a comparison.

``comparison_png(diagnoses, curves_by_run, labels=)`` colours the runs in the order they stopped
learning (``comparison.compare_diagnoses``), draws the first thickest, and marks each where it
stopped; runs with different monitors get one panel per monitor (at most three). The legend is
the figure's (it lists every run, across panels), so this plot draws on its own figure rather than
on a caller's Axes; ``run_color`` gives the pages the same colour per rank.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..comparison import Comparison, ComparisonRow, compare_diagnoses, run_keys
from ..curves import Curve
from ..verdict import Diagnosis
from .figures import (
    VERDICT_COLORS,
    header,
    plain_log_ticks,
    plot_label,
    plottable,
    png_bytes,
    style_axes,
    use_log_scale,
    verdict_title,
)

# One colour per run in the order the runs stopped learning (Okabe-Ito without its yellow, then
# three darker hues); runs past these are drawn grey, without a legend entry of their own.
_RUN_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#332288",
               "#882255", "#117733", "#444444")
_OTHER_RUNS = "#b8b8b8"
_MAX_PANELS = 3  # distinct monitors drawn in their own panel; runs of further monitors are listed


def run_color(rank: int) -> str:
    return _RUN_COLORS[rank - 1] if 1 <= rank <= len(_RUN_COLORS) else _OTHER_RUNS


def _value_at(x: np.ndarray, y: np.ndarray, epoch: float) -> float | None:
    """The curve's value at ``epoch``, else the last finite value before it (a marker on the line)."""
    ok = np.isfinite(y) & (x <= epoch)
    return float(y[ok][-1]) if np.any(ok) else None


def _middle(text: str, limit: int) -> str:
    """``text`` shortened in the middle: run names often differ only at their end (``…-lr0.1``)."""
    return text if len(text) <= limit else f"{text[:limit - limit // 3 - 1]}…{text[-(limit // 3):]}"


def _row_note(row: ComparisonRow) -> str:
    if row.stopped:
        what = "diverged" if row.verdict == "diverged" and row.stopped_epoch != row.plateau_epoch \
            else "plateau"
        return f"{verdict_title(row.verdict)} · {what} @ {row.stopped_epoch}"
    if row.still_improving:
        return f"{verdict_title(row.verdict)} · still improving"
    return verdict_title(row.verdict)


def comparison_inputs(diagnoses: Sequence[Diagnosis], labels: Mapping[str, str] | None,
                       by: str = "plateau") -> tuple[Comparison, dict[str, Diagnosis]]:
    keys = run_keys(diagnoses)
    return compare_diagnoses(diagnoses, labels, by=by), dict(zip(keys, diagnoses, strict=True))


def _draw_run(ax: Any, row: ComparisonRow, d: Diagnosis, curve: Curve, color: str,
              marker: bool) -> bool:
    """One run's monitor on ``ax`` with where it stopped learning marked; False when nothing finite."""
    x, y = plottable(curve, bool(d.evidence.get("percent_scaled")))
    if not np.any(np.isfinite(y)):
        return False
    first = row.rank == 1
    colored = color != _OTHER_RUNS
    style = {"marker": "o", "markersize": 2.5} if marker and colored else {}
    ax.plot(x, y, color=color, linewidth=2.6 if first else (1.5 if colored else 1.0),
            alpha=1.0 if colored else 0.8, zorder=4 if first else (3 if colored else 2), **style)
    if not colored:
        return True
    # Where it stopped learning: a filled dot on the curve with the plateau interval as a bar; a
    # run still improving gets a hollow triangle at its last epoch; a tick on the epoch axis lets
    # the order be read along x even where the curves overlap.
    if row.stopped and row.stopped_epoch is not None:
        at = _value_at(x, y, row.stopped_epoch)
        if at is not None:
            if row.plateau_low is not None and row.plateau_high is not None \
                    and row.plateau_high > row.plateau_low and row.stopped_epoch == row.plateau_epoch:
                ax.plot([row.plateau_low, row.plateau_high], [at, at], color=color, linewidth=6,
                        alpha=0.28, solid_capstyle="round", zorder=5)
            diverged = row.verdict == "diverged" and row.stopped_epoch != row.plateau_epoch
            ax.plot([row.stopped_epoch], [at], marker="X" if diverged else "o",
                    markersize=11 if first else 8.5, markerfacecolor=color,
                    markeredgecolor="white", markeredgewidth=1.4, linestyle="none", zorder=6)
        ax.plot([row.stopped_epoch], [0.0], transform=ax.get_xaxis_transform(), marker="|",
                markersize=14, markeredgewidth=2.4, color=color, clip_on=False, zorder=6)
    elif row.still_improving:
        ok = np.isfinite(y)
        ax.plot([x[ok][-1]], [y[ok][-1]], marker=">", markersize=8, markerfacecolor="white",
                markeredgecolor=color, markeredgewidth=1.6, linestyle="none", zorder=6)
    return True


def comparison_png(diagnoses: Sequence[Diagnosis], curves_by_run: Mapping[str, Mapping[str, Curve]],
                   *, labels: Mapping[str, str] | None = None, by: str = "plateau") -> bytes:
    """Several runs' monitored validation curves overlaid, each marked where it stopped learning.

    ``curves_by_run`` and ``labels`` are keyed by run id (``run N`` for a diagnosis without one, see
    ``comparison.run_keys``). Runs are coloured in the order they stopped learning, the first drawn
    thickest; the legend gives each run's label, verdict and plateau epoch. Runs with different
    monitors get one panel per monitor (at most three; further monitors are only named).
    ``by="forecast"`` colours them in the order of ``compare_diagnoses(..., by="forecast")``.
    """
    comparison, by_key = comparison_inputs(diagnoses, labels, by)
    rows = comparison.rows
    monitors = list(dict.fromkeys(r.monitor for r in rows if r.monitor))
    shown, hidden = monitors[:_MAX_PANELS], monitors[_MAX_PANELS:]
    n_panels = max(1, len(shown))
    fig = Figure(figsize=(10.5, 3.4 + 1.9 * n_panels), dpi=130)
    first = comparison.first
    if first is not None:
        head = f"STOPPED LEARNING FIRST: {plot_label(first.label, 40)}  ·  epoch {first.stopped_epoch}"
        accent = VERDICT_COLORS.get(first.verdict, "#333333")
    else:
        head, accent = "NO RUN STOPPED LEARNING", "#57606a"
    top = header(fig, head, accent, comparison.answer)
    axes = fig.subplots(n_panels, 1, sharex=True, squeeze=False)[:, 0]
    w, h = fig.get_figwidth(), fig.get_figheight()
    legend_in = 3.3  # inches kept on the right for the legend
    fig.subplots_adjust(left=0.8 / w, right=1 - legend_in / w, bottom=0.55 / h, top=1 - top / h,
                        hspace=0.12)
    marker = max((len(c) for cs in curves_by_run.values() for c in cs.values()), default=0) <= 30
    handles, names = [], []
    for ax, monitor in zip(axes, shown or [None], strict=True):
        drawn_y = []
        for row in rows:
            if row.monitor != monitor or monitor is None:
                continue
            curve = curves_by_run.get(row.key, {}).get(monitor)
            if curve is None:
                continue
            color = run_color(row.rank)
            if _draw_run(ax, row, by_key[row.key], curve, color, marker):
                drawn_y.append(plottable(curve, bool(by_key[row.key].evidence.get(
                    "percent_scaled")))[1])
        if not drawn_y:
            ax.text(0.5, 0.5, "no finite values to plot", transform=ax.transAxes, ha="center",
                    va="center", fontsize=11, color="#57606a")
        elif use_log_scale(*drawn_y):
            ax.set_yscale("log")
            finite = np.concatenate([y[np.isfinite(y)] for y in drawn_y])
            plain_log_ticks(ax.yaxis, float(finite.min()), float(finite.max()))
        mode = next((r.mode for r in rows if r.monitor == monitor and r.mode), None)
        better = {"min": " (lower is better)", "max": " (higher is better)"}.get(mode or "", "")
        ax.set_ylabel(plot_label(monitor or "monitor", 32) + better, fontsize=9.5)
        style_axes(ax)
    axes[-1].set_xlabel("epoch", fontsize=10)
    axes[-1].xaxis.get_major_locator().set_params(integer=True)

    from matplotlib.lines import Line2D

    for row in rows:
        color = run_color(row.rank)
        if color == _OTHER_RUNS:
            continue
        handles.append(Line2D([], [], color=color, linewidth=2.6 if row.rank == 1 else 1.6,
                              marker="o" if row.stopped else ">", markersize=6,
                              markerfacecolor=color if row.stopped else "white",
                              markeredgecolor=color))
        names.append(f"{row.rank}. {plot_label(_middle(row.label, 30), 30)}\n    {_row_note(row)}")
    others = len(rows) - len(handles)
    if others > 0:
        handles.append(Line2D([], [], color=_OTHER_RUNS, linewidth=1.0))
        names.append(f"+{others} more run(s), in grey")
    if hidden:
        handles.append(Line2D([], [], color="none"))
        names.append(f"not drawn: monitor(s) {plot_label(', '.join(hidden), 40)}")
    fig.legend(handles, names, loc="upper left", bbox_to_anchor=(1 - (legend_in - 0.15) / w,
               1 - top / h), fontsize=8, frameon=False, labelspacing=0.9, handlelength=2.2,
               title="in the order they stopped learning", title_fontsize=8.5,
               alignment="left")
    return png_bytes(fig)

