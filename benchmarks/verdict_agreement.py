"""Do the verdicts agree with careful readers? Measured on real training logs.

For every file of ``benchmarks/data/real_logs/`` (verbatim logs from public repositories, labelled by
three independent readers who followed ``docs/verdicts.md``), runs ``diagnose_curves`` with its defaults
and prints:

- the agreement: the verdict is one that at least two readers accepted (``accepted``);
- the agreement with the panel's majority primary verdict;
- a confusion table against the majority primary;
- every disagreement, with the evidence that decided it;
- how often a close alternative verdict is reported on files where the readers' primaries
  differed, against files where they agreed (an honest borderline should show where readers
  disagree);

and the same agreement numbers for two baselines on the same files:

- ``sk-autod`` 0.1.1 (PyPI), its top finding mapped to a verdict (skipped with a note when the
  package is not installed: ``pip install sk-autod==0.1.1``);
- a plain five-rule heuristic on the monitored loss and its training partner (below).

The same tables for the corpus of real MLflow stores (``benchmarks/data/real_stores/``, see
``store_corpus.py``), each run read from its committed store by ``diagnose_run`` as a user's
command would (``log=False``: nothing is written). A run the tool refuses for having no validation
metric is read once more as its message advises (``monitor=`` the training loss, else the first
training curve), and counted apart. Per verdict, precision and recall against the majority primary
are printed for both corpora.

Usage::

    python benchmarks/verdict_agreement.py [--logs DIR] [--stores DIR] [--show FILE] [--quiet]

``--show FILE`` draws one file's curves with its diagnosis (the ``curves.png`` picture) to
``FILE.png`` in the current folder and prints the diagnosis.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlflow_plateau.curves import finite_prefix, history_curves  # noqa: E402
from mlflow_plateau.logs import read_log  # noqa: E402
from mlflow_plateau.verdict import VERDICTS, _pick_monitor, diagnose_curves  # noqa: E402

DEFAULT_LOGS = ROOT / "benchmarks" / "data" / "real_logs"
DEFAULT_STORES = ROOT / "benchmarks" / "data" / "real_stores"


def five_rule_heuristic(history: Any) -> str:
    """The baseline of issue 10: five plain rules on the monitored loss and its training partner.

    1. NaN -> diverged; 2. fewer than 3 epochs -> insufficient_data; 3. best in the last 2 epochs
    and below the first value -> not_converged; 4. validation ends more than 10% of its total drop
    above its best while training fell after the best -> overfitting; 5. otherwise healthy.
    """
    curves = history_curves(history)
    monitor, partner = _pick_monitor(curves, None)
    v = curves[monitor].values
    sign = 1.0 if _is_min(monitor) else -1.0
    t = curves[partner].values if partner else None
    if not np.all(np.isfinite(v)) or (t is not None and not np.all(np.isfinite(t))):
        return "diverged"
    if v.size < 3:
        return "insufficient_data"
    z = sign * v
    best = int(np.argmin(z))
    if best >= z.size - 2 and z[best] < z[0]:
        return "not_converged"
    drop = z[0] - z[best]
    if t is not None and t.size > best + 1:
        tz = sign * t
        if z[-1] - z[best] > 0.1 * max(drop, 0.0) and tz[-1] < tz[best]:
            return "overfitting"
    return "healthy"


def _is_min(name: str) -> bool:
    from mlflow_plateau.curves import metric_mode

    try:
        return metric_mode(name) == "min"
    except ValueError:
        return True


_SK_AUTOD_MAP = {
    "Classic overfitting": "overfitting", "Missed early stopping": "overfitting",
    "Exploding gradient": "diverged", "LR too high": "unstable", "Noisy training": "unstable",
    "LR too low": "not_converged", "Underfitting": "underfitting",
    "Dying ReLU proxy": "underfitting", "Label noise floor": "underfitting",
    "Data leakage": "healthy",
}


def sk_autod_verdict(history: Any) -> str:
    """sk-autod 0.1.1's top finding on the (train loss, val loss) pair, mapped to a verdict."""
    from sk_autod import diagnose

    curves = history_curves(history)
    monitor, partner = _pick_monitor(curves, None)
    if partner is None:
        return "n/a"
    v, _ = finite_prefix(curves[monitor])
    t, _ = finite_prefix(curves[partner])
    n = min(len(v), len(t))
    if not (np.all(np.isfinite(curves[monitor].values)) and np.all(np.isfinite(curves[partner].values))):
        return "diverged"
    try:
        report = diagnose(list(t.values[:n]), list(v.values[:n]))
    except Exception:  # sk-autod refuses short or odd curves
        return "n/a"
    if not report.findings:
        return "healthy"
    return _SK_AUTOD_MAP.get(report.findings[0].detector_name, "healthy")


