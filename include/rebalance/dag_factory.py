"""Builds one Airflow DAG per portfolio file. Imported by ``dags/rebalance_portfolios.py``.

Parse-time cost matters (the DAG processor re-parses the folder every 30 s), so this module imports
only Airflow's SDK, pydantic models and PyYAML at top level; pandas, Great Expectations, broker
clients and SQLAlchemy load inside the task bodies. No database or network access at parse time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import (
    DAG,
    Param,
    TaskGroup,
    TriggerRule,
    get_current_context,
    task,
)
from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

from rebalance import task_docs
from rebalance.alerts import (
    configured_channels,
    deadline_alerts_enabled,
    failure_notifiers,
    notify_deadline_missed,
)
from rebalance.approval import PlanApprovalOperator
from rebalance.errors import ConfigError, InvalidPortfolioFiles
from rebalance.policy import TradeFilter
from rebalance.portfolio import ExecutionMode, Portfolio, load_portfolio, portfolio_files
from rebalance.schedule import IST, MARKET_CLOSE, describe_schedule
from rebalance.timetable import build_timetable

if TYPE_CHECKING:
    from rebalance.tasks import Lane

TASK_ORDER = (
    "fetch_holdings",
    "validate_snapshot",
    "plan_trades",
    "approval",
    "place_orders",
    "record_run",
)
START_DATE = pendulum.datetime(2026, 1, 1, tz="Asia/Kolkata")
READ_RETRIES = 2
APPROVAL_RETRIES = 2
MIN_DEADLINE_MINUTES = 5


class InvalidPortfolios(DAG):
    """Stands for the portfolio files that failed to load.

    Airflow keeps the DAGs of a file only if the whole file imports, so the factory cannot raise
    on one bad portfolio. Instead this DAG fails ``validate()``: the DagBag records that as an
    import error of the DAG file (shown in the UI as a broken DAG, with every bad file, field and
    problem) and still loads every other portfolio's DAG.
    """

    def __init__(self, errors: list[ConfigError], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config_errors = errors

    def validate(self) -> None:
        raise InvalidPortfolioFiles(self.config_errors)


def _params(portfolio: Portfolio) -> dict[str, Param]:
    policy = portfolio.policy
    return {
        "mode": Param(
            str(portfolio.execution.mode),
            enum=[str(mode) for mode in ExecutionMode],
            description="dry_run: plan and record, order nothing",
        ),
        "accounts": Param(
            [a.name for a in portfolio.accounts],
            type="array",
            items={"type": "string", "enum": [a.name for a in portfolio.accounts]},
            description="which account lanes run",
        ),
        "rebalance_budget_pct": Param(
            policy.rebalance_budget_pct, type="number", minimum=0, maximum=100
        ),
        "rebalance_budget_inr": Param(
            policy.rebalance_budget_inr, type=["null", "number"], exclusiveMinimum=0
        ),
        "drift_band_abs_pct": Param(
            policy.drift_band_abs_pct, type="number", minimum=0, maximum=100
        ),
        "drift_band_rel_pct": Param(
            policy.drift_band_rel_pct, type="number", minimum=0, maximum=1000
        ),
        "max_trades": Param(policy.max_trades, type="integer", minimum=0),
        "min_trade_value_inr": Param(policy.min_trade_value_inr, type="number", minimum=0),
        "trade_filter": Param(str(policy.trade_filter), enum=[str(f) for f in TradeFilter]),
    }


def _lane(portfolio_file: str, account: str) -> Lane:
    """The Lane of the running task, from Airflow's context (imported lazily)."""
    from rebalance.tasks import Lane

    return Lane.from_context(get_current_context(), portfolio_file, account)


def _stop_lane_if_deselected(lane: Lane) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    chosen = lane.params.get("accounts")
    if chosen is not None and lane.account not in chosen:
        raise AirflowSkipException(f"account {lane.account} not selected for this run")


@contextmanager
def _stopping_fails_without_retry() -> Iterator[None]:
    """A deliberate stop of the lane (bad data, plan mismatch) fails the task with no retry."""
    from airflow.sdk.exceptions import AirflowFailException

    from rebalance.tasks import LaneStopped

    try:
        yield
    except LaneStopped as exc:
        raise AirflowFailException(str(exc)) from exc


def _refuse_unknown_trading_day(lane: Lane, portfolio_file: str) -> None:
    """A scheduled run on a holiday or past the known calendar fails loudly, without retry."""
    from airflow.sdk.exceptions import AirflowFailException

    from rebalance.errors import CalendarError
    from rebalance.timetable import check_run_day

    run_after = get_current_context()["dag_run"].run_after
    try:
        check_run_day(build_timetable(lane.portfolio, portfolio_file), run_after)
    except CalendarError as exc:
        raise AirflowFailException(
            f"{exc}. Nothing was read or ordered. Add the exchange's holiday list to the "
            "portfolio's holiday_overrides file (docs/schedule.md)."
        ) from exc


