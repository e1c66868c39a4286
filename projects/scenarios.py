"""One function per scenario of the seed documents: build the data and model, train, log epochs.

Each function takes a ``Context`` (parsed options, resolved epochs, the run's metric buffer and
tags) and returns a ``Trained`` (the history plus extra params and summary metrics). The code
follows the documents' own snippets; where it cannot be taken literally the deviation is named
in the docstring (Keras 3 has no ``input_shape=`` on layers, no ``ImageDataGenerator``; custom
loops are wrapped in ``tf.function`` for speed, which does not change the arithmetic).

Sizes and default epochs come from two profiles: ``seed`` (the document's own, where this machine
can hold them) and ``quick`` (small enough that ``main`` runs every scenario in a few minutes).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import mlflow
import numpy as np
import psutil
import tensorflow as tf

from mlflow_plateau.tracking.store import KIND_CONTAINER, TAG_KIND

from . import data
from .mlflow_log import EpochLogger, MetricBuffer, PeakRss, log_params, log_scaling

layers = keras.layers


@dataclass
class Context:
    """What a scenario function gets: its options, its epochs and where to log."""

    options: dict[str, Any]
    epochs: int
    buffer: MetricBuffer
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def quick(self) -> bool:
        return self.options["profile"] == "quick"

    def size(self, quick: Any, seed: Any) -> Any:
        return quick if self.quick else seed


@dataclass
class Trained:
    """A scenario's result: its history (``History.history`` shape) and what else to log."""

    history: dict[str, list[float]]
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    num_classes: int | None = None
    children: list[str] = field(default_factory=list)
    scaling: Any = None


class MemoryRefused(MemoryError):
    """In-memory loading refused before allocating: the data would not fit."""

    def __init__(self, projected: int, available: int, num_images: int, shape: tuple[int, ...]) -> None:
        self.projected, self.available = projected, available
        super().__init__(
            f"memory_pressure: refusing to load {num_images:,} images of {'x'.join(map(str, shape))} "
            f"float32 into memory: that needs {projected / 1e9:.1f} GB ({projected:,} bytes) but only "
            f"{available / 1e9:.1f} GB ({available:,} bytes) is available. Use mode=streaming, or "
            "fewer/smaller images.")


DEFAULT_EPOCHS: dict[str, tuple[int, int]] = {  # scenario -> (quick, seed)
    "limited_diversity": (40, 100), "high_capacity": (40, 100), "augmentation": (10, 10),
    "memory_pressure": (5, 3), "slow_convergence": (10, 10), "small_model_large_data": (10, 10),
    "data_scaling": (10, 20), "regularization": (100, 100), "augmentation_generator": (20, 100),
    "lr_schedule": (25, 100), "complex_vs_simple": (30, 50), "limited_images": (50, 50),
    "optimizer_limits": (30, 50),
}


def _fit(ctx: Context, model: keras.Model, x: Any, y: Any, val: tuple, batch_size: int | None = 32,
         callbacks: list | None = None, shuffle: bool = True) -> dict[str, list[float]]:
    model.fit(x, y, epochs=ctx.epochs, batch_size=batch_size, validation_data=val, verbose=0,
              shuffle=shuffle, callbacks=[*(callbacks or []), EpochLogger(ctx.buffer)])
    return ctx.buffer.history


