"""Bad schedules give a clear error at load time naming the portfolio file and the field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from rebalance.errors import ConfigError
from rebalance.portfolio import load_portfolio
from rebalance.schedule import Schedule, describe_schedule

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEMO = (PROJECT_ROOT / "portfolios" / "demo.yaml").read_text(encoding="utf-8")
DEMO_SCHEDULE = 'schedule:\n  frequency: monthly\n  day_rule: last_trading_day\n  time: "15:10"\n'


def portfolio_with(tmp_path: Path, schedule_yaml: str) -> Path:
    assert DEMO_SCHEDULE in DEMO
    path = tmp_path / "core.yaml"
    path.write_text(DEMO.replace(DEMO_SCHEDULE, schedule_yaml), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("schedule_yaml", "expected"),
    [
        ("schedule:\n  frequency: daily\n", "schedule.frequency: Input should be 'weekly'"),
        (
            "schedule:\n  day_rule: calendar_day\n  day: 31\n  roll: skip\n",
            "day: calendar day 31 does not exist in every month",
        ),
        (
            "schedule:\n  day_rule: nth_trading_day\n  day: 22\n",
            "day: nth_trading_day needs day between 1 and 17",
        ),
        ("schedule:\n  day_rule: calendar_day\n", "day: calendar_day needs day between 1 and 31"),
        ('schedule:\n  time: "16:00"\n', "time: 16:00 is outside market hours 09:15-15:30 IST"),
        ('schedule:\n  time: "09:00"\n', "time: 09:00 is outside market hours"),
        (
            'schedule:\n  time: "15:10"\n  timezone: Europe/London\n',
            "time: 15:10 Europe/London (= 20:40 IST) is outside market hours",
        ),
        (
            # 10:00 London is 15:30 IST in winter but 14:30 in summer: fine; 10:30 is not.
            'schedule:\n  time: "10:30"\n  timezone: Europe/London\n',
            "(= 16:00 IST) is outside market hours",
        ),
        ("schedule:\n  timezone: Asia/Bombayy\n", "schedule.timezone: unknown timezone"),
        ("schedule:\n  frequency: custom_days\n", "every_n_trading_days: custom_days needs it"),
        ("schedule:\n  weekday: monday\n", "weekday: only used with frequency weekly"),
        ("schedule:\n  every_n_trading_days: 3\n", "only used with frequency custom_days"),
        ("schedule:\n  frequency: weekly\n  day: 3\n", "day: only used with day_rule"),
        ("schedule:\n  cron: '0 10 * * *'\n", "schedule.cron: unknown key"),
    ],
)
def test_bad_schedules_name_the_file_and_field(tmp_path: Path, schedule_yaml: str, expected: str):
    path = portfolio_with(tmp_path, schedule_yaml)
    with pytest.raises(ConfigError) as info:
        load_portfolio(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert expected in message


def test_an_unquoted_time_is_read_as_hours_and_minutes(tmp_path: Path):
    path = portfolio_with(tmp_path, "schedule:\n  time: 15:10\n")
    assert load_portfolio(path).schedule.time == dt.time(15, 10)


def test_valid_schedules_in_other_zones(tmp_path: Path):
    schedule = Schedule(time=dt.time(5, 0), timezone="Europe/London")
    assert schedule.time == dt.time(5, 0)


@pytest.mark.parametrize(
    ("schedule", "summary"),
    [
        ({}, "monthly, last trading day, 15:10 IST"),
        ({"frequency": "weekly"}, "weekly, Friday (roll forward), 15:10 IST"),
        (
            {"frequency": "quarterly", "day_rule": "nth_trading_day", "day": 3},
            "quarterly, 3rd trading day of the quarter, 15:10 IST",
        ),
        (
            {"day_rule": "calendar_day", "day": 1, "roll": "backward", "time": "09:30"},
            "monthly, day 1 (roll backward), 09:30 IST",
        ),
        (
            {"frequency": "custom_days", "every_n_trading_days": 10},
            "every 10 trading days from 2024-01-01, 15:10 IST",
        ),
        ({"day_rule": "nth_trading_day", "day": -2}, "monthly, 2nd-last trading day, 15:10 IST"),
    ],
)
def test_summaries_read_like_a_sentence(schedule: dict[str, object], summary: str):
    assert describe_schedule(Schedule.model_validate(schedule)) == summary
