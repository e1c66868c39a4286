"""The diagnosis rendered as text for people and programs: ``diagnosis.json`` and the three
self-contained HTML pages.

- ``diagnosis_json(d)``: ``d.to_dict()`` as sorted, indented JSON (byte-identical for equal input).
- ``report_html(d, curves, run_name=, params=, tags=)``: verdict and summary first, key numbers
  (the cards), recommendations, the plot inline as a ``data:`` PNG, the evidence table, the
  configuration, and the run's name, params and tags (less the ``plateau.*`` tags that restate an
  earlier diagnosis). Pass ``png=`` the bytes ``curves_png`` returned to skip a redraw.
- ``scaling_html(v)``: a learning-curve verdict, its plot, the fit and the runs it came from.
- ``comparison_html(diagnoses, curves_by_run, labels=)``: answers "which run stopped learning
  first, and why" in its first line, then tabulates every run beside the overlay.

This is an adapter: it renders what the core decided and never recomputes a diagnostic nor talks
to MLflow (the ``tracking`` package uploads what is rendered). The forecast card of a report never
promises a gain from training longer when the verdict's advice is to stop earlier
(``curves_plot.recommends_stopping``): it reads "Training 2x longer: not expected to help", so the
page does not contradict itself.

Security: the HTML is shown by the MLflow UI in an iframe, and every string in it that comes from
a run (names, params, tags, metric names, summaries, evidence) is passed through
``html.escape(quote=True)``. The page has no JavaScript, no links and no external resources, and
carries a Content-Security-Policy that forbids them anyway.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import __version__
from ..comparison import Comparison, ComparisonRow
from ..curves import Curve
from ..verdict import Diagnosis, ScalingVerdict
from .comparison_plot import comparison_inputs, comparison_png, run_color
from .curves_plot import curves_caption, curves_png, recommends_stopping
from .figures import VERDICT_COLORS, verdict_title
from .scaling_plot import scaling_png

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
ul.recs, ul.ranges { margin: 0; padding-left: 20px; } ul.recs li, ul.ranges li { margin: 4px 0; }
figure { margin: 0; } img.plot { width: 100%; max-width: 960px; height: auto;
  border: 1px solid #d0d7de; border-radius: 6px; }
figcaption, .note { font-size: 12px; color: #57606a; margin-top: 4px; }
footer { margin-top: 32px; font-size: 12px; color: #6e7781; }
"""

# Human labels for the evidence keys the core writes, in reading order; unknown keys follow as they are.
_EVIDENCE_LABELS = {
    "diverged_epoch": "Diverged at epoch",
    "diverged_metric": "Metric that diverged",
    "first_epoch": "First epoch",
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
    color = VERDICT_COLORS.get(verdict, "#333333")
    return (f"<h1>{heading}</h1>\n"
            f"<div class=\"verdict\" style=\"background:{color}\">{_e(verdict_title(verdict))}</div>\n"
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
    if f is not None and not f.insufficient:
        if recommends_stopping(d):  # the advice is to stop: no promise from more epochs beside it
            cards.append(("Training 2x longer", "not expected to help"))
        else:
            cards.append((f"Forecast @ epoch {f.epoch_2x} (2x)",
                          f"{_fmt(f.value_at_2x)} ({_fmt(f.value_at_2x_low)}–"
                          f"{_fmt(f.value_at_2x_high)})"))
    if "diverged_epoch" in d.evidence:
        cards.append(("Diverged at epoch", _fmt(d.evidence["diverged_epoch"])))
    return ("<div class=\"cards\">" + "".join(
        f"<div class=\"card\"><div class=\"k\">{_e(k)}</div><div class=\"v\">{_e(v)}</div></div>"
        for k, v in cards) + "</div>\n") if cards else ""


def _recommendations(recs: list[str]) -> str:
    return "<ul class=\"recs\">" + "".join(f"<li>{_e(r)}</li>" for r in recs) + "</ul>\n"


def _where_it_shows(d: Diagnosis) -> str:
    """The epoch ranges the verdict comes from (``epoch_ranges``; empty when there are none)."""
    ranges = d.epoch_ranges()
    if not ranges:
        return ""
    items = "".join(f"<li>{_e(r.text())}</li>" for r in ranges)
    return f"<h2>Where it shows</h2>\n<ul class=\"ranges\">{items}</ul>\n"


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
        _where_it_shows(d),
        "<h2>What to try next</h2>\n", _recommendations(d.recommendations),
        _close_calls(d.alternatives),
        "<h2>Training curves</h2>\n",
        _img(png, f"{verdict_title(d.verdict)}: {d.summary}", curves_caption(d)),
        "<h2>Evidence</h2>\n", _kv_table(d.evidence, _EVIDENCE_LABELS),
        "<h2>Configuration</h2>\n", _kv_table(d.config),
        "<h2>Run</h2>\n",
        _kv_table({"run name": run_name, "run id": d.run_id, "monitor": d.monitor,
                   "training metric": d.train_metric, "mode": d.mode,
                   "metrics in the history": ", ".join(sorted(curves)) or None}),
        "<h2>Parameters</h2>\n", _kv_table(dict(params or {})),
        "<h2>Tags</h2>\n", _kv_table({k: v for k, v in (tags or {}).items() if k not in _OWN_TAGS}),
    ]
    title = f"{verdict_title(d.verdict)} · {_cut(str(who), 120)} · plateau diagnosis"
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
        _img(png, f"{verdict_title(v.verdict)}: {v.summary}",
             "Points: runs; solid line: the fitted error(n) = a·n^(−b) + c; dashed: its "
             "extrapolation to twice the largest size (diamond); band: the curve with the "
             "exponent at its bootstrap 5th and 95th percentiles, pinned at the geometric-mean "
             "size, floor kept; dotted: the fitted floor c."),
        "<h2>Evidence</h2>\n", _kv_table(v.evidence, _EVIDENCE_LABELS),
        "<h2>Fit</h2>\n", _kv_table(fit_items),
        "<h2>Runs</h2>\n", points,
    ]
    page_title = f"{verdict_title(v.verdict)} · learning curve" + (f" · {_cut(title, 120)}"
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
        color = run_color(r.rank)
        best = "—" if r.best_value is None else f"{_fmt(r.best_value)} @ {r.best_epoch}"
        run_id = "" if r.key == r.label else f"<br><code>{_e(_cut(r.key, 200))}</code>"
        badge = VERDICT_COLORS.get(r.verdict, "#333333")
        tr = "<tr class=\"first\">" if r is comparison.first else "<tr>"
        rows.append(
            f"{tr}"
            f"<td class=\"num\">{r.rank}</td>"
            f"<td class=\"run\"><span class=\"swatch\" style=\"background:{color}\"></span>"
            f"{_e(_cut(r.label, 200))}{run_id}</td>"
            f"<td><span class=\"badge\" style=\"background:{badge}\">{_e(verdict_title(r.verdict))}"
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
    comparison, by_key = comparison_inputs(diagnoses, labels, by)
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

