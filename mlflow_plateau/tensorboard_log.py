"""TensorBoard event files (what Keras's ``TensorBoard`` callback writes) read into curves.

``read_tensorboard(path)`` takes a log dir or one ``events.out.tfevents.*`` file and returns
``[(run, {name: Curve})]``, one entry per run the path holds:

- Keras writes a run as ``<logdir>/train/events...`` and ``<logdir>/validation/events...``, the
  same tags in both (``epoch_loss``, ``epoch_accuracy``, at step = 0-based epoch). A folder named
  ``train``/``training`` gives the names as they are, one named ``validation``/``val``/``valid``/
  ``eval`` gives them a ``val_`` prefix, so the curves are ``loss``/``val_loss``,
  ``accuracy``/``val_accuracy`` (``curves.metric_role``); any other folder below the path
  prefixes its relative path (``test/loss``). Keras's ``epoch_`` prefix is dropped.
- The folders that hold a ``train``/``validation`` pair (or event files directly) are the runs:
  ``logs/`` with ``logs/train`` and ``logs/validation`` is one run (named ``None``), a
  ``logs/fit/<time>/train`` per training makes one run per ``fit/<time>``.
- Per-batch series are not epoch curves and are left out: ``batch_*`` tags and Keras's
  ``evaluation_*_vs_iterations`` (validation at the global step). Only scalar summaries are read,
  as the ``scalars`` of old writers and as the one-value ``tensors`` that TF 2 / Keras 3 write
  (plugin ``scalars``); graphs, histograms and images are ignored.
- A step logged twice (a training resumed into the same dir) keeps the newest value by wall time,
  as ``Curve.from_points`` does for MLflow timestamps.

tensorboard's own reader does the parsing (``EventAccumulator`` with every event kept); it is
imported only here, and its absence is a ValueError saying ``pip install tensorboard``. Where
TensorFlow is installed, that reader imports it (seconds) for its file access unless
``without_tensorflow()`` was called first: the ``curves`` command does when it is the process
(``main()`` reading ``sys.argv``), not when called in a process that may train afterwards.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .curves import Curve

_TRAIN_DIRS = ("train", "training")
_VAL_DIRS = ("validation", "val", "valid", "eval", "evaluation")


def is_event_file(path: Path) -> bool:
    """Whether ``path`` is named like a TensorBoard event file (``events.out.tfevents.*``)."""
    return "tfevents" in path.name


def without_tensorflow() -> None:
    """Make tensorboard read files with its own TF stub instead of importing TensorFlow.

    Only for a process that reads event files and trains nothing (the ``curves`` command run as
    itself): importing TensorFlow takes seconds, and the stub reads local files the same.
    tensorboard's switch is the presence of the module ``tensorboard.compat.notf``, and its
    choice holds for the rest of the process: Keras's ``TensorBoard`` callback would then fail
    ("cannot import tensorflow 2.0 API"). Nothing is done once TensorFlow is imported.
    """
    import sys
    import types

    if "tensorflow" in sys.modules or "tensorboard.compat.notf" in sys.modules:
        return
    sys.modules["tensorboard.compat.notf"] = types.ModuleType("tensorboard.compat.notf")


def _accumulator_class():
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        raise ValueError("reading TensorBoard event files needs tensorboard: "
                         "pip install tensorboard") from None
    return EventAccumulator


def _points(source: Path) -> dict[str, tuple[list[int], list[float], list[float]]]:
    """tag -> (steps, values, wall times) of the scalar summaries in ``source`` (a file, or a
    folder whose event files are read together)."""
    from tensorboard.util import tensor_util

    acc = _accumulator_class()(str(source), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    out: dict[str, tuple[list[int], list[float], list[float]]] = {}
    for tag in tags.get("scalars", []):
        events = acc.Scalars(tag)
        out[tag] = ([e.step for e in events], [e.value for e in events],
                    [e.wall_time for e in events])
    for tag in tags.get("tensors", []):
        if acc.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
            continue  # Keras's model graph ("keras"), text, ...: not a curve
        steps, values, times = out.setdefault(tag, ([], [], []))
        for e in acc.Tensors(tag):
            value = np.asarray(tensor_util.make_ndarray(e.tensor_proto), dtype=np.float64)
            if value.size == 1:
                steps.append(e.step)
                values.append(float(value.reshape(-1)[0]))
                times.append(e.wall_time)
    return out


def _curve_name(tag: str, prefix: str) -> str | None:
    """The curve's name for a tag written in a folder whose names take ``prefix``; None for a
    per-batch series."""
    if tag.startswith("batch_") or tag.endswith("_vs_iterations"):
        return None
    if tag.startswith("epoch_") and len(tag) > len("epoch_"):
        tag = tag[len("epoch_"):]
    return prefix + tag


def _source(folder: Path, root: Path) -> tuple[str | None, str]:
    """(run, name prefix) of the event files in ``folder``, below (or at) the ``root`` given."""
    if folder == root:  # the events lie in the folder given: its own name says their role
        role = root.name.lower()
        return None, "val_" if role in _VAL_DIRS else ""
    parts = folder.relative_to(root).parts
    if parts[-1].lower() in _TRAIN_DIRS + _VAL_DIRS:
        run = "/".join(parts[:-1]) or None
        return run, ("val_" if parts[-1].lower() in _VAL_DIRS else "")
    return "/".join(parts), ""


def read_tensorboard(path: str | Path) -> list[tuple[str | None, dict[str, Curve]]]:
    """The runs of a TensorBoard log dir or event file, each as name -> Curve (module doc).

    Raises ValueError naming the problem: no event file, no scalar in them, tensorboard missing.
    """
    path = Path(path)
    if path.is_dir():
        folders = sorted({f.parent for f in path.rglob("*tfevents*") if f.is_file()})
        if not folders:
            raise ValueError("no TensorBoard event file (events.out.tfevents.*) in this folder")
        sources = [(folder, _source(folder, path)) for folder in folders]
    else:
        # One event file: its folder's name says whether it holds training or validation.
        sources = [(path, _source(path.parent, path.parent))]
    runs: dict[str | None, dict[str, Curve]] = {}
    for source, (run, prefix) in sources:
        curves = runs.setdefault(run, {})
        for tag, (steps, values, times) in sorted(_points(source).items()):
            name = _curve_name(tag, prefix)
            if name is None or not steps:
                continue
            label = f"run {run}: " if run else ""
            try:
                curves[name] = Curve.from_points(name, steps, values, order=times)
            except ValueError as exc:
                raise ValueError(f"{label}{exc}") from None
    runs = {run: curves for run, curves in runs.items() if curves}
    if not runs:
        raise ValueError("the TensorBoard events hold no scalar curve (epoch_loss, ...)")
    return list(runs.items())
