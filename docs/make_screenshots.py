"""Regenerate the README's screenshots of diagnosed runs in the MLflow UI (docs/screenshots/*.png).

    .venv/bin/python docs/make_screenshots.py [--out docs/screenshots] [--server http://127.0.0.1:5000]

It logs five runs of a Keras-like hyper-parameter sweep (30 epochs of loss/val_loss/accuracy/
val_accuracy each, seeded, shaped to end as overfitting, healthy, not_converged, underfitting and
unstable) into a fresh SQLite store behind a real ``mlflow server`` on 127.0.0.1 (or into the
running server ``--server`` names), diagnoses them with ``diagnose_run``, and photographs the UI
in headless Chromium (Selenium with Debian's ``chromium`` and ``chromedriver``) at 1280x800:

- ``runs_table.png``: the experiment's runs table with the ``plateau.verdict`` tag and the
  ``plateau/*`` and ``gap/*`` metric columns (cut to its rows, 1280x440);
- ``run_overview.png``: the overfitting run's overview page with the metrics and tags written back;
- ``report_in_ui.png``: the overfitting run's ``plateau/report.html`` in the UI's artifact viewer;
- ``curves_in_ui.png``: the same run's ``plateau/curves.png`` in the artifact viewer.

The UI's columns and panels are preset through its localStorage (the classic "Model training"
view, the assistant panel closed): keys of MLflow 3.x's UI, only the looks depend on them. Images
are saved as optimized PNGs (about 70-140 KB each). It takes about a minute and a half, most of it
the new store's schema migrations.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

SIZE = (1280, 800)
WAIT_S = 90
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run", "--hide-scrollbars")
# Table columns in the UI's own key format; the verdict first, then the numbers a user sorts by.
COLUMNS = ["tags.`plateau.verdict`", "metrics.`plateau/epoch`", "metrics.`plateau/stop_epoch`",
           "metrics.`plateau/wasted_epochs`", "metrics.`gap/final`", "metrics.`gap/trend`"]
FEATURED = "cnn-no-dropout"


def sweep_histories(seed: int = 7, epochs: int = 30) -> dict[str, tuple[dict, dict[str, np.ndarray]]]:
    """run name -> (params, history) of a small sweep; each shape ends in a different verdict."""
    rng = np.random.default_rng(seed)
    e = np.arange(epochs)

    def noise(scale: float) -> np.ndarray:
        return rng.normal(0.0, scale, epochs)

    late = np.maximum(e - 12, 0)  # epochs past the point where the no-dropout model starts to memorize
    slow = np.exp(-e / 40)
    return {
        "cnn-no-dropout": ({"model": "cnn", "dropout": 0.0, "lr": 1e-3}, {
            "loss": 0.12 + 0.95 * np.exp(-e / 6) + noise(0.004),
            "val_loss": 0.42 + 0.70 * np.exp(-e / 4.5) + 0.011 * late + noise(0.006),
            "accuracy": 0.97 - 0.60 * np.exp(-e / 6) + noise(0.003),
            "val_accuracy": 0.86 - 0.50 * np.exp(-e / 4.5) - 0.003 * late + noise(0.005)}),
        "cnn-dropout-0.3": ({"model": "cnn", "dropout": 0.3, "lr": 1e-3}, {
            "loss": 0.30 + 0.80 * np.exp(-e / 5) + noise(0.004),
            "val_loss": 0.36 + 0.75 * np.exp(-e / 5) + noise(0.006),
            "accuracy": 0.91 - 0.55 * np.exp(-e / 5) + noise(0.003),
            "val_accuracy": 0.89 - 0.53 * np.exp(-e / 5) + noise(0.004)}),
        "cnn-lr-1e-4": ({"model": "cnn", "dropout": 0.3, "lr": 1e-4}, {
            "loss": 0.25 + 0.85 * slow + noise(0.003),
            "val_loss": 0.30 + 0.82 * slow + noise(0.004),
            "accuracy": 0.93 - 0.58 * slow + noise(0.003),
            "val_accuracy": 0.91 - 0.56 * slow + noise(0.004)}),
        "linear-baseline": ({"model": "linear", "dropout": 0.0, "lr": 1e-3}, {
            "loss": 0.80 + 0.30 * np.exp(-e / 3) + noise(0.003),
            "val_loss": 0.82 + 0.29 * np.exp(-e / 3) + noise(0.004),
            "accuracy": 0.62 - 0.27 * np.exp(-e / 3) + noise(0.003),
            "val_accuracy": 0.61 - 0.26 * np.exp(-e / 3) + noise(0.004)}),
        "cnn-lr-0.05": ({"model": "cnn", "dropout": 0.3, "lr": 0.05}, {
            "loss": 0.5 + 0.6 * np.exp(-e / 4) + noise(0.08),
            "val_loss": 0.6 + 0.55 * np.exp(-e / 4) + np.abs(noise(0.25)),
            "accuracy": 0.8 - 0.45 * np.exp(-e / 4) + noise(0.04),
            "val_accuracy": 0.76 - 0.4 * np.exp(-e / 4) + noise(0.06)}),
    }


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def mlflow_server(folder: Path) -> Iterator[str]:
    """A real ``mlflow server`` on 127.0.0.1 with a SQLite store in ``folder``; yields its URL."""
    import requests

    port = _free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow_bin) if mlflow_bin.exists() else "mlflow", "server",
               "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
               "--artifacts-destination", str(folder / "artifacts"),
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    log = folder / "server.log"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=folder, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mlflow server exited:\n{log.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not start in 180 s")
            time.sleep(0.5)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # its own session: the server and its workers
            process.wait(timeout=30)


def build_store(url: str) -> tuple[str, dict[str, str]]:
    """Log and diagnose the sweep on the server at ``url``; returns (experiment id, name -> run id)."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    from mlflow_plateau import diagnose_run

    client = MlflowClient(tracking_uri=url)
    name = "keras-sweep"
    if client.get_experiment_by_name(name) is not None:  # a server that ran this script before
        name = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    experiment_id = client.create_experiment(name)
    runs = {}
    for run_name, (params, history) in sweep_histories().items():
        run = client.create_run(experiment_id, run_name=run_name)
        now = int(time.time() * 1000)
        points = [Metric(key, float(v), now + i, i) for key, values in history.items()
                  for i, v in enumerate(values)]
        client.log_batch(run.info.run_id, metrics=points,
                         params=[Param(k, str(v)) for k, v in {**params, "epochs": 30}.items()])
        client.set_terminated(run.info.run_id)
        diagnosis = diagnose_run(run.info.run_id, tracking_uri=url)
        print(f"{run_name:16s} {diagnosis.verdict:14s} {diagnosis.summary}")
        runs[run_name] = run.info.run_id
    return experiment_id, runs


