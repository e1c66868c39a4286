"""A diagnosed run seen as a person sees it: the MLflow UI, served by a real ``mlflow server``, in Chromium.

The run gets a realistic overfitting history (30 epochs of loss/val_loss/accuracy/val_accuracy) and
``diagnose_run`` over HTTP, so its artifacts are written the way users get them. Selenium drives
Debian's ``chromium`` through ``chromedriver`` (both given by path: Selenium Manager never runs, so
nothing is downloaded) because the UI is a React single-page app: the page must execute and the
HTML artifact lives in an iframe whose content ``chromium --dump-dom`` does not see.

What MLflow 3's UI does with an HTML artifact (checked in its bundle and here): it fetches the file,
wraps it in a ``blob:`` URL and shows it in ``<iframe class="mlflow-html-iframe"
sandbox="allow-scripts">`` (no ``allow-same-origin``, so the page runs in an opaque origin). The
tests assert that ``report.html`` renders there with its own Content-Security-Policy in force: the
verdict and the summary are visible inside the frame, the ``<style>`` block and the inline
``style=`` of the verdict badge apply (CSP ``style-src 'unsafe-inline'``) and the inline plot
decodes (``img-src data:``). Chromedriver's browser log does not carry console messages of that
sandboxed frame, so a CSP violation is detected by its effect, not by its message. ``curves.png``
must load in the artifact viewer at its real size. Screenshots go to ``test-outputs/`` for a person
to look at.

Without chromium/chromedriver/selenium the tests skip, except under ``CI`` where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import log_curves, unique_name
from PIL import Image

from mlflow_plateau import diagnose_run

pytestmark = pytest.mark.slow

OUTPUTS = Path(__file__).resolve().parent.parent / "test-outputs"
WAIT_S = 60  # a cold UI bundle on a busy 2-core machine takes ~10 s; this is a hang guard
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run", "--hide-scrollbars")


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} in CI (.ci/run installs chromium and chromium-driver; "
                    "pip install -e '.[test]' installs selenium)")
    pytest.skip(f"{reason}; CI runs this test")


def overfitting_history(epochs: int = 30, seed: int = 7) -> dict[str, np.ndarray]:
    """Keras-like curves of a 3-class model that overfits after ~epoch 12 (seeded noise)."""
    rng = np.random.default_rng(seed)
    e = np.arange(epochs)
    loss = 0.12 + 0.95 * np.exp(-e / 6) + rng.normal(0, 0.004, epochs)
    val_loss = 0.42 + 0.70 * np.exp(-e / 4.5) + 0.011 * np.maximum(e - 12, 0) + rng.normal(0, 0.006, epochs)
    accuracy = 0.97 - 0.60 * np.exp(-e / 6) + rng.normal(0, 0.003, epochs)
    val_accuracy = (0.86 - 0.50 * np.exp(-e / 4.5) - 0.003 * np.maximum(e - 12, 0)
                    + rng.normal(0, 0.005, epochs))
    return {"loss": loss, "val_loss": val_loss, "accuracy": accuracy, "val_accuracy": val_accuracy}


def chrome(profile: Path, width: int = 1280, height: int = 800):
    """A headless Chromium under chromedriver, viewport ``width`` x ``height``, fresh profile."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").is_file() else None)
    if not browser or not driver_path:
        _missing("chromium or chromedriver is not installed (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (pip install 'selenium>=4.20')")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # An explicit driver path: Selenium Manager is skipped and never tries to download a driver.
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    # --window-size sizes the window, not the page; this fixes the viewport screenshots show.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    return driver


def quiet_ui(driver, base_url: str, experiment_id: str | None = None,
             columns: list[str] | None = None) -> None:
    """Preset the UI's localStorage: the classic ML view, the assistant panel closed, and optionally
    the runs table's columns (``metrics.`name``` / ``tags.`name```). Only looks are affected."""
    driver.get(f"{base_url}/health")  # same origin as the UI, so its localStorage is the UI's
    state = {}
    if experiment_id is not None and columns:
        key = f'MLflowLocalStorage-1.1-ExperimentPage-["{experiment_id}"]-ReactComponentState'
        state[key] = json.dumps({"selectedColumns": columns})
    state.update({"mlflow.assistant.panelOpen_v1": "false",
                  "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true",
                  "mlflow.workflowType_v1": json.dumps("machine_learning")})
    driver.execute_script("for (const [k, v] of Object.entries(arguments[0])) localStorage.setItem(k, v);",
                          state)


