"""Daily candles from the brokers' historical-data APIs, parsed into ``Candle`` (one shape).

* Kite Connect: ``GET /instruments/historical/{instrument_token}/day?from=..&to=..``; the client
  (``KiteConnect.historical_data``) turns each ``[timestamp, open, high, low, close, volume]``
  row into a dict with a parsed ``date``. At most 2000 days of day candles per request.
* SmartAPI: ``POST .../historical/v1/getCandleData`` with ``exchange, symboltoken, interval
  (ONE_DAY), fromdate, todate`` (``YYYY-MM-DD HH:MM``); ``data`` is a list of
  ``["2026-11-20T00:00:00+05:30", open, high, low, close, volume]``. At most 2000 days of
  ONE_DAY candles per request.

Both limits are the vendors' published per-request ranges (docs/targets.md, "Price history").
A candle's timestamp becomes its trading day in IST.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

from rebalance.brokers.base import BadResponse, Candle
from rebalance.domain.market import IST

MAX_DAYS_PER_REQUEST = 2000


def date_windows(
    first: date, last: date, size: int = MAX_DAYS_PER_REQUEST
) -> Iterator[tuple[date, date]]:
    """``[first, last]`` cut into consecutive windows of at most ``size`` calendar days."""
    start = first
    while start <= last:
        end = min(last, start + timedelta(days=size - 1))
        yield start, end
        start = end + timedelta(days=1)


def _day(broker: str, what: str, stamp: Any) -> date:
    when = datetime.fromisoformat(stamp) if isinstance(stamp, str) else stamp
    if isinstance(when, datetime):
        return (when.astimezone(IST) if when.tzinfo else when).date()
    if isinstance(when, date):
        return when
    raise BadResponse(broker, f"{what}: candle timestamp {stamp!r} is not a date")


def _candle(broker: str, what: str, day: date, values: list[Any]) -> Candle:
    try:
        open_, high, low, close = (float(v) for v in values[:4])
        volume = int(float(values[4])) if len(values) > 4 and values[4] is not None else 0
    except (TypeError, ValueError):
        raise BadResponse(broker, f"{what}: candle of {day} has a non-number: {values!r}") from None
    return Candle(day, open_, high, low, close, volume)


def kite_candles(records: Any, what: str) -> list[Candle]:
    """``KiteConnect.historical_data`` records (dicts with date/open/high/low/close/volume)."""
    if not isinstance(records, list):
        raise BadResponse("zerodha", f"{what}: expected a list of candles")
    out = []
    for rec in records:
        if not isinstance(rec, dict) or "date" not in rec:
            raise BadResponse("zerodha", f"{what}: a candle without a date: {rec!r}")
        values = [rec.get(k) for k in ("open", "high", "low", "close", "volume")]
        out.append(_candle("zerodha", what, _day("zerodha", what, rec["date"]), values))
    return sorted(out, key=lambda c: c.day)


def smartapi_candles(rows: Any, what: str) -> list[Candle]:
    """SmartAPI ``getCandleData`` rows ``[timestamp, open, high, low, close, volume]``."""
    if rows is None:
        return []  # SmartAPI sends null for a range without candles
    if not isinstance(rows, list):
        raise BadResponse("angelone", f"{what}: expected a list of candles")
    out = []
    for row in rows:
        if not isinstance(row, list) or len(row) < 5:
            raise BadResponse("angelone", f"{what}: a candle is not [time, o, h, l, c, v]: {row!r}")
        out.append(_candle("angelone", what, _day("angelone", what, row[0]), row[1:]))
    return sorted(out, key=lambda c: c.day)
