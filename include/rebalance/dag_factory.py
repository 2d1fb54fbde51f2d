"""Builds one Airflow DAG per portfolio file. Imported by ``dags/rebalance_portfolios_<k>.py``.

Parse-time cost matters (the DAG processor re-parses the folder every 30 s), so this module imports
only Airflow's SDK, pydantic models and PyYAML at top level; pandas, Great Expectations, broker
clients and SQLAlchemy load inside the task bodies. No database or network access at parse time.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import (
    DAG,
    BaseOperator,
    Param,
    TaskGroup,
    TriggerRule,
    get_current_context,
)
from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

from rebalance import task_docs, task_ids
from rebalance.alerts import (
    configured_channels,
    deadline_alerts_enabled,
    failure_notifiers,
    notify_deadline_missed,
)
from rebalance.approval_operator import PlanApprovalOperator
from rebalance.domain.market import IST, IST_NAME, MARKET_CLOSE
from rebalance.drift.config import TriggerMode, breach_asset_name
from rebalance.errors import ConfigError
from rebalance.policy import RebalanceTo, TradeFilter
from rebalance.portfolio import (
    AccountsMode,
    BrokerName,
    ExecutionMode,
    Portfolio,
    portfolio_from_data,
)
from rebalance.portfolio_check import check_named_files
from rebalance.portfolio_file import (
    fallback_portfolio_id,
    portfolio_files,
    portfolio_id_from_path,
    read_portfolio_data,
)
from rebalance.schedule import Frequency, Schedule, describe_schedule
from rebalance.timetable import TradingCalendarTimetable, build_timetable

if TYPE_CHECKING:
    from rebalance.lane import Lane

START_DATE = pendulum.datetime(2026, 1, 1, tz=IST_NAME)
READ_RETRIES = 2
APPROVAL_RETRIES = 2
# Placement is idempotent (legs written ahead, the broker's book reconciled by tag before anything
# is sent again), so a retry after a crash finishes the approved plan instead of abandoning it.
PLACE_RETRIES = 3
PLACE_RETRY_DELAY = timedelta(seconds=30)
RECORD_RETRIES = 2
RECORD_RETRY_DELAY = timedelta(seconds=30)
RETRY_DELAY = timedelta(seconds=30)  # every other task of a lane (DAG default_args)
APPROVAL_RETRY_DELAY = timedelta(seconds=5)
INVALID_TASK_ID = "portfolio_file_invalid"
# The portfolio folder is split over this many DAG files, dags/rebalance_portfolios_<k>.py.
SHARDS = 4
# A broken file whose schedule section does not validate either still runs (and fails loudly) on
# every trading day at the default rebalance time, so a typo never silently unschedules it.
BROKEN_FILE_SCHEDULE = Schedule(frequency=Frequency.CUSTOM_DAYS, every_n_trading_days=1)
MIN_DEADLINE_MINUTES = 5
# CeleryExecutor: the queue of the workers that egress from the broker's registered IP
# (docs/deploy.md). Unset or empty: Airflow's default queue, as every other task.
ORDERS_QUEUE_ENV = "REBALANCE_ORDERS_QUEUE"


def _orders_queue() -> dict[str, str]:
    """``queue=`` for place_orders from ``REBALANCE_ORDERS_QUEUE``, or nothing (default queue)."""
    queue = os.environ.get(ORDERS_QUEUE_ENV, "").strip()
    return {"queue": sys.intern(queue)} if queue else {}  # one string for every lane


# Airflow checks every Param's schema against its meta-schema whenever it validates a value (once
# per DAG at each parse). Draft-07's meta-schema checks in a quarter of the time of the default
# (2020-12), and it has every keyword these schemas use, with the same meaning.
PARAM_SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"


def _param(default: Any, *, description: str | None = None, **schema: Any) -> Param:
    """A Param of the manual-run form, its JSON Schema in draft-07 (see PARAM_SCHEMA_DIALECT).

    Equal schemas are one shared dict (``_SCHEMAS``): nine per portfolio, nearly all alike
    across a fleet, kept for as long as the DAGs are.
    """
    full = {"$schema": PARAM_SCHEMA_DIALECT, **schema}
    return Param(default, description=description, schema=_SCHEMAS.setdefault(_key(full), full))


# One dict per distinct Param schema, by its JSON text (sorted keys): read-only once shared.
_SCHEMAS: dict[str, dict[str, Any]] = {}


def _key(schema: dict[str, Any]) -> str:
    """A schema's identity: equal schemas, equal text."""
    return json.dumps(schema, sort_keys=True)


