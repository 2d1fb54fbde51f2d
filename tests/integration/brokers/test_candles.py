"""Daily candles through the real clients (KiteConnect.historical_data, SmartConnect.getCandleData)
against the emulators, and the paper broker's emulated history: all three agree, day by day."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest
from brokers_support import DEMO_CSV, angelone_broker, zerodha_broker  # type: ignore[import-not-found]

from rebalance.brokers.base import CandleSource
from rebalance.brokers.candles import date_windows
from rebalance.brokers.paper import PaperBroker
from rebalance.brokers.simulated import SimulatedExecution
from rebalance.calendar import trading_calendar
from rebalance.domain.market import Instrument
from rebalance.testing.emulators import KiteEmulator, SmartApiEmulator

FIRST, LAST = dt.date(2026, 9, 1), dt.date(2026, 10, 30)
INFY = Instrument("INFY", "NSE")


@pytest.fixture(autouse=True)
def _calendar_loaded() -> None:
    """The emulators answer within the clients' 0.5 s timeout: load the calendar (seconds) first."""
    trading_calendar()


def test_the_three_brokers_serve_the_same_daily_history(
    kite: KiteEmulator, angel: SmartApiEmulator, tmp_path: Path
) -> None:
    brokers = [
        zerodha_broker(kite),
        angelone_broker(angel, tmp_path / "cache"),
        PaperBroker("paper", DEMO_CSV, 0.0, tmp_path),
    ]
    served = []
    for broker in brokers:
        assert isinstance(broker, CandleSource)
        served.append(broker.candles(INFY, FIRST, LAST))
    assert served[0] == served[1] == served[2]
    days = [c.day for c in served[0]]
    assert days == trading_calendar().trading_days_between(FIRST, LAST)  # no weekend, no holiday
    assert all(c.low <= c.close <= c.high and c.close > 0 for c in served[0])
    assert ("GET", f"/instruments/historical/{_kite_token(kite, 'INFY')}/day") in kite.requests


def test_a_gap_and_a_changed_close_are_served_as_edited(
    kite: KiteEmulator, angel: SmartApiEmulator, tmp_path: Path
) -> None:
    gap, moved = dt.date(2026, 10, 5), dt.date(2026, 10, 6)
    for emulator in (kite, angel):
        emulator.history_edits["INFY"] = {gap: None, moved: 1.0}
    for broker in (zerodha_broker(kite), angelone_broker(angel, tmp_path / "cache")):
        candles = {c.day: c for c in broker.candles(INFY, FIRST, LAST)}
        assert gap not in candles
        assert candles[moved].close == 1.0


def test_a_long_range_is_asked_for_in_windows_of_at_most_2000_days() -> None:
    windows = list(date_windows(dt.date(2015, 1, 1), dt.date(2026, 1, 1)))
    assert windows[0][0] == dt.date(2015, 1, 1)
    assert windows[-1][1] == dt.date(2026, 1, 1)
    assert all((end - start).days < 2000 for start, end in windows)
    assert all(b[0] - a[1] == dt.timedelta(days=1) for a, b in itertools.pairwise(windows))


def _kite_token(kite: KiteEmulator, symbol: str) -> int:
    symbols = sorted(set(kite.holdings) | set(kite.prices) | set(kite.day_buys))
    return symbols.index(symbol) + 1


def test_paper_mode_on_a_real_account_reads_the_accounts_history(
    kite: KiteEmulator, tmp_path: Path
) -> None:
    simulated = SimulatedExecution(zerodha_broker(kite), "zerodha_main", tmp_path)
    assert isinstance(simulated, CandleSource)
    assert simulated.candles(INFY, FIRST, LAST) == zerodha_broker(kite).candles(INFY, FIRST, LAST)
