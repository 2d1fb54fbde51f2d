"""The Rebalance page's drift chart (a portfolio's view) and a triggered run's breach."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient

from rebalance.drift.record import DriftRecord, WatchAction, WatchStatus
from rebalance.history.store import HistoryStore, RunKey
from rebalance.ui import render
from rebalance.ui.app import Viewer, create_app, viewer

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def record(day: dt.date, total: float, peak: float, action: WatchAction) -> DriftRecord:
    return DriftRecord(
        portfolio_id="demo",
        account="paper",
        broker="paper",
        day=day,
        taken_at=dt.datetime.combine(day, dt.time(10), IST),
        status=WatchStatus.READ,
        total_drift=total,
        max_drift=peak,
        outside_band=("ITC",) if peak >= 0.02 else (),
        band_abs_pct=2.0,
        band_rel_pct=15.0,
        action=action,
    )


def client(can_read=lambda ids: set(ids)) -> TestClient:  # type: ignore[no-untyped-def]
    app = create_app()
    app.dependency_overrides[viewer] = lambda: Viewer(name="tester", can_read=can_read)
    return TestClient(app)


def test_the_portfolio_view_charts_its_drift_with_band_and_rebalances(store: HistoryStore) -> None:
    today = dt.datetime.now(IST).date()
    days = [today - dt.timedelta(days=n) for n in (2, 1, 0)]
    store.save_drift_record(record(days[0], 0.01, 0.005, WatchAction.INSIDE_BANDS))
    store.save_drift_record(record(days[1], 0.05, 0.03, WatchAction.TRIGGER))
    store.save_drift_record(record(days[2], 0.02, 0.01, WatchAction.INSIDE_BANDS))

    with client() as c:
        html = c.get("/", params={"portfolio": "demo"}).text
        everyone = c.get("/").text

    assert "<h2>Drift</h2>" in html
    assert "<svg id='drift-chart'" in html
    assert html.count("<polyline class='total_drift'") == 1
    assert html.count("<polyline class='max_drift'") == 1
    assert "band 2.00%" in html
    assert f"rebalance {days[1]}" in html  # the triggered day is marked
    assert "max drift 3.00%" in html
    assert "drift-chart" not in everyone  # the overview of every portfolio has no chart


def test_the_chart_is_hidden_from_a_viewer_who_cannot_read_the_portfolio(
    store: HistoryStore,
) -> None:
    store.save_drift_record(record(dt.datetime.now(IST).date(), 0.05, 0.03, WatchAction.TRIGGER))
    with client(lambda ids: set()) as c:
        page = c.get("/", params={"portfolio": "demo"})
    assert "drift-chart" not in page.text


def test_a_triggered_run_shows_the_breach_that_started_it(store: HistoryStore) -> None:
    run_id = store.open_run(
        RunKey("rebalance_demo", "asset_triggered__2026-11-16T10:00:05+05:30", "paper"),
        portfolio_id="demo",
        portfolio_name="Demo Nifty Ten",
        broker="paper",
        initiator="drift",
        broker_scope="paper",
        mode="paper",
        policy={"rebalance_budget_pct": 10},
        targets={"weights": {"ITC": 1.0}, "cash": 0.0},
    )
    extra = {
        "trigger": "drift",
        "portfolio_id": "demo",
        "day": "2026-11-16",
        "accounts": [
            {
                "account": "paper",
                "total_drift": 0.3273,
                "symbols": [{"symbol": "ITC", "drift": 0.0515, "band": 0.015}],
            }
        ],
    }
    store.update_run(run_id, trigger_event=extra)

    with client() as c:
        html = c.get(f"/runs/{run_id}").text

    assert "Started by a drift breach" in html
    assert "The drift watch of 2026-11-16 found" in html
    assert re.search(r"paper: ITC \+5\.15% \(band 1\.50%\); total drift 32\.73%", html)
    assert "paper / drift" in html


def test_no_records_says_why_and_the_breach_section_escapes() -> None:
    assert "No drift records yet" in render.drift_section([], [])
    html = render.breach_section({"day": "<x>", "accounts": [{"account": "<b>", "symbols": []}]})
    assert "<b>" not in html
    assert "&lt;x&gt;" in html
    assert render.breach_section(None) == ""