def artifact_url(base_url: str, experiment_id: str, run_id: str, path: str) -> str:
    """The UI route of a run's artifact (MLflow 3: ``/experiments/:id/runs/:run/artifacts/<path>``)."""
    return f"{base_url}/#/experiments/{experiment_id}/runs/{run_id}/artifacts/{path}"


def wait_for(driver, condition, what: str):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.25).until(condition)
    except TimeoutException:
        OUTPUTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(OUTPUTS / "ui_timeout.png"))
        raise AssertionError(f"the MLflow UI did not show {what} within {WAIT_S}s "
                             f"(screenshot: test-outputs/ui_timeout.png)") from None


def screenshot(driver, name: str) -> Path:
    OUTPUTS.mkdir(exist_ok=True)
    out = OUTPUTS / name
    out.unlink(missing_ok=True)
    assert driver.save_screenshot(str(out))
    with Image.open(out) as img:
        assert img.size == (1280, 800), img.size
    return out


@pytest.fixture(scope="module")
def diagnosed(mlflow_server, tmp_path_factory):
    """(server url, experiment id, run id, diagnosis, local copy of the run's plateau/ artifacts)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server.uri)
    experiment_id = client.create_experiment(unique_name("ui"))
    run_id = log_curves(client, experiment_id, overfitting_history(), run_name="cnn-overfit",
                        params={"epochs": "30", "batch_size": "64", "dropout": "0.0"})
    diagnosis = diagnose_run(run_id, tracking_uri=mlflow_server.uri)
    assert diagnosis.verdict == "overfitting", diagnosis.summary  # the shape the history was made for
    local = Path(client.download_artifacts(run_id, "plateau",
                                           dst_path=str(tmp_path_factory.mktemp("ui-artifacts"))))
    return mlflow_server.uri, experiment_id, run_id, diagnosis, local


@pytest.fixture
def driver(tmp_path: Path) -> Iterator:
    d = chrome(tmp_path / "profile")
    try:
        yield d
    finally:
        d.quit()


def test_report_html_renders_inside_the_ui_iframe(diagnosed, driver):
    from selenium.webdriver.common.by import By

    url, experiment_id, run_id, diagnosis, _ = diagnosed
    quiet_ui(driver, url)
    driver.get(artifact_url(url, experiment_id, run_id, "plateau/report.html"))
    frame = wait_for(driver, lambda d: next((f for f in d.find_elements(By.CSS_SELECTOR, "iframe")
                                             if f.is_displayed()), None), "an iframe for report.html")
    # The frame itself is on screen and big enough to read.
    box = driver.execute_script("const r = arguments[0].getBoundingClientRect();"
                                "return [r.top, r.left, r.width, r.height, innerWidth, innerHeight];", frame)
    top, left, width, height, view_w, view_h = box
    assert width >= 400 and height >= 300 and 0 <= top < view_h - 300 and 0 <= left < view_w - 400, box
    sandbox = frame.get_attribute("sandbox")
    driver.switch_to.frame(frame)
    verdict = wait_for(driver, lambda d: next(iter(d.find_elements(By.CSS_SELECTOR, ".verdict")), None),
                       "the verdict inside the iframe")
    assert verdict.is_displayed() and verdict.text.strip() == "overfitting", (verdict.text, sandbox)
    summary = driver.find_element(By.CSS_SELECTOR, ".summary")
    assert summary.is_displayed() and summary.text.strip() == diagnosis.summary
    # Visible means inside the frame's viewport without scrolling, not just present in the DOM.
    inside = driver.execute_script(
        "return Array.from(arguments).map(e => { const r = e.getBoundingClientRect();"
        " return r.width > 0 && r.height > 0 && r.top >= 0 && r.bottom <= innerHeight; });",
        verdict, summary)
    assert inside == [True, True], inside
    # The plot is an inline data: PNG; the report's CSP (img-src data:) must let it decode here.
    plots = wait_for(driver, lambda d: d.execute_script(
        "const i = Array.from(document.images); return i.length && i.every(x => x.complete)"
        " ? i.map(x => [x.naturalWidth, x.naturalHeight]) : null;"), "the report's plot decoded")
    assert plots and all(w >= 600 and h >= 300 for w, h in plots), plots
    # Styles survive the CSP: the badge's inline background and the stylesheet's white bold text.
    style = driver.execute_script(
        "const s = getComputedStyle(arguments[0]); return [s.backgroundColor, s.color, s.fontWeight];",
        verdict)
    assert style[0] not in ("rgba(0, 0, 0, 0)", "transparent") and style[1:] == ["rgb(255, 255, 255)", "700"]
    recs = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "ul.recs li")]
    assert recs == list(diagnosis.recommendations)
    driver.switch_to.default_content()
    screenshot(driver, "ui_report.png")


def test_curves_png_loads_in_the_artifact_viewer(diagnosed, driver):
    from selenium.webdriver.common.by import By

    url, experiment_id, run_id, _, local = diagnosed
    with Image.open(local / "curves.png") as png:
        expected = list(png.size)
    quiet_ui(driver, url)
    driver.get(artifact_url(url, experiment_id, run_id, "plateau/curves.png"))

    def shown(d):
        # The viewer's <img> holds the artifact as a blob: URL; the one on screen has a box.
        for img in d.find_elements(By.CSS_SELECTOR, "img[src^='blob:']"):
            size = d.execute_script(
                "const i = arguments[0], r = i.getBoundingClientRect();"
                "return i.complete && r.width > 0 ? [i.naturalWidth, i.naturalHeight, r.width] : null;", img)
            if size and size[0] > 0:
                return size
        return None

    natural_w, natural_h, shown_w = wait_for(driver, shown, "curves.png in the artifact viewer")
    assert [natural_w, natural_h] == expected
    assert shown_w >= 500  # readable at the size the viewer gives it
    screenshot(driver, "ui_curves.png")



def test_the_runs_table_url_diagnose_prints_shows_the_verdict_column(diagnosed, driver, capsys):
    """The line ``mlflow-plateau diagnose`` prints after writing: its URL, opened in a browser
    that never saw the UI (no column chosen by hand, MLflow 3's default GenAI experience), shows
    the runs table with the ``plateau.verdict`` column and the run's verdict in it, on screen."""
    import re

    from selenium.webdriver.common.by import By

    from mlflow_plateau.cli import main

    url, experiment_id, run_id, diagnosis, _ = diagnosed
    assert main(["diagnose", run_id, "--tracking-uri", url]) == 0  # unchanged: the line only
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.endswith("each run's report is in its Artifacts tab (plateau/report.html)"), line
    link = re.search(r"open (\S+);", line).group(1)
    assert link == f"{url}/#/experiments/{experiment_id}/runs?viewStateShareKey=plateau"
    driver.get(link)

    def shown(text: str):
        def find(d):
            for element in d.find_elements(By.XPATH, f"//*[normalize-space(text())='{text}']"):
                box = d.execute_script("const r = arguments[0].getBoundingClientRect();"
                                       "return [r.left, r.right, r.width, innerWidth];", element)
                if element.is_displayed() and box[2] > 0 and box[0] >= 0 and box[1] <= box[3]:
                    return element
            return None
        return find

    wait_for(driver, shown("plateau.verdict"), "the plateau.verdict column header")
    wait_for(driver, shown(diagnosis.verdict), f"the verdict {diagnosis.verdict!r} in the table")
    wait_for(driver, shown("plateau/epoch"), "the plateau/epoch column header")
    screenshot(driver, "ui_runs_table.png")
