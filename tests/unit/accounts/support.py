"""Builders shared by the accounts tests: holdings, accounts and orders from plain values."""

from __future__ import annotations

from datetime import UTC, date, datetime

from rebalance.accounts.combine import AccountHoldings
from rebalance.domain.market import Holding, Side
from rebalance.plan import PlannedOrder

TAKEN_AT = datetime(2026, 11, 25, 9, 45, tzinfo=UTC)  # 15:15 in Asia/Kolkata
TODAY = date(2026, 11, 25)


def holding(
    symbol: str,
    quantity: int,
    price: float,
    *,
    sellable: int | None = None,
    authorised: int | None = None,
    isin: str | None = None,
    exchange: str = "NSE",
) -> Holding:
    """A holding at ``price`` (average 10% below), all sellable unless told."""
    return Holding(
        symbol=symbol,
        exchange=exchange,
        quantity=quantity,
        sellable_quantity=quantity if sellable is None else sellable,
        average_price=round(price * 0.9, 2),
        last_price=price,
        isin=isin,
        authorised_quantity=authorised,
    )


def account(name: str, broker: str, cash: float | None, *holdings: Holding) -> AccountHoldings:
    return AccountHoldings(name, broker, tuple(holdings), cash)


def order(symbol: str, side: Side, quantity: int, price: float) -> PlannedOrder:
    """A planned NSE order (reasons and charges do not matter to the allocation)."""
    return PlannedOrder(symbol, "NSE", side, quantity, price, quantity * price, ("drift",))
