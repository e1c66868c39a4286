"""Parameter parsing and validation for the entry points.

MLflow passes every ``-P name=value`` through as text and does not check the ``int`` / ``float``
types declared in ``MLproject``, so each value is parsed here, before any data is built or any
model trained; a bad value raises ``ParamError`` naming the entry point, the parameter, what it
must be and what it got.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

PROFILES = ("quick", "seed")


class ParamError(ValueError):
    """A parameter value that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Param:
    """One parameter: how to parse its text, its default, and what it must be (for messages)."""

    parse: Callable[[str], Any]
    default: Any
    expects: str


def _int(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text.strip())
        if value < minimum:
            raise ValueError
        return value
    return parse


def _rate(text: str) -> float:
    value = float(text.strip())
    if not 0.0 <= value < 1.0:  # also rejects NaN
        raise ValueError
    return value


def _choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in options:
            raise ValueError
        return value
    return parse


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError


def _list(item: Callable[[str], Any]) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        parts = [p for p in text.replace(";", ",").split(",") if p.strip()]
        if not parts:
            raise ValueError
        return tuple(item(p) for p in parts)
    return parse


def _fraction(text: str) -> float:
    text = text.strip()
    if "/" in text:
        num, den = text.split("/", 1)
        value = float(num) / float(den)
    else:
        value = float(text)
    if not 0 < value <= 1:
        raise ValueError
    return value


BOOL = "true or false (also 1/0, yes/no)"
COMMON: dict[str, Param] = {
    "seed": Param(_int(0), 0, "a whole number >= 0"),
    "epochs": Param(_int(0), 0, "a whole number >= 0 (0 or empty = the profile's default)"),
    "profile": Param(_choice(*PROFILES), "quick", f"one of {', '.join(PROFILES)}"),
    "fraction": Param(_fraction, 1.0, "a fraction of the training set in (0, 1], e.g. 0.25 or 1/4"),
    "diagnose": Param(_bool, True, BOOL),
}
DATASET = Param(_choice("digits", "mnist"), "digits", "one of digits, mnist")

SCENARIO_PARAMS: dict[str, dict[str, Param]] = {
    "limited_diversity": {},
    "high_capacity": {},
    "augmentation": {"augment": Param(_bool, True, BOOL), "dataset": DATASET},
    "memory_pressure": {
        "mode": Param(_choice("in_memory", "streaming"), "streaming", "one of in_memory, streaming"),
        "num_images": Param(_int(0), 0, "a whole number >= 0 (0 = the profile's default)"),
        "image_size": Param(_int(0), 0, "a whole number of pixels >= 0 (0 = the profile's default)"),
    },
    "slow_convergence": {},
    "small_model_large_data": {},
    "data_scaling": {"sizes": Param(_list(_int(1)), (1000, 2000, 4000, 8000),
                                    "comma-separated whole numbers >= 1, e.g. 1000,2000,4000")},
    "regularization": {"dropout": Param(_rate, 0.5, "a number in [0, 1)"),
                       "dataset": DATASET},
    "augmentation_generator": {"dataset": DATASET},
    "lr_schedule": {"dataset": DATASET},
    "complex_vs_simple": {"model": Param(_choice("complex", "simple"), "complex",
                                         "one of complex, simple")},
    "limited_images": {},
    "optimizer_limits": {"optimizer": Param(_choice("sgd", "adam"), "sgd", "one of sgd, adam")},
}

SUITE_PARAMS: dict[str, dict[str, Param]] = {
    "main": {"seed": COMMON["seed"], "epochs": COMMON["epochs"], "profile": COMMON["profile"],
             "experiment": Param(str, "", "an experiment name (empty: the one mlflow run was given)"),
             "only": Param(_list(str), (), "comma-separated scenario names (empty = all)")},
    "learning_curve": {**{k: COMMON[k] for k in ("seed", "epochs", "profile", "diagnose")},
                       "scenario": Param(_choice(*SCENARIO_PARAMS), "limited_diversity",
                                         f"one of {', '.join(SCENARIO_PARAMS)}"),
                       "fractions": Param(_list(_fraction), (0.125, 0.25, 0.5, 1.0),
                                          "comma-separated fractions in (0, 1], e.g. 1/8,1/4,1/2,1")},
}


def parse_params(entry: str, raw: Mapping[str, str | None], spec: Mapping[str, Param]) -> dict[str, Any]:
    """Parse ``raw`` text values against ``spec``; missing or empty values take the default.

    Raises ``ParamError`` for an unknown name or a value that does not parse, before anything runs.
    """
    unknown = sorted(set(raw) - set(spec))
    if unknown:
        raise ParamError(f"{entry}: unknown parameter(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(spec))}")
    values: dict[str, Any] = {}
    for name, param in spec.items():
        text = raw.get(name)
        if text is None or str(text).strip() == "":
            values[name] = param.default
            continue
        try:
            values[name] = param.parse(str(text))
        except (ValueError, ZeroDivisionError):
            raise ParamError(f"{entry}: parameter {name!r} must be {param.expects}; "
                             f"got {text!r}") from None
    return values


def scenario_spec(scenario: str) -> dict[str, Param]:
    """The full parameter spec of one scenario: the common ones plus its own."""
    if scenario not in SCENARIO_PARAMS:
        raise ParamError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIO_PARAMS)}")
    return {**COMMON, **SCENARIO_PARAMS[scenario]}
