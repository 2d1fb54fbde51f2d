"""The optimiser (docs/planner.md, "The objective and the optimiser"): never worse than the fast
plan, never past a hard rule, and the policy options it brought (band edge, charge-aware orders).

The book of test_planner_examples (value ₹1,00,000, fully invested): A 55% against 40%, B and C
10% against 20%, D 19% against 20% (inside its band), cash ₹6,000.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from planner_support import TODAY, position, signed_quantity, snapshot
from test_planner_examples import CASH, FAST_ONLY, ROWS, TARGETS, policy
from test_planner_properties import policies, portfolios

from rebalance.costs import broker_rates, charge_total
from rebalance.domain.market import Side
from rebalance.plan import TradePlan
from rebalance.planning import plan_rebalance, verify_plan
from rebalance.policy import Policy

SOLVERS = {"milp_optimal", "milp_time_cap", "heuristic"}


def _plan(case: dict[str, Any], rule: Policy) -> TradePlan:
    return plan_rebalance(
        case["snapshot"],
        case["targets"],
        rule,
        cash_target=case["cash_target"],
        broker=case["broker"],
        today=TODAY,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_optimiser_is_never_worse_than_the_fast_plan(data: st.DataObject) -> None:
    case = data.draw(portfolios())
    # neutral and no max weight below a target: the optimiser steers to the targets themselves,
    # so the summary's objective is the one it minimises
    rule = data.draw(policies(list(case["targets"]), neutral=True)).with_overrides(
        {"max_position_weight_pct": 100}
    )
    plan = _plan(case, rule)
    fast = _plan(case, rule.with_overrides(FAST_ONLY))
    assert plan.summary.solver in SOLVERS
    assert fast.summary.solver == "heuristic"
    assert plan.summary.objective_after <= fast.summary.objective_after + 1e-9
    problems = verify_plan(
        plan,
        case["snapshot"],
        case["targets"],
        rule,
        cash_target=case["cash_target"],
        broker=case["broker"],
        today=TODAY,
    )
    assert problems == []


def test_summary_says_which_method_made_the_plan() -> None:
    plan = plan_rebalance(snapshot(ROWS, CASH), TARGETS, policy(rebalance_budget_pct=10))
    fast = plan_rebalance(
        snapshot(ROWS, CASH), TARGETS, policy(rebalance_budget_pct=10, **FAST_ONLY)
    )
    assert plan.summary.solver == "milp_optimal"
    assert fast.summary.solver == "heuristic"
    assert plan.to_dict()["summary"]["solver"] == "milp_optimal"
    assert any("optimiser" in note for note in plan.notes)
    again = TradePlan.from_dict(plan.to_dict())
    assert again.summary.solver == "milp_optimal"
    # a plan written before the field existed reads as the fast plan's
    old = plan.to_dict()
    for key in ("solver", "objective_before", "objective_after"):
        del old["summary"][key]
    assert TradePlan.from_dict(old).summary.solver == "heuristic"


def test_objective_counts_the_cash_position() -> None:
    plan = plan_rebalance(snapshot(ROWS, CASH), TARGETS, policy(rebalance_budget_pct=100))
    s = plan.summary
    # before: symbols 15% + 10% + 10% + 1% off target, cash 6% over its 0% target
    assert s.objective_before == pytest.approx(0.42)
    expected = s.total_drift_after + abs(s.cash_weight_after - s.cash_target_weight)
    assert s.objective_after == pytest.approx(expected)


def test_rebalance_to_band_edge_trades_only_to_the_edge() -> None:
    # bands 2% absolute / 15% relative: the band's half-width is the smaller, 2% of value here,
    # so A sells to 42% (₹13,000 = 130 shares), B and C buy to 18% (₹8,000 each)
    rule = policy(rebalance_budget_pct=100, rebalance_to="band_edge")
    for plan in (
        plan_rebalance(snapshot(ROWS, CASH), TARGETS, rule),
        plan_rebalance(snapshot(ROWS, CASH), TARGETS, rule.with_overrides(FAST_ONLY)),
    ):
        assert [signed_quantity(plan, s) for s in "ABCD"] == [-130, 40, 160, 0]
        assert position(plan, "A").weight_after == pytest.approx(0.42, abs=1e-3)
    to_target = plan_rebalance(snapshot(ROWS, CASH), TARGETS, policy(rebalance_budget_pct=100))
    assert to_target.summary.turnover_pct > 0
    assert signed_quantity(to_target, "A") == -150


def test_orders_whose_charges_are_too_large_a_share_are_dropped() -> None:
    # A small sell pays the ₹15.34 DP charge: on ₹2,000 that is about 0.9% with STT, and on the
    # largest sell that ends no further from target (40 shares, ₹4,000) still about 0.49%
    rows = [
        {"symbol": "A", "quantity": 520, "last_price": 100.0},  # 2% over: sell ₹2,000
        {"symbol": "B", "quantity": 480, "last_price": 100.0},
    ]
    base: dict[str, Any] = {
        "rebalance_budget_pct": 100,
        "min_trade_value_inr": 0,
        "max_position_weight_pct": 100,
        "drift_band_abs_pct": 1,
    }
    targets = {"A": 0.5, "B": 0.5}
    plain = plan_rebalance(snapshot(rows, 0.0), targets, Policy(**base))
    assert signed_quantity(plain, "A") in (-20, -21)  # ₹2,000, a share more to fund B
    rule = Policy(**base, max_order_charges_pct=0.4)
    for plan in (
        plan_rebalance(snapshot(rows, 0.0), targets, rule),
        plan_rebalance(snapshot(rows, 0.0), targets, rule.with_overrides(FAST_ONLY)),
    ):
        assert signed_quantity(plan, "A") == 0
        assert verify_plan(plan, snapshot(rows, 0.0), targets, rule) == []
    fast = plan_rebalance(snapshot(rows, 0.0), targets, rule.with_overrides(FAST_ONLY))
    assert position(fast, "A").skipped == ("charges_too_high",)
    rates = broker_rates("paper")
    assert charge_total(4000, Side.SELL, "NSE", rates) > 0.004 * 4000


def test_a_huge_holding_is_trimmed_without_counting_shares() -> None:
    # 2^63 - 1 shares: the max-weight trim used to walk one share at a time (minutes)
    rows = [
        {"symbol": "A", "quantity": 9_223_372_036_854_775_807, "last_price": 100.0},
        {"symbol": "B", "quantity": 10, "last_price": 100.0},
    ]
    rule = Policy(max_position_weight_pct=50)
    targets = {"A": 0.5, "B": 0.5}
    for chosen in (rule, rule.with_overrides(FAST_ONLY)):
        plan = plan_rebalance(snapshot(rows, 1000.0), targets, chosen)
        assert signed_quantity(plan, "A") < 0
        assert verify_plan(plan, snapshot(rows, 1000.0), targets, chosen) == []
