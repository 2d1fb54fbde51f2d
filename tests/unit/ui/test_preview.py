"""The card's Preview, Run now, following a run and the history CSV (issue 20), through the app
with FastAPI's TestClient against a real history database and the demo portfolio's paper account.

Airflow's REST API is a recording ``httpx.MockTransport`` here (what we send it: the path, the
user's token, the conf); the browser test drives a real Airflow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from rebalance.history.status import RunStatus
from rebalance.history.store import HistoryStore, RunKey
from rebalance.ui.app import Viewer, create_app, viewer
from rebalance.ui.whatif import SnapshotCache, WhatIf, plan_differences

TOKEN = "user-jwt-123"
HOST = "testserver"


class FakeAirflow:
    """Records the calls; answers like Airflow's API."""

    def __init__(self) -> None:
        self.calls: list[httpx.Request] = []
        self.refuse = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        if self.refuse:
            return httpx.Response(403, json={"detail": "Forbidden"})
        if request.method == "POST":
            body = json.loads(request.content)
            return httpx.Response(200, json={"dag_run_id": body["dag_run_id"], "state": "queued"})
        if request.method == "PATCH":
            return httpx.Response(200, json={"chosen_options": ["Approve"]})
        return httpx.Response(200, json={"state": "running"})

    def client(self) -> httpx.Client:
        return httpx.Client(base_url="http://airflow", transport=httpx.MockTransport(self.handler))


def make_client(airflow: FakeAirflow, may_trigger: bool = True, name: str = "tester") -> TestClient:
    app = create_app()
    app.dependency_overrides[viewer] = lambda: Viewer(name=name, can_read=lambda ids: set(ids))
    app.state.can_trigger = lambda dag_id: may_trigger
    app.state.airflow_client = airflow.client
    client = TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"})
    return client


@pytest.fixture
def airflow() -> FakeAirflow:
    return FakeAirflow()


@pytest.fixture
def client(history_db: str, airflow: FakeAirflow) -> Iterator[TestClient]:
    with make_client(airflow) as c:
        yield c


def open_run(store: HistoryStore, airflow_run_id: str, account: str = "paper") -> int:
    return store.open_run(
        RunKey("rebalance_demo", airflow_run_id, account),
        portfolio_id="demo",
        portfolio_name="Demo",
        broker="paper",
        initiator="manual",
        broker_scope="paper",
        mode="paper",
        policy={},
        targets={"weights": {}, "cash": 0.0},
    )


def trades(html: str) -> int:
    found = re.search(r"id='trade-count'>(\d+)<", html)
    assert found, html[-2000:]
    return int(found.group(1))


def csrf(html: str) -> str:
    found = re.search(r"name='csrf' value='([0-9a-f]+)'", html)
    assert found
    return found.group(1)


def test_preview_plans_the_demo_portfolio_without_a_run(
    client: TestClient, store: HistoryStore, airflow: FakeAirflow
) -> None:
    page = client.get("/preview/demo")
    assert page.status_code == 200, page.text
    html = page.text
    assert "id='preview-orders'" in html
    assert trades(html) > 0
    assert "read now from the broker" in html
    assert "<svg" in html  # the weights chart
    assert "id='run-now'" in html
    assert re.search(r"id='plan-solver'>(optimiser \(MILP\)|heuristic)", html)
    assert store.runs(limit=10) == []  # no history run
    assert airflow.calls == []  # no DAG run


