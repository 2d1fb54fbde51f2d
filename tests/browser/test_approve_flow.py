"""End to end in headless Chromium against a live local Airflow (``rebalance airflow``).

1. the browser test: trigger the demo DAG with params, sign in to the Airflow UI, approve the plan
   by clicking Approve in Required Actions, then see the placed orders and the run on the
   Rebalance page (also inside the Airflow UI at /plugin/rebalance); screenshots under
   ``artifacts/browser/``;
2. ``rebalance approve RUN --no`` then ``--yes`` on the same live Airflow, with its error cases.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PARAMS = {"mode": "paper", "max_trades": 8, "trade_filter": "both"}


def shot(page: Any, airflow: Any, name: str) -> Path:
    path = airflow.artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_approve_in_required_actions_then_see_the_run_on_the_rebalance_page(
    live_airflow: Any, chromium: str
) -> None:
    from playwright.sync_api import expect, sync_playwright

    airflow = live_airflow
    dag_id = "rebalance_demo"
    run_id = airflow.trigger(dag_id, PARAMS)
    waiting = airflow.history_run(dag_id, run_id, status="awaiting_approval")
    assert waiting["trades"] > 0

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            # Without signing in, the Rebalance page is refused.
            refused = page.goto(f"{airflow.url}/rebalance/")
            assert refused is not None
            assert refused.status == 401
            # Sign in through Airflow's own login form.
            page.goto(f"{airflow.url}/")
            page.fill("input[name=username]", airflow.user)
            page.fill("input[name=password]", airflow.password)
            page.click("button[type=submit]")
            page.wait_for_url(f"{airflow.url}/")
            shot(page, airflow, "01-airflow-home")

            # Required Actions of the lane's approval task: the preview, then Approve.
            page.goto(
                f"{airflow.url}/dags/{dag_id}/runs/{run_id}/tasks/paper.approval/required_actions"
            )
            approve = page.get_by_role("button", name="Approve")
            approve.wait_for()
            expect(page.get_by_text("Plan hash")).to_be_visible()
            shot(page, airflow, "02-required-actions")
            approve.click()
            expect(page.get_by_text("response successful")).to_be_visible()
            shot(page, airflow, "03-approved")

            assert airflow.wait_run_finished(dag_id, run_id) == "success"
            record = airflow.history_run(dag_id, run_id)
            assert record["status"] == "completed"
            assert record["approval_decision"] == "approved"
            assert record["approved_by"]

            # The Rebalance page: the portfolio card and the run in the history table.
            page.goto(f"{airflow.url}/rebalance/")
            row = page.locator(f"tr[data-run='{record['id']}']")
            expect(row).to_contain_text("completed")
            expect(page.locator("[data-portfolio='demo']")).to_contain_text("Next rebalance")
            shot(page, airflow, "04-rebalance-page")

            # The run's detail: orders placed with their outcome, the weights chart.
            row.get_by_role("link", name="View details").click()
            orders = page.locator("#orders")
            expect(orders).to_contain_text("complete")
            assert orders.locator("tr").count() == record["trades"] + 1
            chart = page.locator("#weights-chart")
            expect(chart).to_be_visible()
            assert chart.evaluate("img => img.naturalWidth") > 0
            assert page.locator("#approval").get_attribute("href") == (
                f"/dags/{dag_id}/runs/{run_id}/tasks/paper.approval/required_actions"
            )
            shot(page, airflow, "05-run-detail")

            # Inside the Airflow UI (the plugin's menu entry), then the link to the Airflow run.
            page.goto(f"{airflow.url}/plugin/rebalance")
            frame = page.frame_locator("iframe")
            expect(frame.locator(f"tr[data-run='{record['id']}']")).to_be_visible()
            shot(page, airflow, "06-rebalance-in-airflow-ui")
            page.goto(f"{airflow.url}/rebalance/runs/{record['id']}")
            page.locator("#airflow-run").click()
            page.wait_for_url(f"**/dags/{dag_id}/runs/**")
            expect(page.get_by_text(run_id).first).to_be_visible()
            shot(page, airflow, "07-airflow-run")
        finally:
            browser.close()


def rebalance(airflow: Any, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("rebalance")), *args]
    return subprocess.run(
        command,
        env={**airflow.env, "REBALANCE_AIRFLOW_API_URL": airflow.url, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_rebalance_approve_rejects_then_approves_through_the_api(
    live_airflow: Any,
) -> None:
    airflow = live_airflow
    dag_id = "rebalance_demo_cli"

    first = airflow.trigger(dag_id, PARAMS)
    waiting = airflow.history_run(dag_id, first, status="awaiting_approval")
    wrong = rebalance(airflow, "approve", str(waiting["id"]), "--yes", "--password", "nope")
    assert wrong.returncode == 2, wrong.stderr
    assert "refused the credentials" in wrong.stderr
    down = rebalance(
        airflow, "approve", str(waiting["id"]), "--yes", "--api-url", "http://127.0.0.1:9"
    )
    assert down.returncode == 1, down.stderr
    assert "unreachable" in down.stderr

    no = rebalance(airflow, "approve", str(waiting["id"]), "--no")
    assert no.returncode == 0, no.stderr
    assert "rejected" in no.stdout
    # A rejection is a decision, not a failure: the lane is skipped, the DAG run succeeds.
    state = airflow.wait_run_finished(dag_id, first)
    tis = airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{first}/taskInstances")
    task_states = {t["task_id"]: t["state"] for t in tis["task_instances"]}
    assert state == "success", task_states
    rejected = airflow.history_run(dag_id, first)
    assert rejected["status"] == "rejected"
    assert rejected["approval_decision"] == "rejected"
    again = rebalance(airflow, "approve", str(waiting["id"]), "--yes")
    assert again.returncode == 2
    assert "not awaiting approval" in again.stderr

    second = airflow.trigger(dag_id, PARAMS)
    waiting = airflow.history_run(dag_id, second, status="awaiting_approval")
    yes = rebalance(airflow, "approve", str(waiting["id"]), "--yes")
    assert yes.returncode == 0, yes.stderr
    assert f"run {waiting['id']}: approved as {airflow.user}" in yes.stdout
    assert airflow.wait_run_finished(dag_id, second) == "success"
    done = airflow.history_run(dag_id, second)
    assert done["status"] == "completed"
    assert done["approval_decision"] == "approved"
