"""The six task bodies of a lane: fetch, validate, plan, approve, place, record; and resume.

Orchestration only: each body takes a ``Lane`` and the history store (``wiring.open_store()``),
asks the services (``execution``, ``quality``, ``approval``, ``trading_rules``, ``planning``) and
records what they said. Tasks pass nothing but small references between them, and every body can
be re-run (a retry) without doing its work twice. Airflow runs them from ``dag_factory.py`` and
``approval_operator.py``; the CLI runs ``resume_run``. A lane that must stop raises
``LaneStopped`` with what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from rebalance.approval import (
    Decision,
    approval_deadline,
    approval_valid_until,
    decide_automatically,
)
from rebalance.brokers.base import AuthError, BadResponse, Broker, BrokerError, TemporaryBrokerError
from rebalance.brokers.pricing import PricingKind, PricingPolicy
from rebalance.domain.market import IST, Holding, Instrument
from rebalance.errors import InputDataError, RebalanceError
from rebalance.execution import (
    ApprovalLapsed,
    ExecutionSettings,
    PlanMismatch,
    RunLocked,
    legs_of,
    place_approved,
    reconcile_manual_queue,
    settle_interrupted,
    settle_stale_runs,
    unfinished_legs,
    valid_until_of,
)
from rebalance.history.records import RunRecord
from rebalance.history.status import OrderState, RunStatus
from rebalance.history.store import HistoryStore, RunKey
from rebalance.lane import Lane, LaneStopped, NotResumable, lane_of_run
from rebalance.plan import PlannedOrder, TradePlan
from rebalance.portfolio import BrokerName, ExecutionMode
from rebalance.snapshot import HoldingsSnapshot
from rebalance.tax_history import context_for, record_fills
from rebalance.trading_rules import EarlierLiveRun, price_move, second_live_run_today
from rebalance.wiring import broker_for, read_account, what_to_do

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]

__all__ = ["Lane", "LaneStopped", "NotResumable", "RunKey", "lane_of_run"]

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
    portfolio = lane.portfolio
    run_id = _open_run(lane, store)
    if broker is None:
        try:
            broker = broker_for(lane, store)
        except LaneStopped as exc:
            store.transition(run_id, RunStatus.FAILED, f"stopped at fetch_holdings: {exc}")
            raise
    _settle_stale(lane, store, broker, settings)
    try:
        holdings, snapshot = read_account(broker, portfolio, lane.account)
    except TemporaryBrokerError:
        raise  # a read: Airflow retries the task
    except BadResponse as exc:
        store.transition(run_id, RunStatus.INVALID, f"the broker sent data we cannot trust: {exc}")
        raise LaneStopped(str(exc)) from None
    except AuthError as exc:
        reason = what_to_do(exc, lane)
        why = f"stopped at fetch_holdings, could not read the account: {reason}"
        store.transition(run_id, RunStatus.FAILED, why)
        raise LaneStopped(reason) from None
    except BrokerError as exc:
        store.transition(run_id, RunStatus.FAILED, f"could not read the account: {exc}")
        raise LaneStopped(str(exc)) from None
    records = snapshot.to_records()
    records["unauthorised"] = unauthorised_holdings(holdings)
    store.update_run(run_id, snapshot=records, cash=snapshot.cash)
    log.info("%s: %d holdings, cash %.2f", lane.account, len(snapshot.positions), snapshot.cash)
    return {"run": run_id, "account": lane.account}


def unauthorised_holdings(holdings: list[Holding]) -> list[dict[str, Any]]:
    """Holdings with sellable shares the depository has not authorised for sale today (no DDPI
    / POA, no CDSL TPIN yet): ``[{"symbol", "sellable", "authorised"}]``, for the preview."""
    return [
        {"symbol": h.symbol, "sellable": h.sellable_quantity, "authorised": h.authorised_quantity}
        for h in holdings
        if h.authorised_quantity is not None and h.authorised_quantity < h.sellable_quantity
    ]


def authorisation_for_preview(run: RunRecord, broker: str) -> list[dict[str, Any]]:
    """``brokers.validation.authorisation_needed`` for the symbols the plan sells or was kept
    from selling (``sellable_limited`` / ``not_sellable``) by a missing authorisation: what a
    person authorises (symbol, shares, where) before approving, so a re-plan can sell them."""
    from rebalance.brokers.validation import authorisation_needed

    unauthorised = (run.snapshot or {}).get("unauthorised") or []
    if not unauthorised or not run.plan:
        return []
    wanted = {o["symbol"] for o in run.plan["orders"] if o["side"] == "SELL"}
    for position in run.plan.get("positions", []):
        if "not_sellable" in position.get("skipped", []):
            wanted.add(position["symbol"])
    held = [
        Holding(
            symbol=u["symbol"],
            exchange="NSE",
            quantity=u["sellable"],
            sellable_quantity=u["sellable"],
            average_price=0.0,
            last_price=0.0,
            authorised_quantity=u["authorised"],
        )
        for u in unauthorised
        if u["symbol"] in wanted
    ]
    return authorisation_needed(held, {h.symbol: h.sellable_quantity for h in held}, broker)


def broker_charge_estimate(lane: Lane, store: HistoryStore, run: RunRecord) -> str | None:
    """Live mode: the broker's own estimate of the plan's charges, one line beside ours (Kite's
    order-charges endpoint, SmartAPI's ``estimateCharges``); None in paper / dry-run mode.

    Never fails the lane: when the broker does not answer, the line says so.
    """
    from rebalance.brokers.base import OrderRequest, Side, capabilities_of

    if lane.mode is not ExecutionMode.LIVE or lane.account_config.broker is BrokerName.PAPER:
        return None
    orders = (run.plan or {}).get("orders") or []
    if not orders:
        return None
    ours = sum(float(o.get("charges", 0.0)) for o in orders)
    try:
        broker = broker_for(lane, store)
        if not capabilities_of(broker).charge_estimates:
            return None
        requests = [
            OrderRequest(
                symbol=leg["symbol"],
                exchange=leg["exchange"],
                side=Side(leg["side"]),
                quantity=leg["quantity"],
                tag=leg["tag"],
                price=leg["price"],
            )
            for leg in legs_of(TradePlan.from_dict(run.plan or {}), lane.tag_seed, lane.account)
        ]
        theirs = sum(e.total for e in broker.estimate_charges(requests))  # type: ignore[attr-defined]
    except Exception as exc:  # an estimate must never stop the lane
        log.warning("%s: the broker's charge estimate failed: %s", lane.account, exc)
        why = type(exc).__name__
        return f"the broker's own charge estimate is unavailable ({why}); ours ₹{ours:,.2f}"
    return (
        f"{lane.account_config.broker}'s own charge estimate ₹{theirs:,.2f} "
        f"(ours ₹{ours:,.2f}, at the planning prices)"
    )


def validate_snapshot(
    lane: Lane, store: HistoryStore, now: datetime | None = None
) -> dict[str, Any]:
    """Check the stored snapshot: Pandera schema, then the Great Expectations quality suite.

    A failure records the problems (and the Data Docs page) on the run, marks it invalid and
    stops the lane before planning: nothing is ordered on data that failed validation.
    """
    from rebalance.quality import check_snapshot
    from rebalance.settings import state_dir
    from rebalance.snapshot import snapshot_from_frame

    run_id = _run_id(lane, store)
    snapshot = _snapshot(store.run(run_id))
    try:
        snapshot_from_frame(
            snapshot.positions,
            source=f"{lane.account} snapshot",
            cash=snapshot.cash,
            taken_at=snapshot.taken_at,
        )
    except InputDataError as exc:
        return _invalid(lane, store, run_id, exc.problems, {"schema": "failed"})
    report = check_snapshot(
        snapshot,
        target_symbols=lane.portfolio.targets,
        now=now or datetime.now(UTC),
        max_age=timedelta(minutes=lane.portfolio.execution.snapshot_max_age_minutes),
        docs_dir=state_dir() / "data_docs" / lane.portfolio.id / f"run_{run_id}",
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


def plan_trades(lane: Lane, store: HistoryStore) -> dict[str, Any]:
    """Plan from the stored snapshot; write the plan and its hash before anything else happens.

    The second-live-run rule goes first. The plan is checked once more, independently of the
    planner (``verify_plan``): a plan breaking a hard limit stops the lane.
    """
    from rebalance.planning import plan_rebalance, verify_plan
    from rebalance.snapshot import check_no_sell_symbols
    from rebalance.target_model_task import plan_targets
    from rebalance.target_service import with_target_reasons

    run_id = _run_id(lane, store)
    refused = _second_live_run(lane, store, run_id)
    if refused:
        from airflow.sdk.exceptions import AirflowSkipException

        store.transition(run_id, RunStatus.SKIPPED, refused)
        log.warning("%s: run %d skipped: %s", lane.account, run_id, refused)
        raise AirflowSkipException(refused)
    snapshot = _snapshot(store.run(run_id))
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
        _stop(store, run_id, RunStatus.FAILED, reason)
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
    from rebalance.preview import render_preview

    run_id = _run_id(lane, store)
    run = store.run(run_id)
    status = run.run_status
    if status is RunStatus.APPROVED:  # a retry after the decision was recorded
        return ApprovalRequest(decided={"run": run_id, "plan_hash": run.plan_hash})
    if status in (RunStatus.REJECTED, RunStatus.EXPIRED):  # a retry after a final "no"
        return ApprovalRequest(refused=f"plan {status}: {run.status_reason}")
    execution = lane.portfolio.execution
    turnover, trades = run.turnover_pct or 0.0, run.trades or 0
    automatic = decide_automatically(execution, lane.mode, turnover, trades)
    if automatic is not None:
        return ApprovalRequest(decided=record_decision(lane, store, automatic, by="rebalance"))
    store.transition(run_id, RunStatus.AWAITING_APPROVAL, "waiting for a person's approval")
    preview = render_preview(
        run.plan or {},
        portfolio_name=lane.portfolio.name,
        account=lane.account,
        mode=str(lane.mode),
        plan_hash=run.plan_hash or "",
        authorisation=authorisation_for_preview(run, str(lane.account_config.broker)),
        broker_estimate=broker_charge_estimate(lane, store, run),
        basket_folder=str(_basket_folder(lane, run_id))
        if lane.mode is ExecutionMode.MANUAL_QUEUE
        else None,
        target_source=(run.targets or {}).get("source"),
    )
    subject = (
        f"Approve rebalance of {lane.portfolio.name} ({lane.account}): {run.trades} orders, "
        f"turnover {run.turnover_pct:.2f}%"
    )
    deadline = approval_deadline(now or datetime.now(UTC), execution, lane.mode)
    return ApprovalRequest(subject=subject, preview=preview, deadline=deadline)


def record_decision(
    lane: Lane, store: HistoryStore, decision: Decision, by: str | None
) -> dict[str, Any]:
    """Record an approval decision and return what place_orders needs."""
    run_id = _run_id(lane, store)
    plan_hash = store.run(run_id).plan_hash
    fields = {"approval_decision": str(decision), "approved_by": by, "approved_at": _utcnow()}
    who = by or "unknown"
    if decision in (Decision.AUTO, Decision.APPROVED, Decision.NOT_NEEDED):
        store.transition(run_id, RunStatus.APPROVED, f"{decision} by {who}", **fields)
    elif decision is Decision.REJECTED:
        store.transition(run_id, RunStatus.REJECTED, f"rejected by {who}", **fields)
    else:
        store.transition(run_id, RunStatus.EXPIRED, "no answer by the approval deadline", **fields)
    log.info("%s: plan %s %s by %s", lane.account, (plan_hash or "")[:12], decision, by)
    return {"run": run_id, "plan_hash": plan_hash, "decision": str(decision)}


def check_prices_unchanged(
    lane: Lane, store: HistoryStore, broker: Broker, settings: ExecutionSettings | None = None
) -> None:
    """Stop before sending if the price of a leg not yet sent moved more than
    ``max_price_move_pct`` since planning (``trading_rules.price_move``; re-run to re-plan).

    Judged on the legs still to send: all of them before the first send; on a retry or a resume
    (run ``placing`` or ``interrupted``), those ``pending`` or ``not_sent``. A fresh run that
    fails the rule is failed; one under way has its unsent legs recorded ``not_sent`` and is
    settled from the book.
    """
    run_id = _run_id(lane, store)
    run = store.run(run_id)
    status = run.run_status
    if status not in (RunStatus.APPROVED, RunStatus.PLACING, RunStatus.INTERRUPTED):
        return
    if lane.mode is ExecutionMode.DRY_RUN or not run.plan:
        return
    orders: list[PlannedOrder] = list(TradePlan.from_dict(run.plan).orders)
    if status is not RunStatus.APPROVED:
        legs = store.orders(run_id)
        to_send = (OrderState.PENDING, OrderState.NOT_SENT)
        unsent = {leg.symbol for leg in legs if leg.order_state in to_send}
        if legs:  # no legs written yet: none were sent
            orders = [o for o in orders if o.symbol in unsent]
    if not orders:
        return
    quotes = broker.quotes([Instrument(o.symbol, o.exchange) for o in orders])
    reason = price_move(orders, quotes, lane.policy.max_price_move_pct)
    if reason is None:
        return
    if status is RunStatus.APPROVED:
        _stop(store, run_id, RunStatus.FAILED, f"{reason}; nothing ordered, re-run to re-plan")
    result = settle_interrupted(
        store, run_id, broker, settings=_settings(lane, settings), why=reason, resumable=False
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
    run_id = _run_id(lane, store)
    record = store.run(run_id)
    if lane.mode is ExecutionMode.MANUAL_QUEUE:
        return _manual_queue(lane, store, broker, approved_hash, record, settings, now or _utcnow)
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
            settings=_settings(lane, settings),
            dry_run=lane.mode is ExecutionMode.DRY_RUN,
            valid_until=_valid_until(lane, record),
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


def _basket_folder(lane: Lane, run_id: int) -> Path:
    """Where the manual queue writes a run's basket CSVs (the state dir)."""
    from rebalance.settings import state_dir

    return state_dir() / "baskets" / lane.portfolio.id / str(run_id)


def _manual_queue(
    lane: Lane,
    store: HistoryStore,
    broker: Broker,
    approved_hash: str,
    record: RunRecord,
    settings: ExecutionSettings | None,
    clock: Clock,
) -> dict[str, Any]:
    """``execution.mode: manual_queue`` (notes 13.4): export the approved plan as basket CSVs in
    the state dir (paths in ``placement.manual_queue.baskets``), wait until a person marks it
    placed (``rebalance mark-placed RUN``) or the approval's validity ends, then reconcile the
    account's holdings against the plan and record each leg's fill. Nothing is sent by us.
    While nobody has marked it, raises ``WaitForPerson``: the operator defers (no worker slot is
    held) and runs this again when the basket is marked or the validity ends."""
    from rebalance.brokers.basket import BasketError, export_baskets
    from rebalance.manual_queue_wait import WaitForPerson, wait_outcome

    run_id = record.id
    status = record.run_status
    placement = dict(record.placement or {})
    if status is RunStatus.APPROVED:
        if not record.plan or record.plan_hash != approved_hash:
            _stop(store, run_id, RunStatus.FAILED, "the stored plan is not the approved plan")
        plan = TradePlan.from_dict(record.plan)
        if not plan.orders:
            store.transition(run_id, RunStatus.COMPLETED, "nothing to order")
            return {"run": run_id, "placed": 0, "sent": 0, "status": "completed"}
        name = str(lane.account_config.broker)
        instruments = [Instrument(o.symbol, o.exchange) for o in plan.orders]
        quotes = broker.quotes(instruments)
        tokens = getattr(broker, "symbol_tokens", None)  # AngelOne: the basket needs tokens
        try:
            files = export_baskets(
                record.plan,
                name,
                policy=_settings(lane, settings).pricing,
                quotes=quotes,
                tokens=tokens(instruments) if tokens else None,
            )
        except BasketError as exc:
            _stop(store, run_id, RunStatus.FAILED, f"could not export the basket: {exc}")
        folder = _basket_folder(lane, run_id)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for number, text in enumerate(files, start=1):
            path = folder / f"{name}_{number}.csv"
            path.write_text(text)
            paths.append(str(path))
        valid_until = _valid_until(lane, record)
        placement["manual_queue"] = {"baskets": paths}
        if valid_until is not None:
            placement["valid_until"] = valid_until.isoformat()
        store.transition(
            run_id,
            RunStatus.PLACING,
            f"basket exported to {folder}: place it by hand, then `rebalance mark-placed {run_id}`",
            executed_at=clock(),
            placement=placement,
        )
        store.write_orders_ahead(run_id, legs_of(plan, lane.tag_seed, lane.account), approved_hash)
        log.info("%s: run %d basket written: %s", lane.account, run_id, ", ".join(paths))
    elif status is not RunStatus.PLACING or "manual_queue" not in placement:
        return {"run": run_id, "placed": 0, "sent": 0, "status": str(status)}
    until = valid_until_of(store.run(run_id))
    why = wait_outcome(store, run_id, until, clock)
    if why is None:
        raise WaitForPerson(run_id, until, _settings(lane, settings).poll_seconds)
    result = reconcile_manual_queue(store, run_id, broker.holdings(), why)
    log.info("%s: run %d %s: %s", lane.account, run_id, result.status, result.reason)
    return {"run": run_id, "placed": result.placed, "sent": 0, "status": str(result.status)}


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
        run_id = _open_failed(lane, store)
    status = store.status(run_id)
    if status is RunStatus.PLACING:
        status = _settle_placing(lane, store, run_id, broker, settings, clock)
    if status is RunStatus.APPROVED and lane.mode is not ExecutionMode.DRY_RUN:
        valid_until = _valid_until(lane, store.run(run_id))
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
    if status in (RunStatus.PLACED, RunStatus.PARTIALLY_FILLED):  # not final: close them
        store.transition(run_id, RunStatus.COMPLETED, None)
    elif not status.is_final:
        stage = _STAGE_OF_STATUS.get(status, "an upstream task")
        why = f"stopped at {stage} (the run was {status}); that task's log says why"
        store.transition(run_id, RunStatus.FAILED, why)
    record_fills(store.engine, run_id)  # the run's fills extend the tax lots (issue 15)
    record = store.run(run_id)
    final = record.run_status
    log.info("%s: run %d closed as %s", lane.account, run_id, final)
    if final in (RunStatus.FAILED, RunStatus.INVALID, RunStatus.INTERRUPTED):
        raise LaneStopped(f"run {run_id} ended {final}: {record.status_reason}")
    if unfinished := unfinished_legs(record.placement):
        raise LaneStopped(f"run {run_id} ended {final} with {unfinished}: {record.status_reason}")
    return {"run": run_id, "status": str(final)}


def resume_run(
    lane: Lane,
    store: HistoryStore,
    broker: Broker,
    *,
    settle_only: bool = False,
    settings: ExecutionSettings | None = None,
    now: Clock | None = None,
) -> dict[str, Any]:
    """``rebalance resume RUN``: finish an interrupted placement, or settle it from the book.

    Resume: a run ``interrupted`` (or left ``placing`` with no placer alive) sends its legs not
    yet sent, in the same run with the same tags, after the price-move rule and only within the
    approval's validity; then the run is closed. ``settle_only`` (``rebalance settle``): settle
    from the book, send nothing, close the run for good.
    """
    run_id = _run_id(lane, store)
    record = store.run(run_id)
    status = record.run_status
    if status not in (RunStatus.INTERRUPTED, RunStatus.PLACING):
        raise NotResumable(
            f"run {run_id} is {status}: only an interrupted placement (status interrupted or "
            "placing) can be resumed or settled"
        )
    if settle_only:
        settings = _settings(lane, settings)
        why = "settled by `rebalance settle`"
        clock = now or _utcnow
        settle_interrupted(
            store,
            run_id,
            broker,
            settings=settings,
            now=clock,
            why=why,
            resumable=False,
            close=True,
        )
    else:
        check_prices_unchanged(lane, store, broker, settings)
        place_orders(
            lane, store, broker, record.plan_hash or "", settings=settings, now=now, resume=True
        )
        if store.status(run_id) in (RunStatus.PLACED, RunStatus.PARTIALLY_FILLED):
            store.transition(run_id, RunStatus.COMPLETED, None)
    record = store.run(run_id)
    return {
        "run": run_id,
        "status": record.status,
        "reason": record.status_reason,
        "unfinished": unfinished_legs(record.placement),
    }


# --- helpers of the bodies --------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _run_id(lane: Lane, store: HistoryStore) -> int:
    run_id = store.find_run(lane.run_key)
    if run_id is None:
        raise LookupError(f"no run record for {lane.run_key}: fetch_holdings has not run")
    return run_id


def _snapshot(run: RunRecord) -> HoldingsSnapshot:
    if run.snapshot is None:
        raise LookupError(f"run {run.id} has no snapshot: fetch_holdings has not stored one")
    return HoldingsSnapshot.from_records(run.snapshot)


def _stop(store: HistoryStore, run_id: int, status: RunStatus, reason: str) -> NoReturn:
    store.transition(run_id, status, reason)
    raise LaneStopped(reason)


def _open_run(lane: Lane, store: HistoryStore) -> int:
    portfolio = lane.portfolio
    return store.open_run(
        lane.run_key,
        portfolio_id=portfolio.id,
        portfolio_name=portfolio.name,
        broker=str(lane.account_config.broker),
        initiator=lane.initiator,
        broker_scope=",".join(a.name for a in portfolio.accounts),
        mode=str(lane.mode),
        policy=lane.policy.model_dump(mode="json"),
        targets={"weights": portfolio.target_fractions(), "cash": portfolio.cash_target_fraction},
    )


def _open_failed(lane: Lane, store: HistoryStore) -> int:
    """A failed record for a lane that stopped before fetch_holdings could open one."""
    why = "fetch_holdings failed before opening the run; its log says why"
    try:
        broker_for(lane)  # the likely cause, found again: a connection, a login
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


def _settings(lane: Lane, settings: ExecutionSettings | None) -> ExecutionSettings:
    """The lane's placement settings: the portfolio's fill deadline, pricing and re-pricing
    rounds (tests pass shorter timings; the portfolio's pricing applies to them too)."""
    execution = lane.portfolio.execution
    pricing = PricingPolicy(
        kind=PricingKind(str(execution.order_type)),
        limit_buffer_pct=execution.limit_buffer_pct,
        market_protection_pct=execution.market_protection_pct,
    )
    if settings is not None:
        return replace(
            settings,
            pricing=pricing,
            max_price_move_pct=lane.policy.max_price_move_pct,
        )
    return ExecutionSettings.for_deadline(
        execution.order_deadline_minutes,
        reprice_rounds=execution.max_reprice_rounds,
        pricing=pricing,
        max_price_move_pct=lane.policy.max_price_move_pct,
    )


def _valid_until(lane: Lane, run: RunRecord) -> datetime | None:
    mode = ExecutionMode(run.mode or lane.mode)
    asked = run.planned_at or run.created_at
    return approval_valid_until(mode, lane.portfolio.execution, asked, run.approved_at)


def same_day_quantities_reliable(broker: BrokerName) -> bool:
    """The adapter's ``capabilities.same_day_quantities_reliable`` (docs/brokers.md): today's
    delivery buys are counted once in its holdings, so a second run the same day plans on true
    quantities."""
    if broker is BrokerName.ZERODHA:
        from rebalance.brokers.zerodha import ZerodhaBroker

        return ZerodhaBroker.capabilities.same_day_quantities_reliable
    if broker is BrokerName.ANGELONE:
        from rebalance.brokers.angelone import AngelOneBroker

        return AngelOneBroker.capabilities.same_day_quantities_reliable
    from rebalance.brokers.paper import PaperBroker

    return PaperBroker.capabilities.same_day_quantities_reliable


def _second_live_run(lane: Lane, store: HistoryStore, run_id: int) -> str | None:
    """``trading_rules.second_live_run_today`` over this account's other live runs, for the
    brokers whose same-day quantities are not reliable (a resume or a re-pricing round belongs
    to its own run: never a second run)."""
    if lane.mode is not ExecutionMode.LIVE or lane.account_config.broker is BrokerName.PAPER:
        return None
    if same_day_quantities_reliable(lane.account_config.broker):
        return None
    earlier = (
        EarlierLiveRun(run.id, run.created_at, _filled(store, run.id))
        for run in store.runs(lane.portfolio.id, limit=50)
        if run.id != run_id and run.account == lane.account and run.mode == "live"
    )
    return second_live_run_today(lane.account, datetime.now(IST).date(), earlier)


def _filled(store: HistoryStore, run_id: int) -> int:
    return sum(leg.filled_quantity for leg in store.orders(run_id))


def _settle_stale(
    lane: Lane, store: HistoryStore, broker: Broker, settings: ExecutionSettings | None
) -> None:
    """Close this account's runs left ``placing`` by a dead worker or a database outage."""
    if lane.account_config.broker is BrokerName.PAPER:
        modes = [str(m) for m in ExecutionMode]  # one paper book whatever the mode
    elif lane.mode is ExecutionMode.PAPER:
        modes = [str(ExecutionMode.PAPER)]  # the simulated book of a real account
    else:
        modes = [str(ExecutionMode.LIVE)]  # live and dry runs read the broker's own book
    broker_name, settings = str(lane.account_config.broker), _settings(lane, settings)
    try:
        settled = settle_stale_runs(
            store, lane.account, broker_name, broker, modes=modes, settings=settings
        )
    except BrokerError as exc:  # the reads below will say it again, and stop or retry
        log.warning("%s: could not settle earlier runs left placing: %s", lane.account, exc)
        return
    for stale, result in settled:
        log.warning("%s: run %d was left placing; now %s", lane.account, stale, result.reason)


def _settle_placing(
    lane: Lane,
    store: HistoryStore,
    run_id: int,
    broker: Broker | None,
    settings: ExecutionSettings | None,
    clock: Clock,
) -> RunStatus:
    """record_run of a run left ``placing``: settle it from the book, or say why not."""
    try:
        result = settle_interrupted(
            store,
            run_id,
            broker or broker_for(lane, store),
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
    return store.status(run_id)


def _invalid(
    lane: Lane, store: HistoryStore, run_id: int, problems: list[str], validation: dict[str, Any]
) -> dict[str, Any]:
    message = f"{lane.account} snapshot failed validation:\n" + "\n".join(
        f"  - {p}" for p in problems
    )
    store.update_run(run_id, validation={**validation, "success": False, "problems": problems})
    _stop(store, run_id, RunStatus.INVALID, message)
