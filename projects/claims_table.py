"""Measure the documents' claims and write the one committed claims table, ``projects/CLAIMS.md``.

    python -m projects.claims_table [--seeds 0 1 2]   # run main per seed, rewrite all three files
    python -m projects.claims_table --render          # rewrite the text from the committed JSON
    python -m projects.claims_table --check           # exit 1 when the text is not what --render writes

For each seed it runs ``main`` (the ``MLproject`` command ``python -m projects.run main``, quick
profile) in a fresh process against a throwaway SQLite store in a temporary folder, and reads
back the ``claims.json`` that run logged (``suite.run_main``: every variant's outcome and whether
its claim held). The seeds' outcomes are kept in ``projects/claims_measured.json``; from them,
with ``claims_report`` (the formatter of ``main``'s own ``claims.md``), it writes the generated
block of ``projects/CLAIMS.md`` (how it was measured, the "held" sentence, the table) and of
``README.md`` (the sentence and a link), each between ``<!-- claims:start ... -->`` and
``<!-- claims:end -->``. The text around the blocks is written by hand and left as it is.
``--render`` is for a change of claim text in ``claims.py`` (no training); a change that can
change a verdict needs a new measurement. ``tests/test_claims_table.py`` checks that the blocks
are what ``--render`` writes and that seed 0 still measures what the JSON says.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .claims_report import Row, claims_table, held_summary, rows_from_json, verdicts_that_moved

ROOT = Path(__file__).resolve().parents[1]
MEASURED = ROOT / "projects" / "claims_measured.json"
CLAIMS_MD = ROOT / "projects" / "CLAIMS.md"
README = ROOT / "README.md"
START, END = "<!-- claims:start", "<!-- claims:end -->"
EXPERIMENT = "claims-table"
PROFILE = "quick"


class MeasureError(RuntimeError):
    """A seed's ``main`` did not run through, or logged no ``claims.json``; the message says which."""


def measure_seed(seed: int, workdir: Path, out=sys.stderr) -> dict[str, Any]:
    """Run ``main`` for ``seed`` (quick profile) in a new process on a SQLite store in ``workdir``;
    return the seed's measurement: wall and CPU seconds, the load average before, its rows as JSON."""
    workdir.mkdir(parents=True, exist_ok=True)
    store = f"sqlite:///{workdir / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "projects.run", "main", "--seed", str(seed), "--profile", PROFILE,
               "--experiment", EXPERIMENT]
    load = os.getloadavg()[0]
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    # cwd=workdir: MLflow's default ./mlruns artifact root lands there, not in the checkout.
    with subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:
        lines = []
        for line in proc.stdout:  # echoed as it comes: one seed takes minutes
            lines.append(line)
            print(line, end="", file=out, flush=True)
    wall = time.monotonic() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise MeasureError(f"seed {seed}: main exited with status {proc.returncode}; the end of its "
                           f"output:\n{''.join(lines)[-3000:]}")
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    suites = client.search_runs([experiment.experiment_id], "tags.scenario = 'main'") if experiment else []
    if len(suites) != 1:
        raise MeasureError(f"seed {seed}: expected one main run in {store}, found {len(suites)}")
    path = client.download_artifacts(suites[0].info.run_id, "claims.json", str(workdir))
    logged = json.loads(Path(path).read_text())
    for row in logged["rows"]:
        row["outcome"]["run_id"] = None  # it named a run in the throwaway store, deleted by now
    return {"seed": seed, "wall_s": round(wall, 1),
            "cpu_s": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 1),
            "load_average_before": round(load, 2), "rows": logged["rows"]}


def rows_by_seed(measured: Mapping[str, Any],
                 where: str = "projects/claims_measured.json") -> dict[int, list[Row]]:
    """seed -> rows of a measurement file's content, in the order the seeds were run."""
    return {m["seed"]: rows_from_json(m["rows"], f"{where}, seed {m['seed']}") for m in measured["seeds"]}


def seed_drift(measured: Mapping[str, Any], fresh: Mapping[str, Any]) -> list[str]:
    """How a fresh measurement of one seed (``measure_seed``) differs from the committed one, one
    line per variant: whether its claim held must be the same; so must its verdict, unless the
    verdict moved between the committed seeds (it sits near a threshold: any of those is accepted)."""
    by_seed = {m["seed"]: {row["key"]: row for row in m["rows"]} for m in measured["seeds"]}
    if fresh["seed"] not in by_seed:
        return [f"seed {fresh['seed']} is not in the committed measurement"]
    was_rows, now_rows = by_seed[fresh["seed"]], {row["key"]: row for row in fresh["rows"]}
    was_keys, now_keys = was_rows.keys(), now_rows.keys()
    differ = [f"{key}: measured now, not in the committed table" for key in now_keys - was_keys]
    differ += [f"{key}: in the committed table, not measured now" for key in was_keys - now_keys]
    for key in was_keys & now_keys:
        was, now = was_rows[key], now_rows[key]
        seen = {rows[key]["outcome"]["verdict"] for rows in by_seed.values() if key in rows}
        verdict = now["outcome"]["verdict"]
        verdict_ok = verdict in seen if len(seen) > 1 else verdict == was["outcome"]["verdict"]
        if now["held"] != was["held"] or not verdict_ok:
            differ.append(f"{key}: committed {was['outcome']['verdict']} (held: {was['held']}), "
                          f"measured {verdict} (held: {now['held']})")
    return sorted(differ)


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {round(seconds % 60):02d} s"


