"""Where a person sees the diagnoses: MLflow UI links to a run and to an experiment's runs table.

MLflow 3's UI opens an experiment on an overview page, and its runs table shows no tag or metric
column until one is added by hand, so ``plateau.verdict`` is hidden where users look. The table's
columns are not URL parameters (its URL carries only the search: ``searchFilter``, ``orderByKey``,
...); they are UI state, kept in the browser or loaded from a *saved view*: an experiment tag
``mlflow.sharedViewState.<key>`` that the URL ``#/experiments/<id>/runs?viewStateShareKey=<key>``
applies (MLflow's own "share" button writes such tags). ``save_plateau_view`` writes one, named
``PLATEAU_VIEW``, showing ``PLATEAU_COLUMNS``; ``runs_table_line`` says how to open it.

The tag's value is MLflow 3.18's saved-view envelope (``name``, ``createdAt``, ``updatedAt`` and
``state``, the view as a JSON string), so the view is listed by name in the UI's saved views, with
the same view's keys also at its top level, where UIs before saved views read a shared state
(they parse the tag as the view itself). Checked against the installed UI bundle and in Chromium
(tests/test_ui_browser.py).

``ui_link`` turns a UI route into what to do: open the server's URL, or, for a local store,
``mlflow ui --backend-store-uri URI`` and then the local URL.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from .store import TAG_VERDICT, is_http, redact

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

VIEW_TAG_PREFIX = "mlflow.sharedViewState."  # the UI's saved/shared view tags on an experiment
VIEW_KEY = "plateau"
PLATEAU_VIEW = "plateau diagnosis"
# Runs table column ids as the UI writes them: "<tags|metrics|params|attributes>.`<name>`".
PLATEAU_COLUMNS = (f"tags.`{TAG_VERDICT}`", "metrics.`plateau/epoch`",
                   "metrics.`plateau/wasted_epochs`", "metrics.`plateau/best_value`",
                   "metrics.`gap/final`")
LOCAL_UI = "http://127.0.0.1:5000"  # where ``mlflow ui`` serves by default
REPORT = {"all": "each run's report is in its Artifacts tab (plateau/report.html)",
          "json": "each run's diagnosis is in its Artifacts tab (plateau/diagnosis.json)",
          "none": ""}


def run_route(experiment_id: str, run_id: str) -> str:
    """The UI route of one run's page."""
    return f"#/experiments/{experiment_id}/runs/{run_id}"


def runs_table_route(experiment_id: str, key: str = VIEW_KEY) -> str:
    """The UI route of an experiment's runs table in the saved view ``key``."""
    return f"#/experiments/{experiment_id}/runs?viewStateShareKey={key}"


def ui_link(tracking_uri: str, route: str) -> str:
    """What to do to see ``route``: ``open URL`` on a server (credentials replaced by ``***``),
    else start ``mlflow ui`` on the local store and open the local URL."""
    if is_http(tracking_uri):
        return f"open {redact(tracking_uri).rstrip('/')}/{route}"
    return f"mlflow ui --backend-store-uri {tracking_uri}, then open {LOCAL_UI}/{route}"


def plateau_view(now_ms: int) -> str:
    """The tag value of the saved view (module docstring): the plateau columns after the run
    name, the default sort (newest first)."""
    state = {"selectedColumns": list(PLATEAU_COLUMNS), "columnOrder": list(PLATEAU_COLUMNS),
             "orderByKey": "attributes.start_time",
             "orderByAsc": False}
    envelope = {"name": PLATEAU_VIEW, "createdAt": now_ms, "updatedAt": now_ms,
                "state": json.dumps(state), **state}
    return json.dumps(envelope)


def save_plateau_view(client: MlflowClient, experiment_id: str) -> str:
    """Tag the experiment with the plateau view unless it holds it already; returns its key."""
    tag = VIEW_TAG_PREFIX + VIEW_KEY
    current = client.get_experiment(experiment_id).tags.get(tag)
    try:
        same = current is not None and {k: v for k, v in json.loads(current).items()
                                        if k not in ("createdAt", "updatedAt")} == \
            {k: v for k, v in json.loads(plateau_view(0)).items()
             if k not in ("createdAt", "updatedAt")}
    except (ValueError, AttributeError):  # a view edited by hand: replaced
        same = False
    if not same:
        client.set_experiment_tag(experiment_id, tag, plateau_view(int(time.time() * 1000)))
    return VIEW_KEY


def runs_table_line(tracking_uri: str, experiment_id: str, artifacts: str = "all",
                    client: MlflowClient | None = None) -> str:
    """One line: how to open the experiment's runs table with the plateau columns shown (the view
    saved first, ``save_plateau_view``), and where each run's report is (``artifacts`` as
    diagnosed: ``all``, ``json`` or ``none``). Where the view cannot be saved (a server that
    refuses experiment tags), the line names the plain runs table and the column to add."""
    from .store import client_for, one_line

    client = client or client_for(tracking_uri)
    try:
        route = runs_table_route(experiment_id, save_plateau_view(client, experiment_id))
        what = "the runs in the MLflow UI, with the plateau columns"
    except Exception as exc:  # the diagnosis is written; only this convenience is missing
        route = f"#/experiments/{experiment_id}/runs"
        what = (f"the runs in the MLflow UI (add the column {TAG_VERDICT}: the view could not be "
                f"saved: {one_line(exc)})")
    where = REPORT.get(artifacts, "")
    return f"{what}: {ui_link(tracking_uri, route)}" + (f"; {where}" if where else "")


def run_line(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """How to open one run's page in the MLflow UI (``ui_link`` of ``run_route``)."""
    return ui_link(tracking_uri, run_route(experiment_id, run_id))
