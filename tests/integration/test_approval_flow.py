"""The approval paths of a lane, through Airflow: a person approves or rejects the plan through
Airflow's REST API (the HITL endpoint the Required Actions page uses), or the deadline passes.

dag.test() parks the approval task in AWAITING_INPUT until a response arrives from outside, so the
DAG runs in a thread while the test answers through the API app, exactly like a person would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rebalance.dag_factory import build_dag
from rebalance.history.records import RunRecord
from rebalance.history.status import OrderState, RunStatus
from rebalance.portfolio import load_portfolio

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def manual_portfolio(demo_copy: Path) -> Path:
    data = yaml.safe_load(demo_copy.read_text())
    data["execution"] = {"mode": "paper", "approval": "manual"}
    demo_copy.write_text(yaml.safe_dump(data))
    return demo_copy


@pytest.fixture
def api(airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Airflow's REST API in-process, every caller an admin (simple auth manager)."""
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    with TestClient(create_app("core")) as client:
        yield client


def run_dag(portfolio_file: Path, **conf: object) -> Any:
    dag = build_dag(portfolio_file, load_portfolio(portfolio_file))
    return dag.test(run_conf=conf or None)


class Approver(threading.Thread):
    """A person at the Required Actions page: waits for the request, looks at it, answers."""

    def __init__(self, api: Any, store: Any, option: str) -> None:
        super().__init__(daemon=True)
        self.api, self.store, self.option = api, store, option
        self.request: dict[str, Any] | None = None
        self.run_when_asked: RunRecord | None = None
        self.orders_when_asked: list[Any] | None = None

    def run(self) -> None:
        self.request = wait_for_approval_request(self.api, "rebalance_demo")
        (self.run_when_asked,) = self.store.runs("demo")
        self.orders_when_asked = self.store.orders(self.run_when_asked.id)
        answer(self.api, self.request, self.option)


def wait_for_approval_request(api: Any, dag_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = api.get(f"/api/v2/dags/{dag_id}/dagRuns/~/hitlDetails")
        if response.status_code == 200:
            pending = [d for d in response.json()["hitl_details"] if not d["response_received"]]
            if pending:
                return pending[0]
        time.sleep(0.5)
    raise AssertionError("the approval task never asked for a response")


def answer(api: Any, request: dict[str, Any], option: str) -> None:
    ti = request["task_instance"]
    url = (
        f"/api/v2/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/"
        f"{ti['task_id']}/{ti['map_index']}/hitlDetails"
    )
    response = api.patch(url, json={"chosen_options": [option], "params_input": {}})
    assert response.status_code == 200, response.text


def test_a_person_approves_the_previewed_plan(api, store, manual_portfolio: Path) -> None:  # type: ignore[no-untyped-def]
    approver = Approver(api, store, "Approve")
    approver.start()
    dag_run = run_dag(manual_portfolio)
    approver.join(timeout=30)

    assert approver.request is not None
    assert approver.run_when_asked is not None
    assert approver.run_when_asked.status == RunStatus.AWAITING_APPROVAL
    assert approver.orders_when_asked == []  # nothing is ordered before the approval
    body = approver.request["body"]
    assert approver.request["options"] == ["Approve", "Reject"]
    assert "### Orders" in body
    assert approver.run_when_asked.plan_hash[:16] in body
    for order in approver.run_when_asked.plan["orders"]:
        assert f"| {order['symbol']} | {order['quantity']} |" in body

    assert str(dag_run.state) == "success"
    (run,) = store.runs("demo")
    assert run.status == RunStatus.COMPLETED
    assert run.approval_decision == "approved"
    assert run.approved_by
    orders = store.orders(run.id)
    assert len(orders) == run.trades > 0
    assert all(o.state == OrderState.COMPLETE for o in orders)


def test_a_rejected_plan_orders_nothing(api, store, manual_portfolio: Path) -> None:  # type: ignore[no-untyped-def]
    approver = Approver(api, store, "Reject")
    approver.start()
    dag_run = run_dag(manual_portfolio)
    approver.join(timeout=30)

    assert str(dag_run.state) == "success"  # a decision, not a failure
    (run,) = store.runs("demo")
    assert run.status == RunStatus.REJECTED
    assert run.approval_decision == "rejected"
    assert store.orders(run.id) == []


def test_no_answer_by_the_cutoff_expires(airflow_db: Path, store, manual_portfolio: Path) -> None:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(manual_portfolio.read_text())
    data["execution"]["approval_cutoff"] = "00:00"  # live cut-off already passed, whatever the hour
    manual_portfolio.write_text(yaml.safe_dump(data))

    dag_run = run_dag(manual_portfolio, mode="live")

    assert str(dag_run.state) == "success"
    (run,) = store.runs("demo")
    assert run.status == RunStatus.EXPIRED
    assert run.approval_decision == "expired"
    assert store.orders(run.id) == []
