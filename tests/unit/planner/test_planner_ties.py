"""Ties in the optimiser's objective (docs/planner.md, "What best means", ties): among plans of
equal objective the plan closest to the notes' proportional plan (4.3) wins, and one portfolio
gets one plan whatever the order of its rows and targets.

The tie book: value ₹1,00,000, fully invested. A on target (50%), B and C 5% under their 25%
targets, ₹10,000 of cash, a 5% budget. Every rupee bought cuts B's or C's drift and the cash's
drift alike, and buy charges are a rate (no per-order part at the paper broker), so ₹5,000 of B,
₹5,000 of C or any split of the two have the same objective; the proportional plan buys half of
each gap: ₹2,500 of each (25 shares of B, 50 of C), the plan with the smaller max drift.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from planner_support import TODAY, position, signed_quantity, snapshot
from test_planner_examples import policy
from test_planner_properties import policies, portfolios

from rebalance.costs import broker_rates
from rebalance.plan import TradePlan
from rebalance.planning import plan_rebalance
from rebalance.planning.book import build_book
from rebalance.planning.intents import decide_intents
from rebalance.planning.optimise import (
    SOLVER_OPTIMAL,
    TIE_SHARE,
    objective,
    optimise_plan,
    tracked_targets,
)
from rebalance.planning.sizing import size_plan
from rebalance.planning.whole_shares import round_to_whole_shares
from rebalance.snapshot import HoldingsSnapshot

ROWS: list[dict[str, Any]] = [
    {"symbol": "A", "quantity": 500, "last_price": 100.0},
    {"symbol": "B", "quantity": 200, "last_price": 100.0},
    {"symbol": "C", "quantity": 400, "last_price": 50.0},
]
TARGETS = {"A": 0.50, "B": 0.25, "C": 0.25}
CASH = 10_000.0
RULE = policy(rebalance_budget_pct=5, drift_band_abs_pct=1, drift_band_rel_pct=0)


def test_a_tie_goes_to_the_proportional_plan() -> None:
    plan = plan_rebalance(snapshot(ROWS, CASH), TARGETS, RULE)
    assert plan.summary.solver == SOLVER_OPTIMAL
    assert [signed_quantity(plan, s) for s in "ABC"] == [0, 25, 50]
    assert position(plan, "B").weight_after == pytest.approx(0.225, abs=1e-3)
    assert position(plan, "C").weight_after == pytest.approx(0.225, abs=1e-3)


def test_the_tie_break_spreads_the_budget_whichever_optimum_the_first_solve_finds() -> None:
    """Handed a fast plan that spends a fifth of the budget, the first solve finds one of the
    many plans that spend it all (B alone, C alone or any split: tied within the tie share); the
    tie-break, not that choice, decides: the even split."""
    rates = broker_rates("paper")
    book = build_book(snapshot(ROWS, CASH), TARGETS, RULE, cash_target=None, today=TODAY)
    intents, _ = decide_intents(book, RULE, rates)
    sizing = size_plan(book, intents, RULE, rates)
    _, sizing = round_to_whole_shares(book, sizing, RULE, rates)
    tracked = tracked_targets(book, intents, RULE)
    even = {"B": 25, "C": 50}
    tied = objective(book, intents, even, tracked, RULE, rates) * (1 + TIE_SHARE)
    for lopsided in ({"B": 50}, {"C": 100}):  # B's or C's whole gap: a hair past target
        assert objective(book, intents, lopsided, tracked, RULE, rates) <= tied
    outcome = optimise_plan(book, intents, sizing, {"B": 10}, RULE, rates)
    assert outcome.solver == SOLVER_OPTIMAL
    assert outcome.units == even


def test_a_tie_is_not_broken_past_a_better_plan() -> None:
    """The tie-break never gives up objective beyond the tie share: with C's buys capped by
    no_buy, the whole budget goes to B (the proportional plan would leave cash idle)."""
    plan = plan_rebalance(snapshot(ROWS, CASH), TARGETS, RULE.with_overrides({"no_buy": ["C"]}))
    assert [signed_quantity(plan, s) for s in "ABC"] == [0, 50, 0]


def _orders(plan: TradePlan) -> list[tuple[str, str, int]]:
    return sorted((o.symbol, o.side.value, o.quantity) for o in plan.orders)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_order_of_rows_and_targets_does_not_change_the_plan(data: st.DataObject) -> None:
    case = data.draw(portfolios())
    # a generous cap: a plan cut short by wall time may differ from run to run (documented)
    rule = data.draw(policies(list(case["targets"]))).with_overrides({"optimiser_time_cap_s": 30})
    original: HoldingsSnapshot = case["snapshot"]
    rows = original.positions
    order = data.draw(st.permutations(list(range(len(rows)))))
    shuffled = HoldingsSnapshot(
        rows.iloc[order].reset_index(drop=True), original.cash, original.taken_at
    )
    names = data.draw(st.permutations(list(case["targets"])))
    targets = {name: case["targets"][name] for name in names}
    plans = [
        plan_rebalance(
            snap,
            goal,
            rule,
            cash_target=case["cash_target"],
            broker=case["broker"],
            today=TODAY,
        )
        for snap, goal in ((original, case["targets"]), (shuffled, targets))
    ]
    assert _orders(plans[0]) == _orders(plans[1])
    assert plans[0].summary.solver == plans[1].summary.solver
    # the report keeps the input's order
    listed = [p.symbol for p in plans[1].positions if p.symbol in targets]
    assert listed == [s for s in shuffled.positions["symbol"] if s in targets]


def test_the_demo_portfolio_tie_goes_to_the_even_plan_when_rounding_is_no_tie(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On the demo portfolio (docs/planner.md, ties) the first solve's plan leaves BHARTIARTL
    about 3% under its target; rounding the relaxed tied plan costs more than the tie share, so
    the tie-break's short search from the first plan finds the even plan: a largest drift under
    2%, within the tie share of the first plan's objective."""
    from datetime import UTC, datetime
    from pathlib import Path

    from rebalance.holdings_file import read_holdings_rows
    from rebalance.planning import optimise
    from rebalance.portfolio_check import check_portfolio_file
    from rebalance.snapshot import snapshot_from_rows

    root = Path(__file__).resolve().parents[3] / "portfolios"
    model = check_portfolio_file(root / "demo.yaml").portfolio
    rows, _ = read_holdings_rows(root / "data" / "demo_holdings.csv")
    snap = snapshot_from_rows(rows, source="demo", cash=50_000.0, taken_at=datetime.now(UTC))

    def demo_plan() -> TradePlan:
        return plan_rebalance(
            snap,
            model.target_fractions(),
            model.policy,
            cash_target=model.cash_target_fraction,
            broker=str(model.accounts[0].broker),
        )

    plan = demo_plan()
    monkeypatch.setattr(optimise, "_tie_break", lambda *args: (2, None))
    first = demo_plan()  # the first solve's plan, as the tie-break found it
    assert plan.summary.solver == first.summary.solver == SOLVER_OPTIMAL
    assert plan.summary.max_drift_before > 0.05
    assert first.summary.max_drift_after > 0.025
    assert plan.summary.max_drift_after < 0.02
    assert plan.summary.objective_after <= first.summary.objective_after * (1 + TIE_SHARE)
