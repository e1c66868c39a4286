"""The renderers (mlflow_plateau.render, re-exported by report.py) render every verdict as valid,
deterministic PNG/JSON/HTML, and escape every run string.

The curves below are built to reach each verdict of ``diagnose_curves``; each test first asserts the
verdict was reached, so a change in the core that moves a case shows up here instead of silently
leaving a verdict unrendered.
"""

from __future__ import annotations

import functools
import io
import json
import math
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from mlflow_plateau import report
from mlflow_plateau.curves import Curve, history_curves
from mlflow_plateau.render import figures, pool, scaling_plot
from mlflow_plateau.render.curves_plot import draw_forecast
from mlflow_plateau.scaling import scaling_fit
from mlflow_plateau.verdict import VERDICTS, diagnose_curves, scaling_verdict

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(document.cookie)",
    "' onmouseover='alert(1)",
    "</title></style><svg onload=alert(1)>",
    "ünïcødé ✓ 学习 — ẞ",
    "a/b\\c $x$ \\$ %s {0}",
]


def _histories() -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    e = np.arange(40)
    out: dict[str, dict[str, np.ndarray]] = {}
    tr = 0.3 + 1.5 * np.exp(-e / 4)
    out["healthy"] = {"loss": tr, "val_loss": 0.33 + 1.5 * np.exp(-e / 4) + rng.normal(0, 0.003, 40)}
    tr = 0.05 + 1.5 * np.exp(-e / 6)
    va = 0.4 + 1.2 * np.exp(-e / 4) + 0.012 * e + rng.normal(0, 0.004, 40)
    out["overfitting"] = {"loss": tr, "val_loss": va, "accuracy": 1 - tr / 2,
                          "val_accuracy": 1 - va / 2.5}
    # Random labels: the loss never leaves ln 2 and accuracy stays at 0.5.
    out["at_chance"] = {"loss": math.log(2) + rng.normal(0, 0.002, 30),
                        "val_loss": math.log(2) + 0.001 + rng.normal(0, 0.002, 30),
                        "accuracy": 0.5 + rng.normal(0, 0.01, 30),
                        "val_accuracy": 0.5 + rng.normal(0, 0.01, 30)}
    tr = 1.0 * np.exp(-e[:20] / 5) + 0.2
    va = tr + 0.05
    tr[12:] = np.nan
    va[13:] = np.inf
    out["diverged"] = {"loss": tr, "val_loss": va}
    out["insufficient_data"] = {"loss": np.array([1.0, 0.8]), "val_loss": np.array([1.1, 0.9])}
    e2 = np.arange(30)
    out["not_converged"] = {"loss": 2.0 - 0.05 * e2, "val_loss": 2.1 - 0.05 * e2}
    # Oscillations as large as the improvement itself: no trend can be read.
    va = 1.0 - 0.5 * (1 - np.exp(-np.arange(30) / 5)) + 0.25 * rng.normal(size=30)
    out["unstable"] = {"loss": va - 0.02, "val_loss": va}
    # A regression whose training loss barely fell (7%): a poor fit, whatever the task.
    out["underfitting"] = {"loss": 1.0 + 0.08 * np.exp(-e / 3), "val_loss": 1.02 + 0.08 * np.exp(-e / 3)}
    return out


HISTORIES = _histories()


def _diagnosed(verdict: str):
    curves = history_curves(HISTORIES[verdict])
    d = diagnose_curves(curves)
    assert d.verdict == verdict, f"test curve meant for {verdict} got {d.verdict}: {d.summary}"
    return d, curves


def _decode(png: bytes) -> np.ndarray:
    assert png.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(png)) as img:
        img.load()
        assert img.format == "PNG"
        return np.asarray(img.convert("RGB"))


def _assert_readable_plot(png: bytes) -> None:
    pixels = _decode(png)
    h, w, _ = pixels.shape
    # Large enough to stay sharp when the MLflow artifact viewer scales it to ~800x500.
    assert w >= 800 and h >= 500
    assert 1.3 <= w / h <= 1.8
    # Not blank: lines, text and fills make many distinct colours (a palette PNG keeps up to 256:
    # a mostly-text figure has ~40), and not everything is white.
    packed = pixels.astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1], dtype=np.uint32)
    assert np.unique(packed).size > 30
    assert (pixels.sum(axis=2) < 600).mean() > 0.01


