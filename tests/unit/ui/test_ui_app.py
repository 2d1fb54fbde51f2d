"""The Rebalance page's handlers (FastAPI TestClient) against a real history database.

Authentication is Airflow's: ``viewer`` is overridden with a fixed user here, except in the tests
that check a request without a token is refused. The browser test covers a real Airflow login.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rebalance.domain.formatting import drift_change
from rebalance.history.records import RunRecord
from rebalance.history.status import OrderState, RunStatus
from rebalance.history.store import HistoryStore, RunKey
from rebalance.ui import render
from rebalance.ui.app import Viewer, create_app, viewer

PLAN = {
    "orders": [],
    "positions": [
        {"symbol": "INFY", "weight_before": 0.145, "target_weight": 0.10, "weight_after": 0.099},
        {"symbol": "TCS", "weight_before": 0.066, "target_weight": 0.10, "weight_after": 0.090},
        {"symbol": "<b>X</b>", "weight_before": 0.0, "target_weight": 0.0, "weight_after": 0.0},
    ],
    "summary": {"turnover_pct": 19.67, "max_drift_before": 0.045, "max_drift_after": 0.01},
}

LEGS = [
    {
        "leg": 0,
        "tag": "UITEST00000000A",
        "symbol": "INFY",
        "exchange": "NSE",
        "side": "SELL",
        "quantity": 30,
        "price": 1890.15,
        "notional": 56704.5,
        "reasons": ["drift", "budget_scaled"],
        "charges": 74.76,
    },
    {
        "leg": 1,
        "tag": "UITEST00000000B",
        "symbol": "TCS",
        "exchange": "NSE",
        "side": "BUY",
        "quantity": 7,
        "price": 4102.3,
        "notional": 28716.1,
        "reasons": ["drift"],
        "charges": 34.1,
    },
]


def make_run(store: HistoryStore, airflow_run_id: str, portfolio: str = "demo") -> int:
    run_id = store.open_run(
        RunKey(f"rebalance_{portfolio}", airflow_run_id, "paper"),
        portfolio_id=portfolio,
        portfolio_name="Demo Nifty Ten",
        broker="paper",
        initiator="manual",
        broker_scope="paper",
        mode="paper",
        policy={"rebalance_budget_pct": 10, "drift_band_abs_pct": 2, "drift_band_rel_pct": 15},
        targets={"weights": {"INFY": 0.5, "TCS": 0.5}, "cash": 0.0},
    )
    store.transition(
        run_id,
        RunStatus.PLANNED,
        "2 orders planned",
        plan=PLAN,
        turnover_pct=19.67,
        max_drift_before=0.045,
        max_drift_after=0.01,
        trades=2,
    )
    return run_id


@pytest.fixture
def runs(store: HistoryStore) -> dict[str, int]:
    placed = make_run(store, "manual__2026-11-26T05:11:11+05:30")
    store.transition(placed, RunStatus.AWAITING_APPROVAL)
    store.transition(placed, RunStatus.APPROVED, "approved by admin", approval_decision="approved")
    store.write_orders_ahead(placed, LEGS)
    store.transition(placed, RunStatus.PLACING)
    for leg in (0, 1):
        store.update_order(placed, leg, state=OrderState.SENT, broker_order_id=f"B{leg}")
        store.update_order(
            placed, leg, state=OrderState.COMPLETE, filled_quantity=LEGS[leg]["quantity"]
        )
    store.transition(placed, RunStatus.PLACED, "2 orders: 2 complete")
    waiting = make_run(store, "manual__2026-11-27T05:11:11+05:30")
    store.transition(waiting, RunStatus.AWAITING_APPROVAL)
    other = make_run(store, "manual__x", portfolio="secret")
    return {"placed": placed, "waiting": waiting, "other": other}


def client_for(can_read: Any = None) -> TestClient:
    app = create_app()
    allow = can_read or (lambda ids: set(ids))
    app.dependency_overrides[viewer] = lambda: Viewer(name="tester", can_read=allow)
    return TestClient(app)


@pytest.fixture
def client(history_db: str) -> Iterator[TestClient]:
    with client_for() as c:
        yield c


def test_overview_shows_portfolios_and_the_history_table(
    client: TestClient, runs: dict[str, int]
) -> None:
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    # the demo portfolio's card: next and last rebalance and last status (notes 8, 11.1)
    assert "data-portfolio='demo'" in html
    assert "Next rebalance" in html
    assert "15:10 IST" in html
    assert "awaiting_approval" in html
    # the history table of notes 11.3
    for column in ("run id", "created", "policy", "turnover", "drift reduced", "status"):
        assert f">{column}</th>" in html
    assert f"data-run='{runs['placed']}'" in html
    assert "19.67%" in html
    assert "4.50% → 1.00% (−3.50 pp)" in html
    assert "budget 10% · band 2%/15%" in html
    assert "signed in as tester" in html


def test_overview_filters_by_portfolio(client: TestClient, runs: dict[str, int]) -> None:
    html = client.get("/", params={"portfolio": "secret"}).text
    assert f"data-run='{runs['other']}'" in html
    assert f"data-run='{runs['placed']}'" not in html


def test_run_detail_has_orders_outcomes_chart_and_airflow_links(
    client: TestClient, runs: dict[str, int]
) -> None:
    page = client.get(f"/runs/{runs['placed']}")
    assert page.status_code == 200
    html = page.text
    assert "id='orders'" in html
    assert "INFY" in html
    assert "TCS" in html
    assert "complete" in html
    assert "30/30" in html  # filled / ordered
    assert "B0" in html  # broker order id
    assert f"src='/runs/{runs['placed']}/weights.svg'" in html
    run_href = "/dags/rebalance_demo/runs/manual__2026-11-26T05:11:11+05:30"
    assert f"href='{run_href}'" in html
    assert f"href='{run_href}/tasks/paper.approval/required_actions'" in html
    assert "approved by admin" in html
    assert "<td>Plan made by</td><td>" in html  # summary.solver of the stored plan


def test_weights_chart_is_an_svg_picture_per_symbol(
    client: TestClient, runs: dict[str, int]
) -> None:
    svg = client.get(f"/runs/{runs['placed']}/weights.svg")
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.startswith("<svg")
    assert "14.50% → 9.90%" in svg.text
    assert "&lt;b&gt;X&lt;/b&gt;" in svg.text  # escaped, never markup
    import xml.etree.ElementTree as ET

    ET.fromstring(svg.text)  # well-formed


def test_unknown_run_is_404(client: TestClient, runs: dict[str, int]) -> None:
    assert client.get("/runs/999999").status_code == 404
    assert client.get("/runs/999999/weights.svg").status_code == 404


def test_runs_of_dags_the_user_cannot_read_are_hidden(
    history_db: str, runs: dict[str, int]
) -> None:
    with client_for(lambda ids: {d for d in ids if d != "rebalance_secret"}) as c:
        assert c.get(f"/runs/{runs['other']}").status_code == 404
        assert c.get(f"/runs/{runs['other']}/weights.svg").status_code == 404
        html = c.get("/").text
        assert f"data-run='{runs['other']}'" not in html
        assert f"data-run='{runs['placed']}'" in html


def test_without_a_token_the_page_is_refused(history_db: str) -> None:
    with TestClient(create_app()) as c:
        assert c.get("/").status_code == 401
        assert c.get("/runs/1").status_code == 401
        html = c.get("/", headers={"accept": "text/html"})
        assert html.status_code == 401
        assert "Sign in to Airflow" in html.text


def test_drift_change_and_escaping() -> None:
    assert drift_change(0.05, 0.06) == "5.00% → 6.00% (+1.00 pp)"
    assert drift_change(None, None) == "-"
    row = dict.fromkeys(f.name for f in fields(RunRecord)) | {
        "id": 1,
        "portfolio_name": "<script>",
        "account": "a",
        "broker": "paper",
        "mode": "paper",
        "initiator": "manual",
        "policy": {},
        "status": "planned",
        "dag_id": "d",
        "airflow_run_id": "r",
    }
    assert "<script>" not in render.runs_table([RunRecord.from_row(row)], "")


def test_plugin_registers_the_app_and_menu_entry_without_importing_fastapi_app() -> None:
    import importlib
    import sys

    sys.modules.pop("rebalance.ui.app", None)
    sys.modules.pop("rebalance.ui", None)
    ui = importlib.import_module("rebalance.ui")
    assert "rebalance.ui.app" not in sys.modules
    assert ui.FASTAPI_APP["url_prefix"] == "/rebalance"
    assert ui.EXTERNAL_VIEW == {
        "name": "Rebalance",
        "href": "/rebalance/",
        "destination": "nav",
        "url_route": "rebalance",
    }


@pytest.fixture
def odd_folder(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A portfolios folder with the demo beside every kind of file the page must survive."""
    import os
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[3] / "portfolios"
    folder = tmp_path / "portfolios"
    folder.mkdir()
    shutil.copy(root / "demo.yaml", folder / "demo.yaml")
    shutil.copytree(root / "data", folder / "data")
    (folder / "!!!.yaml").write_text("name: bang\n")
    (folder / ("x" * 70 + ".yaml")).write_text("name: long\n")
    (folder / "broken.yaml").write_text("name: broken\ntargets: [[INFY]]\n")
    (folder / "latin.yaml").write_bytes(b"name: caf\xe9\n")
    (folder / "binary.yaml").write_bytes(bytes(range(256)))
    (folder / "deep.yaml").write_text("[" * 5000 + "]" * 5000)
    (folder / "big.yaml").write_text("# padding\n" * 200_000)
    os.mkfifo(folder / "pipe.yaml")  # reading it would block the page for good
    monkeypatch.setenv("REBALANCE_PORTFOLIOS_DIR", str(folder))
    return folder


