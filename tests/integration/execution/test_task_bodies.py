"""The task bodies over the Kite/SmartAPI emulators: a retried or resumed placement, the
approval's validity, the price guard on unsent legs, failures that cannot heal, and record_run
making a failed lane fail (after recording it)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from rebalance import tasks
from rebalance.history.status import OrderState, RunStatus
from rebalance.history.store import HistoryStore, RunKey
from rebalance.lane import Lane, LaneStopped, NotResumable
from rebalance.resume import resume_run

from .conftest import FAST, Venue, approved_run, clock_at, make_plan, tags_of

PORTFOLIO = """\
name: Task Test
exchange: NSE
targets: {{RELIANCE: 25, INFY: 25, ITC: 25, HDFCBANK: 25}}
schedule: {{frequency: monthly, day_rule: last_trading_day, time: "15:10"}}
policy: {{rebalance_budget_pct: 10}}
accounts:
  - {{name: zerodha_main, broker: {broker}, connection_id: {connection}}}
execution: {{mode: {mode}, approval: auto, order_deadline_minutes: 1}}
"""


def lane(
    tmp_path: Path, mode: str = "live", connection: str = "kite_main", broker: str = "zerodha"
) -> Lane:
    path = tmp_path / "task_test.yaml"
    path.write_text(PORTFOLIO.format(mode=mode, connection=connection, broker=broker))
    return Lane(
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


def crash_after_sells(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next placement sends its sells, then its worker dies (buys never sent)."""
    import rebalance.execution as execution

    real = execution._Placement.run

    def dies_after_sells(self: execution._Placement) -> object:
        monkeypatch.setattr(execution._Placement, "run", real)  # only this once
        self._send_all([leg for leg in self.store.orders(self.run_id) if leg.side == "SELL"])
        raise RuntimeError("worker killed")

    monkeypatch.setattr(execution._Placement, "run", dies_after_sells)


