"""The plugin registers the trading-calendar timetable, and a DAG using it survives the
scheduler's path: serialized to JSON, rebuilt without the DAG file or the override file."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pendulum
import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import DAG
from airflow.serialization.serialized_objects import DagSerialization
from airflow.timetables.base import TimeRestriction

from rebalance.errors import ConfigError
from rebalance.portfolio import load_portfolio
from rebalance.schedule import Schedule
from rebalance.timetable import TradingCalendarTimetable, build_timetable

ROOT = Path(__file__).resolve().parents[2]
QUALNAME = "rebalance.timetable.TradingCalendarTimetable"

DAG_FILE = """
from pathlib import Path

import pendulum
from airflow.sdk import DAG

from rebalance.portfolio import load_portfolio
from rebalance.timetable import build_timetable, schedule_doc_md

PORTFOLIO = Path({portfolio!r})
portfolio = load_portfolio(PORTFOLIO)
timetable = build_timetable(portfolio, PORTFOLIO)

with DAG(
    portfolio.dag_id,
    schedule=timetable,
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Kolkata"),
    catchup=False,
    max_active_runs=1,
    doc_md=schedule_doc_md(timetable),
):
    pass
"""


def test_the_plugin_registers_the_timetable():
    from airflow import plugins_manager

    assert plugins_manager.get_timetables_plugins()[QUALNAME] is TradingCalendarTimetable


@pytest.fixture
def portfolio_file(tmp_path: Path) -> Path:
    (tmp_path / "calendars").mkdir()
    (tmp_path / "calendars" / "nse_2027.yaml").write_text(
        textwrap.dedent(
            """
            source: test
            covers_until: 2027-12-31
            holidays:
              - {date: 2027-01-26, note: Republic Day}
            """
        ),
        encoding="utf-8",
    )
    demo = (ROOT / "portfolios" / "demo.yaml").read_text(encoding="utf-8")
    path = tmp_path / "core.yaml"
    path.write_text(demo + "holiday_overrides: calendars/nse_2027.yaml\n", encoding="utf-8")
    return path


def test_a_dag_round_trips_through_serialization(portfolio_file: Path):
    timetable = build_timetable(load_portfolio(portfolio_file), portfolio_file)
    with DAG(
        "rebalance_core",
        schedule=timetable,
        start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Kolkata"),
        catchup=False,
        max_active_runs=1,
    ) as dag:
        pass
    stored = json.loads(json.dumps(DagSerialization.to_dict(dag)))
    (portfolio_file.parent / "calendars" / "nse_2027.yaml").unlink()  # the scheduler has no file
    rebuilt = DagSerialization.from_dict(stored).timetable
    assert isinstance(rebuilt, TradingCalendarTimetable)
    assert rebuilt == timetable
    assert rebuilt.summary == "monthly, last trading day, 15:10 IST"
    restriction = TimeRestriction(pendulum.datetime(2026, 12, 1, tz="UTC"), None, catchup=True)
    assert rebuilt.next_dagrun_info(
        last_automated_data_interval=None, restriction=restriction
    ) == timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    # The override file's year came along: January 2027's last trading day is known.
    runs = rebuilt.rebalance_schedule.next_runs(pendulum.datetime(2026, 12, 1, tz="UTC"), 2)
    assert [f"{r:%Y-%m-%d}" for r in runs] == ["2026-12-31", "2027-01-29"]


def test_every_schedule_shape_round_trips():
    shapes = [
        {},
        {"frequency": "weekly", "weekday": "monday", "roll": "backward"},
        {"frequency": "quarterly", "day_rule": "nth_trading_day", "day": -3},
        {"day_rule": "calendar_day", "day": 31, "roll": "forward", "time": "09:30"},
        {"frequency": "custom_days", "every_n_trading_days": 7, "anchor": "2025-06-02"},
        {"time": "05:00", "timezone": "Europe/London", "include_special_sessions": True},
    ]
    for shape in shapes:
        original = TradingCalendarTimetable(Schedule.model_validate(shape), portfolio="x")
        data = json.loads(json.dumps(original.serialize()))
        again = TradingCalendarTimetable.deserialize(data)
        assert again == original
        assert again.schedule.model_dump() == original.schedule.model_dump()
        assert again.description == original.description


def test_dagbag_loads_a_dag_with_the_timetable(tmp_path: Path, portfolio_file: Path):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "rebalance_core.py").write_text(DAG_FILE.format(portfolio=str(portfolio_file)))
    dagbag = DagBag(str(dags))
    assert dagbag.import_errors == {}
    dag = dagbag.dags["rebalance_core"]
    assert isinstance(dag.timetable, TradingCalendarTimetable)
    assert "next_rebalance_at" in (dag.doc_md or "")


def test_a_bad_override_file_is_a_config_error_naming_the_portfolio(portfolio_file: Path):
    (portfolio_file.parent / "calendars" / "nse_2027.yaml").write_text("covers_until: [\n")
    with pytest.raises(ConfigError) as info:
        build_timetable(load_portfolio(portfolio_file), portfolio_file)
    assert str(info.value).startswith(str(portfolio_file))
    assert "holiday_overrides" in str(info.value)
