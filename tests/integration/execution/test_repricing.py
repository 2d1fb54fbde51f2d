"""Every order priced, and re-pricing rounds within the approved quantity (issue 12).

Real adapters against the strict-2026 emulators, which refuse unpriced orders here (the test
connections have no default protection): a remainder still open at the fill deadline is cancelled,
re-priced from a fresh quote and sent again as a child order (``child_tag``), recorded under its
leg; the orders of a leg never add up to more than its approved quantity.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Any

import pytest

from rebalance.brokers.pricing import PricingKind, PricingPolicy
from rebalance.brokers.tags import child_tag, split_tag
from rebalance.execution import place_approved
from rebalance.history.status import OrderState, RunStatus
from rebalance.history.store import HistoryStore

from .conftest import FAST, Venue, approved_run, make_plan, run_key
from .test_fault_matrix import Crash

pytestmark = [pytest.mark.timeout(120)]

ROUNDS = replace(FAST, deadline_seconds=0.6, max_reprice_rounds=2)


def place(store: HistoryStore, run: int, venue: Venue, plan: Any, **kw: Any) -> Any:
    kw.setdefault("settings", ROUNDS)
    return place_approved(
        store,
        run,
        venue.broker,
        approved_hash=plan.plan_hash,
        tag_seed=run_key(),
        account="zerodha_main",
        **kw,
    )


def kite_orders_by_leg(venue: Venue) -> dict[str, list[dict[str, Any]]]:
    legs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for order in venue.emulator.orders:
        legs[split_tag(order["tag"])[0]].append(order)
    return legs


def assert_within_approved(store: HistoryStore, run: int, venue: Venue) -> None:
    """Every order priced (LIMIT with a price), and a leg's orders never above its quantity."""
    by_leg = kite_orders_by_leg(venue)
    for leg in store.orders(run):
        orders = by_leg[leg.tag]
        assert all(o["order_type"] == "LIMIT" and o["price"] > 0 for o in orders), orders
        assert sum(int(o["filled_quantity"]) for o in orders) == leg.filled_quantity
        assert leg.filled_quantity <= leg.quantity
        # only one order of a leg is open at a time: each child asks for what is left
        asked, filled_before = [], 0
        for order in sorted(orders, key=lambda o: split_tag(o["tag"])[1]):
            asked.append(int(order["quantity"]))
            assert int(order["quantity"]) == leg.quantity - filled_before, orders
            filled_before += int(order["filled_quantity"])
        assert [c["quantity"] for c in leg.children] == asked
        assert [c["tag"] for c in leg.children] == [o["tag"] for o in orders]


def test_a_partial_fill_completes_by_repricing(store: HistoryStore, kite: Venue) -> None:
    plan = make_plan()
    run = approved_run(store, plan)
    kite.emulator.faults.partial_fill = {"ITC": 12}  # of 20: 12, then the child's 8
    result = place(store, run, kite, plan)
    assert result.status is RunStatus.PLACED, result.reason
    itc = next(leg for leg in store.orders(run) if leg.symbol == "ITC")
    assert itc.order_state is OrderState.COMPLETE
    assert itc.filled_quantity == 20
    assert itc.reprice_round == 1
    assert [c["round"] for c in itc.children] == [0, 1]
    assert itc.children[1]["tag"] == child_tag(itc.tag, 1)
    assert kite.emulator.orders_for_tag(itc.tag) == 1
    assert kite.emulator.orders_for_tag(child_tag(itc.tag, 1)) == 1
    assert_within_approved(store, run, kite)
    events = " ".join(e.message or "" for e in store.events(run))
    assert "8 of 20 shares unfilled at the fill deadline, re-priced" in events


def test_a_market_move_is_caught_by_a_wider_round(store: HistoryStore, kite: Venue) -> None:
    """The market trades 0.6% above the quote: the 0.5% limit rests; round 1 (0.75%) fills."""
    plan = make_plan()
    run = approved_run(store, plan)
    kite.emulator.faults.market_moves = {"HDFCBANK": 0.6}
    result = place(store, run, kite, plan)
    assert result.status is RunStatus.PLACED, result.reason
    leg = next(leg for leg in store.orders(run) if leg.symbol == "HDFCBANK")
    assert leg.reprice_round == 1
    first, second = leg.children
    assert second["price"] > first["price"]  # widened by reprice_step_pct
    assert_within_approved(store, run, kite)


