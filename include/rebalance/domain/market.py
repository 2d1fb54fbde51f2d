"""The words every layer shares: sides, holdings, quotes, instruments, the exchange zone and hours.

The bottom of the layers (docs/architecture.md): the planner, the brokers and history all import
these, and this module imports nothing of the project. Quantities are whole shares; prices rupees.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

IST_NAME = "Asia/Kolkata"
IST = ZoneInfo(IST_NAME)  # the exchanges' zone: trading days, cut-offs and market hours are in it
MARKET_OPEN = dt.time(9, 15)  # IST, regular session
MARKET_CLOSE = dt.time(15, 30)  # IST, regular session


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


@dataclass(frozen=True)
class Holding:
    """One position in an account. Quantities are whole shares; prices are rupees."""

    symbol: str  # canonical: the NSE trading symbol, e.g. "INFY" (never "INFY-EQ")
    exchange: str  # "NSE" | "BSE"
    quantity: int  # total held (settled + T1)
    sellable_quantity: int  # what may be sold today (excludes pledged / unsettled / collateral)
    average_price: float
    last_price: float
    isin: str | None = None
    acquired_on: date | None = None  # when known (paper broker files); used by min_holding_days
    # Shares the depository has authorised for sale today (CDSL TPIN / eDIS). None = not
    # applicable: the account has a DDPI / POA, so every sellable share may be sold.
    authorised_quantity: int | None = None
    # Of ``quantity``: bought today (delivery), read from the day's positions, not yet in holdings.
    bought_today: int = 0

    @property
    def sellable_today(self) -> int:
        """What may be sold today: the sellable quantity, capped by the authorisation if any."""
        if self.authorised_quantity is None:
            return self.sellable_quantity
        return min(self.sellable_quantity, self.authorised_quantity)


@dataclass(frozen=True)
class Instrument:
    symbol: str
    exchange: str = "NSE"

    @property
    def key(self) -> str:
        return f"{self.exchange}:{self.symbol}"


@dataclass(frozen=True)
class Quote:
    symbol: str
    exchange: str
    last_price: float
    previous_close: float | None = None  # for today's winners/losers
    as_of: datetime | None = None  # exchange timestamp of the last trade, when given
    tick_size: float | None = None  # rupees; from the broker's instrument master
    upper_circuit: float | None = None  # the day's price band, rupees (None = not given)
    lower_circuit: float | None = None
