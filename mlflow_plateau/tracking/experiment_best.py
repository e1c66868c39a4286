"""The best ``best/<monitor>`` of an experiment's finished runs: what a new run must beat to be kept.

One search per call (the callback reads it once at the start of a fit). Runs other than
``exclude_run_id`` that finished (status FINISHED) and carry ``best/<monitor>`` count; a non-finite
value is skipped. None when no run counts.
"""

from __future__ import annotations

import math

from mlflow.tracking import MlflowClient

from ..numerics import mode_sign
from .store import BEST_PREFIX


def experiment_best(experiment_id: str, monitor: str, mode: str, *, exclude_run_id: str | None = None,
                    tracking_uri: str | None = None) -> float | None:
    """The best finite ``best/<monitor>`` over the experiment's finished runs (None: none)."""
    mode_sign(mode)
    client = MlflowClient(tracking_uri=tracking_uri)
    key = f"{BEST_PREFIX}{monitor}"
    values: list[float] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string="attributes.status = 'FINISHED'",
                                  max_results=1000, page_token=token)
        for run in page:
            v = run.data.metrics.get(key)
            if run.info.run_id != exclude_run_id and v is not None and math.isfinite(v):
                values.append(float(v))
        token = page.token
        if not token:
            break
    if not values:
        return None
    return min(values) if mode == "min" else max(values)
