"""Deterministic synthetic daily closes per symbol, for the paper broker and the emulators.

The close of a symbol on a day does not depend on the range asked for: each symbol has its own
random walk (seeded by the symbol's CRC-32) over the calendar days since ``EPOCH``, with its own
daily volatility between 0.8% and 2.8%, so two symbols differ in risk and the risk models have
something to weigh. Only exchange trading days get a candle (``rebalance.calendar``). No splits,
no gaps: tests make those by editing what an emulator serves.
"""

from __future__ import annotations

import zlib
from datetime import date

import numpy as np

from rebalance.brokers.base import Candle
from rebalance.calendar import trading_calendar

EPOCH = date(2018, 1, 1)


def daily_volatility(symbol: str) -> float:
    """The symbol's daily return volatility (fraction), fixed by its name."""
    return 0.008 + 0.02 * (zlib.crc32(symbol.encode()) % 1000) / 1000.0


def synthetic_candles(symbol: str, first: date, last: date) -> list[Candle]:
    """Daily candles of ``symbol`` on the trading days in ``[first, last]`` (never before EPOCH)."""
    first = max(first, EPOCH)
    if last < first:
        return []
    days = trading_calendar().trading_days_between(first, min(last, date.today()))
    if not days:
        return []
    seed = zlib.crc32(symbol.encode())
    steps = (days[-1] - EPOCH).days + 1
    shocks = np.random.default_rng(seed).standard_normal(steps) * daily_volatility(symbol)
    levels = (100.0 + seed % 2900) * np.exp(np.cumsum(shocks))
    out = []
    for day in days:
        close = round(float(levels[(day - EPOCH).days]), 2)
        out.append(
            Candle(
                day,
                open=round(close * 0.998, 2),
                high=round(close * 1.006, 2),
                low=round(close * 0.992, 2),
                close=close,
                volume=1000 + seed % 100_000,
            )
        )
    return out