def test_odd_portfolio_files_are_shown_as_problems_not_a_500(
    client: TestClient, runs: dict[str, int], odd_folder: Any
) -> None:
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    assert "data-portfolio='demo'" in html  # the good portfolio still has its card
    assert "Next rebalance" in html
    for name, says in (
        ("!!!.yaml", "does not give a usable id"),
        ("x" * 70 + ".yaml", "does not give a usable id"),
        ("broken", "invalid portfolio file"),
        ("latin", "invalid portfolio file"),
        ("binary", "invalid portfolio file"),
        ("deep", "invalid portfolio file"),
        ("big", "not read"),
        ("pipe", "not a regular file"),
    ):
        card = html.split(f"data-portfolio='{render.escape(name)}'", 1)
        assert len(card) == 2, name
        assert says in card[1].split("</div></div>", 1)[0], name


@pytest.mark.parametrize(
    "run_id",
    ["9223372036854775808", "99999999999999999999999999", "-1", "0", "abc", "1.5", "１", "1e3"],
)
def test_a_run_id_that_cannot_exist_is_a_clear_404(
    client: TestClient, runs: dict[str, int], run_id: str
) -> None:
    for path in (f"/runs/{run_id}", f"/runs/{run_id}/weights.svg"):
        page = client.get(path)
        assert page.status_code == 404, path
        assert "a run id is a whole number from 1 to 9223372036854775807" in page.text


