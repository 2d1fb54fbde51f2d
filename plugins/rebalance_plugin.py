"""The rebalance project's Airflow plugin.

Airflow loads this file in every component (scheduler, API server, DAG processor, workers). The
scheduler needs it to rebuild ``TradingCalendarTimetable`` from a serialized DAG: a custom
timetable that is not registered here makes the DAG fail to deserialize ("timetable ... is not
registered"). Keep the module light: no database, network or heavy imports at top level.

Sections (add UI views, macros, listeners below their own heading; register them on the class):

- timetables: the trading-calendar timetable (include/rebalance/timetable.py)
- ui: the read-only "Rebalance" page (include/rebalance/ui/, docs/ui.md): a FastAPI app under
  /rebalance (built lazily on its first request, so other components never import FastAPI for
  it) and a menu entry that shows it inside the Airflow UI at /plugin/rebalance
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from rebalance.timetable import TradingCalendarTimetable
from rebalance.ui import EXTERNAL_VIEW, FASTAPI_APP

# --- timetables ------------------------------------------------------------------------------

TIMETABLES = [TradingCalendarTimetable]


# --- ui --------------------------------------------------------------------------------------

FASTAPI_APPS = [FASTAPI_APP]
EXTERNAL_VIEWS = [EXTERNAL_VIEW]


# --- the plugin ------------------------------------------------------------------------------


class RebalancePlugin(AirflowPlugin):
    """Registers the rebalance project's extensions with Airflow."""

    name = "rebalance"
    timetables = TIMETABLES
    fastapi_apps = FASTAPI_APPS
    external_views = EXTERNAL_VIEWS
