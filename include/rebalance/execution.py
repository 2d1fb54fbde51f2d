"""Crash-safe order placement: lock, write ahead, settle by tag, send, poll, record.

Airflow runs a task at least once, and two copies of ``place_orders`` can run at the same time
(a scheduler restart, a lost heartbeat). ``place_approved`` places each leg of the approved plan
exactly once anyway:

1. **One placer per run.** A Postgres advisory lock keyed by the run id is held for the whole
   placement, on its own connection (a crashed process drops it with its connection). A second
   copy waits for it (``lock_wait_seconds``), then finds the run already past ``placing`` and
   sends nothing; if it cannot get the lock in time it stops with ``RunLocked``.
2. **Only the approved plan.** The stored plan's hash must equal the approved hash, and legs
   already written ahead must belong to that same hash, else the run fails with ``PlanMismatch``.
3. **Write ahead.** Every leg is stored ``pending`` with its deterministic tag
   (``brokers.tags.order_tag``) and committed before anything is sent. Before a send the leg is
   committed as ``sent`` (with ``sent_at`` and the attempt number).
4. **Settle first.** Every (re)start reads the broker's order book and settles each leg whose
   tag is there from the book. Only ``pending`` legs are sent.
5. **Unknown outcomes are settled by the book, never by resending at once.** A leg that is
   ``sent`` and absent from the book stays ``sent`` for ``resend_grace_seconds`` after its send
   started (the book can lag behind an order the broker accepted). Only when the book, read
   after that grace, still lacks the tag is the leg deemed never placed: it goes back to
   ``pending`` and is sent again with the *same* tag (up to ``max_send_attempts`` sends in all,
   then ``not_placed``). A leg the broker acknowledged with an order id is never sent again.
   If a book lags beyond the grace, a resend could make a second order: settling then
   counts every order with the tag (``broker_orders``), records both and flags the leg.
6. **Sells first.** When the buys need the sells' proceeds (the plan's cash does not cover
   them), sells are sent first and buys wait until every sell is settled or
   ``sell_wait_seconds`` pass. If the sells did not all fill, only the buys that today's
   available cash covers are sent, the others are ``denied`` with the reason.
7. **Poll to the end.** The book is polled until every leg is settled or ``deadline_seconds``
   pass; open remainders are then cancelled (``cancel_open_at_deadline``) and their fills kept.
   The run ends ``placed`` (every leg filled), ``partially_filled`` (some shares filled) or
   ``failed`` (nothing filled), with counts in ``rebalance_runs.placement``.

8. **An interrupted placement finishes, within the approval's validity.** A crash anywhere above
   leaves the run ``placing``; the next attempt (Airflow's retry of place_orders, or
   ``rebalance resume RUN``) settles and carries on with the same tags, but only before
   ``valid_until`` (live: the approval cut-off of that day; paper: the approval timeout), which
   the first attempt stores in ``rebalance_runs.placement``. Past it, the legs never sent are
   recorded ``not_sent`` with the reason and nothing more is sent (``ApprovalLapsed``).
9. **Settling a stopped placement.** ``settle_interrupted`` (record_run; the next lane touching
   the account; ``rebalance settle``) settles from the book and sends nothing. Legs still
   ``pending`` become ``not_sent`` (known never sent), legs ``sent`` and absent stay ``sent``
   (outcome unknown). While the approval is valid and legs were never sent the run becomes
   ``interrupted`` (``rebalance resume`` may finish it, same run, same tags); otherwise it is
   closed from what the book says.

10. **Every order is priced.** Each send (first or again) reads a fresh quote and prices the
   order with ``brokers.pricing.price_order`` under the portfolio's policy (``execution:
   order_type``): a LIMIT on the tick inside the day's circuit, or a MARKET with explicit
   protection. Nothing leaves unpriced (the brokers refuse unprotected MARKET orders since
   1 April 2026). A quote that cannot price the order leaves the leg ``denied`` with the reason.
11. **Re-pricing rounds, within the approved quantity.** A remainder cancelled at the fill
   deadline is re-priced from a fresh quote and sent again as a child order tagged
   ``child_tag(leg_tag, n)``, at most ``max_reprice_rounds`` times, and only while the price has
   not moved more than ``max_price_move_pct`` from the plan's. The child's quantity (approved
   quantity less what every earlier round filled, read from the book after the cancel settled)
   is written into the leg's ``children`` with the new ``reprice_round`` and committed, leg
   ``sent``, before the send: a crash then settles the child by its tag like any leg (same tag
   and quantity on a resend). Only one order of a leg is ever open, so the rounds' quantities
   never add up to more than the approved quantity. Settling matches every round's tag to its leg
   (``split_tag``): the leg's fill is the sum over its rounds, its state that of its current
   round. A restart carries on from the leg's recorded round.

A run already past ``placing`` (placed, partially filled, completed, failed, interrupted...) is
never placed again: re-running a finished DAG run refreshes fills at most and sends nothing. Only
``place_approved(..., resume=True)`` reopens an ``interrupted`` run, under the lock.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from rebalance.brokers.base import (
    Broker,
    BrokerError,
    CancelRejected,
    OrderNotFound,
    OrderOutcomeUnknown,
    OrderRejected,
    OrderReport,
    OrderStatus,
)
from rebalance.brokers.pricing import PricingPolicy, price_order
from rebalance.brokers.tags import child_tag, is_order_tag, order_tag, split_tag
from rebalance.domain.market import IST, Instrument, Quote, Side
from rebalance.history.records import LegRecord, RunRecord
from rebalance.history.status import IllegalTransition, OrderState, RunStatus
from rebalance.history.store import HistoryStore, LegsMismatch, RunLocked
from rebalance.plan import TradePlan
from rebalance.portfolio import BrokerName, ExecutionMode

log = logging.getLogger(__name__)

__all__ = [
    "ApprovalLapsed",
    "Closing",
    "ExecutionSettings",
    "PlacementResult",
    "PlanMismatch",
    "RunLocked",
    "closing",
    "legs_of",
    "mark_placed",
    "place_approved",
    "reconcile_manual_queue",
    "settle_interrupted",
    "settle_legs",
    "settle_placing",
    "settle_stale_of_account",
    "settle_stale_runs",
    "stale_books",
    "unfinished_legs",
    "valid_until_of",
]

_STATE_OF_STATUS = {
    OrderStatus.OPEN: OrderState.OPEN,
    OrderStatus.PARTIALLY_FILLED: OrderState.PARTIALLY_FILLED,
    OrderStatus.COMPLETE: OrderState.COMPLETE,
    OrderStatus.CANCELLED: OrderState.CANCELLED,
    OrderStatus.REJECTED: OrderState.REJECTED,
}
_AT_BROKER = frozenset(
    {OrderState.OPEN, OrderState.PARTIALLY_FILLED, OrderState.COMPLETE, OrderState.CANCELLED}
)
_AFTER_PLACING = frozenset({RunStatus.PLACED, RunStatus.PARTIALLY_FILLED})
_UNSENT = frozenset({OrderState.PENDING, OrderState.NOT_SENT})

Checkpoint = Callable[[str, Mapping[str, Any]], None]


class PlanMismatch(RuntimeError):  # noqa: N818 (reads like the other outcomes)
    """The plan to place is not the approved plan (hash differs): nothing is sent."""


class ApprovalLapsed(RuntimeError):  # noqa: N818
    """The approval is no longer valid: nothing more is sent; the run is settled and closed."""


@dataclass(frozen=True)
class ExecutionSettings:
    """Timing of one placement. Seconds throughout."""

    deadline_seconds: float = 600.0  # poll fills this long, then cancel what is still open
    poll_seconds: float = 2.0  # between reads of the order book
    sell_wait_seconds: float = 300.0  # buys funded by sells wait this long for the sells
    resend_grace_seconds: float = 60.0  # a sent leg absent from the book this long: not placed
    max_send_attempts: int = 3  # sends of one leg in all (only after the grace, same tag)
    lock_wait_seconds: float = 660.0  # a second copy waits this long for the first one
    cancel_open_at_deadline: bool = True  # cancel unfilled remainders at the deadline
    buy_cash_buffer: float = 0.01  # fraction added to a buy's cost when cash is checked
    pricing: PricingPolicy = field(default_factory=PricingPolicy)  # how every order is priced
    max_reprice_rounds: int = 0  # re-pricing rounds after the fill deadline (0: cancel only)
    max_price_move_pct: float | None = None  # no re-pricing once the price moved more than this

    @classmethod
    def for_deadline(
        cls, minutes: float, *, reprice_rounds: int = 0, **overrides: Any
    ) -> ExecutionSettings:
        """Settings for a portfolio's ``order_deadline_minutes`` (the fill deadline of a round).

        The lock wait covers every round, so a second copy outwaits the first one's rounds.
        """
        seconds = minutes * 60.0
        values: dict[str, Any] = {
            "deadline_seconds": seconds,
            "sell_wait_seconds": seconds / 2,
            "lock_wait_seconds": seconds * (1 + reprice_rounds) + 60.0,
            "max_reprice_rounds": reprice_rounds,
        }
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True)
class PlacementResult:
    """What the broker has for a run's legs, and the run status that follows from it."""

    status: RunStatus
    reason: str
    legs: int
    placed: int  # legs the broker has (any state but rejected / not placed / denied)
    complete: int
    partially_filled: int  # legs with some shares filled but not all (open or cancelled)
    rejected: int
    denied: int  # legs we did not send (buys without funding)
    not_placed: int  # sent, then proved absent from the book (attempts used up)
    unsettled: int  # legs whose outcome is unknown or still open at the end
    sent: int  # orders sent by this call
    duplicates: int  # legs with more than one broker order carrying their tag
    finished_before: bool = False  # the run was already past placing: nothing was sent
    counts: dict[str, int] = field(default_factory=dict)
    not_sent: int = 0  # legs never sent (placement stopped before them)
    unknown: int = 0  # legs sent and never seen in the book: outcome unknown

    def to_record(self) -> dict[str, Any]:
        return asdict(self) | {"status": str(self.status)}