def test_rounds_are_bounded(store: HistoryStore, kite: Venue) -> None:
    """A market far away: max_reprice_rounds children at most, then the leg stays cancelled."""
    plan = make_plan()
    run = approved_run(store, plan)
    kite.emulator.faults.market_moves = {"HDFCBANK": 5.0}
    result = place(store, run, kite, plan)
    assert result.status is RunStatus.PARTIALLY_FILLED
    leg = next(leg for leg in store.orders(run) if leg.symbol == "HDFCBANK")
    assert leg.order_state is OrderState.CANCELLED
    assert leg.filled_quantity == 0
    assert leg.reprice_round == ROUNDS.max_reprice_rounds
    assert len(kite_orders_by_leg(kite)[leg.tag]) == 1 + ROUNDS.max_reprice_rounds
    assert_within_approved(store, run, kite)


def test_the_price_move_guard_stops_repricing(store: HistoryStore, kite: Venue) -> None:
    plan = make_plan()
    run = approved_run(store, plan)
    kite.emulator.faults.market_moves = {"HDFCBANK": 5.0}
    # the quote now is 3% above the plan's 1742.55: beyond the 2% guard
    kite.emulator.faults.quote_patch = {"HDFCBANK": {"last_price": 1794.85}}
    place(store, run, kite, plan, settings=replace(ROUNDS, max_price_move_pct=2.0))
    leg = next(leg for leg in store.orders(run) if leg.symbol == "HDFCBANK")
    assert leg.order_state is OrderState.CANCELLED
    assert leg.reprice_round == 0
    assert len(kite_orders_by_leg(kite)[leg.tag]) == 1
    events = " ".join(e.message or "" for e in store.events(run))
    assert "not re-priced, the price moved" in events


def test_a_crash_before_a_child_is_sent_finishes_with_the_same_child(
    store: HistoryStore, kite: Venue
) -> None:
    """The child is written ahead (round, quantity); the retry sends it once, same tag."""
    plan = make_plan()
    run = approved_run(store, plan)
    kite.emulator.faults.partial_fill = {"ITC": 12}

    def crash_on_child(name: str, info: Any) -> None:
        if name == "before_send" and str(info.get("tag", "")).endswith("R01"):
            raise Crash("died before sending the child")

    with pytest.raises(Crash):
        place(store, run, kite, plan, checkpoint=crash_on_child)
    assert store.status(run) is RunStatus.PLACING
    result = place(store, run, kite, plan)
    assert result.status is RunStatus.PLACED, result.reason
    itc = next(leg for leg in store.orders(run) if leg.symbol == "ITC")
    assert itc.filled_quantity == 20
    assert kite.emulator.orders_for_tag(child_tag(itc.tag, 1)) == 1
    assert_within_approved(store, run, kite)


def test_market_orders_carry_explicit_protection(store: HistoryStore, kite: Venue) -> None:
    plan = make_plan()
    run = approved_run(store, plan)
    market = PricingPolicy(kind=PricingKind.MARKET, market_protection_pct=2.0)
    result = place(store, run, kite, plan, settings=replace(ROUNDS, pricing=market))
    assert result.status is RunStatus.PLACED, result.reason
    assert {o["market_protection"] for o in kite.emulator.orders} == {2.0}


def test_angelone_orders_are_limits_within_the_circuit(store: HistoryStore, angel: Venue) -> None:
    plan = make_plan()
    run = approved_run(store, plan)
    angel.emulator.faults.partial_fill = {"ITC": 12}
    result = place(store, run, angel, plan)
    assert result.status is RunStatus.PLACED, result.reason
    assert all(o["ordertype"] == "LIMIT" and o["price"] > 0 for o in angel.emulator.orders)
    itc = next(leg for leg in store.orders(run) if leg.symbol == "ITC")
    assert itc.filled_quantity == 20
    assert itc.reprice_round == 1
