"""``curves.png``: a run's training curves with its diagnosis marked on them.

``curves_png(d, curves)`` draws the train and validation curves of the monitor, and the other pair
(accuracy for a loss monitor, loss for an accuracy monitor) in a second panel when present; the
plateau epoch with its interval shaded, the best epoch, where EarlyStopping would have stopped,
the gap shaded, the smoothed fit (``PlateauResult.fitted``) faint, the forecast, and the
divergence epoch when a curve hit NaN. ``draw_curves`` draws the same on a caller's Axes;
``curves_caption`` says in words what was drawn.

The forecast beyond the last epoch (``draw_forecast``) reaches twice the epochs only for a
``not_converged`` run (what training twice as long would bring); a verdict whose advice is to stop
earlier (``recommends_stopping``: overfitting, diverged) gets no forecast drawn, so the picture
never shows a gain from training longer beside the advice to stop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.axes import Axes

from ..curves import Curve, as_fraction, finite_part, metric_mode, metric_role, pair_curves
from ..verdict import Diagnosis
from .figures import (
    DIVERGED,
    PLATEAU,
    STOP,
    TRAIN,
    VAL,
    VERDICT_COLORS,
    blank_figure,
    epoch_axis,
    header,
    margins,
    plain_log_ticks,
    plot_label,
    plottable,
    png_bytes,
    style_axes,
    use_log_scale,
    verdict_title,
)


def _fitted_epochs(monitor: Curve, n_fitted: int) -> np.ndarray | None:
    """Epochs of ``PlateauResult.fitted``: the monitor's finite part (``curves.finite_part``), or
    the centres of the equal blocks ``plateau_epoch`` averages a long curve into."""
    ok, _, _ = finite_part(monitor)
    n = len(ok)
    if n == 0 or n_fitted == 0:
        return None
    if n_fitted == n:
        return ok.epochs.astype(np.float64)
    edges = np.linspace(0, n, n_fitted + 1).astype(np.int64)
    centres = (edges[:-1] + edges[1:] - 1) / 2.0
    return np.interp(centres, np.arange(n, dtype=np.float64), ok.epochs.astype(np.float64))


def _is_score(name: str | None) -> bool:
    if not name:
        return False
    try:
        return metric_mode(name) == "max"
    except ValueError:
        return False


def _second_pair(curves: Mapping[str, Curve], d: Diagnosis) -> tuple[str | None, str | None]:
    """(train, val) names of the pair shown in the second panel: accuracy beside a loss monitor,
    loss beside a score monitor; (None, None) when there is none."""
    shown = {d.monitor, d.train_metric}
    want_score = not _is_score(d.monitor) if d.mode is None else d.mode == "min"
    candidates = []
    for base, pair in pair_curves(curves).items():
        names = [n for n in (pair.train, pair.val) if n]
        if not names or shown & set(names):
            continue
        is_score = _is_score(names[0])
        if is_score != want_score:
            continue
        # Prefer the canonical pair (accuracy / loss) over other metrics of the same kind.
        rank = 0 if base in ("accuracy", "loss") else 1
        candidates.append((rank, base, pair.train, pair.val))
    if not candidates:
        return None, None
    _, _, train, val = min(candidates)
    return train, val


_LEGEND_IN = 2.7  # inches kept right of the axes of curves.png for the legend, off the curves


def _legend_outside(ax: Axes) -> None:
    """The legend to the right of the axes, where it cannot cover a curve."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize=7.5, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  borderaxespad=0.0, frameon=False)