def test_record_run_interrupts_then_resume_finishes_the_same_run(
    store: HistoryStore, kite: Venue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    the_lane = lane(tmp_path, mode="paper")
    plan = make_plan()
    run = approved_run(store, plan, mode="paper")
    crash_after_sells(monkeypatch)
    with pytest.raises(RuntimeError):
        tasks.place_orders(the_lane, store, kite.broker, plan.plan_hash, settings=FAST)
    assert store.status(run) is RunStatus.PLACING
    # record_run records the truth, then fails the lane (the DAG run is failed).
    with pytest.raises(LaneStopped, match="interrupted"):
        tasks.record_run(the_lane, store, kite.broker, settings=FAST)
    record = store.run(run)
    assert record.status == RunStatus.INTERRUPTED
    assert f"rebalance resume {run}" in record.status_reason
    assert "2 never sent" in record.status_reason
    assert [leg.state for leg in store.orders(run)] == [
        OrderState.COMPLETE,
        OrderState.COMPLETE,
        OrderState.NOT_SENT,
        OrderState.NOT_SENT,
    ]
    assert kite.counts(tags_of(plan)) == [1, 1, 0, 0]
    # Resumed: the same run, the same tags; only the never-sent legs go out.
    outcome = resume_run(the_lane, store, kite.broker, settings=FAST)
    assert outcome["run"] == run
    assert outcome["status"] == RunStatus.COMPLETED
    assert outcome["unfinished"] is None
    assert kite.counts(tags_of(plan)) == [1, 1, 1, 1]
    assert {leg.state for leg in store.orders(run)} == {OrderState.COMPLETE}
    assert len(store.runs()) == 1
    assert any((e.message or "").startswith("resumed") for e in store.events(run))
    with pytest.raises(NotResumable, match="completed"):
        resume_run(the_lane, store, kite.broker, settings=FAST)


def test_clearing_place_orders_finishes_an_interrupted_run(
    store: HistoryStore, kite: Venue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the Airflow UI: clear place_orders (and record_run) of the failed DAG run."""
    the_lane = lane(tmp_path, mode="paper")
    plan = make_plan()
    run = approved_run(store, plan, mode="paper")
    crash_after_sells(monkeypatch)
    with pytest.raises(RuntimeError):
        tasks.place_orders(the_lane, store, kite.broker, plan.plan_hash, settings=FAST)
    with pytest.raises(LaneStopped):
        tasks.record_run(the_lane, store, kite.broker, settings=FAST)
    assert store.status(run) is RunStatus.INTERRUPTED
    tasks.check_prices_unchanged(the_lane, store, kite.broker, settings=FAST)
    cleared = tasks.place_orders(the_lane, store, kite.broker, plan.plan_hash, settings=FAST)
    assert cleared["sent"] == 2
    assert tasks.record_run(the_lane, store, kite.broker, settings=FAST)["status"] == "completed"
    assert kite.counts(tags_of(plan)) == [1, 1, 1, 1]


def test_retry_after_the_live_cutoff_sends_nothing_more(
    store: HistoryStore, kite: Venue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    the_lane = lane(tmp_path, mode="live")
    plan = make_plan()
    run = approved_run(store, plan, mode="live")
    crash_after_sells(monkeypatch)
    with pytest.raises(RuntimeError):
        tasks.place_orders(the_lane, store, kite.broker, plan.plan_hash, settings=FAST)
    late = clock_at(15, 26)  # the cut-off is 15:25 IST
    with pytest.raises(LaneStopped, match=r"valid until .* 15:25 IST"):
        tasks.place_orders(the_lane, store, kite.broker, plan.plan_hash, settings=FAST, now=late)
    assert kite.counts(tags_of(plan)) == [1, 1, 0, 0]
    buys = store.orders(run)[2:]
    assert [leg.state for leg in buys] == [OrderState.NOT_SENT] * 2
    assert all("approval was valid until" in leg.error for leg in buys)
    # Closed as what the book says, and the lane still fails: the plan is not done.
    with pytest.raises(LaneStopped, match="2 legs never sent"):
        tasks.record_run(the_lane, store, kite.broker, settings=FAST, now=late)
    assert store.status(run) is RunStatus.COMPLETED
    assert store.run(run).placement["status"] == RunStatus.PARTIALLY_FILLED


def test_retry_within_the_validity_finishes(
    store: HistoryStore, kite: Venue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    the_lane = lane(tmp_path, mode="live")
    plan = make_plan()
    run = approved_run(store, plan, mode="live")
    crash_after_sells(monkeypatch)
    with pytest.raises(RuntimeError):
        tasks.place_orders(the_lane, store, kite.broker, plan.plan_hash, settings=FAST)
    morning = clock_at(11, 0)
    again = tasks.place_orders(
        the_lane, store, kite.broker, plan.plan_hash, settings=FAST, now=morning
    )
    assert again["sent"] == 2
    assert kite.counts(tags_of(plan)) == [1, 1, 1, 1]
    assert tasks.record_run(the_lane, store, kite.broker, settings=FAST, now=morning) == {
        "run": run,
        "status": "completed",
    }


def test_price_guard_judges_only_the_legs_not_yet_sent(
    store: HistoryStore, kite: Venue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    the_lane = lane(tmp_path, mode="paper")
    plan = make_plan()
    run = approved_run(store, plan, mode="paper")
    crash_after_sells(monkeypatch)
    with pytest.raises(RuntimeError):
        tasks.place_orders(the_lane, store, kite.broker, plan.plan_hash, settings=FAST)
    kite.emulator.set_price("RELIANCE", 1285.40 * 1.2)  # sold already: settled, not judged
    tasks.check_prices_unchanged(the_lane, store, kite.broker, settings=FAST)
    assert store.status(run) is RunStatus.PLACING
    kite.emulator.prices["ITC"] = 430.10 * 1.2  # a buy not yet sent
    with pytest.raises(LaneStopped, match=re.escape("ITC: 430.10 -> 516.12")):
        tasks.check_prices_unchanged(the_lane, store, kite.broker, settings=FAST)
    assert kite.counts(tags_of(plan)) == [1, 1, 0, 0]
    buys = store.orders(run)[2:]
    assert [leg.state for leg in buys] == [OrderState.NOT_SENT] * 2
    assert all("prices moved" in leg.error for leg in buys)
    assert store.status(run) is RunStatus.PARTIALLY_FILLED


def test_missing_connection_stops_at_once_with_a_failed_record(
    store: HistoryStore, tmp_path: Path
) -> None:
    the_lane = lane(tmp_path, connection="kite_nowhere")
    expected = (
        "connection 'kite_nowhere' is not defined: add it as docs/brokers.md#connection-fields says"
    )
    with pytest.raises(LaneStopped, match=expected) as stopped:
        tasks.fetch_holdings(the_lane, store)  # the broker is built after the record is open
    assert "\n" not in str(stopped.value)
    (run,) = store.runs()
    assert run.status == RunStatus.FAILED
    assert run.status_reason.startswith("stopped at fetch_holdings: ")
    assert expected in run.status_reason
    with pytest.raises(LaneStopped, match="kite_nowhere"):
        tasks.record_run(the_lane, store)


def test_lane_stopped_before_its_record_still_leaves_one(
    store: HistoryStore, tmp_path: Path
) -> None:
    """The DAG built the broker before fetch_holdings ran: record_run opens the record."""
    the_lane = lane(tmp_path, connection="kite_nowhere")
    with pytest.raises(LaneStopped, match="ended failed"):
        tasks.record_run(the_lane, store)
    (run,) = store.runs()
    assert run.status == RunStatus.FAILED
    assert run.status_reason.startswith("stopped before fetch_holdings could open the run: ")
    assert "connection 'kite_nowhere' is not defined" in run.status_reason
    assert run.portfolio_id == "task_test"


def test_expired_kite_token_says_to_log_in(
    store: HistoryStore, kite: Venue, tmp_path: Path
) -> None:
    kite.emulator.faults.expired_token = True
    with pytest.raises(LaneStopped, match="rebalance broker login zerodha") as stopped:
        tasks.fetch_holdings(lane(tmp_path), store, kite.broker)
    assert "\n" not in str(stopped.value)
    assert store.runs()[0].status == RunStatus.FAILED


def test_login_expired_while_placing_then_resumed_after_login(
    store: HistoryStore, kite: Venue, tmp_path: Path
) -> None:
    the_lane = lane(tmp_path, mode="paper")
    plan = make_plan()
    run = approved_run(store, plan, mode="paper")
    kite.emulator.faults.expired_token = True
    with pytest.raises(LaneStopped, match="rebalance broker login zerodha"):
        tasks.place_orders(the_lane, store, kite.broker, plan.plan_hash, settings=FAST)
    # The book cannot be read either: the record is not closed blind, it stays placing.
    with pytest.raises(LaneStopped, match=f"rebalance settle {run}"):
        tasks.record_run(the_lane, store, kite.broker, settings=FAST)
    assert store.status(run) is RunStatus.PLACING
    assert {leg.state for leg in store.orders(run)} == {OrderState.PENDING}
    kite.emulator.faults.expired_token = False  # the operator logged in again
    outcome = resume_run(the_lane, store, kite.broker, settings=FAST)
    assert outcome["status"] == RunStatus.COMPLETED
    assert kite.counts(tags_of(plan)) == [1, 1, 1, 1]


def test_wrong_angelone_credentials_say_what_to_fix(
    store: HistoryStore, angel: Venue, tmp_path: Path
) -> None:
    from rebalance.brokers.angelone import AngelOneBroker

    emulator = angel.emulator
    wrong_pin = AngelOneBroker(
        emulator.api_key,
        emulator.client_code,
        "0000" if emulator.pin != "0000" else "1111",
        emulator.totp_secret,
        cache_dir=tmp_path / "angel",
        root=emulator.url,
        instrument_master_url=emulator.master_url,
        timeout=0.5,
    )
    the_lane = lane(tmp_path, broker="angelone", connection="angel_main")
    expected = re.escape("connection 'angel_main' as docs/brokers.md#angelone-smartapi says")
    with pytest.raises(LaneStopped, match=expected):
        tasks.fetch_holdings(the_lane, store, wrong_pin)


def test_deselected_lane_stays_skipped(store: HistoryStore, tmp_path: Path) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    the_lane = replace(lane(tmp_path), params={"accounts": []})
    with pytest.raises(AirflowSkipException):
        tasks.record_run(the_lane, store)
    assert store.runs() == []


def test_rejected_plan_is_not_a_failure(store: HistoryStore, tmp_path: Path) -> None:
    plan = make_plan()
    run = store.open_run(
        RunKey("rebalance_test", "scheduled__2026-01-05T15:10:00+05:30", "zerodha_main"),
        portfolio_id="task_test",
        portfolio_name="Task Test",
        broker="zerodha",
        initiator="scheduled",
        broker_scope="zerodha_main",
        mode="live",
        policy={},
        targets={},
    )
    store.transition(run, RunStatus.PLANNED, None, plan=plan.to_dict(), plan_hash=plan.plan_hash)
    store.transition(run, RunStatus.AWAITING_APPROVAL, None)
    store.transition(run, RunStatus.REJECTED, "rejected by ops")
    assert tasks.record_run(lane(tmp_path), store)["status"] == "rejected"


def test_plan_mismatch_stops_the_lane(store: HistoryStore, kite: Venue, tmp_path: Path) -> None:
    plan = make_plan()
    approved_run(store, plan)
    with pytest.raises(LaneStopped):
        tasks.place_orders(lane(tmp_path), store, kite.broker, "0" * 64, settings=FAST)
    assert kite.emulator.orders_received == 0
    with pytest.raises(LaneStopped, match="failed"):
        tasks.record_run(lane(tmp_path), store, kite.broker, settings=FAST)