def legs_of(plan: TradePlan, tag_seed: str, account: str) -> list[dict[str, Any]]:
    """The plan's orders as write-ahead rows, sells first (their proceeds fund the buys)."""
    ordered = sorted(plan.orders, key=lambda o: (o.side != Side.SELL, o.symbol))
    return [
        {
            "leg": leg,
            "tag": order_tag(tag_seed, account, leg),
            "symbol": o.symbol,
            "exchange": o.exchange,
            "side": str(o.side),
            "quantity": o.quantity,
            "price": o.price,
            "notional": o.notional,
            "reasons": list(o.reasons),
            "charges": o.charges,
        }
        for leg, o in enumerate(ordered)
    ]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _nothing(_: str, __: Mapping[str, Any]) -> None:
    return None


def _ist(moment: datetime) -> str:
    return moment.astimezone(IST).strftime("%Y-%m-%d %H:%M IST")


def unfinished_legs(placement: Mapping[str, Any] | None) -> str | None:
    """Legs a closed run left never sent or with an unknown outcome (its plan is not done)."""
    placement = placement or {}
    parts = []
    if placement.get("not_sent"):
        parts.append(f"{placement['not_sent']} legs never sent")
    if placement.get("unknown"):
        parts.append(f"{placement['unknown']} legs of unknown outcome")
    return " and ".join(parts) or None