def _draw_pair(ax: Any, curves: Mapping[str, Curve], train: str | None, val: str | None,
               scale_percent: bool, marker: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    drawn: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, color, role in ((train, TRAIN, "train"), (val, VAL, "validation")):
        if not name or name not in curves:
            continue
        x, y = plottable(curves[name], scale_percent)
        drawn[role] = (x, y)
        if not np.any(np.isfinite(y)):
            continue
        style = {"marker": "o", "markersize": 3.5} if marker or np.sum(np.isfinite(y)) < 3 else {}
        ax.plot(x, y, color=color, linewidth=1.8, label=f"{role}: {plot_label(name)}", **style)
    return drawn


# Verdicts whose advice is to stop earlier (or to restore the best epoch): more epochs are not
# what they need, so their report and plot show no gain from training longer.
STOP_EARLIER_VERDICTS = frozenset({"overfitting", "diverged"})


def recommends_stopping(d: Diagnosis) -> bool:
    """Whether ``d``'s advice is to stop earlier: an ``overfitting`` or ``diverged`` verdict, or a
    recommendation to stop earlier or restore the best weights. Its report must not promise a
    better value from twice the epochs while it says to stop (issue 25): the forecast is neither
    drawn nor shown as a gain."""
    return d.verdict in STOP_EARLIER_VERDICTS or any(
        r.lower().startswith("stop earlier") or "restore_best_weights" in r
        for r in d.recommendations)


def forecast_drawn(d: Diagnosis) -> bool:
    """Whether ``draw_forecast`` draws ``d``'s forecast: there is one with enough epochs, and the
    verdict does not recommend stopping (``recommends_stopping``)."""
    f = d.forecast
    return (f is not None and not f.insufficient and f.last_epoch is not None
            and not recommends_stopping(d))


def draw_forecast(ax: Any, d: Diagnosis) -> None:
    """The monitor's forecast (``Diagnosis.forecast``) beyond its last epoch: a dashed line and
    its interval as a band, up to twice the epochs for a ``not_converged`` run (what training
    twice as long would bring), else a quarter of the epochs further (at least 5). Nothing
    without a forecast or when the verdict recommends stopping (``forecast_drawn``)."""
    f = d.forecast
    if f is None or f.last_epoch is None or not forecast_drawn(d):
        return
    last = f.last_epoch
    end = f.epoch_2x if d.verdict == "not_converged" else last + max(5, f.n_epochs // 4)
    x = np.linspace(last, end, 60)
    y = f.predict(x)
    lo, hi = f.interval(x)
    pct = round(100 * f.level)
    ax.fill_between(x, lo, hi, color=VAL, alpha=0.10, linewidth=0, zorder=1,
                    label=f"forecast {pct}% interval")
    ax.plot(x, y, color=VAL, linewidth=1.6, linestyle=(0, (4, 2)), zorder=2,
            label=f"forecast: {f.value_at_2x:.3g} at epoch {f.epoch_2x}"
            if end == f.epoch_2x else "forecast")


def curves_png(diagnosis: Diagnosis, curves: Mapping[str, Curve]) -> bytes:
    """The monitor's train/validation curves with the diagnosis marked on them, as PNG bytes: the
    header (verdict, monitor, summary) over ``draw_curves`` on one reused figure per shape."""
    d = diagnosis
    second_train, second_val = _second_pair(curves, d)
    two_panels = bool(second_train or second_val)
    # Wider for the legend on the right, taller to keep the shape the MLflow viewer shows well.
    size = (8 + _LEGEND_IN, 6.4 if two_panels else 6.0)
    if two_panels:
        fig, (ax, ax2) = blank_figure("curves", size, 150, 2, sharex=True, height_ratios=(3, 2))
    else:
        fig, (ax,) = blank_figure("curves", size, 150, 1)
        ax2 = None
    accent = VERDICT_COLORS.get(d.verdict, "#333333")
    top = header(fig, f"{verdict_title(d.verdict).upper()}  ·  monitor: {plot_label(d.monitor or '—', 40)}",
                 accent, d.summary)
    margins(fig, top, right_in=_LEGEND_IN + 0.1)
    draw_curves(ax, d, curves, second_ax=ax2)
    return png_bytes(fig)


def draw_curves(ax: Axes, diagnosis: Diagnosis, curves: Mapping[str, Curve], *,
                second_ax: Axes | None = None) -> None:
    """Draw the monitor's train/validation curves and the diagnosis on a caller's ``ax`` (as
    scikit-learn's Displays do): the plateau epoch with its interval shaded, the best epoch, where
    EarlyStopping would have stopped, the gap shaded, the smoothed fit faint, the forecast
    (``draw_forecast``), the chance level and the divergence epoch, with the legend right of the
    axes. ``second_ax`` (sharing the epoch axis, below ``ax``) gets the other pair (accuracy for a
    loss monitor, loss for an accuracy monitor) with the same epochs marked."""
    d = diagnosis
    p = d.plateau
    scale_percent = bool(d.evidence.get("percent_scaled"))
    ax2 = second_ax
    n_points = max((len(c) for c in curves.values()), default=0)
    marker = n_points <= 25
    monitor_curve = curves.get(d.monitor) if d.monitor else None
    drawn = _draw_pair(ax, curves, d.train_metric, d.monitor, scale_percent, marker)
    val_xy = drawn.get("validation")
    train_xy = drawn.get("train")

    # The gap between the curves on their common finite epochs.
    if d.gap is not None and val_xy is not None and train_xy is not None:
        common, it, iv = np.intersect1d(train_xy[0], val_xy[0], return_indices=True)
        ty, vy = train_xy[1][it], val_xy[1][iv]
        ok = np.isfinite(ty) & np.isfinite(vy)
        if np.sum(ok) >= 2:
            ax.fill_between(common, ty, vy, where=ok, color=VAL, alpha=0.12, linewidth=0,
                            label=f"gap (final {d.gap.final:.3g})")

    if p is not None and monitor_curve is not None:
        mon = Curve(monitor_curve.name, monitor_curve.epochs,
                    as_fraction(monitor_curve.values, monitor_curve.name)[0] if scale_percent
                    else monitor_curve.values)
        fx = _fitted_epochs(mon, len(p.fitted))
        if fx is not None and len(p.fitted) >= 3:
            ax.plot(fx, p.fitted, color=VAL, alpha=0.45, linewidth=3.5, linestyle="-",
                    solid_capstyle="round", label="smoothed validation", zorder=1)
        if p.high > p.low:
            ax.axvspan(p.low, p.high, color=PLATEAU, alpha=0.13, linewidth=0,
                       label=f"plateau interval {p.low}–{p.high}")
        ax.axvline(p.epoch, color=PLATEAU, linewidth=2, label=f"plateau epoch {p.epoch}")
        ax.plot([p.best_epoch], [p.best_value], marker="*", markersize=14, color=PLATEAU,
                markeredgecolor="white", markeredgewidth=0.8, linestyle="none", zorder=5,
                label=f"best {p.best_value:.4g} @ epoch {p.best_epoch}")
        if p.stop_epoch is not None:
            patience = d.config.get("patience")
            which = f"EarlyStopping(patience={patience})" if patience is not None else "EarlyStopping"
            ax.axvline(p.stop_epoch, color=STOP, linewidth=1.4, linestyle=(0, (5, 3)),
                       label=f"{which} stops @ {p.stop_epoch}")
        draw_forecast(ax, d)

    chance = d.evidence.get("chance")
    if isinstance(chance, (int, float)) and math.isfinite(chance) and monitor_curve is not None:
        ax.axhline(chance, color="#57606a", linewidth=1.2, linestyle=(0, (1, 2)),
                   label=f"chance level {chance:.4g}")

    diverged_epoch = d.evidence.get("diverged_epoch")
    if isinstance(diverged_epoch, (int, float)) and math.isfinite(diverged_epoch):
        ax.axvline(diverged_epoch, color=DIVERGED, linewidth=1.6, linestyle=":",
                   label=f"diverged @ epoch {int(diverged_epoch)}"
                         + (f" ({plot_label(d.evidence.get('diverged_metric'), 30)})"
                            if d.evidence.get("diverged_metric") else ""))

    finite_any = any(np.any(np.isfinite(xy[1])) for xy in drawn.values())
    if not finite_any:
        why = ("no finite values to plot" if drawn else
               f"no curve named {plot_label(d.monitor or '—')} in the history")
        ax.text(0.5, 0.5, why, transform=ax.transAxes, ha="center", va="center", fontsize=11,
                color="#57606a")
        if diverged_epoch is not None:
            ax.set_xlim(float(diverged_epoch) - 1, float(diverged_epoch) + 1)
    elif use_log_scale(*(xy[1] for xy in drawn.values())):
        ax.set_yscale("log")
        finite = np.concatenate([xy[1][np.isfinite(xy[1])] for xy in drawn.values()])
        plain_log_ticks(ax.yaxis, float(finite.min()), float(finite.max()))
    ax.set_ylabel(plot_label(_metric_axis_label(d.monitor, d.train_metric)), fontsize=10)
    style_axes(ax)
    _legend_outside(ax)

    if ax2 is not None:
        second_train, second_val = _second_pair(curves, d)
        drawn2 = _draw_pair(ax2, curves, second_train, second_val, True, marker)
        if p is not None:
            ax2.axvline(p.epoch, color=PLATEAU, linewidth=1.5)
            if p.high > p.low:
                ax2.axvspan(p.low, p.high, color=PLATEAU, alpha=0.13, linewidth=0)
            if p.stop_epoch is not None:
                ax2.axvline(p.stop_epoch, color=STOP, linewidth=1.2, linestyle=(0, (5, 3)))
        if isinstance(diverged_epoch, (int, float)) and math.isfinite(diverged_epoch):
            ax2.axvline(diverged_epoch, color=DIVERGED, linewidth=1.4, linestyle=":")
        ax2.set_ylabel(plot_label(_metric_axis_label(second_val, second_train)), fontsize=10)
        style_axes(ax2)
        if any(np.any(np.isfinite(xy[1])) for xy in drawn2.values()):
            _legend_outside(ax2)
        ax2.set_xlabel("epoch", fontsize=10)
    else:
        ax.set_xlabel("epoch", fontsize=10)
    epoch_axis(ax2 or ax, [xy[0] for xy in drawn.values()])


def curves_caption(d: Diagnosis) -> str:
    """What ``curves_png`` draws for this diagnosis, in words: only the marks it drew."""
    p = d.plateau
    parts = ["Blue: training; orange: validation"]
    if p is not None:
        parts.append(f"solid green line: plateau epoch{' (shaded: its interval)' if p.high > p.low else ''}")
        parts.append("star: best epoch")
        if p.stop_epoch is not None:
            parts.append("dashed grey: where EarlyStopping would have stopped")
        if len(p.fitted) >= 3:
            parts.append("faint thick line: the smoothed validation curve the plateau was found on")
    if d.gap is not None:
        parts.append("orange band: the gap between training and validation")
    if p is not None and forecast_drawn(d):
        parts.append("dashed orange: the forecast beyond the last epoch, shaded: its interval")
    chance = d.evidence.get("chance")
    if isinstance(chance, (int, float)) and math.isfinite(chance):
        parts.append("dotted grey: the chance level")
    diverged = d.evidence.get("diverged_epoch")
    if isinstance(diverged, (int, float)) and math.isfinite(diverged):
        parts.append("dotted red: the epoch a curve became NaN/inf")
    return "; ".join(parts) + "."


def _metric_axis_label(val: str | None, train: str | None) -> str:
    """A short axis label: the metric's base name ("loss" for train_loss/val_loss); the full names
    are in the legend."""
    for name in (val, train):
        if name:
            parsed = metric_role(name)
            base = parsed[1] if parsed else name
            return base.replace("_", " ")[:28] or "value"
    return "value"

