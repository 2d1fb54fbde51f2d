"""The Airflow timetable of a portfolio: rebalance runs on NSE/BSE trading days.

``TradingCalendarTimetable`` is a subclass of Airflow core's ``Timetable``; the plugin in
``plugins/rebalance_plugin.py`` registers it, which is how the scheduler (which never runs DAG
files) finds the class again when it deserializes a DAG.

What the scheduler gets is self-contained: the serialized form holds the schedule *and the content*
of the holiday override file, not its path, because the scheduler may not see the portfolio folder
and must not read files to schedule. The trading days themselves come from exchange_calendars,
installed with the same pinned version everywhere (requirements.txt).

Runs:

- each run's data interval is (previous scheduled rebalance, this rebalance); ``run_after`` is the
  rebalance moment, so ``data_interval_start`` is ``last_rebalanced_at`` as scheduled;
- catchup on: every scheduled rebalance from the DAG's start_date; catchup off: the next one not
  in the past (a missed rebalance is never run late, when the market may be closed);
- one run at a time per portfolio (``active_runs_limit = 1``);
- a manual run's data interval ends when it is triggered and starts at the last scheduled
  rebalance before that;
- when the next date lies beyond the known calendar, a run is still scheduled, on the first day
  the calendar does not know at the run time, and its first task fails loudly
  (``check_run_day``: add the exchange's holiday list), once a day until the calendar covers it;
  the DAG's doc and ``rebalance schedule`` show the warning before then.

No database, Variable, network or file access here, at import or in the scheduler's calls.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable

from rebalance.calendar import (
    HolidayOverrides,
    RebalanceSchedule,
    overrides_for_portfolio,
    trading_calendar,
)
from rebalance.domain.market import IST, IST_NAME
from rebalance.errors import CalendarError
from rebalance.schedule import Schedule, describe_schedule

if TYPE_CHECKING:
    from airflow.utils.types import DagRunType
    from pendulum import DateTime

    from rebalance.portfolio import Portfolio

SERIALIZATION_VERSION = 1


def _utcnow() -> dt.datetime:
    """The current time (a function so tests can move the clock)."""
    return dt.datetime.now(dt.UTC)


def _std(moment: dt.datetime) -> dt.datetime:
    """A plain aware UTC datetime (pendulum drops a stdlib tzinfo in some arithmetic)."""
    utc = moment.astimezone(dt.UTC)
    return dt.datetime(
        utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, dt.UTC
    )


def _pendulum(moment: dt.datetime) -> DateTime:
    return pendulum.instance(moment.astimezone(dt.UTC))


class TradingCalendarTimetable(Timetable):
    """Rebalance runs on the trading days a portfolio's schedule picks (NSE/BSE calendar)."""

    periodic = True
    can_be_scheduled = True
    # Two rebalances of one portfolio must never place orders at the same time.
    active_runs_limit = 1

    def __init__(
        self,
        schedule: Schedule,
        overrides: HolidayOverrides | None = None,
        *,
        portfolio: str = "",
    ) -> None:
        self.schedule = schedule
        self.overrides = overrides
        self.portfolio = portfolio  # for messages only: the portfolio id or file
        calendar = "NSE/BSE trading days (exchange_calendars XBOM"
        if overrides is not None:
            calendar += f" + holiday overrides to {overrides.covers_until}"
        self.description = f"{describe_schedule(schedule)}; {calendar})"

    # -- identity -----------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TradingCalendarTimetable):
            return NotImplemented
        return (self.schedule, self.overrides) == (other.schedule, other.overrides)

    def __hash__(self) -> int:
        return hash((self.schedule, self.overrides))

    def __repr__(self) -> str:
        return f"TradingCalendarTimetable({self.summary!r}, portfolio={self.portfolio!r})"

    @property
    def summary(self) -> str:
        return describe_schedule(self.schedule)

    def serialize(self) -> dict[str, Any]:
        return {
            "version": SERIALIZATION_VERSION,
            "portfolio": self.portfolio,
            "schedule": self.schedule.model_dump(mode="json", exclude_unset=True),
            "holiday_overrides": (
                None
                if self.overrides is None
                else self.overrides.model_dump(mode="json", exclude_none=True)
            ),
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> TradingCalendarTimetable:
        version = data.get("version")
        if version != SERIALIZATION_VERSION:
            raise ValueError(f"unsupported TradingCalendarTimetable serialization {version!r}")
        overrides = data.get("holiday_overrides")
        return cls(
            Schedule.model_validate(data["schedule"]),
            None if overrides is None else HolidayOverrides.model_validate(overrides),
            portfolio=data.get("portfolio", ""),
        )

    # -- dates --------------------------------------------------------------------------------

    @property
    def rebalance_schedule(self) -> RebalanceSchedule:
        # Built on first use: the calendar loads exchange_calendars (pandas), which the DAG
        # processor does not need just to serialize the DAG.
        cached: RebalanceSchedule | None = self.__dict__.get("_rebalance_schedule")
        if cached is None:
            cached = RebalanceSchedule(self.schedule, trading_calendar(self.overrides))
            self.__dict__["_rebalance_schedule"] = cached
        return cached

    def _interval_ending(self, end: dt.datetime) -> DataInterval:
        """(previous scheduled rebalance, ``end``); a point when there is none before."""
        try:
            start = self.rebalance_schedule.previous_run(end)
        except CalendarError:
            start = None
        return DataInterval(_pendulum(start or end), _pendulum(end))

    def infer_manual_data_interval(self, *, run_after: DateTime) -> DataInterval:
        end = _std(run_after)
        try:
            start = self.rebalance_schedule.previous_run(end, inclusive=True)
        except CalendarError:
            start = None
        return DataInterval(_pendulum(start or end), _pendulum(end))

    def _next_or_calendar_gap(self, after: dt.datetime, *, inclusive: bool) -> dt.datetime:
        """The next rebalance; past the known calendar, the first unknown day at the run time.

        Airflow treats an exception here as "nothing to schedule" and stays silent, so a schedule
        that ran off the calendar would simply stop. Instead a run is scheduled on the first day
        the calendar does not know, and its first task fails loudly (``check_run_day``: add the
        exchange's holiday list to the override file), once per day until the calendar covers it.
        """
        schedule = self.rebalance_schedule
        try:
            return schedule.next_run(after, inclusive=inclusive)
        except CalendarError:
            day = max(schedule.calendar.end + dt.timedelta(days=1), after.astimezone(IST).date())
            while (moment := schedule.run_time(day)) < after or (moment == after and not inclusive):
                day += dt.timedelta(days=1)
            return moment

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        now = _std(_utcnow())
        earliest = None if restriction.earliest is None else _std(restriction.earliest)
        if last_automated_data_interval is not None:
            after = _std(last_automated_data_interval.end)
            if earliest is not None:
                # A start_date moved later than the last run: do not run before it.
                after = max(after, earliest - dt.timedelta(microseconds=1))
            if not restriction.catchup:
                after = max(after, now - dt.timedelta(microseconds=1))
            moment = self._next_or_calendar_gap(after, inclusive=False)
        else:
            start = now if earliest is None else earliest
            if not restriction.catchup:
                start = max(start, now)
            moment = self._next_or_calendar_gap(start, inclusive=True)
        if restriction.latest is not None and moment > _std(restriction.latest):
            return None
        interval = self._interval_ending(moment)
        return DagRunInfo.interval(start=interval.start, end=interval.end)

    def generate_run_id(
        self,
        *,
        run_type: DagRunType,
        run_after: DateTime,
        data_interval: DataInterval | None,
        **extra: Any,
    ) -> str:
        """Run ids in IST: ``scheduled__2026-11-30T15:10+05:30``; others keep the microseconds."""
        from airflow.utils.types import DagRunType

        local = run_after.astimezone(IST)
        if run_type in (DagRunType.SCHEDULED, DagRunType.BACKFILL_JOB):
            suffix = local.isoformat(timespec="minutes")
        else:
            suffix = local.isoformat()
        return run_type.generate_run_id(suffix=suffix)


def build_timetable(portfolio: Portfolio, portfolio_file: Path | str) -> TradingCalendarTimetable:
    """The timetable of one portfolio file, for the DAG factory.

    Reads the portfolio's holiday override file (if any) and embeds its content. Raises
    ConfigError naming the portfolio file and ``holiday_overrides`` when that file is bad. Cheap:
    exchange_calendars is not loaded here.
    """
    overrides = overrides_for_portfolio(portfolio, portfolio_file)
    return TradingCalendarTimetable(portfolio.schedule, overrides, portfolio=portfolio.id)


def _fmt(moment: dt.datetime) -> str:
    return f"{moment.astimezone(IST):%a %d %b %Y %H:%M} IST"


def rebalance_times(
    timetable: TradingCalendarTimetable, now: dt.datetime | None = None
) -> tuple[dt.datetime | None, dt.datetime | None, str | None]:
    """(last_rebalanced_at as scheduled, next_rebalance_at, warning) around ``now``.

    The warning is set when the calendar does not reach the next rebalance (or the one after it).
    """
    now = _std(now or _utcnow())
    schedule = timetable.rebalance_schedule
    warning = None
    try:
        last = schedule.previous_run(now, inclusive=True)
    except CalendarError:
        last = None
    try:
        upcoming = schedule.next_run(now)
    except CalendarError as exc:
        return last, None, str(exc)
    try:
        schedule.next_run(upcoming)
    except CalendarError:
        warning = (
            f"the rebalance after {_fmt(upcoming)} is beyond the known trading calendar (known "
            f"until {schedule.calendar.end}); add the exchange's holiday list for the next year "
            "to the holiday override file"
        )
    return last, upcoming, warning


def schedule_doc_md(timetable: TradingCalendarTimetable, now: dt.datetime | None = None) -> str:
    """Markdown for the DAG's doc: the schedule, next_rebalance_at, last_rebalanced_at.

    Computed when the DAG file is parsed (so as fresh as the last parse). Loads exchange_calendars
    on first use in the process (about 1.5 s). ``last_rebalanced_at`` here is the last *scheduled*
    rebalance; the history store has the runs that actually happened.
    """
    last, upcoming, warning = rebalance_times(timetable, now)
    last_unknown = "none" if upcoming is not None else "unknown (see warning)"
    lines = [
        "### Schedule",
        "",
        f"- **schedule:** {timetable.summary}",
        f"- **next_rebalance_at:** {_fmt(upcoming) if upcoming else 'unknown (see warning)'}",
        f"- **last_rebalanced_at (scheduled):** {_fmt(last) if last else last_unknown}",
        f"- **trading calendar known until:** {timetable.rebalance_schedule.calendar.end}",
    ]
    if warning:
        lines += ["", f"> **Warning:** {warning}"]
    return "\n".join(lines) + "\n"


def check_run_day(timetable: TradingCalendarTimetable, moment: dt.datetime) -> None:
    """Raise CalendarError unless ``moment`` (e.g. the run's ``run_after``) is a trading day."""
    timetable.rebalance_schedule.check_run_day(moment)


__all__ = [
    "IST_NAME",
    "TradingCalendarTimetable",
    "build_timetable",
    "check_run_day",
    "rebalance_times",
    "schedule_doc_md",
]
