"""The diagnosis rendered for people: ``diagnosis.json``, ``curves.png`` and a self-contained ``report.html``.

This is an adapter: it takes what the core decided (a ``Diagnosis`` with its ``PlateauResult`` and
``GapResult``, or a ``ScalingVerdict``) and the curves the diagnosis came from, and renders them. It
never recomputes a diagnostic and never talks to MLflow (the ``tracking`` package uploads what is rendered).

- ``diagnosis_json(d)``: ``d.to_dict()`` as sorted, indented JSON (byte-identical for equal input).
- ``curves_png(d, curves)``: train and validation curves of the monitor, and the other pair (accuracy
  for a loss monitor, loss for an accuracy monitor) in a second panel when present; the plateau epoch
  with its interval shaded, the best epoch, where EarlyStopping would have stopped, the gap shaded,
  the smoothed fit (``PlateauResult.fitted``) faint, and the divergence epoch when a curve hit NaN.
  ``curves_png_pooled`` draws the same in a pool of worker processes when there are cores to use.
- ``report_html(d, curves, run_name=, params=, tags=)``: verdict and summary first, key numbers and
  the evidence table, recommendations, the plot inline as a ``data:`` PNG, the configuration, and the
  run's name, params and tags (less the ``plateau.*`` tags that restate an earlier diagnosis). Pass
  ``png=`` the bytes ``curves_png`` returned to skip a redraw.
- ``scaling_png(v)`` / ``scaling_html(v)``: error against training size on log-log axes, the points,
  the fitted ``a n^-b + c``, an interval band and the extrapolation to twice the largest size. The
  band is refit-free: the curve with the exponent at its bootstrap ``low`` and ``high``, pinned to
  the fit at the geometric-mean size (where the data hold it), floor kept (see ``_band``).
- ``comparison_png(diagnoses, curves_by_run, labels=)`` / ``comparison_html(...)``: several runs'
  monitored validation curves overlaid, coloured in the order they stopped learning
  (``comparison.compare_diagnoses``), each marked where it stopped; the page answers "which run
  stopped learning first, and why" in its first line, then tabulates every run.

Security: the HTML is shown by the MLflow UI in an iframe, and every string in it that comes from a
run (names, params, tags, metric names, summaries, evidence) is passed through
``html.escape(quote=True)``. The page has no JavaScript, no links and no external resources, and
carries a Content-Security-Policy that forbids them anyway. In plots, ``$`` is escaped so a metric
name cannot switch matplotlib into mathtext (which could fail to parse and abort the render), and
characters the plot font lacks are drawn as ``?`` (the HTML keeps the exact text).

Determinism: figures are drawn on ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot, no
global state, safe in threads) and saved by Pillow as palette PNGs without metadata or timestamp, so
the same input gives the same bytes and an unchanged run need not be re-uploaded.

Speed (a default ``diagnose`` draws a ``curves.png`` per run): ``curves_png`` reuses one figure per
thread and shape (``_blank_figure``: what the last drawing added is removed, the rest is kept),
each figure is drawn once (no layout engine, fixed margins: see ``_header``), and ``_png`` encodes
256 colours instead of RGBA.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import textwrap
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache, partial
from itertools import pairwise
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont
from matplotlib.ft2font import FT2Font
from matplotlib.ticker import FuncFormatter, NullFormatter
from PIL import Image

from . import __version__
from .comparison import Comparison, ComparisonRow, compare_diagnoses, run_keys
from .curves import Curve, as_fraction, finite_prefix, metric_mode, metric_role, pair_curves
from .verdict import Diagnosis, ScalingVerdict

# Colors: a colour-blind-safe palette (Okabe-Ito) for the curves, one accent per verdict.
_TRAIN = "#0072B2"
_VAL = "#D55E00"
_PLATEAU = "#009E73"
_STOP = "#555555"
_DIVERGED = "#CC0000"
_VERDICT_COLORS = {
    "healthy": "#1a7f37", "overfitting": "#c2410c", "underfitting": "#7c3aed",
    "at_chance": "#57606a", "not_converged": "#0969da", "unstable": "#b08800",
    "diverged": "#cf222e", "insufficient_data": "#57606a",
    "data_limited": "#0969da", "diminishing_returns": "#b08800", "saturated": "#1a7f37",
    "insufficient_points": "#57606a",
}
_PNG_COLORS = 256         # palette size of the PNGs (see _png)
_MAX_PLOT_POINTS = 4000   # curves longer than this are drawn as a min/max envelope
_MAX_LABEL = 48           # metric names longer than this are shortened in plot labels
_MAX_CELL = 600           # param/tag values longer than this are shortened in the HTML

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
# Tags that restate this diagnosis (written by the tracking package from an earlier diagnosis): showing them
# would show stale values beside fresh ones, and make the page change whenever they are rewritten.
_OWN_TAGS = frozenset({"plateau.verdict", "plateau.summary", "plateau.monitor", "plateau.version",
                       "plateau.digest"})


# --------------------------------------------------------------------------------------------- JSON

def diagnosis_json(diagnosis: Diagnosis) -> str:
    """The diagnosis as sorted, indented JSON (deterministic; NaN/inf are already ``null``)."""
    return json.dumps(diagnosis.to_dict(), sort_keys=True, indent=2, allow_nan=False)


# -------------------------------------------------------------------------------------- plot helpers

@lru_cache(maxsize=1)
def _font_chars() -> frozenset[int]:
    """Code points the default font can draw (DejaVu Sans unless configured otherwise)."""
    try:
        return frozenset(FT2Font(findfont(FontProperties())).get_charmap())
    except Exception:  # no font file readable: draw as is and let matplotlib cope
        return frozenset()


def _label(text: Any, limit: int = _MAX_LABEL) -> str:
    """A run-supplied string made safe for a matplotlib label: shortened, ``$`` escaped, and
    characters the font lacks (CJK, emoji) shown as ``?``: matplotlib would draw an empty box and
    emit one UserWarning per missing glyph, flooding the output of a batch over many runs. The HTML
    report keeps the exact text."""
    s = str(text)
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    chars = _font_chars()
    if chars and not s.isascii():
        s = "".join(c if ord(c) in chars or c in "\n\t" else "?" for c in s)
    # Matplotlib reads text with an even number of unescaped "$" as mathtext; "\$" is a literal "$".
    return s.replace("$", r"\$")


def _verdict_title(verdict: str) -> str:
    return verdict.replace("_", " ")


def _png(fig: Figure) -> bytes:
    """``fig`` drawn once with Agg and saved as a palette PNG: 256 colours chosen by a fast octree
    (a plot has a few flat colours and their anti-aliased edges: indistinguishable from the RGBA
    image, a third of its size, and quicker to compress than four bytes a pixel). No metadata, no
    timestamp: the same figure gives the same bytes."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw",
                             "RGBA", 0, 1)
    image = image.convert("RGB").quantize(_PNG_COLORS, method=Image.Quantize.FASTOCTREE)
    # The octree averages its cells: put the background's near-whites back to pure white.
    palette = np.array(image.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
    palette[np.all(palette >= 252, axis=1)] = 255
    image.putpalette(palette.tobytes(), "RGB")
    buf = io.BytesIO()
    image.save(buf, format="png", dpi=(fig.dpi, fig.dpi))
    return buf.getvalue()


_FIGURES = threading.local()


def _blank_figure(name: str, size: tuple[float, float], dpi: int, panels: int,
                  **subplot_kw: Any) -> tuple[Figure, list[Any]]:
    """A figure of ``panels`` stacked axes, reused by the thread that drew the last one of the
    same ``name`` (the drawing function) and shape: building a figure and its axes' ticks cost
    about a fifth of a render. The drawing code adds to it as to a new figure; what it added last
    time is removed here and the state it may have changed (scales, limits, margins, locators,
    minor grid, the colour cycle) is put back, so a reused figure
    draws the same bytes as a new one (a test checks)."""
    cache = _FIGURES.__dict__.setdefault("figures", {})
    key = (name, size, dpi, panels, tuple(sorted(subplot_kw.items())))
    if key not in cache:
        fig = Figure(figsize=size, dpi=dpi)
        FigureCanvasAgg(fig)
        axes = list(np.ravel(fig.subplots(panels, 1, squeeze=False, **subplot_kw)))
        cache[key] = (fig, axes)
        return fig, axes
    fig, axes = cache[key]
    for text in list(fig.texts):
        text.remove()
    for ax in axes:
        if ax.legend_ is not None:
            ax.legend_.remove()
        for artist in [*ax.lines, *ax.collections, *ax.patches, *ax.texts, *ax.images]:
            artist.remove()
        ax.set_xscale("linear")  # default locators and formatters again
        ax.set_yscale("linear")
        ax.set_prop_cycle(None)
        ax.set_xmargin(matplotlib.rcParams["axes.xmargin"])
        ax.set_ymargin(matplotlib.rcParams["axes.ymargin"])
        ax.grid(False, which="minor")
        ax.relim()
        ax.set_autoscale_on(True)
        ax.set_xlabel("")
        ax.set_ylabel("")
    return fig, axes


_POOL_LOCK = threading.Lock()
_POOL: dict[str, Any] = {}
_POOL_AFTER = 8   # figures drawn in-process before a pool starts: a batch, not one run, pays for it
_POOL_MAX = 4     # worker processes at most, by default (each holds a matplotlib)


def _render_processes() -> int:
    """Worker processes for ``curves_png_pooled``: ``MLFLOW_PLATEAU_RENDER_PROCESSES`` if set (0 or
    1: draw in the calling thread), else the cores this process may use when there are several
    (at most ``_POOL_MAX``)."""
    env = os.environ.get("MLFLOW_PLATEAU_RENDER_PROCESSES", "").strip()
    if env:
        try:
            return max(0, int(env))
        except ValueError:
            return 0
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return min(cores, _POOL_MAX) if cores > 1 else 0


def curves_png_pooled(diagnosis: Diagnosis, curves: Mapping[str, Curve]) -> bytes:
    """``curves_png``, drawn in a pool of worker processes when there are cores to use (drawing
    holds the GIL: threads cannot draw two figures at once, processes can). The first
    ``_POOL_AFTER`` figures of a process are drawn here (one run's diagnosis never waits for a pool
    to start); then a pool starts (``forkserver``: the workers import matplotlib once, in the
    server) and lives as long as the process; a pool that cannot start or breaks falls back to
    drawing here. The bytes are those ``curves_png`` returns in this process."""
    return _drawn_pooled(curves_png, diagnosis, dict(curves))


def scaling_png_pooled(verdict: ScalingVerdict, *, size_param: str = "train_size",
                       title: str | None = None) -> bytes:
    """``scaling_png`` in the same pool of worker processes as ``curves_png_pooled`` (a sweep
    logging hundreds of groups from several threads draws on every core)."""
    return _drawn_pooled(partial(scaling_png, size_param=size_param, title=title), verdict)


def _pause(seconds: float) -> None:
    time.sleep(seconds)


def _start_workers(pool: Any, processes: int) -> None:
    """Start all of ``pool``'s worker processes now, each with a bare ``__main__``.

    A process started by ``forkserver`` (or ``spawn``) first imports the parent's main module, as
    ``__mp_main__``: a caller's script without an ``if __name__ == "__main__":`` guard would run
    again in every worker (train its models again, diagnose its runs again). The workers only
    import this module, so while they start ``sys.modules["__main__"]`` is a bare module that
    gives them nothing to import: overlapping tasks make the executor start every worker here,
    and it reuses them after (a worker that dies breaks the pool, and drawing falls back to the
    calling thread)."""
    import sys
    import types

    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        started = [pool.submit(_pause, 0.2) for _ in range(processes)]
    finally:
        if main is not None:
            sys.modules["__main__"] = main
    for future in started:
        future.result()


def _drawn_pooled(draw: Callable[..., bytes], *args: Any) -> bytes:
    """``draw(*args)`` in the shared process pool when there are cores to use, here otherwise
    (see ``curves_png_pooled``)."""
    processes = _render_processes()
    if processes < 2:
        return draw(*args)
    with _POOL_LOCK:
        _POOL["calls"] = _POOL.get("calls", 0) + 1
        pool = _POOL.get("pool")
        if pool is None and not _POOL.get("failed") and _POOL["calls"] > _POOL_AFTER:
            try:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(["mlflow_plateau.report"])
                pool = ProcessPoolExecutor(processes, mp_context=context)
                _start_workers(pool, processes)
                _POOL["pool"] = pool
            except Exception:  # no pool (no forkserver, no /dev/shm, ...): draw here
                _POOL["failed"] = True
                if pool is not None:  # started, but its workers did not: none left behind
                    pool.shutdown(wait=False, cancel_futures=True)
                pool = None
    if pool is None:
        return draw(*args)
    from concurrent.futures.process import BrokenProcessPool

    try:
        return pool.submit(draw, *args).result()
    except BrokenProcessPool:  # a worker was killed: draw here from now on
        with _POOL_LOCK:
            if _POOL.get("pool") is pool:
                _POOL["failed"] = True
                _POOL.pop("pool")
                pool.shutdown(wait=False, cancel_futures=True)
        return draw(*args)
    except Exception:  # input that does not pickle, or an error that drawing here will raise
        return draw(*args)


def _plottable(curve: Curve, scale_percent: bool) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) ready to draw: percent accuracies as fractions (as the diagnosis did),
    inf as NaN (so the line breaks there), very long curves thinned to a min/max envelope."""
    x = curve.epochs.astype(np.float64)
    y = curve.values.astype(np.float64).copy()
    if scale_percent:
        y, _ = as_fraction(y, curve.name)
    y[~np.isfinite(y)] = np.nan
    if y.size > _MAX_PLOT_POINTS:
        buckets = _MAX_PLOT_POINTS // 2
        edges = np.linspace(0, y.size, buckets + 1).astype(np.int64)
        keep = []
        for lo, hi in pairwise(edges.tolist()):
            seg = y[lo:hi]
            if np.all(np.isnan(seg)):
                keep.append(lo)
                continue
            keep.extend(sorted({lo + int(np.nanargmin(seg)), lo + int(np.nanargmax(seg))}))
        idx = np.asarray(keep, dtype=np.int64)
        x, y = x[idx], y[idx]
    return x, y


def _fitted_epochs(monitor: Curve, n_fitted: int) -> np.ndarray | None:
    """Epochs of ``PlateauResult.fitted``: the monitor's finite prefix, or the centres of the equal
    blocks ``plateau_epoch`` averages a long curve into."""
    ok, _ = finite_prefix(monitor)
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


def _use_log_scale(*arrays: np.ndarray) -> bool:
    """Log y when the finite values are all positive and span more than ~1.5 decades: a loss that
    starts at 50 and settles at 0.3 otherwise squeezes the plateau into one pixel row."""
    vals = np.concatenate([a[np.isfinite(a)] for a in arrays]) if arrays else np.array([])
    if vals.size < 2 or np.min(vals) <= 0:
        return False
    return float(np.max(vals) / np.min(vals)) > 30.0


def _plain_log_ticks(axis: Any, lo: float, hi: float) -> None:
    """Label a log axis with plain numbers (0.3, 2,000) instead of 3x10^-1, and with short ones
    from a million up or below a thousandth (2.5e9, 1e-05: a plain 2,500,000,000 does not fit the
    margin); label the minor ticks too when the axis spans less than a decade, else only the
    decades would carry a number."""
    def fmt(v: float, _pos: Any = None) -> str:
        if v >= 1e6:
            return f"{v:.3g}".replace("e+0", "e").replace("e+", "e")
        return f"{v:,.0f}" if v >= 1000 else f"{v:.3g}"
    def fmt_minor(v: float, _pos: Any = None) -> str:
        # 8 and 9 x 10^k sit too close to the next decade's label to carry their own.
        mantissa = round(v / 10 ** math.floor(math.log10(v))) if v > 0 else 0
        return fmt(v) if 2 <= mantissa <= 7 else ""

    axis.set_major_formatter(FuncFormatter(fmt))
    few_decades = lo > 0 and hi / lo < 8
    axis.set_minor_formatter(FuncFormatter(fmt_minor) if few_decades else NullFormatter())


def _header(fig: Figure, title: str, color: str, summary: str) -> float:
    """Title (bold, verdict colour) and wrapped summary at the top of ``fig``; returns the height in
    inches they take. Fixed margins instead of constrained layout: the layout engine measured every
    tick label twice and cost ~40% of the render time, and our labels have bounded lengths."""
    height = fig.get_figheight()
    y = 0.10
    for line in title.split("\n"):
        fig.text(0.012, 1 - y / height, line, fontsize=13, fontweight="bold", color=color,
                 va="top", ha="left")
        y += 0.25
    lines = textwrap.wrap(textwrap.shorten(summary, 300, placeholder=" …"), 112)[:3]
    for line in lines:
        fig.text(0.012, 1 - (y + 0.02) / height, _label(line, 200), fontsize=8.5, color="#333333",
                 va="top", ha="left")
        y += 0.16
    return y + 0.12


def _margins(fig: Figure, top_in: float, hspace: float = 0.08, right_in: float = 0.18) -> None:
    w, h = fig.get_figwidth(), fig.get_figheight()
    fig.subplots_adjust(left=0.78 / w, right=1 - right_in / w, bottom=0.5 / h, top=1 - top_in / h,
                        hspace=hspace)


_LEGEND_IN = 2.7  # inches kept right of the axes of curves.png for the legend, off the curves


def _legend_outside(ax: Axes) -> None:
    """The legend to the right of the axes, where it cannot cover a curve."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize=7.5, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  borderaxespad=0.0, frameon=False)


