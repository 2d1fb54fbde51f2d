"""Who may answer an approval (``execution.approvers``) and what the waiting request says."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rebalance.approval_operator import (
    PlanApprovalOperator,
    answer_note,
    assigned_users,
    required_actions_link,
)
from rebalance.errors import ConfigError
from rebalance.portfolio import Execution, load_portfolio, parse_portfolio

DEMO = Path(__file__).resolve().parents[3] / "portfolios" / "demo.yaml"


def test_approvers_become_airflow_assigned_users() -> None:
    assert assigned_users(("asha", "7")) == [
        {"id": "asha", "name": "asha"},
        {"id": "7", "name": "7"},
    ]
    assert assigned_users(()) is None  # nobody named: anyone who may act on the DAG


def test_approvers_are_optional_and_checked() -> None:
    import yaml

    assert Execution().approvers == ()
    data = yaml.safe_load(DEMO.read_text())
    data["execution"]["approvers"] = ["asha", "ravi"]
    assert parse_portfolio(data, "demo.yaml", "demo").execution.approvers == ("asha", "ravi")
    for bad, says in (
        (["asha", "asha"], "listed twice"),
        ([" "], "is not a user id"),
        ([7], "execution.approvers.0"),  # a number is not a user id: quote it
        ("asha", "execution.approvers"),
    ):
        data["execution"]["approvers"] = bad
        with pytest.raises(ConfigError) as error:
            parse_portfolio(data, "demo.yaml", "demo")
        assert says in str(error.value)
        assert "demo.yaml" in str(error.value)


def test_the_operator_takes_answerers_from_the_portfolio_at_parse_time() -> None:
    portfolio = load_portfolio(DEMO).model_copy(
        update={"execution": Execution(approvers=("asha",))}
    )
    task = PlanApprovalOperator(
        task_id="approval", portfolio_file=str(DEMO), account="paper", portfolio=portfolio
    )
    assert task.assigned_users == [{"id": "asha", "name": "asha"}]
    without = PlanApprovalOperator(task_id="approval2", portfolio_file=str(DEMO), account="paper")
    assert without.assigned_users is None  # worked out from the file when the task runs
    fixed = PlanApprovalOperator(
        task_id="approval3",
        portfolio_file=str(DEMO),
        account="paper",
        portfolio=portfolio,
        assigned_users=[{"id": "boss", "name": "Boss"}],
    )
    assert fixed.assigned_users == [{"id": "boss", "name": "Boss"}]


def test_the_preview_ends_with_the_cutoff_in_ist_and_who_may_answer() -> None:
    deadline = datetime(2026, 11, 30, 9, 55, tzinfo=UTC)
    note = answer_note(deadline, ("asha", "ravi"), "rebalance_demo")
    assert "**Answer by 2026-11-30 15:25 IST**" in note
    assert "**Who may answer:** `asha`, `ravi`." in note
    assert "anyone who may act on rebalance_demo" in answer_note(deadline, (), "rebalance_demo")


def test_the_required_actions_link(monkeypatch: pytest.MonkeyPatch) -> None:
    task = PlanApprovalOperator(task_id="paper.approval", portfolio_file=str(DEMO), account="paper")
    ti = SimpleNamespace(
        dag_id="rebalance_demo", run_id="manual__1", task_id="paper.approval", map_index=-1
    )
    context: dict[str, Any] = {"task": task, "task_instance": ti}
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://af.example:8080")
    assert required_actions_link(context) == (
        "http://af.example:8080/dags/rebalance_demo/runs/manual__1/tasks/paper.approval/"
        "required_actions?map_index=-1"
    )
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "")
    assert required_actions_link(context) == (
        "/dags/rebalance_demo/runs/manual__1/tasks/paper.approval/required_actions"
    )
