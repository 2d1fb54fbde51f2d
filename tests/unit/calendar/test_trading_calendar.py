"""Trading days from exchange_calendars' XBOM, and the known calendar's end."""

from __future__ import annotations

import datetime as dt

import pytest

from rebalance.calendar import TradingCalendar, library_calendar_end, trading_calendar
from rebalance.errors import CalendarError, RebalanceError


@pytest.fixture(scope="module")
def cal() -> TradingCalendar:
    return trading_calendar()


@pytest.mark.parametrize(
    ("day", "why"),
    [
        (dt.date(2024, 11, 1), "Diwali Laxmi Pujan 2024 (a Friday)"),
        (dt.date(2025, 3, 14), "Holi 2025 (a Friday)"),
        (dt.date(2026, 1, 26), "Republic Day 2026 (a Monday)"),
        (dt.date(2026, 3, 31), "Mahavir Jayanti 2026, a quarter end"),
        (dt.date(2025, 8, 31), "a Sunday"),
    ],
)
def test_holidays_and_weekends_are_not_trading_days(cal: TradingCalendar, day: dt.date, why: str):
    assert not cal.is_trading_day(day), why


def test_ordinary_weekdays_are_trading_days(cal: TradingCalendar):
    assert cal.is_trading_day(dt.date(2024, 10, 31))
    assert cal.is_trading_day(dt.date(2026, 12, 31))
    assert cal.next_trading_day(dt.date(2024, 10, 31)) == dt.date(2024, 11, 4)
    assert cal.previous_trading_day(dt.date(2025, 3, 17)) == dt.date(2025, 3, 13)


def test_the_library_calendar_ends_with_its_holiday_data():
    assert library_calendar_end() == dt.date(2026, 12, 31)


def test_a_day_beyond_the_known_calendar_raises_a_clear_error(cal: TradingCalendar):
    with pytest.raises(CalendarError, match="beyond the known trading calendar") as info:
        cal.is_trading_day(dt.date(2027, 1, 4))
    assert "2026-12-31" in str(info.value)
    assert "covers_until" in str(info.value)
    assert isinstance(info.value, RebalanceError)


def test_a_range_into_the_unknown_raises(cal: TradingCalendar):
    with pytest.raises(CalendarError):
        cal.trading_days_between(dt.date(2026, 12, 1), dt.date(2027, 1, 31))
    days = cal.trading_days_between(dt.date(2026, 12, 21), dt.date(2026, 12, 31))
    assert dt.date(2026, 12, 25) not in days
    assert days[-1] == dt.date(2026, 12, 31)
