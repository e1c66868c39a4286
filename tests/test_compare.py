"""``mlflow-plateau compare``: which of several runs stopped learning first, and why.

The ranking (core), the overlay and the page (report), the comparison run logged in a real SQLite
store (tracking) and the command's output and exit codes. The runs are realistic Keras-like
histories that plateau at known, different epochs: an overfitting run with a high learning rate
(plateau near epoch 8), a healthy baseline (near 24), a wide model that overfits late (near 26) and
a small learning rate still improving at its last epoch.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from conftest import log_curves
from PIL import Image

from mlflow_plateau import report
from mlflow_plateau.cli import main
from mlflow_plateau.comparison import compare_diagnoses
from mlflow_plateau.curves import history_curves
from mlflow_plateau.tracking import RunFailure, diagnose_runs
from mlflow_plateau.tracking.comparison import (
    TAG_COMPARED_RUNS,
    TooFewRuns,
    compare_runs,
    compared_runs_tag,
)
from mlflow_plateau.verdict import diagnose_curves

HOSTILE = "<script>alert(1)</script>\"'><img src=x onerror=alert(1)> $x$ [/] [red]"


def _history(seed: int, tau: float, floor: float, overfit: float = 0.0, n: int = 40) -> dict:
    """Loss curves of a Keras-like run: exponential approach to ``floor`` with time constant
    ``tau``, validation noise, and (``overfit``) validation loss rising after about 3 tau."""
    rng = np.random.default_rng(seed)
    e = np.arange(n)
    train = 0.6 * floor + 2.0 * np.exp(-e / tau) + rng.normal(0, 0.002, n)
    val = floor + 2.0 * np.exp(-e / tau) + overfit * np.maximum(0, e - 3 * tau) \
        + rng.normal(0, 0.004, n)
    acc = 1.0 - val / 3.0
    return {"loss": train, "val_loss": val, "accuracy": 1.0 - train / 3.0, "val_accuracy": acc}


RUNS = {  # name -> (history, expected verdict), in the order they stop learning
    "lr=0.1": (_history(0, 2, 0.5, 0.01), "overfitting"),
    "baseline": (_history(1, 5, 0.35), "healthy"),
    "wide": (_history(2, 8, 0.3, 0.012), "overfitting"),
    "lr=1e-4": (_history(3, 30, 0.2), "not_converged"),
}


def _diagnosed(names=tuple(RUNS)):
    diagnoses, curves, labels = [], {}, {}
    for i, name in enumerate(names):
        c = history_curves(RUNS[name][0])
        d = diagnose_curves(c)
        rid = f"{i:032x}"
        d = replace(d, run_id=rid)
        diagnoses.append(d)
        curves[rid] = c
        labels[rid] = name
    return diagnoses, curves, labels


# ------------------------------------------------------------------------------------------ core

def test_the_histories_reach_the_intended_verdicts():
    for name, (history, verdict) in RUNS.items():
        assert diagnose_curves(history).verdict == verdict, name


def test_runs_are_ranked_by_the_epoch_they_stopped_learning():
    diagnoses, _, labels = _diagnosed(("lr=1e-4", "wide", "lr=0.1", "baseline"))  # shuffled
    comparison = compare_diagnoses(diagnoses, labels)
    assert [r.label for r in comparison.rows] == list(RUNS)
    assert [r.rank for r in comparison.rows] == [1, 2, 3, 4]
    epochs = [r.stopped_epoch for r in comparison.rows[:3]]
    assert epochs == sorted(epochs) and epochs[0] < 12
    last = comparison.rows[-1]
    assert last.stopped is False and last.still_improving is True and last.stopped_epoch is None
    first = comparison.first
    assert first.label == "lr=0.1" and first.verdict == "overfitting"
    assert comparison.answer == (f"lr=0.1 stopped learning first (epoch {first.stopped_epoch}): "
                                 f"{first.summary}")
    json.dumps(comparison.to_dict(), allow_nan=False)  # JSON-safe


def test_a_tie_is_named_and_broken_by_the_better_best_value():
    h = _history(5, 4, 0.4)
    worse = {k: v + 0.05 for k, v in h.items() if "loss" in k}
    better = {k: v for k, v in h.items() if "loss" in k}

    d_worse = replace(diagnose_curves(worse), run_id="a" * 32)
    d_better = replace(diagnose_curves(better), run_id="b" * 32)
    assert d_worse.plateau.epoch == d_better.plateau.epoch
    comparison = compare_diagnoses([d_worse, d_better], {"a" * 32: "worse", "b" * 32: "better"})
    assert [r.label for r in comparison.rows] == ["better", "worse"]
    assert comparison.tied_with == ("worse",)
    assert f"(epoch {d_better.plateau.epoch}, tied with worse)" in comparison.answer


def test_runs_can_be_ranked_by_their_forecast():
    """by="forecast": the best value forecast at twice the epochs, the lowest loss first."""
    diagnoses, _, labels = _diagnosed()
    comparison = compare_diagnoses(diagnoses, labels, by="forecast")
    assert comparison.by == "forecast" and comparison.to_dict()["by"] == "forecast"
    forecasts = [r.forecast_best for r in comparison.rows]
    assert None not in forecasts and forecasts == sorted(forecasts)
    for r in comparison.rows:
        assert r.forecast_best <= r.best_value + 1e-12  # never worse than already reached
        assert r.forecast_low <= r.forecast_value <= r.forecast_high
        assert r.forecast_epoch == 2 * (r.last_epoch + 1) - 1
    first = comparison.first
    assert first is comparison.rows[0]
    assert comparison.answer.startswith(f"{first.label} is forecast to do best with twice its")
    # The run still improving has by far the most to gain; the overfitting lr=0.1 run nothing.
    gains = {r.label: r.gain_if_doubled for r in comparison.rows}
    assert max(gains, key=gains.get) == "lr=1e-4" and gains["lr=1e-4"] > 0.1
    assert gains["lr=0.1"] == pytest.approx(0.0, abs=1e-9)
    json.dumps(comparison.to_dict(), allow_nan=False)
    with pytest.raises(ValueError, match="by must be"):
        compare_diagnoses(diagnoses, labels, by="speed")


def test_nothing_stopped_and_diverged_runs():
    slow = diagnose_curves(RUNS["lr=1e-4"][0])
    comparison = compare_diagnoses([replace(slow, run_id="x"), replace(slow, run_id="y")])
    assert comparison.first is None and comparison.answer.startswith("None of the 2 runs")
    # A run that hit NaN at epoch 6 stopped learning there, before a run that plateaus at 8.
    h = _history(7, 3, 0.4)
    h = {k: v.copy() for k, v in h.items()}
    for k in h:
        h[k][6:] = np.nan
    diverged = diagnose_curves(h)
    assert diverged.verdict == "diverged"
    fast = diagnose_curves(RUNS["lr=0.1"][0])

    comparison = compare_diagnoses([replace(fast, run_id="f"), replace(diverged, run_id="d")])
    assert [r.key for r in comparison.rows] == ["d", "f"]
    assert diverged.evidence["diverged_epoch"] == 6
    # Its last improvement (the plateau of the finite prefix) or the NaN, whichever came first.
    assert comparison.rows[0].stopped_epoch == min(diverged.plateau.epoch, 6) <= 6
    with pytest.raises(ValueError, match="appears twice"):
        compare_diagnoses([replace(fast, run_id="f"), replace(fast, run_id="f")])


def test_a_short_run_that_improved_at_every_epoch_did_not_stop():
    """Runs of 3-8 epochs whose loss fell at every epoch were ranked as having "stopped
    learning first" at their last epoch, ahead of a run that really plateaued."""
    def improving(n):
        e = np.arange(n, dtype=float)
        return {"loss": 1 / (1 + 0.3 * e) + 0.05, "val_loss": 1 / (1 + 0.3 * e) + 0.1}

    short = [replace(diagnose_curves(improving(n)), run_id=f"imp{n}") for n in (3, 4, 5, 8)]
    fast = replace(diagnose_curves(RUNS["lr=0.1"][0]), run_id="plateaued")
    comparison = compare_diagnoses([*short, fast])
    assert comparison.first is not None and comparison.first.key == "plateaued"
    rows = {r.key: r for r in comparison.rows}
    for n in (3, 4, 5, 8):
        assert not rows[f"imp{n}"].stopped and rows[f"imp{n}"].still_improving
    alone = compare_diagnoses(short)
    assert alone.first is None and alone.answer.startswith("None of the 4 runs")