class _Page(HTMLParser):
    """Collects the tags, attributes and visible text of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend((tag, k, v) for k, v in attrs)
        if tag in ("style", "title"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("style", "title"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "div", "p", "ul", "li",
                "table", "tr", "th", "td", "code", "span", "figure", "img", "figcaption", "footer"}


def _assert_safe_page(page: str) -> _Page:
    """Structure-level proof that nothing run-supplied became markup."""
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower()
    parsed = _Page()
    parsed.feed(page)
    parsed.close()
    assert set(parsed.tags) <= ALLOWED_TAGS, set(parsed.tags) - ALLOWED_TAGS
    for tag, name, value in parsed.attrs:
        assert not name.startswith("on"), (tag, name, value)
        assert name in {"lang", "charset", "http-equiv", "content", "name", "class", "style", "alt",
                        "src"}, (tag, name)
        if name == "src":
            assert tag == "img" and value.startswith("data:image/png;base64,")
    assert parsed.tags.count("img") == 1
    csp = [v for t, k, v in parsed.attrs if t == "meta" and k == "content" and "default-src" in v]
    assert csp == ["default-src 'none'; img-src data:; style-src 'unsafe-inline'"]
    # Nothing is fetched: no URL anywhere in the markup outside the visible (escaped) text.
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:|//|javascript:)", page, re.I)
    assert "url(" not in page and "@import" not in page
    return parsed


# ------------------------------------------------------------------------------------------ JSON

def test_diagnosis_json_is_the_sorted_dict_and_deterministic():
    d, _ = _diagnosed("overfitting")
    text = report.diagnosis_json(d)
    assert text == json.dumps(d.to_dict(), sort_keys=True, indent=2)
    assert text == report.diagnosis_json(diagnose_curves(history_curves(HISTORIES["overfitting"])))
    loaded = json.loads(text)
    assert loaded["verdict"] == "overfitting" and loaded["schema_version"] >= 1
    assert "NaN" not in text and "Infinity" not in text


def test_diagnosis_json_of_a_diverged_run_has_no_nan():
    d, _ = _diagnosed("diverged")
    loaded = json.loads(report.diagnosis_json(d))
    assert loaded["evidence"]["diverged_epoch"] == 12


# ------------------------------------------------------------------------------------ every verdict

def test_the_test_curves_cover_every_verdict():
    assert set(HISTORIES) == set(VERDICTS)


@pytest.mark.parametrize("verdict", sorted(HISTORIES))
def test_every_verdict_renders_png_and_safe_html(verdict):
    d, curves = _diagnosed(verdict)
    png = report.curves_png(d, curves)
    _assert_readable_plot(png)
    page = report.report_html(d, curves, run_name="my run", params={"lr": "0.01"},
                              tags={"team": "vision"}, png=png)
    parsed = _assert_safe_page(page)
    text = " ".join(" ".join(parsed.text).split())
    assert verdict.replace("_", " ") in text
    assert " ".join(d.summary.split()) in text
    for rec in d.recommendations:
        assert " ".join(rec.split()) in text
    # The verdict and summary come first: before the plot and the evidence table.
    assert text.index(" ".join(d.summary.split())) < text.index("Evidence")
    assert page.index("class=\"summary\"") < page.index("<img")
    # The plot is the very PNG curves_png renders.
    src = next(v for t, k, v in parsed.attrs if k == "src")
    import base64
    assert base64.b64decode(src.split(",", 1)[1]) == png
    for section in ("What to try next", "Evidence", "Configuration", "Parameters", "Tags"):
        assert section in text


def test_verdict_and_summary_open_the_page():
    d, curves = _diagnosed("overfitting")
    page = report.report_html(d, curves)
    body = page[page.index("<body>"):]
    first_heading = body.index("<h2>")
    assert "overfitting" in body[:first_heading]
    assert "stopped improving beyond its noise at epoch" in body[:first_heading]


def test_evidence_numbers_are_in_the_table():
    d, curves = _diagnosed("overfitting")
    parsed = _Page()
    parsed.feed(report.report_html(d, curves))
    text = " ".join(parsed.text)
    p = d.plateau
    assert f"{p.best_value:.4g}" in text
    assert "plateau_epoch" in text and "gap_final" in text
    assert f"{d.gap.final:.4g}" in text
    # The configuration used (patience, min_delta) is shown.
    assert "patience" in text and "min_delta" in text


# ---------------------------------------------------------------------------------- determinism

def test_png_and_html_are_byte_identical_for_identical_input():
    d, curves = _diagnosed("overfitting")
    assert report.curves_png(d, curves) == report.curves_png(d, curves)
    d2 = diagnose_curves(history_curves(HISTORIES["overfitting"]))
    kwargs = {"run_name": "r", "params": {"a": "1", "b": "2"}, "tags": {"t": "x"}}
    png = report.curves_png(d2, curves)
    assert report.report_html(d, curves, **kwargs) == report.report_html(d2, curves, **kwargs, png=png)
    # Parameter order does not change the page.
    flipped = {"run_name": "r", "params": {"b": "2", "a": "1"}, "tags": {"t": "x"}}
    assert report.report_html(d, curves, **kwargs, png=png) == report.report_html(d, curves, **flipped,
                                                                                   png=png)


def test_png_carries_no_software_or_time_metadata():
    d, curves = _diagnosed("healthy")
    png = report.curves_png(d, curves)
    with Image.open(io.BytesIO(png)) as img:
        assert "Software" not in img.info
        assert not any("time" in k.lower() or "date" in k.lower() for k in img.info)
    assert b"tIME" not in png


def test_rendering_is_thread_safe_and_leaves_no_pyplot_state():
    cases = [_diagnosed(v) for v in ("overfitting", "healthy", "diverged", "at_chance")]
    serial = [report.curves_png(d, c) for d, c in cases]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda dc: report.curves_png(*dc), cases))
    assert parallel == serial
    code = ("import sys, numpy as np\n"
            "from mlflow_plateau import report\n"
            "from mlflow_plateau.verdict import diagnose_curves\n"
            "from mlflow_plateau.curves import history_curves\n"
            "c = history_curves({'loss': np.linspace(1, .1, 20), 'val_loss': np.linspace(1.1, .3, 20)})\n"
            "report.curves_png(diagnose_curves(c), c)\n"
            "print('matplotlib.pyplot' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------------- edge cases

def test_no_training_curve():
    curves = history_curves({"val_loss": 0.4 + np.exp(-np.arange(25) / 5)})
    d = diagnose_curves(curves)
    assert d.train_metric is None and d.gap is None
    _assert_readable_plot(report.curves_png(d, curves))
    _assert_safe_page(report.report_html(d, curves))


def test_single_point_and_empty_looking_histories():
    curves = history_curves({"loss": [0.9], "val_loss": [1.0]})
    d = diagnose_curves(curves)
    assert d.verdict == "insufficient_data" and d.plateau is None
    _assert_readable_plot(report.curves_png(d, curves))
    _assert_safe_page(report.report_html(d, curves))


def test_diverged_at_the_first_epoch_has_no_finite_point():
    curves = history_curves({"loss": [np.nan, np.nan, np.nan], "val_loss": [np.inf, np.nan, 1.0]})
    d = diagnose_curves(curves)
    assert d.verdict in ("diverged", "insufficient_data")
    _assert_readable_plot(report.curves_png(d, curves))
    _assert_safe_page(report.report_html(d, curves))


def test_nan_mid_curve_plots_the_finite_part_and_marks_the_epoch():
    d, curves = _diagnosed("diverged")
    assert d.evidence["diverged_epoch"] == 12
    page = report.report_html(d, curves)
    parsed = _Page()
    parsed.feed(page)
    assert "Diverged at epoch" in " ".join(parsed.text)
    _assert_readable_plot(report.curves_png(d, curves))


def test_accuracy_monitor_in_percent_and_loss_in_second_panel():
    e = np.arange(30)
    curves = history_curves({"accuracy": 100 * (0.9 - 0.5 * np.exp(-e / 5)),
                             "val_accuracy": 100 * (0.8 - 0.4 * np.exp(-e / 5)),
                             "loss": 0.2 + np.exp(-e / 5), "val_loss": 0.4 + np.exp(-e / 5)})
    d = diagnose_curves(curves, monitor="val_accuracy")
    assert d.evidence["percent_scaled"] is True
    _assert_readable_plot(report.curves_png(d, curves))
    assert report.report_html(d, curves).count("<img") == 1


def test_very_long_curve_is_drawn():
    n = 100_000
    e = np.arange(n)
    rng = np.random.default_rng(3)
    curves = {"loss": Curve("loss", e, 0.2 + np.exp(-e / 10_000) + rng.normal(0, 0.01, n)),
              "val_loss": Curve("val_loss", e, 0.3 + np.exp(-e / 10_000) + rng.normal(0, 0.01, n))}
    d = diagnose_curves(curves)
    assert len(d.plateau.fitted) < n  # plateau_epoch averaged blocks: the plot maps them to epochs
    _assert_readable_plot(report.curves_png(d, curves))


def test_monitor_missing_from_the_given_curves_still_renders():
    d, _ = _diagnosed("healthy")
    other = history_curves({"something_else": [1.0, 2.0, 3.0]})
    _assert_readable_plot(report.curves_png(d, other))
    _assert_safe_page(report.report_html(d, other))


# ------------------------------------------------------------------------------------- hostility

def _hostile_history() -> dict[str, np.ndarray]:
    e = np.arange(30)
    tr = 0.1 + np.exp(-e / 5)
    va = 0.3 + np.exp(-e / 5) + 0.01 * e
    return {f"train/{HOSTILE[1]} loss": tr, f"val/{HOSTILE[1]} loss": va,
            f"accuracy {HOSTILE[6]}": 1 - tr / 2, f"val_accuracy {HOSTILE[6]}": 1 - va / 2,
            f"{HOSTILE[0]}/{HOSTILE[5]}": np.linspace(0, 1, 30)}


def test_hostile_strings_everywhere_are_escaped_and_visible_as_text():
    curves = history_curves(_hostile_history())
    d = diagnose_curves(curves)
    assert HOSTILE[1] in d.monitor and HOSTILE[1] in d.summary
    params = {h: h for h in HOSTILE} | {"url": "javascript:alert(1)"}
    tags = {f"mlflow.note.{i}": h for i, h in enumerate(HOSTILE)} | {HOSTILE[4]: HOSTILE[0]}
    page = report.report_html(d, curves, run_name="".join(HOSTILE), params=params, tags=tags)
    parsed = _assert_safe_page(page)
    text = "".join(parsed.text)
    for h in HOSTILE:
        assert h in text, h  # rendered as text, byte for byte
    assert "<img src=x" not in page and "<svg" not in page and "onerror=alert(1)>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&#x27; onmouseover=&#x27;alert(1)" in page
    for name in curves:
        assert name in text
    _assert_readable_plot(report.curves_png(d, curves))


def test_hostile_evidence_and_recommendation_strings_are_escaped():
    d, curves = _diagnosed("healthy")
    from dataclasses import replace
    evil = replace(d, summary=HOSTILE[0], recommendations=[HOSTILE[1]],
                   evidence={**d.evidence, HOSTILE[4]: HOSTILE[1], "note": HOSTILE[0]},
                   config={**d.config, HOSTILE[0]: HOSTILE[2]}, run_id=HOSTILE[3])
    page = report.report_html(evil, curves)
    parsed = _assert_safe_page(page)
    text = "".join(parsed.text)
    for h in (HOSTILE[0], HOSTILE[1], HOSTILE[2], HOSTILE[3], HOSTILE[4]):
        assert h in text
    # The <title> is escaped too (a run id in it must not close it).
    assert page.count("</title>") == 1


def test_dollar_signs_in_metric_names_do_not_break_the_plot():
    e = np.arange(20)
    curves = history_curves({"$\\frac{": 1 + np.exp(-e / 4), "val_$\\frac{": 1.1 + np.exp(-e / 4),
                             "$x$ accuracy": 0.5 + 0.02 * e, "val_$x$ accuracy": 0.5 + 0.015 * e})
    d = diagnose_curves(curves, monitor="val_$\\frac{", mode="min")
    _assert_readable_plot(report.curves_png(d, curves))


def test_very_long_values_are_shortened_after_escaping():
    d, curves = _diagnosed("healthy")
    long = "<b>" * 5000
    page = report.report_html(d, curves, params={"huge": long}, tags={"x": "&amp;" * 1000})
    parsed = _assert_safe_page(page)
    assert "more characters" in "".join(parsed.text)
    assert "<b>" not in page
    assert len(page) < 400_000


# -------------------------------------------------------------------------------------- scaling

@functools.cache
def _scaling(kind: str):
    sizes = [1000, 2000, 4000, 8000, 16000]
    errors = {"data_limited": [0.40, 0.31, 0.25, 0.21, 0.19],
              "saturated": [0.30, 0.25, 0.245, 0.243, 0.2425],
              "insufficient_points": [0.3, 0.25]}[kind]
    v = scaling_verdict(scaling_fit(sizes[: len(errors)], errors))
    assert v.verdict == kind
    return v


@pytest.mark.parametrize("kind", ["data_limited", "saturated", "insufficient_points"])
def test_scaling_png_and_html(kind):
    v = _scaling(kind)
    png = report.scaling_png(v, size_param="train_size", title="lr=0.01")
    _assert_readable_plot(png)
    assert png == report.scaling_png(v, size_param="train_size", title="lr=0.01")
    page = report.scaling_html(v, size_param="train_size", title="lr=0.01", png=png)
    parsed = _assert_safe_page(page)
    text = " ".join(" ".join(parsed.text).split())
    assert kind.replace("_", " ") in text and " ".join(v.summary.split()) in text
    for n in v.fit.sizes:
        assert f"{n:g}" in text


def test_scaling_band_brackets_the_fit_and_widens_away_from_the_data():
    v = _scaling("data_limited")
    fit = v.fit
    grid = np.geomspace(fit.sizes.min(), 2 * fit.sizes.max(), 50)
    lo, hi = scaling_plot.exponent_band(v, grid)
    pred = fit.predict(grid)
    assert np.all(lo <= pred + 1e-12) and np.all(pred <= hi + 1e-12)
    width = hi - lo
    centre = float(np.exp(np.mean(np.log(fit.sizes))))
    assert width[np.argmin(abs(grid - centre))] < min(width[0], width[-1])


def test_scaling_html_escapes_title_and_size_param():
    v = _scaling("data_limited")
    page = report.scaling_html(v, size_param=HOSTILE[1], title=HOSTILE[0])
    parsed = _assert_safe_page(page)
    text = "".join(parsed.text)
    assert HOSTILE[0] in text and HOSTILE[1] in text
    _assert_readable_plot(report.scaling_png(v, size_param=HOSTILE[6], title=HOSTILE[6]))


def test_html_reuses_given_png_bytes_and_rejects_non_png():
    d, curves = _diagnosed("healthy")
    png = report.curves_png(d, curves)
    assert report.report_html(d, curves, png=png) == report.report_html(d, curves)
    with pytest.raises(ValueError, match="PNG"):
        report.report_html(d, curves, png=b"<script>")
    v = _scaling("saturated")
    spng = report.scaling_png(v)
    assert report.scaling_html(v, png=spng) == report.scaling_html(v)
    with pytest.raises(ValueError, match="PNG"):
        report.scaling_html(v, png=b"GIF89a")


def test_tags_restating_an_earlier_diagnosis_are_not_shown():
    d, curves = _diagnosed("healthy")
    png = report.curves_png(d, curves)
    base = {"team": "vision", "plateau.partial": "true"}
    old = base | {"plateau.verdict": "overfitting", "plateau.summary": "stale",
                  "plateau.digest": "abc", "plateau.version": "0.0.1", "plateau.monitor": "loss"}
    page = report.report_html(d, curves, tags=old, png=png)
    assert page == report.report_html(d, curves, tags=base, png=png)
    parsed = _Page()
    parsed.feed(page)
    text = "".join(parsed.text)
    assert "plateau.partial" in text and "vision" in text and "stale" not in text


def test_characters_the_font_lacks_raise_no_warning_and_stay_exact_in_html():
    import warnings
    e = np.arange(20)
    name = "学习 loss 🚀 ünï"
    curves = history_curves({name: 1 + np.exp(-e / 4), f"val_{name}": 1.1 + np.exp(-e / 4)})
    d = diagnose_curves(curves)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = report.curves_png(d, curves)
    _assert_readable_plot(png)
    parsed = _Page()
    parsed.feed(report.report_html(d, curves, png=png))
    assert f"val_{name}" in "".join(parsed.text)


def test_curves_png_draws_the_forecast_of_a_not_converged_run():
    """The forecast's dashed line and band reach epoch_2x (drawn by curves_plot.draw_forecast)."""
    from matplotlib.figure import Figure

    from mlflow_plateau.verdict import diagnose_curves as diagnose

    t = np.arange(1, 41.0)
    d = diagnose({"loss": 0.1 + 2 * np.exp(-t / 30), "val_loss": 0.2 + 2 * np.exp(-t / 30)})
    assert d.verdict == "not_converged" and d.forecast is not None
    ax = Figure().subplots()
    draw_forecast(ax, d)
    line = ax.get_lines()[0]
    assert line.get_linestyle() == "--"
    assert line.get_xdata()[-1] == d.forecast.epoch_2x
    assert line.get_ydata()[-1] == pytest.approx(d.forecast.value_at_2x)
    assert len(ax.collections) == 1  # the band


