"""The renderers' public names in one place, for callers written before ``mlflow_plateau.render``.

``from mlflow_plateau import report`` then ``report.curves_png(d, curves)`` keeps working; the
code lives in the ``render`` package (one module per plot, the HTML pages, the figures and the
process pool: see ``mlflow_plateau/render/__init__.py``).
"""

from __future__ import annotations

from .render.comparison_plot import comparison_png
from .render.curves_plot import curves_caption, curves_png, draw_curves
from .render.pages import (
    comparison_epoch_text,
    comparison_html,
    diagnosis_json,
    report_html,
    scaling_html,
)
from .render.pool import curves_png_pooled, scaling_png_pooled
from .render.scaling_plot import draw_scaling, scaling_png

__all__ = ["comparison_epoch_text", "comparison_html", "comparison_png", "curves_caption",
           "curves_png", "curves_png_pooled", "diagnosis_json", "draw_curves", "draw_scaling",
           "report_html", "scaling_html", "scaling_png", "scaling_png_pooled"]