def valid_until_of(run: RunRecord) -> datetime | None:
    """The end of the approval's validity stored by the first placement attempt, if any."""
    value = (run.placement or {}).get("valid_until")
    return datetime.fromisoformat(value) if value else None


# --- the entry points -----------------------------------------------------------------------


def place_approved(
    store: HistoryStore,
    run_id: int,
    broker: Broker,
    *,
    approved_hash: str,
    tag_seed: str,
    account: str,
    settings: ExecutionSettings | None = None,
    dry_run: bool = False,
    valid_until: datetime | None = None,
    resume: bool = False,
    checkpoint: Checkpoint | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = _utcnow,
) -> PlacementResult:
    """Place the approved plan of run ``run_id`` exactly once per leg; see the module docstring.

    ``valid_until``: the end of the approval's validity; the first attempt stores it, and a
    later attempt (a retry, a resume) past it sends nothing (the first one places regardless:
    the approval was valid when given). ``resume``: reopen an ``interrupted`` run
    (``rebalance resume``): its ``not_sent`` legs go back to ``pending``, same tags.
    ``checkpoint(name, info)`` is called between steps ("written_ahead", "before_send",
    "after_send", "sells_sent", "polled", "before_finish"): tests raise (or die) there.
    Raises PlanMismatch (the run is failed), ApprovalLapsed (too late: unsent legs are
    ``not_sent``, the run closed), RunLocked (another copy is still placing) and
    IllegalTransition (the run was never approved).
    """
    settings = settings or ExecutionSettings()
    with store.run_lock(run_id, wait_seconds=settings.lock_wait_seconds) as waited:
        if waited >= 0.05:
            store.note(run_id, f"waited {waited:.1f}s for another copy of the placement")
        run = store.run(run_id)
        status = run.run_status
        valid_until = valid_until or valid_until_of(run)
        if resume and status is RunStatus.INTERRUPTED:
            if valid_until is not None and now() >= valid_until:
                raise ApprovalLapsed(
                    f"run {run_id}: the approval was valid until {_ist(valid_until)}; "
                    "nothing sent (`rebalance settle` closes it from the book)"
                )
            _reopen(store, run_id)
            run = store.run(run_id)
            status = run.run_status
        if status in _AFTER_PLACING or status.is_final:
            legs = store.orders(run_id)
            if status in _AFTER_PLACING and legs:
                legs = settle_legs(store, run_id, broker, settings=settings, now=now)
            log.info("run %d is %s already: nothing is sent", run_id, status)
            return _summarise(legs, sent=0, status=status, finished_before=True)
        plan = TradePlan.from_dict(run.plan) if run.plan else None
        if plan is None or run.plan_hash != approved_hash or plan.plan_hash != approved_hash:
            reason = (
                f"the stored plan ({str(run.plan_hash)[:12]}) is not the approved plan "
                f"({approved_hash[:12]}): no order sent"
            )
            store.transition(run_id, RunStatus.FAILED, reason)
            raise PlanMismatch(reason)
        if dry_run or not plan.orders:
            why = "dry run: nothing ordered" if dry_run else "nothing to order"
            store.transition(run_id, RunStatus.COMPLETED, why)
            return _summarise([], sent=0, status=RunStatus.COMPLETED, reason=why)
        if status is RunStatus.PLACING and valid_until is not None and now() >= valid_until:
            # A retry or resume too late: the approval no longer covers sending anything.
            lapsed = f"the approval was valid until {_ist(valid_until)}"
            result = _settle(store, run_id, broker, settings, now, why=lapsed, resumable=False)
            raise ApprovalLapsed(result.reason)
        placement = dict(run.placement or {})
        if valid_until is not None:
            placement["valid_until"] = valid_until.isoformat()
        store.transition(
            run_id,
            RunStatus.PLACING,
            None,
            executed_at=run.executed_at or now(),
            placement=placement or None,
        )
        try:
            store.write_orders_ahead(run_id, legs_of(plan, tag_seed, account), approved_hash)
        except LegsMismatch as exc:
            store.transition(run_id, RunStatus.FAILED, str(exc))
            raise PlanMismatch(str(exc)) from None
        placing = _Placement(
            store, run_id, broker, plan, settings, checkpoint or _nothing, sleep, now
        )
        placing.checkpoint("written_ahead", {"run": run_id})
        result = placing.run()
        placing.checkpoint("before_finish", {"run": run_id})
        store.transition(
            run_id, result.status, result.reason, placement=placement | result.to_record()
        )
        log.info("run %d: %s", run_id, result.reason)
        return result


def _reopen(store: HistoryStore, run_id: int) -> None:
    """interrupted -> placing, its never-sent legs back to pending (same tags): a resume."""
    unsent = [leg for leg in store.orders(run_id) if leg.order_state is OrderState.NOT_SENT]
    store.transition(
        run_id,
        RunStatus.PLACING,
        f"resumed: {len(unsent)} legs never sent are sent now (same run, same tags)",
        finished_at=None,
    )
    for leg in unsent:
        store.update_order(run_id, leg.leg, state=OrderState.PENDING, error="resumed")