def _chrome(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not browser or not Path(driver_path).is_file():
        sys.exit("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": SIZE[0], "height": SIZE[1], "deviceScaleFactor": 1, "mobile": False})
    return driver


def _preset_ui(driver, url: str, experiment_id: str) -> None:
    driver.get(f"{url}/health")  # same origin as the UI: its localStorage
    state = {
        f'MLflowLocalStorage-1.1-ExperimentPage-["{experiment_id}"]-ReactComponentState':
            json.dumps({"selectedColumns": COLUMNS, "orderByKey": "attributes.start_time",
                        "orderByAsc": True,
                        # ag-grid column ids: the run name, the verdict, the numbers, then the rest.
                        "columnOrder": ["0", "attributes.`Run Name`", *COLUMNS, "runDateAndNestInfo",
                                        "duration"],
                        "columnWidths": {"attributes.`Run Name`": 150, COLUMNS[0]: 130,
                                         **{c: 125 for c in COLUMNS[1:]}}}),
        "mlflow.assistant.panelOpen_v1": "false",
        "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true",
        "mlflow.workflowType_v1": json.dumps("machine_learning"),
    }
    driver.execute_script("for (const [k, v] of Object.entries(arguments[0])) localStorage.setItem(k, v);",
                          state)


def _wait(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.25).until(condition)
    except Exception as exc:
        raise RuntimeError(f"the MLflow UI did not show {what} in {WAIT_S} s") from exc


def _save(driver, out: Path, height: int | None = None) -> None:
    """A screenshot, optionally cut to its top ``height`` pixels, as an optimized RGB PNG."""
    from PIL import Image

    raw = out.with_suffix(".raw.png")
    driver.save_screenshot(str(raw))
    with Image.open(raw) as img:
        img = img.convert("RGB")
        if height is not None:
            img = img.crop((0, 0, img.width, min(height, img.height)))
        img.save(out, optimize=True)
    raw.unlink()
    kb = out.stat().st_size // 1024
    print(f"wrote {out} ({kb} KB)" + ("  -- over 300 KB, too big for the README" if kb > 300 else ""))


def _open(driver, url: str, route: str) -> None:
    """Load the UI afresh at ``route``: a change of the hash alone does not switch the artifact viewer."""
    driver.get(f"{url}/health")
    driver.get(f"{url}/#{route}")


def shoot(url: str, experiment_id: str, runs: dict[str, str], out: Path, profile: Path) -> None:
    """Open the UI pages and save the screenshots into ``out``."""
    from selenium.webdriver.common.by import By

    out.mkdir(parents=True, exist_ok=True)
    driver = _chrome(profile)
    run = f"/experiments/{experiment_id}/runs/{runs[FEATURED]}"
    try:
        _preset_ui(driver, url, experiment_id)
        _open(driver, url, f"/experiments/{experiment_id}/runs")
        _wait(driver, lambda d: len(d.find_elements(By.XPATH, "//*[text()='overfitting']")) > 0,
              "the runs table with the verdict column")
        driver.find_element(By.CSS_SELECTOR, "button[aria-label='Toggle sidebar']").click()  # more table
        time.sleep(1)  # let the grid settle its column widths
        _save(driver, out / "runs_table.png", height=440)  # five rows; the rest is empty grid

        _open(driver, url, run)
        _wait(driver, lambda d: d.find_elements(By.XPATH, "//*[text()='plateau.summary']"),
              "the run overview with its tags")
        time.sleep(1)
        _save(driver, out / "run_overview.png")

        _open(driver, url, f"{run}/artifacts/plateau/report.html")
        frame = _wait(driver, lambda d: next(iter(d.find_elements(By.CSS_SELECTOR, "iframe")), None),
                      "the report iframe")
        driver.switch_to.frame(frame)
        _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".verdict"), "the report's verdict")
        driver.switch_to.default_content()
        _save(driver, out / "report_in_ui.png")

        _open(driver, url, f"{run}/artifacts/plateau/curves.png")
        _wait(driver, lambda d: d.execute_script(
            "return Array.from(document.querySelectorAll(\"img[src^='blob:']\"))"
            ".some(i => i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0)"),
            "curves.png")
        _save(driver, out / "curves_in_ui.png")
    finally:
        driver.quit()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "screenshots")
    parser.add_argument("--server", help="log the demo runs into this running server instead of a "
                        "fresh one (http://127.0.0.1:PORT)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mlflow-plateau-shots-") as tmp:
        folder = Path(tmp)
        with contextlib.ExitStack() as stack:
            url = args.server or stack.enter_context(mlflow_server(folder))
            experiment_id, runs = build_store(url)
            shoot(url, experiment_id, runs, args.out, folder / "profile")


if __name__ == "__main__":
    main()