def claims_md_block(measured: Mapping[str, Any]) -> str:
    """The generated part of ``projects/CLAIMS.md``, markers included."""
    by_seed = rows_by_seed(measured)
    seeds = " ".join(str(s) for s in by_seed)
    timing = "; ".join(f"seed {m['seed']} {_minutes(m['wall_s'])} of wall time, {m['cpu_s']:.0f} s of CPU "
                       f"(load average {m['load_average_before']:.1f} when it started)"
                       for m in measured["seeds"])
    moved = verdicts_that_moved(by_seed)
    moved_text = (f"The verdict moved between seeds for {', '.join(moved)}." if moved
                  else "Every verdict was the same on every seed.")
    return "\n".join([
        f"{START}: written by `python -m projects.claims_table` from projects/claims_measured.json; "
        "edit the claims in projects/claims.py, not this block -->",
        f"Measured by `python -m projects.claims_table --seeds {seeds}`: for each seed it runs `main` "
        f"(what `mlflow run . -e main --env-manager local -P seed=SEED` runs, profile {measured['profile']}) "
        "in a new process on a throwaway SQLite store, and renders this table from the `claims.json` "
        "each run logged, with the code that writes `main`'s own `claims.md` "
        f"(`projects/claims_report.py`). On {measured['cpus']} CPUs: {timing}.",
        "",
        "Which column is what: *measured verdict* and *claim held?* are what "
        "`tests/test_claims_table.py` measures again on seed 0 and requires unchanged (whether the "
        "claim held on every row, the verdict on every row where it agreed across the seeds here). "
        "*plateau epoch* and *gap* are this machine's numbers; another machine's floating point can "
        "move them slightly.",
        "",
        f"**{held_summary(by_seed)}** {moved_text}",
        "",
        claims_table(by_seed).rstrip("\n"),
        END,
    ])


def readme_block(measured: Mapping[str, Any]) -> str:
    """The generated part of ``README.md``: the "held" sentence and where the table is."""
    by_seed = rows_by_seed(measured)
    return "\n".join([
        f"{START}: written by `python -m projects.claims_table`; the table is in projects/CLAIMS.md -->",
        f"Measured by `main` ({measured['profile']} profile): {held_summary(by_seed)} The table, "
        "each seed's verdict and how it was measured: [projects/CLAIMS.md](projects/CLAIMS.md).",
        END,
    ])


def replace_block(text: str, block: str, where: str) -> str:
    """``text`` with its one generated block (from the start marker to the end marker) replaced."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start or text.count(START) != 1:
        raise ValueError(f"{where}: needs exactly one '{START} ... -->' line followed by '{END}'")
    return text[:start] + block + text[end + len(END):]


def generated_block(text: str, where: str) -> str:
    """The generated block of ``text``, markers included."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{where}: no '{START} ... {END}' block")
    return text[start:end + len(END)]


def rendered(measured: Mapping[str, Any]) -> dict[Path, str]:
    """What ``CLAIMS.md`` and ``README.md`` should contain, given their hand-written parts now."""
    return {CLAIMS_MD: replace_block(CLAIMS_MD.read_text(), claims_md_block(measured), "projects/CLAIMS.md"),
            README: replace_block(README.read_text(), readme_block(measured), "README.md")}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m projects.claims_table",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds to run main on")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--render", action="store_true", help="rewrite the text from the committed JSON only")
    mode.add_argument("--check", action="store_true", help="exit 1 when the text is not what --render writes")
    args = parser.parse_args(argv)
    if args.render or args.check:
        measured = json.loads(MEASURED.read_text())
    else:
        with tempfile.TemporaryDirectory(prefix="claims-table-") as tmp:
            seeds = [measure_seed(seed, Path(tmp) / f"seed{seed}") for seed in args.seeds]
        measured = {"profile": PROFILE, "cpus": os.cpu_count(), "seeds": seeds}
        MEASURED.write_text(json.dumps(measured, indent=1) + "\n")
        print(f"wrote {MEASURED.relative_to(ROOT)}")
    stale = []
    for path, text in rendered(measured).items():
        if path.read_text() != text:
            stale.append(str(path.relative_to(ROOT)))
            if not args.check:
                path.write_text(text)
                print(f"wrote {path.relative_to(ROOT)}")
    if args.check and stale:
        print(f"not what `python -m projects.claims_table --render` writes: {', '.join(stale)}",
              file=sys.stderr)
        return 1
    print(held_summary(rows_by_seed(measured)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
