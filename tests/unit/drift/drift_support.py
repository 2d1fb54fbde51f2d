"""Builders shared by the drift tests: snapshots from plain rows, a weekday calendar."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from rebalance.errors import CalendarError
from rebalance.snapshot import COLUMNS, HoldingsSnapshot

TAKEN_AT = datetime(2026, 11, 25, 4, 30, tzinfo=UTC)  # 10:00 in Asia/Kolkata
TODAY = date(2026, 11, 25)


def snapshot(
    rows: Sequence[dict[str, Any]], cash: float | None = None, taken_at: datetime = TAKEN_AT
) -> HoldingsSnapshot:
    """A snapshot from rows with at least symbol, quantity, last_price."""
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
    return HoldingsSnapshot(
        pd.DataFrame(full, columns=list(COLUMNS)), cash, taken_at, "zerodha_main", "zerodha"
    )


class WeekdayCalendar:
    """Trading days = weekdays minus ``holidays``, known from ``start`` to ``end``: the two
    methods the drift decisions use, with TradingCalendar's behaviour at the edges."""

    def __init__(
        self,
        holidays: Sequence[date] = (),
        start: date = date(2026, 1, 1),
        end: date = date(2027, 12, 31),
    ) -> None:
        self.end = end
        closed = set(holidays)
        self.days = [
            start + timedelta(k)
            for k in range((end - start).days + 1)
            if (start + timedelta(k)).weekday() < 5 and start + timedelta(k) not in closed
        ]

    def _check(self, day: date) -> None:
        if day > self.end:
            raise CalendarError(f"{day} is beyond the known trading calendar")

    def trading_days_between(self, first: date, last: date) -> list[date]:
        self._check(first)
        self._check(last)
        return self.days[
            bisect.bisect_left(self.days, first) : bisect.bisect_right(self.days, last)
        ]

    def next_trading_day(self, day: date) -> date:
        index = bisect.bisect_right(self.days, day)
        if index >= len(self.days):
            raise CalendarError(f"no trading day after {day} in the known calendar")
        return self.days[index]