# ---------------------------------------------------------------------------------------- report

class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend((tag, k, v) for k, v in attrs)

    def handle_data(self, data):
        self.text.append(data)


def _assert_safe(page: str) -> _Page:
    parsed = _Page()
    parsed.feed(page)
    parsed.close()
    assert "<script" not in page.lower()
    assert set(parsed.tags) <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "div",
                                "p", "ul", "li", "table", "tr", "th", "td", "code", "span", "br",
                                "figure", "img", "figcaption", "footer"}, set(parsed.tags)
    for tag, name, value in parsed.attrs:
        assert not name.startswith("on"), (tag, name, value)
        if name == "src":
            assert tag == "img" and value.startswith("data:image/png;base64,")
    assert parsed.tags.count("img") == 1
    assert "default-src 'none'" in page
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:|//|javascript:)", page, re.I)
    return parsed


def test_overlay_png_is_a_deterministic_readable_image():
    diagnoses, curves, labels = _diagnosed()
    png = report.comparison_png(diagnoses, curves, labels=labels)
    assert png == report.comparison_png(diagnoses, curves, labels=labels)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size[0] >= 1200 and image.size[1] >= 600
    # The four run colours are drawn (the first two of the palette cover many pixels); the PNG
    # is a 256-colour palette image, so a colour is matched within a few levels per channel.
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(np.int16)
    for color in ("#0072B2", "#D55E00", "#009E73", "#CC79A7"):
        rgb = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)])
        assert np.sum(np.all(np.abs(pixels - rgb) <= 12, axis=1)) > 200, color


