"""The corpus of real MLflow stores (``benchmarks/data/real_stores/``): listing, reader plots, labels.

Each folder of the corpus is one public repository's committed ``mlruns/`` store, reduced to the
runs taken (``SOURCES.tsv``: folder, repository, commit, store path, experiment and run id,
framework, metrics, points, notes). This module

- lists the corpus's runs (``corpus_runs``) with the tracking URI of each folder's store;
- draws, for the readers who label the runs, one anonymised picture per run from the raw metric
  files alone (``reader_plot``: losses left, other metrics right, each metric's first, best and
  last value in the legend; no repository, run name or diagnosis shown), so that the labels owe
  nothing to this package's reading of the run;
- builds ``labels.json`` from the readers' raw answers (``readers/<reader>.json``) exactly as for
  the labelled logs: ``accepted`` is every verdict at least two readers accept, ``majority_primary``
  the primary of at least two readers (or ``null`` where all three differ).

Usage::

    python benchmarks/store_corpus.py plots OUT_DIR     # one PNG a run (runNNN.png) and index.json
                                                        # (runNNN -> corpus key); rows whose
                                                        # folder is absent are skipped, with a note
    python benchmarks/store_corpus.py labels            # readers/*.json -> labels.json
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from collections import Counter
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "data" / "real_stores"
LOSS_LIKE = re.compile(r"loss|error|mse|rmse|mae|(^|[^a-z])l[12]([^a-z0-9]|$)|nll|perplexity",
                       re.IGNORECASE)
NOT_A_CURVE = re.compile(r"(^|[/_.\-])(lr|learning_rate|momentum|epoch|step|time|runtime|"
                         r"per_second|flos|samples|stopped_|best_iteration)", re.IGNORECASE)


def corpus_runs(root: Path = CORPUS) -> list[dict]:
    """Every run of ``SOURCES.tsv``: its row, ``key`` (folder/run id) and ``uri`` (its store)."""
    rows = []
    for tsv in sorted(root.glob("SOURCES*.tsv")):
        with tsv.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                row = dict(row)
                row["key"] = f"{row['dir']}/{row['run_id']}"
                row["uri"] = str(root / row["dir"] / "mlruns")
                rows.append(row)
    return rows


def raw_metric(path: Path) -> tuple[list[float], list[float]]:
    """(x, y) of one metric file (``timestamp value step`` a line), in step then logging order;
    a metric logged at one step only is drawn in logging order."""
    points = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        parts = line.split()
        if len(parts) >= 3:
            points.append((int(parts[2]), int(parts[0]), i, float(parts[1])))
    if len({p[0] for p in points}) <= 1:
        return list(range(len(points))), [p[3] for p in sorted(points, key=lambda p: (p[1], p[2]))]
    points.sort()
    return [p[0] for p in points], [p[3] for p in points]


def run_folder(run: dict) -> Path:
    """The run's folder in its store (``<uri>/<experiment id>/<run id>``)."""
    return Path(run["uri"]) / run["experiment_id"] / run["run_id"]


def run_metrics(run: dict) -> dict[str, tuple[list[float], list[float]]]:
    folder = run_folder(run) / "metrics"
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        x, y = raw_metric(path)
        if len(y) >= 2:
            out[str(path.relative_to(folder))] = (x, y)
    return out


def _legend(name: str, y: list[float]) -> str:
    finite = [v for v in y if math.isfinite(v)]
    if not finite:
        return f"{name} (all NaN/inf)"
    low, high = min(finite), max(finite)
    return f"{name}: first {y[0]:.4g}, min {low:.4g}, max {high:.4g}, last {y[-1]:.4g} ({len(y)} pts)"


def reader_plot(run: dict, out: Path, label: str) -> None:
    """One anonymised picture of the run's raw curves (see the module docstring)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = run_metrics(run)
    losses = {k: v for k, v in metrics.items() if LOSS_LIKE.search(k)}
    others = {k: v for k, v in metrics.items() if k not in losses and not NOT_A_CURVE.search(k)}
    others = dict(list(others.items())[:8])
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for ax, group, title in ((axes[0], losses, "losses / errors (lower is better)"),
                             (axes[1], others, "other metrics")):
        for name, (x, y) in group.items():
            ax.plot(x, y, marker="." if len(y) < 60 else None, label=_legend(name, y))
        finite = [v for _, y in group.values() for v in y if math.isfinite(v)]
        if group is losses and finite and min(finite) > 0 and max(finite) / min(finite) > 30:
            ax.set_yscale("log")
            title += " (log scale)"
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step as logged")
        if group:
            ax.legend(fontsize=7, loc="best")
        else:
            ax.text(0.5, 0.5, "none logged", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(label, fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def draw_plots(out: Path, root: Path = CORPUS) -> tuple[dict[str, str], list[str]]:
    """One reader picture a run (``out/runNNN.png``) and ``out/index.json`` (runNNN -> corpus
    key); returns the index and the keys of the rows skipped because their folder is absent."""
    out.mkdir(parents=True, exist_ok=True)
    index, absent = {}, []
    for run in corpus_runs(root):
        # A row whose folder is not in this checkout (a corpus part kept elsewhere) would
        # otherwise become an empty picture that readers are asked to judge.
        if not run_folder(run).is_dir():
            absent.append(run["key"])
            continue
        name = f"run{len(index) + 1:03d}"
        reader_plot(run, out / f"{name}.png", name)
        index[name] = run["key"]
    (out / "index.json").write_text(json.dumps(index, indent=1))
    return index, absent


def build_labels(root: Path = CORPUS) -> dict:
    """labels.json from ``readers/<reader>.json`` (each: key -> primary, acceptable, confidence,
    why), keyed by corpus key."""
    readers = {p.stem: json.loads(p.read_text(encoding="utf-8"))
               for p in sorted((root / "readers").glob("*.json"))}
    keys = sorted(set().union(*[set(r) for r in readers.values()]))
    labels = {}
    for key in keys:
        answers = {name: r[key] for name, r in readers.items() if key in r}
        accepted = Counter(v for a in answers.values() for v in set(a["acceptable"]) | {a["primary"]})
        primaries = Counter(a["primary"] for a in answers.values())
        top, count = primaries.most_common(1)[0]
        labels[key] = {"accepted": sorted(v for v, n in accepted.items() if n >= 2),
                       "majority_primary": top if count >= 2 else None, "readers": answers}
    return labels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    plots = sub.add_parser("plots", help="one anonymised PNG a run, for the readers")
    plots.add_argument("out", type=Path)
    sub.add_parser("labels", help="readers/*.json -> labels.json")
    args = parser.parse_args(argv)
    if args.command == "plots":
        index, absent = draw_plots(args.out)
        print(f"{len(index)} pictures in {args.out}")
        if absent:
            print(f"skipped {len(absent)} run(s) whose folder is absent, e.g. {absent[0]}",
                  file=sys.stderr)
        return 0
    labels = build_labels()
    (CORPUS / "labels.json").write_text(json.dumps(labels, indent=1, sort_keys=True) + "\n")
    print(f"labels.json: {len(labels)} runs; majority primaries "
          f"{dict(Counter(v['majority_primary'] for v in labels.values()))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
