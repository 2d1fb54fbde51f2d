"""TradingCalendarTimetable: the runs Airflow's scheduler gets, with catchup on and off."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction
from airflow.utils.types import DagRunType

import rebalance.timetable as timetable_module
from rebalance.calendar import HolidayOverrides
from rebalance.errors import CalendarError
from rebalance.schedule import Schedule
from rebalance.timetable import (
    TradingCalendarTimetable,
    build_timetable,
    check_run_day,
    rebalance_times,
    schedule_doc_md,
)

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def ist(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> pendulum.DateTime:
    return pendulum.datetime(y, m, d, hh, mm, tz="Asia/Kolkata")


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch):
    """Set the timetable's clock: ``now(ist(...))``."""

    def set_now(moment: dt.datetime) -> None:
        monkeypatch.setattr(timetable_module, "_utcnow", lambda: moment.astimezone(dt.UTC))

    set_now(ist(2026, 11, 25, 10))
    return set_now


def sequence(
    tt: TradingCalendarTimetable, restriction: TimeRestriction, count: int
) -> list[DagRunInfo]:
    """What the scheduler does: ask again with each run's data interval."""
    infos: list[DagRunInfo] = []
    last: DataInterval | None = None
    for _ in range(count):
        info = tt.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        assert info is not None
        infos.append(info)
        last = info.data_interval
    return infos


def local(info: DagRunInfo) -> str:
    return f"{info.run_after.in_timezone('Asia/Kolkata'):%Y-%m-%d %H:%M}"


def tt_for(**schedule: Any) -> TradingCalendarTimetable:
    return TradingCalendarTimetable(Schedule.model_validate(schedule), portfolio="test")


def test_catchup_runs_every_scheduled_rebalance_from_the_start_date(now):
    tt = tt_for(frequency="weekly", weekday="friday")
    infos = sequence(tt, TimeRestriction(ist(2024, 10, 21), None, catchup=True), 4)
    # Diwali (Fri 1 Nov 2024) rolls to Monday; Guru Nanak Jayanti (Fri 15 Nov) too.
    assert [local(i) for i in infos] == [
        "2024-10-25 15:10",
        "2024-11-04 15:10",
        "2024-11-08 15:10",
        "2024-11-18 15:10",
    ]
    # Each interval runs from the previous scheduled rebalance to this one.
    assert infos[1].data_interval.start == infos[0].data_interval.end
    assert infos[0].data_interval.start == ist(2024, 10, 18, 15, 10)
    assert infos[0].run_after == infos[0].data_interval.end


def test_catchup_across_holi_republic_day_and_the_year_boundary(now):
    tt = tt_for(frequency="monthly", day_rule="calendar_day", day=14, roll="backward")
    infos = sequence(tt, TimeRestriction(ist(2025, 2, 20), None, catchup=True), 1)
    assert [local(i) for i in infos] == ["2025-03-13 15:10"]  # Holi, Friday 14 March 2025
    tt = tt_for(frequency="monthly", day_rule="calendar_day", day=26)
    infos = sequence(tt, TimeRestriction(ist(2025, 11, 27), None, catchup=True), 3)
    assert [local(i) for i in infos] == [
        "2025-12-26 15:10",
        "2026-01-27 15:10",  # Republic Day, Monday 26 January 2026
        "2026-02-26 15:10",
    ]


def test_quarter_ends_and_a_weekend_month_end(now):
    tt = tt_for(frequency="quarterly")
    infos = sequence(tt, TimeRestriction(ist(2025, 1, 1), None, catchup=True), 3)
    assert [local(i) for i in infos] == ["2025-03-28 15:10", "2025-06-30 15:10", "2025-09-30 15:10"]
    tt = tt_for()
    infos = sequence(tt, TimeRestriction(ist(2025, 8, 1), None, catchup=True), 1)
    assert [local(i) for i in infos] == ["2025-08-29 15:10"]  # 31 Aug 2025 is a Sunday


def test_backward_roll_across_a_month_boundary(now):
    tt = tt_for(day_rule="calendar_day", day=1, roll="backward")
    infos = sequence(tt, TimeRestriction(ist(2026, 4, 2), None, catchup=True), 2)
    assert [local(i) for i in infos] == ["2026-04-30 15:10", "2026-06-01 15:10"]


def test_custom_days(now):
    tt = tt_for(frequency="custom_days", every_n_trading_days=5, anchor="2026-01-19")
    infos = sequence(tt, TimeRestriction(ist(2026, 1, 1), None, catchup=True), 3)
    assert [local(i) for i in infos] == ["2026-01-19 15:10", "2026-01-27 15:10", "2026-02-03 15:10"]
    assert infos[1].data_interval.start == infos[0].run_after


def test_without_catchup_a_missed_rebalance_is_not_run_late(now):
    tt = tt_for()
    now(ist(2026, 10, 30, 18))  # after the October run's time
    restriction = TimeRestriction(ist(2026, 1, 1), None, catchup=False)
    first = tt.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert first is not None
    assert local(first) == "2026-11-30 15:10"
    # After a long pause, the next run is the next one from now, not the first missed one.
    old = DataInterval(ist(2026, 2, 27, 15, 10), ist(2026, 3, 30, 15, 10))
    info = tt.next_dagrun_info(last_automated_data_interval=old, restriction=restriction)
    assert info is not None
    assert local(info) == "2026-11-30 15:10"
    assert info.data_interval.start == ist(2026, 10, 30, 15, 10)


def test_a_run_at_the_scheduled_moment_is_not_skipped(now):
    now(ist(2026, 11, 30, 15, 10))
    tt = tt_for()
    restriction = TimeRestriction(ist(2026, 1, 1), None, catchup=False)
    info = tt.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert info is not None
    assert local(info) == "2026-11-30 15:10"


