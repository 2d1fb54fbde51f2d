"""The history store on a real Postgres: state machines, write-ahead checks, the run lock, CLI."""

from __future__ import annotations

import threading
import time

import pytest
from typer.testing import CliRunner

from rebalance.history.migrate import current_revision
from rebalance.history.status import (
    IllegalTransition,
    OrderState,
    RunStatus,
    check_order_transition,
    check_transition,
)
from rebalance.history.store import HistoryStore, LegsMismatch, RunKey, RunLocked

LEG = {
    "leg": 0,
    "tag": "ABCDEFGHIJKL000",
    "symbol": "INFY",
    "exchange": "NSE",
    "side": "SELL",
    "quantity": 5,
    "price": 1890.15,
    "notional": 9450.75,
    "reasons": ["drift"],
    "charges": 12.0,
}


def new_run(store: HistoryStore, run: str = "manual__1", portfolio: str = "demo") -> int:
    return store.open_run(
        RunKey(f"rebalance_{portfolio}", run, "main"),
        portfolio_id=portfolio,
        portfolio_name=f"Demo {portfolio}",
        broker="paper",
        initiator="manual",
        broker_scope="main",
        mode="paper",
        policy={"rebalance_budget_pct": 10, "drift_band_abs_pct": 2, "drift_band_rel_pct": 15},
        targets={"weights": {"INFY": 1.0}, "cash": 0.0},
    )


def test_migrations_reach_head(history_db: str) -> None:
    from alembic.script import ScriptDirectory

    from rebalance.history.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config(history_db)).get_current_head()
    assert head is not None
    assert head >= "0005"
    assert current_revision(history_db) == head


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (RunStatus.STARTED, RunStatus.PLACING),
        (RunStatus.PLANNED, RunStatus.PLACING),  # never placed without approval
        (RunStatus.AWAITING_APPROVAL, RunStatus.PLACING),
        (RunStatus.REJECTED, RunStatus.APPROVED),
        (RunStatus.COMPLETED, RunStatus.PLACING),
        (RunStatus.FAILED, RunStatus.COMPLETED),
        (RunStatus.PLACED, RunStatus.PLACING),
    ],
)
def test_illegal_run_transitions_are_refused(current: RunStatus, new: RunStatus) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (OrderState.COMPLETE, OrderState.OPEN),
        (OrderState.REJECTED, OrderState.SENT),
        (OrderState.PENDING, OrderState.NOT_PLACED),
        (OrderState.DENIED, OrderState.SENT),
        (OrderState.PARTIALLY_FILLED, OrderState.OPEN),
        (OrderState.OPEN, OrderState.PENDING),  # an acknowledged order is never resent
    ],
)
def test_illegal_order_transitions_are_refused(current: OrderState, new: OrderState) -> None:
    with pytest.raises(IllegalTransition):
        check_order_transition(current, new)


def test_store_refuses_illegal_transitions_and_records_events(store: HistoryStore) -> None:
    run = new_run(store)
    with pytest.raises(IllegalTransition):
        store.transition(run, RunStatus.PLACING)
    store.transition(run, RunStatus.PLANNED, "1 order planned")
    store.transition(run, RunStatus.APPROVED, "ok")
    assert store.transition(run, RunStatus.APPROVED) is RunStatus.APPROVED  # a retry: no-op
    store.transition(run, RunStatus.FAILED, "broker down")
    with pytest.raises(IllegalTransition):
        store.transition(run, RunStatus.COMPLETED)
    record = store.run(run)
    assert record.status == "failed"
    assert record.status_reason == "broker down"
    assert record.finished_at is not None
    assert [e.to_status for e in store.events(run)] == [
        "started",
        "planned",
        "approved",
        "failed",
    ]


def test_open_run_is_idempotent_per_lane(store: HistoryStore) -> None:
    assert new_run(store) == new_run(store)
    assert new_run(store, run="manual__2") != new_run(store)


def test_order_state_changes_are_checked(store: HistoryStore) -> None:
    run = new_run(store)
    store.write_orders_ahead(run, [LEG], plan_hash="h1")
    store.update_order(run, 0, state=OrderState.SENT, attempts=1)
    store.update_order(run, 0, state=OrderState.COMPLETE, filled_quantity=5)
    with pytest.raises(IllegalTransition):
        store.update_order(run, 0, state=OrderState.PENDING)
    assert store.orders(run)[0].state == "complete"


def test_write_ahead_is_idempotent_and_refuses_another_plan(store: HistoryStore) -> None:
    run = new_run(store)
    store.write_orders_ahead(run, [LEG], plan_hash="h1")
    store.write_orders_ahead(run, [LEG], plan_hash="h1")
    assert len(store.orders(run)) == 1
    with pytest.raises(LegsMismatch):
        store.write_orders_ahead(run, [LEG], plan_hash="h2")
    with pytest.raises(LegsMismatch):
        store.write_orders_ahead(run, [{**LEG, "quantity": 6}], plan_hash="h1")


def test_run_lock_excludes_a_second_holder(store: HistoryStore) -> None:
    run = new_run(store)
    other = new_run(store, run="manual__2")
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with store.run_lock(run):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(5)
    with pytest.raises(RunLocked), store.run_lock(run, wait_seconds=0.2):
        pass
    with store.run_lock(other):  # another run's lock is independent
        pass
    release.set()
    start = time.monotonic()
    with store.run_lock(run, wait_seconds=5) as waited:
        assert waited < 5
    assert time.monotonic() - start < 5
    thread.join(5)


