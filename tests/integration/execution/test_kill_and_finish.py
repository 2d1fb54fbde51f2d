"""Kill -9 a real placement process at each point of placement, then finish the plan.

Each scenario places the approved plan (2 sells funding 2 buys) in a subprocess that SIGKILLs
itself at one checkpoint, then finishes it as production would: Airflow's retry of place_orders,
or record_run (which records the run ``interrupted``) followed by ``rebalance resume``, or
record_run alone when every leg had reached the broker. At the
Kite emulator (the real kiteconnect client, real Postgres) no tag is used twice, no leg fills
more than its approved quantity, and every leg ends final. The history database down at
record_run leaves the run ``placing``; the next run of the account closes it from the book.

Reproduce: ``.venv/bin/pytest tests/integration/execution/test_kill_and_finish.py -v``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from rebalance import tasks
from rebalance.approval import approval_valid_until
from rebalance.history.records import RunRecord
from rebalance.history.status import OrderState, RunStatus
from rebalance.history.store import HistoryStore
from rebalance.lane import Lane, LaneStopped
from rebalance.plan import TradePlan
from rebalance.resume import resume_run

from .conftest import FAST, Venue, approved_run, make_plan, run_key, tags_of
from .test_task_bodies import lane

PLACER = Path(__file__).with_name("placer_process.py")


def _valid_until(the_lane: Lane, record: RunRecord) -> Any:
    """The approval's validity of a stored run, as place_orders works it out."""
    asked = record.planned_at or record.created_at
    execution = the_lane.portfolio.execution
    return approval_valid_until(the_lane.mode, execution, asked, record.approved_at)


