"""What every plot of the package shares: colours, safe labels, reused blank figures, the header
and margins, axis helpers, and the PNG encoding.

Determinism: figures are drawn on ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot, no
global state, safe in threads) and saved by Pillow as palette PNGs without metadata or timestamp
(``png_bytes``), so the same input gives the same bytes and an unchanged run need not be
re-uploaded.

Speed: ``blank_figure`` reuses one figure per thread, drawing function and shape (what the last
drawing added is removed, the rest is kept); each figure is drawn once (no layout engine, fixed
margins: see ``header``); ``png_bytes`` encodes 256 colours instead of RGBA.

Safety: ``plot_label`` escapes ``$`` so a run's metric name cannot switch matplotlib into mathtext
(which could fail to parse and abort the render), and draws characters the plot font lacks as
``?`` (the HTML pages keep the exact text).
"""

from __future__ import annotations

import io
import math
import textwrap
import threading
from collections.abc import Sequence
from functools import lru_cache
from itertools import pairwise
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont
from matplotlib.ft2font import FT2Font
from matplotlib.ticker import FuncFormatter, NullFormatter
from PIL import Image

from ..curves import Curve, as_fraction

# Colors: a colour-blind-safe palette (Okabe-Ito) for the curves, one accent per verdict.
TRAIN = "#0072B2"
VAL = "#D55E00"
PLATEAU = "#009E73"
STOP = "#555555"
DIVERGED = "#CC0000"
VERDICT_COLORS = {
    "healthy": "#1a7f37", "overfitting": "#c2410c", "underfitting": "#7c3aed",
    "at_chance": "#57606a", "not_converged": "#0969da", "unstable": "#b08800",
    "diverged": "#cf222e", "insufficient_data": "#57606a",
    "data_limited": "#0969da", "diminishing_returns": "#b08800", "saturated": "#1a7f37",
    "insufficient_points": "#57606a",
}
_PNG_COLORS = 256         # palette size of the PNGs (see png_bytes)
_PNG_COMPRESSION = 1      # zlib level of the PNGs (see png_bytes)
_MAX_PLOT_POINTS = 4000   # curves longer than this are drawn as a min/max envelope
_MAX_LABEL = 48           # metric names longer than this are shortened in plot labels


@lru_cache(maxsize=1)
def _font_chars() -> frozenset[int]:
    """Code points the default font can draw (DejaVu Sans unless configured otherwise)."""
    try:
        return frozenset(FT2Font(findfont(FontProperties())).get_charmap())
    except Exception:  # no font file readable: draw as is and let matplotlib cope
        return frozenset()


def plot_label(text: Any, limit: int = _MAX_LABEL) -> str:
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


def verdict_title(verdict: str) -> str:
    """A verdict as words (``not_converged`` -> ``not converged``)."""
    return verdict.replace("_", " ")


def png_bytes(fig: Figure) -> bytes:
    """``fig`` drawn once with Agg and saved as a palette PNG: 256 colours chosen by a fast octree
    (a plot has a few flat colours and their anti-aliased edges: indistinguishable from the RGBA
    image, far smaller, and quicker to compress than four bytes a pixel), compressed at zlib's
    fastest level. No metadata, no timestamp: the same figure gives the same bytes."""
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
    # zlib's fastest level: the same pixels, a third of the encoding time of the default (6) for
    # about a third more bytes (~60 KiB a curves.png); a default diagnose encodes one per run.
    image.save(buf, format="png", dpi=(fig.dpi, fig.dpi), compress_level=_PNG_COMPRESSION)
    return buf.getvalue()


_FIGURES = threading.local()


def blank_figure(name: str, size: tuple[float, float], dpi: int, panels: int,
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


def forget_figures() -> None:
    """Drop the figures this thread kept for reuse: the next drawing builds new ones (a test
    compares a reused figure's bytes with a new one's)."""
    _FIGURES.__dict__.clear()


def plottable(curve: Curve, scale_percent: bool) -> tuple[np.ndarray, np.ndarray]:
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


def use_log_scale(*arrays: np.ndarray) -> bool:
    """Log y when the finite values are all positive and span more than ~1.5 decades: a loss that
    starts at 50 and settles at 0.3 otherwise squeezes the plateau into one pixel row."""
    vals = np.concatenate([a[np.isfinite(a)] for a in arrays]) if arrays else np.array([])
    if vals.size < 2 or np.min(vals) <= 0:
        return False
    return float(np.max(vals) / np.min(vals)) > 30.0


def plain_log_ticks(axis: Any, lo: float, hi: float) -> None:
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


def header(fig: Figure, title: str, color: str, summary: str) -> float:
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
        fig.text(0.012, 1 - (y + 0.02) / height, plot_label(line, 200), fontsize=8.5, color="#333333",
                 va="top", ha="left")
        y += 0.16
    return y + 0.12


def margins(fig: Figure, top_in: float, hspace: float = 0.08, right_in: float = 0.18) -> None:
    w, h = fig.get_figwidth(), fig.get_figheight()
    fig.subplots_adjust(left=0.78 / w, right=1 - right_in / w, bottom=0.5 / h, top=1 - top_in / h,
                        hspace=hspace)


def style_axes(ax: Any) -> None:
    ax.grid(True, color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=9)


def epoch_axis(ax: Any, epochs: Sequence[np.ndarray]) -> None:
    """Epochs are integers: no "12.5" ticks on short curves, and a curve of one or two epochs
    gets an axis one epoch wider on each side (matplotlib's own limits around a single point
    are fractions, which no integer tick fits)."""
    known = [np.asarray(e, dtype=np.float64) for e in epochs if np.size(e)]
    if known:
        lo, hi = min(float(e.min()) for e in known), max(float(e.max()) for e in known)
        if hi - lo < 2:
            ax.set_xlim(lo - 1, hi + 1)
    ax.xaxis.get_major_locator().set_params(integer=True)

