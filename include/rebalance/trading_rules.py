"""Trading rules: checks that refuse to plan or to send, and say why (docs/architecture.md).

Pure functions over plain values: no store, broker, clock or Airflow. Each returns the reason a
person reads (the run records it and the lane stops), or None when the rule does not object.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from rebalance.domain.market import IST, Quote
from rebalance.plan import PlannedOrder


@dataclass(frozen=True)
class EarlierLiveRun:
    """Another live run of the same account: when it was opened and how many shares it filled."""

    run_id: int
    created_at: datetime  # timezone-aware
    filled_shares: int


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
