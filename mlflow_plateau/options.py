"""The options of a diagnosis, as one value: ``DiagnosisOptions``.

Every face (``diagnose_curves``, ``diagnose_run(s)``, ``compare_runs``, the callback, the
evaluator, Spark and the command line) takes a ``DiagnosisOptions`` or builds one from keyword
arguments (``DiagnosisOptions.of(options, **kwargs)``), so adding an option is one edit here.

The fields (``docs/design.md``, "Options"):

``monitor``, ``train_metric``  the curve diagnosed and its training partner (None: picked from
                               the metric names, see ``verdict.diagnose_curves``);
``mode``                       ``"min"`` or ``"max"`` (None: from the monitor's name);
``min_delta``                  the smallest change that counts as an improvement (>= 0);
``relative_delta``             ... as a share of the total improvement, in [0, 1) or None;
``patience``                   the EarlyStopping patience replayed on the curve (an int >= 0);
``chance``, ``num_classes``    the monitor's chance level, or the class count it follows from;
``thresholds``                 the rules' cut-offs (``Thresholds``; the defaults are the
                               documented ones).

Constructing one checks every value and raises ValueError naming the option (the check every face
shares: once per batch, before any run is read). ``num_classes`` given as ``10.0`` or a numpy
integer is kept as an int.

The options a user gave (``monitor``, ``train_metric``, ``mode``, ``num_classes``, ``chance``: the
``KEPT`` ones) are written with a run's diagnosis as the JSON tag ``plateau.options``
(``kept_tag``) and hold for its later diagnoses unless overridden (``with_kept``), so a default
run of the tool never silently flips a verdict decided with, say, ``--num-classes``. A kept value
the options would refuse (a tag edited by hand) is dropped, not failed on (``kept_from_tag``).

Nothing here imports mlflow or keras.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .rules import RuleThresholds


@dataclass(frozen=True)
class Thresholds(RuleThresholds):
    """The cut-offs behind each verdict: the rules' (``rules.RuleThresholds``) and these."""

    min_epochs: int = 3
    explode_factor: float = 10.0
    blowup_factor: float = 100.0
    data_limited_gain: float = 0.05
    saturated_gain: float = 0.01


KEPT = ("monitor", "train_metric", "mode", "num_classes", "chance")


def _check(name: str, value: Any) -> Any:
    """``value`` as the option ``name`` holds it; ValueError when the option cannot use it."""
    if name in ("monitor", "train_metric"):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be a metric name, not {value!r}")
    elif name == "mode":
        if value not in (None, "min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', not {value!r}")
    elif name == "patience":
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"patience must be an int >= 0, not {value!r}")
    elif name == "min_delta":
        if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                or not math.isfinite(value) or value < 0):
            raise ValueError(f"min_delta must be a finite number >= 0, not {value!r}")
    elif name == "relative_delta":
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                  or not 0 <= value < 1):
            raise ValueError(f"relative_delta must be in [0, 1), not {value!r}")
    elif name == "chance":
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                  or not math.isfinite(value)):
            raise ValueError(f"chance must be a finite number, not {value!r}")
    elif name == "num_classes":
        if value is None:
            return None
        whole = isinstance(value, numbers.Integral) or (
            isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not whole or value < 2:
            raise ValueError(f"num_classes must be an int >= 2, not {value!r}")
        return int(value)
    elif name == "thresholds" and not isinstance(value, Thresholds):
        raise ValueError(f"thresholds must be a Thresholds, not {type(value).__name__}")
    return value


@dataclass(frozen=True)
class DiagnosisOptions:
    """What a diagnosis is asked to do (module docstring); checked when constructed."""

    monitor: str | None = None
    train_metric: str | None = None
    mode: str | None = None
    min_delta: float = 0.0
    relative_delta: float | None = 0.01
    patience: int = 10
    chance: float | None = None
    num_classes: int | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)

    def __post_init__(self) -> None:
        for f in fields(self):
            checked = _check(f.name, getattr(self, f.name))
            if checked is not getattr(self, f.name):
                object.__setattr__(self, f.name, checked)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The options' names, as keyword arguments of every face."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def of(cls, options: DiagnosisOptions | None = None, **kwargs: Any) -> DiagnosisOptions:
        """``options`` (the defaults when None) with ``kwargs`` set; TypeError for a name that is
        not an option (naming the known ones), ValueError for a value the option refuses."""
        if "thresholds" in kwargs and kwargs["thresholds"] is None:  # None: the defaults
            kwargs = {k: v for k, v in kwargs.items() if k != "thresholds"}
        unknown = sorted(set(kwargs) - set(cls.names()))
        if unknown:
            raise TypeError(f"unknown diagnosis option(s) {', '.join(map(repr, unknown))}; known: "
                            f"{', '.join(cls.names())}")
        if options is None:
            return cls(**kwargs)
        if not isinstance(options, DiagnosisOptions):
            raise TypeError(f"options must be a DiagnosisOptions, not {type(options).__name__}")
        return replace(options, **kwargs) if kwargs else options

    def given(self) -> dict[str, Any]:
        """The kept options that are set, as ``plateau.options`` holds them."""
        return {k: getattr(self, k) for k in KEPT if getattr(self, k) is not None}

    def kept_tag(self) -> str | None:
        """The ``plateau.options`` tag value (JSON), or None when no kept option is set."""
        given = self.given()
        return json.dumps(given, sort_keys=True) if given else None

    def with_kept(self, kept: Mapping[str, Any]) -> DiagnosisOptions:
        """These options with every unset kept option filled in from ``kept`` (the values
        ``kept_from_tag`` read off a run)."""
        fill = {k: v for k, v in kept.items() if k in KEPT and getattr(self, k) is None}
        return replace(self, **fill) if fill else self

    def as_dict(self) -> dict[str, Any]:
        """The options as plain values: what a run's input digest covers (``thresholds`` only
        when they are not the defaults, so the digests of default diagnoses never change)."""
        out = {"monitor": self.monitor, "train_metric": self.train_metric, "mode": self.mode,
               "patience": self.patience, "min_delta": self.min_delta,
               "relative_delta": self.relative_delta, "num_classes": self.num_classes,
               "chance": self.chance}
        if self.thresholds != Thresholds():
            out["thresholds"] = {f.name: getattr(self.thresholds, f.name)
                                 for f in fields(self.thresholds)}
        return out


def kept_from_tag(text: str | None) -> dict[str, Any]:
    """The kept options in a ``plateau.options`` tag value; {} when none or garbled, and without
    any value the options would refuse."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    kept = {}
    for key, value in data.items():
        if key not in KEPT or value is None:
            continue
        if key in ("monitor", "train_metric") and not (isinstance(value, str) and value):
            continue
        try:
            kept[key] = _check(key, value)
        except ValueError:
            continue
    return kept


__all__ = ["KEPT", "DiagnosisOptions", "Thresholds", "kept_from_tag"]