def _train_set(ctx: Context, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return data.subsample(x, y, ctx.options["fraction"], ctx.options["seed"])


# --- 000: did my training data run out? -------------------------------------------------------

def _binary_mlp(units: tuple[int, ...]) -> keras.Model:
    model = keras.Sequential([keras.Input((2,)), *[layers.Dense(u, activation="relu") for u in units],
                              layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def _noisy_binary(ctx: Context, units: tuple[int, ...]) -> Trained:
    n_train, n_val = 1000, 500  # the document's own sizes are small enough for both profiles
    x_train, y_train = data.limited_diversity_data(n_train, noise_std=0.2)
    x_val, y_val = data.limited_diversity_data(n_val, noise_std=0.2)
    x_train, y_train = _train_set(ctx, x_train, y_train)
    history = _fit(ctx, _binary_mlp(units), x_train, y_train, (x_val, y_val))
    return Trained(history, {"train_size": len(x_train), "val_size": n_val, "noise_std": 0.2,
                             "hidden_units": "-".join(map(str, units)), "batch_size": 32,
                             "label_positive_rate": round(float(y_train.mean()), 4)}, num_classes=2)


def limited_diversity(ctx: Context) -> Trained:
    """000 Example 1: Dense(16) on the 2-feature noisy-label data, 1000 train / 500 validation."""
    return _noisy_binary(ctx, (16,))


def high_capacity(ctx: Context) -> Trained:
    """000 Example 2: the same data, Dense(64)-Dense(64)."""
    return _noisy_binary(ctx, (64, 64))


def _digits(ctx: Context, flat: bool = False, one_hot: bool = False) -> tuple[np.ndarray, ...]:
    dataset = ctx.options.get("dataset", "digits")
    quick_n = (6000, 1000) if dataset == "mnist" else (None, None)
    n_train, n_val = ctx.size(quick_n, (None, None))
    x_train, y_train, x_val, y_val = data.digit_images(dataset, n_train, n_val, ctx.options["seed"])
    x_train, y_train = _train_set(ctx, x_train, y_train)
    if flat:
        x_train, x_val = x_train.reshape(len(x_train), -1), x_val.reshape(len(x_val), -1)
    if one_hot:
        y_train, y_val = keras.utils.to_categorical(y_train, 10), keras.utils.to_categorical(y_val, 10)
    return x_train, y_train, x_val, y_val


def augmentation(ctx: Context) -> Trained:
    """000 Example 3: Conv2D(16)-MaxPool-Dense(10) on 28x28 digits, with or without
    RandomRotation(0.1) + RandomTranslation(0.1, 0.1) in front (``augment``), batch 64."""
    x_train, y_train, x_val, y_val = _digits(ctx)
    augment = ctx.options["augment"]
    front = [layers.RandomRotation(0.1), layers.RandomTranslation(0.1, 0.1)] if augment else []
    model = keras.Sequential([keras.Input((28, 28, 1)), *front,
                              layers.Conv2D(16, (3, 3), activation="relu"), layers.MaxPool2D((2, 2)),
                              layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = _fit(ctx, model, x_train, y_train, (x_val, y_val), batch_size=64)
    return Trained(history, {"train_size": len(x_train), "val_size": len(x_val), "batch_size": 64},
                   num_classes=10)


# --- 001: unexpected effects of more data ------------------------------------------------------

def projected_bytes(num_images: int, image_size: int, channels: int = 3) -> int:
    """Bytes of ``num_images`` float32 images of ``image_size`` x ``image_size`` x ``channels``."""
    return num_images * image_size * image_size * channels * 4


def check_fits(num_images: int, image_size: int, available: int | None = None) -> tuple[int, int]:
    """(projected, available) bytes; raises ``MemoryRefused`` when the images would not fit."""
    projected = projected_bytes(num_images, image_size)
    available = psutil.virtual_memory().available if available is None else available
    if projected > available:
        raise MemoryRefused(projected, available, num_images, (image_size, image_size, 3))
    return projected, available


def memory_pressure(ctx: Context) -> Trained:
    """001 Example 1: a large set of random images loaded whole vs streamed with ``tf.data``.

    ``in_memory`` builds the array as the document does (``from_tensor_slices`` on one NumPy
    array; drawn directly in float32, the document's float64 temporary would triple the peak) after
    checking, before allocating, that it fits in the available memory. ``streaming`` draws each
    image inside a ``tf.data`` pipeline (stateless, seeded per image) so only a few batches exist at
    once; validation images (a fifth as many) are always streamed. The document does not train; to
    give the run a curve, a global-average-pool + Dense(1) model regresses each image's mean
    intensity (learnable exactly). Logged: the projected bytes of the training array, the available
    memory, and the peak and increase of resident memory.
    """
    o = ctx.options
    num_images = o["num_images"] or ctx.size(2000, 100_000)
    size = o["image_size"] or ctx.size(32, 256)
    num_images = max(1, round(num_images * o["fraction"]))
    n_val = max(1, num_images // 5)
    shape = (size, size, 3)
    projected = projected_bytes(num_images, size)
    available = psutil.virtual_memory().available
    rss = PeakRss()
    batch = 32

    def stream(offset: int, count: int) -> tf.data.Dataset:
        def draw(i: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            image = tf.random.stateless_uniform(shape, seed=tf.stack([tf.cast(o["seed"], tf.int64),
                                                                      i + offset]))
            return image, tf.reduce_mean(image)
        return tf.data.Dataset.range(count).map(draw, num_parallel_calls=2)

    # The validation images are always streamed: the claim is about the training array.
    val = stream(10**9, n_val)
    if o["mode"] == "in_memory":
        check_fits(num_images, size, available)
        images = np.random.default_rng(o["seed"]).random((num_images, *shape), dtype=np.float32)
        rss.sample()
        train = tf.data.Dataset.from_tensor_slices((images, images.mean(axis=(1, 2, 3))))
    else:
        train = stream(0, num_images)
    train = train.batch(batch).prefetch(2)
    val = val.batch(batch).prefetch(2)
    model = keras.Sequential([keras.Input(shape), layers.GlobalAveragePooling2D(), layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(train, validation_data=val, epochs=ctx.epochs, verbose=0,
              callbacks=[rss, EpochLogger(ctx.buffer)])
    rss.sample()
    return Trained(ctx.buffer.history,
                   {"mode": o["mode"], "num_images": num_images, "image_size": size,
                    "train_size": num_images, "val_size": n_val, "batch_size": batch},
                   {"memory/projected_bytes": float(projected),
                    "memory/available_bytes": float(available),
                    "memory/peak_rss_bytes": float(rss.peak),
                    "memory/rss_increase_bytes": float(rss.peak - rss.start)})


def _batches(x: np.ndarray, y: np.ndarray, batch: int = 32) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)  # unshuffled, as in the document


def _custom_loop(ctx: Context, model: keras.Model, optimizer: keras.optimizers.Optimizer,
                 loss_fn: keras.losses.Loss, train: tf.data.Dataset, val: tf.data.Dataset,
                 accuracy: bool) -> dict[str, list[float]]:
    """The documents' GradientTape loop; per epoch it logs the mean batch loss (what the document
    prints), the held-out ``val_loss``, and ``accuracy``/``val_accuracy`` for classifiers."""

    @tf.function
    def train_step(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = loss_fn(y, y_pred)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss, y_pred

    @tf.function
    def eval_step(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        y_pred = model(x, training=False)
        return loss_fn(y, y_pred), y_pred

    def hits(y: tf.Tensor, y_pred: tf.Tensor) -> float:
        return float(tf.reduce_sum(tf.cast(tf.argmax(y, -1) == tf.argmax(y_pred, -1), tf.float32)))

    for epoch in range(ctx.epochs):
        logs: dict[str, float] = {}
        for name, step, dataset in (("", train_step, train), ("val_", eval_step, val)):
            losses, correct, seen = [], 0.0, 0
            for x_batch, y_batch in dataset:
                loss, y_pred = step(x_batch, y_batch)
                losses.append(float(loss))
                if accuracy:
                    correct += hits(y_batch, y_pred)
                    seen += int(y_batch.shape[0])
            logs[f"{name}loss"] = sum(losses) / len(losses)
            if accuracy:
                logs[f"{name}accuracy"] = correct / seen
        ctx.buffer.add(epoch, logs)
    ctx.buffer.flush()
    return ctx.buffer.history


def slow_convergence(ctx: Context) -> Trained:
    """001 Example 2: Dense(128) regression of uniform targets on uniform inputs (10 features),
    Adam(lr=1e-5), custom GradientTape loop, batch 32. A held-out fifth (drawn after the training
    samples) gives ``val_loss``. The targets are independent of the inputs: the best MSE is 1/12."""
    n = ctx.size(10_000, 100_000)
    x, y = data.random_regression(n)
    x_val, y_val = data.random_regression(n // 5)
    x, y = _train_set(ctx, x, y)
    model = keras.Sequential([keras.Input((10,)), layers.Dense(128, activation="relu"), layers.Dense(1)])
    history = _custom_loop(ctx, model, keras.optimizers.Adam(learning_rate=0.00001),
                           keras.losses.MeanSquaredError(), _batches(x, y), _batches(x_val, y_val),
                           accuracy=False)
    return Trained(history, {"train_size": len(x), "val_size": len(x_val), "learning_rate": 1e-5,
                             "batch_size": 32})


def small_model_large_data(ctx: Context) -> Trained:
    """001 Example 3: Dense(16) classifier on 100 uniform features with uniform random labels
    (2 classes, one-hot), Adam, custom GradientTape loop, batch 32; a held-out fifth for
    validation. The labels carry no signal, so no model of any size can beat chance on them."""
    n = ctx.size(10_000, 100_000)
    x, y = data.random_labels(n)
    x_val, y_val = data.random_labels(n // 5)
    x, y = _train_set(ctx, x, y)
    model = keras.Sequential([keras.Input((100,)), layers.Dense(16, activation="relu"),
                              layers.Dense(2, activation="softmax")])
    history = _custom_loop(ctx, model, keras.optimizers.Adam(), keras.losses.CategoricalCrossentropy(),
                           _batches(x, tf.one_hot(y, depth=2)), _batches(x_val, tf.one_hot(y_val, depth=2)),
                           accuracy=True)
    return Trained(history, {"train_size": len(x), "val_size": len(x_val), "batch_size": 32},
                   num_classes=2)


# --- 002: why more data helps -------------------------------------------------------------------

def data_scaling(ctx: Context) -> Trained:
    """002: the document's loop over training sizes (default 1000/2000/4000/8000) with its model
    (Linear(10, 50)-ReLU-Linear(50, 2), cross-entropy on logits, Adam 1e-3, batch 64, shuffled),
    one nested child run per size (param ``train_size``, in the parent's experiment), validated on a
    fixed 20% split. The parent run (tag ``plateau.kind = container``: it holds no curve itself)
    gets the scaling diagnosis of each child's best ``val_loss``."""
    o = ctx.options
    parent = mlflow.active_run()
    mlflow.set_tag(TAG_KIND, KIND_CONTAINER)
    sizes = sorted({max(1, round(s * o["fraction"])) for s in o["sizes"]})
    total = max(10_000, math.ceil(max(sizes) / 0.8))
    x_pool, y_pool, x_val, y_val = data.scaling_pool(total, o["seed"])
    children, errors = [], []
    for size in sizes:
        keras.utils.set_random_seed(o["seed"])
        with mlflow.start_run(nested=True, run_name=f"data_scaling train_size={size}",
                              experiment_id=parent.info.experiment_id,
                              tags={**ctx.tags, "scenario.variant": f"data_scaling train_size={size}"}
                              ) as child:
            log_params(child.info.run_id, {"train_size": size, "val_size": len(x_val), "batch_size": 64,
                                           "epochs": ctx.epochs, "seed": o["seed"], "profile": o["profile"]})
            child_ctx = Context(o, ctx.epochs, MetricBuffer(child.info.run_id), ctx.tags)
            model = keras.Sequential([keras.Input((10,)), layers.Dense(50, activation="relu"),
                                      layers.Dense(2)])
            model.compile(optimizer=keras.optimizers.Adam(1e-3),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          metrics=["accuracy"])
            history = _fit(child_ctx, model, x_pool[:size], y_pool[:size], (x_val, y_val), batch_size=64)
        children.append(child.info.run_id)
        errors.append(min(history["val_loss"]))
    verdict = log_scaling(parent.info.run_id, children, sizes, errors)
    return Trained({}, {"sizes": ",".join(map(str, sizes)), "scaling_error": "min val_loss"},
                   num_classes=2, children=children, scaling=verdict)


# --- 003: validation converging prematurely --------------------------------------------------

def _dense_classifier(dropout: float, front: list | None = None, flat_input: bool = True) -> keras.Model:
    inputs = [keras.Input((784,))] if flat_input else [keras.Input((28, 28, 1)), *(front or []),
                                                        layers.Flatten()]
    model = keras.Sequential([*inputs, layers.Dense(128, activation="relu"),
                              *([layers.Dropout(dropout)] if dropout > 0 else []),
                              layers.Dense(10, activation="softmax")])
    return model


def regularization(ctx: Context) -> Trained:
    """003 Example 1: Dense(128)-Dropout(0.5)-Dense(10) on flattened 28x28 digits (784 inputs,
    one-hot labels), EarlyStopping(val_loss, patience=10, restore_best_weights=True), batch 32;
    ``dropout=0`` removes the Dropout layer for comparison."""
    x_train, y_train, x_val, y_val = _digits(ctx, flat=True, one_hot=True)
    rate = ctx.options["dropout"]
    model = _dense_classifier(rate)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)
    history = _fit(ctx, model, x_train, y_train, (x_val, y_val), callbacks=[stop])
    return Trained(history, {"train_size": len(x_train), "val_size": len(x_val), "batch_size": 32,
                             "early_stopping_patience": 10,
                             "stopped_epoch": stop.stopped_epoch or "none (ran all epochs)"},
                   num_classes=10)


def augmentation_generator(ctx: Context) -> Trained:
    """003 Example 2: ImageDataGenerator(rotation_range=20, width/height_shift_range=0.2,
    horizontal_flip=True) as Keras 3 preprocessing layers (RandomRotation(20/360),
    RandomTranslation(0.2, 0.2), RandomFlip("horizontal"), fill_mode "nearest" as the generator's
    default) in front of Example 1's Dense(128)-Dropout(0.5)-Dense(10) model, batch 32. The
    horizontal flip is kept as written although a mirrored digit is often another digit."""
    x_train, y_train, x_val, y_val = _digits(ctx, one_hot=True)
    front = [layers.RandomRotation(20 / 360, fill_mode="nearest"),
             layers.RandomTranslation(0.2, 0.2, fill_mode="nearest"), layers.RandomFlip("horizontal")]
    model = _dense_classifier(0.5, front, flat_input=False)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = _fit(ctx, model, x_train, y_train, (x_val, y_val))
    return Trained(history, {"train_size": len(x_train), "val_size": len(x_val), "batch_size": 32,
                             "rotation_degrees": 20, "shift": 0.2, "horizontal_flip": True},
                   num_classes=10)


def lr_schedule(ctx: Context) -> Trained:
    """003 Example 3: Example 1's model with Adam(0.001) held for 10 epochs, then multiplied by
    exp(-0.1) every epoch (LearningRateScheduler; the rate is logged as ``learning_rate``)."""
    x_train, y_train, x_val, y_val = _digits(ctx, flat=True, one_hot=True)

    def scheduler(epoch: int, lr: float) -> float:
        return lr if epoch < 10 else float(lr * math.exp(-0.1))

    model = _dense_classifier(0.5)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    history = _fit(ctx, model, x_train, y_train, (x_val, y_val),
                   callbacks=[keras.callbacks.LearningRateScheduler(scheduler)])
    return Trained(history, {"train_size": len(x_train), "val_size": len(x_val), "batch_size": 32,
                             "initial_learning_rate": 0.001, "constant_epochs": 10, "decay": "exp(-0.1)"},
                   num_classes=10)


# --- 004: curves drop and plateau after X epochs -------------------------------------------------

def complex_vs_simple(ctx: Context) -> Trained:
    """004 Example 1: y = 2 x0 + 3 x1 + noise; a 64-128-64 MLP (``model=complex``) or a single
    Dense(1) (``model=simple``), Adam, MSE, 1000 train / 200 validation, batch 32."""
    x_train, y_train, x_val, y_val = data.linear_data(1000, 200)
    x_train, y_train = _train_set(ctx, x_train, y_train)
    hidden = [layers.Dense(64, activation="relu"), layers.Dense(128, activation="relu"),
              layers.Dense(64, activation="relu")] if ctx.options["model"] == "complex" else []
    model = keras.Sequential([keras.Input((2,)), *hidden, layers.Dense(1)])
    model.compile(optimizer="adam", loss="mean_squared_error")
    history = _fit(ctx, model, x_train, y_train, (x_val, y_val))
    return Trained(history, {"train_size": len(x_train), "val_size": 200, "batch_size": 32})


def limited_images(ctx: Context) -> Trained:
    """004 Example 2: 100 random 32x32x3 images with 5 random classes (20 for validation),
    Conv2D(32)-MaxPool-Dense(10)-Dense(5), Adam, batch 32. Labels are random: nothing to learn."""
    x_train, y_train, x_val, y_val = data.random_images(100, 20)
    x_train, y_train = _train_set(ctx, x_train, y_train)
    model = keras.Sequential([keras.Input((32, 32, 3)), layers.Conv2D(32, (3, 3), activation="relu"),
                              layers.MaxPooling2D((2, 2)), layers.Flatten(),
                              layers.Dense(10, activation="relu"), layers.Dense(5, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = _fit(ctx, model, x_train, y_train, (x_val, y_val))
    return Trained(history, {"train_size": len(x_train), "val_size": 20, "batch_size": 32},
                   num_classes=5)


def optimizer_limits(ctx: Context) -> Trained:
    """004 Example 3: y = 2 x + noise with a single Dense(1), SGD(0.01) (``optimizer=sgd``) or
    Adam with its defaults (``optimizer=adam``), MSE, 1000 train / 200 validation, batch 32."""
    x_train, y_train, x_val, y_val = data.line_data(1000, 200)
    x_train, y_train = _train_set(ctx, x_train, y_train)
    model = keras.Sequential([keras.Input((1,)), layers.Dense(1)])
    optimizer = keras.optimizers.SGD(learning_rate=0.01) if ctx.options["optimizer"] == "sgd" else "adam"
    model.compile(optimizer=optimizer, loss="mean_squared_error")
    history = _fit(ctx, model, x_train, y_train, (x_val, y_val))
    return Trained(history, {"train_size": len(x_train), "val_size": 200, "batch_size": 32})


SCENARIOS: dict[str, Callable[[Context], Trained]] = {
    "limited_diversity": limited_diversity, "high_capacity": high_capacity,
    "augmentation": augmentation, "memory_pressure": memory_pressure,
    "slow_convergence": slow_convergence, "small_model_large_data": small_model_large_data,
    "data_scaling": data_scaling, "regularization": regularization,
    "augmentation_generator": augmentation_generator, "lr_schedule": lr_schedule,
    "complex_vs_simple": complex_vs_simple, "limited_images": limited_images,
    "optimizer_limits": optimizer_limits,
}
