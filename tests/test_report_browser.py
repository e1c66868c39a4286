"""report.html with hostile run strings, loaded in a real headless Chromium: no script runs, the text shows.

The payloads try to change ``document.title`` and mark ``<body>``; the DOM Chromium dumps after
loading the page must show neither, and must hold the payloads as text. The same report with its
Content-Security-Policy removed is loaded too, so escaping alone is proven (the CSP is a second
wall, not the only one), and a control page with the raw payloads proves the detection works: there
the scripts do run. Screenshots go to ``test-outputs/`` for a person to look at.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlflow_plateau import report
from mlflow_plateau.curves import history_curves
from mlflow_plateau.scaling import scaling_fit
from mlflow_plateau.verdict import diagnose_curves, scaling_verdict

pytestmark = pytest.mark.slow

OUTPUTS = Path(__file__).resolve().parent.parent / "test-outputs"
MARK = "PWNED"
PAYLOADS = [
    f"<script>document.title='{MARK}-script'</script>",
    f"\"><img src=x onerror=\"document.title='{MARK}-img';document.body.setAttribute('data-pwned','1')\">",
    "'><svg onload=\"document.body.setAttribute('data-pwned','svg')\">",
    f"</title><script>document.title='{MARK}-title'</script>",
    "</style><img src=x onerror=document.body.setAttribute('data-pwned','style')>",
    "javascript:alert(1)",
    "ünïcødé ✓ 学习",
]
CSP_META = ("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "img-src data:; style-src 'unsafe-inline'\">\n")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed in CI (.ci/run installs Debian's chromium)")
    pytest.skip("chromium is not installed (apt-get install chromium); CI runs this test")


def _run(browser: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={profile}", "--virtual-time-budget=3000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


def _dump_dom(browser: str, tmp_path: Path, page: Path) -> str:
    return _run(browser, tmp_path, "--dump-dom", page.as_uri()).stdout


def _screenshot(browser: str, tmp_path: Path, page: Path, out: Path) -> None:
    OUTPUTS.mkdir(exist_ok=True)
    out.unlink(missing_ok=True)
    _run(browser, tmp_path, "--window-size=1000,1800", f"--screenshot={out}", page.as_uri())
    with Image.open(out) as img:
        pixels = np.asarray(img.convert("RGB"))
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 900
    # The page rendered something (text, the verdict badge, the plot), not a blank white sheet.
    assert (pixels.sum(axis=2) < 600).mean() > 0.02


def _hostile_report() -> str:
    e = np.arange(30)
    tr = 0.1 + np.exp(-e / 5)
    va = 0.3 + np.exp(-e / 5) + 0.01 * e
    curves = history_curves({f"train/{PAYLOADS[1]}/loss": tr, f"val/{PAYLOADS[1]}/loss": va,
                             "accuracy": 1 - tr / 2, f"val_accuracy {PAYLOADS[2]}": 1 - va / 2})
    d = diagnose_curves(curves)
    assert d.verdict == "overfitting"
    return report.report_html(
        d, curves, run_name=PAYLOADS[0] + PAYLOADS[3],
        params={p: p for p in PAYLOADS}, tags={f"mlflow.note.{i}": p for i, p in enumerate(PAYLOADS)})


def _title(markup: str) -> str:
    found = re.search(r"<title>(.*?)</title>", markup, re.S)
    return html.unescape(found.group(1)) if found else ""


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def _assert_nothing_ran(dom: str, served: str) -> None:
    assert "<html" in dom and "</body>" in dom, dom[:500]
    # document.title is what the page was served with (a payload would have replaced it).
    assert _title(dom) == _title(served) and not _title(dom).startswith(MARK)
    parsed = _Elements()
    parsed.feed(dom)
    for tag, attrs in parsed.elements:
        assert "data-pwned" not in attrs, (tag, attrs)           # set by an onerror/onload
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert tag not in ("script", "svg", "iframe", "object", "embed"), (tag, attrs)
        if tag == "img":
            assert (attrs.get("src") or "").startswith("data:image/png;base64,"), attrs


def _assert_text_visible(dom: str) -> None:
    # Chromium serializes text nodes with <, > and & escaped: the payloads are there as text.
    serialized = [html.escape(p, quote=False) for p in PAYLOADS]
    for text in serialized:
        assert text in dom, text
    assert "overfitting" in dom


def test_hostile_report_runs_no_script_and_shows_the_text(tmp_path):
    browser = _chromium()
    page = tmp_path / "report.html"
    served = _hostile_report()
    page.write_text(served, encoding="utf-8")
    dom = _dump_dom(browser, tmp_path, page)
    _assert_nothing_ran(dom, served)
    _assert_text_visible(dom)
    assert "plateau diagnosis" in _title(dom) and PAYLOADS[0] in _title(dom)
    _screenshot(browser, tmp_path, page, OUTPUTS / "report_hostile.png")


def test_escaping_alone_holds_without_the_csp(tmp_path):
    browser = _chromium()
    text = _hostile_report()
    assert CSP_META in text
    page = tmp_path / "report_no_csp.html"
    served = text.replace(CSP_META, "")
    page.write_text(served, encoding="utf-8")
    dom = _dump_dom(browser, tmp_path, page)
    _assert_nothing_ran(dom, served)
    _assert_text_visible(dom)


def test_control_unescaped_payloads_do_run(tmp_path):
    """Without escaping the same payloads execute: the assertions above can fail."""
    browser = _chromium()
    page = tmp_path / "control.html"
    served = ("<!DOCTYPE html><html><head><title>control</title></head><body><p>"
              + "".join(PAYLOADS[:3]) + "</p></body></html>")
    page.write_text(served, encoding="utf-8")
    dom = _dump_dom(browser, tmp_path, page)
    assert _title(dom).startswith(MARK)
    parsed = _Elements()
    parsed.feed(dom)
    assert any(tag == "body" and "data-pwned" in attrs for tag, attrs in parsed.elements)
    with pytest.raises(AssertionError):
        _assert_nothing_ran(dom, served)


def test_scaling_report_renders_in_the_browser(tmp_path):
    browser = _chromium()
    v = scaling_verdict(scaling_fit([1000, 2000, 4000, 8000, 16000], [0.40, 0.31, 0.25, 0.21, 0.19]))
    page = tmp_path / "scaling.html"
    served = report.scaling_html(v, size_param=PAYLOADS[1], title=PAYLOADS[0])
    page.write_text(served, encoding="utf-8")
    dom = _dump_dom(browser, tmp_path, page)
    _assert_nothing_ran(dom, served)
    assert html.escape(PAYLOADS[0], quote=False) in dom and "data limited" in dom
    _screenshot(browser, tmp_path, page, OUTPUTS / "scaling_report.png")
