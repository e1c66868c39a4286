"""Record real Keras sweeps for ``pruning_replay.py``: per-epoch histories into benchmarks/data/sweeps/.

Two sweeps of small MLPs on bundled, offline data (no downloads), each over the grid
learning rate x width x L2 (3 x 3 x 2 = 18 trials), 40 epochs, full validation history:

- ``digits``: scikit-learn's ``load_digits`` (8x8, 1,797 images), 70/30 split, softmax, monitor
  ``val_loss``;
- ``linear``: ``projects.data.linear_data`` (document 004 example 1), 400/200, MSE ``val_loss``.

One CSV per sweep: columns ``trial, lr, width, l2, epoch, loss, val_loss``. Run once:
``python benchmarks/record_sweeps.py`` (a few minutes on one core); seeds fixed.
"""

from __future__ import annotations

import csv
import itertools
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "data" / "sweeps"
EPOCHS = 40
GRID = list(itertools.product((1e-4, 1e-3, 1e-2), (8, 32, 128), (0.0, 1e-3)))


def _data(name: str) -> tuple[np.ndarray, ...]:
    sys.path.insert(0, str(ROOT))
    np.random.seed(0)
    if name == "digits":
        from sklearn.datasets import load_digits
        d = load_digits()
        x = d.data / 16.0
        idx = np.random.permutation(len(x))
        cut = int(0.7 * len(x))
        return x[idx[:cut]], d.target[idx[:cut]], x[idx[cut:]], d.target[idx[cut:]]
    from projects.data import linear_data
    return linear_data(400, 200)


def record(name: str) -> Path:
    import keras
    xt, yt, xv, yv = _data(name)
    classes = 10 if name == "digits" else None
    path = OUT / f"{name}.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["trial", "lr", "width", "l2", "epoch", "loss", "val_loss"])
        for trial, (lr, width, l2) in enumerate(GRID):
            keras.utils.set_random_seed(trial)
            reg = keras.regularizers.L2(l2) if l2 else None
            model = keras.Sequential([keras.Input((xt.shape[1],)),
                                      keras.layers.Dense(width, activation="relu", kernel_regularizer=reg),
                                      keras.layers.Dense(classes or 1,
                                                         activation="softmax" if classes else None)])
            model.compile(optimizer=keras.optimizers.Adam(lr),
                          loss="sparse_categorical_crossentropy" if classes else "mse")
            h = model.fit(xt, yt, validation_data=(xv, yv), epochs=EPOCHS, batch_size=64, verbose=0).history
            for e in range(EPOCHS):
                w.writerow([trial, lr, width, l2, e, f"{h['loss'][e]:.6g}", f"{h['val_loss'][e]:.6g}"])
            print(name, trial, lr, width, l2, min(h["val_loss"]), flush=True)
    return path


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for n in ("digits", "linear"):
        record(n)
