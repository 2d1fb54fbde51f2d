"""Trading rules: checks that refuse to plan or to send, and say why (docs/architecture.md).

Pure functions over plain values: no store, broker, clock or Airflow (``moved_since_planning``
is handed the broker's quote reader, called only when there is something to judge). Each returns
the reason a person reads (the run records it and the lane stops), or None when the rule does not
object. The task bodies (``tasks.py``) read the store and the broker and hand the values in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from rebalance.domain.market import IST, Instrument, Quote
from rebalance.history.records import LegRecord, RunRecord
from rebalance.history.status import OrderState
from rebalance.plan import PlannedOrder, TradePlan
from rebalance.portfolio import BrokerName, ExecutionMode


@dataclass(frozen=True)
class EarlierLiveRun:
    """Another live run of the same account: when it was opened and how many shares it filled."""

    run_id: int
    created_at: datetime  # timezone-aware
    filled_shares: int


def earlier_live_runs(
    runs: Iterable[RunRecord], run_id: int, account: str, filled_shares: Callable[[int], int]
) -> Iterator[EarlierLiveRun]:
    """The account's live runs other than ``run_id`` among ``runs``, lazily (``filled_shares``
    reads a run's fills only when the rule asks)."""
    for run in runs:
        if run.id != run_id and run.account == account and run.mode == "live":
            yield EarlierLiveRun(run.id, run.created_at, filled_shares(run.id))


def second_live_run_today(
    account: str, today: date, earlier: Iterable[EarlierLiveRun]
) -> str | None:
    """Refuse a second live rebalance of ``account`` on the same day (IST) once one traded.

    Brokers report today's delivery buys as positions, not holdings, until settlement: a second
    plan the same day would see the bought shares as missing and buy them again.
    """
    for run in earlier:
        if run.created_at.astimezone(IST).date() == today and run.filled_shares > 0:
            return (
                f"account {account} already traded in rebalance run {run.run_id} today; "
                "its buys are not in the broker's holdings until settlement, so a second plan "
                "would buy them again. Nothing planned or ordered: run again tomorrow."
            )
    return None


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


def second_live_run(
    account: str,
    broker: BrokerName,
    mode: ExecutionMode,
    today: date,
    earlier: Iterable[EarlierLiveRun],
) -> str | None:
    """``second_live_run_today`` where it applies: live runs of a real account whose broker's
    same-day quantities are not reliable. ``earlier`` is read only then (it may be lazy); a
    resume or a re-pricing round belongs to its own run, never a second run."""
    if mode is not ExecutionMode.LIVE or broker is BrokerName.PAPER:
        return None
    if same_day_quantities_reliable(broker):
        return None
    return second_live_run_today(account, today, earlier)


def price_move(
    orders: Sequence[PlannedOrder], quotes: Mapping[str, Quote], limit_pct: float
) -> str | None:
    """Refuse to send orders whose price moved more than ``limit_pct`` (%) since planning.

    An approval covers the plan at its prices, not stale orders. ``quotes`` are today's, by
    symbol; an order without a quote counts as moved.
    """
    moved = []
    for order in orders:
        quote = quotes.get(order.symbol)
        if quote is None:
            moved.append(f"{order.symbol}: no quote now")
            continue
        change = 100 * (quote.last_price - order.price) / order.price
        if abs(change) > limit_pct:
            then, now = order.price, quote.last_price
            moved.append(f"{order.symbol}: {then:,.2f} -> {now:,.2f} ({change:+.2f}%)")
    if not moved:
        return None
    return f"prices moved more than {limit_pct}% since planning: {'; '.join(moved)}"


def orders_to_judge(
    orders: Sequence[PlannedOrder], legs: Sequence[LegRecord] | None
) -> list[PlannedOrder]:
    """The planned orders ``price_move`` judges: all of them before the first send (``legs``
    None, or none written yet); on a retry or a resume, those whose leg is ``pending`` or
    ``not_sent``."""
    if not legs:
        return list(orders)
    unsent = {
        leg.symbol for leg in legs if leg.order_state in (OrderState.PENDING, OrderState.NOT_SENT)
    }
    return [o for o in orders if o.symbol in unsent]


def moved_since_planning(
    run: RunRecord,
    legs: Sequence[LegRecord] | None,
    quotes: Callable[[list[Instrument]], Mapping[str, Quote]],
    limit_pct: float,
) -> str | None:
    """``price_move`` on the run's orders still to send (``orders_to_judge``; ``legs`` None
    before the first send), priced by ``quotes`` (the broker's ``quotes``) only when there are
    some."""
    if not run.plan:
        return None
    orders = orders_to_judge(TradePlan.from_dict(run.plan).orders, legs)
    if not orders:
        return None
    return price_move(orders, quotes([Instrument(o.symbol, o.exchange) for o in orders]), limit_pct)
