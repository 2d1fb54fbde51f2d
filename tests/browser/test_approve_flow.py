"""End to end in headless Chromium against a live Airflow (``testing.live_airflow``).

1. the browser test: trigger the demo DAG with params, see the waiting-approval notice reach the
   webhook (link, cut-off in IST, who may answer), sign in to the Airflow UI, approve the plan
   by clicking Approve in Required Actions (as the portfolio's approver), see that a user who is
   not a portfolio's approver cannot answer, then see the placed orders and the run on the
   Rebalance page, and inside the Airflow UI at /plugin/rebalance click every link of the page
   and check where it lands; screenshots under ``artifacts/browser/``;
2. ``rebalance approve RUN --no`` then ``--yes`` on the same live Airflow, with its error cases.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

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
    guarded_run = airflow.trigger(GUARDED, PARAMS)
    waiting = airflow.history_run(dag_id, run_id, status="awaiting_approval")
    assert waiting.trades > 0
    airflow.history_run(GUARDED, guarded_run, status="awaiting_approval")

    # The waiting approval reached a person: the webhook has the link, the cut-off and who.
    notice = waiting_notice(airflow, "Demo Nifty Ten")
    required_actions = f"/dags/{dag_id}/runs/{run_id}/tasks/paper.approval/required_actions"
    assert f"approve or reject: {airflow.url}{required_actions}?map_index=-1" in notice
    assert re.search(r"answer by: \d{4}-\d\d-\d\d \d\d:\d\d IST", notice), notice
    assert f"who may answer: {airflow.user}" in notice
    assert f"rebalance approve {waiting.id} --yes|--no" in notice
    assert "who may answer: asha" in waiting_notice(airflow, "Demo Guarded")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            # Without signing in, the Rebalance page is refused; its link leads to the sign-in.
            refused = page.goto(f"{airflow.url}/rebalance/")
            assert refused is not None
            assert refused.status == 401
            page.get_by_role("link", name="Sign in to Airflow").click()
            page.fill("input[name=username]", airflow.user)
            page.fill("input[name=password]", airflow.password)
            page.click("button[type=submit]")
            page.wait_for_url(lambda url: "/auth/" not in url and "/login" not in url)
            page.goto(f"{airflow.url}/")
            shot(page, airflow, "01-airflow-home")
            # docs/ui.md: Airflow's UI shows times in the browser's zone; switch it to IST.
            page.get_by_text(re.compile(r"^[+-]\d\d:\d\d$")).first.click()
            dialog = page.get_by_role("dialog")
            expect(dialog).to_contain_text("Select Timezone")
            # Chromium lists India's zone under its old ICU name, Asia/Calcutta
            dialog.get_by_role("combobox").first.fill("Calcutta")
            page.keyboard.press("Enter")
            expect(dialog).to_contain_text("Asia/Calcutta")
            shot(page, airflow, "09-timezone-ist")
            page.keyboard.press("Escape")
            expect(page.get_by_text("+05:30").first).to_be_visible()

            # Required Actions of the lane's approval task: the preview, then Approve.
            page.goto(f"{airflow.url}{required_actions}")
            approve = page.get_by_role("button", name="Approve")
            approve.wait_for()
            expect(page.get_by_text("Plan hash")).to_be_visible()
            expect(page.get_by_text(re.compile(r"Answer by .* IST"))).to_be_visible()
            expect(page.get_by_text("Who may answer:")).to_be_visible()
            shot(page, airflow, "02-required-actions")
            approve.click()
            expect(page.get_by_text("response successful")).to_be_visible()
            shot(page, airflow, "03-approved")

            assert airflow.wait_run_finished(dag_id, run_id) == "success"
            record = airflow.history_run(dag_id, run_id)
            assert record.status == "completed"
            assert record.approval_decision == "approved"
            assert record.approved_by == airflow.user

            # Someone who is not among a portfolio's approvers sees the request, cannot answer.
            guarded = f"/dags/{GUARDED}/runs/{guarded_run}/tasks/paper.approval/required_actions"
            page.goto(f"{airflow.url}{guarded}")
            page.get_by_role("button", name="Approve").click()
            expect(page.get_by_text("Access Denied")).to_be_visible()  # Airflow's API said 403
            shot(page, airflow, "08-not-an-approver")
            detail = airflow.api("GET", hitl_path(GUARDED, guarded_run))
            assert detail["assigned_users"] == [{"id": "asha", "name": "asha"}]
            assert detail["response_received"] is False
            refused_answer = airflow.request(
                "PATCH",
                hitl_path(GUARDED, guarded_run),
                json={"chosen_options": ["Approve"], "params_input": {}},
            )
            assert refused_answer.status_code == 403
            assert "not a respondent" in refused_answer.text
            assert airflow.history_run(GUARDED, guarded_run).status == "awaiting_approval"

            # The Rebalance page on its own: the portfolio card and the run, times in IST.
            page.goto(f"{airflow.url}/rebalance/")
            row = page.locator(f"tr[data-run='{record.id}']")
            expect(row).to_contain_text("completed")
            expect(row).to_contain_text(" IST")
            expect(page.locator("[data-portfolio='demo']")).to_contain_text("Next rebalance")
            shot(page, airflow, "04-rebalance-page")

            # The run's detail: orders placed with their outcome, the weights chart.
            row.get_by_role("link", name="View details").click()
            orders = page.locator("#orders")
            expect(orders).to_contain_text("complete")
            assert orders.locator("tr").count() == record.trades + 1
            chart = page.locator("#weights-chart")
            expect(chart).to_be_visible()
            assert chart.evaluate("img => img.naturalWidth") > 0
            assert page.locator("#approval").get_attribute("href") == required_actions
            shot(page, airflow, "05-run-detail")

            # Inside the Airflow UI (the plugin's menu entry, a sandboxed iframe): click every
            # link of the overview and of the run detail, and see where each one lands.
            page.goto(f"{airflow.url}/plugin/rebalance")
            frame = page.frame_locator("iframe")
            expect(frame.locator(f"tr[data-run='{record.id}']")).to_be_visible()
            shot(page, airflow, "06-rebalance-in-airflow-ui")
            clicked: set[str] = set()
            for view in ("/rebalance/", f"/rebalance/runs/{record.id}"):
                clicked |= click_every_link(page, airflow, view, clicked, record)
            expected = {
                f"/dags/{dag_id}",
                f"/dags/{dag_id}/runs/{run_id}",
                required_actions,
                f"/rebalance/runs/{record.id}",
                "/rebalance/?portfolio=demo",
                "/rebalance/",
            }
            assert expected <= clicked, expected - clicked
            page.goto(f"{airflow.url}/plugin/rebalance/rebalance/runs/{record.id}")
            page.frame_locator("iframe").locator("#airflow-run").click()
            page.wait_for_url(lambda url: same_path(url, f"/dags/{dag_id}/runs/{run_id}"))
            expect(page.get_by_text(run_id).first).to_be_visible()
            shot(page, airflow, "07-airflow-run")
        finally:
            browser.close()


GUARDED = "rebalance_demo_guarded"  # its one approver, asha, is not the signed-in admin


def hitl_path(dag_id: str, run_id: str) -> str:
    run = quote(run_id, safe="")
    return f"/api/v2/dags/{dag_id}/dagRuns/{run}/taskInstances/paper.approval/-1/hitlDetails"


def waiting_notice(airflow: Any, portfolio: str, timeout: float = 30) -> str:
    """The webhook message that an approval of ``portfolio`` waits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for body in list(airflow.webhook):
            if body["text"].startswith(f"Rebalance approval waiting: {portfolio} /"):
                return str(body["text"])
        time.sleep(0.5)
    raise AssertionError(f"no waiting-approval message for {portfolio}: {airflow.webhook}")