def settle_interrupted(
    store: HistoryStore,
    run_id: int,
    broker: Broker,
    *,
    settings: ExecutionSettings | None = None,
    now: Callable[[], datetime] = _utcnow,
    why: str = "placement interrupted",
    resumable: bool = True,
    close: bool = False,
    lock_wait_seconds: float | None = None,
) -> PlacementResult:
    """Settle a run whose placement stopped (``placing``, or ``interrupted``): send nothing.

    Reconciles from the book; legs still ``pending`` become ``not_sent`` (with ``why``), legs
    ``sent`` and absent stay ``sent`` (outcome unknown). With ``resumable`` and the approval still
    valid, a run with never-sent legs becomes ``interrupted`` (``rebalance resume`` may finish
    it); otherwise it gets the status the book gives (placed, partially_filled, failed), and
    with ``close`` a placed or partially filled run is then ``completed``. An ``interrupted``
    run settled without ``resumable`` is closed for good. Waits for the placement lock like a
    second copy would (``lock_wait_seconds``, default the settings').
    """
    settings = settings or ExecutionSettings()
    wait = settings.lock_wait_seconds if lock_wait_seconds is None else lock_wait_seconds
    with store.run_lock(run_id, wait_seconds=wait):
        status = store.status(run_id)
        if status not in (RunStatus.PLACING, RunStatus.INTERRUPTED):
            legs = store.orders(run_id)
            return _summarise(legs, sent=0, status=status, finished_before=True)
        if status is RunStatus.INTERRUPTED and resumable:
            return _summarise(store.orders(run_id), sent=0, status=status, finished_before=True)
        result = _settle(store, run_id, broker, settings, now, why=why, resumable=resumable)
        if close and result.status in _AFTER_PLACING:
            store.transition(run_id, RunStatus.COMPLETED, None)
        return result


def settle_stale_runs(
    store: HistoryStore,
    account: str,
    broker_name: str,
    broker: Broker,
    *,
    modes: Iterable[str] = ("live", "paper"),
    settings: ExecutionSettings | None = None,
    now: Callable[[], datetime] = _utcnow,
) -> list[tuple[int, PlacementResult]]:
    """Settle and close this account's runs left ``placing`` (worker lost, database down at
    record_run) for longer than the lock wait, from ``broker``'s book. A run whose placer is
    still alive holds its lock and is skipped. ``modes``: the run modes whose orders went to
    ``broker``'s book (a paper run's orders are in the simulated book, a live run's at the
    broker). Called first thing by every lane of the account.
    """
    settings = settings or ExecutionSettings()
    cutoff = now() - timedelta(seconds=settings.lock_wait_seconds)
    settled = []
    for run_id in store.stale_placing_runs(account, broker_name, cutoff, modes):
        try:
            result = settle_interrupted(
                store,
                run_id,
                broker,
                settings=settings,
                now=now,
                why="placement left unfinished (worker lost or history database down)",
                close=True,
                lock_wait_seconds=0.0,
            )
        except RunLocked:
            continue  # its placer is alive after all
        store.note(run_id, "settled from the broker's book by a later run of the account")
        log.warning("run %d left placing: settled from the book: %s", run_id, result.reason)
        settled.append((run_id, result))
    return settled


def stale_books(broker: BrokerName, mode: ExecutionMode) -> list[str]:
    """The run modes whose orders are in the book a lane of ``broker`` in ``mode`` reads: a
    paper account has one paper book whatever the mode; a real account in paper mode its
    simulated book; live and dry runs read the broker's own book."""
    if broker is BrokerName.PAPER:
        return [str(m) for m in ExecutionMode]
    if mode is ExecutionMode.PAPER:
        return [str(ExecutionMode.PAPER)]
    return [str(ExecutionMode.LIVE)]


def settle_stale_of_account(
    store: HistoryStore,
    account: str,
    broker_name: BrokerName,
    broker: Broker,
    mode: ExecutionMode,
    settings: ExecutionSettings,
) -> None:
    """Close this account's runs left ``placing`` by a dead worker or a database outage (the
    first thing a lane does). A book that cannot be read is only logged: the lane's own reads
    will say it again, and stop or retry."""
    modes = stale_books(broker_name, mode)
    try:
        settled = settle_stale_runs(
            store, account, str(broker_name), broker, modes=modes, settings=settings
        )
    except BrokerError as exc:
        log.warning("%s: could not settle earlier runs left placing: %s", account, exc)
        return
    for stale, result in settled:
        log.warning("%s: run %d was left placing; now %s", account, stale, result.reason)


def settle_placing(
    store: HistoryStore,
    run_id: int,
    account: str,
    open_broker: Callable[[], Broker],
    settings: ExecutionSettings,
    now: Callable[[], datetime],
) -> str | None:
    """record_run of a run left ``placing``: settle it from the book (None), or note on the run
    why not and return that reason (the lane stops): another placer still holds the run, or
    the broker (built by ``open_broker``) cannot be reached and the record stays ``placing``."""
    try:
        result = settle_interrupted(store, run_id, open_broker(), settings=settings, now=now)
        log.warning("%s: run %d placement interrupted: %s", account, run_id, result.reason)
    except RunLocked as exc:
        reason = f"placement still running elsewhere, record left placing: {exc}"
        store.note(run_id, reason)
        return reason
    except Exception as exc:  # the broker is unreachable: the record cannot be closed yet
        reason = (
            f"placement interrupted and the broker's book could not be read ({exc}); run "
            f"{run_id} stays placing until the next run of {account} or `rebalance "
            f"settle {run_id}` settles it from the book"
        )
        store.note(run_id, reason)
        return " ".join(reason.split())
    return None


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
class Closing:
    """The transition that closes a lane's run at record_run: its status, reason and the
    placement fields to store with it (None: keep them)."""

    status: RunStatus
    reason: str | None
    placement: dict[str, str] | None = None

    def fields(self) -> dict[str, dict[str, str]]:
        """The run fields ``HistoryStore.transition`` sets with the status."""
        return {} if self.placement is None else {"placement": self.placement}