def impossible_verdict(history: Any, d: Any) -> list[str]:
    """The issue's three impossible verdicts, checked on the raw curves (not on the rules' own
    numbers): at_chance with a best raw value clearly better than a known chance level;
    healthy/underfitting/overfitting while the best epoch is the last and the last epochs still
    improve by more than the noise; overfitting while training did not improve after the best."""
    from mlflow_plateau.rules import tail_still_falling, tail_window

    out: list[str] = []
    if d.plateau is None or d.mode is None:
        return out
    curves = history_curves(history)
    v, _ = finite_prefix(curves[d.monitor])
    sign = 1.0 if d.mode == "min" else -1.0
    z = sign * v.values
    chance = d.evidence.get("chance")
    if d.verdict == "at_chance" and chance is not None:
        best = float(z.min())
        if d.mode == "min" and best < 0.8 * chance:
            out.append(f"at_chance with best loss {best:.3g} far below chance {chance:.3g}")
        if d.mode == "max" and -best > chance + 0.5 * (1 - chance):
            out.append(f"at_chance with best score {-best:.3g} far above chance {chance:.3g}")
    if d.verdict in ("healthy", "underfitting", "overfitting") and z.size >= 5 \
            and int(np.argmin(z)) == z.size - 1 and tail_still_falling(z, v.epochs):
        out.append(f"{d.verdict} while the last epoch is the best and the trend of the last "
                   f"{tail_window(z.size)} epochs still falls beyond its noise")
    if d.verdict == "overfitting" and d.train_metric:
        t, _ = finite_prefix(curves[d.train_metric])
        tz = sign * t.values
        after = tz[t.epochs >= d.plateau.epoch]
        if after.size >= 2 and after[-1] >= after[0] and min(after[-3:]) >= after[0]:
            out.append("overfitting while training did not improve after the plateau epoch")
    return out


def _evidence_line(d: Any) -> str:
    ev = d.evidence
    parts = [f"{k}={ev[k]:.3g}" for k in ("best_value", "final_value", "noise", "came")
             if isinstance(ev.get(k), float)]
    parts += [f"{k[6:]}={v:.2f}" for k, v in ev.items() if k.startswith("score_")]
    if ev.get("chance") is not None:
        parts.append(f"chance={ev['chance']:.3g}")
    line = ", ".join(parts)
    return f"{ev.get('decided_by', ev.get('verdict_rule'))}\n    {line}"


def _log_rows(logs: Path, have_sk: bool) -> list[dict]:
    labels = json.loads((logs / "labels.json").read_text(encoding="utf-8"))
    rows = []
    for name in sorted(labels):
        history = read_log(logs / name)
        rows.append(_row(name, labels[name], history, lambda h=history: diagnose_curves(h), have_sk))
    return rows


