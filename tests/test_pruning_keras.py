"""ForecastStopping(prune_against_experiment=True) with real Keras on a real SQLite store."""

import mlflow
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from mlflow_plateau.callback import ForecastStopping  # noqa: E402

pytestmark = pytest.mark.slow


def _fit(best_logged: float | None, tmp_path) -> ForecastStopping:
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    mlflow.set_experiment("sweep")
    if best_logged is not None:
        with mlflow.start_run():
            mlflow.log_metric("best/val_loss", best_logged)
    rng = np.random.default_rng(0)
    x = rng.random((200, 2))
    y = 2 * x[:, 0] + 3 * x[:, 1] + 5 + rng.normal(0, 0.1, 200)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(1e-4), loss="mse")  # far too slow: stays bad
    cb = ForecastStopping(patience=100, prune_against_experiment=True, restore_best_weights=False)
    with mlflow.start_run():
        model.fit(x[:150], y[:150], validation_data=(x[150:], y[150:]), epochs=40, verbose=0,
                  callbacks=[cb])
    return cb


def test_a_run_that_cannot_beat_the_experiment_best_is_pruned(tmp_path):
    cb = _fit(0.01, tmp_path)
    assert cb.experiment_best == pytest.approx(0.01)
    assert cb.stop_reason == "pruned"
    assert 9 <= cb.stopped_epoch < 39  # 10 epochs seen (0..9) before any pruning


def test_without_a_finished_run_to_beat_nothing_is_pruned(tmp_path):
    cb = _fit(None, tmp_path)
    assert cb.experiment_best is None
    assert cb.stop_reason != "pruned"
