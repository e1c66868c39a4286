"""Each scenario's claim from its seed document, as data: what `main` runs and how it is judged.

A ``Claim`` names one variant of a scenario (its options), the seed file it comes from, the claim
in one sentence, the verdicts that would confirm it (empty: the verdict alone decides nothing) and
optionally a ``check`` that compares measured numbers (this run against another variant, or two of
its own metrics). ``held`` is true when the verdict is one of the expected ones and the check holds.
The document's memory claim is judged on the document's own configuration: in-memory mode
refuses it before allocating when it would not fit, and that refusal is the verdict ``refused``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

SOURCES = {
    "000": "000_3ca61323e7035021.txt",  # Did my training data run out during training?
    "001": "001_fd2b6a7ad9be7d30.txt",  # Unexpected effects of training with more data
    "002": "002_78f70bb04e09ff84.txt",  # Why more data makes deep models more accurate
    "003": "003_c64656cd68fbd1b4.txt",  # Training loss improving, validation converging prematurely
    "004": "004_2f2870ed467e4b1a.txt",  # Why curves drop and plateau after X epochs
}


@dataclass
class Outcome:
    """What was measured for one variant (filled by ``main``)."""

    key: str
    run_id: str | None = None
    verdict: str | None = None          # a run verdict, a scaling verdict, "refused" or "error"
    plateau_epoch: int | None = None
    gap: float | None = None            # Diagnosis.gap.final (positive = worse on validation)
    best: float | None = None           # best value of the monitored metric (val_loss)
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    detail: str = ""                    # the diagnosis summary, or the error


Check = Callable[[Outcome, Mapping[str, Outcome]], "bool | None"]


@dataclass(frozen=True)
class Claim:
    """One variant of a scenario and the document's claim about it."""

    key: str
    scenario: str
    options: dict[str, Any]
    source: str
    claim: str
    expected: frozenset[str] = frozenset()
    check: Check | None = None
    check_text: str = ""
    note: str = ""

    def judge(self, outcome: Outcome, outcomes: Mapping[str, Outcome]) -> bool | None:
        """True/False when the claim held / did not; None when it could not be measured."""
        if outcome.verdict in (None, "error"):
            return None
        held = not self.expected or outcome.verdict in self.expected
        if self.check is not None:
            result = self.check(outcome, outcomes)
            if result is None:
                return None
            held = held and result
        return held


def _compare(quantity: str, other: str, relation: str) -> Check:
    """This run's ``quantity`` (gap, best, or a metric name) is lower/higher than variant ``other``'s."""

    def value(o: Outcome) -> float | None:
        return getattr(o, quantity) if quantity in ("gap", "best") else o.metrics.get(quantity)

    def check(this: Outcome, outcomes: Mapping[str, Outcome]) -> bool | None:
        that = outcomes.get(other)
        a, b = value(this), (value(that) if that is not None else None)
        if a is None or b is None:
            return None
        return a < b if relation == "lower" else a > b

    return check


def _grew_by_array(this: Outcome, outcomes: Mapping[str, Outcome]) -> bool | None:
    grew, size = this.metrics.get("memory/rss_increase_bytes"), this.metrics.get("memory/projected_bytes")
    return None if grew is None or size is None else grew >= size


def _stopped_early_with_smaller_gap(this: Outcome, outcomes: Mapping[str, Outcome]) -> bool | None:
    other = outcomes.get("regularization dropout=0")
    if this.gap is None or other is None or other.gap is None:
        return None
    return str(this.params.get("stopped_epoch", "none")).isdigit() and this.gap < other.gap


def _claim(key: str, doc: str, options: dict[str, Any], claim: str, expected: tuple[str, ...] = (),
           check: Check | None = None, check_text: str = "", note: str = "") -> Claim:
    scenario = key.split(" ", 1)[0]
    return Claim(key, scenario, options, SOURCES[doc], claim, frozenset(expected), check, check_text,
                 note)


