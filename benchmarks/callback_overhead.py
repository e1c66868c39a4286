"""What does ``PlateauCallback`` add to a Keras ``fit``? Paired runs, alternated, median ratio.

The same small Keras fit (a seeded MLP on synthetic data) runs under ``mlflow.keras.autolog()``
alone (A) and under autolog with ``PlateauCallback()`` (B), ``--reps`` pairs, alternating which of
the pair goes first so drift on a shared machine hits both sides alike. Each timing is the wall
time of the ``model.fit`` call, which includes autolog's work and the callback's diagnosis at
``on_train_end``. The artifacts (``curves.png``/``report.html`` with ``--artifacts all``) are
written on the callback's background thread after ``fit`` returns; the benchmark waits for that
write before the next timed fit, so it never overlaps the other side of a pair, and reports how
long it ran on. A warm-up pair first pays TensorFlow's one-time tracing. Prints every pair, the
median of the per-pair ratios B/A (target: at most 1.03), and how much of B's time the
callback's ``on_train_end`` took.

    python benchmarks/callback_overhead.py [--reps 7] [--epochs 30] [--samples 4000]
                                           [--artifacts all|json|none] [--log-models]
                                           [--stopping]

``--stopping`` times ``ForecastStopping`` instead: A is autolog with Keras's
``EarlyStopping(patience=5, restore_best_weights=True)``, B the same with
``ForecastStopping(patience=5, relative_delta=0)`` (``--patience``), on a model learning slowly
(Adam at 3e-5) so that validation improves for many epochs. With no tolerance the
forecast never stops first, so both stop at the same epoch by the same patience rule (the
benchmark checks it), and B forecasts the curve at every epoch from the 5th on. Printed: the
paired ratio, and the share of B's fit spent in ``ForecastStopping.on_epoch_end``, timed
directly (steadier than the ratio on a busy machine).

The store is a fresh SQLite database in a temp directory (or ``--uri``). Autolog logs models
only with ``--log-models``: saving a model costs seconds of noise that is the same on both sides.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _data(samples: int, features: int = 20):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, features)).astype("float32")
    w = rng.normal(size=features)
    y = ((x @ w + rng.normal(0, 2.0, samples)) > 0).astype("float32")
    return x, y


def _model(features: int, learning_rate: float = 1e-3):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((features,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(learning_rate), "binary_crossentropy",
                  metrics=["accuracy"])
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=7, help="timed pairs (default 7)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--artifacts", choices=["all", "json", "none"], default="all")
    parser.add_argument("--log-models", action="store_true", help="let autolog log the model")
    parser.add_argument("--uri", help="tracking URI (default: a temp SQLite store)")
    parser.add_argument("--stopping", action="store_true",
                        help="time ForecastStopping against keras EarlyStopping instead")
    parser.add_argument("--patience", type=int, default=5,
                        help="patience of both stopping callbacks with --stopping (default 5)")
    args = parser.parse_args(argv)

    import mlflow

    from mlflow_plateau import PlateauCallback

    tmp = tempfile.TemporaryDirectory(prefix="plateau-callback-bench-")
    os.chdir(tmp.name)  # autolog's default artifact root (./mlruns) lands in the temp dir
    mlflow.set_tracking_uri(args.uri or f"sqlite:///{Path(tmp.name) / 'mlflow.db'}")
    mlflow.set_experiment("callback-overhead")
    mlflow.keras.autolog(log_models=args.log_models, log_datasets=False, silent=True)

    x, y = _data(args.samples)
    end_times: list[float] = []

    class TimedCallback(PlateauCallback):
        def on_train_end(self, logs=None):
            t0 = time.perf_counter()
            super().on_train_end(logs)
            end_times.append(time.perf_counter() - t0)

    write_times: list[float] = []

    stopped: dict[bool, list[int]] = {False: [], True: []}

    def fit_stopping(with_callback: bool) -> float:
        import keras

        from mlflow_plateau import ForecastStopping

        class TimedStopping(ForecastStopping):
            def on_epoch_end(self, epoch, logs=None):
                t0 = time.perf_counter()
                super().on_epoch_end(epoch, logs)
                end_times[-1] += time.perf_counter() - t0

        # A slow learner, so validation improves for many epochs and the forecast runs at each.
        model = _model(x.shape[1], learning_rate=3e-5)
        if with_callback:
            end_times.append(0.0)
        stop = (TimedStopping(patience=args.patience, relative_delta=0.0) if with_callback else
                keras.callbacks.EarlyStopping(patience=args.patience, restore_best_weights=True))
        t0 = time.perf_counter()
        history = model.fit(x, y, validation_split=0.2, epochs=args.epochs,
                            batch_size=args.batch_size, verbose=0, callbacks=[stop])
        elapsed = time.perf_counter() - t0
        stopped[with_callback].append(len(history.history["loss"]))
        return elapsed

    def fit(with_callback: bool) -> float:
        if args.stopping:
            return fit_stopping(with_callback)
        model = _model(x.shape[1])
        plateau = TimedCallback(artifacts=args.artifacts, verbose=0) if with_callback else None
        t0 = time.perf_counter()
        # A fresh list each call: mlflow.keras.autolog appends its MlflowCallback to it in place.
        model.fit(x, y, validation_split=0.2, epochs=args.epochs, batch_size=args.batch_size,
                  verbose=0, callbacks=[plateau] if plateau else [])
        elapsed = time.perf_counter() - t0
        if plateau is not None:
            # The diagnosis is written on a background thread; let it finish before the next
            # timed fit so it never overlaps (and slows) the other side of a pair.
            plateau.wait()
            write_times.append(time.perf_counter() - t0 - elapsed)
        return elapsed

    side = (f"EarlyStopping vs ForecastStopping (patience={args.patience})" if args.stopping
            else f"PlateauCallback(artifacts={args.artifacts!r})")
    print(f"Keras fit: {args.samples} samples, {args.epochs} epochs, batch {args.batch_size}; "
          f"autolog (log_models={args.log_models}); {side}", file=sys.stderr)
    fit(False), fit(True)  # warm-up: tracing, imports, store creation
    end_times.clear()
    write_times.clear()
    ratios, alone, paired = [], [], []
    last_two = ("on_epoch_end s", "fit s") if args.stopping else \
        ("on_train_end s", "write after fit s")
    print(f"{'pair':>4}  {'autolog s':>10}  {'+callback s':>11}  {'ratio':>6}  "
          f"{last_two[0]:>14}  {last_two[1]:>17}")
    for rep in range(args.reps):
        if rep % 2 == 0:
            a = fit(False)
            b = fit(True)
        else:
            b = fit(True)
            a = fit(False)
        alone.append(a)
        paired.append(b)
        ratios.append(b / a)
        last = b if args.stopping else write_times[-1]  # --stopping: the fit timed on_epoch_end
        print(f"{rep + 1:>4}  {a:>10.3f}  {b:>11.3f}  {b / a:>6.3f}  {end_times[-1]:>14.3f}  "
              f"{last:>17.3f}")
    median = statistics.median(ratios)
    if args.stopping:
        same = stopped[False][1:] == stopped[True][1:]
        print(f"\nepochs trained: EarlyStopping {stopped[False][1:]}, ForecastStopping "
              f"{stopped[True][1:]} ({'the same' if same else 'DIFFERENT: the ratio is not fair'})")
        print(f"median ratio ForecastStopping / EarlyStopping: {median:.3f} "
              f"({(median - 1) * 100:+.1f}%; target <= +3.0%)")
        shares = [e / f for e, f in zip(end_times, paired, strict=True)]
        print(f"ForecastStopping.on_epoch_end: median {statistics.median(shares):.2%} of the fit "
              f"({1000 * statistics.median(end_times):.0f} ms per fit of "
              f"{statistics.median(paired):.2f} s)")
        tmp.cleanup()
        return 0
    print(f"\nmedian ratio (autolog + PlateauCallback) / autolog alone: {median:.3f} "
          f"({(median - 1) * 100:+.1f}%; target <= +3.0%)")
    print(f"median fit time: autolog {statistics.median(alone):.3f} s, "
          f"+callback {statistics.median(paired):.3f} s; median on_train_end "
          f"{statistics.median(end_times):.3f} s; background write finished "
          f"{statistics.median(write_times):.3f} s after fit returned (median)")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
