"""The approval task bodies on a real history store: decisions are final, retries re-read them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rebalance import tasks
from rebalance.approval import Decision
from rebalance.approval_operator import request_approval
from rebalance.history.status import IllegalTransition, RunStatus
from rebalance.lane import Lane, LaneStopped
from rebalance.wiring import broker_for


def planned_lane(portfolio_file: Path, store, **execution: object) -> Lane:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(portfolio_file.read_text())
    data["execution"] = {"mode": "paper", **execution}
    portfolio_file.write_text(yaml.safe_dump(data))
    lane = Lane(str(portfolio_file), "paper", "rebalance_demo", "manual__test")
    tasks.fetch_holdings(lane, store, broker_for(lane))
    tasks.validate_snapshot(lane, store)
    tasks.plan_trades(lane, store)
    return lane


def test_manual_approval_asks_once_and_a_retry_reads_the_decision(store, demo_copy: Path) -> None:  # type: ignore[no-untyped-def]
    lane = planned_lane(demo_copy, store, approval="manual")

    request = request_approval(lane, store)
    assert request.decided is None
    assert request.preview
    assert request.subject
    assert request.deadline
    run_id = store.find_run(lane.run_key)
    assert store.status(run_id) == RunStatus.AWAITING_APPROVAL

    decided = tasks.record_decision(lane, store, Decision.APPROVED, by="asha")
    retried = request_approval(lane, store)  # the approval task retried after the answer
    assert retried.decided == {"run": run_id, "plan_hash": decided["plan_hash"]}
    assert store.run(run_id).approved_by == "asha"


def test_a_rejection_is_final(store, demo_copy: Path) -> None:  # type: ignore[no-untyped-def]
    lane = planned_lane(demo_copy, store, approval="manual")
    request_approval(lane, store)
    tasks.record_decision(lane, store, Decision.REJECTED, by="asha")

    retried = request_approval(lane, store)
    assert retried.decided is None
    assert retried.refused is not None
    assert "rejected" in retried.refused
    with pytest.raises(IllegalTransition):
        tasks.record_decision(lane, store, Decision.APPROVED, by="someone else")


def test_auto_approval_above_the_turnover_limit_asks_a_person(store, demo_copy: Path) -> None:  # type: ignore[no-untyped-def]
    lane = planned_lane(demo_copy, store, approval="auto", auto_approve_max_turnover_pct=1)

    request = request_approval(lane, store)
    assert request.decided is None  # demo turnover is ~20%: above the 1% limit
    assert store.status(store.find_run(lane.run_key)) == RunStatus.AWAITING_APPROVAL


def test_auto_approval_within_the_limit(store, demo_copy: Path) -> None:  # type: ignore[no-untyped-def]
    lane = planned_lane(demo_copy, store, approval="auto", auto_approve_max_turnover_pct=50)

    request = request_approval(lane, store)
    assert request.decided is not None
    run = store.run(store.find_run(lane.run_key))
    assert run.status == RunStatus.APPROVED
    assert run.approval_decision == "auto"


def test_a_plan_the_planner_refuses_is_recorded_and_stops_the_lane(store, demo_copy: Path) -> None:  # type: ignore[no-untyped-def]
    holdings = demo_copy.parent / "data" / "demo_holdings.csv"
    header, *rows = holdings.read_text().splitlines()
    emptied = [
        ",".join([r.split(",")[0], "NSE", "0", *r.split(",")[3:5], "0", *r.split(",")[6:]])
        for r in rows
    ]
    holdings.write_text("\n".join([header, *emptied]) + "\n")
    data = yaml.safe_load(demo_copy.read_text())
    data["accounts"][0]["cash_inr"] = 0  # an account worth nothing: nothing to rebalance
    demo_copy.write_text(yaml.safe_dump(data))
    lane = Lane(str(demo_copy), "paper", "rebalance_demo", "manual__empty")
    tasks.fetch_holdings(lane, store, broker_for(lane))
    tasks.validate_snapshot(lane, store)

    with pytest.raises(LaneStopped, match="portfolio value is 0"):
        tasks.plan_trades(lane, store)
    run = store.run(store.find_run(lane.run_key))
    assert run.status == RunStatus.FAILED
    assert run.plan is None
    assert "the planner refused the inputs" in run.status_reason