def test_comparison_html_answers_first_and_escapes_run_names():
    diagnoses, curves, labels = _diagnosed()
    rid = diagnoses[0].run_id
    labels[rid] = HOSTILE
    page = report.comparison_html(diagnoses, curves, labels=labels,
                                  failures={"f" * 32: "no validation metric <b>x</b>"})
    parsed = _assert_safe(page)
    text = "".join(parsed.text)
    assert f"{HOSTILE} stopped learning first (epoch" in text
    assert "no validation metric <b>x</b>" in text and "f" * 32 in text
    # The answer comes before the table, and the table lists the runs in order.
    assert text.index("stopped learning first") < text.index("Runs, in the order")
    order = [text.index(name) for name in ("baseline", "wide", "lr=1e-4")]
    assert order == sorted(order)
    with pytest.raises(ValueError, match="PNG"):
        report.comparison_html(diagnoses, curves, labels=labels, png=b"not a png")


def test_comparison_html_ranked_by_forecast_follows_the_forecast_order():
    """by="forecast": the page leads with the run forecast to do best, lists the runs in the
    forecast order and shows each run's forecast best at twice its epochs."""
    diagnoses, curves, labels = _diagnosed()
    ranked = compare_diagnoses(diagnoses, labels, by="forecast")
    assert [r.label for r in ranked.rows] != \
        [r.label for r in compare_diagnoses(diagnoses, labels).rows]  # the orders differ here
    page = report.comparison_html(diagnoses, curves, labels=labels, by="forecast")
    text = "".join(_assert_safe(page).text)
    assert "is forecast to do best with twice its epochs" in text
    assert "Runs, ranked by the best value forecast with twice their epochs" in text
    table = text[text.index("Runs, ranked"):text.index("Validation curves")]
    order = [table.index(r.label) for r in ranked.rows]
    assert order == sorted(order)
    assert "forecast best @ 2x epochs" in table
    for r in ranked.rows:
        assert f"@ {r.forecast_epoch} (level" in table


# -------------------------------------------------------------------------------------- tracking

@pytest.fixture
def runs(client):
    """Experiment 'cmp' with the four runs of RUNS (names as run names) and a run that has no
    validation metric; returns (experiment id, {name: run id})."""
    exp = client.create_experiment("cmp")
    ids = {name: log_curves(client, exp, history, run_name=name, params={"lr": name})
           for name, (history, _) in RUNS.items()}
    ids["train only"] = log_curves(client, exp, {"loss": [1.0, 0.6, 0.4, 0.35]},
                                   run_name="train only")
    return exp, ids


def _comparison_runs(client, exp: str):
    return client.search_runs([exp], filter_string="tags.`plateau.kind` = 'comparison'")


