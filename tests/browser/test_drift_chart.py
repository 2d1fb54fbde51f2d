"""The drift watch in the session's one live Airflow (LocalExecutor, a real scheduler), then the
Rebalance page in headless Chromium.

A ``trigger: drift`` portfolio of its own (own paper account, own watch time, so its own watch
DAG ``rebalance_drift_watch_1005`` reads only it) is dropped into the running deployment's
portfolio folder, with a week of drift history seeded inside its bands. Then:

1. a watch run finds the breach and emits the asset event; the scheduler creates exactly ONE
   rebalance DAG run of the portfolio, asset-triggered, the breach its triggering event; the run
   records the breach; one breach alert reaches the webhook;
2. a second watch the same day is within ``min_trading_days_between`` (too soon): no event, no
   second run, no second alert (checked through Airflow's REST API);
3. in Chromium, the portfolio's view of the Rebalance page shows the drift chart (total and max
   drift, the band, the rebalance marked) and its card the next drift watch; the run's detail
   shows the breach that triggered it. Screenshots under ``artifacts/browser/``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PORTFOLIO = "demo_drift"
DAG_ID = f"rebalance_{PORTFOLIO}"
WATCH_DAG = "rebalance_drift_watch_1005"
NAME = "Demo Drift Watch"
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
# A parse cycle of the dag-processor is up to min_file_process_interval (30 s) plus the parse,
# slower on a loaded machine.
SETTLE_TIMEOUT = 240.0
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
# Seeded history: (days before today, total drift, max drift), all inside the 2% band.
SEEDED = [(7, 0.040, 0.008), (6, 0.052, 0.010), (5, 0.061, 0.012), (2, 0.083, 0.014)]


def wait_for(what: str, check: Any, airflow: Any, timeout: float = SETTLE_TIMEOUT) -> Any:
    """``check()``'s first true answer; an API that is slow to answer (a loaded machine) is
    asked again."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TimeoutException):
            found = check()
            if found:
                return found
        time.sleep(2)
    raise AssertionError(f"{what} not seen after {timeout:.0f}s; see {airflow.log}")


def dag_runs(airflow: Any, dag_id: str) -> list[dict[str, Any]]:
    body = airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100})
    return list(body["dag_runs"])


def watch_events(airflow: Any) -> list[dict[str, Any]]:
    """The asset events the portfolio's watch DAG emitted (it watches this portfolio alone)."""
    params = {"source_dag_id": WATCH_DAG, "limit": 100}
    return list(airflow.api("GET", "/api/v2/assets/events", params=params)["asset_events"])


def breach_alerts(airflow: Any) -> list[str]:
    return [
        str(body["text"])
        for body in list(airflow.webhook)
        if f"Drift breach in {NAME}:" in str(body.get("text", ""))
    ]


def run_watch(airflow: Any) -> tuple[str, Any]:
    """One manual watch run, finished; the decide task's summary (portfolio id -> action)."""
    run_id = airflow.trigger(WATCH_DAG, {})
    assert airflow.wait_run_finished(WATCH_DAG, run_id, timeout=240) == "success"
    path = (
        f"/api/v2/dags/{WATCH_DAG}/dagRuns/{quote(run_id, safe='')}/taskInstances/decide/"
        "xcomEntries/return_value"
    )
    return run_id, airflow.api("GET", path, params={"deserialize": True})["value"]