def _params(portfolio: Portfolio) -> dict[str, Param]:
    policy = portfolio.policy
    return {
        "mode": _param(
            str(portfolio.execution.mode),
            enum=[str(mode) for mode in ExecutionMode],
            description="dry_run: plan and record, order nothing",
        ),
        "accounts": _param(
            [a.name for a in portfolio.accounts],
            type="array",
            items={"type": "string", "enum": [a.name for a in portfolio.accounts]},
            description="which account lanes run",
        ),
        **_accounts_mode_param(portfolio),
        "rebalance_budget_pct": _param(
            policy.rebalance_budget_pct, type="number", minimum=0, maximum=100
        ),
        "rebalance_budget_inr": _param(
            policy.rebalance_budget_inr, type=["null", "number"], exclusiveMinimum=0
        ),
        "drift_band_abs_pct": _param(
            policy.drift_band_abs_pct, type="number", minimum=0, maximum=100
        ),
        "drift_band_rel_pct": _param(
            policy.drift_band_rel_pct, type="number", minimum=0, maximum=1000
        ),
        "max_trades": _param(policy.max_trades, type="integer", minimum=0),
        "min_trade_value_inr": _param(policy.min_trade_value_inr, type="number", minimum=0),
        "trade_filter": _param(str(policy.trade_filter), enum=[str(f) for f in TradeFilter]),
        "rebalance_to": _param(
            str(policy.rebalance_to),
            enum=[str(r) for r in RebalanceTo],
            description="target: trade a symbol outside its band to its target; band_edge: only "
            "to the nearest edge of its band",
        ),
        "max_order_charges_pct": _param(
            policy.max_order_charges_pct,
            type=["null", "number"],
            exclusiveMinimum=0,
            maximum=100,
            description="drop orders whose estimated charges exceed this % of their notional "
            "(empty: as the portfolio file says)",
        ),
        "optimiser_time_cap_s": _param(
            policy.optimiser_time_cap_s,
            type="number",
            minimum=0,
            maximum=60,
            description="seconds the exact optimiser may take (0: the fast plan only)",
        ),
    }


def _accounts_mode_param(portfolio: Portfolio) -> dict[str, Param]:
    """Two or more accounts: both separately, or combined (docs/accounts.md)."""
    if len(portfolio.accounts) < 2:
        return {}
    return {
        "accounts_mode": _param(
            str(portfolio.accounts_mode),
            enum=[str(mode) for mode in AccountsMode],
            values_display={"separate": "Both separately", "combined": "Both combined"},
            description="with the accounts chosen above: each planned on its own, or one plan "
            "for them together, split per account",
        )
    }


def _lane(portfolio_file: str, account: str) -> Lane:
    """The Lane of the running task, from Airflow's context (imported lazily)."""
    from rebalance.lane import Lane

    return Lane.from_context(get_current_context(), portfolio_file, account)


def _stop_lane_if_deselected(lane: Lane) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    if lane.deselected:
        raise AirflowSkipException(f"account {lane.account} not selected for this run")


@contextmanager
def _stopping_fails_without_retry() -> Iterator[None]:
    """A deliberate stop of the lane (bad data, plan mismatch) fails the task with no retry."""
    from airflow.sdk.exceptions import AirflowFailException

    from rebalance.lane import LaneStopped

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


def _fetch_holdings(step: LaneStepOperator, context: Any) -> dict[str, Any]:
    from rebalance import tasks, wiring

    with _stopping_fails_without_retry():
        lane = _lane(step.portfolio_file, step.account)
        _stop_lane_if_deselected(lane)
        if lane.initiator == "scheduled":
            _refuse_unknown_trading_day(lane, step.portfolio_file)
        store = wiring.open_store()
        try:
            fetched = tasks.fetch_holdings(lane, store)
            from rebalance.combined_tasks import apply_ledger

            apply_ledger(lane, store, fetched["run"])  # an account shared through ledgers
            return fetched
        finally:  # a triggered run records its breach, whether or not the read went through
            if lane.initiator == "drift" and (run_id := store.find_run(lane.run_key)):
                store.update_run(run_id, trigger_event=_triggering_breach())


def _validate_snapshot(step: LaneStepOperator, context: Any) -> dict[str, Any]:
    from rebalance import tasks, wiring

    with _stopping_fails_without_retry():
        lane = _lane(step.portfolio_file, step.account)
        store = wiring.open_store()
        started = _process_cpu_seconds()
        result = tasks.validate_snapshot(lane, store)
        _log_validation_cpu(started)
        _gate_on_drift(lane, store)
        return result


VALIDATION_CPU_LOG = "validation CPU: checks {checks:.2f} s, task process {process:.2f} s"


