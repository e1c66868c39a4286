"""The diagnosis rendered for people: ``diagnosis.json``, the plots as PNG and self-contained HTML.

One module per concern, the shared ones below the others:

- ``figures``: colours, safe plot labels, reused blank figures, header and margins, axis helpers,
  PNG encoding (deterministic bytes);
- ``curves_plot``: ``curves.png`` of one run (``curves_png``, ``draw_curves`` on a caller's Axes,
  ``curves_caption``);
- ``scaling_plot``: the learning curve of a size sweep (``scaling_png``, ``draw_scaling``);
- ``comparison_plot``: several runs overlaid (``comparison_png``);
- ``pool``: the same pictures drawn in worker processes (``curves_png_pooled``,
  ``scaling_png_pooled``);
- ``pages``: ``diagnosis_json`` and the HTML pages (``report_html``, ``scaling_html``,
  ``comparison_html``).

Nothing here recomputes a diagnostic or talks to MLflow. ``mlflow_plateau.report`` re-exports the
public names for callers of the single module this package replaced.
"""
