"""The schedule section of a portfolio file (notes section 8): when a rebalance runs.

Only the configuration model lives here; trading-day arithmetic is in ``calendar.py`` and the
Airflow timetable in ``timetable.py``.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MARKET_OPEN = dt.time(9, 15)
MARKET_CLOSE = dt.time(15, 30)


class Frequency(StrEnum):
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    CUSTOM_DAYS = "custom_days"  # every N trading days


class DayRule(StrEnum):
    """Which day of a month (or quarter) a monthly/quarterly schedule picks."""

    FIRST_TRADING_DAY = "first_trading_day"
    LAST_TRADING_DAY = "last_trading_day"
    NTH_TRADING_DAY = "nth_trading_day"  # uses ``day``: 1 = first, -1 = last
    CALENDAR_DAY = "calendar_day"  # uses ``day``: 1..31, rolled when not a trading day


class Weekday(StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"

    @property
    def index(self) -> int:
        return list(Weekday).index(self)


class Roll(StrEnum):
    """What to do when the scheduled day is not a trading day."""

    FORWARD = "forward"
    BACKWARD = "backward"
    SKIP = "skip"


class Schedule(BaseModel):
    """When a portfolio rebalances. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    frequency: Frequency = Frequency.MONTHLY
    weekday: Weekday = Field(Weekday.FRIDAY, description="weekly: the day of the week")
    day_rule: DayRule = Field(DayRule.LAST_TRADING_DAY, description="monthly / quarterly")
    day: int | None = Field(None, description="nth_trading_day (1.., or -1 from the end) / calendar_day")
    every_n_trading_days: int | None = Field(None, ge=1, description="custom_days: N")
    time: dt.time = Field(dt.time(15, 10), description="local execution time, HH:MM")
    timezone: str = "Asia/Kolkata"
    roll: Roll = Roll.FORWARD
    include_special_sessions: bool = Field(
        False, description="treat special sessions (Muhurat trading) as rebalance days"
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.frequency is Frequency.CUSTOM_DAYS and self.every_n_trading_days is None:
            raise ValueError("custom_days needs every_n_trading_days")
        if self.frequency in (Frequency.MONTHLY, Frequency.QUARTERLY):
            if self.day_rule is DayRule.NTH_TRADING_DAY:
                if self.day is None or self.day == 0 or not -23 <= self.day <= 23:
                    raise ValueError("nth_trading_day needs day between 1 and 23 (or -1..-23)")
            if self.day_rule is DayRule.CALENDAR_DAY:
                if self.day is None or not 1 <= self.day <= 31:
                    raise ValueError("calendar_day needs day between 1 and 31")
                if self.day > 28 and self.roll is Roll.SKIP:
                    raise ValueError(
                        f"calendar day {self.day} does not exist in every month; "
                        "use roll: forward or backward"
                    )
        local = self.time
        if not MARKET_OPEN <= local <= MARKET_CLOSE and self.timezone == "Asia/Kolkata":
            raise ValueError(f"time {local:%H:%M} is outside market hours 09:15-15:30 IST")
        return self
