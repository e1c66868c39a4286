"""The environment a batch of MLflow calls runs in: bounded HTTP retries, no URL printing.

``command_environment()`` is a context manager every shell face that talks to a tracking store for
a whole batch uses (the command line for each command, a Spark task for its runs):

- MLflow's HTTP client retries a failed request 7 times with exponential backoff (about four
  minutes) and waits up to 120 s for each answer: against a server that went away, a batch of a
  few hundred runs would take hours. ``HTTP_DEFAULTS`` (2 retries, backoff factor 1, 30 s timeout)
  are set where the user has not set the variable;
- MLflow's client prints "View run NAME at: URL" to stdout whenever a run is ended against a
  server: that line carries the tracking URI's credentials and the run name raw, and it would
  corrupt JSON on stdout. It is always turned off (``NO_URL_PRINTING``);
- urllib3 logs a WARNING per retried request: silenced to ERROR, failures are reported by the
  caller, one line per run;
- on leaving, every variable named here is restored, also those the batch changed
  (``stop_retrying`` and ``tracking.file_store``'s ``MLFLOW_ALLOW_FILE_STORE``), so a command
  called in-process leaves no trace.

``stop_retrying()``: once a run failed because the server cannot be reached, the remaining runs
should fail within moments instead of each waiting out the backoff.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
NO_URL_PRINTING = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
# Set by the tracking layer to read a plain mlruns/ folder (tracking.file_store): restored too.
SET_BY_READING = ("MLFLOW_ALLOW_FILE_STORE",)
_RETRIES = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"


def stop_retrying() -> None:
    """No more HTTP retries for the rest of the batch (``command_environment`` restores it)."""
    os.environ[_RETRIES] = "0"


@contextmanager
def command_environment() -> Iterator[None]:
    """Run a batch with the environment of the module docstring, then restore it."""
    names = [*HTTP_DEFAULTS, *NO_URL_PRINTING, *SET_BY_READING]
    saved = {name: os.environ.get(name) for name in names}
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    os.environ.update(NO_URL_PRINTING)
    logger = logging.getLogger("urllib3.connectionpool")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
