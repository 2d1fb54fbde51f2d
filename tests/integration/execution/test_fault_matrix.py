"""The fault matrix: each scenario ends with exactly one broker order per leg (counted at the
emulator) and a complete record. Real Postgres, the Kite/SmartAPI emulators, the real adapters.

Reproduce: ``.venv/bin/pytest tests/integration/execution -v``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest

from rebalance.execution import PlanMismatch, place_approved, settle_interrupted
from rebalance.history.status import OrderState, RunStatus
from rebalance.history.store import HistoryStore

from .conftest import FAST, Venue, approved_run, make_plan, run_key, tags_of


class Crash(RuntimeError):  # noqa: N818
    """Stands for the process dying between two steps."""


def crash_at(point: str, leg: int | None = None) -> Any:
    fired = {"done": False}

    def checkpoint(name: str, info: Mapping[str, Any]) -> None:
        if fired["done"] or name != point or (leg is not None and info.get("leg") != leg):
            return
        fired["done"] = True
        raise Crash(f"crash at {name} {dict(info)}")

    return checkpoint


def place(store: HistoryStore, run: int, venue: Venue, plan: Any, **kw: Any) -> Any:
    kw.setdefault("settings", FAST)
    return place_approved(
        store,
        run,
        venue.broker,
        approved_hash=plan.plan_hash,
        tag_seed=run_key(),
        account="zerodha_main",
        **kw,
    )


def assert_exactly_once(store: HistoryStore, run: int, venue: Venue, plan: Any) -> None:
    tags = tags_of(plan)
    assert venue.counts(tags) == [1] * len(tags), "one broker order per leg"
    legs = store.orders(run)
    assert [leg.tag for leg in legs] == tags
    for leg in legs:
        assert leg.state == OrderState.COMPLETE, leg
        assert leg.broker_order_id, leg
        assert leg.filled_quantity == leg.quantity
        assert leg.broker_orders == 1
        assert leg.plan_hash == plan.plan_hash
    record = store.run(run)
    assert record.status == RunStatus.PLACED
    assert record.executed_at is not None
    assert record.placement["complete"] == len(tags)


def test_happy_path_sells_first(store: HistoryStore, kite: Venue) -> None:
    plan = make_plan()
    run = approved_run(store, plan)
    result = place(store, run, kite, plan)
    assert result.status is RunStatus.PLACED
    assert result.sent == 4
    assert_exactly_once(store, run, kite, plan)
    # Sells reached the broker before any buy (order ids increase in arrival order).
    book = {o["tag"]: o["order_id"] for o in kite.emulator.orders}
    sells, buys = tags_of(plan)[:2], tags_of(plan)[2:]
    assert max(book[t] for t in sells) < min(book[t] for t in buys)


def test_crash_after_write_ahead(store: HistoryStore, kite: Venue) -> None:
    plan = make_plan()
    run = approved_run(store, plan)
    with pytest.raises(Crash):
        place(store, run, kite, plan, checkpoint=crash_at("written_ahead"))
    assert kite.emulator.orders_received == 0
    assert {leg.state for leg in store.orders(run)} == {OrderState.PENDING}
    assert store.status(run) is RunStatus.PLACING
    place(store, run, kite, plan)
    assert_exactly_once(store, run, kite, plan)


def test_crash_after_broker_accepted_before_recording(store: HistoryStore, kite: Venue) -> None:
    plan = make_plan()
    run = approved_run(store, plan)
    with pytest.raises(Crash):
        place(store, run, kite, plan, checkpoint=crash_at("after_send", leg=1))
    legs = store.orders(run)
    assert legs[1].state == OrderState.SENT
    assert legs[1].broker_order_id is None
    result = place(store, run, kite, plan)
    assert result.sent == 2  # only the two buys; the accepted sell was found in the book
    assert_exactly_once(store, run, kite, plan)


def test_crash_after_marking_sent_before_sending(store: HistoryStore, kite: Venue) -> None:
    plan = make_plan()
    run = approved_run(store, plan)
    with pytest.raises(Crash):
        place(store, run, kite, plan, checkpoint=crash_at("before_send", leg=0))
    assert kite.emulator.orders_received == 0
    result = place(store, run, kite, plan)  # not in the book past the grace: sent again
    assert_exactly_once(store, run, kite, plan)
    assert store.orders(run)[0].attempts == 2
    assert result.sent == 4


def test_timeout_where_the_order_was_placed(store: HistoryStore, kite: Venue) -> None:
    plan = make_plan()
    run = approved_run(store, plan)
    kite.emulator.faults.place_then_timeout = 1
    result = place(store, run, kite, plan)
    assert_exactly_once(store, run, kite, plan)
    assert store.orders(run)[0].attempts == 1
    assert result.sent == 4


def test_timeout_where_the_order_was_not_placed(store: HistoryStore, kite: Venue) -> None:
    plan = make_plan()
    run = approved_run(store, plan)
    kite.emulator.faults.timeout_without_placing = 1
    place(store, run, kite, plan)
    assert_exactly_once(store, run, kite, plan)
    assert store.orders(run)[0].attempts == 2  # sent again only after the grace
    assert any("sending again" in (e.message or "") for e in store.events(run))


def test_lagging_book_is_waited_for_not_resent(store: HistoryStore, kite: Venue) -> None:
    """The order was placed, the send timed out, and the book hides it for a while."""
    plan = make_plan()
    run = approved_run(store, plan)
    kite.emulator.faults.place_then_timeout = 1
    first_tag = tags_of(plan)[0]
    real_orders = kite.broker.orders
    hidden = {"reads": 0}

    def lagging_orders() -> Any:
        hidden["reads"] += 1
        book = real_orders()
        return [r for r in book if r.tag != first_tag] if hidden["reads"] <= 3 else book

    kite.broker.orders = lagging_orders
    settings = FAST.__class__(**{**FAST.__dict__, "resend_grace_seconds": 2.0})
    place(store, run, kite, plan, settings=settings)
    assert_exactly_once(store, run, kite, plan)
    assert store.orders(run)[0].attempts == 1


def test_whole_task_retried(store: HistoryStore, kite: Venue) -> None:
    """A retry after a failure mid-placement, then one more after success."""
    plan = make_plan()
    run = approved_run(store, plan)
    with pytest.raises(Crash):
        place(store, run, kite, plan, checkpoint=crash_at("sells_sent"))
    first = place(store, run, kite, plan)
    again = place(store, run, kite, plan)
    assert first.sent == 2
    assert again.sent == 0
    assert again.finished_before
    assert_exactly_once(store, run, kite, plan)


def test_two_copies_started_together(store: HistoryStore, kite: Venue) -> None:
    plan = make_plan()
    run = approved_run(store, plan)
    kite.emulator.faults.slow_seconds = 0.05  # widen the window in which both copies run
    barrier = threading.Barrier(2)
    results: list[Any] = []
    errors: list[BaseException] = []

    def copy() -> None:
        barrier.wait()
        try:
            results.append(place(store, run, kite, plan))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=copy) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert sorted(r.sent for r in results) == [0, 4]
    assert assert_exactly_once(store, run, kite, plan) is None
    assert any("waited" in (e.message or "") for e in store.events(run))


def test_two_portfolios_at_once_do_not_mix(store: HistoryStore, kite: Venue) -> None:
    plan_a, plan_b = make_plan(), make_plan(extra_buy=False)
    run_a = approved_run(store, plan_a, dag_id="rebalance_a", portfolio_id="a")
    run_b = approved_run(store, plan_b, dag_id="rebalance_b", portfolio_id="b")
    rid = "scheduled__2026-01-05T15:10:00+05:30"

    def go(run: int, plan: Any, dag: str) -> None:
        place_approved(
            store,
            run,
            kite.broker,
            approved_hash=plan.plan_hash,
            tag_seed=run_key(dag, rid),
            account="zerodha_main",
            settings=FAST,
        )

    threads = [
        threading.Thread(target=go, args=(run_a, plan_a, "rebalance_a")),
        threading.Thread(target=go, args=(run_b, plan_b, "rebalance_b")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    tags_a = tags_of(plan_a, key=run_key("rebalance_a", rid))
    tags_b = tags_of(plan_b, key=run_key("rebalance_b", rid))
    assert not set(tags_a) & set(tags_b)
    assert kite.counts(tags_a) == [1, 1, 1, 1]
    assert kite.counts(tags_b) == [1, 1, 1]
    ids_a = {leg.broker_order_id for leg in store.orders(run_a)}
    ids_b = {leg.broker_order_id for leg in store.orders(run_b)}
    assert len(ids_a) == 4
    assert len(ids_b) == 3
    assert not ids_a & ids_b
    assert store.status(run_a) is RunStatus.PLACED
    assert store.status(run_b) is RunStatus.PLACED


def test_rerunning_a_finished_run_places_nothing(store: HistoryStore, kite: Venue) -> None:
    plan = make_plan()
    run = approved_run(store, plan)
    place(store, run, kite, plan)
    store.transition(run, RunStatus.COMPLETED, None)
    received = kite.emulator.orders_received
    result = place(store, run, kite, plan)
    assert result.sent == 0
    assert result.finished_before
    assert result.status is RunStatus.COMPLETED
    assert kite.emulator.orders_received == received


def test_only_the_approved_plan_is_placed(store: HistoryStore, kite: Venue) -> None:
    plan = make_plan()
    run = approved_run(store, plan)
    other = make_plan(extra_buy=False)
    with pytest.raises(PlanMismatch):
        place(store, run, kite, other)
    assert kite.emulator.orders_received == 0
    assert store.status(run) is RunStatus.FAILED
    assert "not the approved plan" in store.run(run).status_reason


def test_partial_fill_is_recorded_and_remainder_cancelled(store: HistoryStore, kite: Venue) -> None:
    plan = make_plan()
    run = approved_run(store, plan)
    kite.emulator.faults.partial_fill = {"ITC": 7}
    settings = FAST.__class__(**{**FAST.__dict__, "deadline_seconds": 0.5})
    result = place(store, run, kite, plan, settings=settings)
    assert kite.counts(tags_of(plan)) == [1, 1, 1, 1]
    itc = next(leg for leg in store.orders(run) if leg.symbol == "ITC")
    assert itc.state == OrderState.CANCELLED
    assert itc.filled_quantity == 7
    assert result.status is RunStatus.PARTIALLY_FILLED
    assert result.partially_filled == 1
    assert store.status(run) is RunStatus.PARTIALLY_FILLED


def test_rejected_sell_holds_back_unfunded_buys(store: HistoryStore, kite: Venue) -> None:
    plan = make_plan()
    run = approved_run(store, plan)
    kite.emulator.faults.unauthorised_sells = {"RELIANCE", "INFY"}
    kite.emulator.cash = 9_000.0  # covers the HDFCBANK buy (leg 2, ~5286 with 1%), not ITC too
    result = place(store, run, kite, plan)
    states = {leg.symbol: leg.state for leg in store.orders(run)}
    assert states == {
        "RELIANCE": OrderState.REJECTED,
        "INFY": OrderState.REJECTED,
        "HDFCBANK": OrderState.COMPLETE,
        "ITC": OrderState.DENIED,
    }
    assert kite.counts(tags_of(plan)) == [1, 1, 1, 0]  # a rejected order is in the book too
    assert result.status is RunStatus.PARTIALLY_FILLED
    itc = next(leg for leg in store.orders(run) if leg.symbol == "ITC")
    assert "sells funding the buys filled 0 of 15" in itc.error


def test_interrupted_placement_is_settled_from_the_book(store: HistoryStore, kite: Venue) -> None:
    plan = make_plan()
    run = approved_run(store, plan)
    with pytest.raises(Crash):
        place(store, run, kite, plan, checkpoint=crash_at("after_send", leg=0))
    result = settle_interrupted(store, run, kite.broker, settings=FAST)
    assert kite.counts(tags_of(plan)) == [1, 0, 0, 0]
    legs = store.orders(run)
    assert legs[0].state == OrderState.COMPLETE
    # Never sent, and recorded so: not "outcome unknown".
    assert [leg.state for leg in legs[1:]] == [OrderState.NOT_SENT] * 3
    assert all(leg.error.startswith("never sent") for leg in legs[1:])
    assert result.status is RunStatus.PARTIALLY_FILLED
    assert result.not_sent == 3
    assert result.unknown == 0
    reason = store.run(run).status_reason
    assert reason.startswith("placement interrupted")
    assert "3 never sent" in reason
    assert "outcome unknown" not in reason


def test_angelone_timeouts_both_ways(store: HistoryStore, angel: Venue) -> None:
    plan = make_plan()
    run = approved_run(store, plan)
    angel.emulator.faults.place_then_timeout = 1
    angel.emulator.faults.timeout_without_placing = 0
    with pytest.raises(Crash):
        place(store, run, angel, plan, checkpoint=crash_at("after_send", leg=1))
    angel.emulator.faults.timeout_without_placing = 1
    place(store, run, angel, plan)
    assert_exactly_once(store, run, angel, plan)