def _row(name: str, lab: dict, history: Any, diagnose: Any, have_sk: bool) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = diagnose()
        heur = _or_na(five_rule_heuristic, history)
        sk = _or_na(sk_autod_verdict, history) if have_sk else None
    primaries = {r["primary"] for r in lab["readers"].values()}
    return {"file": name, "d": d, "heur": heur, "sk": sk, "history": history,
            "accepted": set(lab["accepted"]), "majority": lab["majority_primary"],
            "split": len(primaries) > 1}


def _or_na(baseline: Any, history: Any) -> str:
    """A baseline's verdict, "n/a" where it cannot read the run (no validation curve, odd names)."""
    try:
        return baseline(history)
    except (ValueError, KeyError, IndexError):
        return "n/a"


def _store_rows(stores: Path, have_sk: bool) -> tuple[list[dict], list[str], list[str]]:
    """Rows of the labelled store runs; the runs read on the message's advice; those not read."""
    from store_corpus import corpus_runs

    from mlflow_plateau import diagnose_run
    from mlflow_plateau.curves import is_loss_name, metric_role
    from mlflow_plateau.tracking.history import read_run_curves

    labels_path = stores / "labels.json"
    labels = json.loads(labels_path.read_text(encoding="utf-8")) if labels_path.exists() else {}
    rows, advised, unread = [], [], []
    for run in corpus_runs(stores):
        lab = labels.get(run["key"])
        if lab is None:
            continue
        uri, run_id = run["uri"], run["run_id"]
        meta = Path(uri) / run["experiment_id"] / run_id / "meta.yaml"
        if meta.exists() and "lifecycle_stage: deleted" in meta.read_text(encoding="utf-8"):
            continue  # deleted in its store: not an active run (diagnose says "run is deleted")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                curves = read_run_curves([run_id], tracking_uri=uri)[run_id]
                monitor = None
                try:
                    diagnose_run(run_id, tracking_uri=uri, log=False, artifacts="none")
                except ValueError as exc:
                    if "no validation metric" not in str(exc):
                        raise
                    # The message's advice: pass a training metric as the monitor.
                    train = [n for n in sorted(curves) if metric_role(n) is not None and len(curves[n]) > 1]
                    monitor = next((n for n in train if is_loss_name(n)), train[0] if train else None)
                    if monitor is None:
                        raise
                    advised.append(run["key"])
            except Exception as exc:
                unread.append(f"{run['key']}: {str(exc).splitlines()[0][:160]}")
                continue

        def diagnose(run_id=run_id, uri=uri, monitor=monitor):
            return diagnose_run(run_id, tracking_uri=uri, log=False, artifacts="none",
                                monitor=monitor)

        rows.append(_row(run["key"], lab, curves, diagnose, have_sk))
    return rows, advised, unread


def _precision_recall(rows: list[dict]) -> None:
    print("\nper verdict, against the majority primary (ours): precision, recall, support")
    for verdict in VERDICTS:
        said = [r for r in rows if r["d"].verdict == verdict]
        truth = [r for r in rows if r["majority"] == verdict]
        if not said and not truth:
            continue
        hits = sum(r["majority"] == verdict for r in said)
        prec = f"{100 * hits / len(said):3.0f}%" if said else "  - "
        rec = f"{100 * hits / len(truth):3.0f}%" if truth else "  - "
        print(f"  {verdict:>17}: precision {prec} ({hits}/{len(said)}), recall {rec} "
              f"({hits}/{len(truth)})")