def test_the_largest_run_id_is_looked_up_and_missing(
    client: TestClient, runs: dict[str, int]
) -> None:
    page = client.get("/runs/9223372036854775807")
    assert page.status_code == 404
    assert "no rebalance run 9223372036854775807" in page.text


def test_an_unknown_portfolio_is_a_clear_404(client: TestClient, runs: dict[str, int]) -> None:
    for name in ("nope", "<script>alert(1)</script>", "a\x00b", "x" * 500):
        page = client.get("/", params={"portfolio": name})
        assert page.status_code == 404, name
        assert "no portfolio" in page.text
        assert "<script>alert" not in page.text
    assert client.get("/", params={"portfolio": "demo"}).status_code == 200


def test_every_link_into_airflow_opens_in_the_whole_window(
    client: TestClient, runs: dict[str, int]
) -> None:
    import re

    for path in ("/", f"/runs/{runs['placed']}"):
        html = client.get(path).text
        assert render.TOP_LINKS in html  # the script that leaves Airflow's sandboxed iframe
        links = re.findall(r"<a [^>]*>", html)
        into_airflow = [a for a in links if "href='/dags/" in a]
        assert into_airflow, path
        for a in into_airflow:
            assert "target='_top'" in a, a
            assert "data-airflow" in a, a
        for a in links:  # the page's own links stay inside it
            if "data-airflow" not in a:
                assert re.search(r"href='(/runs/|/\?portfolio=|/'|/history.csv|/preview/)", a), a


def test_history_database_down_is_a_clear_503(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    down = f"postgresql+psycopg://postgres:@/postgres?host={tmp_path}&connect_timeout=2"
    monkeypatch.setenv("REBALANCE_DB_URL", down)
    with client_for() as c:
        for path in ("/", "/runs/1"):
            page = c.get(path)
            assert page.status_code == 503, path
            assert "history database is unavailable" in page.text
