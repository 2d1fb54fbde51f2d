"""The daily candles both emulators serve: the synthetic history, with the tests' edits applied.

An edit replaces a day's close (a stale run, a split-like jump) or, with ``None``, removes the day
(a gap), so a test can make exactly the bad history the price checks must catch.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from rebalance.brokers.base import Candle
from rebalance.brokers.synthetic_history import synthetic_candles

DAY_START = "T00:00:00+05:30"  # both APIs stamp a day candle at midnight IST


def served_candles(
    symbol: str, first: date, last: date, edits: dict[str, dict[date, float | None]]
) -> list[Candle]:
    """The candles of ``symbol`` in ``[first, last]`` as the emulator serves them."""
    changes = edits.get(symbol, {})
    out = []
    for candle in synthetic_candles(symbol, first, last):
        if candle.day not in changes:
            out.append(candle)
            continue
        close = changes[candle.day]
        if close is not None:
            out.append(replace(candle, open=close, high=close, low=close, close=close))
    return out


def candle_row(candle: Candle) -> list[object]:
    """``[timestamp, open, high, low, close, volume]`` as Kite and SmartAPI send a day candle."""
    stamp = candle.day.isoformat() + DAY_START
    return [stamp, candle.open, candle.high, candle.low, candle.close, candle.volume]


def parse_day(text: str) -> date:
    """The date part of ``2026-11-20 09:15`` / ``2026-11-20 00:00:00`` / ``2026-11-20``."""
    return datetime.strptime(text.strip()[:10], "%Y-%m-%d").date()