def test_a_reused_figure_draws_the_same_bytes_as_a_new_one():
    # curves_png reuses one figure per thread and shape: whatever was drawn on it before (a log
    # scale, a fixed x range for a diverged run, a second panel, legends, texts) must not show.
    cases = [_diagnosed(v) for v in ("overfitting", "diverged", "healthy", "at_chance",
                                     "not_converged")]
    fresh = []
    for d, c in cases:
        figures.forget_figures()
        fresh.append(report.curves_png(d, c))
    for order in (range(len(cases)), reversed(range(len(cases)))):
        for i in order:
            assert report.curves_png(*cases[i]) == fresh[i], cases[i][0].verdict


def test_pooled_drawing_gives_the_same_bytes(monkeypatch):
    # diagnose draws curves.png in worker processes when there are cores: same bytes as here.
    cases = [_diagnosed(v) for v in ("overfitting", "diverged", "healthy")]
    monkeypatch.setenv("MLFLOW_PLATEAU_RENDER_PROCESSES", "2")
    monkeypatch.setattr(pool, "_POOL_AFTER", 0)
    try:
        pooled = [report.curves_png_pooled(d, c) for d, c in cases]
    finally:
        assert pool.shutdown_pool()  # a pool was running
    assert pooled == [report.curves_png(d, c) for d, c in cases]
    monkeypatch.setenv("MLFLOW_PLATEAU_RENDER_PROCESSES", "0")  # off: drawn in this thread
    assert report.curves_png_pooled(*cases[0]) == pooled[0] and not pool.shutdown_pool()


