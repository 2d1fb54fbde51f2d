"""The worked numbers of the notes' sections 4.1 to 4.4 (and the guardrails of 7), by hand.

The book used by most examples (value ₹1,00,000, fully invested):

    symbol  price   qty   value   live   target  drift
    A         100   550  55,000   55%    40%     +15%  -> sell ₹15,000 = 150 shares
    B         200    50  10,000   10%    20%     -10%  -> buy  ₹10,000 =  50 shares
    C          50   200  10,000   10%    20%     -10%  -> buy  ₹10,000 = 200 shares
    D       1,000    19  19,000   19%    20%      -1%  -> inside the 2% / 15%-of-target bands
    cash                  6,000    6%     0%
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from planner_support import TODAY, order, position, signed_quantity, snapshot

from rebalance.costs import broker_rates, order_charges
from rebalance.domain.market import Side
from rebalance.planning import plan_rebalance, verify_plan
from rebalance.policy import Policy

ROWS: list[dict[str, Any]] = [
    {"symbol": "A", "quantity": 550, "last_price": 100.0},
    {"symbol": "B", "quantity": 50, "last_price": 200.0},
    {"symbol": "C", "quantity": 200, "last_price": 50.0},
    {"symbol": "D", "quantity": 19, "last_price": 1000.0},
]
TARGETS = {"A": 0.40, "B": 0.20, "C": 0.20, "D": 0.20}
CASH = 6000.0
FAST_ONLY = {"optimiser_time_cap_s": 0}  # the fast plan alone, without the optimiser


def policy(**overrides: Any) -> Policy:
    base: dict[str, Any] = {"min_trade_value_inr": 0, "max_position_weight_pct": 100}
    return Policy(**{**base, **overrides})


def test_4_1_weights_drift_and_desired_trades() -> None:
    plan = plan_rebalance(snapshot(ROWS, CASH), TARGETS, policy(rebalance_budget_pct=100))
    assert plan.summary.portfolio_value == pytest.approx(100_000)
    assert [position(plan, s).weight_before for s in "ABCD"] == pytest.approx(
        [0.55, 0.1, 0.1, 0.19]
    )
    assert plan.summary.max_drift_before == pytest.approx(0.15)
    assert [signed_quantity(plan, s) for s in "ABCD"] == [-150, 50, 200, 0]
    assert position(plan, "A").weight_after == pytest.approx(0.40, abs=1e-3)
    assert plan.summary.max_drift_after == pytest.approx(0.01, abs=1e-3)  # D, inside its band


def test_4_2_bands_leave_small_drift_alone() -> None:
    plan = plan_rebalance(snapshot(ROWS, CASH), TARGETS, policy(rebalance_budget_pct=100))
    assert position(plan, "D").skipped == ("inside_band",)
    # 1% drift on a 20% target is 5% of it: inside; a 4% relative band puts it outside.
    tighter = plan_rebalance(
        snapshot(ROWS, CASH), TARGETS, policy(rebalance_budget_pct=100, drift_band_rel_pct=4)
    )
    assert signed_quantity(tighter, "D") == 1


def test_4_2_absolute_band_alone_triggers() -> None:
    # A at 42% against 40%: 2% absolute (>= 2%) but only 5% of the target (< 15%)
    rows = [
        {"symbol": "A", "quantity": 420, "last_price": 100.0},
        {"symbol": "B", "quantity": 580, "last_price": 100.0},
    ]
    plan = plan_rebalance(snapshot(rows), {"A": 0.4, "B": 0.6}, policy(rebalance_budget_pct=100))
    assert signed_quantity(plan, "A") == -20
    # no cash figure: B's buy is paid by A's ₹2,000 less its charges, so 19 shares, not 20
    assert signed_quantity(plan, "B") == 19
    with_bands_wider = plan_rebalance(
        snapshot(rows), {"A": 0.4, "B": 0.6}, policy(drift_band_abs_pct=2.5)
    )
    assert with_bands_wider.orders == ()
    assert position(with_bands_wider, "A").skipped == ("inside_band",)


def test_4_3_budget_scales_both_sides_then_fills_to_target() -> None:
    # budget 10% = ₹10,000; total buy 20,000, total sell 15,000: scale = 10,000 / 20,000 = 0.5
    plan = plan_rebalance(snapshot(ROWS, CASH), TARGETS, policy(rebalance_budget_pct=10))
    assert plan.summary.scale == pytest.approx(0.5)
    assert signed_quantity(plan, "B") == 25  # 5,000 / 200
    assert signed_quantity(plan, "C") == 100  # 5,000 / 50
    # sells: 7,500 (75 shares) in the proportional plan, then the unused sell budget goes on
    # toward A's target: 10,000 = 100 shares
    assert signed_quantity(plan, "A") == -100
    assert order(plan, "A").reasons == ("drift", "budget_scaled", "reconciled")
    assert order(plan, "B").reasons == ("drift", "budget_scaled")
    assert plan.summary.budget_used_pct == pytest.approx(100.0)


def test_4_3_proportional_only_when_fill_to_target_is_off() -> None:
    plan = plan_rebalance(
        snapshot(ROWS, CASH), TARGETS, policy(rebalance_budget_pct=10, fill_to_target=False)
    )
    assert [signed_quantity(plan, s) for s in "ABC"] == [-75, 25, 100]


def test_4_3_turnover_budget_and_4_4_reconciliation() -> None:
    # turnover: scale = 10,000 / (20,000 + 15,000) = 0.2857
    # continuous: A 4,285.7 (42.86 sh), B 2,857.1 (14.29 sh), C 2,857.1 (57.14 sh)
    # floor: 42 + 14 + 57 shares = 4,200 + 2,800 + 2,850 = 9,850; ₹150 left
    # the fast plan's reconciliation: A to its nearest share 43 (+100), then one more C (+50):
    # exactly 10,000
    rule = policy(rebalance_budget_pct=10, budget_mode="turnover")
    fast = plan_rebalance(snapshot(ROWS, CASH), TARGETS, rule.with_overrides(FAST_ONLY))
    assert fast.summary.scale == pytest.approx(10_000 / 35_000)
    assert [signed_quantity(fast, s) for s in "ABC"] == [-43, 14, 58]
    assert fast.summary.buy_value + fast.summary.sell_value == pytest.approx(10_000)
    assert "reconciled" in order(fast, "C").reasons
    assert "reconciled" not in order(fast, "B").reasons
    assert fast.summary.solver == "heuristic"
    # fill_to_target off: the optimiser stays within the proportional plan's nearest shares
    proportional = plan_rebalance(
        snapshot(ROWS, CASH), TARGETS, rule.with_overrides({"fill_to_target": False})
    )
    assert [signed_quantity(proportional, s) for s in "ABC"] == [-43, 14, 57]


def test_4_3_turnover_budget_the_optimiser_spends_on_buys() -> None:
    # With ₹6,000 of spare cash (cash target 0), a rupee bought cuts two drifts (the symbol's
    # and the cash's) while a rupee sold moves drift from A to cash: the optimiser spends the
    # turnover on buys, selling only the ~₹2,000 of A that the buys need beyond the cash.
    rule = policy(rebalance_budget_pct=10, budget_mode="turnover")
    plan = plan_rebalance(snapshot(ROWS, CASH), TARGETS, rule)
    fast = plan_rebalance(snapshot(ROWS, CASH), TARGETS, rule.with_overrides(FAST_ONLY))
    assert plan.summary.solver == "milp_optimal"
    assert plan.summary.scale == pytest.approx(10_000 / 35_000)  # the notes' scale is reported
    assert plan.summary.buy_value + plan.summary.sell_value <= 10_000
    assert plan.summary.sell_value == pytest.approx(2_000)
    assert plan.summary.buy_value >= 7_900
    assert plan.summary.objective_after < fast.summary.objective_after
    assert verify_plan(plan, snapshot(ROWS, CASH), TARGETS, rule) == []


def test_4_4_floor_never_sells_above_sellable() -> None:
    rows = [{**ROWS[0], "sellable_quantity": 60}, *ROWS[1:]]
    plan = plan_rebalance(snapshot(rows, CASH), TARGETS, policy(rebalance_budget_pct=100))
    assert signed_quantity(plan, "A") == -60
    assert "sellable_limited" in order(plan, "A").reasons
    # buys are paid by cash 6,000 + proceeds 6,000 less charges: not all 20,000 of them
    assert plan.summary.buy_value <= CASH + 6000
    assert verify_plan(plan, snapshot(rows, CASH), TARGETS, policy(rebalance_budget_pct=100)) == []


def test_charges_of_an_order_follow_the_rates_table() -> None:
    zerodha = order_charges(100_000, Side.BUY, "NSE", broker_rates("zerodha"))
    assert zerodha.stt == pytest.approx(100)  # 0.1%
    assert zerodha.stamp_duty == pytest.approx(15)  # 0.015% on buys
    assert zerodha.exchange_txn == pytest.approx(2.97)  # 0.00297%
    assert zerodha.sebi_fee == pytest.approx(0.1)  # ₹10 / crore
    assert zerodha.brokerage == 0
    assert zerodha.dp_charge == 0
    assert zerodha.gst == pytest.approx(0.18 * (2.97 + 0.1 + 0.1))
    sell = order_charges(100_000, Side.SELL, "NSE", broker_rates("angelone"))
    assert sell.brokerage == pytest.approx(20)  # min(₹20, 0.1%)
    assert sell.stamp_duty == 0
    assert sell.dp_charge == pytest.approx(23.6)  # ₹20 + GST per scrip sold
    small = order_charges(1000, Side.BUY, "NSE", broker_rates("angelone"))
    assert small.brokerage == pytest.approx(2)  # 0.1% = ₹1, minimum ₹2


def test_plan_shows_charges_per_order_and_in_total() -> None:
    plan = plan_rebalance(snapshot(ROWS, CASH), TARGETS, policy(rebalance_budget_pct=100))
    assert all(o.charges > 0 for o in plan.orders)
    assert plan.summary.estimated_charges == pytest.approx(
        sum(o.charges for o in plan.orders), abs=0.05
    )
    assert plan.summary.charges_breakdown["dp_charge"] == pytest.approx(15.34)  # one scrip sold


def test_7_max_trades_keeps_the_biggest_drift_reducers() -> None:
    plan = plan_rebalance(
        snapshot(ROWS, CASH), TARGETS, policy(rebalance_budget_pct=100, max_trades=2)
    )
    assert len(plan.orders) == 2
    assert signed_quantity(plan, "A") < 0  # the largest drift, and it pays for the buy
    left_out = [p for p in plan.positions if p.skipped == ("max_trades",)]
    assert len(left_out) == 1


def test_7_min_trade_value_drops_dust() -> None:
    rule = policy(rebalance_budget_pct=100, min_trade_value_inr=12_000)
    fast = plan_rebalance(snapshot(ROWS, CASH), TARGETS, rule.with_overrides(FAST_ONLY))
    assert signed_quantity(fast, "A") == -150
    assert position(fast, "B").skipped == ("below_min_trade_value",)
    assert all(o.notional >= 12_000 for o in fast.orders)
    # The optimiser may buy more than a symbol's gap to reach the minimum when that still cuts
    # its drift (B and C: ₹10,000 under -> ₹2,000 over), paid by selling more of A.
    plan = plan_rebalance(snapshot(ROWS, CASH), TARGETS, rule)
    assert [signed_quantity(plan, s) for s in "BC"] == [60, 240]
    assert all(o.notional >= 12_000 for o in plan.orders)
    assert plan.summary.objective_after < fast.summary.objective_after
    assert verify_plan(plan, snapshot(ROWS, CASH), TARGETS, rule) == []


def test_7_max_weight_trims_and_caps_buys() -> None:
    # A at 51% is inside its band (drift 3% < 5%) but above the 50% max weight: trimmed
    rows = [
        {"symbol": "A", "quantity": 510, "last_price": 100.0},
        {"symbol": "B", "quantity": 490, "last_price": 100.0},
    ]
    rule = Policy(min_trade_value_inr=0, max_position_weight_pct=50, drift_band_abs_pct=5)
    plan = plan_rebalance(snapshot(rows, 0.0), {"A": 0.48, "B": 0.52}, rule)
    assert order(plan, "A").reasons[0] == "max_weight_trim"
    assert signed_quantity(plan, "A") in (-10, -11)  # 10 shares, one more if charges tip it
    assert position(plan, "A").weight_after <= 0.50
    # B's buy may not take it above the max weight either
    capped = plan_rebalance(
        snapshot(rows, 50_000.0),
        {"A": 0.3, "B": 0.7},
        Policy(min_trade_value_inr=0, max_position_weight_pct=50, rebalance_budget_pct=100),
    )
    assert position(capped, "B").weight_after <= 0.50
    assert "max_weight_limited" in order(capped, "B").reasons


def test_7_lists_and_filters() -> None:
    base = {"rebalance_budget_pct": 100}
    no_sell = plan_rebalance(snapshot(ROWS, CASH), TARGETS, policy(**base, no_sell=["A"]))
    assert position(no_sell, "A").skipped == ("no_sell",)
    no_buy = plan_rebalance(snapshot(ROWS, CASH), TARGETS, policy(**base, no_buy=["B"]))
    assert position(no_buy, "B").skipped == ("no_buy",)
    buys_only = plan_rebalance(
        snapshot(ROWS, CASH), TARGETS, policy(**base, trade_filter="buys_only")
    )
    assert all(o.side is Side.BUY for o in buys_only.orders)
    assert position(buys_only, "A").skipped == ("filtered",)
    sells_only = plan_rebalance(
        snapshot(ROWS, CASH), TARGETS, policy(**base, trade_filter="sells_only")
    )
    assert [o.symbol for o in sells_only.orders] == ["A"]


def test_13_5_holding_period_blocks_recent_lots() -> None:
    rows = [{**ROWS[0], "acquired_on": date(2026, 6, 1)}, *ROWS[1:]]
    rule = policy(rebalance_budget_pct=100, min_holding_days=365)
    plan = plan_rebalance(snapshot(rows, CASH), TARGETS, rule, today=TODAY)
    assert position(plan, "A").skipped == ("holding_period",)
    later = plan_rebalance(snapshot(rows, CASH), TARGETS, rule, today=date(2027, 6, 1))
    assert signed_quantity(later, "A") == -150


def test_5_overlays_tag_and_scale_trades() -> None:
    rows = [
        {**ROWS[0], "average_price": 50.0},  # A: +100% since entry, over target
        {**ROWS[1], "average_price": 400.0},  # B: -50%, under target
        *ROWS[2:],
    ]
    base = {"rebalance_budget_pct": 100}
    profit = plan_rebalance(
        snapshot(rows, CASH),
        TARGETS,
        policy(**base, profit_take_threshold_pct=20, profit_take_boost_pct=20),
    )
    assert signed_quantity(profit, "A") == -180  # 15,000 x 1.2
    assert "profit_take" in order(profit, "A").reasons
    momentum = plan_rebalance(snapshot(rows, CASH), TARGETS, policy(**base, tilt_mode="momentum"))
    assert signed_quantity(momentum, "B") < 50  # fewer of the loser
    assert "tilt" in order(momentum, "B").reasons
    reverting = plan_rebalance(
        snapshot(rows, CASH), TARGETS, policy(**base, tilt_mode="mean_reversion")
    )
    assert signed_quantity(reverting, "B") > 50  # more of the loser


def test_unlisted_holdings_switch() -> None:
    rows = [*ROWS, {"symbol": "X", "quantity": 10, "last_price": 500.0}]
    left = plan_rebalance(snapshot(rows, CASH), TARGETS, policy(rebalance_budget_pct=100))
    assert position(left, "X").skipped == ("unlisted",)
    assert left.summary.portfolio_value == pytest.approx(100_000)  # X is not in the value
    sold = plan_rebalance(
        snapshot(rows, CASH), TARGETS, policy(rebalance_budget_pct=100, unlisted_holdings="sell")
    )
    assert signed_quantity(sold, "X") == -10
    assert order(sold, "X").reasons[0] == "exit"


def test_cash_target_keeps_cash_back() -> None:
    # 6% cash with a 6% cash target: nothing of it is spendable, buys are paid by sells
    targets = {"A": 0.40, "B": 0.17, "C": 0.17, "D": 0.20}
    plan = plan_rebalance(
        snapshot(ROWS, CASH), targets, policy(rebalance_budget_pct=100), cash_target=0.06
    )
    assert plan.summary.cash_after is not None
    assert plan.summary.cash_after >= 6000 - 1e-6
    assert plan.summary.buy_value <= plan.summary.sell_value


def test_no_cash_figure_means_buys_only_from_sells() -> None:
    plan = plan_rebalance(snapshot(ROWS, None), TARGETS, policy(rebalance_budget_pct=100))
    assert plan.summary.cash_before is None
    assert plan.summary.buy_value <= plan.summary.sell_value


def test_json_contract_and_round_trip() -> None:
    plan = plan_rebalance(snapshot(ROWS, CASH), TARGETS, policy(rebalance_budget_pct=10))
    data = plan.to_dict()
    assert set(data["orders"][0]) >= {
        "symbol",
        "exchange",
        "side",
        "quantity",
        "price",
        "notional",
        "reasons",
        "charges",
    }
    assert set(data["positions"][0]) >= {"symbol", "weight_before", "target_weight", "weight_after"}
    assert set(data["summary"]) >= {
        "portfolio_value",
        "turnover_pct",
        "budget_used_pct",
        "max_drift_before",
        "max_drift_after",
        "trades",
        "estimated_charges",
    }
    again = type(plan).from_dict(data)
    assert again.plan_hash == plan.plan_hash
    assert again.to_dict() == data