@pytest.fixture
def drift_portfolio(live_airflow: Any) -> Iterator[Path]:
    """The drift portfolio in the live deployment's folder, with seeded history; removed after."""
    from rebalance.drift.record import DriftRecord, WatchAction, WatchStatus
    from rebalance.history.database import engine_for
    from rebalance.history.store import HistoryStore

    folder = Path(live_airflow.env["REBALANCE_PORTFOLIOS_DIR"])
    data = yaml.safe_load((folder / "demo.yaml").read_text())
    data.update(
        name=NAME,
        trigger={"mode": "drift", "watch_time": "10:05", "min_trading_days_between": 5},
        execution={"mode": "paper", "approval": "auto"},
    )
    path = folder / f"{PORTFOLIO}.yaml"
    store = HistoryStore(engine_for(live_airflow.history_url))
    today = dt.datetime.now(IST).date()
    for back, total, peak in SEEDED:
        day = today - dt.timedelta(days=back)
        store.save_drift_record(
            DriftRecord(
                portfolio_id=PORTFOLIO,
                account="paper",
                broker="paper",
                day=day,
                taken_at=dt.datetime.combine(day, dt.time(10, 5), IST),
                status=WatchStatus.READ,
                total_drift=total,
                max_drift=peak,
                max_drift_symbol="ITC",
                band_abs_pct=2.0,
                band_rel_pct=15.0,
                action=WatchAction.INSIDE_BANDS,
                action_reason="inside bands, nothing to do",
            )
        )
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def test_a_breach_triggers_one_run_and_the_page_charts_the_drift(
    live_airflow: Any, drift_portfolio: Path, chromium: str
) -> None:
    airflow = live_airflow
    today = dt.datetime.now(IST).date()

    # The dag-processor picks up the new file: the rebalance DAG, scheduled on its asset alone,
    # and the watch DAG of 10:05 that reads this portfolio.
    def parsed() -> bool:
        dags = {d: airflow.request("GET", f"/api/v2/dags/{d}") for d in (DAG_ID, WATCH_DAG)}
        if any(r.status_code != 200 for r in dags.values()):
            return False
        rebalance, watch = (dags[d].json() for d in (DAG_ID, WATCH_DAG))
        return (
            "asset" in str(rebalance["timetable_summary"]).lower()
            and not rebalance["is_paused"]
            and PORTFOLIO in (watch["description"] or "")
        )

    wait_for("the drift portfolio's DAGs", parsed, airflow)
    assert dag_runs(airflow, DAG_ID) == []

    # 1. The watch finds the breach: one event, and the scheduler makes exactly one run of it.
    _, first = run_watch(airflow)
    assert first == {PORTFOLIO: "trigger"}
    (event,) = watch_events(airflow)
    assert event["extra"]["trigger"] == "drift"
    assert event["extra"]["portfolio_id"] == PORTFOLIO
    assert event["extra"]["day"] == str(today)
    assert event["asset_id"]
    (run,) = wait_for("the asset-triggered run", lambda: dag_runs(airflow, DAG_ID), airflow)
    assert run["run_type"] == "asset_triggered"
    run_id = run["dag_run_id"]
    upstream = airflow.api(
        "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/upstreamAssetEvents"
    )["asset_events"]
    assert [e["id"] for e in upstream] == [event["id"]]
    (breach,) = [e["extra"] for e in upstream]
    assert "outside band" in breach["reason"]
    assert "a rebalance run is triggered" in breach["reason"]
    (account,) = breach["accounts"]
    symbols = [s["symbol"] for s in account["symbols"]]
    assert "ITC" in symbols
    assert airflow.wait_run_finished(DAG_ID, run_id, timeout=300) == "success"
    tis = {
        ti["task_id"]: ti["state"]
        for ti in airflow.api(
            "GET",
            f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances",
            params={"limit": 100},
        )["task_instances"]
    }
    assert tis["paper.fetch_holdings"] == "success"
    assert tis["paper.record_run"] == "success"
    record = airflow.history_run(DAG_ID, run_id)
    assert record.initiator == "drift"
    assert (record.trigger_event or {})["day"] == str(today)
    assert (record.trigger_event or {})["accounts"][0]["symbols"][0]["symbol"] == symbols[0]
    wait_for("the breach alert", lambda: breach_alerts(airflow), airflow, timeout=30)

    # 2. A second watch the same day: too soon (the rule), no event, no run, no second alert.
    _, second = run_watch(airflow)
    assert second == {PORTFOLIO: "too_soon"}
    time.sleep(15)  # a few scheduler loops: a stray event would have become a run by now
    assert len(watch_events(airflow)) == 1
    assert [r["dag_run_id"] for r in dag_runs(airflow, DAG_ID)] == [run_id]
    (alert,) = breach_alerts(airflow)
    assert "a rebalance run has been triggered" in alert

    # 3. The Rebalance page in Chromium: the chart, the card's next watch, the run's breach.
    from playwright.sync_api import expect, sync_playwright

    seeded_days = [today - dt.timedelta(days=back) for back, _, _ in SEEDED]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(f"{airflow.url}/rebalance/")
            page.get_by_role("link", name="Sign in to Airflow").click()
            page.fill("input[name=username]", airflow.user)
            page.fill("input[name=password]", airflow.password)
            page.click("button[type=submit]")
            page.wait_for_url(lambda url: "/auth/" not in url and "/login" not in url)

            page.goto(f"{airflow.url}/rebalance/?portfolio={PORTFOLIO}")
            card = page.locator(f"[data-portfolio='{PORTFOLIO}']")
            expect(card).to_contain_text("Next drift watch")
            expect(card).to_contain_text("rebalances when a band is breached")
            expect(card).to_contain_text("10:05 IST")
            chart = page.locator("#drift-chart")
            expect(chart).to_be_visible()
            box = chart.bounding_box()
            assert box is not None
            assert box["width"] > 300
            assert box["height"] > 150
            # one account: one line of total drift, one of max drift, a point a day
            assert chart.locator("polyline.total_drift").count() == 1
            assert chart.locator("polyline.max_drift").count() == 1
            points = chart.locator("polyline.total_drift").get_attribute("points") or ""
            assert len(points.split()) == len(SEEDED) + 1  # the seeded days and today's watch
            titles = chart.locator("circle title").all_text_contents()
            assert f"{seeded_days[0]} paper total drift 4.00%" in titles
            assert f"{seeded_days[-1]} paper max drift 1.40%" in titles
            assert any(t.startswith(f"{today} paper total drift ") for t in titles)
            # the band, and today's rebalance marked
            expect(chart).to_contain_text("band 2.00%")
            marks = chart.locator("line.rebalance title").all_text_contents()
            assert marks == [f"rebalance {today}"]
            expect(chart).to_contain_text("total drift")
            expect(chart).to_contain_text("max drift")
            chart.screenshot(path=str(airflow.artifacts / "20-drift-chart.png"))
            page.screenshot(path=str(airflow.artifacts / "21-drift-page.png"), full_page=True)

            # The run's detail: the breach that triggered it.
            page.locator(f"tr[data-run='{record.id}']").get_by_role(
                "link", name="View details"
            ).click()
            expect(page.get_by_role("heading", name="Started by a drift breach")).to_be_visible()
            expect(page.locator("#breach")).to_contain_text(f"The drift watch of {today} found")
            expect(page.locator("body")).to_contain_text(f"paper: {symbols[0]} ")
            page.screenshot(path=str(airflow.artifacts / "22-drift-run.png"), full_page=True)
        finally:
            browser.close()
