"""place_orders / record_run task bodies over the Kite emulator: retried task, interrupted run."""

from __future__ import annotations

from pathlib import Path

import pytest

from rebalance import tasks
from rebalance.history.status import RunStatus
from rebalance.history.store import HistoryStore

from .conftest import FAST, Venue, approved_run, make_plan, tags_of

PORTFOLIO = """\
name: Task Test
exchange: NSE
targets: {RELIANCE: 25, INFY: 25, ITC: 25, HDFCBANK: 25}
schedule: {frequency: monthly, day_rule: last_trading_day, time: "15:10"}
policy: {rebalance_budget_pct: 10}
accounts:
  - {name: zerodha_main, broker: zerodha, connection_id: kite_main}
execution: {mode: live, approval: auto, order_deadline_minutes: 1}
"""


def lane(tmp_path: Path) -> tasks.Lane:
    path = tmp_path / "task_test.yaml"
    path.write_text(PORTFOLIO)
    return tasks.Lane(
        portfolio_file=str(path),
        account="zerodha_main",
        dag_id="rebalance_test",
        airflow_run_id="scheduled__2026-01-05T15:10:00+05:30",
    )


def test_task_retried_then_closed(store: HistoryStore, kite: Venue, tmp_path: Path) -> None:
    the_lane = lane(tmp_path)
    plan = make_plan()
    approved_run(store, plan)
    kite.emulator.faults.place_then_timeout = 1
    first = tasks.place_orders(the_lane, store, kite.broker, plan.plan_hash, settings=FAST)
    again = tasks.place_orders(the_lane, store, kite.broker, plan.plan_hash, settings=FAST)
    assert first["sent"] == 4
    assert again["sent"] == 0
    assert kite.counts(tags_of(plan)) == [1, 1, 1, 1]
    closed = tasks.record_run(the_lane, store, kite.broker, settings=FAST)
    assert closed["status"] == RunStatus.COMPLETED
    # Cleared and re-run after the run was closed: still nothing sent.
    third = tasks.place_orders(the_lane, store, kite.broker, plan.plan_hash, settings=FAST)
    assert third["sent"] == 0
    assert kite.counts(tags_of(plan)) == [1, 1, 1, 1]


def test_record_run_settles_a_run_left_placing(
    store: HistoryStore, kite: Venue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    the_lane = lane(tmp_path)
    plan = make_plan()
    run = approved_run(store, plan)

    import rebalance.execution as execution

    real = execution._Placement.run

    def dies_after_sells(self: execution._Placement) -> object:
        self._send_all([leg for leg in self.store.orders(self.run_id) if leg["side"] == "SELL"])
        raise RuntimeError("worker killed")

    monkeypatch.setattr(execution._Placement, "run", dies_after_sells)
    with pytest.raises(RuntimeError):
        tasks.place_orders(the_lane, store, kite.broker, plan.plan_hash, settings=FAST)
    monkeypatch.setattr(execution._Placement, "run", real)
    assert store.status(run) is RunStatus.PLACING
    closed = tasks.record_run(the_lane, store, kite.broker, settings=FAST)
    assert closed["status"] == RunStatus.COMPLETED
    record = store.run(run)
    assert record["placement"]["status"] == RunStatus.PARTIALLY_FILLED
    assert record["placement"]["complete"] == 2
    assert kite.counts(tags_of(plan)) == [1, 1, 0, 0]


def test_plan_mismatch_stops_the_lane(store: HistoryStore, kite: Venue, tmp_path: Path) -> None:
    plan = make_plan()
    approved_run(store, plan)
    with pytest.raises(tasks.LaneStopped):
        tasks.place_orders(lane(tmp_path), store, kite.broker, "0" * 64, settings=FAST)
    assert kite.emulator.orders_received == 0
    with pytest.raises(tasks.LaneStopped, match="failed"):
        tasks.record_run(lane(tmp_path), store, kite.broker, settings=FAST)
