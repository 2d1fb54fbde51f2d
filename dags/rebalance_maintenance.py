"""``rebalance_maintenance``: daily checks that keep the portfolio DAGs able to run.

``check_trading_calendar`` (08:00 IST, every day): each portfolio's trading calendar must reach
more than ``REBALANCE_CALENDAR_WARN_TRADING_DAYS`` (default 10) trading days ahead. When one does
not, the task fails with a message naming each portfolio, its calendar's end and what to do
(``rebalance calendar update --from LIST``), and the failure goes to the alert channels
(``REBALANCE_ALERT_WEBHOOK_URL`` / ``REBALANCE_ALERT_EMAIL``) like any rebalance task failure.

Parse time: only Airflow's SDK and the alert channels' configuration; the check runs in the task.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, CronTriggerTimetable, task

from rebalance.alerts import failure_notifiers
from rebalance.domain.market import IST_NAME

with DAG(
    dag_id="rebalance_maintenance",
    description="Daily checks: the trading calendar reaches far enough ahead",
    schedule=CronTriggerTimetable("0 8 * * *", timezone=IST_NAME),
    start_date=pendulum.datetime(2026, 1, 1, tz=IST_NAME),
    catchup=False,
    max_active_runs=1,
    tags=["rebalance", "maintenance"],
    default_args={
        "retries": 0,  # a calendar running out does not heal by retrying
        "on_failure_callback": failure_notifiers(),  # per task, as the portfolio DAGs do
    },
    doc_md=__doc__,
) as dag:

    @task(task_id="check_trading_calendar")
    def check_trading_calendar(**context: Any) -> dict[str, Any]:
        """Fail (and so alert) when a portfolio's calendar runs out within the warning window."""
        import logging

        from airflow.sdk.exceptions import AirflowFailException

        from rebalance.calendar_watch import alert_text, check_calendars
        from rebalance.settings import portfolios_dir

        log = logging.getLogger(__name__)
        # The run's own moment (its logical date), so a re-run checks the same day.
        now = context.get("logical_date") or context["dag_run"].run_after
        horizons = check_calendars(portfolios_dir(), now)
        for h in horizons:
            log.info(
                "%s: %s, calendar known until %s, %s trading days left, next run %s",
                h.portfolio,
                h.status,
                h.calendar_end,
                h.trading_days_left,
                h.next_run,
            )
        if text := alert_text(horizons):
            raise AirflowFailException(text)
        return {h.portfolio: str(h.status) for h in horizons}

    check_trading_calendar()