def closing(
    status: RunStatus,
    run_id: int,
    *,
    dry_run: bool,
    valid_until: datetime | None,
    now: datetime,
) -> Closing | None:
    """How record_run closes a run left in ``status`` (None: it is final already).

    ``approved`` while the approval is valid (and not a dry run): ``interrupted``, resumable.
    ``placed`` / ``partially_filled``: ``completed``. Anything else not final: ``failed``,
    naming the task it stopped in.
    """
    resumable = not dry_run and valid_until is not None and now < valid_until
    if status is RunStatus.APPROVED and resumable:
        assert valid_until is not None
        until = valid_until.astimezone(IST).strftime("%H:%M IST")
        return Closing(
            RunStatus.INTERRUPTED,
            f"place_orders stopped before sending anything; `rebalance resume {run_id}` "
            f"places the approved plan until {until}",
            {"valid_until": valid_until.isoformat()},
        )
    if status in _AFTER_PLACING:
        return Closing(RunStatus.COMPLETED, None)
    if status.is_final:
        return None
    stage = _STAGE_OF_STATUS.get(status, "an upstream task")
    return Closing(
        RunStatus.FAILED, f"stopped at {stage} (the run was {status}); that task's log says why"
    )


def _settle(
    store: HistoryStore,
    run_id: int,
    broker: Broker,
    settings: ExecutionSettings,
    now: Callable[[], datetime],
    *,
    why: str,
    resumable: bool,
) -> PlacementResult:
    """Reconcile (final), mark pending legs not_sent, move the run to what the book says."""
    run = store.run(run_id)
    status = run.run_status
    legs = settle_legs(store, run_id, broker, settings=settings, now=now, final=True)
    valid_until = valid_until_of(run)
    still_valid = resumable and valid_until is not None and now() < valid_until
    for leg in legs:
        if leg.order_state is OrderState.PENDING:
            store.update_order(
                run_id, leg.leg, state=OrderState.NOT_SENT, error=f"never sent: {why}"
            )
    legs = store.orders(run_id)
    not_sent = sum(leg.order_state is OrderState.NOT_SENT for leg in legs)
    prefix = f"{why}; from the broker's book: "
    if still_valid and not_sent:
        assert valid_until is not None
        result = _summarise(legs, sent=0, status=RunStatus.INTERRUPTED, prefix=prefix)
        reason = (
            f"{result.reason}. `rebalance resume {run_id}` sends the {not_sent} legs never sent "
            f"until {_ist(valid_until)}"
        )
        result = replace(result, reason=reason)
    else:
        result = _summarise(legs, sent=0, prefix=prefix)
    placement = dict(run.placement or {}) | result.to_record()
    if status is RunStatus.INTERRUPTED and result.status in _AFTER_PLACING:
        result = replace(result, status=RunStatus.COMPLETED)  # closed for good, as the book says
    store.transition(run_id, result.status, result.reason, placement=placement)
    return result


# --- settling legs from the book ------------------------------------------------------------------


def settle_legs(
    store: HistoryStore,
    run_id: int,
    broker: Broker,
    *,
    settings: ExecutionSettings | None = None,
    now: Callable[[], datetime] = _utcnow,
    final: bool = False,
) -> list[LegRecord]:
    """Settle the run's legs from the broker's order book, matched by tag; return the legs.

    A ``sent`` leg missing from the book goes back to ``pending`` (to be sent again) only once
    ``resend_grace_seconds`` have passed since its send started; with ``final`` (closing an
    interrupted run) it is left ``sent``: nothing will send it, and its outcome stays unknown.
    """
    settings = settings or ExecutionSettings()
    legs = store.orders(run_id)
    tags = {leg.tag for leg in legs}
    book: dict[str, list[OrderReport]] = defaultdict(list)
    for report in broker.orders():
        if report.tag is None or not is_order_tag(report.tag):
            continue
        leg_tag, _ = split_tag(report.tag)  # a child order settles under its leg
        if leg_tag in tags:
            book[leg_tag].append(report)
    for leg in legs:
        _settle_leg(store, run_id, broker, leg, book.get(leg.tag, []), settings, now, final)
    return store.orders(run_id)


def current_tag(leg: LegRecord) -> str:
    """The tag of the leg's current order: its own in round 0, ``child_tag`` after."""
    return child_tag(leg.tag, leg.reprice_round)


def _round_quantity(leg: LegRecord) -> int:
    """The quantity of the leg's current order (a child's was written ahead in ``children``)."""
    for child in leg.children:
        if child.get("round") == leg.reprice_round and leg.reprice_round > 0:
            return int(child["quantity"])
    return leg.quantity


def _settle_leg(
    store: HistoryStore,
    run_id: int,
    broker: Broker,
    leg: LegRecord,
    reports: list[OrderReport],
    settings: ExecutionSettings,
    now: Callable[[], datetime],
    final: bool,
) -> None:
    number = leg.leg
    state = leg.order_state
    tag = current_tag(leg)
    current = [r for r in reports if (r.tag or "").upper() == tag]
    earlier = [r for r in reports if (r.tag or "").upper() != tag]
    if current:
        _record_reports(store, run_id, leg, current, earlier)
        return
    if state is OrderState.SENT and not final:
        sent_at = leg.sent_at or leg.updated_at
        age = (now() - sent_at).total_seconds()
        if age < settings.resend_grace_seconds:
            return  # the book may lag: wait for it
        attempts = leg.attempts
        if attempts >= settings.max_send_attempts:
            why = f"not in the broker's book {age:.1f}s after send {attempts}: never placed"
            store.update_order(run_id, number, state=OrderState.NOT_PLACED, error=why)
        else:
            why = f"send {attempts} not in the broker's book after {age:.1f}s: sending again"
            store.update_order(run_id, number, state=OrderState.PENDING, error=why)
        store.note(run_id, f"leg {number} ({leg.tag}): {why}")
        log.warning("leg %d %s: %s", number, leg.tag, why)
    elif state in (OrderState.OPEN, OrderState.PARTIALLY_FILLED) and leg.broker_order_id:
        # Acknowledged with an id but not (yet) in the book: ask for the order itself.
        try:
            report = broker.order(leg.broker_order_id)
        except OrderNotFound:
            return
        _record_reports(store, run_id, leg, [report])


