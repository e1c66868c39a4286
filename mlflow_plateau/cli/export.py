"""``mlflow-plateau export``: tracked runs' metric histories as one long table in a file.

``tracking.iter_histories``' pages written one by one to Parquet (pyarrow) or CSV, through a
temporary file renamed at the end; without pyarrow a ``.parquet`` name is written as CSV beside it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from .output import err
from .parser import EXIT_FAILED, EXIT_OK, add_run_selection, add_store_options
from .selection import check_selection, expand_ids


def add_parser(sub: Any) -> None:
    """The ``export`` command and its options, on the subcommands ``sub``."""
    export = sub.add_parser(
        "export", help="write tracked runs' metric histories to a Parquet or CSV file",
        description="Write every metric point of the runs given (or of an experiment's runs) to "
        "one long table: run_id, key, step, value, timestamp. Parquet (needs pyarrow) for "
        "-o *.parquet, CSV for -o *.csv or '-' (stdout); without pyarrow a .parquet name is "
        "written as CSV next to it.")
    add_run_selection(export, "export", "runs to export")
    export.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="output file (.parquet or .csv; '-' for CSV on stdout)")
    export.add_argument("--keys", nargs="+", metavar="KEY", help="only these metrics")
    add_store_options(export)


def _parquet_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``export``: the runs' metric points written to ``--output``; the exit code."""
    check_selection(args, parser, "RUN_ID ...")
    if not expand_ids(args):  # a file short of a run would pass for the whole export
        return EXIT_FAILED
    from ..tracking import iter_histories

    pages = iter_histories(args.run_ids or None, experiment_name=args.experiment_name,
                           experiment_id=args.experiment_id, filter_string=args.filter_string,
                           keys=args.keys, tracking_uri=args.tracking_uri)
    target = args.output
    parquet = target != "-" and not target.lower().endswith(".csv")
    if parquet and not _parquet_available():
        target = str(Path(target).with_suffix(".csv"))
        parquet = False
        err(f"pyarrow is not installed: writing CSV to {target} (pip install pyarrow for Parquet)")
    points, runs = _write_pages(pages, target, parquet)
    where = "stdout" if target == "-" else target
    print(f"{points} metric points of {runs} run(s) written to {where}", file=sys.stderr)
    return EXIT_OK


def _write_pages(pages, target: str, parquet: bool) -> tuple[int, int]:
    """Write the frames to ``target`` (a temporary file renamed at the end: a failed export
    leaves no half-written file); returns (points, runs)."""
    import tempfile

    points = runs = 0
    if target == "-":
        header = True
        for frame in pages:
            frame.to_csv(sys.stdout, index=False, header=header)
            header = False
            points, runs = points + len(frame), runs + frame["run_id"].nunique()
        if header:
            print("run_id,key,step,value,timestamp")
        return points, runs
    folder = Path(target).resolve().parent
    fd, tmp = tempfile.mkstemp(prefix=".export-", dir=folder)
    os.close(fd)
    try:
        if parquet:
            import pyarrow as pa
            import pyarrow.parquet as pq

            from ..tracking.frames import empty_histories

            writer = None
            for frame in pages:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                writer = writer or pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
                points, runs = points + len(frame), runs + frame["run_id"].nunique()
            if writer is None:
                pq.write_table(pa.Table.from_pandas(empty_histories(), preserve_index=False), tmp)
            else:
                writer.close()
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as out:
                out.write("run_id,key,step,value,timestamp\n")
                for frame in pages:
                    frame.to_csv(out, index=False, header=False)
                    points, runs = points + len(frame), runs + frame["run_id"].nunique()
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return points, runs