def test_compare_runs_logs_one_comparison_run_and_leaves_the_runs_alone(client, runs, tmp_path):
    exp, ids = runs
    before = {rid: client.get_run(rid).data for rid in ids.values()}
    result = compare_runs(list(ids.values()))
    assert [r.label for r in result.comparison.rows] == list(RUNS)
    assert [f.run_id for f in result.failures] == [ids["train only"]]
    assert "no validation metric" in result.failures[0].reason
    assert result.answer.startswith("lr=0.1 stopped learning first (epoch ")
    # The compared runs are read, never written.
    for rid, data in before.items():
        after = client.get_run(rid).data
        assert after.metrics == data.metrics and after.tags == data.tags
        assert client.list_artifacts(rid) == []

    run = client.get_run(result.run_id)
    assert run.info.experiment_id == exp and run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["plateau.kind"] == "comparison"
    assert tags[TAG_COMPARED_RUNS] == ",".join(ids[n] for n in RUNS)
    assert tags["plateau.first_run"] == ids["lr=0.1"]
    assert tags["plateau.summary"] == result.answer
    names = sorted(a.path for a in client.list_artifacts(result.run_id, "comparison"))
    assert names == ["comparison/comparison.json", "comparison/overlay.png",
                     "comparison/report.html"]
    folder = Path(client.download_artifacts(result.run_id, "comparison", str(tmp_path)))
    doc = json.loads((folder / "comparison.json").read_text())
    assert [r["key"] for r in doc["runs"]] == [ids[n] for n in RUNS]
    assert doc["first"] == ids["lr=0.1"] and doc["answer"] == result.answer
    assert doc["failures"] == [{"run_id": ids["train only"], "error": result.failures[0].reason}]
    assert set(doc["diagnoses"]) == {ids[n] for n in RUNS}
    assert doc["labels"][ids["baseline"]] == "baseline"
    assert (folder / "overlay.png").read_bytes().startswith(b"\x89PNG")
    page = (folder / "report.html").read_text()
    _assert_safe(page)
    assert "lr=0.1 stopped learning first" in page

    # The same comparison again updates that run; an experiment-wide comparison skips it.
    again = compare_runs(list(ids.values()))
    assert again.run_id == result.run_id and len(_comparison_runs(client, exp)) == 1
    by_experiment = compare_runs(experiment_name="cmp")
    assert len(by_experiment.comparison.rows) == 4
    assert result.run_id not in {f.run_id for f in by_experiment.failures}
    with pytest.raises(TooFewRuns) as info:
        compare_runs([ids["lr=0.1"], result.run_id])
    assert "comparison summary run" in info.value.failures[0].reason

    # diagnose over the experiment leaves the comparison run out; named, it is refused.
    diagnosed = list(diagnose_runs(experiment_name="cmp", log=False))
    assert result.run_id not in {d.run_id for d in diagnosed}
    assert {d.run_id for d in diagnosed} == set(ids.values())
    (refused,) = diagnose_runs([result.run_id], log=False)
    assert isinstance(refused, RunFailure) and "comparison summary run" in refused.reason


def test_the_same_runs_named_in_another_order_find_their_comparison_run(client):
    """Runs in two experiments: the comparison run goes to the first-named run's experiment, and
    naming them the other way round looked only in the other one, adding a second run."""
    e1, e2 = client.create_experiment("cmp-one"), client.create_experiment("cmp-two")
    a = log_curves(client, e1, RUNS["lr=0.1"][0], run_name="a")
    b = log_curves(client, e2, RUNS["baseline"][0], run_name="b")
    first = compare_runs([a, b])
    again = compare_runs([b, a])
    assert again.run_id == first.run_id
    assert len(_comparison_runs(client, e1)) + len(_comparison_runs(client, e2)) == 1


def test_hostile_run_names_are_escaped_in_the_logged_report(client, runs, tmp_path):
    _, ids = runs
    client.update_run(ids["wide"], name=HOSTILE)
    result = compare_runs([ids["lr=0.1"], ids["wide"]])
    page = Path(client.download_artifacts(result.run_id, "comparison/report.html",
                                          str(tmp_path))).read_text()
    parsed = _assert_safe(page)
    assert HOSTILE in "".join(parsed.text)


def test_fewer_than_two_diagnosable_runs(client, runs):
    _, ids = runs
    with pytest.raises(TooFewRuns, match="1 run"):
        compare_runs([ids["baseline"], ids["train only"], "0" * 32])
    with pytest.raises(ValueError, match="not found"):
        compare_runs(experiment_name="no such experiment")


