"""The holiday override file: adds and removes holidays, special sessions, extends the calendar."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from rebalance.calendar import (
    TradingCalendar,
    load_overrides,
    overrides_for_portfolio,
    parse_overrides,
    trading_calendar,
)
from rebalance.errors import CalendarError, ConfigError
from rebalance.portfolio import load_portfolio

PROJECT_ROOT = Path(__file__).resolve().parents[3]

OVERRIDES_2027 = """
source: test list, shaped like an NSE circular
covers_until: 2027-12-31
holidays:
  - {date: 2026-12-30, note: added closure}
  - {date: 2027-01-26, note: Republic Day}
  - {date: 2027-03-22, note: Holi}
remove_holidays:
  - {date: 2026-12-25, note: open after all (test)}
special_sessions:
  - {date: 2026-11-08, note: Muhurat trading, start: "18:00", end: "19:00"}
"""


def write(tmp_path: Path, text: str, name: str = "holidays.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def cal(tmp_path: Path) -> TradingCalendar:
    return trading_calendar(load_overrides(write(tmp_path, OVERRIDES_2027)))


def test_overrides_add_and_remove_holidays(cal: TradingCalendar):
    assert not cal.is_trading_day(dt.date(2026, 12, 30))
    assert cal.is_trading_day(dt.date(2026, 12, 25))
    assert not cal.is_trading_day(dt.date(2027, 1, 26))
    assert not cal.is_trading_day(dt.date(2027, 3, 22))
    assert cal.is_trading_day(dt.date(2027, 1, 25))
    assert not cal.is_trading_day(dt.date(2027, 1, 30))  # a Saturday stays closed


def test_covers_until_extends_the_known_calendar(cal: TradingCalendar):
    assert cal.end == dt.date(2027, 12, 31)
    with pytest.raises(CalendarError, match="beyond the known trading calendar"):
        cal.is_trading_day(dt.date(2028, 1, 3))


def test_special_sessions_count_only_when_asked(cal: TradingCalendar):
    muhurat = dt.date(2026, 11, 8)  # a Sunday
    assert not cal.is_trading_day(muhurat)
    assert cal.is_trading_day(muhurat, include_special=True)
    assert cal.is_special_session(muhurat)


def test_the_library_calendar_is_unchanged_without_overrides():
    plain = trading_calendar()
    assert plain.is_trading_day(dt.date(2026, 12, 30))
    assert not plain.is_trading_day(dt.date(2026, 12, 25))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("holidays: [\n  - {date: 2027-01-26", "malformed YAML"),
        ("covers_until: 2027-12-31\nholiday: []\n", "holiday: unknown key"),
        ("holidays: []\n", "covers_until: Field required"),
        (
            "covers_until: 2027-12-31\nholidays:\n  - {date: 2027-02-30, note: x}\n",
            "holidays.0.date",
        ),
        ("covers_until: 2027-12-31\nholidays:\n  - {date: 2027-01-26}\n", "holidays.0.note"),
        (
            "covers_until: 2027-06-30\nholidays:\n  - {date: 2027-10-29, note: Diwali}\n",
            "holidays.0.date: 2027-10-29 is after covers_until 2027-06-30",
        ),
        (
            "covers_until: 2027-12-31\nremove_holidays:\n  - {date: 2027-01-02, note: x}\n",
            "remove_holidays.0.date: 2027-01-02 is a weekend day",
        ),
        (
            "covers_until: 2027-12-31\nholidays:\n  - {date: 2027-01-26, note: a}\n"
            "remove_holidays:\n  - {date: 2027-01-26, note: b}\n",
            "remove_holidays.0.date: 2027-01-26 is already listed under holidays",
        ),
        (
            "covers_until: 2027-12-31\nspecial_sessions:\n"
            "  - {date: 2027-10-29, note: Muhurat, start: '19:00', end: '18:00'}\n",
            "special_sessions.0",
        ),
        ("- 2027-01-26\n", "expected a mapping"),
    ],
)
def test_a_malformed_override_file_names_the_file_and_field(
    tmp_path: Path, text: str, expected: str
):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_overrides(path)
    message = str(info.value)
    assert str(path) in message
    assert expected in message


def test_a_missing_override_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_overrides(tmp_path / "nope.yaml")


def test_errors_through_a_portfolio_name_the_portfolio_file_and_field(tmp_path: Path):
    demo = (PROJECT_ROOT / "portfolios" / "demo.yaml").read_text(encoding="utf-8")
    portfolio_file = write(tmp_path, demo + "holiday_overrides: cal/bad.yaml\n", "core.yaml")
    (tmp_path / "cal").mkdir()
    write(tmp_path / "cal", "covers_until: soon\n", "bad.yaml")
    portfolio = load_portfolio(portfolio_file)
    with pytest.raises(ConfigError) as info:
        overrides_for_portfolio(portfolio, portfolio_file)
    message = str(info.value)
    assert message.startswith(str(portfolio_file))
    assert "holiday_overrides" in message
    assert "bad.yaml" in message
    assert "covers_until" in message


def test_the_shipped_example_override_file_is_valid():
    example = PROJECT_ROOT / "portfolios" / "calendars" / "nse_holidays.example.yaml"
    overrides = load_overrides(example)
    assert overrides.covers_until >= dt.date(2026, 12, 31)


def test_an_empty_file_needs_covers_until(tmp_path: Path):
    with pytest.raises(ConfigError, match="covers_until"):
        parse_overrides(None, "empty.yaml")
