"""``rebalance calendar update``: the exchange's published holiday list into the override file,
checked against exchange_calendars' XBOM, nonsense refused (exit 2 naming file, row and field).

Input: committed copies of NSE's 2026 list (tests/unit/calendar/data/README.md says where they
come from); no network. The 2027 cases build their small lists here and say so.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rebalance.cli.calendar  # noqa: F401 - registers the calendar commands
from rebalance.calendar import TradingCalendar, load_overrides
from rebalance.calendar_update import compare_with_library, read_holiday_list
from rebalance.cli import app

DATA = Path(__file__).parent / "data"
MASTER_2026 = DATA / "nse_holiday_master_2026.json"
CIRCULAR_2026 = DATA / "nse_circular_2026.csv"
runner = CliRunner()


def update(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["calendar", "update", *args])
    return result.exit_code, result.stdout, result.stderr


def test_nse_holiday_master_is_read_from_its_cm_segment() -> None:
    listed = read_holiday_list(MASTER_2026)
    assert len(listed) == 20
    assert listed[0].date == dt.date(2026, 1, 15)
    assert {e.description for e in listed} >= {"Republic Day", "Christmas", "Holi"}
    assert [e.row for e in listed] == list(range(1, 21))  # the JSON entry's position


def test_2026_list_agrees_with_exchange_calendars() -> None:
    result = compare_with_library(read_holiday_list(MASTER_2026), str(MASTER_2026))
    assert result.year == 2026
    assert result.additions == []
    assert result.removals == []
    assert len(result.agreements) == 16
    assert [e.date.isoformat() for e in result.weekend] == [
        "2026-02-15",
        "2026-03-21",
        "2026-08-15",
        "2026-11-08",
    ]


def test_circular_without_a_later_closure_reports_a_removal(tmp_path: Path) -> None:
    """The December circular lacks 15 Jan 2026 (closed by a later circular): reported, kept
    closed unless --accept-removals."""
    target = tmp_path / "o.yaml"
    code, stdout, stderr = update("--from", str(CIRCULAR_2026), "--output", str(target))
    assert code == 0, stderr
    assert "- 2026-01-15 Thu closed in exchange_calendars XBOM but not in this list" in stdout
    assert "--accept-removals reopens them" in stdout
    assert load_overrides(target).remove_holidays == ()
    code, _, stderr = update(
        "--from", str(CIRCULAR_2026), "--output", str(target), "--accept-removals"
    )
    assert code == 0, stderr
    (removed,) = load_overrides(target).remove_holidays
    assert removed.date == dt.date(2026, 1, 15)


def test_a_new_year_extends_the_known_calendar(tmp_path: Path) -> None:
    """A list for 2027 (made here, the shape of NSE's JSON) makes 2027 known and closes its
    weekday holidays; weekend ones are left out."""
    listing = tmp_path / "master_2027.json"
    listing.write_text(
        json.dumps(
            {
                "CM": [
                    {"Sr_no": 1, "tradingDate": "26-Jan-2027", "weekDay": "Tuesday",
                     "description": "Republic Day"},
                    {"Sr_no": 2, "tradingDate": "15-Aug-2027", "weekDay": "Sunday",
                     "description": "Independence Day"},
                    {"Sr_no": 3, "tradingDate": "27-Dec-2027", "weekDay": "Monday",
                     "description": "Test holiday (not an exchange date)"},
                ]
            }
        )
    )  # fmt: skip
    target = tmp_path / "calendars" / "nse.yaml"
    code, stdout, stderr = update(
        "--from", str(listing), "--output", str(target), "--source", "test list 2027"
    )
    assert code == 0, stderr
    assert "+ 2027-01-26 Tue Republic Day (new: closed)" in stdout
    assert "known until 2027-12-31" in stdout
    overrides = load_overrides(target)
    assert overrides.covers_until == dt.date(2027, 12, 31)
    assert [h.date for h in overrides.holidays] == [dt.date(2027, 1, 26), dt.date(2027, 12, 27)]
    calendar = TradingCalendar(overrides)
    assert not calendar.is_trading_day(dt.date(2027, 1, 26))
    assert calendar.is_trading_day(dt.date(2027, 1, 25))
    assert calendar.next_trading_day(dt.date(2027, 12, 24)) == dt.date(2027, 12, 28)


def test_a_later_year_is_merged_and_a_gap_refused(tmp_path: Path) -> None:
    target = tmp_path / "nse.yaml"
    gap = tmp_path / "2028.csv"
    gap.write_text("date,description\n2028-01-26,Republic Day\n")
    code, _, stderr = update("--from", str(gap), "--output", str(target))
    assert code == 2
    assert "known until 2026-12-31: add the list for 2027 first" in stderr
    first = tmp_path / "2027.csv"
    first.write_text("date,description\n2027-01-26,Republic Day\n")
    assert update("--from", str(first), "--output", str(target))[0] == 0
    code, _, stderr = update("--from", str(gap), "--output", str(target))
    assert code == 0, stderr
    overrides = load_overrides(target)
    assert overrides.covers_until == dt.date(2028, 12, 31)
    assert [h.date.year for h in overrides.holidays] == [2027, 2028]


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "o.yaml"
    code, stdout, _ = update("--from", str(MASTER_2026), "--output", str(target), "--dry-run")
    assert code == 0
    assert "(dry run)" in stdout
    assert not target.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "date,day,description\n2027-01-26,Monday,Republic Day\n",
            "row 2, date: 2027-01-26 is a Tuesday, the list says Monday",
        ),
        (
            "date,description\n2027-01-26,Republic Day\n2028-03-01,Holi\n2027-03-22,Holi\n",
            "row 3, date: 2028-03-01 is not in 2027",
        ),
        (
            "date,description\n2027-01-26,Republic Day\n2027-01-26,Republic Day again\n",
            "row 3, date: 2027-01-26 is listed twice (also row 2)",
        ),
        ("date,description\n2027-02-30,Nonsense\n", "row 2, date: '2027-02-30' is not a date"),
        ("date,description\n2027-13-01,Nonsense\n", "row 2, date"),
        ("date,description\n2027-01-26,\n", "row 2, description"),
        ("date,description\n", "the list has no holidays"),
        ("when,what\n2027-01-26,Republic Day\n", "row 1: missing column(s) date, description"),
        ("", "row 1: no header line"),
        ('{"FO": []}', "CM: expected NSE's holiday master"),
        ('{"CM": [{"tradingDate": "31-Feb-2027", "description": "x"}]}', "CM.1, date"),
        ('{"CM": [', "row 1: malformed JSON"),
        (
            "date,description\n"
            + "".join(
                f"{day},Day {n}\n"
                for n, day in enumerate(
                    dt.date(2027, 1, 1) + dt.timedelta(days=i) for i in range(90)
                )
                if day.weekday() < 5
            ),
            "more than 40, not an exchange holiday list",
        ),
    ],
    ids=lambda v: str(v)[:40],
)
def test_nonsense_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    listing = tmp_path / "list.csv"
    listing.write_text(text)
    target = tmp_path / "o.yaml"
    code, stdout, stderr = update("--from", str(listing), "--output", str(target))
    assert code == 2, stdout
    assert "list.csv" in stderr
    assert expected in stderr
    assert not target.exists()


def test_undecodable_list_is_refused(tmp_path: Path) -> None:
    listing = tmp_path / "list.csv"
    listing.write_bytes(b"date,description\n2027-01-26,Caf\xe9\n")
    code, _, stderr = update("--from", str(listing), "--output", str(tmp_path / "o.yaml"))
    assert code == 2
    assert "row 2: not UTF-8" in stderr