def test_compared_runs_tag_is_cut_at_whole_ids():
    ids = [f"{i:032x}" for i in range(300)]
    tag = compared_runs_tag(ids)
    assert len(tag) <= 5000 and tag.endswith(" more")
    kept = tag.split(",")[:-1]
    assert kept == ids[:len(kept)]
    assert tag.split(",")[-1] == f"+{300 - len(kept)} more"
    assert compared_runs_tag(ids[:3]) == ",".join(ids[:3])


# ------------------------------------------------------------------------------------------- CLI

def test_cli_compare_prints_the_table_and_answer(client, runs, capsys):
    exp, ids = runs
    code = main(["compare", *(ids[n] for n in RUNS)])
    out = capsys.readouterr().out
    assert code == 0
    assert "lr=0.1 stopped learning first (epoch" in out
    positions = [out.index(n) for n in RUNS]
    assert positions == sorted(positions)
    (comparison,) = _comparison_runs(client, exp)
    assert f"comparison run: {comparison.info.run_id}" in out


def test_cli_compare_by_forecast(client, runs, capsys):
    _exp, ids = runs
    code = main(["compare", *(ids[n] for n in RUNS), "--by", "forecast", "--dry-run", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["by"] == "forecast"
    bests = [r["forecast_best"] for r in doc["runs"]]
    assert bests == sorted(bests)
    assert doc["answer"].startswith(f"{doc['runs'][0]['label']} is forecast to do best")


def test_cli_compare_exit_codes_json_and_dry_run(client, runs, capsys):
    exp, ids = runs
    # One run cannot be diagnosed: named on stderr, the rest compared, exit 1; dry run logs nothing.
    code = main(["compare", "--experiment-name", "cmp", "--dry-run", "--json"])
    captured = capsys.readouterr()
    assert code == 1
    assert f"run {ids['train only']}: no validation metric" in captured.err
    doc = json.loads(captured.out)
    assert doc["dry_run"] is True and doc["comparison_run_id"] is None
    assert [r["label"] for r in doc["runs"]] == list(RUNS)
    # Each entry names its run as diagnose --json does: the run name, not the label shown.
    assert {r["key"]: r["run_name"] for r in doc["runs"]} == {ids[n]: n for n in RUNS}
    assert _comparison_runs(client, exp) == []
    assert len(client.search_runs([exp])) == 5
    # Usage errors exit 2: one run only, or ids and an experiment together.
    assert main(["compare", ids["baseline"]]) == 2
    assert main(["compare", ids["baseline"], ids["wide"], "--experiment-name", "cmp"]) == 2
    capsys.readouterr()
    # Fewer than two runs that can be diagnosed: exit 1 with a clear message.
    assert main(["compare", ids["baseline"], ids["train only"]]) == 1
    err = capsys.readouterr().err
    assert "nothing compared: 1 of the 2 runs selected could be diagnosed; a comparison needs 2" \
        in err
    assert _comparison_runs(client, exp) == []
    # An experiment of one run: nothing failed, it holds too few runs; the JSON has every key.
    solo = client.create_experiment("solo")
    log_curves(client, solo, {"loss": np.linspace(1, 0.1, 20), "val_loss": np.linspace(1, 0.3, 20)})
    assert main(["compare", "--experiment-name", "solo", "--json", "--by", "forecast"]) == 1
    captured = capsys.readouterr()
    assert "nothing compared: the selection holds 1 run; a comparison needs 2" in captured.err
    assert "could be diagnosed" not in captured.err
    doc = json.loads(captured.out)
    assert {"answer", "by", "first", "runs", "failures"} <= set(doc)
    assert (doc["by"], doc["runs"], doc["failures"]) == ("forecast", [], [])
    # A hostile run name does not break the table (rich markup) and is printed as is.
    client.update_run(ids["wide"], name="[/] [red]x")
    assert main(["compare", ids["wide"], ids["baseline"], "--dry-run"]) == 0
    assert "[/] [red]x" in capsys.readouterr().out
    # Two runs of one name: the labels tell them apart, run_name is each one's name.
    client.update_run(ids["baseline"], name="same")
    client.update_run(ids["wide"], name="same")
    assert main(["compare", ids["wide"], ids["baseline"], ids["lr=0.1"], "--dry-run",
                 "--json"]) == 0
    entries = {r["key"]: r for r in json.loads(capsys.readouterr().out)["runs"]}
    assert [entries[ids[n]]["run_name"] for n in ("wide", "baseline", "lr=0.1")] == [
        "same", "same", "lr=0.1"]
    assert entries[ids["wide"]]["label"] == f"same ({ids['wide'][:8]})"
