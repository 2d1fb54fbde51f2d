"""Builds one Airflow DAG per portfolio file. Imported by ``dags/rebalance_portfolios_<k>.py``.

Parse-time cost matters (the DAG processor re-parses the folder every 30 s), so this module imports
only Airflow's SDK, pydantic models and PyYAML at top level; pandas, Great Expectations, broker
clients and SQLAlchemy load inside the task bodies. No database or network access at parse time.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
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
from rebalance.portfolio import BrokerName, ExecutionMode, Portfolio, portfolio_from_data
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

TASK_ORDER = (
    "fetch_holdings",
    "validate_snapshot",
    "plan_trades",
    "approval",
    "place_orders",
    "record_run",
)
START_DATE = pendulum.datetime(2026, 1, 1, tz=IST_NAME)
READ_RETRIES = 2
APPROVAL_RETRIES = 2
# Placement is idempotent (legs written ahead, the broker's book reconciled by tag before anything
# is sent again), so a retry after a crash finishes the approved plan instead of abandoning it.
PLACE_RETRIES = 3
PLACE_RETRY_DELAY = timedelta(seconds=30)
RECORD_RETRIES = 2
RECORD_RETRY_DELAY = timedelta(seconds=30)
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
    return {"queue": queue} if queue else {}


# Airflow checks every Param's schema against its meta-schema whenever it validates a value (once
# per DAG at each parse). Draft-07's meta-schema checks in a quarter of the time of the default
# (2020-12), and it has every keyword these schemas use, with the same meaning.
PARAM_SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"


def _param(default: Any, *, description: str | None = None, **schema: Any) -> Param:
    """A Param of the manual-run form, its JSON Schema in draft-07 (see PARAM_SCHEMA_DIALECT)."""
    return Param(
        default, description=description, schema={"$schema": PARAM_SCHEMA_DIALECT, **schema}
    )


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
            return tasks.fetch_holdings(lane, store)
        finally:  # a triggered run records its breach, whether or not the read went through
            if lane.initiator == "drift" and (run_id := store.find_run(lane.run_key)):
                store.update_run(run_id, trigger_event=_triggering_breach())


def _validate_snapshot(step: LaneStepOperator, context: Any) -> dict[str, Any]:
    from rebalance import tasks, wiring

    with _stopping_fails_without_retry():
        lane = _lane(step.portfolio_file, step.account)
        store = wiring.open_store()
        result = tasks.validate_snapshot(lane, store)
        _gate_on_drift(lane, store)
        return result


def _gate_on_drift(lane: Lane, store: Any) -> None:
    """``trigger: schedule_and_drift``: a scheduled lane inside its bands ends here, skipped,
    recorded as "inside bands, nothing to do"; nothing is planned or ordered (docs/drift.md)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from rebalance.drift_watch import gate_lane

    if lane.portfolio.trigger.mode is not TriggerMode.SCHEDULE_AND_DRIFT:
        return
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
    from rebalance import tasks, wiring

    with _stopping_fails_without_retry():
        return tasks.plan_trades(_lane(step.portfolio_file, step.account), wiring.open_store())


def _place_orders(step: LaneStepOperator, context: Any) -> dict[str, Any]:
    from rebalance import tasks, wiring

    approved = context["ti"].xcom_pull(task_ids=step.approval_task_id)
    with _stopping_fails_without_retry():
        lane = _lane(step.portfolio_file, step.account)
        store = wiring.open_store()
        broker = wiring.broker_for(lane, store)
        tasks.check_prices_unchanged(lane, store, broker)
        return tasks.place_orders(lane, store, broker, approved["plan_hash"])


def _record_run(step: LaneStepOperator, context: Any) -> dict[str, Any]:
    from rebalance import tasks, wiring

    with _stopping_fails_without_retry():
        return tasks.record_run(_lane(step.portfolio_file, step.account), wiring.open_store())