def _record_reports(
    store: HistoryStore,
    run_id: int,
    leg: LegRecord,
    reports: list[OrderReport],
    earlier: list[OrderReport] | None = None,
) -> None:
    """Record what the book says about one leg: its state from the current round's orders
    (``reports``; several with one tag are all kept), its fill over every round."""
    number = leg.leg
    primary = reports[0]
    new = _STATE_OF_STATUS[primary.status]
    every = reports + (earlier or [])
    filled = sum(r.filled_quantity for r in every)
    fills = [(r.filled_quantity, r.average_price) for r in every if r.average_price]
    average = sum(q * p for q, p in fills) / sum(q for q, _ in fills) if fills else None
    error = primary.message if primary.status is OrderStatus.REJECTED else None
    if len(reports) > 1:
        ids = ", ".join(r.broker_order_id for r in reports)
        error = f"DUPLICATE: {len(reports)} broker orders carry tag {leg.tag} ({ids})"
        if leg.broker_orders != len(reports):
            store.note(run_id, f"leg {number}: {error}")
            log.error("leg %d: %s", number, error)
    current = leg.order_state
    changes: dict[str, Any] = {}
    if new is not current:
        changes["state"] = new
    values = {
        "broker_order_id": primary.broker_order_id,
        "filled_quantity": filled,
        "average_price": average,
        "broker_orders": len(reports),
        "error": error if error is not None or new is not current else leg.error,
    }
    changes.update({k: v for k, v in values.items() if getattr(leg, k) != v})
    if not changes:
        return
    try:
        store.update_order(run_id, number, **changes)
    except IllegalTransition as exc:
        # The book went backwards (a stale read): keep our later record, say so.
        log.warning("leg %d %s: %s; keeping %s", number, leg.tag, exc, current)


# --- one placement pass ---------------------------------------------------------------------


