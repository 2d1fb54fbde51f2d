"""Notes 13.6: winners, losers and P&L since the last completed rebalance, by hand."""

from __future__ import annotations

import json

import pytest
from drift_support import snapshot

from rebalance.domain.market import Side
from rebalance.drift.since_last import Fill, since_last_rebalance


def test_hand_checked_example() -> None:
    # The last rebalance planned from this snapshot, then sold 20 A at 201, bought 30 C at 101
    # and sold D out.
    baseline = snapshot(
        [
            {"symbol": "A", "quantity": 100, "last_price": 200.0},
            {"symbol": "B", "quantity": 50, "last_price": 400.0},
            {"symbol": "C", "quantity": 0, "last_price": 100.0},
            {"symbol": "D", "quantity": 20, "last_price": 50.0},
            {"symbol": "E", "quantity": 10, "last_price": 100.0},
        ]
    )
    fills = [
        Fill("A", Side.SELL, 20, 201.0),
        Fill("C", Side.BUY, 30, 101.0),
        Fill("D", Side.SELL, 20, 50.0),
        Fill("B", Side.BUY, 0, None),  # an order that filled nothing changes nothing
    ]
    today = snapshot(
        [
            {"symbol": "A", "quantity": 80, "last_price": 220.0},
            {"symbol": "B", "quantity": 40, "last_price": 380.0},  # 10 sold outside since
            {"symbol": "C", "quantity": 30, "last_price": 110.0},
            {"symbol": "D", "quantity": 0, "last_price": 55.0},
        ]
    )
    since = since_last_rebalance(baseline, fills, today, run_id=7)
    by = {s.symbol: s for s in since.symbols}
    assert sorted(by) == ["A", "B", "C"]  # D was sold out; E has no price today
    assert since.skipped == (("E", "no price today"),)

    a, b, c = by["A"], by["B"], by["C"]
    # A: 80 kept at 200 = 16,000 -> 80 x 220 = 17,600
    assert (a.quantity, a.value_then, a.value_now) == (80, 16_000.0, 17_600.0)
    assert a.price_change_pct == pytest.approx(10.0)
    assert a.pnl == pytest.approx(1_600.0)
    assert a.pnl_pct == pytest.approx(10.0)
    # B: the 50 the rebalance left, though 40 are held today
    assert b.pnl == pytest.approx(50 * (380 - 400))
    assert b.price_change_pct == pytest.approx(-5.0)
    assert b.quantity_changed
    assert not a.quantity_changed
    # C: bought 30 at 101 = 3,030 -> 30 x 110 = 3,300; the price move is from the snapshot's 100
    assert c.value_then == pytest.approx(3_030.0)
    assert c.pnl == pytest.approx(270.0)
    assert c.price_change_pct == pytest.approx(10.0)
    assert c.pnl_pct == pytest.approx(270 / 3030 * 100)

    assert (since.winners, since.losers) == (2, 1)
    assert since.winners_pct == pytest.approx(200 / 3)
    assert since.losers_pct == pytest.approx(100 / 3)
    assert since.pnl == pytest.approx(1_600 - 1_000 + 270)
    assert since.value_then == pytest.approx(16_000 + 20_000 + 3_030)
    assert since.pnl_pct == pytest.approx(870 / 39_030 * 100)

    data = json.loads(json.dumps(since.to_dict()))
    assert data["run_id"] == 7
    assert data["winners"] == 2
    assert [s["symbol"] for s in data["symbols"]] == ["A", "B", "C"]
    assert data["skipped"] == [{"symbol": "E", "why": "no price today"}]


def test_a_new_symbol_bought_at_the_rebalance_uses_its_fill_price() -> None:
    baseline = snapshot([{"symbol": "A", "quantity": 10, "last_price": 100.0}])
    today = snapshot(
        [
            {"symbol": "A", "quantity": 10, "last_price": 90.0},
            {"symbol": "N", "quantity": 5, "last_price": 60.0},
        ]
    )
    since = since_last_rebalance(baseline, [Fill("N", Side.BUY, 5, 50.0)], today)
    n = next(s for s in since.symbols if s.symbol == "N")
    assert n.price_then == 50.0
    assert n.pnl == pytest.approx(50.0)
    assert (since.winners, since.losers) == (1, 1)


def test_nothing_held_since_gives_no_figures() -> None:
    baseline = snapshot([{"symbol": "A", "quantity": 0, "last_price": 100.0}])
    since = since_last_rebalance(baseline, [], baseline)
    assert since.symbols == ()
    assert since.winners_pct is None
    assert since.pnl_pct is None
