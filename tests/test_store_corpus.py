"""benchmarks/store_corpus.py: reader pictures are drawn only for corpus rows whose run folder
is in the checkout, so that a missing corpus part never becomes an empty picture to judge."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import store_corpus

HEADER = "dir\trepo\tcommit\tstore_path\texperiment_id\trun_id\tframework\tmetrics\tmax_points\tnotes\n"


def test_plots_skip_rows_whose_folder_is_absent(tmp_path):
    root = tmp_path / "real_stores"
    metrics = root / "P01_x__y" / "mlruns" / "7" / "aaaa" / "metrics"
    metrics.mkdir(parents=True)
    (metrics / "val_loss").write_text("".join(f"{1000 + i} {1.0 / (i + 1)} {i}\n" for i in range(5)))
    (root / "SOURCES_P.tsv").write_text(
        HEADER
        + "P01_x__y\tx/y\t0\tmlruns\t7\taaaa\tpytorch_loop\tval_loss\t5\t\n"
        + "P02_x__z\tx/z\t0\tmlruns\t3\tbbbb\tpytorch_loop\tval_loss\t5\tfolder kept elsewhere\n")

    index, absent = store_corpus.draw_plots(tmp_path / "plots", root)

    assert index == {"run001": "P01_x__y/aaaa"}
    assert absent == ["P02_x__z/bbbb"]
    assert (tmp_path / "plots" / "run001.png").stat().st_size > 0
    assert not (tmp_path / "plots" / "run002.png").exists()
    assert json.loads((tmp_path / "plots" / "index.json").read_text()) == index
