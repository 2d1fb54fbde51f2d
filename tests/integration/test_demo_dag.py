"""The demo portfolio's DAG run end to end through Airflow (dag.test) on the paper broker.

Real parts: Airflow 3 runs the six tasks, history goes to a real PostgreSQL, the paper broker keeps
its order book on disk. Asserts what was recorded and what the broker saw.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rebalance.dag_factory import build_dag
from rebalance.history.status import OrderState, RunStatus
from rebalance.portfolio import load_portfolio

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def run_dag(portfolio_file: Path, **conf: object):  # type: ignore[no-untyped-def]
    dag = build_dag(portfolio_file, load_portfolio(portfolio_file))
    return dag.test(run_conf=conf or None)


def test_demo_runs_end_to_end_and_is_recorded(airflow_db: Path, store, demo_copy: Path) -> None:  # type: ignore[no-untyped-def]
    dag_run = run_dag(demo_copy)

    assert str(dag_run.state) == "success"
    (run,) = store.runs("demo")
    assert run.airflow_run_id == dag_run.run_id
    assert run.status == RunStatus.COMPLETED
    assert run.approval_decision == "auto"
    assert run.mode == "paper"
    assert run.trades > 0
    assert run.plan_hash
    assert len(run.plan_hash) == 64
    assert run.snapshot["positions"]
    assert run.policy["max_trades"] == 10

    orders = store.orders(run.id)
    assert len(orders) == run.trades == len(run.plan["orders"])
    assert all(o.state == OrderState.COMPLETE for o in orders)
    assert all(o.filled_quantity == o.quantity for o in orders)
    assert len({o.tag for o in orders}) == len(orders)
    # Sells go first: their proceeds fund the buys.
    sides = [o.side for o in orders]
    assert sides == sorted(sides, key=lambda side: side != "SELL")

    # The paper broker saw exactly one order per leg.
    (state_file,) = Path(os.environ["REBALANCE_STATE_DIR"]).rglob("paper-*.json")
    book = json.loads(state_file.read_text())
    tags = [o["tag"] for o in book["orders"] if o["tag"] in {x.tag for x in orders}]
    assert sorted(tags) == sorted(o.tag for o in orders)

    events = [e.to_status for e in store.events(run.id)]
    assert events == ["started", "planned", "approved", "placing", "placed", "completed"]


def test_dry_run_orders_nothing(airflow_db: Path, store, demo_copy: Path) -> None:  # type: ignore[no-untyped-def]
    dag_run = run_dag(demo_copy, mode="dry_run")

    assert str(dag_run.state) == "success"
    (run,) = store.runs("demo")
    assert run.mode == "dry_run"
    assert run.status == RunStatus.COMPLETED
    assert run.trades > 0  # planned and recorded...
    assert store.orders(run.id) == []  # ...but nothing ordered


def test_params_override_the_policy(airflow_db: Path, store, demo_copy: Path) -> None:  # type: ignore[no-untyped-def]
    run_dag(demo_copy, mode="dry_run", max_trades=2, rebalance_budget_pct=5)

    (run,) = store.runs("demo")
    assert run.policy["max_trades"] == 2
    assert run.policy["rebalance_budget_pct"] == 5
    assert run.trades <= 2


def test_bad_snapshot_stops_before_planning(airflow_db: Path, store, demo_copy: Path) -> None:  # type: ignore[no-untyped-def]
    holdings = demo_copy.parent / "data" / "demo_holdings.csv"
    lines = holdings.read_text().splitlines()
    lines[3] = lines[3].replace("1890.15", "0")  # INFY's last price
    holdings.write_text("\n".join(lines) + "\n")

    dag_run = run_dag(demo_copy)

    assert str(dag_run.state) == "failed"
    (run,) = store.runs("demo")
    assert run.status in (RunStatus.INVALID, RunStatus.FAILED)
    assert run.plan is None
    assert store.orders(run.id) == []