def test_a_reused_scaling_figure_draws_the_same_bytes_as_a_new_one():
    sizes = np.array([1000, 2000, 4000, 8000], dtype=np.float64)
    verdicts = [scaling_verdict(scaling_fit(sizes, 3 * sizes ** -0.4 + c)) for c in (0.1, 0.0)]
    verdicts.append(scaling_verdict(scaling_fit([1000, 2000], [0.3, 0.2])))  # no fit drawn
    fresh = []
    for v in verdicts:
        figures.forget_figures()
        fresh.append(report.scaling_png(v, title="g"))
    for i in (2, 0, 1, 0, 2, 1):
        assert report.scaling_png(verdicts[i], title="g") == fresh[i]


def test_the_curves_caption_names_only_what_is_drawn():
    from mlflow_plateau import diagnose_curves
    from mlflow_plateau.report import curves_caption

    epochs = np.arange(40)
    history = {"loss": 1 / (1 + epochs) + 0.05, "val_loss": 0.3 + (epochs - 10.0) ** 2 / 200}
    with_chance = curves_caption(diagnose_curves(history, num_classes=2))
    assert "dotted grey: the chance level" in with_chance
    assert "NaN" not in with_chance and "dotted red" not in with_chance  # nothing diverged
    assert "chance" not in curves_caption(diagnose_curves(history))  # no chance level known
    diverged = {"loss": [1.0, 0.8, 0.7, float("nan"), float("nan")],
                "val_loss": [1.1, 0.9, 0.85, float("nan"), float("nan")]}
    assert "dotted red: the epoch a curve became NaN/inf" in curves_caption(
        diagnose_curves(diverged))


