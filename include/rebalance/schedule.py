"""The schedule section of a portfolio file (notes section 8): when a rebalance runs.

Only the configuration model lives here; trading-day arithmetic is in ``calendar.py`` and the
Airflow timetable in ``timetable.py``. This module is pure: no Airflow, no exchange_calendars.

A schedule picks *trading days* (dates of the Indian exchanges, in IST) and runs at ``time`` in
``timezone`` on each of them. See ``docs/schedule.md``.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rebalance.domain.market import IST, IST_NAME, MARKET_CLOSE, MARKET_OPEN

# The fewest trading days a month / quarter has had in the XBOM data since 2010 is 17 (October
# 2014, April 2023) / 57; a larger N would fail in some periods, so it is refused when the file
# is loaded rather than on some run years later (the quarter limit keeps a margin).
MAX_NTH_IN_MONTH = 17
MAX_NTH_IN_QUARTER = 55

# custom_days counts every N trading days from this date when the file sets no ``anchor``: a
# fixed anchor gives the same dates on every machine (scheduler, CLI) and after every restart.
DEFAULT_CUSTOM_DAYS_ANCHOR = dt.date(2024, 1, 1)
EARLIEST_ANCHOR = dt.date(2010, 1, 1)


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
    def index(self) -> int:  # type: ignore[override]  # str.index is not needed on a weekday
        """Monday = 0, as ``date.weekday()``."""
        return list(Weekday).index(self)


class Roll(StrEnum):
    """What to do when the scheduled day is not a trading day."""

    FORWARD = "forward"  # the next trading day (may fall in the next month)
    BACKWARD = "backward"  # the previous trading day (may fall in the previous month)
    SKIP = "skip"  # no rebalance in that period


class Schedule(BaseModel):
    """When a portfolio rebalances. Unknown keys are errors; every default is documented."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    frequency: Frequency = Field(Frequency.MONTHLY, description="default monthly")
    weekday: Weekday = Field(Weekday.FRIDAY, description="weekly only: the day; default friday")
    day_rule: DayRule = Field(
        DayRule.LAST_TRADING_DAY,
        description="monthly / quarterly only; default last_trading_day",
    )
    day: int | None = Field(
        None, description="nth_trading_day (1.., or -1 from the end) / calendar_day (1..31)"
    )
    every_n_trading_days: int | None = Field(None, ge=1, le=250, description="custom_days: N")
    anchor: dt.date | None = Field(
        None,
        description="custom_days: the count starts on the first trading day on or after this "
        f"date; default {DEFAULT_CUSTOM_DAYS_ANCHOR}",
    )
    time: dt.time = Field(dt.time(15, 10), description="execution time in `timezone`, HH:MM")
    timezone: str = Field(IST_NAME, description="IANA zone of `time`; default Asia/Kolkata")
    roll: Roll = Field(Roll.FORWARD, description="when the day is not a trading day")
    include_special_sessions: bool = Field(
        False, description="treat special sessions (Muhurat trading, Saturday sessions) as days"
    )

    @field_validator("time", mode="before")
    @classmethod
    def _yaml_sexagesimal(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted 15:10 as the base-60 integer 910; take it as HH:MM.
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            return dt.time(value // 60, value % 60)
        return value

    @field_validator("time")
    @classmethod
    def _naive_time(cls, value: dt.time) -> dt.time:
        if value.tzinfo is not None:
            raise ValueError("write the time without an offset; the zone goes in `timezone`")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown timezone {value!r} (use an IANA name such as Asia/Kolkata)"
            ) from exc
        return value

    @field_validator("anchor")
    @classmethod
    def _anchor_range(cls, value: dt.date | None) -> dt.date | None:
        if value is not None and value < EARLIEST_ANCHOR:
            raise ValueError(f"anchor must be on or after {EARLIEST_ANCHOR}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        given = self.model_fields_set
        frequency = self.frequency
        if frequency is Frequency.CUSTOM_DAYS:
            if self.every_n_trading_days is None:
                raise ValueError("every_n_trading_days: custom_days needs it (N >= 1)")
        else:
            for field in ("every_n_trading_days", "anchor"):
                if field in given:
                    raise ValueError(f"{field}: only used with frequency custom_days")
        if frequency is not Frequency.WEEKLY and "weekday" in given:
            raise ValueError("weekday: only used with frequency weekly")
        uses_day_rule = frequency in (Frequency.MONTHLY, Frequency.QUARTERLY)
        if not uses_day_rule and "day_rule" in given:
            raise ValueError(f"day_rule: not used with frequency {frequency}")
        day_rules = (DayRule.NTH_TRADING_DAY, DayRule.CALENDAR_DAY)
        uses_day = uses_day_rule and self.day_rule in day_rules
        if not uses_day and self.day is not None:
            raise ValueError("day: only used with day_rule nth_trading_day or calendar_day")
        if uses_day_rule:
            self._check_day()
        self._check_market_hours()
        return self

    def _check_day(self) -> None:
        day = self.day
        if self.day_rule is DayRule.NTH_TRADING_DAY:
            limit = MAX_NTH_IN_MONTH if self.frequency is Frequency.MONTHLY else MAX_NTH_IN_QUARTER
            period = "month" if self.frequency is Frequency.MONTHLY else "quarter"
            if day is None or day == 0 or not -limit <= day <= limit:
                raise ValueError(
                    f"day: nth_trading_day needs day between 1 and {limit} (or -1..-{limit} from "
                    f"the end), got {day}: a {period} can have as few as {limit} trading days"
                )
        if self.day_rule is DayRule.CALENDAR_DAY:
            if day is None or not 1 <= day <= 31:
                raise ValueError(f"day: calendar_day needs day between 1 and 31, got {day}")
            if day > 28 and self.roll is Roll.SKIP:
                raise ValueError(
                    f"day: calendar day {day} does not exist in every month and roll is skip; "
                    "use roll: forward or backward (short months use their last day)"
                )

    def _check_market_hours(self) -> None:
        # Check the IST wall time in winter and in summer: zones with daylight saving move
        # against IST (which has none) during the year.
        zone = ZoneInfo(self.timezone)
        for probe in (dt.date(2026, 1, 15), dt.date(2026, 7, 15)):
            ist = dt.datetime.combine(probe, self.time, zone).astimezone(IST).time()
            if not MARKET_OPEN <= ist <= MARKET_CLOSE:
                where = "" if self.timezone == IST_NAME else f" {self.timezone} (= {ist:%H:%M} IST)"
                raise ValueError(
                    f"time: {self.time:%H:%M}{where} is outside market hours "
                    f"{MARKET_OPEN:%H:%M}-{MARKET_CLOSE:%H:%M} IST"
                )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def custom_days_anchor(self) -> dt.date:
        return self.anchor or DEFAULT_CUSTOM_DAYS_ANCHOR


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def describe_schedule(schedule: Schedule) -> str:
    """A one-line summary for the UI, e.g. ``monthly, last trading day, 15:10 IST``."""
    zone = "IST" if schedule.timezone == IST_NAME else schedule.timezone
    at = f"{schedule.time:%H:%M} {zone}"
    roll = f" (roll {schedule.roll})"
    frequency = schedule.frequency
    if frequency is Frequency.CUSTOM_DAYS:
        text = (
            f"every {schedule.every_n_trading_days} trading days "
            f"from {schedule.custom_days_anchor}, {at}"
        )
    elif frequency is Frequency.WEEKLY:
        text = f"weekly, {schedule.weekday.capitalize()}{roll}, {at}"
    else:
        of = " of the quarter" if frequency is Frequency.QUARTERLY else ""
        rule = schedule.day_rule
        if rule is DayRule.FIRST_TRADING_DAY:
            day = f"first trading day{of}"
        elif rule is DayRule.LAST_TRADING_DAY:
            day = f"last trading day{of}"
        elif rule is DayRule.NTH_TRADING_DAY:
            n = schedule.day or 1
            if n > 0:
                day = f"{_ordinal(n)} trading day{of}"
            else:
                day = "last trading day" if n == -1 else f"{_ordinal(-n)}-last trading day"
                day += of
        else:
            month = " of the quarter's first month" if of else ""
            day = f"day {schedule.day}{month}{roll}"
        text = f"{frequency}, {day}, {at}"
    if schedule.include_special_sessions:
        text += ", special sessions included"
    return text