def test_end_date_stops_the_schedule(now):
    tt = tt_for()
    restriction = TimeRestriction(ist(2026, 1, 1), ist(2026, 11, 29), catchup=True)
    last = DataInterval(ist(2026, 9, 30, 15, 10), ist(2026, 10, 30, 15, 10))
    assert tt.next_dagrun_info(last_automated_data_interval=last, restriction=restriction) is None


def test_beyond_the_known_calendar_a_run_is_scheduled_to_fail_loudly(now):
    """Past the calendar's end Airflow would go silent on an exception: instead the timetable
    schedules a run on each unknown day, and the run's first task refuses it (check_run_day)."""
    tt = tt_for()
    now(ist(2026, 12, 31, 16))
    restriction = TimeRestriction(ist(2026, 1, 1), None, catchup=False)
    info = tt.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert info is not None
    assert local(info) == "2027-01-01 15:10"
    with pytest.raises(CalendarError, match="beyond the known trading calendar"):
        check_run_day(tt, info.run_after)

    after = tt.next_dagrun_info(
        last_automated_data_interval=info.data_interval, restriction=restriction
    )
    assert after is not None
    assert (
        local(after) == "2027-01-02 15:10"
    )  # one loud failure a day until the calendar is extended


def test_overrides_extend_the_timetable(now):
    overrides = HolidayOverrides.model_validate(
        {"covers_until": "2027-12-31", "holidays": [{"date": "2027-01-29", "note": "test"}]}
    )
    tt = TradingCalendarTimetable(Schedule(), overrides)
    restriction = TimeRestriction(ist(2026, 1, 1), None, catchup=False)
    infos = sequence(tt, restriction, 3)
    assert [local(i) for i in infos] == ["2026-11-30 15:10", "2026-12-31 15:10", "2027-01-28 15:10"]


def test_manual_runs_cover_the_time_since_the_last_scheduled_rebalance():
    tt = tt_for()
    interval = tt.infer_manual_data_interval(run_after=ist(2026, 11, 25, 11))
    assert interval.start == ist(2026, 10, 30, 15, 10)
    assert interval.end == ist(2026, 11, 25, 11)
    # Beyond the calendar a manual run still gets an interval (the task checks the day).
    interval = tt.infer_manual_data_interval(run_after=ist(2027, 2, 1, 11))
    assert interval.start == interval.end == ist(2027, 2, 1, 11)


def test_run_ids_are_readable_in_ist():
    tt = tt_for()
    run_after = ist(2026, 11, 30, 15, 10).in_timezone("UTC")
    run_id = tt.generate_run_id(
        run_type=DagRunType.SCHEDULED, run_after=run_after, data_interval=None
    )
    assert run_id == "scheduled__2026-11-30T15:10+05:30"
    manual = tt.generate_run_id(
        run_type=DagRunType.MANUAL,
        run_after=pendulum.datetime(2026, 11, 25, 5, 30, 1, 123456, tz="UTC"),
        data_interval=None,
    )
    assert manual == "manual__2026-11-25T11:00:01.123456+05:30"


def test_summary_and_description():
    tt = tt_for()
    assert tt.summary == "monthly, last trading day, 15:10 IST"
    assert tt.description.startswith("monthly, last trading day, 15:10 IST; NSE/BSE trading days")
    assert tt.active_runs_limit == 1
    assert tt.periodic
    assert tt.can_be_scheduled


def test_build_timetable_embeds_the_override_file(tmp_path: Path):
    (tmp_path / "calendars").mkdir()
    overrides_file = tmp_path / "calendars" / "nse_2027.yaml"
    overrides_file.write_text(
        "covers_until: 2027-12-31\nholidays:\n  - {date: 2027-01-26, note: Republic Day}\n",
        encoding="utf-8",
    )
    demo = (PROJECT_ROOT / "portfolios" / "demo.yaml").read_text(encoding="utf-8")
    portfolio_file = tmp_path / "core.yaml"
    portfolio_file.write_text(demo + "holiday_overrides: calendars/nse_2027.yaml\n", "utf-8")
    from rebalance.portfolio import load_portfolio

    tt = build_timetable(load_portfolio(portfolio_file), portfolio_file)
    overrides_file.unlink()  # the scheduler never reads the file
    data = tt.serialize()
    assert data["holiday_overrides"]["holidays"][0]["date"] == "2027-01-26"
    again = TradingCalendarTimetable.deserialize(data)
    assert again == tt
    assert again.rebalance_schedule.calendar.end == dt.date(2027, 12, 31)


def test_doc_md_shows_next_and_last_rebalance():
    tt = tt_for()
    text = schedule_doc_md(tt, now=ist(2026, 11, 25, 10))
    assert "**next_rebalance_at:** Mon 30 Nov 2026 15:10 IST" in text
    assert "**last_rebalanced_at (scheduled):** Fri 30 Oct 2026 15:10 IST" in text
    assert "Warning" not in text
    near_end = schedule_doc_md(tt, now=ist(2026, 12, 10))
    assert "**next_rebalance_at:** Thu 31 Dec 2026 15:10 IST" in near_end
    assert "> **Warning:** the rebalance after Thu 31 Dec 2026 15:10 IST is beyond" in near_end
    # Past the calendar's end neither is knowable: a run may exist in the unknown days.
    last, upcoming, warning = rebalance_times(tt, now=ist(2027, 1, 5))
    assert (last, upcoming) == (None, None)
    assert warning is not None
    assert "beyond the known trading calendar" in warning
    assert "unknown (see warning)" in schedule_doc_md(tt, now=ist(2027, 1, 5))