def test_log_axis_labels_stay_short_for_huge_and_tiny_losses():
    """An MSE in dollars squared (1e11) read 100,000,000,000 and was clipped by the margin."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    ax.set_yscale("log")
    figures.plain_log_ticks(ax.yaxis, 1e9, 1e11)
    fmt = ax.yaxis.get_major_formatter()
    assert [fmt(v) for v in (1e11, 2.5e9, 1e6, 2000.0, 0.3, 1e-5)] == \
        ["1e11", "2.5e9", "1e6", "2,000", "0.3", "1e-05"]
    assert max(len(fmt(10.0 ** k)) for k in range(-12, 31)) <= 7  # "100,000"


def test_one_epoch_gets_integer_epoch_ticks():
    h = {"loss": [0.9], "val_loss": [1.0]}
    d = diagnose_curves(h)
    png = report.curves_png(d, history_curves(h))
    assert png.startswith(b"\x89PNG")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    ax.plot([0], [1.0])
    figures.epoch_axis(ax, [np.array([0])])
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_an_overfitting_report_does_not_promise_a_gain_from_twice_the_epochs():
    """Issue 25: the report said "stop earlier" while its forecast card promised a better value at
    2x the epochs. Validation levels off while training keeps falling (the gap grows): overfitting,
    and the forecast's own value at 2x is better than the best epoch's, which the old card showed."""
    e = np.arange(60.0)
    rng = np.random.default_rng(1)
    curves = history_curves({"loss": 0.01 + 1.5 * np.exp(-e / 12),
                             "val_loss": 0.38 + 1.2 * np.exp(-e / 9) + rng.normal(0, 0.01, 60)})
    d = diagnose_curves(curves)
    assert d.verdict == "overfitting", d.summary
    f = d.forecast
    assert f is not None and not f.insufficient and f.value_at_2x < d.plateau.best_value
    assert any(r.startswith("Stop earlier") for r in d.recommendations)
    page = report.report_html(d, curves)
    parsed = _assert_safe_page(page)
    text = " ".join(" ".join(parsed.text).split())
    assert "(2x)" not in text and f"{f.value_at_2x:.4g}" not in text
    assert "2x longer would" not in text and "Forecast @" not in text
    assert "Training 2x longer not expected to help" in text
    # The plot draws no forecast either (nor does its caption name one).
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    draw_forecast(ax, d)
    assert not ax.get_lines() and not ax.collections
    assert "forecast" not in report.curves_caption(d)


def test_a_not_converged_report_keeps_its_forecast_card_and_caption():
    t = np.arange(1, 41.0)
    curves = history_curves({"loss": 0.1 + 2 * np.exp(-t / 30), "val_loss": 0.2 + 2 * np.exp(-t / 30)})
    d = diagnose_curves(curves)
    assert d.verdict == "not_converged"
    text = " ".join(" ".join(_assert_safe_page(report.report_html(d, curves)).text).split())
    assert f"Forecast @ epoch {d.forecast.epoch_2x} (2x)" in text
    assert "dashed orange: the forecast" in report.curves_caption(d)


def test_the_learning_curve_y_axis_names_the_metric():
    """Issue 25: the scaling plot's y axis said "error" whatever the metric; it names what each
    point is (``diagnose_scaling``: the best value of a loss, one minus the best of a score)."""
    from matplotlib.figure import Figure

    from mlflow_plateau.render.scaling_plot import draw_scaling

    v = _scaling("data_limited")
    for metric, mode, label in [("val_loss", None, "best val_loss"),
                                ("val_accuracy", None, "1 − best val_accuracy"),
                                ("val_f1", "max", "1 − best val_f1"),
                                ("val_rmse", "min", "best val_rmse"),
                                (None, None, "error")]:
        ax = Figure().subplots()
        draw_scaling(ax, v, size_param="train_size", metric=metric, mode=mode)
        assert ax.get_ylabel() == label
        assert ax.get_xlabel() == "training size (train_size)"
    ax = Figure().subplots()
    draw_scaling(ax, v, metric="val_$x$")  # a run's name is not read as mathtext
    assert ax.get_ylabel() == r"best val_\$x\$"
    assert report.scaling_png(v, metric="val_loss") != report.scaling_png(v)


def test_the_report_says_where_the_verdict_shows_as_epoch_ranges():
    d, curves = _diagnosed("overfitting")
    parsed = _Page()
    parsed.feed(report.report_html(d, curves))
    text = " ".join(parsed.text)
    assert "Where it shows" in text
    p = d.plateau
    assert f"validation worse than its best ({p.best_value:.4g} at epoch {p.best_epoch})" in text
    assert f"epochs {p.best_epoch} to {p.last_epoch}" in text
