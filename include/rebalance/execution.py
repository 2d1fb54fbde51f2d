"""Idempotent order placement: write ahead, tag, reconcile by tag, send, poll.

Airflow runs a task at least once, so ``place_plan`` may run again for the same run (a retry, or a
second copy after a lost heartbeat). It is safe because:

1. every leg of the approved plan is written ahead (``pending``) with a deterministic tag before
   anything is sent;
2. before sending, the broker's order book is read and every leg whose tag is already there is
   settled from the book, never re-sent;
3. a send whose outcome is unknown is marked ``sent`` and settled by the next reconciliation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from rebalance.brokers.base import (
    Broker,
    OrderOutcomeUnknown,
    OrderRejected,
    OrderReport,
    OrderRequest,
    OrderStatus,
    Side,
)
from rebalance.brokers.tags import order_tag
from rebalance.history.status import OrderState
from rebalance.history.store import HistoryStore
from rebalance.plan import TradePlan

log = logging.getLogger(__name__)

_STATE_OF_STATUS = {
    OrderStatus.OPEN: OrderState.OPEN,
    OrderStatus.PARTIALLY_FILLED: OrderState.PARTIALLY_FILLED,
    OrderStatus.COMPLETE: OrderState.COMPLETE,
    OrderStatus.CANCELLED: OrderState.CANCELLED,
    OrderStatus.REJECTED: OrderState.REJECTED,
}


@dataclass(frozen=True)
class PlacementResult:
    placed: int  # legs the broker has (any state but rejected / not placed)
    complete: int
    partially_filled: int
    rejected: int
    unsettled: int  # legs whose outcome is still unknown or still open at the deadline


def legs_of(plan: TradePlan, run_key: str, account: str) -> list[dict[str, object]]:
    """The plan's orders as write-ahead rows, sells first (their proceeds fund the buys)."""
    ordered = sorted(plan.orders, key=lambda o: (o.side != Side.SELL, o.symbol))
    return [
        {
            "leg": leg,
            "tag": order_tag(run_key, account, leg),
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


def reconcile(store: HistoryStore, run_id: int, broker: Broker) -> None:
    """Settle every unsettled leg from the broker's order book, matched by our tag."""
    book = {r.tag: r for r in broker.orders() if r.tag}
    for leg in store.orders(run_id):
        state = OrderState(leg["state"])
        if state.is_terminal:
            continue
        report = book.get(leg["tag"])
        if report is not None:
            _record_report(store, run_id, leg["leg"], report)
        elif state is OrderState.SENT:
            # We sent it, the broker's book does not have it: it was never placed.
            store.update_order(run_id, leg["leg"], state=str(OrderState.NOT_PLACED))


def _record_report(store: HistoryStore, run_id: int, leg: int, report: OrderReport) -> None:
    store.update_order(
        run_id,
        leg,
        state=str(_STATE_OF_STATUS[report.status]),
        broker_order_id=report.broker_order_id,
        filled_quantity=report.filled_quantity,
        average_price=report.average_price,
        error=report.message if report.status is OrderStatus.REJECTED else None,
    )


def place_plan(
    store: HistoryStore,
    run_id: int,
    plan: TradePlan,
    broker: Broker,
    *,
    run_key: str,
    account: str,
    deadline_seconds: float = 600.0,
    poll_seconds: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> PlacementResult:
    """Place the approved ``plan`` exactly once per leg and poll until terminal or the deadline."""
    store.write_orders_ahead(run_id, legs_of(plan, run_key, account))
    reconcile(store, run_id, broker)
    for leg in store.orders(run_id):
        if OrderState(leg["state"]) is not OrderState.PENDING:
            continue
        _send(store, run_id, leg, broker)
    waited = 0.0
    while True:
        reconcile(store, run_id, broker)
        legs = store.orders(run_id)
        if all(OrderState(leg["state"]).is_terminal for leg in legs) or waited >= deadline_seconds:
            return _result(legs)
        sleep(poll_seconds)
        waited += poll_seconds


def _send(store: HistoryStore, run_id: int, leg: dict[str, object], broker: Broker) -> None:
    request = OrderRequest(
        symbol=str(leg["symbol"]),
        exchange=str(leg["exchange"]),
        side=Side(str(leg["side"])),
        quantity=int(str(leg["quantity"])),
        tag=str(leg["tag"]),
    )
    number = int(str(leg["leg"]))
    # Mark it sent *before* sending: a crash now leaves "sent", which reconciliation settles.
    store.update_order(run_id, number, state=str(OrderState.SENT), attempts=1)
    try:
        broker_order_id = broker.place_order(request)
    except OrderRejected as exc:
        log.warning("%s %s %s rejected: %s", request.side, request.quantity, request.symbol, exc)
        store.update_order(run_id, number, state=str(OrderState.REJECTED), error=str(exc))
        return
    except OrderOutcomeUnknown as exc:
        log.warning("%s %s: outcome unknown (%s); settling by reconciliation", request.symbol, request.tag, exc)
        return
    log.info("%s %s %s sent as %s", request.side, request.quantity, request.symbol, broker_order_id)
    store.update_order(run_id, number, state=str(OrderState.OPEN), broker_order_id=broker_order_id)


def _result(legs: list[dict[str, object]]) -> PlacementResult:
    states = [OrderState(str(leg["state"])) for leg in legs]
    return PlacementResult(
        placed=sum(s not in (OrderState.REJECTED, OrderState.NOT_PLACED, OrderState.DENIED) for s in states),
        complete=states.count(OrderState.COMPLETE),
        partially_filled=states.count(OrderState.PARTIALLY_FILLED),
        rejected=states.count(OrderState.REJECTED),
        unsettled=sum(not s.is_terminal for s in states),
    )