class _Placement:
    def __init__(
        self,
        store: HistoryStore,
        run_id: int,
        broker: Broker,
        plan: TradePlan,
        settings: ExecutionSettings,
        checkpoint: Checkpoint,
        sleep: Callable[[float], None],
        now: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.broker = broker
        self.plan = plan
        self.settings = settings
        self.checkpoint = checkpoint
        self.sleep = sleep
        self.now = now
        self.sent = 0
        self.sendable: set[int] = set()  # legs that may be sent (again) by the poll loop

    def settle_legs(self) -> list[LegRecord]:
        return settle_legs(
            self.store, self.run_id, self.broker, settings=self.settings, now=self.now
        )

    def run(self) -> PlacementResult:
        started = time.monotonic()
        deadline = started + self.settings.deadline_seconds
        legs = self.settle_legs()
        sells = [leg for leg in legs if leg.side == str(Side.SELL)]
        buys = [leg for leg in legs if leg.side == str(Side.BUY)]
        if self._buys_need_sells(sells, buys):
            self._send_all(sells)
            self.checkpoint("sells_sent", {"legs": [leg.leg for leg in sells]})
            sell_numbers = {leg.leg for leg in sells}
            legs = self._poll(
                lambda ls: _all_settled(ls, sell_numbers),
                min(deadline, time.monotonic() + self.settings.sell_wait_seconds),
            )
            self._release_buys(legs, sell_numbers)
        else:
            self._send_all(legs)
        legs = self._poll(lambda ls: _all_settled(ls, None), deadline)
        if self.settings.cancel_open_at_deadline:
            legs = self._cancel_open(legs)
            for round_number in range(1, self.settings.max_reprice_rounds + 1):
                if not self._reprice(legs, round_number):
                    break
                legs = self._poll(
                    lambda ls: _all_settled(ls, None),
                    time.monotonic() + self.settings.deadline_seconds,
                )
                legs = self._cancel_open(legs)
        return _summarise(legs, sent=self.sent)

    def _reprice(self, legs: list[LegRecord], round_number: int) -> bool:
        """Send round ``round_number`` for every remainder cancelled in the round before;
        True if any child order went out."""
        remainders = [
            leg
            for leg in legs
            if leg.order_state is OrderState.CANCELLED
            and leg.reprice_round == round_number - 1
            and leg.filled_quantity < leg.quantity
            and leg.leg in self.sendable
        ]
        sent = False
        quotes = self._quotes(remainders)
        for leg in remainders:
            quote = quotes.get(leg.symbol)
            limit = self.settings.max_price_move_pct
            if quote is not None and limit is not None and leg.price > 0:
                change = 100 * (quote.last_price - leg.price) / leg.price
                if abs(change) > limit:
                    self.store.note(
                        self.run_id,
                        f"leg {leg.leg} {leg.symbol}: not re-priced, the price moved "
                        f"{change:+.2f}% since planning (limit {limit}%)",
                    )
                    continue
            remainder = leg.quantity - leg.filled_quantity
            tag = child_tag(leg.tag, round_number)
            child = {"round": round_number, "tag": tag, "quantity": remainder}
            self.store.update_order(
                self.run_id,
                leg.leg,
                state=OrderState.PENDING,
                reprice_round=round_number,
                attempts=0,
                children=[*leg.children, child],
                error=None,
            )
            self.store.note(
                self.run_id,
                f"leg {leg.leg} {leg.symbol}: {remainder} of {leg.quantity} shares unfilled at "
                f"the fill deadline, re-priced as {tag} (round {round_number})",
            )
            fresh = {lg.leg: lg for lg in self.store.orders(self.run_id)}[leg.leg]
            self._send(fresh, quote)
            sent = True
        return sent

    def _quote(self, leg: LegRecord) -> Quote | None:
        return self._quotes([leg]).get(leg.symbol)

    def _quotes(self, legs: list[LegRecord]) -> dict[str, Quote]:
        """Fresh quotes for ``legs`` (one batched read; a read error fails the task, whose
        retry carries on: nothing was sent for these legs yet)."""
        if not legs:
            return {}
        instruments = list({Instrument(leg.symbol, leg.exchange) for leg in legs})
        return self.broker.quotes(instruments)

    def _buys_need_sells(self, sells: list[LegRecord], buys: list[LegRecord]) -> bool:
        if not sells or not buys:
            return False
        cash = self.plan.summary.cash_before
        cost = sum(b.notional + b.charges for b in buys)
        return cash is None or cash < cost * (1 + self.settings.buy_cash_buffer)

    def _send_all(self, legs: Iterable[LegRecord]) -> None:
        fresh = {leg.leg: leg for leg in self.store.orders(self.run_id)}
        legs = list(legs)
        pending = [
            fresh[leg.leg] for leg in legs if fresh[leg.leg].order_state is OrderState.PENDING
        ]
        quotes = self._quotes(pending)  # one read for every order about to be priced
        for leg in legs:
            number = leg.leg
            self.sendable.add(number)
            if fresh[number].order_state is OrderState.PENDING:
                self._send(fresh[number], quotes.get(leg.symbol))

    def _release_buys(self, legs: list[LegRecord], sell_numbers: set[int]) -> None:
        """Send the buys: all if every sell filled, else those today's cash covers."""
        sells = [leg for leg in legs if leg.leg in sell_numbers]
        buys = [leg for leg in legs if leg.leg not in sell_numbers]
        if all(s.order_state is OrderState.COMPLETE for s in sells):
            self._send_all(buys)
            return
        filled = sum(s.filled_quantity for s in sells)
        wanted = sum(s.quantity for s in sells)
        cash = self.broker.funds().available_cash
        for leg in buys:
            if leg.order_state is not OrderState.PENDING:
                self.sendable.add(leg.leg)
                continue
            cost = (leg.notional + leg.charges) * (1 + self.settings.buy_cash_buffer)
            if cost <= cash:
                cash -= cost
                self._send_all([leg])
                continue
            why = (
                f"not sent: the sells funding the buys filled {filled} of {wanted} shares by "
                f"the sell deadline and available cash ₹{cash:,.2f} does not cover ₹{cost:,.2f}"
            )
            self.store.update_order(self.run_id, leg.leg, state=OrderState.DENIED, error=why)
            self.store.note(self.run_id, f"leg {leg.leg} {leg.symbol}: {why}")
            log.warning("BUY %s %s: %s", leg.quantity, leg.symbol, why)

    def _send(self, leg: LegRecord, quote: Quote | None = None) -> None:
        number = leg.leg
        attempt = leg.attempts + 1
        side = Side(leg.side)
        round_number = leg.reprice_round
        quote = quote or self._quote(leg)
        try:
            if quote is None:
                raise ValueError(f"{leg.symbol}: the broker gave no quote to price the order")
            priced = price_order(side, quote, self.settings.pricing, round_number=round_number)
        except ValueError as exc:
            why = f"not sent: {exc}"
            self.store.update_order(self.run_id, number, state=OrderState.DENIED, error=why)
            self.store.note(self.run_id, f"leg {number} {leg.symbol}: {why}")
            log.warning("%s %s: %s", side, leg.symbol, why)
            return
        request = priced.request(
            leg.symbol, leg.exchange, side, _round_quantity(leg), current_tag(leg)
        )
        entry = {
            "round": round_number,
            "tag": request.tag,
            "quantity": request.quantity,
            "price": priced.price,
            "market_protection": priced.market_protection,
            "reference_price": priced.reference_price,
            "notes": list(priced.notes),
        }
        children = [c for c in leg.children if c.get("round") != round_number] + [entry]
        # Committed before sending: a crash from here on leaves "sent", which only the book
        # (or the grace rule) settles.
        self.store.update_order(
            self.run_id,
            number,
            state=OrderState.SENT,
            attempts=attempt,
            sent_at=self.now(),
            children=sorted(children, key=lambda c: int(c["round"])),
        )
        self.checkpoint("before_send", {"leg": number, "tag": request.tag, "attempt": attempt})
        self.sent += 1
        try:
            broker_order_id = self.broker.place_order(request)
        except OrderRejected as exc:
            log.warning(
                "%s %s %s rejected: %s", request.side, request.quantity, request.symbol, exc
            )
            self.store.update_order(self.run_id, number, state=OrderState.REJECTED, error=str(exc))
            return
        except OrderOutcomeUnknown as exc:
            log.warning(
                "%s %s: outcome unknown (%s); the book will tell", request.symbol, request.tag, exc
            )
            self.store.update_order(self.run_id, number, error=f"outcome unknown: {exc}")
            return
        except BrokerError as exc:
            # Any other failure while sending: we cannot be sure nothing reached the broker.
            log.warning(
                "%s %s: send failed (%s); the book will tell", request.symbol, request.tag, exc
            )
            self.store.update_order(self.run_id, number, error=f"send failed: {exc}")
            return
        self.checkpoint("after_send", {"leg": number, "tag": request.tag, "id": broker_order_id})
        log.info(
            "%s %s %s sent as %s", request.side, request.quantity, request.symbol, broker_order_id
        )
        self.store.update_order(
            self.run_id, number, state=OrderState.OPEN, broker_order_id=broker_order_id, error=None
        )

    def _poll(self, done: Callable[[list[LegRecord]], bool], until: float) -> list[LegRecord]:
        while True:
            legs = self.settle_legs()
            for leg in legs:
                number = leg.leg
                if number in self.sendable and leg.order_state is OrderState.PENDING:
                    self._send(leg)  # proved absent past the grace: the same tag again
            if done(legs) or time.monotonic() >= until:
                return legs
            self.checkpoint("polled", {"legs": len(legs)})
            self.sleep(self.settings.poll_seconds)

    def _cancel_open(self, legs: list[LegRecord]) -> list[LegRecord]:
        open_legs = [
            leg
            for leg in legs
            if leg.order_state in (OrderState.OPEN, OrderState.PARTIALLY_FILLED)
            and leg.broker_order_id
        ]
        if not open_legs:
            return legs
        for leg in open_legs:
            try:
                self.broker.cancel(str(leg.broker_order_id))
                self.store.note(
                    self.run_id,
                    f"leg {leg.leg} {leg.symbol}: open at the deadline, "
                    f"cancelled the unfilled remainder",
                )
            except (CancelRejected, OrderNotFound) as exc:
                log.info("cancel %s: %s", leg.broker_order_id, exc)
        return self.settle_legs()


def _all_settled(legs: list[LegRecord], among: set[int] | None) -> bool:
    return all(leg.order_state.is_terminal for leg in legs if among is None or leg.leg in among)


def _summarise(
    legs: list[LegRecord],
    *,
    sent: int,
    status: RunStatus | None = None,
    reason: str | None = None,
    finished_before: bool = False,
    prefix: str = "",
) -> PlacementResult:
    states = [leg.order_state for leg in legs]
    counts = {str(s): states.count(s) for s in OrderState if s in states}
    partial = sum(
        1
        for leg, s in zip(legs, states, strict=True)
        if s is not OrderState.COMPLETE and leg.filled_quantity > 0
    )
    complete = states.count(OrderState.COMPLETE)
    any_fill = any(leg.filled_quantity > 0 for leg in legs)
    unsettled = sum(not s.is_terminal for s in states)
    unknown = states.count(OrderState.SENT)
    duplicates = sum(leg.broker_orders > 1 for leg in legs)
    if status is None:
        if legs and complete == len(legs):
            status = RunStatus.PLACED
        elif any_fill:
            status = RunStatus.PARTIALLY_FILLED
        else:
            status = RunStatus.FAILED
    if reason is None:
        parts = [f"{len(legs)} orders: {complete} complete"]
        for label, value in (
            ("partially filled", partial),
            ("rejected", states.count(OrderState.REJECTED)),
            ("not sent (no funding)", states.count(OrderState.DENIED)),
            ("never sent", states.count(OrderState.NOT_SENT)),
            ("sent but never placed", states.count(OrderState.NOT_PLACED)),
            (
                "cancelled unfilled",
                sum(
                    1
                    for leg, s in zip(legs, states, strict=True)
                    if s is OrderState.CANCELLED and leg.filled_quantity == 0
                ),
            ),
            ("outcome unknown (sent, never seen in the book)", unknown),
            ("still open", unsettled - unknown - states.count(OrderState.PENDING)),
            ("still to send", states.count(OrderState.PENDING)),
            ("with DUPLICATE broker orders", duplicates),
        ):
            if value:
                parts.append(f"{value} {label}")
        reason = prefix + ", ".join(parts)
        if finished_before:
            reason = f"already {status}: nothing sent; " + reason
    return PlacementResult(
        status=status,
        reason=reason,
        legs=len(legs),
        placed=sum(s in _AT_BROKER for s in states),
        complete=complete,
        partially_filled=partial,
        rejected=states.count(OrderState.REJECTED),
        denied=states.count(OrderState.DENIED),
        not_placed=states.count(OrderState.NOT_PLACED),
        unsettled=unsettled,
        sent=sent,
        duplicates=duplicates,
        finished_before=finished_before,
        counts=counts,
        not_sent=states.count(OrderState.NOT_SENT),
        unknown=unknown,
    )


# --- the manual queue (notes 13.4) ------------------------------------------------------------


def mark_placed(store: HistoryStore, run_id: int, by: str, now: datetime | None = None) -> None:
    """A person says the exported basket of ``run_id`` is placed (``rebalance mark-placed``)."""
    run = store.run(run_id)
    queue = dict((run.placement or {}).get("manual_queue") or {})
    if run.run_status is not RunStatus.PLACING or not queue.get("baskets"):
        raise IllegalTransition(
            f"run {run_id} is {run.run_status}: only a run waiting with an exported basket "
            "(manual_queue, placing) can be marked placed"
        )
    queue |= {"marked_placed_by": by, "marked_placed_at": (now or _utcnow()).isoformat()}
    store.update_run(run_id, placement=(run.placement or {}) | {"manual_queue": queue})
    store.note(run_id, f"basket marked placed by {by}")


def reconcile_manual_queue(
    store: HistoryStore, run_id: int, holdings: Iterable[Any], why: str
) -> PlacementResult:
    """Record what a hand-placed basket did: each leg's fill is the change of the account's
    holding since the run's snapshot, at most the leg's quantity (a buy: up; a sell: down).

    Holdings must count today's buys (Zerodha merges the day's positions; see docs/brokers.md).
    """
    run = store.run(run_id)
    before = {
        str(p["symbol"]): int(p.get("quantity") or 0)
        for p in (run.snapshot or {}).get("positions", [])
    }
    now_held = {h.symbol: int(h.quantity) for h in holdings}
    for leg in store.orders(run_id):
        change = now_held.get(leg.symbol, 0) - before.get(leg.symbol, 0)
        done = change if leg.side == str(Side.BUY) else -change
        filled = max(0, min(leg.quantity, done))
        if leg.order_state.is_terminal:
            continue
        if filled == leg.quantity:
            state = OrderState.COMPLETE
        elif filled > 0:
            state = OrderState.CANCELLED
        else:
            state = OrderState.NOT_SENT
        note = f"manual queue: holding changed by {change:+d} shares since the snapshot"
        store.update_order(run_id, leg.leg, state=state, filled_quantity=filled, error=note)
    result = _summarise(store.orders(run_id), sent=0, prefix=f"{why}: ")
    placement = dict(run.placement or {}) | result.to_record()
    store.transition(run_id, result.status, result.reason, placement=placement)
    return result
