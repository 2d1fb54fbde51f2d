"""Trading days of the Indian exchanges and the dates a schedule picks from them.

Trading days come from exchange_calendars' XBOM calendar (BSE; NSE keeps the same holidays),
merged with an optional holiday override file (the exchange circular for a year the library does
not know yet, or a correction). Pure: no Airflow, no network, no clock. exchange_calendars (and
pandas) are imported on first use only, so importing this module stays cheap at DAG parse time.

Two rules hold everywhere:

- A date beyond the *known calendar* (the library's data, extended by an override file's
  ``covers_until``) raises :class:`~rebalance.errors.CalendarError`; an unknown day is never
  guessed to be a trading day.
- Special sessions (Muhurat trading, weekend sessions) are not rebalance days unless the schedule
  sets ``include_special_sessions``.

Dates here are exchange dates (IST); run times are timezone-aware datetimes.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from rebalance.domain.market import IST, MARKET_CLOSE, MARKET_OPEN
from rebalance.errors import CalendarError, ConfigError, validation_problems
from rebalance.portfolio import Portfolio, resolve_inside, resolve_relative
from rebalance.schedule import (
    DayRule,
    Frequency,
    Roll,
    Schedule,
)

LIBRARY_CALENDAR = "XBOM"
# The library's data reaches back to 1997; schedules only need recent years, and a shorter
# range keeps the first load quick.
CALENDAR_START = dt.date(2010, 1, 1)

_ONE_DAY = dt.timedelta(days=1)


# --- the holiday override file ---------------------------------------------------------------


class DatedEntry(BaseModel):
    """One dated line of an exchange circular."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date: dt.date
    note: str = Field(min_length=1, description="what the day is, e.g. 'Holi'")
    source: str | None = Field(None, description="circular or page it comes from")


class SpecialSession(DatedEntry):
    """A session outside the regular calendar, e.g. Muhurat trading on Diwali (IST times)."""

    start: dt.time | None = Field(None, description="session start, IST, e.g. '18:00'")
    end: dt.time | None = Field(None, description="session end, IST, e.g. '19:00'")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _yaml_sexagesimal(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted 18:00 as the base-60 integer 1080; take it as HH:MM.
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            return dt.time(value // 60, value % 60)
        return value

    @model_validator(mode="after")
    def _hours(self) -> Self:
        if (self.start is None) != (self.end is None):
            raise ValueError("give both start and end (IST), or neither")
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError(f"start {self.start:%H:%M} is not before end {self.end:%H:%M}")
        return self


class HolidayOverrides(BaseModel):
    """The holiday override file: dated corrections and additions to the library's calendar.

    ``covers_until`` says the file lists *every* holiday up to that date, which extends the known
    calendar past the library's data (e.g. to 2027-12-31 once the 2027 circular is out).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str | None = Field(None, description="the circular(s) this file was written from")
    covers_until: dt.date = Field(
        description="the calendar is known up to this date: the library's data plus this file's "
        "entries (extends the known calendar when later than the library's end)"
    )
    holidays: tuple[DatedEntry, ...] = Field((), description="closed days to add")
    remove_holidays: tuple[DatedEntry, ...] = Field(
        (), description="weekdays the library marks closed that are regular sessions"
    )
    special_sessions: tuple[SpecialSession, ...] = Field(
        (), description="special sessions (Muhurat trading, a Saturday session)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        seen: dict[dt.date, str] = {}
        until = self.covers_until
        for kind in ("holidays", "remove_holidays", "special_sessions"):
            entries: tuple[DatedEntry, ...] = getattr(self, kind)
            for index, entry in enumerate(entries):
                if entry.date in seen:
                    raise ValueError(
                        f"{kind}.{index}.date: {entry.date} is already listed "
                        f"under {seen[entry.date]}"
                    )
                seen[entry.date] = kind
                if entry.date > until:
                    raise ValueError(
                        f"{kind}.{index}.date: {entry.date} is after covers_until {until}; "
                        "covers_until is the last date the list is complete for"
                    )
                if kind == "remove_holidays" and entry.date.weekday() >= 5:
                    raise ValueError(
                        f"{kind}.{index}.date: {entry.date} is a weekend day; a weekend session "
                        "goes under special_sessions"
                    )
        return self

    def latest_date(self) -> dt.date | None:
        dates = [e.date for e in (*self.holidays, *self.remove_holidays, *self.special_sessions)]
        return max(dates) if dates else None


def parse_overrides(data: Any, source: str) -> HolidayOverrides:
    """Validate an already-parsed override file. ``source`` names the file in errors."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            source, ["(top level): expected a mapping (holidays:, covers_until:, ...)"]
        )
    try:
        return HolidayOverrides.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, validation_problems(exc)) from None


