"""Offline datasets for the scenarios, built as the seed documents build them.

Nothing here downloads. The synthetic generators reproduce the documents' code line for line,
drawing from NumPy's global generator, which ``keras.utils.set_random_seed`` seeds before every
scenario (the documents call ``np.random`` directly, so the draws are theirs exactly). Digit
images come from scikit-learn's bundled ``load_digits`` (8x8, 1,797 images) resized to 28x28 as
the MNIST stand-in, or from the real MNIST file when it is cached at
``$KERAS_HOME/datasets/mnist.npz`` (``~/.keras/datasets/mnist.npz`` by default).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

DATASETS = ("digits", "mnist")


def limited_diversity_data(num_samples: int, noise_std: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Document 000's ``create_data``, as written.

    Note the label construction: ``(sum > 10) + N(0, noise_std)`` clipped to [0, 1] and cast to
    int truncates every class-1 label whose noise is negative down to 0, so about half of class 1
    is relabelled 0 (class 0 stays 0 unless the noise exceeds 1). The best achievable accuracy is
    therefore about 0.75, not 1.0: the "limited diversity" data is really heavily label-noised.
    """
    x = np.random.rand(num_samples, 2) * 10  # range 0-10
    y = (x[:, 0] + x[:, 1] > 10) + np.random.normal(0, noise_std, num_samples)
    y = np.clip(y, 0, 1).astype(int)  # binary classification
    return x, y


def linear_data(n_train: int, n_val: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Document 004 Example 1: ``y = 2 x0 + 3 x1 + N(0, 0.1)`` on uniform 2-D inputs."""
    x_train = np.random.rand(n_train, 2)
    y_train = 2 * x_train[:, 0] + 3 * x_train[:, 1] + np.random.normal(0, 0.1, n_train)
    x_val = np.random.rand(n_val, 2)
    y_val = 2 * x_val[:, 0] + 3 * x_val[:, 1] + np.random.normal(0, 0.1, n_val)
    return x_train, y_train, x_val, y_val


def line_data(n_train: int, n_val: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Document 004 Example 3: ``y = 2 x + N(0, 0.1)`` on uniform 1-D inputs."""
    x_train = np.random.rand(n_train, 1)
    y_train = 2 * x_train[:, 0] + np.random.normal(0, 0.1, n_train)
    x_val = np.random.rand(n_val, 1)
    y_val = 2 * x_val[:, 0] + np.random.normal(0, 0.1, n_val)
    return x_train, y_train, x_val, y_val


def random_images(n_train: int, n_val: int, classes: int = 5,
                  shape: tuple[int, ...] = (32, 32, 3)) -> tuple[np.ndarray, ...]:
    """Document 004 Example 2: uniform random images with uniform random labels (nothing to learn)."""
    x_train = np.random.rand(n_train, *shape)
    y_train = np.random.randint(0, classes, n_train)
    x_val = np.random.rand(n_val, *shape)
    y_val = np.random.randint(0, classes, n_val)
    return x_train, y_train, x_val, y_val


def random_regression(num_samples: int, input_dim: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Document 001 Example 2: uniform inputs and uniform targets, independent of each other.

    The best possible mean squared error is the targets' variance, 1/12 ~ 0.0833.
    """
    x = np.random.rand(num_samples, input_dim).astype(np.float32)
    y = np.random.rand(num_samples, 1).astype(np.float32)
    return x, y


def random_labels(num_samples: int, input_dim: int = 100, classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Document 001 Example 3: uniform inputs with uniform random integer labels."""
    x = np.random.rand(num_samples, input_dim).astype(np.float32)
    y = np.random.randint(0, classes, size=(num_samples,)).astype(np.int32)
    return x, y


def scaling_pool(total: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Document 002's "hypothetical dataset": 10 features, 2 classes, ``total`` samples, 80/20 split.

    The document leaves ``my_dataset`` undefined; scikit-learn's ``make_classification`` (Gaussian
    clusters on hypercube vertices, 5 informative features, 1% flipped labels) stands in: a
    non-linear task on which a Dense(50) network keeps gaining from more samples for a while.
    """
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=total, n_features=10, n_informative=5, n_redundant=2,
                               n_classes=2, n_clusters_per_class=3, flip_y=0.01, random_state=seed)
    split = int(total * 0.8)
    return (x[:split].astype(np.float32), y[:split], x[split:].astype(np.float32), y[split:])


def mnist_path() -> Path:
    """Where ``keras.datasets.mnist.load_data`` caches MNIST."""
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return home / "datasets" / "mnist.npz"


def digit_images(dataset: str, n_train: int | None, n_val: int | None, seed: int) -> tuple[np.ndarray, ...]:
    """28x28x1 float32 digit images in [0, 1] and integer labels: (x_train, y_train, x_val, y_val).

    ``dataset="digits"``: scikit-learn's ``load_digits`` resized (bilinear) to 28x28, shuffled with
    ``seed`` and split (default 2/3 train). ``dataset="mnist"``: the cached MNIST file, read
    directly so that nothing is ever downloaded; its own train/test split is kept. ``n_train`` /
    ``n_val`` take the first that many of each split (None = all).
    """
    if dataset == "mnist":
        path = mnist_path()
        if not path.is_file():
            raise FileNotFoundError(f"dataset=mnist needs the cached file {path} (it is written by "
                                    "keras.datasets.mnist.load_data()); nothing is downloaded at "
                                    "run time. Use dataset=digits for the bundled stand-in.")
        with np.load(path) as f:
            x_train, y_train, x_val, y_val = f["x_train"], f["y_train"], f["x_test"], f["y_test"]
        x_train = (x_train.astype("float32") / 255.0)[..., np.newaxis]
        x_val = (x_val.astype("float32") / 255.0)[..., np.newaxis]
    elif dataset == "digits":
        import tensorflow as tf
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = digits.images.astype("float32")[..., np.newaxis] / 16.0
        images = tf.image.resize(images, (28, 28)).numpy().clip(0.0, 1.0)
        order = np.random.default_rng(seed).permutation(len(images))
        images, labels = images[order], digits.target[order]
        split = (2 * len(images)) // 3
        x_train, y_train, x_val, y_val = images[:split], labels[:split], images[split:], labels[split:]
    else:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    return x_train[:n_train], y_train[:n_train], x_val[:n_val], y_val[:n_val]


def subsample(x: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``round(fraction * n)`` samples of a seeded permutation (at least one)."""
    if fraction >= 1.0:
        return x, y
    n = max(1, round(fraction * len(x)))
    keep = np.random.default_rng(seed + 7919).permutation(len(x))[:n]
    return x[keep], y[keep]
