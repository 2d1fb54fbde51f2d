"""Preview, what-if, Run now and approve from the Rebalance page, in headless Chromium, inside
the Airflow UI (``/plugin/rebalance``: the sandboxed iframe), against the session's live Airflow.

Done-when of issue 20: open the page, preview the demo portfolio, change the budget and see the
plan change, switch to buys only, Run now, approve from the page, see the orders complete; a
read-only user sees no buttons and a forged trigger request is refused. Screenshots under
``artifacts/browser/1x-*.png`` (docs/ui.md shows some of them).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from test_approve_flow import LAUNCH_ARGS, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DAG_ID = "rebalance_demo_preview"


def sign_in(page: Any, url: str, user: str, password: str) -> None:
    page.goto(f"{url}/rebalance/")
    page.get_by_role("link", name="Sign in to Airflow").click()
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/auth/" not in u and "/login" not in u)


def navigate(page: Any, locator: Any) -> None:
    """Click something that loads a new page into the Rebalance iframe, and wait for it."""
    (child,) = page.main_frame.child_frames
    with child.expect_navigation():
        locator.click()


def orders_text(frame: Any) -> str:
    return str(frame.locator("#preview-orders, #no-orders").first.inner_text())


def test_preview_change_budget_buys_only_run_now_and_approve_from_the_page(
    live_airflow: Any, chromium: str
) -> None:
    from playwright.sync_api import expect, sync_playwright

    airflow = live_airflow
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            sign_in(page, airflow.url, airflow.user, airflow.password)

            # Inside Airflow's UI: the page is the sandboxed iframe of /plugin/rebalance.
            page.goto(f"{airflow.url}/plugin/rebalance")
            frame = page.frame_locator("iframe")
            card = frame.locator("[data-portfolio='demo_preview']")
            expect(card).to_contain_text("Preview rebalance")
            navigate(page, card.get_by_role("link", name="Preview rebalance"))
            expect(frame.locator("#trade-count")).to_be_visible()
            expect(frame.locator("body")).to_contain_text("read now from the broker")
            first = orders_text(frame)
            assert "SELL" in first or "BUY" in first
            shot(page, airflow, "10-preview")

            # A smaller budget re-plans from the kept snapshot: the plan changes.
            budget_before = frame.locator("table.summary").first.inner_text()
            frame.locator("#budget").fill("2")
            navigate(page, frame.locator("#replan"))
            assert frame.locator("table.summary").first.inner_text() != budget_before
            second = orders_text(frame)
            assert second != first
            shot(page, airflow, "11-preview-budget-2")

            # Buys only: no sell in the plan.
            navigate(page, frame.locator("#filter-buys_only"))
            expect(frame.locator("#trade_filter")).to_have_value("buys_only")
            assert frame.locator("tr[data-side='SELL']").count() == 0
            assert frame.locator("tr[data-side='BUY']").count() > 0
            previewed_buys = frame.locator("tr[data-side='BUY']").count()
            shot(page, airflow, "12-preview-buys-only")

            # Run now: the DAG runs with exactly these Params; the page follows it.
            navigate(page, frame.locator("#run-now"))
            expect(frame.locator("#dag-state")).to_be_visible()
            approve = frame.locator("#approve-paper")
            approve.wait_for(timeout=120_000)
            expect(frame.locator("#plan-difference")).to_be_visible()
            shot(page, airflow, "13-follow-awaiting-approval")
            runs = airflow.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns")["dag_runs"]
            (run,) = runs
            assert run["conf"]["rebalance_budget_pct"] == 2
            assert run["conf"]["trade_filter"] == "buys_only"
            assert run["conf"]["accounts"] == ["paper"]

            navigate(page, approve)
            expect(frame.locator("#message")).to_contain_text("approved")
            expect(frame.locator("#lane-status-paper")).to_contain_text(
                re.compile("completed|placed"), timeout=120_000
            )
            expect(frame.locator("#orders")).to_contain_text("complete")
            assert frame.locator("#orders tr").count() - 1 >= 1
            assert frame.locator("#orders").inner_text().count("SELL") == 0
            assert previewed_buys > 0
            shot(page, airflow, "14-follow-orders-complete")
            assert airflow.wait_run_finished(DAG_ID, run["dag_run_id"]) == "success"
            record = airflow.history_run(DAG_ID, run["dag_run_id"])
            assert record.approved_by == airflow.user

            # A forged trigger: another site's Origin, or no form token, is refused.
            request = page.context.request
            forged = request.post(
                f"{airflow.url}/rebalance/preview/demo_preview/run",
                form={"budget": "50", "csrf": "0" * 64},
                headers={"Origin": "https://evil.example"},
            )
            assert forged.status == 403
            no_token = request.post(
                f"{airflow.url}/rebalance/preview/demo_preview/run",
                form={"budget": "50"},
                headers={"Origin": airflow.url},
            )
            assert no_token.status == 403
            assert len(airflow.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns")["dag_runs"]) == 1

            # A user who may only read: no buttons, and the preview and writes are refused.
            reader = browser.new_page(viewport={"width": 420, "height": 900})  # a narrow window
            reader.set_default_timeout(30_000)
            sign_in(reader, airflow.url, airflow.reader, airflow.reader_password)
            reader.goto(f"{airflow.url}/rebalance/")
            reader_card = reader.locator("[data-portfolio='demo_preview']")
            expect(reader_card).to_contain_text("History")
            expect(reader_card).not_to_contain_text("Preview rebalance")
            assert reader.locator("button, #run-now").count() == 1  # only the history filter
            shot(reader, airflow, "15-read-only-narrow")
            refused = reader.goto(f"{airflow.url}/rebalance/preview/demo_preview")
            assert refused is not None
            assert refused.status == 403
            follow = reader.goto(
                f"{airflow.url}/rebalance/follow/{DAG_ID}/{run['dag_run_id']}".replace("+", "%2B")
            )
            assert follow is not None
            assert follow.status == 200
            assert reader.locator("#approve-paper, #reject-paper").count() == 0
        finally:
            browser.close()
