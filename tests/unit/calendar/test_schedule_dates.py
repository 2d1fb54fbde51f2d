"""Dates a schedule picks: rolls around Indian holidays, month/quarter/year ends, custom_days."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from rebalance.calendar import HolidayOverrides, RebalanceSchedule, trading_calendar
from rebalance.domain.market import IST
from rebalance.errors import CalendarError
from rebalance.schedule import Schedule


def ist(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=IST)


def days(after: dt.datetime, count: int, **schedule: Any) -> list[str]:
    rs = RebalanceSchedule(Schedule(**schedule), trading_calendar())
    return [f"{run.astimezone(IST):%Y-%m-%d %H:%M}" for run in rs.next_runs(after, count)]


def test_monthly_last_trading_day_across_the_year_boundary():
    assert days(ist(2025, 11, 1), 4) == [
        "2025-11-28 15:10",
        "2025-12-31 15:10",
        "2026-01-30 15:10",
        "2026-02-27 15:10",
    ]


def test_a_month_end_on_a_weekend_takes_the_friday_before():
    # 31 August 2025 is a Sunday.
    assert days(ist(2025, 8, 1), 1) == ["2025-08-29 15:10"]


def test_quarter_ends_skip_quarter_end_holidays():
    # 31 March 2025 (Id-ul-Fitr) and 31 March 2026 (Mahavir Jayanti) are holidays.
    assert days(ist(2025, 1, 1), 5, frequency="quarterly") == [
        "2025-03-28 15:10",
        "2025-06-30 15:10",
        "2025-09-30 15:10",
        "2025-12-31 15:10",
        "2026-03-30 15:10",
    ]


def test_quarterly_first_and_nth_trading_day():
    assert days(ist(2025, 12, 1), 2, frequency="quarterly", day_rule="first_trading_day") == [
        "2026-01-01 15:10",
        "2026-04-01 15:10",
    ]
    assert days(ist(2026, 1, 1), 1, frequency="quarterly", day_rule="nth_trading_day", day=-2) == [
        "2026-03-27 15:10"
    ]


@pytest.mark.parametrize(
    ("roll", "expected"),
    [
        ("forward", ["2024-10-25 15:10", "2024-11-04 15:10", "2024-11-08 15:10"]),
        ("backward", ["2024-10-25 15:10", "2024-10-31 15:10", "2024-11-08 15:10"]),
        ("skip", ["2024-10-25 15:10", "2024-11-08 15:10", "2024-11-22 15:10"]),
    ],
)
def test_weekly_friday_across_diwali(roll: str, expected: list[str]):
    # Friday 1 November 2024 was Diwali Laxmi Pujan (Muhurat trading only); Friday 15 November
    # 2024 was Guru Nanak Jayanti (so skip also drops that week).
    assert days(ist(2024, 10, 21), 3, frequency="weekly", weekday="friday", roll=roll) == expected


def test_weekly_friday_backward_across_holi():
    # Friday 14 March 2025 was Holi.
    assert days(ist(2025, 3, 10), 2, frequency="weekly", roll="backward") == [
        "2025-03-13 15:10",
        "2025-03-21 15:10",
    ]


def test_weekly_monday_forward_across_republic_day():
    # Monday 26 January 2026 was Republic Day.
    assert days(ist(2026, 1, 20), 2, frequency="weekly", weekday="monday") == [
        "2026-01-27 15:10",
        "2026-02-02 15:10",
    ]


def test_calendar_day_rolls_backward_across_a_month_boundary():
    # 1 May 2026 (Maharashtra Day) is a holiday: the May run is on 30 April.
    schedule = {"day_rule": "calendar_day", "day": 1, "roll": "backward"}
    assert days(ist(2026, 4, 2), 3, **schedule) == [
        "2026-04-30 15:10",
        "2026-06-01 15:10",
        "2026-07-01 15:10",
    ]


def test_calendar_day_31_uses_the_last_day_of_short_months():
    schedule = {"day_rule": "calendar_day", "day": 31, "roll": "backward"}
    assert days(ist(2026, 2, 1), 3, **schedule) == [
        "2026-02-27 15:10",  # 28 Feb is a Saturday
        "2026-03-30 15:10",  # 31 Mar holiday
        "2026-04-30 15:10",
    ]


def test_custom_days_counts_trading_days_only():
    # Every 5 trading days from 2026-01-19 (a Monday): Republic Day (26 Jan) is not counted.
    schedule = {"frequency": "custom_days", "every_n_trading_days": 5, "anchor": "2026-01-19"}
    assert days(ist(2026, 1, 18), 4, **schedule) == [
        "2026-01-19 15:10",
        "2026-01-27 15:10",
        "2026-02-03 15:10",
        "2026-02-10 15:10",
    ]
    # The same sequence whatever moment one starts from.
    assert days(ist(2026, 1, 27, 15, 10), 2, **schedule) == ["2026-02-03 15:10", "2026-02-10 15:10"]


def test_previous_run_is_last_rebalanced_at_as_scheduled():
    rs = RebalanceSchedule(Schedule(), trading_calendar())
    assert rs.previous_run(ist(2026, 11, 25)) == ist(2026, 10, 30, 15, 10)
    assert rs.previous_run(ist(2026, 10, 30, 15, 10)) == ist(2026, 9, 30, 15, 10)
    assert rs.previous_run(ist(2026, 10, 30, 15, 10), inclusive=True) == ist(2026, 10, 30, 15, 10)
    custom = Schedule(frequency="custom_days", every_n_trading_days=5, anchor=dt.date(2026, 1, 19))
    crs = RebalanceSchedule(custom, trading_calendar())
    assert crs.previous_run(ist(2026, 1, 28)) == ist(2026, 1, 27, 15, 10)
    assert crs.previous_run(ist(2026, 1, 19, 9)) is None


def test_a_time_in_another_zone_runs_at_that_moment_on_the_ist_trading_day():
    # 05:00 in London is 10:30 IST in winter and 09:30 IST in summer.
    got = days(ist(2026, 1, 20), 1, time="05:00", timezone="Europe/London")
    assert got == ["2026-01-30 10:30"]
    got = days(ist(2026, 7, 1), 1, time="05:00", timezone="Europe/London")
    assert got == ["2026-07-31 09:30"]


def test_the_next_run_beyond_the_known_calendar_raises():
    rs = RebalanceSchedule(Schedule(), trading_calendar())
    assert rs.next_run(ist(2026, 12, 1)) == ist(2026, 12, 31, 15, 10)
    with pytest.raises(CalendarError, match="2027-01-31 is beyond the known trading calendar"):
        rs.next_run(ist(2026, 12, 31, 15, 10))
    weekly = RebalanceSchedule(Schedule(frequency="weekly"), trading_calendar())
    with pytest.raises(CalendarError, match="beyond the known trading calendar"):
        weekly.next_runs(ist(2026, 12, 20), 3)
    custom = Schedule(frequency="custom_days", every_n_trading_days=20)
    with pytest.raises(CalendarError, match="beyond the known trading calendar"):
        RebalanceSchedule(custom, trading_calendar()).next_runs(ist(2026, 12, 1), 3)


def test_an_override_file_extends_the_schedule_into_the_next_year():
    overrides = HolidayOverrides.model_validate(
        {
            "covers_until": "2027-12-31",
            "holidays": [{"date": "2027-01-29", "note": "test closure on a Friday"}],
        }
    )
    rs = RebalanceSchedule(Schedule(), trading_calendar(overrides))
    runs = rs.next_runs(ist(2026, 12, 1), 3)
    assert [f"{r:%Y-%m-%d}" for r in runs] == ["2026-12-31", "2027-01-28", "2027-02-26"]


def test_special_sessions_are_rebalance_days_only_when_configured():
    overrides = HolidayOverrides.model_validate(
        {
            "covers_until": "2026-12-31",
            "special_sessions": [
                {"date": "2026-12-27", "note": "Sunday session", "start": "18:00", "end": "19:00"}
            ],
        }
    )
    cal = trading_calendar(overrides)
    plain = RebalanceSchedule(Schedule(frequency="weekly", weekday="monday"), cal)
    assert plain.next_run(ist(2026, 12, 26)) == ist(2026, 12, 28, 15, 10)
    custom = Schedule(
        frequency="custom_days",
        every_n_trading_days=1,
        anchor=dt.date(2026, 12, 1),
        include_special_sessions=True,
    )
    with_special = RebalanceSchedule(custom, cal)
    # On the one-hour session the run moves inside it: 20 minutes before its end, as 15:10 is
    # 20 minutes before the regular close.
    assert with_special.next_run(ist(2026, 12, 26, 16)) == ist(2026, 12, 27, 18, 40)


def test_nth_trading_day_missing_in_a_month_raises():
    closures = [{"date": f"2026-12-{d:02d}", "note": "test closure"} for d in (1, 2, 3, 4, 7, 8, 9)]
    data = {"covers_until": "2026-12-31", "holidays": closures}
    overrides = HolidayOverrides.model_validate(data)
    rs = RebalanceSchedule(
        Schedule(day_rule="nth_trading_day", day=17), trading_calendar(overrides)
    )
    with pytest.raises(CalendarError, match="has 15 trading days"):
        rs.next_run(ist(2026, 11, 30, 16))


def test_check_run_day():
    rs = RebalanceSchedule(Schedule(), trading_calendar())
    rs.check_run_day(ist(2026, 11, 30, 15, 10))
    with pytest.raises(CalendarError, match="not a trading day"):
        rs.check_run_day(ist(2026, 11, 24, 15, 10))  # Guru Nanak Jayanti
    with pytest.raises(CalendarError, match="beyond"):
        rs.check_run_day(ist(2027, 1, 4, 15, 10))
