"""The six task bodies of a portfolio lane: fetch, validate, plan, approve, place, record.

Each body takes a ``Lane`` (which portfolio, which account, which Airflow run, which parameters)
and works through the history store: tasks pass nothing but small references between them, and
every body can be re-run (a retry) without doing its work twice. Airflow itself appears only in
``dags/`` and in the few helpers below that read connections, imported lazily.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from rebalance.brokers.base import Broker, Instrument
from rebalance.domain.market import IST
from rebalance.history.status import RunStatus
from rebalance.history.store import HistoryStore, RunKey
from rebalance.policy import Policy
from rebalance.portfolio import (
    Account,
    BrokerName,
    ExecutionMode,
    Portfolio,
    load_portfolio,
)
from rebalance.snapshot import HoldingsSnapshot

log = logging.getLogger(__name__)


class LaneStopped(RuntimeError):  # noqa: N818 - a stop, not an error
    """The lane stops here on purpose (bad data, plan mismatch, a missing connection, an expired
    login): not retried, because retrying cannot heal it. The message says what to do."""


CONNECTIONS_DOC = "docs/brokers.md#connection-fields"
ANGELONE_DOC = "docs/brokers.md#angelone-smartapi"
ZERODHA_LOGIN = (
    "rebalance broker login zerodha --api-key <key> --request-token <token> --conn-id {conn}"
)
# The task a run stopped in, by the status its record was left in.
_STAGE_OF_STATUS = {
    RunStatus.STARTED: "fetch_holdings or validate_snapshot",
    RunStatus.PLANNED: "approval",
    RunStatus.AWAITING_APPROVAL: "approval",
    RunStatus.APPROVED: "place_orders",
    RunStatus.PLACING: "place_orders",
    RunStatus.PLACED: "place_orders",
    RunStatus.PARTIALLY_FILLED: "place_orders",
}


@dataclass(frozen=True)
class Lane:
    """One account lane of one Airflow DAG run."""

    portfolio_file: str
    account: str
    dag_id: str
    airflow_run_id: str
    initiator: str = "manual"  # scheduled | manual
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_context(cls, context: Mapping[str, Any], portfolio_file: str, account: str) -> Lane:
        """The lane of a running Airflow task, from its context."""
        dag_run = context["dag_run"]
        run_type = str(getattr(dag_run, "run_type", "manual"))
        return cls(
            portfolio_file=portfolio_file,
            account=account,
            dag_id=dag_run.dag_id,
            airflow_run_id=dag_run.run_id,
            initiator="scheduled" if "scheduled" in run_type else "manual",
            params=dict(context.get("params") or {}),
        )

    @cached_property
    def portfolio(self) -> Portfolio:
        return load_portfolio(self.portfolio_file)

    @cached_property
    def account_config(self) -> Account:
        for account in self.portfolio.accounts:
            if account.name == self.account:
                return account
        raise LookupError(f"{self.portfolio_file}: no account named {self.account!r}")

    @property
    def key(self) -> RunKey:
        return RunKey(self.dag_id, self.airflow_run_id, self.account)

    @property
    def run_key(self) -> str:
        """The string order tags are derived from: stable across retries of this DAG run."""
        return f"{self.dag_id}/{self.airflow_run_id}"

    @cached_property
    def policy(self) -> Policy:
        """The portfolio's policy with the run's Params (a manual run's form) over it."""
        overrides = {
            k: v for k, v in self.params.items() if k in Policy.model_fields and v is not None
        }
        return self.portfolio.policy.with_overrides(overrides)

    @property
    def mode(self) -> ExecutionMode:
        chosen = self.params.get("mode")
        return ExecutionMode(chosen) if chosen else self.portfolio.execution.mode


def history_store() -> HistoryStore:
    from rebalance.history.database import engine_for, history_url

    return HistoryStore(engine_for(history_url()))


def make_broker(lane: Lane) -> Broker:
    """The broker of the lane's account, as the run's mode wants it.

    live: the account's broker. paper: a paper account's file-backed broker, or for a real
    account its true holdings with simulated fills. dry_run: the real reads; placing is refused
    upstream (nothing reaches place_orders' sending code).
    """
    from rebalance.brokers.base import AuthError
    from rebalance.brokers.factory import make_broker as build
    from rebalance.brokers.simulated import SimulatedExecution
    from rebalance.errors import ConfigError
    from rebalance.settings import state_dir

    account = lane.account_config
    lane_state = state_dir() / "paper" / lane.portfolio.id
    credentials = (
        None
        if account.connection_id is None
        else connection_credentials(account.connection_id, str(account.broker))
    )
    try:
        broker = build(
            account, credentials, state_dir=lane_state, portfolio_file=Path(lane.portfolio_file)
        )
    except (AuthError, ConfigError) as exc:
        raise LaneStopped(what_to_do(exc, lane)) from None
    if lane.mode is ExecutionMode.PAPER and account.broker is not BrokerName.PAPER:
        return SimulatedExecution(broker, account.name, lane_state)
    if lane.mode is ExecutionMode.LIVE and account.broker is BrokerName.PAPER:
        log.info("%s is a paper account: live mode still fills on paper", account.name)
    return broker


def connection_credentials(conn_id: str, broker: str) -> dict[str, Any]:
    """An Airflow connection as the broker factory's plain dict, every secret masked in logs.

    A connection that is not defined stops the lane (LaneStopped): no retry can create it.
    Airflow 3.3's task SDK raises ``airflow.sdk.exceptions.AirflowNotFoundException`` for it
    (``Connection.get`` -> ``_handle_connection_error``, also when no secrets backend has it).
    """
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException
    from airflow.sdk.log import mask_secret

    from rebalance.brokers.factory import SECRET_FIELDS, connection_fields

    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        raise LaneStopped(
            f"connection {conn_id!r} is not defined: add it as {CONNECTIONS_DOC} says "
            f"(a {broker} connection; or AIRFLOW_CONN_{conn_id.upper()} in .env)"
        ) from None
    credentials = {"login": conn.login, "password": conn.password, "extra": conn.extra_dejson}
    for key, value in connection_fields(credentials, broker).items():
        if key in SECRET_FIELDS and value:
            mask_secret(str(value), name=key)
    if conn.password:
        mask_secret(conn.password)
    return credentials


def what_to_do(exc: Exception, lane: Lane) -> str:
    """One line for a failure that cannot heal by retrying: what failed and what to do."""
    from rebalance.brokers.base import AuthError

    account = lane.account_config
    conn = account.connection_id or "?"
    text = " ".join(str(exc).split())  # one line, whatever the broker said
    if isinstance(exc, AuthError):
        if account.broker is BrokerName.ZERODHA:
            if "rebalance broker login" in text:
                return f"{account.name}: {text}"
            return f"{account.name}: {text}; log in again with `{ZERODHA_LOGIN.format(conn=conn)}`"
        if account.broker is BrokerName.ANGELONE:
            return (
                f"{account.name}: {text}; fix the client code, PIN, api_key or TOTP secret of "
                f"connection {conn!r} as {ANGELONE_DOC} says"
            )
    return f"{account.name}: {text}"


def approval_valid_until(lane: Lane, run: Mapping[str, Any]) -> datetime | None:
    """Until when a run's approval allows sending its legs (a retry, a resume).

    live: the approval cut-off (IST) of the day the plan was approved; paper: the approval
    timeout counted from the approval request (when the plan was made). Dry runs send nothing.
    """
    mode = ExecutionMode(run.get("mode") or lane.mode)
    if mode is ExecutionMode.DRY_RUN:
        return None
    execution = lane.portfolio.execution
    asked = run.get("planned_at") or run["created_at"]
    if mode is ExecutionMode.LIVE:
        day = (run.get("approved_at") or asked).astimezone(IST).date()
        return datetime.combine(day, execution.approval_cutoff, tzinfo=IST)
    return asked + timedelta(minutes=execution.approval_timeout_minutes)


def _open_run(lane: Lane, store: HistoryStore) -> int:
    portfolio = lane.portfolio
    return store.open_run(
        lane.key,
        portfolio_id=portfolio.id,
        portfolio_name=portfolio.name,
        broker=str(lane.account_config.broker),
        initiator=lane.initiator,
        broker_scope=",".join(a.name for a in portfolio.accounts),
        mode=str(lane.mode),
        policy=lane.policy.model_dump(mode="json"),
        targets={"weights": portfolio.target_fractions(), "cash": portfolio.cash_target_fraction},
    )


def _settle_stale(lane: Lane, store: HistoryStore, broker: Broker, settings: Any) -> None:
    """Close this account's runs left ``placing`` by a dead worker or a database outage."""
    from rebalance.brokers.base import BrokerError
    from rebalance.execution import settle_stale_runs

    if lane.account_config.broker is BrokerName.PAPER:
        modes = [str(m) for m in ExecutionMode]  # one paper book whatever the mode
    elif lane.mode is ExecutionMode.PAPER:
        modes = [str(ExecutionMode.PAPER)]  # the simulated book of a real account
    else:
        modes = [str(ExecutionMode.LIVE)]  # live and dry runs read the broker's own book
    try:
        settled = settle_stale_runs(
            store,
            lane.account,
            str(lane.account_config.broker),
            broker,
            modes=modes,
            settings=_settings(lane, settings),
        )
    except BrokerError as exc:  # the reads below will say it again, and stop or retry
        log.warning("%s: could not settle earlier runs left placing: %s", lane.account, exc)
        return
    for run_id, result in settled:
        log.warning("%s: run %d was left placing; now %s", lane.account, run_id, result.reason)


# --- the six bodies ---------------------------------------------------------------------------


def fetch_holdings(
    lane: Lane,
    store: HistoryStore,
    broker: Broker | None = None,
    settings: Any = None,  # an execution.ExecutionSettings (imported lazily); tests shorten it
) -> dict[str, Any]:
    """Open the run record, then store the account's holdings snapshot (with quotes and cash).

    The record is opened first, before the broker is built (when ``broker`` is None), so a lane
    that stops here (a missing connection, an expired login) leaves a failed record saying why.
    Runs of this account left ``placing`` earlier are then settled from the broker's book. The
    snapshot is stored as read, valid or not: validate_snapshot judges it, and the record keeps
    what the broker said either way.
    """
    from rebalance.brokers.base import AuthError, BadResponse, BrokerError, TemporaryBrokerError
    from rebalance.snapshot import raw_snapshot_from_broker

    portfolio = lane.portfolio
    run_id = _open_run(lane, store)
    if broker is None:
        try:
            broker = make_broker(lane)
        except LaneStopped as exc:
            store.transition(run_id, RunStatus.FAILED, f"stopped at fetch_holdings: {exc}")
            raise
    _settle_stale(lane, store, broker, settings)
    try:
        holdings = broker.holdings()
        wanted = {h.symbol for h in holdings} | set(portfolio.targets)
        quotes = broker.quotes([Instrument(s, portfolio.exchange) for s in sorted(wanted)])
        cash = broker.funds().available_cash
    except TemporaryBrokerError:
        raise  # a read: Airflow retries the task
    except BadResponse as exc:
        store.transition(run_id, RunStatus.INVALID, f"the broker sent data we cannot trust: {exc}")
        raise LaneStopped(str(exc)) from None
    except AuthError as exc:
        reason = what_to_do(exc, lane)
        store.transition(
            run_id,
            RunStatus.FAILED,
            f"stopped at fetch_holdings, could not read the account: {reason}",
        )
        raise LaneStopped(reason) from None
    except BrokerError as exc:
        store.transition(run_id, RunStatus.FAILED, f"could not read the account: {exc}")
        raise LaneStopped(str(exc)) from None
    snapshot = raw_snapshot_from_broker(
        holdings,
        quotes,
        cash=cash,
        taken_at=datetime.now(UTC),
        account=lane.account,
        broker=broker.name,
        target_symbols=portfolio.targets,
        exchange=portfolio.exchange,
    )
    store.update_run(run_id, snapshot=snapshot.to_records(), cash=cash)
    log.info("%s: %d holdings, cash %.2f", lane.account, len(snapshot.positions), cash)
    return {"run": run_id, "account": lane.account}


def validate_snapshot(
    lane: Lane, store: HistoryStore, now: datetime | None = None
) -> dict[str, Any]:
    """Check the stored snapshot: Pandera schema, then the Great Expectations quality suite.

    A failure records the problems (and the Data Docs page) on the run, marks it invalid and
    stops the lane before planning: nothing is ordered on data that failed validation.
    """
    from rebalance.errors import InputDataError
    from rebalance.quality import check_snapshot
    from rebalance.settings import state_dir
    from rebalance.snapshot import snapshot_from_frame

    run_id = _run_id(lane, store)
    snapshot = HoldingsSnapshot.from_records(store.run(run_id)["snapshot"])
    source = f"{lane.account} snapshot"
    try:
        snapshot_from_frame(
            snapshot.positions, source=source, cash=snapshot.cash, taken_at=snapshot.taken_at
        )
    except InputDataError as exc:
        return _invalid(lane, store, run_id, exc.problems, {"schema": "failed"})
    docs_dir = state_dir() / "data_docs" / lane.portfolio.id / f"run_{run_id}"
    report = check_snapshot(
        snapshot,
        target_symbols=lane.portfolio.targets,
        now=now or datetime.now(UTC),
        max_age=timedelta(minutes=lane.portfolio.execution.snapshot_max_age_minutes),
        docs_dir=docs_dir,
    )
    validation = {
        "success": report.success,
        "problems": report.problems,
        "results": report.results,
        "docs_path": report.docs_path,
    }
    if not report.success:
        return _invalid(lane, store, run_id, report.problems, validation)
    store.update_run(run_id, validation=validation)
    return {"run": run_id, "data_docs": report.docs_path}


def _invalid(
    lane: Lane, store: HistoryStore, run_id: int, problems: list[str], validation: dict[str, Any]
) -> dict[str, Any]:
    message = f"{lane.account} snapshot failed validation:\n" + "\n".join(
        f"  - {p}" for p in problems
    )
    store.update_run(run_id, validation={**validation, "success": False, "problems": problems})
    store.transition(run_id, RunStatus.INVALID, message)
    raise LaneStopped(message)


def _refuse_a_second_live_rebalance_today(lane: Lane, store: HistoryStore, run_id: int) -> None:
    """Stop a live lane whose account already traded in a rebalance today (IST).

    Brokers report today's delivery buys as positions, not holdings, until settlement: a second
    plan the same day would see the bought shares as missing and buy them again.
    """
    if lane.mode is not ExecutionMode.LIVE or lane.account_config.broker is BrokerName.PAPER:
        return
    today = datetime.now(IST).date()
    for run in store.runs(lane.portfolio.id, limit=50):
        same_day = run["created_at"].astimezone(IST).date() == today
        if run["id"] == run_id or run["account"] != lane.account or run["mode"] != "live":
            continue
        if same_day and any(o["filled_quantity"] > 0 for o in store.orders(run["id"])):
            reason = (
                f"account {lane.account} already traded in rebalance run {run['id']} today; "
                "its buys are not in the broker's holdings until settlement, so a second plan "
                "would buy them again. Nothing planned or ordered: run again tomorrow."
            )
            store.transition(run_id, RunStatus.FAILED, reason)
            raise LaneStopped(reason)


def plan_trades(lane: Lane, store: HistoryStore) -> dict[str, Any]:
    """Plan from the stored snapshot; write the plan and its hash before anything else happens.

    The plan is checked once more, independently of the planner (``verify_plan``: sellable
    quantities, budget, cash, lists, max weight...): a plan breaking a hard limit stops the lane.
    """
    from rebalance.errors import RebalanceError
    from rebalance.planning import plan_rebalance, verify_plan
    from rebalance.snapshot import check_no_sell_symbols

    run_id = _run_id(lane, store)
    _refuse_a_second_live_rebalance_today(lane, store, run_id)
    snapshot = HoldingsSnapshot.from_records(store.run(run_id)["snapshot"])
    portfolio = lane.portfolio
    inputs: dict[str, Any] = {
        "cash_target": portfolio.cash_target_fraction,
        "broker": str(lane.account_config.broker),
    }
    targets = portfolio.target_fractions()
    try:
        check_no_sell_symbols(snapshot, targets, lane.policy.no_sell, f"{lane.account} snapshot")
        plan = plan_rebalance(snapshot, targets, lane.policy, **inputs)
    except RebalanceError as exc:
        store.transition(run_id, RunStatus.FAILED, f"the planner refused the inputs: {exc}")
        raise LaneStopped(str(exc)) from None
    problems = verify_plan(plan, snapshot, targets, lane.policy, **inputs)
    if problems:
        reason = "the plan breaks a hard limit, nothing ordered: " + "; ".join(problems)
        store.transition(run_id, RunStatus.FAILED, reason)
        raise LaneStopped(reason)
    summary = plan.summary
    store.transition(
        run_id,
        RunStatus.PLANNED,
        f"{summary.trades} orders planned",
        plan=plan.to_dict(),
        plan_hash=plan.plan_hash,
        planned_at=datetime.now(UTC),
        portfolio_value=summary.portfolio_value,
        turnover_pct=summary.turnover_pct,
        budget_used_pct=summary.budget_used_pct,
        max_drift_before=summary.max_drift_before,
        max_drift_after=summary.max_drift_after,
        trades=summary.trades,
        estimated_charges=summary.estimated_charges,
    )
    for order in plan.orders:
        log.info("%s %d %s: %s", order.side, order.quantity, order.symbol, ", ".join(order.reasons))
    return {"run": run_id, "plan_hash": plan.plan_hash, "trades": summary.trades}


@dataclass(frozen=True)
class ApprovalRequest:
    """Either a decision made without a person, or what to show the person and until when."""

    decided: dict[str, Any] | None = None
    refused: str | None = None  # already rejected or expired: the lane stops, nothing ordered
    subject: str | None = None
    preview: str | None = None
    deadline: datetime | None = None


def request_approval(
    lane: Lane, store: HistoryStore, now: datetime | None = None
) -> ApprovalRequest:
    """Approve automatically where the rules allow; otherwise ask (status awaiting_approval)."""
    from rebalance.approval import approval_deadline, decide_automatically
    from rebalance.preview import render_preview

    run_id = _run_id(lane, store)
    run = store.run(run_id)
    status = RunStatus(run["status"])
    if status is RunStatus.APPROVED:  # a retry after the decision was recorded
        return ApprovalRequest(decided={"run": run_id, "plan_hash": run["plan_hash"]})
    if status in (RunStatus.REJECTED, RunStatus.EXPIRED):  # a retry after a final "no"
        return ApprovalRequest(refused=f"plan {status}: {run['status_reason']}")
    execution = lane.portfolio.execution
    automatic = decide_automatically(
        execution, lane.mode, run["turnover_pct"] or 0.0, run["trades"] or 0
    )
    if automatic is not None:
        return ApprovalRequest(decided=record_decision(lane, store, automatic, by="rebalance"))
    now = now or datetime.now(UTC)
    store.transition(run_id, RunStatus.AWAITING_APPROVAL, "waiting for a person's approval")
    preview = render_preview(
        run["plan"],
        portfolio_name=lane.portfolio.name,
        account=lane.account,
        mode=str(lane.mode),
        plan_hash=run["plan_hash"],
    )
    subject = (
        f"Approve rebalance of {lane.portfolio.name} ({lane.account}): {run['trades']} orders, "
        f"turnover {run['turnover_pct']:.2f}%"
    )
    return ApprovalRequest(
        subject=subject, preview=preview, deadline=approval_deadline(now, execution, lane.mode)
    )


def record_decision(
    lane: Lane, store: HistoryStore, decision: Any, by: str | None
) -> dict[str, Any]:
    """Record an approval decision (``approval.Decision``) and return what place_orders needs."""
    from rebalance.approval import Decision

    run_id = _run_id(lane, store)
    run = store.run(run_id)
    fields = {
        "approval_decision": str(decision),
        "approved_by": by,
        "approved_at": datetime.now(UTC),
    }
    if decision in (Decision.AUTO, Decision.APPROVED, Decision.NOT_NEEDED):
        store.transition(run_id, RunStatus.APPROVED, f"{decision} by {by or 'unknown'}", **fields)
    elif decision is Decision.REJECTED:
        store.transition(run_id, RunStatus.REJECTED, f"rejected by {by or 'unknown'}", **fields)
    else:
        store.transition(run_id, RunStatus.EXPIRED, "no answer by the approval deadline", **fields)
    log.info("%s: plan %s %s by %s", lane.account, run["plan_hash"][:12], decision, by)
    return {"run": run_id, "plan_hash": run["plan_hash"], "decision": str(decision)}


def check_prices_unchanged(
    lane: Lane, store: HistoryStore, broker: Broker, settings: Any = None
) -> None:
    """Stop before sending if the price of a leg not yet sent moved more than
    ``max_price_move_pct`` since planning: an approval covers the plan at its prices, not stale
    orders (re-run to re-plan).

    Judged on the legs still to send: all of them before the first send; on a retry or a resume
    (run ``placing`` or ``interrupted``), those ``pending`` or ``not_sent``. Legs already sent
    are settled, not judged. A fresh run that fails the guard is failed; one under way has its
    unsent legs recorded ``not_sent`` (the reason says which prices moved) and is settled from
    the book.
    """
    from rebalance.history.status import OrderState

    run_id = _run_id(lane, store)
    run = store.run(run_id)
    status = RunStatus(run["status"])
    if status not in (RunStatus.APPROVED, RunStatus.PLACING, RunStatus.INTERRUPTED):
        return
    if lane.mode is ExecutionMode.DRY_RUN or not run["plan"] or not run["plan"]["orders"]:
        return
    orders = run["plan"]["orders"]
    if status is not RunStatus.APPROVED:
        legs = store.orders(run_id)
        unsent = {
            leg["symbol"]
            for leg in legs
            if OrderState(leg["state"]) in (OrderState.PENDING, OrderState.NOT_SENT)
        }
        if legs:  # no legs written yet: none were sent
            orders = [o for o in orders if o["symbol"] in unsent]
        if not orders:
            return
    limit = lane.policy.max_price_move_pct
    quotes = broker.quotes([Instrument(o["symbol"], o["exchange"]) for o in orders])
    moved = []
    for order in orders:
        quote = quotes.get(order["symbol"])
        if quote is None:
            moved.append(f"{order['symbol']}: no quote now")
            continue
        change = 100 * (quote.last_price - order["price"]) / order["price"]
        if abs(change) > limit:
            then, now = order["price"], quote.last_price
            moved.append(f"{order['symbol']}: {then:,.2f} -> {now:,.2f} ({change:+.2f}%)")
    if not moved:
        return
    reason = f"prices moved more than {limit}% since planning: {'; '.join(moved)}"
    if status is RunStatus.APPROVED:
        reason = f"{reason}; nothing ordered, re-run to re-plan"
        store.transition(run_id, RunStatus.FAILED, reason)
        raise LaneStopped(reason)
    from rebalance.execution import settle_interrupted

    result = settle_interrupted(
        store, run_id, broker, settings=_settings(lane, settings), why=reason, resumable=False
    )
    raise LaneStopped(f"legs not yet sent were not sent: {result.reason}")


def _settings(lane: Lane, settings: Any) -> Any:
    from rebalance.execution import ExecutionSettings

    return settings or ExecutionSettings.for_deadline(
        lane.portfolio.execution.order_deadline_minutes
    )


def place_orders(
    lane: Lane,
    store: HistoryStore,
    broker: Broker,
    approved_hash: str,
    settings: Any = None,  # an execution.ExecutionSettings (imported lazily); tests shorten it
    now: Any = None,  # a clock (tests)
    resume: bool = False,
) -> dict[str, Any]:
    """Place exactly the approved plan (same hash), once per leg, and record every outcome.

    Safe to run again and to run twice at once: see ``rebalance.execution``. Airflow's retry of
    this task finishes an interrupted placement (reconciled by tag first), within the approval's
    validity; ``resume`` (``rebalance resume``) reopens an ``interrupted`` run the same way. A
    plan that is not the approved one, an approval no longer valid and an expired login stop the
    lane; another copy still placing after the lock wait raises RunLocked (the task fails and its
    retry reconciles); a temporary broker error fails the task, and its retry carries on.
    """
    from rebalance.brokers.base import AuthError
    from rebalance.execution import ApprovalLapsed, PlanMismatch, place_approved

    run_id = _run_id(lane, store)
    record = store.run(run_id)
    stored = record["plan"]
    legs = len(stored["orders"]) if stored else 0
    log.info("%s: run %d, %d orders in the plan to place", lane.account, run_id, legs)
    extra = {"now": now} if now is not None else {}
    try:
        result = place_approved(
            store,
            run_id,
            broker,
            approved_hash=approved_hash,
            run_key=lane.run_key,
            account=lane.account,
            settings=_settings(lane, settings),
            dry_run=lane.mode is ExecutionMode.DRY_RUN,
            valid_until=approval_valid_until(lane, record),
            # A cleared place_orders of an interrupted run finishes it, like `rebalance resume`.
            resume=resume or record["status"] == RunStatus.INTERRUPTED,
            **extra,
        )
    except PlanMismatch as exc:
        raise LaneStopped(f"refusing to place orders outside the approved plan: {exc}") from None
    except ApprovalLapsed as exc:
        raise LaneStopped(f"nothing more sent: {exc}") from None
    except AuthError as exc:
        raise LaneStopped(what_to_do(exc, lane)) from None
    log.info("%s: run %d %s: %s", lane.account, run_id, result.status, result.reason)
    return {
        "run": run_id,
        "placed": result.placed,
        "sent": result.sent,
        "status": str(result.status),
    }


def _deselected(lane: Lane) -> bool:
    chosen = lane.params.get("accounts")
    return chosen is not None and lane.account not in chosen


def _skip(reason: str) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    raise AirflowSkipException(reason)


def record_run(
    lane: Lane,
    store: HistoryStore,
    broker: Broker | None = None,
    settings: Any = None,  # an execution.ExecutionSettings (imported lazily); tests shorten it
    now: Any = None,  # a clock (tests)
) -> dict[str, Any]:
    """Close the run record, whatever happened upstream, then fail if the lane failed.

    The DAG run's state is the truth: this is the lane's last task (trigger rule all_done), so
    it raises LaneStopped whenever the run ended ``failed``, ``invalid`` or ``interrupted``,
    after recording it; a deselected account is skipped; rejected and expired plans are not
    failures.

    * No record (the lane stopped before fetch_holdings opened it): one is opened as failed,
      with why if it can be found again (building the broker: a missing connection, a login).
    * ``placing`` (place_orders died or ran out of retries): settled from the broker's book
      (nothing sent); legs never sent are ``not_sent``, and while the approval is valid the run
      is ``interrupted`` (``rebalance resume RUN`` finishes it). If the book cannot be read the
      run stays ``placing``: the next lane of the account, or ``rebalance settle RUN``, settles
      it.
    * ``approved`` (place_orders stopped before placing): ``interrupted`` while the approval is
      valid, else failed.
    * ``placed`` / ``partially_filled``: ``completed``. Anything else not final: failed, with the
      task it stopped in.
    """
    from rebalance.execution import RunLocked, settle_interrupted

    if _deselected(lane):
        _skip(f"account {lane.account} not selected for this run")
    clock = now or (lambda: datetime.now(UTC))
    run_id = store.find_run(lane.key)
    if run_id is None:
        run_id = _open_failed(lane, store)
    status = store.status(run_id)
    if status is RunStatus.PLACING:
        try:
            result = settle_interrupted(
                store,
                run_id,
                broker or make_broker(lane),
                settings=_settings(lane, settings),
                now=clock,
            )
            log.warning("%s: run %d placement interrupted: %s", lane.account, run_id, result.reason)
        except RunLocked as exc:
            reason = f"placement still running elsewhere, record left placing: {exc}"
            store.note(run_id, reason)
            raise LaneStopped(reason) from None
        except Exception as exc:  # the broker is unreachable: the record cannot be closed yet
            reason = (
                f"placement interrupted and the broker's book could not be read ({exc}); run "
                f"{run_id} stays placing until the next run of {lane.account} or `rebalance "
                f"settle {run_id}` settles it from the book"
            )
            store.note(run_id, reason)
            raise LaneStopped(" ".join(reason.split())) from None
        status = store.status(run_id)
    if status is RunStatus.APPROVED and lane.mode is not ExecutionMode.DRY_RUN:
        run = store.run(run_id)
        valid_until = approval_valid_until(lane, run)
        if valid_until is not None and clock() < valid_until:
            until = valid_until.astimezone(IST).strftime("%H:%M IST")
            store.transition(
                run_id,
                RunStatus.INTERRUPTED,
                f"place_orders stopped before sending anything; `rebalance resume {run_id}` "
                f"places the approved plan until {until}",
                placement={"valid_until": valid_until.isoformat()},
            )
            status = RunStatus.INTERRUPTED
    if not status.is_final:
        if status in (RunStatus.PLACED, RunStatus.PARTIALLY_FILLED):
            store.transition(run_id, RunStatus.COMPLETED, None)
        else:
            stage = _STAGE_OF_STATUS.get(status, "an upstream task")
            store.transition(
                run_id,
                RunStatus.FAILED,
                f"stopped at {stage} (the run was {status}); that task's log says why",
            )
    record = store.run(run_id)
    final = RunStatus(record["status"])
    log.info("%s: run %d closed as %s", lane.account, run_id, final)
    if final in (RunStatus.FAILED, RunStatus.INVALID, RunStatus.INTERRUPTED):
        raise LaneStopped(f"run {run_id} ended {final}: {record['status_reason']}")
    unfinished = _unfinished(record)
    if unfinished:
        raise LaneStopped(
            f"run {run_id} ended {final} with {unfinished}: {record['status_reason']}"
        )
    return {"run": run_id, "status": str(final)}


def _unfinished(record: Mapping[str, Any]) -> str | None:
    """Legs a closed run left never sent or with an unknown outcome: the plan is not done."""
    placement = record.get("placement") or {}
    parts = []
    if placement.get("not_sent"):
        parts.append(f"{placement['not_sent']} legs never sent")
    if placement.get("unknown"):
        parts.append(f"{placement['unknown']} legs of unknown outcome")
    return " and ".join(parts) or None


class NotResumable(LookupError):  # noqa: N818
    """``rebalance resume``: the run has nothing to resume (or is not this portfolio's)."""


def lane_of_run(store: HistoryStore, run_id: int, portfolio_file: str) -> Lane:
    """The lane a stored run belongs to, with its mode and policy as they were."""
    record = store.run(run_id)
    lane = Lane(
        portfolio_file=portfolio_file,
        account=record["account"],
        dag_id=record["dag_id"],
        airflow_run_id=record["airflow_run_id"],
        initiator=record["initiator"],
        params={**(record["policy"] or {}), "mode": record["mode"]},
    )
    if lane.portfolio.id != record["portfolio_id"]:
        raise NotResumable(
            f"run {run_id} belongs to portfolio {record['portfolio_id']!r}, "
            f"not to {portfolio_file} ({lane.portfolio.id!r})"
        )
    return lane


def resume_run(
    lane: Lane,
    store: HistoryStore,
    broker: Broker,
    *,
    settle_only: bool = False,
    settings: Any = None,
    now: Any = None,
) -> dict[str, Any]:
    """``rebalance resume RUN``: finish an interrupted placement, or settle it from the book.

    Resume: a run ``interrupted`` (or left ``placing`` with no placer alive) sends its legs not
    yet sent, in the same run with the same tags, after the price-move guard and only within
    the approval's validity; then the run is closed. ``settle_only``: reconcile from the book,
    send nothing, close the run for good (``rebalance settle``).
    """
    from rebalance.execution import settle_interrupted

    run_id = _run_id(lane, store)
    record = store.run(run_id)
    status = RunStatus(record["status"])
    if status not in (RunStatus.INTERRUPTED, RunStatus.PLACING):
        raise NotResumable(
            f"run {run_id} is {status}: only an interrupted placement (status interrupted or "
            "placing) can be resumed or settled"
        )
    clock = now or (lambda: datetime.now(UTC))
    if settle_only:
        settle_interrupted(
            store,
            run_id,
            broker,
            settings=_settings(lane, settings),
            now=clock,
            why="settled by `rebalance settle`",
            resumable=False,
            close=True,
        )
    else:
        check_prices_unchanged(lane, store, broker, settings)
        place_orders(
            lane, store, broker, record["plan_hash"], settings=settings, now=now, resume=True
        )
        if store.status(run_id) in (RunStatus.PLACED, RunStatus.PARTIALLY_FILLED):
            store.transition(run_id, RunStatus.COMPLETED, None)
    record = store.run(run_id)
    return {
        "run": run_id,
        "status": record["status"],
        "reason": record["status_reason"],
        "unfinished": _unfinished(record),
    }


def _open_failed(lane: Lane, store: HistoryStore) -> int:
    """A failed record for a lane that stopped before fetch_holdings could open one."""
    why = "fetch_holdings failed before opening the run; its log says why"
    try:
        make_broker(lane)  # the likely cause, found again: a connection, a login
    except LaneStopped as exc:
        why = str(exc)
    except Exception as exc:
        why = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    try:
        run_id = _open_run(lane, store)
    except Exception as exc:  # the portfolio file itself no longer loads
        raise LaneStopped(
            f"stopped before fetch_holdings could open the run: {why}; {exc}"
        ) from exc
    store.transition(
        run_id, RunStatus.FAILED, f"stopped before fetch_holdings could open the run: {why}"
    )
    log.error("%s: run %d opened as failed: %s", lane.account, run_id, why)
    return run_id


def _run_id(lane: Lane, store: HistoryStore) -> int:
    run_id = store.find_run(lane.key)
    if run_id is None:
        raise LookupError(f"no run record for {lane.key}: fetch_holdings has not run")
    return run_id