CLAIMS: list[Claim] = [
    _claim("limited_diversity", "000", {},
           "Dense(16) reaches high training accuracy but validation plateaus quickly: with data of "
           "limited diversity the model overfits.", ("overfitting",),
           note="The document's labels clip (sum>10)+N(0,0.2) to [0,1] and truncate to int, which "
                "turns about half of class 1 into 0: the data is label-noised (best accuracy ~0.75), "
                "kept as written."),
    _claim("high_capacity", "000", {},
           "Dense(64)-Dense(64) on the same data overfits earlier and more severely: a larger "
           "train/validation gap than Dense(16).", ("overfitting",),
           _compare("gap", "limited_diversity", "higher"), "gap larger than limited_diversity's"),
    _claim("augmentation augment=false", "000", {"augment": False},
           "Without augmentation the CNN's validation accuracy plateaus: it overfits the training "
           "images.", ("overfitting",)),
    _claim("augmentation augment=true", "000", {"augment": True},
           "Random rotation and translation add diversity and improve generalization: a smaller gap "
           "than without augmentation.", ("healthy", "not_converged", "underfitting"),
           _compare("gap", "augmentation augment=false", "lower"), "gap smaller than without augmentation"),
    _claim("memory_pressure mode=in_memory document size", "001",
           {"mode": "in_memory", "num_images": 100_000, "image_size": 256},
           "Loading 100,000 images of 256x256x3 float32 (~79 GB) into memory at once exhausts the "
           "memory of an ordinary machine.", ("refused",),
           note="Judged by refusing before allocating when the projected bytes exceed the available "
                "memory; on a machine with ~79 GB free it would load instead."),
    _claim("memory_pressure mode=in_memory", "001", {"mode": "in_memory"},
           "In-memory loading makes resident memory grow with the data set: at least the array's "
           "size.", (), _grew_by_array, "peak RSS increase >= projected bytes"),
    _claim("memory_pressure mode=streaming", "001", {"mode": "streaming"},
           "Streaming with tf.data keeps memory flat: less resident memory than loading the same "
           "images whole.", (), _compare("memory/rss_increase_bytes", "memory_pressure mode=in_memory",
                                         "lower"), "RSS increase below in-memory's"),
    _claim("slow_convergence", "001", {},
           "With Adam at lr=1e-5 on 100,000 samples the loss decreases only minimally across epochs: "
           "training has not converged.", ("not_converged",),
           note="The targets are uniform noise independent of the inputs: the best possible MSE is 1/12."),
    _claim("small_model_large_data", "001", {},
           "A Dense(16) model on 100,000 x 100 samples underfits: high training loss for lack of "
           "capacity.", ("underfitting",),
           note="The labels are uniform random: no model can beat chance on validation, so 'at_chance' "
                "(nothing to learn), not capacity, is the measured cause."),
    _claim("data_scaling", "002", {},
           "Validation performance keeps improving as the training set grows from 1,000 to 8,000: "
           "more data helps.", ("data_limited", "diminishing_returns"),
           note="The document's dataset is hypothetical; make_classification (10 features, 2 classes) "
                "stands in."),
    _claim("regularization dropout=0.5", "003", {"dropout": 0.5},
           "Dropout(0.5) with EarlyStopping(patience=10, restore_best_weights) stops at the "
           "validation plateau and keeps the gap smaller than without dropout.", (),
           _stopped_early_with_smaller_gap, "EarlyStopping fired and gap < dropout=0's"),
    _claim("regularization dropout=0", "003", {"dropout": 0.0},
           "Without dropout the same network overfits: validation loss turns up while training "
           "loss keeps falling.", ("overfitting",)),
    _claim("augmentation_generator", "003", {},
           "Rotation, shift and flip augmentation enlarges the effective data set and prevents "
           "overfitting.", ("healthy", "not_converged", "underfitting"),
           note="horizontal_flip is kept as written, although a mirrored digit is often another digit."),
    _claim("lr_schedule", "003", {},
           "A constant rate for 10 epochs then exponential decay gives fast early progress and a "
           "stable finish without oscillation.", ("healthy", "not_converged", "overfitting"),
           note="Only 'unstable' or 'diverged' would contradict the claim, which is about oscillation."),
    _claim("complex_vs_simple model=complex", "004", {"model": "complex"},
           "A 64-128-64 network on a linear 2-feature problem reaches a tiny training loss while "
           "validation flattens far above it: overfitting.", ("overfitting",)),
    _claim("complex_vs_simple model=simple", "004", {"model": "simple"},
           "A single Dense(1) balances bias and variance better: its best validation loss is lower "
           "than the complex network's.", (), _compare("best", "complex_vs_simple model=complex", "lower"),
           "best val_loss below the complex model's"),
    _claim("limited_images", "004", {},
           "On 100 images the curves plateau once the network has exhausted the little information "
           "in them; more data would help.", ("overfitting",),
           note="Images and labels are uniform random: there is no information to exhaust, and more "
                "such data would not help."),
    _claim("optimizer_limits optimizer=sgd", "004", {"optimizer": "sgd"},
           "SGD with a fixed rate of 0.01 bounces around the minimum and plateaus without getting "
           "as close as Adam.", (), _compare("best", "optimizer_limits optimizer=adam", "higher"),
           "best val_loss above Adam's"),
    _claim("optimizer_limits optimizer=adam", "004", {"optimizer": "adam"},
           "Adam reaches the minimum with fewer late oscillations.", ("healthy",)),
]

BY_KEY: dict[str, Claim] = {c.key: c for c in CLAIMS}


def claim_for(scenario: str, options: Mapping[str, Any]) -> Claim:
    """The claim of the variant matching ``options`` best (most options matched), for tagging a run."""
    candidates = [c for c in CLAIMS if c.scenario == scenario
                  and all(options.get(k) == v for k, v in c.options.items())]
    if not candidates:
        candidates = [c for c in CLAIMS if c.scenario == scenario]
    if not candidates:
        raise KeyError(f"no claim recorded for scenario {scenario!r}")
    return max(candidates, key=lambda c: len(c.options))