class _DatesAsTextLoader(yaml.SafeLoader):
    """Leaves dates as text so a bad one (2027-02-30) is reported by field, not as a YAML crash."""


_DatesAsTextLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_overrides(path: Path | str) -> HolidayOverrides:
    """Read and validate a holiday override file; errors name the file and the field."""
    from rebalance.portfolio_file import read_text_file

    path = Path(path)
    text = read_text_file(path)  # bounded: a named pipe or a huge file never blocks a DAG parse
    try:
        data = yaml.load(text, Loader=_DatesAsTextLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(str(path), [f"{where}malformed YAML: {problem}"]) from None
    return parse_overrides(data, str(path))


# --- the library's calendar ------------------------------------------------------------------


@dataclass(frozen=True)
class _LibraryDays:
    start: dt.date
    end: dt.date  # the last day the library's holiday data covers
    weekday_sessions: frozenset[dt.date]
    weekend_sessions: frozenset[dt.date]  # special sessions the library knows of


@functools.cache
def _library_days() -> _LibraryDays:
    """XBOM sessions from the library, loaded once per process (about 1.5 s, mostly imports)."""
    import exchange_calendars as xc  # heavy (pandas): only when a date is actually needed

    cal = xc.get_calendar(LIBRARY_CALENDAR, start=CALENDAR_START.isoformat())
    # Coverage ends where the holiday data ends (31 December of its last year), which can be
    # after the last session when the year ends on a weekend.
    bound_max = getattr(type(cal), "bound_max", None)
    end = bound_max().date() if bound_max is not None else cal.last_session.date()
    sessions = [ts.date() for ts in cal.sessions]
    return _LibraryDays(
        start=max(CALENDAR_START, cal.first_session.date()),
        end=max(end, cal.last_session.date()),
        weekday_sessions=frozenset(d for d in sessions if d.weekday() < 5),
        weekend_sessions=frozenset(d for d in sessions if d.weekday() >= 5),
    )


def library_calendar_end() -> dt.date:
    """The last date exchange_calendars' XBOM holiday data covers (2026-12-31 in 4.13)."""
    return _library_days().end


def library_closed_weekdays(year: int) -> frozenset[dt.date] | None:
    """Weekdays of ``year`` that exchange_calendars' XBOM marks closed (its holidays), or None
    when the library's data does not cover the whole year."""
    lib = _library_days()
    first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    if last > lib.end or first < lib.start:
        return None
    closed = set()
    day = first
    while day <= last:
        if day.weekday() < 5 and day not in lib.weekday_sessions:
            closed.add(day)
        day += _ONE_DAY
    return frozenset(closed)


class TradingCalendar:
    """Trading days of NSE/BSE: the library's XBOM calendar merged with an override file."""

    def __init__(self, overrides: HolidayOverrides | None = None) -> None:
        self.overrides = overrides
        lib = _library_days()
        self.start = lib.start
        self.end = max(lib.end, overrides.covers_until) if overrides else lib.end
        latest = overrides.latest_date() if overrides else None
        if latest is not None and latest > self.end:
            raise CalendarError(
                f"holiday overrides list {latest} but the known calendar ends {self.end}: set "
                f"covers_until to the last date the override list is complete for"
            )
        regular = set(lib.weekday_sessions)
        # Weekdays past the library's data are sessions unless the override file closes them
        # (it is complete up to covers_until).
        day = lib.end + _ONE_DAY
        while day <= self.end:
            if day.weekday() < 5:
                regular.add(day)
            day += _ONE_DAY
        special: dict[dt.date, SpecialSession | None] = dict.fromkeys(lib.weekend_sessions)
        if overrides is not None:
            for entry in overrides.holidays:
                regular.discard(entry.date)
                special.pop(entry.date, None)
            for entry in overrides.remove_holidays:
                regular.add(entry.date)
            for session in overrides.special_sessions:
                regular.discard(session.date)
                special[session.date] = session
        self._regular = frozenset(regular)
        self._special = special
        self._sorted: dict[bool, list[dt.date]] = {}

    def describe_coverage(self) -> str:
        return f"{self.start} to {self.end}"

    def _check(self, day: dt.date) -> None:
        if day > self.end:
            raise CalendarError(
                f"{day} is beyond the known trading calendar (known until {self.end}: "
                f"exchange_calendars {LIBRARY_CALENDAR} data"
                f"{' + holiday overrides' if self.overrides else ''}); add the "
                "exchange's holiday list for that year to the holiday override file and set "
                "covers_until (docs/schedule.md)"
            )
        if day < self.start:
            raise CalendarError(f"{day} is before the known trading calendar (from {self.start})")

    def is_trading_day(self, day: dt.date, *, include_special: bool = False) -> bool:
        """A regular session (or, with ``include_special``, a special one).

        Raises CalendarError outside the known calendar.
        """
        self._check(day)
        return day in self._regular or (include_special and day in self._special)

    def is_special_session(self, day: dt.date) -> bool:
        self._check(day)
        return day in self._special

    def special_session(self, day: dt.date) -> SpecialSession | None:
        """The override entry of a special session (None for library ones or other days)."""
        return self._special.get(day)

    def trading_days(self, *, include_special: bool = False) -> list[dt.date]:
        """All known trading days, sorted."""
        if include_special not in self._sorted:
            days = set(self._regular)
            if include_special:
                days |= set(self._special)
            self._sorted[include_special] = sorted(d for d in days if self.start <= d <= self.end)
        return self._sorted[include_special]

    def trading_days_between(
        self, first: dt.date, last: dt.date, *, include_special: bool = False
    ) -> list[dt.date]:
        """Trading days in ``[first, last]``; raises when the range leaves the known calendar."""
        self._check(first)
        self._check(last)
        days = self.trading_days(include_special=include_special)
        return days[bisect.bisect_left(days, first) : bisect.bisect_right(days, last)]

    def next_trading_day(self, day: dt.date, *, include_special: bool = False) -> dt.date:
        """The first trading day strictly after ``day``."""
        day += _ONE_DAY
        while not self.is_trading_day(day, include_special=include_special):
            day += _ONE_DAY
        return day

    def previous_trading_day(self, day: dt.date, *, include_special: bool = False) -> dt.date:
        """The last trading day strictly before ``day``."""
        day -= _ONE_DAY
        while not self.is_trading_day(day, include_special=include_special):
            day -= _ONE_DAY
        return day


@functools.lru_cache(maxsize=32)
def _cached_calendar(overrides: HolidayOverrides | None) -> TradingCalendar:
    return TradingCalendar(overrides)


def trading_calendar(overrides: HolidayOverrides | None = None) -> TradingCalendar:
    """A (cached) calendar for these overrides; the scheduler asks often, the data never change."""
    return _cached_calendar(overrides)


def overrides_for_portfolio(
    portfolio: Portfolio, portfolio_file: Path | str
) -> HolidayOverrides | None:
    """The portfolio's holiday override file, loaded; errors name the portfolio file and field."""
    if portfolio.holiday_overrides is None:
        return None
    path = resolve_relative(portfolio_file, portfolio.holiday_overrides)
    resolve_inside(portfolio_file, portfolio.holiday_overrides, "holiday_overrides")
    try:
        return load_overrides(path)
    except ConfigError as exc:
        raise ConfigError(
            str(portfolio_file), [f"holiday_overrides ({path}): {p}" for p in exc.problems]
        ) from None


def schedule_for(portfolio: Portfolio, portfolio_file: Path | str) -> RebalanceSchedule:
    """The portfolio's schedule on its calendar (loads exchange_calendars on first use)."""
    overrides = overrides_for_portfolio(portfolio, portfolio_file)
    return RebalanceSchedule(portfolio.schedule, trading_calendar(overrides))


# --- schedule dates --------------------------------------------------------------------------


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _month_end(first: dt.date) -> dt.date:
    return _add_months(first, 1) - _ONE_DAY


class RebalanceSchedule:
    """The run times a :class:`Schedule` gives on a :class:`TradingCalendar`.

    ``next_run`` / ``previous_run`` / ``next_runs`` return timezone-aware datetimes in the
    schedule's zone. Each raises :class:`CalendarError` when the answer needs a day beyond the
    known calendar.
    """

    # A schedule fires at least once a quarter; a search this long has gone wrong.
    _MAX_PERIODS = 400

    def __init__(self, schedule: Schedule, calendar: TradingCalendar) -> None:
        self.schedule = schedule
        self.calendar = calendar
        self._special = schedule.include_special_sessions

    # -- days ---------------------------------------------------------------------------------

    def _is_day(self, day: dt.date) -> bool:
        return self.calendar.is_trading_day(day, include_special=self._special)

    def _roll(self, day: dt.date) -> dt.date | None:
        if self._is_day(day):
            return day
        roll = self.schedule.roll
        if roll is Roll.FORWARD:
            return self.calendar.next_trading_day(day, include_special=self._special)
        if roll is Roll.BACKWARD:
            return self.calendar.previous_trading_day(day, include_special=self._special)
        return None

    def _period_start(self, day: dt.date) -> dt.date:
        frequency = self.schedule.frequency
        if frequency is Frequency.WEEKLY:
            return day - dt.timedelta(days=day.weekday())
        if frequency is Frequency.MONTHLY:
            return _month_start(day)
        return dt.date(day.year, (day.month - 1) // 3 * 3 + 1, 1)

    def _shift_period(self, start: dt.date, periods: int) -> dt.date:
        frequency = self.schedule.frequency
        if frequency is Frequency.WEEKLY:
            return start + dt.timedelta(weeks=periods)
        return _add_months(start, periods * (1 if frequency is Frequency.MONTHLY else 3))

    def _period_day(self, start: dt.date) -> dt.date | None:
        """The rebalance date of the period starting ``start`` (None when skipped)."""
        s = self.schedule
        if s.frequency is Frequency.WEEKLY:
            return self._roll(start + dt.timedelta(days=s.weekday.index))
        end = self._shift_period(start, 1) - _ONE_DAY
        rule = s.day_rule
        if rule is DayRule.CALENDAR_DAY:
            day = s.day or 1
            nominal = start.replace(day=min(day, _month_end(start).day))
            return self._roll(nominal)
        if rule is DayRule.FIRST_TRADING_DAY:
            return self._first_in(start, end)
        if rule is DayRule.LAST_TRADING_DAY:
            return self._last_in(start, end)
        n = s.day or 1
        days = self.calendar.trading_days_between(start, end, include_special=self._special)
        if abs(n) > len(days) or n == 0:
            period = "month" if s.frequency is Frequency.MONTHLY else "quarter"
            raise CalendarError(
                f"the {period} starting {start} has {len(days)} trading days; "
                f"nth_trading_day {n} does not exist in it"
            )
        return days[n - 1] if n > 0 else days[n]

    def _first_in(self, start: dt.date, end: dt.date) -> dt.date:
        day = start
        while not self._is_day(day):
            day += _ONE_DAY
            if day > end:
                raise CalendarError(f"no trading day between {start} and {end}")
        return day

    def _last_in(self, start: dt.date, end: dt.date) -> dt.date:
        day = end
        while not self._is_day(day):
            day -= _ONE_DAY
            if day < start:
                raise CalendarError(f"no trading day between {start} and {end}")
        return day

    # -- times --------------------------------------------------------------------------------

    def run_time(self, day: dt.date) -> dt.datetime:
        """The run moment on exchange date ``day``: ``time`` in ``timezone``, on that IST date.

        On a special session with known hours the run moves inside the session, as far before
        its end as the configured time is before the regular close (e.g. 15:10 -> 20 min before).
        """
        s = self.schedule
        zone = s.zone
        session = self.calendar.special_session(day)
        if session is not None and session.start is not None and session.end is not None:
            before_close = dt.datetime.combine(day, MARKET_CLOSE) - dt.datetime.combine(
                day, self._ist_wall_time(day)
            )
            at = dt.datetime.combine(day, session.end) - before_close
            at = max(at, dt.datetime.combine(day, session.start))
            return at.replace(tzinfo=IST).astimezone(zone)
        for offset in (0, -1, 1):
            local = dt.datetime.combine(day + dt.timedelta(days=offset), s.time, zone)
            if local.astimezone(IST).date() == day:
                return local
        raise CalendarError(f"{s.time} {s.timezone} never falls on the IST date {day}")

    def _ist_wall_time(self, day: dt.date) -> dt.time:
        s = self.schedule
        ist = dt.datetime.combine(day, s.time, s.zone).astimezone(IST).time()
        return min(max(ist, MARKET_OPEN), MARKET_CLOSE)

    def _ist_date(self, moment: dt.datetime) -> dt.date:
        if moment.tzinfo is None:
            raise ValueError("moment must be timezone-aware")
        return moment.astimezone(IST).date()

    # -- the sequence -------------------------------------------------------------------------

    def _periodic_days(self, around: dt.date, step: int) -> Iterator[dt.date]:
        """Rebalance dates period by period from the period around ``around`` (step +1 / -1)."""
        start = self._period_start(around)
        for _ in range(self._MAX_PERIODS):
            day = self._period_day(start)
            if day is not None:
                yield day
            start = self._shift_period(start, step)
        raise CalendarError(f"no rebalance date within {self._MAX_PERIODS} periods of {around}")

    def _custom_days(self) -> tuple[list[dt.date], int]:
        days = self.calendar.trading_days(include_special=self._special)
        first = bisect.bisect_left(days, self.schedule.custom_days_anchor)
        return days, first

    def next_run(self, after: dt.datetime, *, inclusive: bool = False) -> dt.datetime:
        """The first run strictly after ``after`` (at or after, with ``inclusive``)."""

        def later(moment: dt.datetime) -> bool:
            return moment >= after if inclusive else moment > after

        if self.schedule.frequency is Frequency.CUSTOM_DAYS:
            n = self.schedule.every_n_trading_days or 1
            days, first = self._custom_days()
            position = bisect.bisect_left(days, self._ist_date(after))
            k = max(0, -(-(position - first) // n))
            index = first + k * n
            while True:
                if index >= len(days):
                    raise CalendarError(
                        f"the next run after {after:%Y-%m-%d %H:%M %Z} is beyond the known "
                        f"trading calendar (known until {self.calendar.end}); add the exchange's "
                        "holiday list to the holiday override file and set covers_until"
                    )
                moment = self.run_time(days[index])
                if later(moment):
                    return moment
                index += n
        # Start a week early: a backward roll can pull the next period's date before ``after``.
        # Rolls move a date by days and periods are a week or more apart, so dates come in order
        # and the first one after ``after`` is the answer.
        around = self._ist_date(after) - dt.timedelta(days=7)
        for day in self._periodic_days(around, +1):
            moment = self.run_time(day)
            if later(moment):
                return moment
        raise AssertionError("unreachable")  # pragma: no cover

    def previous_run(self, before: dt.datetime, *, inclusive: bool = False) -> dt.datetime | None:
        """The last run strictly before ``before`` (at or before, with ``inclusive``).

        None for custom_days before its anchor. This is ``last_rebalanced_at`` as scheduled.
        """

        def earlier(moment: dt.datetime) -> bool:
            return moment <= before if inclusive else moment < before

        if self.schedule.frequency is Frequency.CUSTOM_DAYS:
            n = self.schedule.every_n_trading_days or 1
            days, first = self._custom_days()
            self.calendar._check(self._ist_date(before))
            position = bisect.bisect_right(days, self._ist_date(before)) - 1
            if position < first:
                return None
            index = first + (position - first) // n * n
            while index >= first:
                moment = self.run_time(days[index])
                if earlier(moment):
                    return moment
                index -= n
            return None
        # A rebalance may exist between the calendar's end and ``before``: unknowable.
        self.calendar._check(self._ist_date(before))
        # Start a week late: a forward roll can push an earlier period's date past ``before``.
        # Beyond the known calendar that look-ahead is skipped (nothing there is needed).
        around = min(self._ist_date(before) + dt.timedelta(days=7), self.calendar.end)
        for day in self._periodic_days(around, -1):
            moment = self.run_time(day)
            if earlier(moment):
                return moment
        raise AssertionError("unreachable")  # pragma: no cover

    def next_runs(self, after: dt.datetime, count: int) -> list[dt.datetime]:
        """The next ``count`` runs after ``after``; CalendarError if the calendar runs out."""
        runs: list[dt.datetime] = []
        moment = after
        for _ in range(count):
            moment = self.next_run(moment)
            runs.append(moment)
        return runs

    def check_run_day(self, moment: dt.datetime) -> None:
        """Raise CalendarError unless ``moment`` falls on a known trading day.

        For a run's first task: a manual (or late) run on a holiday or on a day beyond the known
        calendar fails loudly instead of trading on an unknown day.
        """
        day = self._ist_date(moment)
        if not self._is_day(day):
            raise CalendarError(f"{day} is not a trading day on the NSE/BSE calendar")