def kill_placement(
    store: HistoryStore,
    history_db: str,
    kite: Venue,
    run: int,
    plan: TradePlan,
    the_lane: Lane,
    point: str,
    leg: int | None,
) -> None:
    """Place in a subprocess that dies by SIGKILL at ``point`` (``leg``); assert it did."""
    spec = {
        "db_url": history_db,
        "kite": {
            "url": kite.emulator.url,
            "api_key": kite.emulator.api_key,
            "access_token": kite.emulator.access_token,
        },
        "run": run,
        "approved_hash": plan.plan_hash,
        "tag_seed": run_key(),
        "account": "zerodha_main",
        # The pricing policy is not JSON: the subprocess prices with the default (limit, 0.5%).
        "settings": {k: v for k, v in FAST.__dict__.items() if k != "pricing"},
        "valid_until": _valid_until(the_lane, store.run(run)).isoformat(),
        "kill": {"point": point, "leg": leg},
    }
    done = subprocess.run(
        [sys.executable, str(PLACER), json.dumps(spec)], capture_output=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    assert store.status(run) is RunStatus.PLACING


def assert_plan_finished(store: HistoryStore, run: int, kite: Venue, plan: TradePlan) -> None:
    tags = tags_of(plan)
    assert all(n <= 1 for n in kite.counts(tags)), "a tag used twice at the broker"
    filled: dict[str, int] = defaultdict(int)
    for order in kite.emulator.orders:
        filled[order["tag"]] += int(order["filled_quantity"])
    legs = store.orders(run)
    for leg in legs:
        assert filled[leg.tag] <= leg.quantity, leg
        assert filled[leg.tag] == leg.filled_quantity, leg
        assert OrderState(leg.state).is_terminal, leg
        assert leg.state not in (OrderState.NOT_SENT, OrderState.NOT_PLACED), leg
    assert kite.counts(tags) == [1, 1, 1, 1], "every leg placed once"
    assert len(store.runs()) == 1, "finishing is never a second run"
    assert store.status(run) is RunStatus.COMPLETED


# (where it dies, which leg, how it is finished)
SCENARIOS = [
    ("written_ahead", None, "retry"),
    ("written_ahead", None, "resume"),
    ("before_send", 0, "resume"),  # marked sent, never reached the broker: resent after grace
    ("after_send", 1, "retry"),  # the broker has it, we did not record it: found by tag
    ("after_send", 1, "resume"),
    ("sells_sent", None, "resume"),  # every sell sent, no buy
    ("before_send", 2, "retry"),  # first buy marked sent, not sent
    ("after_send", 3, "record"),  # the last leg accepted, not recorded: the book has it all
    ("polled", None, "retry"),  # mid-poll, an order still open (partial fill)
    ("before_finish", None, "retry"),  # every leg settled, the run not yet closed
]


@pytest.mark.parametrize(("point", "leg", "finish"), SCENARIOS)
def test_killed_placement_is_finished(
    store: HistoryStore,
    history_db: str,
    kite: Venue,
    tmp_path: Path,
    point: str,
    leg: int | None,
    finish: str,
) -> None:
    the_lane = lane(tmp_path, mode="paper")
    plan = make_plan()
    run = approved_run(store, plan, mode="paper")
    partial = point == "polled"
    if partial:
        kite.emulator.faults.partial_fill = {"ITC": 7}
    kill_placement(store, history_db, kite, run, plan, the_lane, point, leg)
    if finish == "retry":  # Airflow retries place_orders, then record_run closes the run
        tasks.place_orders(the_lane, store, kite.broker, plan.plan_hash, settings=FAST)
        tasks.record_run(the_lane, store, kite.broker, settings=FAST)
    elif finish == "record":  # out of retries, but every leg reached the broker
        tasks.record_run(the_lane, store, kite.broker, settings=FAST)
    else:  # place_orders ran out of retries: record_run records the truth, a person resumes
        with pytest.raises(LaneStopped, match="interrupted"):
            tasks.record_run(the_lane, store, kite.broker, settings=FAST)
        assert store.status(run) is RunStatus.INTERRUPTED
        legs = store.orders(run)
        assert any(leg.state == OrderState.NOT_SENT for leg in legs)
        assert all(leg.state != OrderState.PENDING for leg in legs), (
            "every leg is final or known never sent"
        )
        resume_run(the_lane, store, kite.broker, settings=FAST)
    if partial:
        itc = next(leg for leg in store.orders(run) if leg.symbol == "ITC")
        assert itc.state == OrderState.CANCELLED
        assert itc.filled_quantity == 7
        kite.emulator.faults.partial_fill = {}
        tags = tags_of(plan)
        assert all(n == 1 for n in kite.counts(tags))
        assert store.status(run) is RunStatus.COMPLETED
        return
    assert_plan_finished(store, run, kite, plan)


def dead_store(tmp_path: Path) -> HistoryStore:
    """A history store whose database is down (its socket directory holds no server)."""
    return HistoryStore(
        create_engine(f"postgresql+psycopg://postgres:@/rebalance?host={tmp_path}/nothing")
    )


def test_database_down_at_record_run_then_closed_by_the_next_run(
    store: HistoryStore, history_db: str, kite: Venue, tmp_path: Path
) -> None:
    the_lane = lane(tmp_path, mode="paper")
    plan = make_plan()
    run = approved_run(store, plan, mode="paper")
    kill_placement(store, history_db, kite, run, plan, the_lane, "before_finish", None)
    with pytest.raises(OperationalError):
        tasks.record_run(the_lane, dead_store(tmp_path), kite.broker, settings=FAST)
    assert store.status(run) is RunStatus.PLACING  # nothing could close it
    # The next run of the account settles it from the book before reading holdings.
    later = replace(the_lane, airflow_run_id="manual__later")
    quick = replace(FAST, lock_wait_seconds=0.2)
    time.sleep(0.3)
    tasks.fetch_holdings(later, store, kite.broker, settings=quick)
    record = store.run(run)
    assert record.status == RunStatus.COMPLETED
    assert record.placement["status"] == RunStatus.PLACED
    assert {leg.state for leg in store.orders(run)} == {OrderState.COMPLETE}
    assert any("by a later run" in (e.message or "") for e in store.events(run))
    assert kite.counts(tags_of(plan)) == [1, 1, 1, 1]


def test_a_live_placer_is_not_settled_by_the_next_run(
    store: HistoryStore, kite: Venue, tmp_path: Path
) -> None:
    """A run placing right now holds its lock: the next run leaves it alone."""
    the_lane = lane(tmp_path, mode="paper")
    run = approved_run(store, make_plan(), mode="paper")
    store.transition(run, RunStatus.PLACING, None)
    later = replace(the_lane, airflow_run_id="manual__later")
    time.sleep(0.3)
    with store.run_lock(run):
        tasks.fetch_holdings(
            later, store, kite.broker, settings=replace(FAST, lock_wait_seconds=0.2)
        )
    assert store.status(run) is RunStatus.PLACING


def test_settle_command_closes_a_run_from_the_book(
    store: HistoryStore,
    history_db: str,
    kite: Venue,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Database down at record_run after the sells; `rebalance settle RUN` closes it."""
    from rebalance.cli import _register_commands, app

    the_lane = lane(tmp_path, mode="live")
    plan = make_plan()
    run = approved_run(store, plan, mode="live", portfolio_id="task_test")
    kill_placement(store, history_db, kite, run, plan, the_lane, "sells_sent", None)
    with pytest.raises(OperationalError):
        tasks.record_run(the_lane, dead_store(tmp_path), kite.broker, settings=FAST)
    connection: dict[str, Any] = {
        "conn_type": "generic",
        "login": kite.emulator.api_key,
        "password": kite.emulator.access_token,
        "extra": {
            "root": kite.emulator.url,
            "timeout": 0.5,
            "default_market_protection": "none",  # every send must be priced
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_KITE_MAIN", json.dumps(connection))
    _register_commands()
    portfolio = the_lane.portfolio_file
    result = CliRunner().invoke(app, ["settle", str(run), "--portfolio", portfolio])
    assert result.exit_code == 0, result.output
    assert "2 never sent" in result.output
    record = store.run(run)
    assert record.status == RunStatus.COMPLETED
    assert [leg.state for leg in store.orders(run)] == [
        OrderState.COMPLETE,
        OrderState.COMPLETE,
        OrderState.NOT_SENT,
        OrderState.NOT_SENT,
    ]
    assert kite.counts(tags_of(plan)) == [1, 1, 0, 0]
    again = CliRunner().invoke(app, ["resume", str(run), "--portfolio", portfolio])
    assert again.exit_code == 2
    assert "only an interrupted placement" in again.output