def test_changing_the_budget_re_plans_from_the_kept_snapshot(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rebalance.ui import whatif

    base = client.get("/preview/demo", params={"budget": "10"}).text
    reads: list[str] = []
    monkeypatch.setattr(whatif, "read_fresh_snapshot", lambda *a: reads.append("read"))
    small = client.get("/preview/demo", params={"budget": "1"}).text
    assert reads == []  # the kept snapshot served the re-plan
    assert "id='problem'" not in small
    assert small != base
    assert trades(small) <= trades(base)
    buys = client.get("/preview/demo", params={"budget": "10", "trade_filter": "buys_only"}).text
    assert "data-side='SELL'" not in buys
    assert "data-side='BUY'" in buys


def test_a_bad_parameter_is_a_400_naming_it(client: TestClient) -> None:
    page = client.get("/preview/demo", params={"max_trades": "2.5"})
    assert page.status_code == 400
    assert "max_trades" in page.text
    assert "id='run-now'" not in page.text
    assert client.get("/preview/nope").status_code == 404


def test_stored_snapshot_shows_its_age_or_says_there_is_none(
    client: TestClient, store: HistoryStore
) -> None:
    html = client.get("/preview/demo", params={"source": "stored"}).text
    assert "no stored snapshot of paper yet" in html
    from rebalance.ui.preview_routes import find_portfolio
    from rebalance.ui.whatif import read_fresh_snapshot

    portfolio, path = find_portfolio("demo")
    snap = read_fresh_snapshot(portfolio, str(path), portfolio.accounts[0])
    run_id = open_run(store, "manual__x", "paper")
    store.update_run(run_id, snapshot=snap.to_records())
    html = client.get("/preview/demo", params={"source": "stored", "refresh": "1"}).text
    assert "last stored snapshot" in html
    assert re.search(r"\(\d+ s old\)", html)
    assert trades(html) > 0


def test_run_now_triggers_the_dag_as_the_user_with_exactly_the_previewed_params(
    client: TestClient, airflow: FakeAirflow
) -> None:
    query = {"budget": "7", "max_trades": "4", "trade_filter": "buys_only"}
    html = client.get("/preview/demo", params=query).text
    form = dict(re.findall(r"<input type='hidden' name='([a-z_]+)' value='([^']*)'>", html))
    reply = client.post(
        "/preview/demo/run", data=form, headers={"Origin": f"http://{HOST}"}, follow_redirects=False
    )
    assert reply.status_code == 303, reply.text
    assert reply.headers["location"].startswith("/follow/rebalance_demo/preview__")
    (call,) = airflow.calls
    assert call.method == "POST"
    assert call.url.path == "/api/v2/dags/rebalance_demo/dagRuns"
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    conf = json.loads(call.content)["conf"]
    assert conf["rebalance_budget_pct"] == 7
    assert conf["max_trades"] == 4
    assert conf["trade_filter"] == "buys_only"
    assert conf["rebalance_budget_inr"] is None
    assert conf["accounts"] == ["paper"]


def test_a_forged_trigger_is_refused_before_airflow_is_called(
    client: TestClient, airflow: FakeAirflow
) -> None:
    html = client.get("/preview/demo").text
    token = csrf(html)
    other_site = client.post(
        "/preview/demo/run", data={"csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert other_site.status_code == 403
    no_origin = client.post("/preview/demo/run", data={"csrf": token})
    assert no_origin.status_code == 403
    wrong_token = client.post(
        "/preview/demo/run", data={"csrf": "0" * 64}, headers={"Origin": f"http://{HOST}"}
    )
    assert wrong_token.status_code == 403
    other_session = client.post(
        "/preview/demo/run",
        data={"csrf": token},
        headers={"Origin": f"http://{HOST}", "Authorization": "Bearer someone-else"},
    )
    assert other_session.status_code == 403
    assert airflow.calls == []


def test_a_read_only_user_sees_no_buttons_and_cannot_trigger(
    history_db: str, airflow: FakeAirflow
) -> None:
    with make_client(airflow, may_trigger=False) as c:
        overview = c.get("/").text
        assert "History</a>" in overview
        assert "Preview rebalance" not in overview
        assert c.get("/preview/demo").status_code == 403
        from types import SimpleNamespace

        from rebalance.ui.actions import csrf_token

        req = SimpleNamespace(headers={"authorization": f"Bearer {TOKEN}"}, cookies={})
        token = csrf_token(req)  # type: ignore[arg-type]
        refused = c.post(
            "/preview/demo/run", data={"csrf": token}, headers={"Origin": f"http://{HOST}"}
        )
        assert refused.status_code == 403
    assert airflow.calls == []


def test_airflow_refusing_the_trigger_is_shown_not_hidden(
    client: TestClient, airflow: FakeAirflow
) -> None:
    token = csrf(client.get("/preview/demo").text)
    airflow.refuse = True
    reply = client.post(
        "/preview/demo/run", data={"csrf": token}, headers={"Origin": f"http://{HOST}"}
    )
    assert reply.status_code == 403
    assert "Airflow refused the run" in reply.text


def test_follow_shows_the_approval_its_difference_and_answers_it_as_the_user(
    client: TestClient, store: HistoryStore, airflow: FakeAirflow
) -> None:
    run_id = open_run(store, "manual__r1", "paper")
    plan: dict[str, Any] = {
        "orders": [
            {
                "symbol": "TCS",
                "exchange": "NSE",
                "side": "BUY",
                "quantity": 3,
                "price": 4000.0,
                "notional": 12000.0,
                "reasons": ["drift"],
            }
        ],
        "positions": [],
        "summary": {
            "portfolio_value": 1e6,
            "turnover_pct": 1.2,
            "budget_used_pct": 12.0,
            "max_drift_before": 0.03,
            "max_drift_after": 0.02,
            "trades": 1,
            "estimated_charges": 15.0,
        },
    }
    store.transition(run_id, RunStatus.PLANNED, "1 order", plan=plan)
    store.transition(run_id, RunStatus.AWAITING_APPROVAL)
    client.app.state.previewed[("rebalance_demo", "manual__r1")] = {  # type: ignore[attr-defined]
        "paper": {"orders": [dict(plan["orders"][0], quantity=2)]}
    }
    html = client.get("/follow/rebalance_demo/manual__r1").text
    assert "awaiting_approval" in html
    assert "BUY TCS: 2 in the preview, 3 now" in html
    assert "id='approve-paper'" in html
    assert "http-equiv='refresh'" in html
    reply = client.post(
        "/follow/rebalance_demo/manual__r1/answer",
        data={"csrf": csrf(html), "account": "paper", "decision": "approve"},
        headers={"Origin": f"http://{HOST}"},
        follow_redirects=False,
    )
    assert reply.status_code == 303
    patch = [c for c in airflow.calls if c.method == "PATCH"]
    assert len(patch) == 1
    assert patch[0].url.path.endswith("/taskInstances/paper.approval/-1/hitlDetails")
    assert patch[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(patch[0].content)["chosen_options"] == ["Approve"]


def test_history_filters_and_csv_export(client: TestClient, store: HistoryStore) -> None:
    for i, account in enumerate(("paper", "other")):
        run = open_run(store, f"manual__{i}", account)
        if i:
            store.transition(run, RunStatus.FAILED, "=cmd|' /C calc'!A0")
    html = client.get("/", params={"account": "other"}).text
    assert html.count("<tr data-run=") == 1
    assert client.get("/", params={"status": "failed"}).text.count("<tr data-run=") == 1
    assert client.get("/", params={"since": "2999-01-01"}).text.count("<tr data-run=") == 0
    csv = client.get("/history.csv", params={"kind": "runs", "account": "paper"})
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0].startswith("id,created_at,portfolio_id,account")
    assert len(lines) == 2
    orders = client.get("/history.csv", params={"kind": "orders"})
    assert orders.text.startswith("run_id,leg,symbol")
    assert client.get("/history.csv", params={"kind": "x"}).status_code == 400
    assert client.get("/", params={"since": "not-a-date"}).status_code == 400


def test_whatif_conf_budget_in_rupees_and_broker_choice() -> None:
    from rebalance.portfolio import load_portfolio
    from rebalance.settings import portfolios_dir

    portfolio = load_portfolio(portfolios_dir() / "demo.yaml")
    w = WhatIf.parse(portfolio, {"budget_kind": "inr", "budget": "25000", "broker": "zerodha"})
    conf = w.conf(portfolio)
    assert conf["rebalance_budget_inr"] == 25000
    assert conf["rebalance_budget_pct"] == portfolio.policy.rebalance_budget_pct
    assert conf["accounts"] == ["paper"]  # a paper account is at every broker choice


def test_snapshot_cache_forgets_after_its_ttl() -> None:
    now = [0.0]
    cache = SnapshotCache(ttl=10, clock=lambda: now[0])
    key = ("u", "p", "a", "fresh")
    cache.put(key, object(), "fresh")  # type: ignore[arg-type]
    assert cache.get(key) is not None
    now[0] = 11
    assert cache.get(key) is None


def test_plan_differences_name_each_changed_order() -> None:
    order = {"symbol": "INFY", "side": "SELL", "quantity": 5}
    assert plan_differences({"orders": [order]}, {"orders": [order]}) == [
        "the same orders as the preview"
    ]
    lines = plan_differences({"orders": [order]}, {"orders": []})
    assert lines == ["SELL 5 INFY: in the preview, not in the run's plan"]
    assert "nothing to compare" in plan_differences(None, {"orders": []})[0]


def test_last_runs_is_the_newest_run_of_each_portfolio_in_one_query(store: HistoryStore) -> None:
    from sqlalchemy import event

    older = open_run(store, "manual__a")
    newer = open_run(store, "manual__b")
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    found = store.last_runs(["demo", "nothing_yet"])
    assert len(statements) == 1
    assert "LATERAL" in statements[0]
    assert set(found) == {"demo"}
    assert found["demo"].id == max(older, newer)
    assert store.last_runs([]) == {}


def test_cards_are_paged(
    history_db: str, airflow: FakeAirflow, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rebalance.settings import portfolios_dir
    from rebalance.ui import app as app_module

    demo = (portfolios_dir() / "demo.yaml").read_text()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "demo_holdings.csv").write_bytes(
        (portfolios_dir() / "data" / "demo_holdings.csv").read_bytes()
    )
    for i in range(5):
        (tmp_path / f"p{i}.yaml").write_text(demo)
    monkeypatch.setenv("REBALANCE_PORTFOLIOS_DIR", str(tmp_path))
    monkeypatch.setattr(app_module, "CARDS_PER_PAGE", 2)
    with make_client(airflow) as c:
        first = c.get("/").text
        assert first.count("data-portfolio=") == 2
        assert "id='card-pages'" in first
        last = c.get("/", params={"page": "3"}).text
        assert last.count("data-portfolio=") == 1
        assert "data-portfolio='p4'" in last


def test_a_snapshot_failing_the_pipelines_pandera_schema_is_no_plan() -> None:
    from datetime import UTC, datetime

    import pandas as pd

    from rebalance.holdings_file import COLUMNS
    from rebalance.snapshot import HoldingsSnapshot
    from rebalance.ui.whatif import PreviewError, validated

    rows = [{"symbol": "INFY", "exchange": "NSE", "quantity": -5, "last_price": 1500.0}]
    frame = pd.DataFrame(rows).reindex(columns=list(COLUMNS))
    snapshot = HoldingsSnapshot(frame, 1000.0, datetime.now(UTC), "paper", "paper")
    with pytest.raises(PreviewError, match="quantity"):
        validated(snapshot, "paper snapshot")
