"""The watch DAG's calendar is the portfolios' own: the holiday override file counts.

No watch on a holiday the override file declares, a watch on a special session it declares (the
market is open), exactly as the rebalance timetable of the same portfolio reads that file; the
calendar travels inside the serialized timetable, as the scheduler gets it.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pendulum
import pytest
import yaml
from airflow.timetables.base import DataInterval, TimeRestriction

import rebalance.timetable as timetable_module
from rebalance.dag_factory import build_dags
from rebalance.drift_dag import build_watch_dags, watch_dag_id
from rebalance.timetable import TradingCalendarTimetable

ROOT = Path(__file__).resolve().parents[3]
TEN = dt.time(10, 0)

# Wed 16 Dec 2026 declared closed; Sat 19 Dec 2026 a special session 10:00-12:00 IST; Sun 20 Dec
# a special session without hours (the regular ones).
OVERRIDES = {
    "source": "test circular",
    "covers_until": "2026-12-31",
    "holidays": [{"date": "2026-12-16", "note": "declared closure"}],
    "special_sessions": [
        {"date": "2026-12-19", "note": "Saturday session", "start": "10:00", "end": "12:00"},
        {"date": "2026-12-20", "note": "Sunday session"},
    ],
}


def ist(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> pendulum.DateTime:
    return pendulum.datetime(y, m, d, hh, mm, tz="Asia/Kolkata")


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "portfolios"
    folder.mkdir()
    shutil.copytree(ROOT / "portfolios" / "data", folder / "data")
    (folder / "calendars").mkdir()
    (folder / "calendars" / "nse_2026.yaml").write_text(yaml.safe_dump(OVERRIDES))
    monkeypatch.setenv("REBALANCE_STATE_DIR", str(tmp_path / "state"))
    # the scheduler's clock: before the days asked about
    moment = ist(2026, 12, 14, 9)
    monkeypatch.setattr(timetable_module, "_utcnow", lambda: moment.astimezone(dt.UTC))
    return folder


def write(folder: Path, name: str, **extra: Any) -> None:
    data = yaml.safe_load((ROOT / "portfolios" / "demo.yaml").read_text())
    data["name"] = f"Watched {name}"
    data.update(extra)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def run_days(timetable: Any, count: int) -> list[str]:
    """What the scheduler creates, one run after another (catchup off, from 14 Dec 09:00)."""
    restriction = TimeRestriction(earliest=ist(2026, 1, 1), latest=None, catchup=False)
    last: DataInterval | None = None
    days = []
    for _ in range(count):
        info = timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=restriction
        )
        assert info is not None
        days.append(f"{info.run_after.in_timezone('Asia/Kolkata'):%a %d %H:%M}")
        last = info.data_interval
    return days


def test_no_watch_on_a_declared_holiday_and_one_on_a_declared_special_session(
    folder: Path,
) -> None:
    write(folder, "core", trigger="drift", holiday_overrides="calendars/nse_2026.yaml")

    (dag,) = build_watch_dags(folder).values()

    assert dag.dag_id == watch_dag_id(TEN)
    assert run_days(dag.timetable, 7) == [
        "Mon 14 10:00",
        "Tue 15 10:00",
        # Wed 16: the declared holiday, no watch
        "Thu 17 10:00",
        "Fri 18 10:00",
        "Sat 19 10:00",  # the special session (10:00-12:00): watched
        "Sun 20 10:00",  # a special session without hours: at the watch time
        "Mon 21 10:00",
    ]


def test_the_scheduler_gets_the_calendar_inside_the_serialized_timetable(folder: Path) -> None:
    write(folder, "core", trigger="drift", holiday_overrides="calendars/nse_2026.yaml")
    (dag,) = build_watch_dags(folder).values()

    # the scheduler never reads the portfolio folder: the file's content is in the timetable
    (folder / "calendars" / "nse_2026.yaml").unlink()
    again = TradingCalendarTimetable.deserialize(dag.timetable.serialize())

    assert again == dag.timetable
    assert run_days(again, 3) == ["Mon 14 10:00", "Tue 15 10:00", "Thu 17 10:00"]


def test_the_watch_and_the_rebalance_timetable_read_the_same_override_file(
    folder: Path,
) -> None:
    write(folder, "core", holiday_overrides="calendars/nse_2026.yaml")
    (watch,) = build_watch_dags(folder).values()
    (rebalance,) = build_dags(folder).values()

    assert watch.timetable.overrides is not None
    assert watch.timetable.overrides == rebalance.timetable.overrides
    assert (
        rebalance.timetable.rebalance_schedule.calendar.is_trading_day(dt.date(2026, 12, 16))
        is False
    )


def test_without_an_override_file_the_library_calendar_alone(folder: Path) -> None:
    write(folder, "core", trigger="drift")
    (dag,) = build_watch_dags(folder).values()

    assert dag.timetable.overrides is None
    # Wed 16 is a trading day for exchange_calendars; Sat 19 is not
    assert run_days(dag.timetable, 6) == [
        "Mon 14 10:00",
        "Tue 15 10:00",
        "Wed 16 10:00",
        "Thu 17 10:00",
        "Fri 18 10:00",
        "Mon 21 10:00",
    ]


def test_portfolios_on_different_calendars_get_a_watch_dag_each(folder: Path) -> None:
    write(folder, "a", holiday_overrides="calendars/nse_2026.yaml")
    write(folder, "b", holiday_overrides="calendars/nse_2026.yaml")
    write(folder, "c")  # the library's calendar alone
    write(folder, "late", trigger={"mode": "drift", "watch_time": "14:00"})

    dags = build_watch_dags(folder)

    # the most common calendar at 10:00 keeps the plain id; the other one is a DAG of its own
    assert sorted(dags) == [
        "rebalance_drift_watch_1000",
        "rebalance_drift_watch_1000_2",
        "rebalance_drift_watch_1400",
    ]
    plain = dags["rebalance_drift_watch_1000"]
    assert plain.timetable.overrides is not None
    assert dags["rebalance_drift_watch_1000_2"].timetable.overrides is None
    watched = {
        dag_id: sorted(p.strip() for p in dag.description.partition("(read-only):")[2].split(","))
        for dag_id, dag in dags.items()
    }
    assert watched == {
        "rebalance_drift_watch_1000": ["a", "b"],
        "rebalance_drift_watch_1000_2": ["c"],
        "rebalance_drift_watch_1400": ["late"],
    }


def test_a_second_calendar_at_one_time_is_named_after_its_file() -> None:
    assert (
        watch_dag_id(TEN, Path("/p/calendars/nse holidays-2027.yaml"))
        == "rebalance_drift_watch_1000_nse_holidays_2027"
    )
    assert watch_dag_id(TEN) == "rebalance_drift_watch_1000"