def _style_axes(ax: Any) -> None:
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=9)


def _draw_pair(ax: Any, curves: Mapping[str, Curve], train: str | None, val: str | None,
               scale_percent: bool, marker: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    drawn: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, color, role in ((train, _TRAIN, "train"), (val, _VAL, "validation")):
        if not name or name not in curves:
            continue
        x, y = _plottable(curves[name], scale_percent)
        drawn[role] = (x, y)
        if not np.any(np.isfinite(y)):
            continue
        style = {"marker": "o", "markersize": 3.5} if marker or np.sum(np.isfinite(y)) < 3 else {}
        ax.plot(x, y, color=color, linewidth=1.8, label=f"{role}: {_label(name)}", **style)
    return drawn


def _draw_forecast(ax: Any, d: Diagnosis) -> None:
    """The monitor's forecast (``Diagnosis.forecast``) beyond its last epoch: a dashed line and
    its interval as a band, up to twice the epochs for a ``not_converged`` run (what training
    twice as long would bring), else a quarter of the epochs further (at least 5). Nothing for a
    diverged run or without a forecast."""
    f = d.forecast
    if f is None or f.insufficient or f.last_epoch is None or d.verdict == "diverged":
        return
    last = f.last_epoch
    end = f.epoch_2x if d.verdict == "not_converged" else last + max(5, f.n_epochs // 4)
    x = np.linspace(last, end, 60)
    y = f.predict(x)
    lo, hi = f.interval(x)
    pct = round(100 * f.level)
    ax.fill_between(x, lo, hi, color=_VAL, alpha=0.10, linewidth=0, zorder=1,
                    label=f"forecast {pct}% interval")
    ax.plot(x, y, color=_VAL, linewidth=1.6, linestyle=(0, (4, 2)), zorder=2,
            label=f"forecast: {f.value_at_2x:.3g} at epoch {f.epoch_2x}"
            if end == f.epoch_2x else "forecast")


def curves_png(diagnosis: Diagnosis, curves: Mapping[str, Curve]) -> bytes:
    """The monitor's train/validation curves with the diagnosis marked on them, as PNG bytes."""
    d = diagnosis
    p = d.plateau
    scale_percent = bool(d.evidence.get("percent_scaled"))
    second_train, second_val = _second_pair(curves, d)
    two_panels = bool(second_train or second_val)
    # Wider for the legend on the right, taller to keep the shape the MLflow viewer shows well.
    size = (8 + _LEGEND_IN, 6.4 if two_panels else 6.0)
    if two_panels:
        fig, (ax, ax2) = _blank_figure("curves", size, 150, 2, sharex=True, height_ratios=(3, 2))
    else:
        fig, (ax,) = _blank_figure("curves", size, 150, 1)
        ax2 = None
    accent = _VERDICT_COLORS.get(d.verdict, "#333333")
    top = _header(fig, f"{_verdict_title(d.verdict).upper()}  ·  monitor: {_label(d.monitor or '—', 40)}",
                  accent, d.summary)
    _margins(fig, top, right_in=_LEGEND_IN + 0.1)

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
            ax.fill_between(common, ty, vy, where=ok, color=_VAL, alpha=0.12, linewidth=0,
                            label=f"gap (final {d.gap.final:.3g})")

    if p is not None and monitor_curve is not None:
        mon = Curve(monitor_curve.name, monitor_curve.epochs,
                    as_fraction(monitor_curve.values, monitor_curve.name)[0] if scale_percent
                    else monitor_curve.values)
        fx = _fitted_epochs(mon, len(p.fitted))
        if fx is not None and len(p.fitted) >= 3:
            ax.plot(fx, p.fitted, color=_VAL, alpha=0.45, linewidth=3.5, linestyle="-",
                    solid_capstyle="round", label="smoothed validation", zorder=1)
        if p.high > p.low:
            ax.axvspan(p.low, p.high, color=_PLATEAU, alpha=0.13, linewidth=0,
                       label=f"plateau interval {p.low}–{p.high}")
        ax.axvline(p.epoch, color=_PLATEAU, linewidth=2, label=f"plateau epoch {p.epoch}")
        ax.plot([p.best_epoch], [p.best_value], marker="*", markersize=14, color=_PLATEAU,
                markeredgecolor="white", markeredgewidth=0.8, linestyle="none", zorder=5,
                label=f"best {p.best_value:.4g} @ epoch {p.best_epoch}")
        if p.stop_epoch is not None:
            patience = d.config.get("patience")
            which = f"EarlyStopping(patience={patience})" if patience is not None else "EarlyStopping"
            ax.axvline(p.stop_epoch, color=_STOP, linewidth=1.4, linestyle=(0, (5, 3)),
                       label=f"{which} stops @ {p.stop_epoch}")
        _draw_forecast(ax, d)

    chance = d.evidence.get("chance")
    if isinstance(chance, (int, float)) and math.isfinite(chance) and monitor_curve is not None:
        ax.axhline(chance, color="#57606a", linewidth=1.2, linestyle=(0, (1, 2)),
                   label=f"chance level {chance:.4g}")

    diverged_epoch = d.evidence.get("diverged_epoch")
    if isinstance(diverged_epoch, (int, float)) and math.isfinite(diverged_epoch):
        ax.axvline(diverged_epoch, color=_DIVERGED, linewidth=1.6, linestyle=":",
                   label=f"diverged @ epoch {int(diverged_epoch)}"
                         + (f" ({_label(d.evidence.get('diverged_metric'), 30)})"
                            if d.evidence.get("diverged_metric") else ""))

    finite_any = any(np.any(np.isfinite(xy[1])) for xy in drawn.values())
    if not finite_any:
        why = ("no finite values to plot" if drawn else
               f"no curve named {_label(d.monitor or '—')} in the history")
        ax.text(0.5, 0.5, why, transform=ax.transAxes, ha="center", va="center", fontsize=11,
                color="#57606a")
        if diverged_epoch is not None:
            ax.set_xlim(float(diverged_epoch) - 1, float(diverged_epoch) + 1)
    elif _use_log_scale(*(xy[1] for xy in drawn.values())):
        ax.set_yscale("log")
        finite = np.concatenate([xy[1][np.isfinite(xy[1])] for xy in drawn.values()])
        _plain_log_ticks(ax.yaxis, float(finite.min()), float(finite.max()))
    ax.set_ylabel(_label(_metric_axis_label(d.monitor, d.train_metric)), fontsize=10)
    _style_axes(ax)
    _legend_outside(ax)

    if ax2 is not None:
        drawn2 = _draw_pair(ax2, curves, second_train, second_val, True, marker)
        if p is not None:
            ax2.axvline(p.epoch, color=_PLATEAU, linewidth=1.5)
            if p.high > p.low:
                ax2.axvspan(p.low, p.high, color=_PLATEAU, alpha=0.13, linewidth=0)
            if p.stop_epoch is not None:
                ax2.axvline(p.stop_epoch, color=_STOP, linewidth=1.2, linestyle=(0, (5, 3)))
        if isinstance(diverged_epoch, (int, float)) and math.isfinite(diverged_epoch):
            ax2.axvline(diverged_epoch, color=_DIVERGED, linewidth=1.4, linestyle=":")
        ax2.set_ylabel(_label(_metric_axis_label(second_val, second_train)), fontsize=10)
        _style_axes(ax2)
        if any(np.any(np.isfinite(xy[1])) for xy in drawn2.values()):
            _legend_outside(ax2)
        ax2.set_xlabel("epoch", fontsize=10)
    else:
        ax.set_xlabel("epoch", fontsize=10)
    _epoch_axis(ax2 or ax, [xy[0] for xy in drawn.values()])
    return _png(fig)


def _epoch_axis(ax: Any, epochs: Sequence[np.ndarray]) -> None:
    """Epochs are integers: no "12.5" ticks on short curves, and a curve of one or two epochs
    gets an axis one epoch wider on each side (matplotlib's own limits around a single point
    are fractions, which no integer tick fits)."""
    known = [np.asarray(e, dtype=np.float64) for e in epochs if np.size(e)]
    if known:
        lo, hi = min(float(e.min()) for e in known), max(float(e.max()) for e in known)
        if hi - lo < 2:
            ax.set_xlim(lo - 1, hi + 1)
    ax.xaxis.get_major_locator().set_params(integer=True)


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


# ---------------------------------------------------------------------------------- scaling plot

def _fmt_size(n: float) -> str:
    return f"{n:,.0f}" if n >= 100 else f"{n:.3g}"


def _band(verdict: ScalingVerdict, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
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
                title: str | None = None) -> bytes:
    """Error against training size (log-log) with the fitted curve, its band and the 2x point."""
    fit = verdict.fit
    fig, (ax,) = _blank_figure("scaling", (8, 5), 150, 1)
    accent = _VERDICT_COLORS.get(verdict.verdict, "#333333")
    gain = fit.gain_at_2x
    head = f"{_verdict_title(verdict.verdict).upper()}"
    if gain is not None and math.isfinite(gain):
        head += f"  ·  gain at 2× data: {100 * gain:.1f}%"
    if title:
        head = f"{_label(title, 64)}\n{head}"
    _margins(fig, _header(fig, head, accent, verdict.summary))
    sizes = fit.sizes.astype(np.float64)
    errors = fit.errors.astype(np.float64)
    ax.plot(sizes, errors, "o", color=_TRAIN, markersize=7, markeredgecolor="white",
            markeredgewidth=0.8, label="runs", zorder=5)
    if not fit.insufficient_points:
        n_max = float(sizes.max())
        grid_in = np.geomspace(float(sizes.min()), n_max, 200)
        grid_out = np.geomspace(n_max, 2 * n_max, 50)
        grid = np.concatenate([grid_in, grid_out[1:]])
        band = _band(verdict, grid)
        if band is not None:
            ax.fill_between(grid, band[0], band[1], color=_VAL, alpha=0.14, linewidth=0,
                            label=f"exponent interval b ∈ [{fit.low:.2f}, {fit.high:.2f}]")
        ax.plot(grid_in, fit.predict(grid_in), color=_VAL, linewidth=2,
                label=f"fit: {fit.coefficient:.3g}·n^(−{fit.exponent:.2f}) + {fit.floor:.3g}")
        ax.plot(grid_out, fit.predict(grid_out), color=_VAL, linewidth=2, linestyle=(0, (4, 2)),
                label="extrapolation")
        at_max, at_2x = float(fit.predict(n_max)), float(fit.predict(2 * n_max))
        ax.plot([2 * n_max], [at_2x], marker="D", markersize=8, markerfacecolor="white",
                markeredgecolor=_VAL, markeredgewidth=2, linestyle="none", zorder=6,
                label=f"2× data ({_fmt_size(2 * n_max)}): predicted {at_2x:.4g}")
        drop = 100 * (1 - at_2x / at_max)
        ax.annotate(f"−{drop:.1f}%" if drop >= 0.05 else "±0%", (2 * n_max, at_2x),
                    textcoords="offset points", xytext=(-6, 10), ha="right", fontsize=9,
                    color=_VAL, fontweight="bold")
        # The floor is known only where the error falls with size (an exponent whose interval
        # is above 0); with a flat curve, a + c is split arbitrarily and its c says nothing.
        if fit.floor and fit.floor > 0 and fit.low is not None and fit.low > 0:
            ax.axhline(fit.floor, color=_STOP, linewidth=1, linestyle=":",
                       label=f"fitted floor {fit.floor:.3g}")
    if sizes.size == 0:  # a group whose runs are all gone: nothing to place on log axes
        ax.text(0.5, 0.5, "no runs left in this group", transform=ax.transAxes, ha="center",
                va="center", fontsize=11, color="#57606a")
    else:
        ax.set_xscale("log")
        ax.set_yscale("log")  # errors are > 0: scaling_fit refuses anything else
        ax.margins(x=0.08, y=0.1)
        _plain_log_ticks(ax.xaxis, *ax.get_xlim())
        _plain_log_ticks(ax.yaxis, *ax.get_ylim())
    ax.set_xlabel(f"training size ({_label(size_param, 40)})", fontsize=10)
    ax.set_ylabel("error", fontsize=10)
    _style_axes(ax)
    ax.grid(True, which="minor", color="#f0f0f0", linewidth=0.5)
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
    return _png(fig)


# ------------------------------------------------------------------------------- comparison plot

# One colour per run in the order the runs stopped learning (Okabe-Ito without its yellow, then
# three darker hues); runs past these are drawn grey, without a legend entry of their own.
_RUN_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#332288",
               "#882255", "#117733", "#444444")
_OTHER_RUNS = "#b8b8b8"
_MAX_PANELS = 3  # distinct monitors drawn in their own panel; runs of further monitors are listed


def _run_color(rank: int) -> str:
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
        return f"{_verdict_title(row.verdict)} · {what} @ {row.stopped_epoch}"
    if row.still_improving:
        return f"{_verdict_title(row.verdict)} · still improving"
    return _verdict_title(row.verdict)


def _comparison_inputs(diagnoses: Sequence[Diagnosis], labels: Mapping[str, str] | None,
                       by: str = "plateau") -> tuple[Comparison, dict[str, Diagnosis]]:
    keys = run_keys(diagnoses)
    return compare_diagnoses(diagnoses, labels, by=by), dict(zip(keys, diagnoses, strict=True))


def _draw_run(ax: Any, row: ComparisonRow, d: Diagnosis, curve: Curve, color: str,
              marker: bool) -> bool:
    """One run's monitor on ``ax`` with where it stopped learning marked; False when nothing finite."""
    x, y = _plottable(curve, bool(d.evidence.get("percent_scaled")))
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
    comparison, by_key = _comparison_inputs(diagnoses, labels, by)
    rows = comparison.rows
    monitors = list(dict.fromkeys(r.monitor for r in rows if r.monitor))
    shown, hidden = monitors[:_MAX_PANELS], monitors[_MAX_PANELS:]
    n_panels = max(1, len(shown))
    fig = Figure(figsize=(10.5, 3.4 + 1.9 * n_panels), dpi=130)
    first = comparison.first
    if first is not None:
        head = f"STOPPED LEARNING FIRST: {_label(first.label, 40)}  ·  epoch {first.stopped_epoch}"
        accent = _VERDICT_COLORS.get(first.verdict, "#333333")
    else:
        head, accent = "NO RUN STOPPED LEARNING", "#57606a"
    top = _header(fig, head, accent, comparison.answer)
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
            color = _run_color(row.rank)
            if _draw_run(ax, row, by_key[row.key], curve, color, marker):
                drawn_y.append(_plottable(curve, bool(by_key[row.key].evidence.get(
                    "percent_scaled")))[1])
        if not drawn_y:
            ax.text(0.5, 0.5, "no finite values to plot", transform=ax.transAxes, ha="center",
                    va="center", fontsize=11, color="#57606a")
        elif _use_log_scale(*drawn_y):
            ax.set_yscale("log")
            finite = np.concatenate([y[np.isfinite(y)] for y in drawn_y])
            _plain_log_ticks(ax.yaxis, float(finite.min()), float(finite.max()))
        mode = next((r.mode for r in rows if r.monitor == monitor and r.mode), None)
        better = {"min": " (lower is better)", "max": " (higher is better)"}.get(mode or "", "")
        ax.set_ylabel(_label(monitor or "monitor", 32) + better, fontsize=9.5)
        _style_axes(ax)
    axes[-1].set_xlabel("epoch", fontsize=10)
    axes[-1].xaxis.get_major_locator().set_params(integer=True)

    from matplotlib.lines import Line2D

    for row in rows:
        color = _run_color(row.rank)
        if color == _OTHER_RUNS:
            continue
        handles.append(Line2D([], [], color=color, linewidth=2.6 if row.rank == 1 else 1.6,
                              marker="o" if row.stopped else ">", markersize=6,
                              markerfacecolor=color if row.stopped else "white",
                              markeredgecolor=color))
        names.append(f"{row.rank}. {_label(_middle(row.label, 30), 30)}\n    {_row_note(row)}")
    others = len(rows) - len(handles)
    if others > 0:
        handles.append(Line2D([], [], color=_OTHER_RUNS, linewidth=1.0))
        names.append(f"+{others} more run(s), in grey")
    if hidden:
        handles.append(Line2D([], [], color="none"))
        names.append(f"not drawn: monitor(s) {_label(', '.join(hidden), 40)}")
    fig.legend(handles, names, loc="upper left", bbox_to_anchor=(1 - (legend_in - 0.15) / w,
               1 - top / h), fontsize=8, frameon=False, labelspacing=0.9, handlelength=2.2,
               title="in the order they stopped learning", title_fontsize=8.5,
               alignment="left")
    return _png(fig)


# ------------------------------------------------------------------------------------------ HTML

_STYLE = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 28px 40px; font: 14px/1.5 system-ui, -apple-system, "Segoe UI",
  Roboto, "Helvetica Neue", Arial, sans-serif; color: #1f2328; background: #ffffff; max-width: 1000px; }
h1 { font-size: 15px; font-weight: 600; color: #57606a; margin: 0 0 6px; overflow-wrap: anywhere; }
h2 { font-size: 16px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
.verdict { display: inline-block; font-size: 22px; font-weight: 700; letter-spacing: .02em;
  padding: 4px 14px; border-radius: 6px; color: #ffffff; margin: 4px 0 10px; }
.summary { font-size: 17px; margin: 0 0 14px; overflow-wrap: anywhere; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 10px 0 4px; }
.card { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 12px; min-width: 150px; }
.card .k { font-size: 12px; color: #57606a; }
.card .v { font-size: 18px; font-weight: 600; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; vertical-align: top; padding: 4px 8px; border-bottom: 1px solid #eaeef2;
  overflow-wrap: anywhere; word-break: break-word; }
th { color: #57606a; font-weight: 600; width: 36%; }
td.num { font-variant-numeric: tabular-nums; }
code, .key { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
td.key { color: #6e7781; width: 28%; }
ul.recs { margin: 0; padding-left: 20px; } ul.recs li { margin: 4px 0; }
figure { margin: 0; } img.plot { width: 100%; max-width: 960px; height: auto;
  border: 1px solid #d0d7de; border-radius: 6px; }
figcaption, .note { font-size: 12px; color: #57606a; margin-top: 4px; }
footer { margin-top: 32px; font-size: 12px; color: #6e7781; }
"""

# Human labels for the evidence keys the core writes, in reading order; unknown keys follow as they are.
_EVIDENCE_LABELS = {
    "diverged_epoch": "Diverged at epoch",
    "diverged_metric": "Metric that diverged",
    "plateau_epoch": "Plateau epoch",
    "plateau_low": "Plateau interval, low",
    "plateau_high": "Plateau interval, high",
    "best_epoch": "Best epoch",
    "best_value": "Best value of the monitor",
    "final_value": "Last value of the monitor",
    "tolerance": "Improvement tolerance",
    "noise": "Noise (robust, per epoch)",
    "improvement": "Total improvement (smoothed)",
    "stop_epoch": "EarlyStopping would stop at epoch",
    "wasted_epochs": "Epochs trained after that stop",
    "still_improving": "Still improving at the end",
    "gap_final": "Gap at the last epoch",
    "gap_at_best": "Gap at the best epoch",
    "gap_relative_final": "Gap at the end, relative to validation",
    "gap_trend": "Gap trend per epoch after the plateau",
    "gap_trend_low": "Gap trend, 90% interval low",
    "gap_trend_high": "Gap trend, 90% interval high",
    "train_final": "Final training value",
    "train_best": "Best training value",
    "chance": "Chance level",
    "chance_source": "Chance level from",
    "decided_by": "What decided the verdict",
    "came": "How far validation came (the yardstick)",
    "score_at_chance": "at_chance rule (1.0 = fires)",
    "score_unstable": "unstable rule (1.0 = fires)",
    "score_overfitting": "overfitting rule (1.0 = fires)",
    "score_not_converged": "not_converged rule (1.0 = fires)",
    "score_underfitting": "underfitting rule (1.0 = fires)",
    "exponent": "Exponent b",
    "exponent_low": "Exponent, 5th percentile",
    "exponent_high": "Exponent, 95th percentile",
    "floor": "Floor c (error with unlimited data)",
    "slope": "Log-log slope",
    "gain_at_2x": "Predicted error drop at 2× data",
    "largest_size": "Largest training size",
    "n_distinct": "Distinct training sizes",
    "verdict_rule": "Rule that decided the verdict",
    "epochs": "Usable epochs of the monitor",
    "percent_scaled": "Accuracy logged in percent (scaled to 0–1)",
    "note": "Note",
    "min_epochs": "Epochs needed for a diagnosis",
}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    """A value as text (not yet escaped): numbers to 4 significant digits, booleans as yes/no."""
    if value is None:
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return str(v)
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _cut(text: str, limit: int = _MAX_CELL) -> str:
    # Shorten the raw string before escaping, so an entity is never cut in half.
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


def _kv_table(items: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> str:
    """A two-column table (three with ``labels``: label, value, key). Labelled keys come first in
    the order of ``labels`` (a reading order), then the rest sorted."""
    order = {k: i for i, k in enumerate(labels or {})}
    keys = sorted(items, key=lambda k: (order.get(str(k), len(order)), str(k)))
    rows = []
    for key in keys:
        value = items[key]
        cls = " class=\"num\"" if isinstance(value, (int, float, np.number)) else ""
        cell = f"<td{cls}>{_e(_cut(_fmt(value)))}</td>"
        if labels is not None:
            label = labels.get(str(key), str(key))
            rows.append(f"<tr><th>{_e(_cut(label, 200))}</th>{cell}"
                        f"<td class=\"key\">{_e(_cut(str(key), 200))}</td></tr>")
        else:
            rows.append(f"<tr><th><code>{_e(_cut(str(key), 200))}</code></th>{cell}</tr>")
    return "<table>\n" + "\n".join(rows) + "\n</table>\n" if rows else "<p class=\"note\">none</p>\n"


def _page(title: str, body: str, style: str = "") -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_CSP}\">\n"
        "<meta name=\"referrer\" content=\"no-referrer\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{_e(title)}</title>\n<style>{_STYLE}{style}</style>\n</head>\n<body>\n{body}\n"
        f"<footer>mlflow-plateau {_e(__version__)}</footer>\n</body>\n</html>\n"
    )


def _verdict_block(verdict: str, summary: str, heading: str) -> str:
    color = _VERDICT_COLORS.get(verdict, "#333333")
    return (f"<h1>{heading}</h1>\n"
            f"<div class=\"verdict\" style=\"background:{color}\">{_e(_verdict_title(verdict))}</div>\n"
            f"<p class=\"summary\">{_e(summary)}</p>\n")


def _img(png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f"<figure><img class=\"plot\" alt=\"{_e(alt)}\" src=\"data:image/png;base64,{data}\">"
            f"<figcaption>{caption}</figcaption></figure>")


def _cards(d: Diagnosis) -> str:
    p, g = d.plateau, d.gap
    cards: list[tuple[str, str]] = []
    if p is not None:
        interval = f" ({p.low}–{p.high})" if p.high > p.low else ""
        cards.append(("Plateau epoch", f"{p.epoch}{interval}"))
        cards.append((f"Best value @ epoch {p.best_epoch}", _fmt(p.best_value)))
        if p.stop_epoch is not None:
            cards.append(("EarlyStopping stops @", f"{p.stop_epoch} ({p.wasted_epochs} wasted)"))
    if g is not None:
        rel = f" ({100 * g.relative_final:.0f}%)" if g.relative_final is not None else ""
        cards.append(("Gap at the end", f"{_fmt(g.final)}{rel}"))
    f = d.forecast
    if f is not None and not f.insufficient and d.verdict != "diverged":
        cards.append((f"Forecast @ epoch {f.epoch_2x} (2x)",
                      f"{_fmt(f.value_at_2x)} ({_fmt(f.value_at_2x_low)}–{_fmt(f.value_at_2x_high)})"))
    if "diverged_epoch" in d.evidence:
        cards.append(("Diverged at epoch", _fmt(d.evidence["diverged_epoch"])))
    return ("<div class=\"cards\">" + "".join(
        f"<div class=\"card\"><div class=\"k\">{_e(k)}</div><div class=\"v\">{_e(v)}</div></div>"
        for k, v in cards) + "</div>\n") if cards else ""


def _recommendations(recs: list[str]) -> str:
    return "<ul class=\"recs\">" + "".join(f"<li>{_e(r)}</li>" for r in recs) + "</ul>\n"


def _close_calls(alternatives: list[dict[str, Any]]) -> str:
    """The verdicts that came close, each with the number that decided it (empty when none)."""
    if not alternatives:
        return ""
    items = "".join(f"<li><code>{_e(a.get('verdict'))}</code>: {_e(a.get('why'))} (score "
                    f"{_e(_fmt(a.get('score')))}; 1.0 is the line)</li>" for a in alternatives)
    return f"<h2>Close calls</h2>\n<ul class=\"recs\">{items}</ul>\n"


def report_html(diagnosis: Diagnosis, curves: Mapping[str, Curve], *, run_name: str | None = None,
                params: Mapping[str, str] | None = None, tags: Mapping[str, str] | None = None,
                png: bytes | None = None) -> str:
    """One self-contained HTML page with the diagnosis of a run (see the module docstring).

    ``png``: the bytes ``curves_png(diagnosis, curves)`` already returned, to embed without drawing
    the figure a second time (callers that upload both save ~0.2 s a run).
    """
    d = diagnosis
    who = run_name or d.run_id or "training run"
    heading = f"Plateau diagnosis · {_e(_cut(str(who), 200))}"
    if d.monitor:
        heading += f" · monitor <code>{_e(_cut(d.monitor, 200))}</code>"
    if png is None:
        png = curves_png(d, curves)
    elif not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("png must be the PNG bytes curves_png returned")
    body = [
        _verdict_block(d.verdict, d.summary, heading),
        _cards(d),
        "<h2>What to try next</h2>\n", _recommendations(d.recommendations),
        _close_calls(d.alternatives),
        "<h2>Training curves</h2>\n",
        _img(png, f"{_verdict_title(d.verdict)}: {d.summary}", curves_caption(d)),
        "<h2>Evidence</h2>\n", _kv_table(d.evidence, _EVIDENCE_LABELS),
        "<h2>Configuration</h2>\n", _kv_table(d.config),
        "<h2>Run</h2>\n",
        _kv_table({"run name": run_name, "run id": d.run_id, "monitor": d.monitor,
                   "training metric": d.train_metric, "mode": d.mode,
                   "metrics in the history": ", ".join(sorted(curves)) or None}),
        "<h2>Parameters</h2>\n", _kv_table(dict(params or {})),
        "<h2>Tags</h2>\n", _kv_table({k: v for k, v in (tags or {}).items() if k not in _OWN_TAGS}),
    ]
    title = f"{_verdict_title(d.verdict)} · {_cut(str(who), 120)} · plateau diagnosis"
    return _page(title, "".join(body))


def scaling_html(verdict: ScalingVerdict, *, size_param: str = "train_size",
                 title: str | None = None, png: bytes | None = None) -> str:
    """One self-contained HTML page with a learning-curve (scaling) verdict and its plot
    (``png``: what ``scaling_png`` with the same arguments returned, to avoid drawing it twice)."""
    v, fit = verdict, verdict.fit
    heading = "Learning curve · error vs " + f"<code>{_e(_cut(size_param, 200))}</code>"
    if title:
        heading = f"{_e(_cut(title, 200))} · " + heading
    if png is None:
        png = scaling_png(v, size_param=size_param, title=title)
    elif not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("png must be the PNG bytes scaling_png returned")
    rows = []
    for n, err in zip(fit.sizes.tolist(), fit.errors.tolist(), strict=True):
        pred = "—" if fit.insufficient_points else _fmt(float(fit.predict(n)))
        rows.append(f"<tr><td class=\"num\">{_e(_fmt(n))}</td><td class=\"num\">{_e(_fmt(err))}"
                    f"</td><td class=\"num\">{_e(pred)}</td></tr>")
    points = ("<table><tr><th>" + _e(_cut(size_param, 200)) + "</th><th>error</th>"
              "<th>fitted</th></tr>\n" + "\n".join(rows) + "\n</table>\n")
    fit_items = {k: val for k, val in fit.to_dict().items() if k not in ("sizes", "errors")}
    body = [
        _verdict_block(v.verdict, v.summary, heading),
        "<h2>What to try next</h2>\n", _recommendations(v.recommendations),
        "<h2>Learning curve</h2>\n",
        _img(png, f"{_verdict_title(v.verdict)}: {v.summary}",
             "Points: runs; solid line: the fitted error(n) = a·n^(−b) + c; dashed: its "
             "extrapolation to twice the largest size (diamond); band: the curve with the "
             "exponent at its bootstrap 5th and 95th percentiles, pinned at the geometric-mean "
             "size, floor kept; dotted: the fitted floor c."),
        "<h2>Evidence</h2>\n", _kv_table(v.evidence, _EVIDENCE_LABELS),
        "<h2>Fit</h2>\n", _kv_table(fit_items),
        "<h2>Runs</h2>\n", points,
    ]
    page_title = f"{_verdict_title(v.verdict)} · learning curve" + (f" · {_cut(title, 120)}"
                                                                   if title else "")
    return _page(page_title, "".join(body))


_COMPARISON_STYLE = """
body { max-width: 1280px; }
table.cmp th { width: auto; overflow-wrap: normal; word-break: normal; }
table.cmp td.num { white-space: nowrap; }
table.cmp td.run { min-width: 110px; } table.cmp td.sum { min-width: 200px; }
table.cmp tr.first td { background: #fff8e1; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 6px;
  vertical-align: -1px; }
.badge { display: inline-block; color: #ffffff; border-radius: 4px; padding: 0 7px; font-size: 12px;
  font-weight: 600; white-space: nowrap; }
td.run code { color: #6e7781; font-size: 11px; }
"""


def comparison_epoch_text(row: ComparisonRow, *, dash: str = "–", missing: str = "—") -> str:
    """A comparison row's plateau cell as plain text: epoch [low–high], still improving, diverged.

    ``dash`` joins the interval and ``missing`` stands for no plateau (the terminal table uses
    ASCII ``-`` for both). Not escaped: each face escapes for its own medium.
    """
    if row.plateau_epoch is None:
        text = missing
    else:
        text = str(row.plateau_epoch)
        if row.plateau_low is not None and row.plateau_high is not None \
                and row.plateau_high > row.plateau_low:
            text += f" [{row.plateau_low}{dash}{row.plateau_high}]"
    if row.still_improving:
        text += " (still improving)"
    if row.verdict == "diverged" and row.stopped_epoch is not None \
            and row.stopped_epoch != row.plateau_epoch:
        text += f" (diverged @ {row.stopped_epoch})"
    return text


def _epoch_cell(row: ComparisonRow) -> str:
    return _e(comparison_epoch_text(row))


def _forecast_cell(row: ComparisonRow) -> str:
    if row.forecast_best is None:
        return "—"
    text = f"{_fmt(row.forecast_best)} @ {row.forecast_epoch}"
    if row.forecast_low is not None and row.forecast_high is not None:
        text += f" (level {_fmt(row.forecast_low)}–{_fmt(row.forecast_high)})"
    return text


def _comparison_table(comparison: Comparison) -> str:
    forecasts = any(r.forecast_best is not None for r in comparison.rows)
    forecast_head = ("<th title=\"best value forecast with twice the epochs, and the forecast "
                     "level's interval there\">forecast best @ 2x epochs</th>") if forecasts else ""
    head = ("<tr><th>#</th><th>run</th><th>verdict</th><th>plateau epoch [interval]</th>"
            "<th>best value @ epoch</th>" + forecast_head +
            "<th title=\"where EarlyStopping would have stopped\">"
            "early stop</th><th>wasted epochs</th><th>final gap</th><th>summary</th></tr>")
    rows = []
    for r in comparison.rows:
        forecast = f"<td class=\"num\">{_e(_forecast_cell(r))}</td>" if forecasts else ""
        color = _run_color(r.rank)
        best = "—" if r.best_value is None else f"{_fmt(r.best_value)} @ {r.best_epoch}"
        run_id = "" if r.key == r.label else f"<br><code>{_e(_cut(r.key, 200))}</code>"
        badge = _VERDICT_COLORS.get(r.verdict, "#333333")
        tr = "<tr class=\"first\">" if r is comparison.first else "<tr>"
        rows.append(
            f"{tr}"
            f"<td class=\"num\">{r.rank}</td>"
            f"<td class=\"run\"><span class=\"swatch\" style=\"background:{color}\"></span>"
            f"{_e(_cut(r.label, 200))}{run_id}</td>"
            f"<td><span class=\"badge\" style=\"background:{badge}\">{_e(_verdict_title(r.verdict))}"
            f"</span></td>"
            f"<td class=\"num\">{_epoch_cell(r)}</td><td class=\"num\">{_e(best)}</td>"
            f"{forecast}<td class=\"num\">{_e(_fmt(r.stop_epoch))}</td>"
            f"<td class=\"num\">{_e(_fmt(r.wasted_epochs))}</td>"
            f"<td class=\"num\">{_e(_fmt(r.gap_final))}</td>"
            f"<td class=\"sum\">{_e(_cut(r.summary))}</td></tr>")
    return "<table class=\"cmp\">\n" + head + "\n" + "\n".join(rows) + "\n</table>\n"


def comparison_html(diagnoses: Sequence[Diagnosis], curves_by_run: Mapping[str, Mapping[str, Curve]],
                    *, labels: Mapping[str, str] | None = None,
                    failures: Mapping[str, str] | None = None, title: str | None = None,
                    png: bytes | None = None, by: str = "plateau") -> str:
    """One self-contained page answering "which of these runs stopped learning first, and why".

    The answer first (the first run's verdict and summary), the table of every run in the order
    they stopped learning, the overlay (``png``: what ``comparison_png`` with the same arguments
    returned, to skip a redraw), what the first run should try next, the runs that could not be
    compared (``failures``: run id -> reason) and the diagnosis configuration. Every string from a
    run is escaped. ``by="forecast"`` ranks the runs by the best value forecast with twice their
    epochs instead (``compare_diagnoses``), and says so in the headings.
    """
    comparison, by_key = _comparison_inputs(diagnoses, labels, by)
    if png is None:
        png = comparison_png(diagnoses, curves_by_run, labels=labels, by=by)
    elif not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("png must be the PNG bytes comparison_png returned")
    n = len(comparison.rows)
    monitors = sorted({r.monitor for r in comparison.rows if r.monitor})
    heading = f"Run comparison · {n} run{'s' if n != 1 else ''}"
    if title:
        heading = f"{_e(_cut(title, 200))} · " + heading
    if monitors:
        heading += " · monitor " + ", ".join(f"<code>{_e(_cut(m, 200))}</code>" for m in monitors)
    first = comparison.first
    if first is not None:
        top = _verdict_block(first.verdict, comparison.answer, heading)
    else:
        top = (f"<h1>{heading}</h1>\n<div class=\"verdict\" style=\"background:#57606a\">no run "
               f"stopped learning</div>\n<p class=\"summary\">{_e(comparison.answer)}</p>\n")
    order = ("ranked by the best value forecast with twice their epochs" if by == "forecast"
             else "in the order they stopped learning")
    body = [top, f"<h2>Runs, {order}</h2>\n", _comparison_table(comparison)]
    body.append("<h2>Validation curves</h2>\n")
    body.append(_img(png, comparison.answer,
                     f"Each run's monitored validation metric, coloured {order} "
                     "(thickest: the first). Dot: the plateau epoch, with its "
                     "interval as a pale bar; X: the epoch a run diverged; hollow triangle: a run "
                     "still improving at its last epoch; ticks on the epoch axis: where each run "
                     "stopped learning."))
    if first is not None:
        body.append(f"<h2>What {_e(_cut(first.label, 200))} should try next</h2>\n")
        body.append(_recommendations(by_key[first.key].recommendations))
    if failures:
        body.append("<h2>Runs not compared</h2>\n")
        body.append(_kv_table({str(k): v for k, v in failures.items()}))
    configs = [by_key[r.key].config for r in comparison.rows]
    body.append("<h2>Configuration</h2>\n")
    if configs and all(c == configs[0] for c in configs):
        body.append(_kv_table(configs[0]))
    else:
        body.append("<p class=\"note\">The runs were diagnosed with different configurations: "
                    "see each run's own report.</p>\n")
    page_title = "run comparison" + (f" · {_cut(title, 120)}" if title else "")
    if first is not None:
        lead = "is forecast to do best" if by == "forecast" else "stopped learning first"
        page_title = f"{_cut(first.label, 80)} {lead} · " + page_title
    return _page(page_title, "".join(body), _COMPARISON_STYLE)


__all__ = ["comparison_html", "comparison_png", "curves_png", "curves_png_pooled", "diagnosis_json",
           "report_html", "scaling_html", "scaling_png", "scaling_png_pooled"]
