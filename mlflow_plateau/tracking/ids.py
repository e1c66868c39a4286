"""Run ids as users type them: a unique prefix of a run id (the ``diagnose`` table prints 8 characters).

``expand_run_ids`` maps every given id that is shorter than a full MLflow run id (32 hex digits)
to the one run whose id starts with it, over the active and deleted runs of every experiment of
the store. A full id, or a string that is not hex, is passed through unchanged: the readers then
report it as usual ("run not found", "not a valid run id"). Only prefixes cost a listing, and
one listing serves them all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .store import client_for, existing_store

_FULL = 32
_HEX_PREFIX = re.compile(r"[0-9a-f]{1,31}")


def expand_run_ids(run_ids: Sequence[str], tracking_uri: str | None = None,
                   ) -> tuple[list[str], dict[str, str]]:
    """The ids, in order, with every unique prefix replaced by its run id, and the prefixes that failed.

    The second value maps each prefix that matched no run or several runs to the reason (for
    several, the candidates are named), so a caller reports it like a run that was not found.
    """
    prefixes = {i for i in run_ids if _HEX_PREFIX.fullmatch(i)}
    if not prefixes:
        return list(run_ids), {}
    from mlflow.entities import ViewType

    client = client_for(existing_store(tracking_uri))
    ids: list[str] = []
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    for start in range(0, len(experiments), 100):  # search_runs takes a bounded list
        token = None
        while True:
            page = client.search_runs(experiments[start:start + 100], run_view_type=ViewType.ALL,
                                      max_results=50000, page_token=token)
            ids.extend(r.info.run_id for r in page
                       if any(r.info.run_id.startswith(p) for p in prefixes))
            token = page.token
            if not token:
                break
    resolved, failed = [], {}
    for given in run_ids:
        if given not in prefixes:
            resolved.append(given)
            continue
        matches = sorted({i for i in ids if i.startswith(given)})
        resolved.append(matches[0] if len(matches) == 1 else given)  # in place, failed or not
        if len(matches) == 1:
            continue
        if matches:
            failed[given] = (f"run id prefix is ambiguous: {len(matches)} runs start with it ("
                             + ", ".join(matches[:10]) + (", ..." if len(matches) > 10 else "")
                             + "); give more characters")
        else:
            failed[given] = "no run id starts with it (run not found)"
    return resolved, failed
