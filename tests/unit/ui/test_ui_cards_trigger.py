"""The Rebalance page's cards say what "Next" means for each trigger (docs/drift.md).

``schedule``: the next scheduled rebalance; ``schedule_and_drift``: the next scheduled date,
"only if outside bands"; ``drift``: no timetable rebalance, so the next drift watch (on the
portfolio's calendar, holiday override file included), "rebalances when a band is breached".
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from rebalance.ui import render
from rebalance.ui.app import Viewer, add_times, create_app, portfolio_rows, viewer

ROOT = Path(__file__).resolve().parents[3]
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
# Wed 16 Dec 2026, 11:00 IST: today's 10:00 watch is over; the month's last trading day is the
# 31st (a Thursday), 15:10.
NOW = dt.datetime(2026, 12, 16, 11, 0, tzinfo=IST)


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "portfolios"
    folder.mkdir()
    shutil.copytree(ROOT / "portfolios" / "data", folder / "data")
    (folder / "calendars").mkdir()
    (folder / "calendars" / "closed_17th.yaml").write_text(
        yaml.safe_dump(
            {
                "covers_until": "2026-12-31",
                "holidays": [{"date": "2026-12-17", "note": "declared closure"}],
            }
        )
    )
    monkeypatch.setenv("REBALANCE_PORTFOLIOS_DIR", str(folder))
    for name, extra in {
        "timed": {},
        "gated": {"trigger": "schedule_and_drift"},
        "watched": {"trigger": {"mode": "drift", "watch_time": "10:30"}},
        "closed": {"trigger": "drift", "holiday_overrides": "calendars/closed_17th.yaml"},
    }.items():
        data = yaml.safe_load((ROOT / "portfolios" / "demo.yaml").read_text())
        data.update(name=f"Card {name}", **extra)
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


def cards(now: dt.datetime = NOW) -> dict[str, dict[str, Any]]:
    rows = portfolio_rows()
    add_times(rows, now)
    assert not [r for r in rows if r.get("error")], rows
    return {r["id"]: r for r in rows}


def ist(moment: dt.datetime | None) -> str:
    assert moment is not None
    return f"{moment.astimezone(IST):%a %d %b %H:%M}"


def test_schedule_shows_the_next_scheduled_rebalance(folder: Path) -> None:
    card = cards()["timed"]
    assert ist(card["next"]) == "Thu 31 Dec 15:10"
    html = render.next_row(card)
    assert "Next rebalance" in html
    assert "Last scheduled slot" in html
    assert "next-note" not in html  # nothing to add: it rebalances on its schedule


def test_schedule_and_drift_shows_the_next_scheduled_date_only_if_outside_bands(
    folder: Path,
) -> None:
    card = cards()["gated"]
    assert ist(card["next"]) == "Thu 31 Dec 15:10"
    assert card["schedule"].endswith(", only if outside bands")
    html = render.next_row(card)
    assert "<td>Next rebalance</td>" in html
    assert "only if outside bands" in html
    assert "Last scheduled slot" in html


def test_drift_shows_the_next_watch_and_rebalances_when_a_band_is_breached(
    folder: Path,
) -> None:
    card = cards()["watched"]
    # no timetable rebalance: the next watch (10:30 IST), today's being over at 11:00
    assert ist(card["next"]) == "Thu 17 Dec 10:30"
    assert card["last_scheduled"] is None
    assert card["schedule"] == "on drift (watch 10:30 IST, at most once per 5 trading days)"
    html = render.next_row(card)
    assert "<td>Next drift watch</td>" in html
    assert "rebalances when a band is breached" in html
    assert "Next rebalance" not in html
    assert "Last scheduled slot" not in html  # it has no schedule
    # before today's watch: today's
    assert ist(cards(NOW.replace(hour=9))["watched"]["next"]) == "Wed 16 Dec 10:30"


def test_the_next_watch_skips_a_holiday_of_the_portfolio_override_file(folder: Path) -> None:
    # the 17th is declared closed for "closed" only: its next watch is the 18th
    assert ist(cards()["closed"]["next"]) == "Fri 18 Dec 10:00"
    assert ist(cards()["watched"]["next"]) == "Thu 17 Dec 10:30"


def test_the_page_shows_each_trigger_next(folder: Path, history_db: str) -> None:
    app = create_app()
    app.dependency_overrides[viewer] = lambda: Viewer(name="tester", can_read=lambda ids: ids)
    with TestClient(app) as client:
        html = client.get("/").text

    def card_html(pid: str) -> str:
        start = html.index(f"data-portfolio='{pid}'")
        end = html.find("<div class='card'", start)
        return html[start : end if end > 0 else None]

    watched = card_html("watched")
    assert "Next drift watch" in watched
    assert "rebalances when a band is breached" in watched
    assert "10:30 IST" in watched
    gated = card_html("gated")
    assert "Next rebalance" in gated
    assert "only if outside bands" in gated
    timed = card_html("timed")
    assert "Next rebalance" in timed
    assert "only if outside bands" not in timed
    assert "band is breached" not in timed