_STEPS = {
    "fetch_holdings": _fetch_holdings,
    "validate_snapshot": _validate_snapshot,
    "plan_trades": _plan_trades,
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
        retry_delay=timedelta(seconds=5),
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
            "retry_delay": timedelta(seconds=30),
            "on_failure_callback": failure_notifiers(),
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
    # The form's Params are set on the DAG once its tasks exist: an operator created inside a DAG
    # deep-copies the DAG's Params (about 40% of the parse time of a folder), yet a task gets them
    # at run time anyway (Airflow merges the DAG's Params, the task's and the run's conf).
    dag.params = _params(portfolio)  # type: ignore[assignment]  # attrs converts the dict
    return dag


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


def _account_keys(portfolio: Portfolio) -> list[tuple[tuple[str, str], str]]:
    """What identifies each broker account, with the account's name in the portfolio.

    Zerodha / AngelOne: the broker and the Airflow connection. A paper account is never shared:
    its order book and fills live under the portfolio's own id (``state_dir/paper/<id>``), and its
    ``holdings_file`` only seeds it, so two portfolios may start from one file.
    """
    return [
        ((str(account.broker), str(account.connection_id)), account.name)
        for account in portfolio.accounts
        if account.broker is not BrokerName.PAPER
    ]


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

    ``portfolio`` is set when the file validated and claimed its dag_id and accounts; otherwise
    ``problems`` says why not (and ``data`` is what could be read, for the broken DAG's schedule).
    """

    path: Path
    dag_id: str
    problems: tuple[str, ...]
    data: Any = None
    portfolio: Portfolio | None = None
    timetable: TradingCalendarTimetable | None = None


def _stat_key(path: Path) -> tuple[int, ...] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True)
class _Loaded:
    data: Any = None
    portfolio: Portfolio | None = None
    timetable: TradingCalendarTimetable | None = None
    problems: tuple[str, ...] = ()


# Per file, with its stat: the shard files of one DagBag (tests, benchmarks, ``dag.test``) read
# and validate each portfolio file once, not once per shard.
_LOADED: dict[Path, tuple[tuple[int, ...], _Loaded]] = {}


def _load(path: Path) -> _Loaded:
    """One file read, validated and its timetable built (with its holiday overrides); no raise."""
    key = _stat_key(path)
    cached = _LOADED.get(path)
    if key is not None and cached is not None and cached[0] == key:
        return cached[1]
    data: Any = None
    try:
        data = read_portfolio_data(path)
        portfolio = portfolio_from_data(data, path)
        check_named_files(portfolio, path)
        loaded = _Loaded(data, portfolio, build_timetable(portfolio, path))
    except ConfigError as exc:
        loaded = _Loaded(data, problems=tuple(exc.problems))
    except Exception as exc:  # whatever it is, it stays with this file
        loaded = _Loaded(data, problems=(f"cannot be loaded: {type(exc).__name__}: {exc}",))
    if key is not None and key == _stat_key(path):
        _LOADED[path] = (key, loaded)
    return loaded


def loaded_portfolio(
    path: Path,
) -> tuple[Portfolio | None, TradingCalendarTimetable | None, tuple[str, ...]]:
    """The portfolio file validated and its timetable built, or its problems: cached by (path,
    stat) like the DAG files' reads (the Rebalance page reads every file per request)."""
    loaded = _load(path)
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
    accounts: dict[tuple[str, str], tuple[Path, str]] = {}
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
        portfolio = loaded.portfolio
        if not problems:
            problems += loaded.problems
        if portfolio is not None and not problems:
            keys = _account_keys(portfolio)
            for key, account in keys:
                if key in accounts:
                    other, other_account = accounts[key]
                    problems.append(
                        f"accounts.{account}: the {key[0]} account of connection {key[1]!r} is "
                        f"already used by {other} (account {other_account}); two portfolios in "
                        "one account "
                        "would each count the other's shares as theirs (docs/dags.md)"
                    )
            if not problems:
                accounts.update((key, (path, account)) for key, account in keys)
        if problems:
            entries.append(PortfolioEntry(path, dag_id, tuple(problems), loaded.data))
        else:
            entries.append(
                PortfolioEntry(path, dag_id, (), loaded.data, portfolio, loaded.timetable)
            )
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
        if entry.portfolio is not None:
            try:
                dags[entry.dag_id] = build_dag(
                    entry.path.resolve(), entry.portfolio, entry.timetable
                )
                continue
            except ConfigError as exc:
                problems += exc.problems
            except Exception as exc:  # whatever it is, it stays with this file
                problems.append(f"cannot build its DAG: {type(exc).__name__}: {exc}")
        dags[entry.dag_id] = build_broken_dag(entry.path, entry.dag_id, problems, entry.data)
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
