"""A run that could not be diagnosed, and the one-line, credential-free messages that say why.

``RunFailure`` (run id and a one-line reason; ``unreachable`` when the store could not be
reached, which says nothing about the run), ``Breaker`` (trips on the first such failure so a
batch stops knocking on a dead server), ``redact`` (``user:password@host`` never appears in a
message), ``one_line`` (MLflow's messages can span many lines), and the two questions a batch
asks of a failure: ``no_curve_of_its_own`` and ``parent_without_curve``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# How a store's client words a server it cannot reach (requests/urllib3 through MLflow, and
# check_reachable): a run failing this way says nothing about the run itself.
UNREACHABLE = re.compile(
    r"not reachable|connection refused|connection reset|connection aborted|remotedisconnected|"
    r"connection broken|incompleteread|"
    r"failed to establish a new connection|max retries exceeded|timed out|"
    r"name or service not known|temporary failure in name resolution", re.IGNORECASE)


@dataclass(frozen=True)
class RunFailure:
    """A run that could not be diagnosed."""

    run_id: str
    reason: str  # one line naming the problem, e.g. "no metric history", "run not found"

    @property
    def unreachable(self) -> bool:
        """The store could not be reached: the failure says nothing about the run itself."""
        return bool(UNREACHABLE.search(self.reason))

    def to_dict(self) -> dict[str, str]:
        return {"run_id": self.run_id, "error": self.reason}


class Breaker:
    """Trips on the first failure to reach the store, so a batch stops knocking on a dead server.

    Once tripped, the runs not yet asked for fail at once with the same reason instead of each
    waiting out the client's retries.
    """

    def __init__(self) -> None:
        self.reason: str | None = None

    def record(self, result: object) -> None:
        if self.reason is None and isinstance(result, RunFailure) and result.unreachable:
            self.reason = result.reason

    def failure(self, run_id: str) -> RunFailure:
        assert self.reason is not None
        return RunFailure(run_id, f"not tried once the tracking store could not be reached "
                                  f"({self.reason})")


_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/@\s]+@")


def redact(text: str) -> str:
    """``text`` with the user/password part of every URL replaced by ``***``."""
    return _CREDENTIALS.sub(lambda m: f"{m.group('scheme')}***@", str(text))


def one_line(exc: BaseException | str) -> str:
    """A one-line, credential-free message from an exception (MLflow's can span many lines)."""
    if isinstance(exc, BaseException):
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    else:
        message = exc
    first = next((line.strip() for line in str(message).splitlines() if line.strip()), "")
    return redact(first)[:500]


_NO_CURVE = ("no metric history", "no validation metric")
def no_curve_of_its_own(failure: RunFailure) -> bool:
    """Whether ``failure`` says the run holds no curve to diagnose (no history, or no
    validation metric): what a parent of nested runs fails with."""
    return failure.reason.startswith(_NO_CURVE)


def parent_without_curve(failure: RunFailure, parents: set[str]) -> bool:
    """Whether ``failure`` is that of a parent of nested runs (a sweep's, a cross-validation's)
    holding no curve of its own: a container by design, left out of an experiment's batch
    rather than failed (this package's own containers are tagged; users' are not)."""
    return failure.run_id in parents and no_curve_of_its_own(failure)