def test_history_cli_lists_and_shows(store: HistoryStore) -> None:
    from rebalance.cli import _register_commands, app

    _register_commands()
    run = new_run(store)
    store.update_run(
        run,
        snapshot={
            "account": "main",
            "broker": "paper",
            "taken_at": "2026-01-05T15:10:00+05:30",
            "cash": 1000.0,
            "positions": [
                {"symbol": "INFY", "quantity": 10, "last_price": 1890.15, "average_price": 1450.0}
            ],
        },
    )
    store.transition(
        run,
        RunStatus.PLANNED,
        "1 order planned",
        plan={
            "orders": [],
            "positions": [
                {
                    "symbol": "INFY",
                    "weight_before": 0.9,
                    "target_weight": 0.8,
                    "weight_after": 0.81,
                    "quantity_before": 10,
                    "quantity_after": 9,
                    "skipped": [],
                }
            ],
            "summary": {"solver": "milp_time_cap"},
        },
        plan_hash="abc123",
        turnover_pct=9.5,
        max_drift_before=0.1,
        max_drift_after=0.01,
        trades=1,
    )
    store.write_orders_ahead(run, [LEG], plan_hash="abc123")
    new_run(store, run="manual__9", portfolio="other")
    runner = CliRunner()
    listed = runner.invoke(app, ["history", "--portfolio", "demo"], env={"COLUMNS": "220"})
    assert listed.exit_code == 0, listed.output
    assert "Demo demo" in listed.output
    assert "Demo other" not in listed.output
    assert "10.00% -> 1.00%" in listed.output
    assert "9.50%" in listed.output
    assert "budget 10%" in listed.output
    assert "planned" in listed.output
    shown = runner.invoke(app, ["history", "show", str(run)], env={"COLUMNS": "260"})
    assert shown.exit_code == 0, shown.output
    for text in (
        "Policy snapshot",
        "Holdings snapshot",
        "Plan positions",
        "Orders",
        "Events",
        "INFY",
        "ABCDEFGHIJKL000",
        "pending",
        "abc123",
        "drift_band_rel_pct",
        "time cap reached",  # summary.solver: which method made the plan
    ):
        assert text in shown.output, text
    missing = runner.invoke(app, ["history", "show", "999999"])
    assert missing.exit_code == 2


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (RunStatus.APPROVED, RunStatus.INTERRUPTED),  # place_orders stopped before placing
        (RunStatus.PLACING, RunStatus.INTERRUPTED),  # stopped with legs never sent
        (RunStatus.INTERRUPTED, RunStatus.PLACING),  # rebalance resume: the same run
        (RunStatus.INTERRUPTED, RunStatus.COMPLETED),  # settled for good
        (RunStatus.INTERRUPTED, RunStatus.FAILED),
    ],
)
def test_interrupted_runs_resume_or_close(current: RunStatus, new: RunStatus) -> None:
    check_transition(current, new)


@pytest.mark.parametrize(
    "current",
    [RunStatus.PLANNED, RunStatus.AWAITING_APPROVAL, RunStatus.COMPLETED, RunStatus.FAILED],
)
def test_only_an_approved_or_placing_run_is_interrupted(current: RunStatus) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(current, RunStatus.INTERRUPTED)


def test_interrupted_is_final_for_the_dag_run() -> None:
    assert RunStatus.INTERRUPTED.is_final
    with pytest.raises(IllegalTransition):
        check_transition(RunStatus.INTERRUPTED, RunStatus.PLACED)  # only through placing


def test_never_sent_is_distinct_from_an_unknown_outcome() -> None:
    check_order_transition(OrderState.PENDING, OrderState.NOT_SENT)
    check_order_transition(OrderState.NOT_SENT, OrderState.PENDING)  # a resume
    check_order_transition(OrderState.NOT_SENT, OrderState.COMPLETE)  # found in the book
    assert OrderState.NOT_SENT.is_terminal
    assert not OrderState.SENT.is_terminal  # sent and unseen: the book decides
    with pytest.raises(IllegalTransition):
        check_order_transition(OrderState.SENT, OrderState.NOT_SENT)  # it may be at the broker
    with pytest.raises(IllegalTransition):
        check_order_transition(OrderState.COMPLETE, OrderState.NOT_SENT)


def test_stale_placing_runs_of_one_account(store: HistoryStore) -> None:
    from datetime import UTC, datetime, timedelta

    placing = new_run(store)
    for status in (RunStatus.PLANNED, RunStatus.APPROVED, RunStatus.PLACING):
        store.transition(placing, status, None)
    store.update_run(placing, executed_at=datetime.now(UTC) - timedelta(minutes=20))
    fresh = new_run(store, run="manual__2")
    for status in (RunStatus.PLANNED, RunStatus.APPROVED, RunStatus.PLACING):
        store.transition(fresh, status, None)
    store.update_run(fresh, executed_at=datetime.now(UTC))
    cutoff = datetime.now(UTC) - timedelta(minutes=11)
    assert store.stale_placing_runs("main", "paper", cutoff) == [placing]
    assert store.stale_placing_runs("main", "zerodha", cutoff) == []  # another broker
    assert store.stale_placing_runs("other", "paper", cutoff) == []
    # A live lane's book is not where a paper run's orders went.
    assert store.stale_placing_runs("main", "paper", cutoff, modes=["live"]) == []
