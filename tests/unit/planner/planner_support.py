"""Builders shared by the planner tests: snapshots from plain rows, plan lookups."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from rebalance.domain.market import Side
from rebalance.plan import PlannedOrder, PositionLine, TradePlan
from rebalance.snapshot import COLUMNS, HoldingsSnapshot

TAKEN_AT = datetime(2026, 11, 25, 9, 45, tzinfo=UTC)  # 15:15 in Asia/Kolkata
TODAY = date(2026, 11, 25)


def snapshot(rows: Sequence[dict[str, Any]], cash: float | None = None) -> HoldingsSnapshot:
    """A snapshot from rows with at least symbol, quantity, last_price (sellable = quantity,
    exchange NSE by default)."""
    full = [
        {
            "exchange": "NSE",
            "sellable_quantity": row["quantity"],
            "average_price": None,
            "previous_close": None,
            "acquired_on": None,
            "isin": None,
            **row,
        }
        for row in rows
    ]
    return HoldingsSnapshot(pd.DataFrame(full, columns=list(COLUMNS)), cash, TAKEN_AT)


def order(plan: TradePlan, symbol: str) -> PlannedOrder:
    """The plan's order for ``symbol`` (fails the test when there is none)."""
    found = [o for o in plan.orders if o.symbol == symbol]
    assert len(found) == 1, f"expected one order for {symbol}, got {found}"
    return found[0]


def signed_quantity(plan: TradePlan, symbol: str) -> int:
    """Shares bought (+) or sold (-) of ``symbol``; 0 when no order."""
    for found in plan.orders:
        if found.symbol == symbol:
            return found.quantity if found.side is Side.BUY else -found.quantity
    return 0


def position(plan: TradePlan, symbol: str) -> PositionLine:
    return next(p for p in plan.positions if p.symbol == symbol)