def _report(rows: list[dict], what: str, have_sk: bool, quiet: bool, read_line: str) -> None:
    def rate(key: str, against: str) -> float:
        hits = 0
        for r in rows:
            verdict = r["d"].verdict if key == "ours" else r[key]
            hits += verdict in r["accepted"] if against == "accepted" else verdict == r["majority"]
        return hits / len(rows) if rows else math.nan

    n = len(rows)
    print(f"verdict agreement on {n} {what}\n{read_line}\n")
    cols = [("mlflow-plateau", "ours"), ("five-rule heuristic", "heur")]
    if have_sk:
        cols.append(("sk-autod 0.1.1", "sk"))
    print(f"| {'':18} | " + " | ".join(f"{c:>19}" for c, _ in cols) + " |")
    print(f"|{'-' * 20}|" + "|".join("-" * 21 for _ in cols) + "|")
    for label, against in (("accepted", "accepted"), ("majority primary", "majority")):
        print(f"| {label:18} | " + " | ".join(f"{100 * rate(k, against):18.0f}%" for _, k in cols)
              + " |")
    if not have_sk:
        print("(sk-autod not installed: pip install sk-autod==0.1.1 for its column)")

    impossible = [(r["file"], why) for r in rows for why in impossible_verdict(r["history"], r["d"])]
    print(f"\nimpossible verdicts: {len(impossible)}")
    for name, why in impossible:
        print(f"- {name}: {why}")

    split = [r for r in rows if r["split"]]
    agreed = [r for r in rows if not r["split"]]

    def alt_rate(group: list[dict]) -> float:
        return sum(bool(r["d"].alternatives) for r in group) / len(group) if group else math.nan

    print(f"close alternative reported: {100 * alt_rate(split):.0f}% of the {len(split)} runs "
          f"where readers' primaries differed, {100 * alt_rate(agreed):.0f}% of the "
          f"{len(agreed)} where they agreed")
    _precision_recall(rows)

    order = [v for v in VERDICTS if v != "insufficient_data"] + ["insufficient_data"]
    print("\nconfusion (rows: majority primary, columns: our verdict)")
    print(f"{'':>17} " + " ".join(f"{v[:8]:>8}" for v in order))
    table = Counter((r["majority"], r["d"].verdict) for r in rows)
    for truth in [*order, None]:
        if not any(r["majority"] == truth for r in rows):
            continue
        print(f"{truth!s:>17} " + " ".join(f"{table[(truth, v)] or '.':>8}" for v in order))

    if not quiet:
        print("\ndisagreements (our verdict not accepted):")
        for r in rows:
            if r["d"].verdict in r["accepted"]:
                continue
            d = r["d"]
            print(f"- {r['file']}: {d.verdict} (accepted: {', '.join(sorted(r['accepted']))}; "
                  f"majority {r['majority']})\n    {_evidence_line(d)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logs", type=Path, default=DEFAULT_LOGS)
    parser.add_argument("--stores", type=Path, default=DEFAULT_STORES)
    parser.add_argument("--show", metavar="FILE", help="draw one file's curves with its diagnosis")
    parser.add_argument("--quiet", action="store_true", help="no list of disagreements")
    args = parser.parse_args(argv)

    if args.show:
        return _show(args.logs, args.show)
    try:
        import sk_autod  # noqa: F401
        have_sk = True
    except ImportError:
        have_sk = False

    rows = _log_rows(args.logs, have_sk)
    _report(rows, f"real training logs ({args.logs})", have_sk, args.quiet,
            f"runs read: {len(rows)} of {len(rows)}")
    if args.stores.is_dir():
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        rows, advised, unread = _store_rows(args.stores, have_sk)
        total = len(rows) + len(unread)
        print("\n" + "=" * 100 + "\n")
        _report(rows, f"runs of real MLflow stores ({args.stores})", have_sk, args.quiet,
                f"runs read: {len(rows)} of {total} labelled active runs ({len(rows) - len(advised)} "
                f"directly, {len(advised)} with --monitor as the no-validation message advises)")
        for line in unread:
            print(f"- not read: {line}")
    return 0


def _show(logs: Path, name: str) -> int:
    from mlflow_plateau.report import curves_png

    path = logs / name if (logs / name).exists() else Path(name)
    history = read_log(path)
    d = diagnose_curves(history)
    out = Path.cwd() / (path.stem + ".png")
    out.write_bytes(curves_png(d, history_curves(history)))
    print(f"{path.name}: {d.verdict}\n  {d.summary}\n  {_evidence_line(d)}\n  picture: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
