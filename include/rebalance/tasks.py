"""The task bodies of a lane: fetch, validate, plan, record the decision, place, record.

Orchestration only: each body takes a ``Lane`` and the history store (``wiring.open_store()``),
asks the services (``execution``, ``manual_queue``, ``quality``, ``trading_rules``, ``planning``,
``preview_inputs``) and records what they said. Bodies pass small references between them and
can be re-run (a retry) without doing their work twice. Airflow runs them from ``dag_factory.py``
and ``approval_operator.py`` (which also asks for the approval); ``resume.py`` reuses
``check_prices_unchanged`` and ``place_orders``. A lane that must stop raises ``LaneStopped``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from rebalance import approval
from rebalance.approval import Decided, Decision
from rebalance.brokers.base import AuthError, Broker, BrokerError, TemporaryBrokerError
from rebalance.domain.market import IST
from rebalance.errors import RebalanceError
from rebalance.execution import (
    ApprovalLapsed,
    ExecutionSettings,
    PlanMismatch,
    closing,
    place_approved,
    settle_interrupted,
    settle_placing,
    settle_stale_of_account,
    unfinished_legs,
)
from rebalance.history.status import RunStatus
from rebalance.history.store import HistoryStore
from rebalance.lane import Lane, LaneStopped, stop_run
from rebalance.manual_queue import ManualQueueStopped, place_by_hand
from rebalance.portfolio import ExecutionMode
from rebalance.preview_inputs import unauthorised_holdings
from rebalance.tax_history import context_for, record_fills
from rebalance.trading_rules import earlier_live_runs, moved_since_planning, second_live_run
from rebalance.wiring import broker_for, open_failed_run, read_account, read_failure, what_to_do

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def fetch_holdings(
    lane: Lane,
    store: HistoryStore,
    broker: Broker | None = None,
    settings: ExecutionSettings | None = None,  # tests shorten it
) -> dict[str, Any]:
    """Open the run record, then store the account's holdings snapshot (with quotes and cash).

    The record is opened first, before the broker is built (when ``broker`` is None), so a lane
    that stops here (a missing connection, an expired login) leaves a failed record saying why.
    Runs of this account left ``placing`` earlier are then settled from the broker's book. The
    snapshot is stored as read, valid or not: validate_snapshot judges it.
    """
    run_id = store.open_run(lane.run_key, **lane.run_fields())
    if broker is None:
        try:
            broker = broker_for(lane, store)
        except LaneStopped as exc:
            store.transition(run_id, RunStatus.FAILED, f"stopped at fetch_holdings: {exc}")
            raise
    broker_name = lane.account_config.broker
    settings = lane.execution_settings(settings)
    settle_stale_of_account(store, lane.account, broker_name, broker, lane.mode, settings)
    try:
        holdings, snapshot = read_account(broker, lane.portfolio, lane.account)
    except TemporaryBrokerError:
        raise  # a read: Airflow retries the task
    except BrokerError as exc:
        status, why, stopped = read_failure(exc, lane)
        store.transition(run_id, status, why)
        raise LaneStopped(stopped) from None
    records = snapshot.to_records()
    records["unauthorised"] = unauthorised_holdings(holdings)
    store.update_run(run_id, snapshot=records, cash=snapshot.cash)
    log.info("%s: %d holdings, cash %.2f", lane.account, len(snapshot.positions), snapshot.cash)
    return {"run": run_id, "account": lane.account}


def validate_snapshot(
    lane: Lane, store: HistoryStore, now: datetime | None = None
) -> dict[str, Any]:
    """Check the stored snapshot: Pandera schema, then the Great Expectations quality suite.

    A failure records the problems (and the Data Docs page) on the run, marks it invalid and
    stops the lane before planning: nothing is ordered on data that failed validation.
    """
    from rebalance.quality import validate_snapshot as judge
    from rebalance.settings import state_dir

    run_id = lane.run_id(store)
    result = judge(
        store.run(run_id).holdings_snapshot(),
        source=f"{lane.account} snapshot",
        target_symbols=lane.portfolio.targets,
        now=now or datetime.now(UTC),
        max_age=timedelta(minutes=lane.portfolio.execution.snapshot_max_age_minutes),
        docs_dir=state_dir() / "data_docs" / lane.portfolio.id / f"run_{run_id}",
    )
    store.update_run(run_id, validation=result.record)
    if not result.success:
        problems = "".join(f"\n  - {p}" for p in result.problems)
        reason = f"{lane.account} snapshot failed validation:{problems}"
        stop_run(store, run_id, RunStatus.INVALID, reason)
    return {"run": run_id, "data_docs": result.docs_path}


def second_live_run_refusal(lane: Lane, store: HistoryStore, run_id: int) -> str | None:
    """Why run ``run_id`` may not trade today (``trading_rules.second_live_run``), or None."""
    others = store.runs(lane.portfolio.id, limit=50)
    earlier = earlier_live_runs(others, run_id, lane.account, store.filled_shares)
    today = datetime.now(IST).date()
    return second_live_run(lane.account, lane.account_config.broker, lane.mode, today, earlier)


def plan_trades(lane: Lane, store: HistoryStore) -> dict[str, Any]:
    """Plan from the stored snapshot; write the plan and its hash before anything else happens.

    The second-live-run rule goes first. The plan is checked once more, independently of the
    planner (``verify_plan``): a plan breaking a hard limit stops the lane.
    """
    from rebalance.planning import plan_rebalance, verify_plan
    from rebalance.snapshot import check_no_sell_symbols
    from rebalance.target_model_task import plan_targets
    from rebalance.target_service import with_target_reasons

    run_id = lane.run_id(store)
    if refused := second_live_run_refusal(lane, store, run_id):
        from airflow.sdk.exceptions import AirflowSkipException

        store.transition(run_id, RunStatus.SKIPPED, refused)
        log.warning("%s: run %d skipped: %s", lane.account, run_id, refused)
        raise AirflowSkipException(refused)
    snapshot = store.run(run_id).holdings_snapshot()
    portfolio = lane.portfolio
    inputs: dict[str, Any] = {
        "cash_target": portfolio.cash_target_fraction,
        "broker": str(lane.account_config.broker),
        "scrip_groups": portfolio.execution.bse_scrip_groups,
        "tax": context_for(store.engine, lane.policy, lane.account, snapshot),  # issue 15
    }
    targets, target_reasons = plan_targets(lane, store, run_id)
    try:
        check_no_sell_symbols(snapshot, targets, lane.policy.no_sell, f"{lane.account} snapshot")
        plan = plan_rebalance(snapshot, targets, lane.policy, **inputs)
        plan = with_target_reasons(plan, target_reasons)
    except RebalanceError as exc:
        store.transition(run_id, RunStatus.FAILED, f"the planner refused the inputs: {exc}")
        raise LaneStopped(str(exc)) from None
    problems = verify_plan(plan, snapshot, targets, lane.policy, **inputs)
    if problems:
        reason = "the plan breaks a hard limit, nothing ordered: " + "; ".join(problems)
        stop_run(store, run_id, RunStatus.FAILED, reason)
    store.record_plan(run_id, plan, planned_at=datetime.now(UTC))
    for order in plan.orders:
        log.info("%s %d %s: %s", order.side, order.quantity, order.symbol, ", ".join(order.reasons))
    return {"run": run_id, "plan_hash": plan.plan_hash, "trades": plan.summary.trades}


def record_decision(lane: Lane, store: HistoryStore, decision: Decision, by: str | None) -> Decided:
    """Record an approval decision and return what place_orders needs."""
    return approval.record_decision(
        store, lane.run_id(store), decision, by=by, account=lane.account
    )


def check_prices_unchanged(
    lane: Lane, store: HistoryStore, broker: Broker, settings: ExecutionSettings | None = None
) -> None:
    """Stop before sending if the price of a leg not yet sent moved more than
    ``max_price_move_pct`` since planning (``trading_rules.moved_since_planning``).

    A fresh run (``approved``) that fails the rule is failed (re-run to re-plan); one under way
    (a retry or a resume: ``placing``, ``interrupted``) has its unsent legs recorded ``not_sent``
    and is settled from the book.
    """
    run = store.run(lane.run_id(store))
    status = run.run_status
    if status not in _SENDING or lane.mode is ExecutionMode.DRY_RUN:
        return
    legs = None if status is RunStatus.APPROVED else store.orders(run.id)
    reason = moved_since_planning(run, legs, broker.quotes, lane.policy.max_price_move_pct)
    if reason is None:
        return
    if status is RunStatus.APPROVED:
        stop_run(store, run.id, RunStatus.FAILED, f"{reason}; nothing ordered, re-run to re-plan")
    settings = lane.execution_settings(settings)
    result = settle_interrupted(
        store, run.id, broker, settings=settings, why=reason, resumable=False
    )
    raise LaneStopped(f"legs not yet sent were not sent: {result.reason}")


def place_orders(
    lane: Lane,
    store: HistoryStore,
    broker: Broker,
    approved_hash: str,
    settings: ExecutionSettings | None = None,  # tests shorten it
    now: Clock | None = None,  # tests
    resume: bool = False,
) -> dict[str, Any]:
    """Place exactly the approved plan (same hash), once per leg, and record every outcome.

    Safe to run again and to run twice at once: see ``rebalance.execution``. Airflow's retry
    finishes an interrupted placement, within the approval's validity; ``resume`` (``rebalance
    resume``) reopens an ``interrupted`` run the same way. Another copy still placing after the
    lock wait raises RunLocked (the task fails and its retry settles); a temporary broker error
    fails the task, and its retry carries on.
    """
    run_id = lane.run_id(store)
    record = store.run(run_id)
    if lane.mode is ExecutionMode.MANUAL_QUEUE:
        try:
            placed, status = place_by_hand(
                store,
                broker,
                record,
                approved_hash,
                portfolio_id=lane.portfolio.id,
                account=lane.account,
                broker_name=str(lane.account_config.broker),
                tag_seed=lane.tag_seed,
                settings=lane.execution_settings(settings),
                valid_until=lane.valid_until(record),
                clock=now or _utcnow,
            )
        except ManualQueueStopped as exc:
            raise LaneStopped(str(exc)) from None
        return {"run": run_id, "placed": placed, "sent": 0, "status": status}
    legs = len(record.plan["orders"]) if record.plan else 0
    log.info("%s: run %d, %d orders in the plan to place", lane.account, run_id, legs)
    try:
        result = place_approved(
            store,
            run_id,
            broker,
            approved_hash=approved_hash,
            tag_seed=lane.tag_seed,
            account=lane.account,
            settings=lane.execution_settings(settings),
            dry_run=lane.mode is ExecutionMode.DRY_RUN,
            valid_until=lane.valid_until(record),
            # A cleared place_orders of an interrupted run finishes it, like `rebalance resume`.
            resume=resume or record.status == RunStatus.INTERRUPTED,
            now=now or _utcnow,
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


def record_run(
    lane: Lane,
    store: HistoryStore,
    broker: Broker | None = None,
    settings: ExecutionSettings | None = None,  # tests shorten it
    now: Clock | None = None,  # tests
) -> dict[str, Any]:
    """Close the run record, whatever happened upstream, then fail if the lane failed.

    The lane's last task (trigger rule all_done): it raises LaneStopped whenever the run ended
    ``failed``, ``invalid`` or ``interrupted``, after recording it; a deselected account is
    skipped; rejected and expired plans are not failures. A lane that stopped before
    fetch_holdings gets a failed record saying why. ``placing``: settled from the broker's book
    (nothing sent; ``interrupted`` while the approval is valid, or left ``placing`` when the book
    cannot be read). ``approved``: ``interrupted`` while the approval is valid. ``placed`` /
    ``partially_filled``: ``completed``. Anything else not final: failed, naming the task.
    """
    if lane.deselected:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(f"account {lane.account} not selected for this run")
    clock = now or _utcnow
    run_id = store.find_run(lane.run_key)
    if run_id is None:
        run_id = open_failed_run(lane, store)
    status = store.status(run_id)
    if status is RunStatus.PLACING:
        settings = lane.execution_settings(settings)
        opener = (lambda: broker) if broker is not None else (lambda: broker_for(lane, store))
        stopped = settle_placing(store, run_id, lane.account, opener, settings, clock)
        if stopped is not None:
            raise LaneStopped(stopped)
        status = store.status(run_id)
    valid_until = lane.valid_until(store.run(run_id)) if status is RunStatus.APPROVED else None
    dry_run = lane.mode is ExecutionMode.DRY_RUN
    close = closing(status, run_id, dry_run=dry_run, valid_until=valid_until, now=clock())
    if close is not None:
        store.transition(run_id, close.status, close.reason, **close.fields())
    record_fills(store.engine, run_id)  # the run's fills extend the tax lots (issue 15)
    record = store.run(run_id)
    final = record.run_status
    log.info("%s: run %d closed as %s", lane.account, run_id, final)
    if final in (RunStatus.FAILED, RunStatus.INVALID, RunStatus.INTERRUPTED):
        raise LaneStopped(f"run {run_id} ended {final}: {record.status_reason}")
    if unfinished := unfinished_legs(record.placement):
        raise LaneStopped(f"run {run_id} ended {final} with {unfinished}: {record.status_reason}")
    return {"run": run_id, "status": str(final)}


_SENDING = (RunStatus.APPROVED, RunStatus.PLACING, RunStatus.INTERRUPTED)


def _utcnow() -> datetime:
    return datetime.now(UTC)