def same_path(url: str, href: str) -> bool:
    """``url`` (where the window is) is the page ``href`` names (path and query, unquoted)."""
    got, want = urlsplit(url), urlsplit(href)
    return (unquote(got.path), got.query) == (unquote(want.path), want.query)


def click_every_link(
    page: Any, airflow: Any, view: str, done: set[str], record: dict[str, Any]
) -> set[str]:
    """Open ``view`` inside the Airflow UI, click each of its links not clicked yet, check each.

    A link into Airflow must replace the whole window (not open Airflow inside the frame); a
    link of the page must open the page in the frame (Airflow mirrors it as /plugin/rebalance/...).
    """
    from playwright.sync_api import expect

    inside = f"{airflow.url}/plugin/rebalance{view}"
    page.goto(inside)
    frame = page.frame_locator("iframe")
    frame.locator("h1").first.wait_for()
    links = frame.locator("a").evaluate_all(
        "links => links.map(a => [a.getAttribute('href'), a.hasAttribute('data-airflow')])"
    )
    clicked: set[str] = set()
    for index, (href, into_airflow) in enumerate(links):
        if href in done or href in clicked:
            continue
        clicked.add(href)
        if page.url != inside:
            page.goto(inside)
            page.frame_locator("iframe").locator("h1").first.wait_for()
        link = page.frame_locator("iframe").locator("a").nth(index)
        if "/history.csv" in href:  # the history's CSV export: a download, the page stays
            with page.expect_download() as download:
                link.click()
            assert download.value.suggested_filename.startswith("rebalance-"), href
            continue
        link.click()
        if into_airflow:
            page.wait_for_url(lambda url, href=href: same_path(url, href))
            expect(page.get_by_text(href.split("/")[2]).first).to_be_visible()  # the DAG id
            expect(page.get_by_text(re.compile("page not found", re.I))).to_have_count(0)
        else:
            page.wait_for_url(lambda url, href=href: same_path(url, "/plugin/rebalance" + href))
            heading = page.frame_locator("iframe").locator("h1")
            if "/runs/" in href:
                expect(heading).to_contain_text(f"Run {href.rsplit('/', 1)[1]}:")
            elif "/preview/" in href:  # the card's Preview rebalance (test_preview_flow.py)
                expect(heading).to_contain_text("Preview:")
            else:
                expect(heading).to_have_text("Rebalance")
    return clicked


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
    wrong = rebalance(airflow, "approve", str(waiting.id), "--yes", "--password", "nope")
    assert wrong.returncode == 2, wrong.stderr
    assert "refused the credentials" in wrong.stderr
    down = rebalance(
        airflow, "approve", str(waiting.id), "--yes", "--api-url", "http://127.0.0.1:9"
    )
    assert down.returncode == 1, down.stderr
    assert "unreachable" in down.stderr

    no = rebalance(airflow, "approve", str(waiting.id), "--no")
    assert no.returncode == 0, no.stderr
    assert "rejected" in no.stdout
    # A rejection is a decision, not a failure: the lane is skipped, the DAG run succeeds.
    state = airflow.wait_run_finished(dag_id, first)
    tis = airflow.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{first}/taskInstances")
    task_states = {t["task_id"]: t["state"] for t in tis["task_instances"]}
    assert state == "success", task_states
    rejected = airflow.history_run(dag_id, first)
    assert rejected.status == "rejected"
    assert rejected.approval_decision == "rejected"
    again = rebalance(airflow, "approve", str(waiting.id), "--yes")
    assert again.returncode == 2
    assert "not awaiting approval" in again.stderr

    second = airflow.trigger(dag_id, PARAMS)
    waiting = airflow.history_run(dag_id, second, status="awaiting_approval")
    yes = rebalance(airflow, "approve", str(waiting.id), "--yes")
    assert yes.returncode == 0, yes.stderr
    assert f"run {waiting.id}: approved as {airflow.user}" in yes.stdout
    assert airflow.wait_run_finished(dag_id, second) == "success"
    done = airflow.history_run(dag_id, second)
    assert done.status == "completed"
    assert done.approval_decision == "approved"