def _build_lane(portfolio_file: str, account: str) -> None:
    """The six tasks of one account lane, inside the current TaskGroup."""

    @task(
        retries=READ_RETRIES,
        retry_exponential_backoff=True,
        doc_md=task_docs.FETCH_HOLDINGS,
    )
    def fetch_holdings() -> dict[str, Any]:
        from rebalance import tasks

        lane = _lane(portfolio_file, account)
        _stop_lane_if_deselected(lane)
        if lane.initiator == "scheduled":
            _refuse_unknown_trading_day(lane, portfolio_file)
        with _stopping_fails_without_retry():
            return tasks.fetch_holdings(lane, tasks.history_store(), tasks.make_broker(lane))

    @task(doc_md=task_docs.VALIDATE_SNAPSHOT)
    def validate_snapshot(_: Any) -> dict[str, Any]:
        from rebalance import tasks

        with _stopping_fails_without_retry():
            return tasks.validate_snapshot(_lane(portfolio_file, account), tasks.history_store())

    @task(doc_md=task_docs.PLAN_TRADES)
    def plan_trades(_: Any) -> dict[str, Any]:
        from rebalance import tasks

        with _stopping_fails_without_retry():
            return tasks.plan_trades(_lane(portfolio_file, account), tasks.history_store())

    approval = PlanApprovalOperator(
        task_id="approval",
        portfolio_file=portfolio_file,
        account=account,
        # A decision once recorded is final, so a retry only re-reads it. Airflow 3.3 can fail a
        # resumed human-in-the-loop task in a race with its own success report; a retry heals it.
        retries=APPROVAL_RETRIES,
        retry_delay=timedelta(seconds=5),
        doc_md=task_docs.APPROVAL,
    )

    @task(doc_md=task_docs.PLACE_ORDERS)
    def place_orders(approved: Any) -> dict[str, Any]:
        from rebalance import tasks

        lane = _lane(portfolio_file, account)
        store, broker = tasks.history_store(), tasks.make_broker(lane)
        with _stopping_fails_without_retry():
            tasks.check_prices_unchanged(lane, store, broker)
            return tasks.place_orders(lane, store, broker, approved["plan_hash"])

    @task(trigger_rule=TriggerRule.ALL_DONE, doc_md=task_docs.RECORD_RUN)
    def record_run() -> dict[str, Any]:
        from rebalance import tasks

        with _stopping_fails_without_retry():
            return tasks.record_run(_lane(portfolio_file, account), tasks.history_store())

    planned = plan_trades(validate_snapshot(fetch_holdings()))
    planned >> approval
    placed = place_orders(approval.output)
    placed >> record_run()


def _market_close_deadline(portfolio: Portfolio) -> DeadlineAlert:
    """Alert when a run is not finished by market close (15:30 IST) of its scheduled time."""
    schedule = portfolio.schedule
    start = datetime.combine(date.today(), schedule.time, schedule.zone).astimezone(IST).time()
    minutes_left = (MARKET_CLOSE.hour * 60 + MARKET_CLOSE.minute) - (start.hour * 60 + start.minute)
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=max(minutes_left, MIN_DEADLINE_MINUTES)),
        callback=AsyncCallback(
            notify_deadline_missed,
            kwargs={
                "portfolio": portfolio.name,
                "dag_id": portfolio.dag_id,
                "webhook": configured_channels().get("webhook"),
            },
        ),
    )


def build_dag(portfolio_file: Path, portfolio: Portfolio) -> DAG:
    """The DAG of one portfolio: one TaskGroup (lane) per account, six tasks each."""
    accounts = ", ".join(f"{a.name} ({a.broker})" for a in portfolio.accounts)
    with DAG(
        dag_id=portfolio.dag_id,
        description=portfolio.description or portfolio.name,
        schedule=build_timetable(portfolio, portfolio_file),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["rebalance", *portfolio.tags],
        params=_params(portfolio),
        default_args={
            "owner": portfolio.owner,
            "retries": 0,
            "retry_delay": timedelta(seconds=30),
            "on_failure_callback": failure_notifiers(),
        },
        deadline=_market_close_deadline(portfolio) if deadline_alerts_enabled() else None,
        doc_md=(
            f"### {portfolio.name}\n\n{portfolio.description}\n\n"
            f"* portfolio file: `{portfolio_file.name}`\n* accounts: {accounts}\n"
            f"* execution: {portfolio.execution.mode}, approval {portfolio.execution.approval}\n"
            f"* schedule: {describe_schedule(portfolio.schedule)} (the header's *Next Run* is "
            "next_rebalance_at; `rebalance schedule` lists more; the Rebalance page shows the "
            "last rebalance)\n"
        ),
    ) as dag:
        for account in portfolio.accounts:
            with TaskGroup(
                group_id=account.name, tooltip=f"{account.broker} account {account.name}"
            ):
                _build_lane(str(portfolio_file), account.name)
    return dag


def build_dags(folder: Path) -> dict[str, DAG]:
    """Every portfolio DAG of ``folder`` by dag_id, plus ``InvalidPortfolios`` if any fail."""
    dags: dict[str, DAG] = {}
    errors: list[ConfigError] = []
    for path in portfolio_files(folder):
        try:
            portfolio = load_portfolio(path)
            dags[portfolio.dag_id] = build_dag(path.resolve(), portfolio)
        except ConfigError as exc:
            errors.append(exc)
    if errors:
        dags["rebalance_invalid_portfolios"] = InvalidPortfolios(
            errors, dag_id="rebalance_invalid_portfolios", schedule=None, start_date=START_DATE
        )
    return dags