def _process_cpu_seconds() -> float:
    """CPU (user + system) of this process; a forked task process starts from zero."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _log_validation_cpu(started: float) -> None:
    """The CPU of ``tasks.validate_snapshot`` (the run's snapshot read, the Pandera and GX checks
    with whatever they import, the result written) and of the task process so far:
    benchmarks/validation_cost.py reads this line from the task logs (docs/quality.md)."""
    import logging

    process = _process_cpu_seconds()
    logging.getLogger(__name__).info(
        VALIDATION_CPU_LOG.format(checks=process - started, process=process)
    )


def _gate_on_drift(lane: Lane, store: Any) -> None:
    """``trigger: schedule_and_drift``: a scheduled lane inside its bands ends here, skipped,
    recorded as "inside bands, nothing to do"; nothing is planned or ordered (docs/drift.md)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from rebalance.combined_tasks import gated_as_whole
    from rebalance.drift_watch import gate_lane

    if lane.portfolio.trigger.mode is not TriggerMode.SCHEDULE_AND_DRIFT:
        return
    if gated_as_whole(lane):
        return  # a combined run: combined.plan_trades gates the whole (docs/accounts.md)
    reason = gate_lane(store, lane.run_key, lane.portfolio, lane.policy, lane.initiator)
    if reason is not None:
        raise AirflowSkipException(reason)


def _triggering_breach() -> dict[str, Any] | None:
    """The drift watch's breach (the asset event's extra) that started this run, if any."""
    events = get_current_context().get("triggering_asset_events") or {}
    for asset in events:
        for event in events[asset]:
            if isinstance(event.extra, dict) and event.extra.get("trigger") == "drift":
                return dict(event.extra)
    return None


def _plan_trades(step: LaneStepOperator, context: Any) -> dict[str, Any]:
    from rebalance import combined_tasks, tasks, wiring

    with _stopping_fails_without_retry():
        lane, store = _lane(step.portfolio_file, step.account), wiring.open_store()
        if (part := combined_tasks.lane_part(lane, store)) is not None:
            return part  # a combined run: this account's part is already planned
        return tasks.plan_trades(lane, store)


def _target_model(step: LaneStepOperator, context: Any) -> dict[str, Any]:
    from rebalance import target_model_task, wiring

    with _stopping_fails_without_retry():
        lane = _lane(step.portfolio_file, step.account)
        return target_model_task.target_model(lane, wiring.open_store())


def _place_orders(step: LaneStepOperator, context: Any) -> dict[str, Any]:
    from rebalance import tasks, wiring

    approved = context["ti"].xcom_pull(task_ids=step.approval_task_id)
    with _stopping_fails_without_retry():
        lane = _lane(step.portfolio_file, step.account)
        store = wiring.open_store()
        broker = wiring.broker_for(lane, store)
        tasks.check_prices_unchanged(lane, store, broker)
        return _place_or_defer(step, lane, store, broker, approved["plan_hash"])


def _place_or_defer(
    step: LaneStepOperator, lane: Lane, store: Any, broker: Any, plan_hash: str
) -> dict[str, Any]:
    """``tasks.place_orders``; a manual queue still waiting for its person defers the task to
    the triggerer instead of holding a worker (``rebalance.manual_queue_wait``)."""
    from rebalance import tasks
    from rebalance.manual_queue import WaitForPerson
    from rebalance.manual_queue_wait import defer_until_placed

    try:
        return tasks.place_orders(lane, store, broker, plan_hash)
    except WaitForPerson as wait:
        defer_until_placed(step, wait)
        raise  # defer_until_placed raises TaskDeferred; this is never reached


def _record_run(step: LaneStepOperator, context: Any) -> dict[str, Any]:
    from rebalance import tasks, wiring
    from rebalance.combined_tasks import record_ledger_fills

    with _stopping_fails_without_retry():
        lane, store = _lane(step.portfolio_file, step.account), wiring.open_store()
        try:
            return tasks.record_run(lane, store)
        finally:  # whatever the run ended as, its fills move the portfolio's ledger
            record_ledger_fills(lane, store)


_STEPS = {
    "fetch_holdings": _fetch_holdings,
    "validate_snapshot": _validate_snapshot,
    "plan_trades": _plan_trades,
    "target_model": _target_model,
    "place_orders": _place_orders,
    "record_run": _record_run,
}


