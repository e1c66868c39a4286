"""``learning_curve.png``: a scaling verdict's error against training size.

``scaling_png(v)`` draws, on log-log axes, the points, the fitted ``a n^-b + c``, an interval band
and the extrapolation to twice the largest size; ``draw_scaling`` draws the same on a caller's
Axes. The band is refit-free: the curve with the exponent at its bootstrap ``low`` and ``high``,
pinned to the fit at the geometric-mean size (where the data hold it), floor kept (see
``exponent_band``).
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.axes import Axes

from ..curves import metric_mode
from ..verdict import ScalingVerdict
from .figures import (
    STOP,
    TRAIN,
    VAL,
    VERDICT_COLORS,
    blank_figure,
    header,
    margins,
    plain_log_ticks,
    plot_label,
    png_bytes,
    style_axes,
    verdict_title,
)


def _fmt_size(n: float) -> str:
    return f"{n:,.0f}" if n >= 100 else f"{n:.3g}"


def exponent_band(verdict: ScalingVerdict, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Interval band of the fitted learning curve, refit-free: the fit with exponent ``low`` and
    ``high`` (the bootstrap 5th/95th percentiles), each pinned to the fitted error at the geometric
    mean of the sizes, where the data constrain the curve best, floor kept. The band is narrowest
    inside the data and opens up outside it, as an exponent uncertainty does; pinning at n = 1
    (keeping the coefficient) would instead blow it up at every realistic size."""
    fit = verdict.fit
    if fit.insufficient_points or fit.low is None or fit.high is None:
        return None
    ref = float(np.exp(np.mean(np.log(fit.sizes))))
    at_ref = float(fit.predict(ref)) - float(fit.floor)
    curves = [at_ref * (grid / ref) ** (-b) + fit.floor for b in (fit.low, fit.high)]
    return np.minimum(*curves), np.maximum(*curves)


def scaling_png(verdict: ScalingVerdict, *, size_param: str = "train_size",
                title: str | None = None, metric: str | None = None,
                mode: str | None = None) -> bytes:
    """Error against training size (log-log) with the fitted curve, its band and the 2x point,
    under a header with the verdict, the gain at 2x data and the summary (``draw_scaling``)."""
    fit = verdict.fit
    fig, (ax,) = blank_figure("scaling", (8, 5), 150, 1)
    accent = VERDICT_COLORS.get(verdict.verdict, "#333333")
    gain = fit.gain_at_2x
    head = f"{verdict_title(verdict.verdict).upper()}"
    if gain is not None and math.isfinite(gain):
        head += f"  ·  gain at 2× data: {100 * gain:.1f}%"
    if title:
        head = f"{plot_label(title, 64)}\n{head}"
    margins(fig, header(fig, head, accent, verdict.summary))
    draw_scaling(ax, verdict, size_param=size_param, metric=metric, mode=mode)
    return png_bytes(fig)


def error_label(metric: str | None, mode: str | None = None) -> str:
    """The y axis label of a learning curve: what a point's error is (``diagnose_scaling``: the
    best value of a loss, one minus the best value of a score), or "error" without a metric."""
    if not metric:
        return "error"
    if mode is None:
        try:
            mode = metric_mode(metric)
        except ValueError:
            mode = "min"
    return f"1 − best {metric}" if mode == "max" else f"best {metric}"


def draw_scaling(ax: Axes, verdict: ScalingVerdict, *, size_param: str = "train_size",
                 metric: str | None = None, mode: str | None = None) -> None:
    """Draw a learning curve on a caller's ``ax`` (as scikit-learn's Displays do): the runs'
    errors against training size on log-log axes, the fitted ``a n^-b + c``, its band
    (``exponent_band``), the extrapolation to twice the largest size and the fitted floor; the y
    axis names the metric the error was read from (``error_label``)."""
    fit = verdict.fit
    sizes = fit.sizes.astype(np.float64)
    errors = fit.errors.astype(np.float64)
    ax.plot(sizes, errors, "o", color=TRAIN, markersize=7, markeredgecolor="white",
            markeredgewidth=0.8, label="runs", zorder=5)
    if not fit.insufficient_points:
        n_max = float(sizes.max())
        grid_in = np.geomspace(float(sizes.min()), n_max, 200)
        grid_out = np.geomspace(n_max, 2 * n_max, 50)
        grid = np.concatenate([grid_in, grid_out[1:]])
        band = exponent_band(verdict, grid)
        if band is not None:
            ax.fill_between(grid, band[0], band[1], color=VAL, alpha=0.14, linewidth=0,
                            label=f"exponent interval b ∈ [{fit.low:.2f}, {fit.high:.2f}]")
        ax.plot(grid_in, fit.predict(grid_in), color=VAL, linewidth=2,
                label=f"fit: {fit.coefficient:.3g}·n^(−{fit.exponent:.2f}) + {fit.floor:.3g}")
        ax.plot(grid_out, fit.predict(grid_out), color=VAL, linewidth=2, linestyle=(0, (4, 2)),
                label="extrapolation")
        at_max, at_2x = float(fit.predict(n_max)), float(fit.predict(2 * n_max))
        ax.plot([2 * n_max], [at_2x], marker="D", markersize=8, markerfacecolor="white",
                markeredgecolor=VAL, markeredgewidth=2, linestyle="none", zorder=6,
                label=f"2× data ({_fmt_size(2 * n_max)}): predicted {at_2x:.4g}")
        drop = 100 * (1 - at_2x / at_max)
        ax.annotate(f"−{drop:.1f}%" if drop >= 0.05 else "±0%", (2 * n_max, at_2x),
                    textcoords="offset points", xytext=(-6, 10), ha="right", fontsize=9,
                    color=VAL, fontweight="bold")
        # The floor is known only where the error falls with size (an exponent whose interval
        # is above 0); with a flat curve, a + c is split arbitrarily and its c says nothing.
        if fit.floor and fit.floor > 0 and fit.low is not None and fit.low > 0:
            ax.axhline(fit.floor, color=STOP, linewidth=1, linestyle=":",
                       label=f"fitted floor {fit.floor:.3g}")
    if sizes.size == 0:  # a group whose runs are all gone: nothing to place on log axes
        ax.text(0.5, 0.5, "no runs left in this group", transform=ax.transAxes, ha="center",
                va="center", fontsize=11, color="#57606a")
    else:
        ax.set_xscale("log")
        ax.set_yscale("log")  # errors are > 0: scaling_fit refuses anything else
        ax.margins(x=0.08, y=0.1)
        plain_log_ticks(ax.xaxis, *ax.get_xlim())
        plain_log_ticks(ax.yaxis, *ax.get_ylim())
    ax.set_xlabel(f"training size ({plot_label(size_param, 40)})", fontsize=10)
    ax.set_ylabel(plot_label(error_label(metric, mode), 60), fontsize=10)
    style_axes(ax)
    ax.grid(True, which="minor", color="#f0f0f0", linewidth=0.5)
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