class LaneStepOperator(BaseOperator):
    """One step of an account lane (every task but the approval), run by ``_STEPS[step]``.

    Plain operators rather than TaskFlow ``@task`` functions: a decorated task costs about twice
    as much to build (signature inspection, argument wiring), and every portfolio builds five at
    every parse. Steps pass nothing but small dicts through XCom; ``place_orders`` reads the
    approval's (``approval_task_id``).
    """

    def __init__(
        self,
        *,
        step: str,
        portfolio_file: str,
        account: str,
        approval_task_id: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(task_id=step, **kwargs)
        self.step = step
        self.portfolio_file = portfolio_file
        self.account = account
        self.approval_task_id = approval_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        return _STEPS[self.step](self, context)

    def resume_manual_queue(self, context: Any, event: Any = None) -> dict[str, Any]:
        """place_orders back from the manual queue's wait (the basket marked placed, or the
        approval's validity over): reconcile. Prices are not checked again: nothing is sent."""
        from rebalance import wiring

        approved = context["ti"].xcom_pull(task_ids=self.approval_task_id)
        with _stopping_fails_without_retry():
            lane = _lane(self.portfolio_file, self.account)
            store = wiring.open_store()
            broker = wiring.broker_for(lane, store)
            return _place_or_defer(self, lane, store, broker, approved["plan_hash"])


def _build_lane(portfolio_file: str, account: str) -> None:
    """The six tasks of one account lane, inside the current TaskGroup."""
    lane = {"portfolio_file": portfolio_file, "account": account}
    fetch = LaneStepOperator(
        step="fetch_holdings",
        retries=READ_RETRIES,
        retry_exponential_backoff=True,
        doc_md=task_docs.FETCH_HOLDINGS,
        **lane,
    )
    validate = LaneStepOperator(
        step="validate_snapshot", doc_md=task_docs.VALIDATE_SNAPSHOT, **lane
    )
    plan = LaneStepOperator(step="plan_trades", doc_md=task_docs.PLAN_TRADES, **lane)
    approval = PlanApprovalOperator(
        task_id=task_ids.APPROVAL,
        portfolio_file=portfolio_file,
        account=account,
        # A decision once recorded is final, so a retry only re-reads it. Airflow 3.3 can fail a
        # resumed human-in-the-loop task in a race with its own success report; a retry heals it.
        retries=APPROVAL_RETRIES,
        retry_delay=APPROVAL_RETRY_DELAY,
        doc_md=task_docs.APPROVAL,
    )
    place = LaneStepOperator(
        step="place_orders",
        approval_task_id=approval.task_id,
        retries=PLACE_RETRIES,
        retry_delay=PLACE_RETRY_DELAY,
        doc_md=task_docs.PLACE_ORDERS,
        **_orders_queue(),
        **lane,
    )
    record = LaneStepOperator(
        step="record_run",
        trigger_rule=TriggerRule.ALL_DONE,
        # A brief outage of the history database heals on a retry; a LaneStopped does not retry.
        retries=RECORD_RETRIES,
        retry_delay=RECORD_RETRY_DELAY,
        doc_md=task_docs.RECORD_RUN,
        **lane,
    )
    fetch >> validate >> plan >> approval >> place >> record


def _add_target_model(portfolio_file: str, account: str) -> None:
    """``validate_snapshot >> target_model >> plan_trades`` in the current lane (TaskGroup)."""
    model = LaneStepOperator(
        step="target_model",
        portfolio_file=portfolio_file,
        account=account,
        retries=READ_RETRIES,
        retry_exponential_backoff=True,
        doc_md=task_docs.TARGET_MODEL,
    )
    dag = model.dag
    assert dag is not None
    validate = dag.get_task(task_ids.lane_task_id(account, "validate_snapshot"))
    plan = dag.get_task(task_ids.lane_task_id(account, "plan_trades"))
    validate >> model >> plan


def _market_close_deadline(portfolio: Portfolio) -> DeadlineAlert:
    """Alert when a run is not finished by market close (15:30 IST) of its scheduled time."""
    schedule = portfolio.schedule
    start = datetime.combine(date.today(), schedule.time, schedule.zone).astimezone(IST).time()
    if portfolio.trigger.mode is TriggerMode.DRIFT:  # started by the watch, at its time
        start = portfolio.trigger.watch_time
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


def _failure_callbacks() -> dict[str, Any]:
    """``on_failure_callback`` for a DAG's default_args, or nothing when no alert channel is set
    (the same: no callback)."""
    notifiers = failure_notifiers()
    return {"on_failure_callback": notifiers} if notifiers else {}


def _describe_trigger(portfolio: Portfolio) -> str:
    mode = portfolio.trigger.mode
    if mode is TriggerMode.DRIFT:
        return (
            f"trigger: drift, on the asset {breach_asset_name(portfolio.id)} (the drift watch at "
            f"{portfolio.trigger.watch_time:%H:%M} IST, at most once per "
            f"{portfolio.trigger.min_trading_days_between} trading days)"
        )
    text = describe_schedule(portfolio.schedule)
    if mode is TriggerMode.SCHEDULE_AND_DRIFT:
        text += "; trigger: schedule_and_drift, a lane inside its bands is skipped"
    return text


def _schedule(
    portfolio: Portfolio, portfolio_file: Path, timetable: TradingCalendarTimetable | None
) -> Any:
    """``trigger: drift``: the portfolio's breach asset alone (the drift watch updates it);
    otherwise the trading-calendar timetable (``schedule_and_drift`` gates each lane instead)."""
    if portfolio.trigger.mode is TriggerMode.DRIFT:
        from airflow.sdk import Asset

        return Asset(name=breach_asset_name(portfolio.id))
    return timetable or build_timetable(portfolio, portfolio_file)


def build_dag(
    portfolio_file: Path,
    portfolio: Portfolio,
    timetable: TradingCalendarTimetable | None = None,
) -> DAG:
    """The DAG of one portfolio: one TaskGroup (lane) per account, six tasks each.

    ``timetable``: the portfolio's, if already built (``build_timetable``).
    """
    accounts = ", ".join(f"{a.name} ({a.broker})" for a in portfolio.accounts)
    with DAG(
        dag_id=portfolio.dag_id,
        description=portfolio.description or portfolio.name,
        schedule=_schedule(portfolio, portfolio_file, timetable),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["rebalance", *portfolio.tags],
        default_args={
            "owner": portfolio.owner,
            "retries": 0,
            "retry_delay": RETRY_DELAY,
            # Only when alerts are on: each operator keeps its init arguments, defaults included.
            **_failure_callbacks(),
        },
        deadline=_market_close_deadline(portfolio) if deadline_alerts_enabled() else None,
        doc_md=(
            f"### {portfolio.name}\n\n{portfolio.description}\n\n"
            f"* portfolio file: `{portfolio_file.name}`\n* accounts: {accounts}\n"
            f"* execution: {portfolio.execution.mode}, approval {portfolio.execution.approval}\n"
            f"* schedule: {_describe_trigger(portfolio)} (the header's *Next Run* is "
            "next_rebalance_at; `rebalance schedule` lists more; the Rebalance page shows the "
            "last rebalance)\n"
        ),
    ) as dag:
        for account in portfolio.accounts:
            with TaskGroup(
                group_id=account.name, tooltip=f"{account.broker} account {account.name}"
            ):
                _build_lane(str(portfolio_file), account.name)
                if portfolio.needs_target_model:
                    _add_target_model(str(portfolio_file), account.name)
        if len(portfolio.accounts) > 1:
            from rebalance.combined_tasks import build_group

            build_group(
                dag,
                str(portfolio_file),
                [a.name for a in portfolio.accounts],
                record_retries=RECORD_RETRIES,
                record_retry_delay=RECORD_RETRY_DELAY,
            )
    # The form's Params are set on the DAG once its tasks exist: an operator created inside a DAG
    # deep-copies the DAG's Params (about 40% of the parse time of a folder), yet a task gets them
    # at run time anyway (Airflow merges the DAG's Params, the task's and the run's conf).
    _set_params(dag, _params(portfolio))
    return dag


@functools.cache
def _schema_validator(schema_json: str) -> Any:
    """A JSON Schema validator of one Param schema, checked against its meta-schema once.

    Airflow's ``Param.resolve`` runs ``jsonschema.validate``, which checks the schema against its
    meta-schema at every call: about a third of a folder's parse time, and the schemas are the
    same for every portfolio (the accounts' enum aside).
    """
    from jsonschema import FormatChecker
    from jsonschema.validators import validator_for

    schema = json.loads(schema_json)
    validator = validator_for(schema)
    validator.check_schema(schema)
    return validator(schema, format_checker=FormatChecker())


def _set_params(dag: DAG, params: dict[str, Param]) -> None:
    """``dag.params = params`` with the checks Airflow's assignment runs, at a fraction of the cost.

    The same Params land on the DAG, and as in ``DAG._validate_params`` a DAG with a schedule
    refuses a default its schema rejects (with Airflow's message); each distinct schema is checked
    against its meta-schema once per process instead of once per DAG (``_schema_validator``).
    """
    from airflow.sdk.exceptions import ParamValidationError
    from jsonschema.exceptions import best_match

    if dag.timetable.can_be_scheduled:
        for name, param in params.items():
            validator = _schema_validator(_key(param.schema))
            if (error := best_match(validator.iter_errors(param.value))) is not None:
                raise ValueError(
                    f"Dag {dag.dag_id!r} is not allowed to define a Schedule, as there are "
                    "required params without default values, or the default values are not valid."
                ) from ParamValidationError(f"Invalid input for param {name}: {error}")
    dag.params.update(params)


class PortfolioFileInvalidOperator(BaseOperator):
    """The one task of a broken portfolio's DAG: fails at once, naming the file and its errors.

    Fails without retry (the file will not fix itself) and so raises the DAG's failure alert.
    """

    ui_color = "#f4a6a6"

    def __init__(self, *, portfolio_file: str, problems: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.portfolio_file = portfolio_file
        self.problems = problems

    def execute(self, context: Any) -> None:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(invalid_file_message(self.portfolio_file, self.problems))


def invalid_file_message(portfolio_file: str, problems: list[str]) -> str:
    """What the failed task and the alert say about a broken portfolio file."""
    lines = "\n".join(f"  - {p}" for p in problems)
    return (
        f"{portfolio_file}: invalid portfolio file, so nothing was read, planned or ordered:\n"
        f"{lines}\nFix the file (README, 'Add a portfolio'); the DAG is rebuilt at the next parse."
    )


def _broken_file_schedule(data: Any) -> tuple[Schedule, str]:
    """The file's own schedule if that section alone validates, else every trading day."""
    if isinstance(data, dict):
        with suppress(Exception):  # any failure: the fallback below
            return Schedule.model_validate(data.get("schedule") or {}), "the file's own schedule"
    return BROKEN_FILE_SCHEDULE, "the file's schedule is unreadable, so every trading day"


def build_broken_dag(path: Path, dag_id: str, problems: list[str], data: Any = None) -> DAG:
    """The DAG of a portfolio file that failed to load: same dag_id, one task that fails loudly.

    It keeps the portfolio's schedule where the file's ``schedule`` section still validates, so a
    typo never quietly unschedules a portfolio: its next run fails at once and alerts.
    """
    schedule, which = _broken_file_schedule(data)
    portfolio_id = dag_id.removeprefix("rebalance_")
    owner = data.get("owner") if isinstance(data, dict) else None
    listed = "\n".join(f"* {problem}" for problem in problems)
    with DAG(
        dag_id=dag_id,
        description=f"INVALID portfolio file {path.name}: fix it, nothing runs until then",
        schedule=TradingCalendarTimetable(schedule, portfolio=portfolio_id),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["rebalance", "invalid"],
        default_args={
            "owner": owner if isinstance(owner, str) and owner else "rebalance",
            "retries": 0,
            "on_failure_callback": failure_notifiers(),
        },
        doc_md=(
            f"### Invalid portfolio file `{path.name}`\n\n"
            f"The file `{path}` failed to load:\n\n{listed}\n\n"
            "Nothing is read, planned or ordered for it. Each run (schedule: "
            f"{describe_schedule(schedule)}, {which}) fails at once at `{INVALID_TASK_ID}` with "
            "these errors and sends the failure alert. Fix the file: the DAG becomes the "
            "portfolio's normal DAG again at the next parse.\n"
        ),
    ) as dag:
        PortfolioFileInvalidOperator(
            task_id=INVALID_TASK_ID, portfolio_file=str(path), problems=problems
        )
    return dag


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """One account of a valid portfolio file, as the cross-file checks and the drift watch read
    it. ``key``: what identifies the broker account (the broker and the Airflow connection), or
    None for a paper account, which is never shared: its order book and fills live under the
    portfolio's own id (``state_dir/paper/<id>``), and its ``holdings_file`` only seeds it, so
    two portfolios may start from one file."""

    name: str
    broker: str
    key: tuple[str, str] | None
    ledger: bool


@dataclass(frozen=True, slots=True)
class PortfolioFacts:
    """What the folder's users read of a valid portfolio file besides its DAG: the cross-file
    checks (its accounts) and the drift watch (its id, accounts, watch time and holiday
    overrides). The load cache keeps these for every file of the folder, and the validated
    ``Portfolio`` model (about 8 KiB) only until the file's DAG is built (``_take_model``)."""

    id: str
    accounts: tuple[AccountFacts, ...]
    watch_time: time
    holiday_overrides: str | None

    @classmethod
    def of(cls, portfolio: Portfolio) -> PortfolioFacts:
        return cls(
            portfolio.id,
            tuple(
                AccountFacts(
                    account.name,
                    account.broker.value,  # the member's own string, not a copy per file
                    None
                    if account.broker is BrokerName.PAPER
                    else (account.broker.value, str(account.connection_id)),
                    account.ledger,
                )
                for account in portfolio.accounts
            ),
            portfolio.trigger.watch_time,
            portfolio.holiday_overrides,
        )


def _claim_order(files: list[Path]) -> list[tuple[Path, str, list[str]]]:
    """(file, portfolio id, problems with its name), in the order the files claim their ids.

    A file whose name is its id (``core.yaml`` for ``core``) comes first, so ``Core.yaml``
    or ``core.yml`` added beside it cannot take ``rebalance_core`` from it; then by file name.
    """
    claims: list[tuple[Path, str, list[str]]] = []
    for path in files:
        try:
            claims.append((path, portfolio_id_from_path(path), []))
        except ConfigError as exc:
            claims.append((path, fallback_portfolio_id(path), exc.problems))
    return sorted(claims, key=lambda claim: (claim[0].stem != claim[1], claim[0].name))


@dataclass(frozen=True)
class PortfolioEntry:
    """One portfolio file of the folder as the cross-file checks left it.

    ``facts`` is set when the file validated and claimed its dag_id and accounts (its model:
    ``portfolio_model``); otherwise ``problems`` says why not (and ``data`` is what could be
    read, for the broken DAG's schedule).
    """

    path: Path
    dag_id: str
    problems: tuple[str, ...]
    data: Any = None
    facts: PortfolioFacts | None = None
    timetable: TradingCalendarTimetable | None = None


def _stat_key(path: Path) -> tuple[int, ...] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True)
class _Loaded:
    data: Any = None  # what could be read of a file that failed; None once it validated
    facts: PortfolioFacts | None = None
    timetable: TradingCalendarTimetable | None = None
    problems: tuple[str, ...] = ()
    # The validated model, until the file's DAG is built (``_take_model``); the Rebalance page's
    # ``loaded_portfolio`` keeps it.
    portfolio: Portfolio | None = None


# Per file, with its stat: the shard files of one DagBag (tests, benchmarks, ``dag.test``) and the
# drift watch read and validate each portfolio file once, not once per shard. Kept for the whole
# folder between parses, so it holds neither the parsed text of a valid file (about 3 KiB: a
# broken DAG of a valid file reads it again) nor, once its DAG is built, its model (about 8 KiB).
_LOADED: dict[Path, tuple[tuple[int, ...], _Loaded]] = {}


def _load(path: Path, *, model: bool = False) -> _Loaded:
    """One file read, validated and its timetable built (with its holiday overrides); no raise.

    ``model``: the result holds the validated model too (read and validated again if the cache
    dropped it).
    """
    key = _stat_key(path)
    cached = _LOADED.get(path)
    if key is not None and cached is not None and cached[0] == key:
        loaded = cached[1]
        if not model or loaded.portfolio is not None or loaded.facts is None:
            return loaded
    data: Any = None
    try:
        data = read_portfolio_data(path)
        portfolio = portfolio_from_data(data, path)
        check_named_files(portfolio, path)
        loaded = _Loaded(
            None, PortfolioFacts.of(portfolio), build_timetable(portfolio, path), (), portfolio
        )
    except ConfigError as exc:
        loaded = _Loaded(data, problems=tuple(exc.problems))
    except Exception as exc:  # whatever it is, it stays with this file
        loaded = _Loaded(data, problems=(f"cannot be loaded: {type(exc).__name__}: {exc}",))
    if key is not None and key == _stat_key(path):
        _LOADED[path] = (key, loaded)
    return loaded


def _take_model(path: Path) -> Portfolio:
    """A valid file's model, for building its DAG, which the cache then no longer holds (a DAG is
    built once per file and process; the cross-file checks and the drift watch need only its
    facts). Read and validated again if already dropped; raises ConfigError if it no longer
    validates (the file changed since the checks)."""
    loaded = _load(path, model=True)
    if loaded.portfolio is None:
        raise ConfigError(str(path), list(loaded.problems) or ["cannot be loaded"])
    cached = _LOADED.get(path)
    if cached is not None and cached[1] is loaded:
        _LOADED[path] = (cached[0], replace(loaded, portfolio=None))
    return loaded.portfolio


def _read_again(path: Path) -> Any:
    """A valid file's parsed text, for its broken DAG's schedule and owner (it lost a cross-file
    check, or its DAG failed to build): ``_load`` keeps no copy of it."""
    try:
        return read_portfolio_data(path)
    except Exception:  # gone or changed since: the broken DAG's fallback schedule
        return None


def loaded_portfolio(
    path: Path,
) -> tuple[Portfolio | None, TradingCalendarTimetable | None, tuple[str, ...]]:
    """The portfolio file validated and its timetable built, or its problems: cached by (path,
    stat) like the DAG files' reads (the Rebalance page reads every file per request)."""
    loaded = _load(path, model=True)
    return loaded.portfolio, loaded.timetable, loaded.problems


def folder_entries(folder: Path) -> list[PortfolioEntry]:
    """Every portfolio file of ``folder`` after the cross-file checks, in claim order.

    Two files that would share a dag_id, or an account (which would each count the other's shares
    as theirs), are first come first served in sorted file-name order (for a dag_id, a file named
    exactly as its id first): the later one gets a problem naming both files. A file that does
    not validate (with its holiday override file) claims nothing.
    """
    entries = []
    dag_files: dict[str, Path] = {}
    accounts: dict[tuple[str, str], tuple[Path, str, bool]] = {}
    claims = _claim_order(portfolio_files(folder))
    for path, portfolio_id, id_problems in claims:
        problems = list(id_problems)
        dag_id = f"rebalance_{portfolio_id}"
        if dag_id in dag_files:
            problems.append(
                f"gives the DAG id {dag_id}, which {dag_files[dag_id]} already has; rename one"
            )
            dag_id = f"rebalance_{fallback_portfolio_id(path)}"
        dag_files[dag_id] = path
        loaded = _load(path)
        facts = loaded.facts
        if not problems:
            problems += loaded.problems
        if facts is not None and not problems:
            keyed = [a for a in facts.accounts if a.key is not None]
            for account in keyed:
                key = account.key
                assert key is not None
                if key in accounts and account.ledger and accounts[key][2]:
                    continue  # both keep a ledger of their part of the account (docs/accounts.md)
                if key in accounts:
                    other, other_account, _ = accounts[key]
                    problems.append(
                        f"accounts.{account.name}: the {key[0]} account of connection "
                        f"{key[1]!r} is already used by {other} (account {other_account}); two "
                        "portfolios in one account "
                        "would each count the other's shares as theirs (docs/dags.md); to "
                        f"share it, set `ledger: true` on the account in both {other} and "
                        f"{path.name} (docs/accounts.md, ledgers)"
                    )
            if not problems:
                accounts.update((a.key, (path, a.name, a.ledger)) for a in keyed if a.key)
        if problems:
            entries.append(
                PortfolioEntry(
                    path,
                    dag_id,
                    tuple(problems),
                    loaded.data if facts is None else _read_again(path),
                )
            )
        else:
            entries.append(PortfolioEntry(path, dag_id, (), None, facts, loaded.timetable))
    live = {path for path, _, _ in claims}
    for gone in set(_LOADED) - live:
        del _LOADED[gone]
    return entries


def shard_of(path: Path, shards: int = SHARDS) -> int:
    """Which DAG file builds a portfolio file's DAG: a stable hash of the file name."""
    return zlib.crc32(path.name.encode("utf-8", "surrogateescape")) % shards


def build_dags(folder: Path, shard: int | None = None, shards: int = SHARDS) -> dict[str, DAG]:
    """One DAG per portfolio file of ``folder`` (of one shard, if given); never raises for a file.

    A file that fails to load in any way, or loses a cross-file check (``folder_entries``), becomes
    a broken-portfolio DAG (``build_broken_dag``) under the dag_id it has when valid, so a bad
    file never hides another portfolio and never becomes an import error of the DAG file (which
    would mark every DAG of that file stale).
    """
    dags: dict[str, DAG] = {}
    for entry in folder_entries(folder):
        if shard is not None and shard_of(entry.path, shards) != shard:
            continue
        problems = list(entry.problems)
        if entry.facts is not None:
            try:
                portfolio = _take_model(entry.path)
                dags[entry.dag_id] = build_dag(entry.path.resolve(), portfolio, entry.timetable)
                continue
            except ConfigError as exc:
                problems += exc.problems
            except Exception as exc:  # whatever it is, it stays with this file
                problems.append(f"cannot build its DAG: {type(exc).__name__}: {exc}")
        data = entry.data if entry.facts is None else _read_again(entry.path)
        dags[entry.dag_id] = build_broken_dag(entry.path, entry.dag_id, problems, data)
    return dags


def build_shard(dag_file: str) -> dict[str, DAG]:
    """The DAGs of the DAG file ``dags/rebalance_portfolios_<k>.py``: shard k of ``SHARDS``.

    The folder is split over several DAG files so that no single parse (and its
    ``dagbag_import_timeout``) carries every portfolio, and the dag-processor can parse the shards
    in parallel. Each shard still reads the whole folder for the cross-file checks (cheap: about
    0.3 ms a file), and builds only its own DAGs (the expensive part).
    """
    from rebalance.settings import portfolios_dir

    shard = int(Path(dag_file).stem.rpartition("_")[2])
    if not 0 <= shard < SHARDS:
        raise ValueError(f"{dag_file}: shard {shard} outside 0..{SHARDS - 1}")
    return build_dags(portfolios_dir(), shard, SHARDS)
