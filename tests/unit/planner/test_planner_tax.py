"""Tax in the planner (issue 15): FIFO holding periods, the caps of ``tax: limit``, the tax term
of ``tax: minimise``, the plan's tax estimate and a lot mismatch that disables tax data.

Properties (hypothesis): with ``limit`` no plan exceeds the caps (by the tax core's exact
estimate, apart from the optimiser); with ``minimise`` the plan is never dominated by the
``report`` plan (never both more drift and more tax); a weight of 0 gives exactly the report plan.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from planner_support import TODAY, order, snapshot

from rebalance.planning import plan_rebalance, verify_plan
from rebalance.policy import Policy
from rebalance.tax.gains import DeclaredGains
from rebalance.tax.lots import Lot
from rebalance.tax.planning import TaxContext, build_context, estimate_plan
from rebalance.tax.tradebook import Trade, TradeType, replay

ACCOUNT = "main"


def _lot(symbol: str, days_ago: int, quantity: int, cost: float) -> Lot:
    return Lot(ACCOUNT, symbol, TODAY - timedelta(days=days_ago), quantity, cost, "test")


def _context(lots: list[Lot], **kwargs: Any) -> TaxContext:
    by_symbol: dict[str, tuple[Lot, ...]] = {}
    for lot in lots:
        by_symbol[lot.symbol] = (*by_symbol.get(lot.symbol, ()), lot)
    return TaxContext(ACCOUNT, TODAY, by_symbol, **kwargs)


def _policy(**overrides: Any) -> Policy:
    base: dict[str, Any] = {
        "rebalance_budget_pct": 50,
        "max_position_weight_pct": 100,
        "min_trade_value_inr": 0,
        "drift_band_abs_pct": 1,
        "drift_band_rel_pct": 1,
    }
    return Policy.model_validate({**base, **overrides})


# INFY overweight: 300 shares at ₹2,000 (₹6 lakh) against a 40% target of ₹10 lakh
INFY_LOTS = [
    _lot("INFY", 400, 100, 1000.0),  # long-term, gain ₹1,000 a share
    _lot("INFY", 100, 100, 1500.0),  # short-term, gain ₹500 a share
    _lot("INFY", 30, 100, 1900.0),  # short-term, 30 days old, gain ₹100 a share
]


def _infy_case() -> tuple[Any, dict[str, float]]:
    snap = snapshot(
        [
            {"symbol": "INFY", "quantity": 300, "last_price": 2000.0},
            {"symbol": "TCS", "quantity": 100, "last_price": 4000.0},
        ],
        cash=0.0,
    )
    return snap, {"INFY": 0.4, "TCS": 0.6}


def test_report_estimates_the_fifo_lots_a_sell_takes() -> None:
    snap, targets = _infy_case()
    plan = plan_rebalance(
        snap, targets, _policy(tax="report"), today=TODAY, tax=_context(INFY_LOTS)
    )
    sell = order(plan, "INFY")
    # to the 40% target and the charges of the buy paid from the sale: 101 of 300 at ₹2,000
    assert sell.quantity == 101
    assert plan.tax is not None
    (estimate,) = plan.tax["orders"]
    # FIFO decides the term: the oldest lot (long-term) goes first, all of it, then one share
    # of the short-term lot; the youngest lot is untouched
    assert [(lot["term"], lot["quantity"]) for lot in estimate["lots"]] == [
        ("long", 100),
        ("short", 1),
    ]
    assert estimate["long_term_gain"] == pytest.approx(100_000.0)
    assert estimate["short_term_gain"] == pytest.approx(500.0)
    # the long-term gain is inside the ₹1.25 lakh exemption; 20% + 4% cess on the short-term
    assert estimate["estimated_tax"] == pytest.approx(500 * 0.2 * 1.04)
    assert plan.tax["exemption_left_after"] == pytest.approx(25_000.0)
    assert plan.tax["after_tax_cost"] == pytest.approx(
        plan.summary.estimated_charges + 104.0, abs=0.01
    )


def test_report_with_the_exemption_used_taxes_the_long_term_gain() -> None:
    snap, targets = _infy_case()
    context = _context(INFY_LOTS, declared=DeclaredGains(long_term=125_000.0))
    plan = plan_rebalance(snap, targets, _policy(tax="report"), today=TODAY, tax=context)
    assert plan.tax is not None
    # the exemption is used up elsewhere: 12.5% on ₹1 lakh and 20% on ₹500, plus 4% cess
    assert plan.tax["estimated_tax"] == pytest.approx((12_500 + 100) * 1.04)


def test_min_holding_days_applies_to_the_lots_a_sell_consumes() -> None:
    # the oldest lot is only 100 days old: with min_holding_days 200 nothing may be sold
    lots = [_lot("INFY", 100, 150, 1500.0), _lot("INFY", 400, 150, 1000.0)]
    snap, targets = _infy_case()
    policy = _policy(tax="report", min_holding_days=200)
    lots.sort(key=lambda lot: lot.acquired_on)
    # oldest first: 150 shares held 400 days may go, the 150 held 100 days may not
    plan = plan_rebalance(snap, targets, policy, today=TODAY, tax=_context(lots))
    assert order(plan, "INFY").quantity == 101
    policy = _policy(tax="report", min_holding_days=500)
    plan = plan_rebalance(snap, targets, policy, today=TODAY, tax=_context(lots))
    assert not [o for o in plan.orders if o.symbol == "INFY"]
    assert "not_sellable" in next(p for p in plan.positions if p.symbol == "INFY").skipped


def test_verify_plan_refuses_a_sell_of_young_lots() -> None:
    snap, targets = _infy_case()
    context = _context([_lot("INFY", 10, 300, 1900.0)])
    plain = plan_rebalance(snap, targets, _policy(), today=TODAY)
    assert order(plain, "INFY").quantity == 101
    problems = verify_plan(
        plain, snap, targets, _policy(tax="report", min_holding_days=30), today=TODAY, tax=context
    )
    assert any("held 10 days < min_holding_days 30" in p for p in problems)


def test_limit_caps_the_short_term_gains_in_the_milp() -> None:
    # the long-term lot is gone: the first lot in FIFO is short-term, ₹500 gain a share
    snap, targets = _infy_case()
    context = _context([*INFY_LOTS[1:], _lot("INFY", 20, 100, 1950.0)])
    policy = _policy(tax="limit", max_short_term_gains_inr=20_000)
    plan = plan_rebalance(snap, targets, policy, today=TODAY, tax=context)
    assert order(plan, "INFY").quantity == 40  # 40 x ₹500 = the cap
    assert plan.tax is not None
    assert plan.tax["short_term_gains"] <= 20_000
    assert verify_plan(plan, snap, targets, policy, today=TODAY, tax=context) == []
    # and verify_plan catches the plain plan breaking it
    plain = plan_rebalance(snap, targets, _policy(tax="report"), today=TODAY, tax=context)
    problems = verify_plan(plain, snap, targets, policy, today=TODAY, tax=context)
    assert any("max_short_term_gains_inr" in p for p in problems)


def test_limit_with_the_optimiser_off_drops_the_orders_over_the_caps() -> None:
    snap, targets = _infy_case()
    context = _context([*INFY_LOTS[1:], _lot("INFY", 20, 100, 1950.0)])
    policy = _policy(tax="limit", max_tax_inr=1_000, optimiser_time_cap_s=0)
    plan = plan_rebalance(snap, targets, policy, today=TODAY, tax=context)
    # the fast plan's only sell adds more tax than the cap: dropped, and the buy it paid for too
    assert plan.orders == ()
    assert any("breaks the tax caps" in n for n in plan.notes)
    assert verify_plan(plan, snap, targets, policy, today=TODAY, tax=context) == []


def test_minimise_prefers_no_sell_when_tax_outweighs_drift() -> None:
    snap, targets = _infy_case()
    context = _context([*INFY_LOTS[1:], _lot("INFY", 20, 100, 1950.0)])
    report = plan_rebalance(snap, targets, _policy(tax="report"), today=TODAY, tax=context)
    heavy = plan_rebalance(
        snap, targets, _policy(tax="minimise", tax_weight=100), today=TODAY, tax=context
    )
    assert report.tax is not None
    assert heavy.tax is not None
    assert heavy.tax["estimated_tax"] < report.tax["estimated_tax"]
    assert heavy.summary.objective_after >= report.summary.objective_after


def test_a_lot_mismatch_disables_tax_data_for_that_symbol_with_the_message() -> None:
    trades = [
        Trade(ACCOUNT, "INFY", TradeType.BUY, TODAY - timedelta(days=400), 250, 1000.0),
        Trade(ACCOUNT, "TCS", TradeType.BUY, TODAY - timedelta(days=400), 100, 3000.0),
    ]
    context = build_context(replay(trades), ACCOUNT, {"INFY": 300, "TCS": 100}, TODAY)
    assert "INFY" not in context.lots
    assert "TCS" in context.lots
    assert "add up to 250 shares but the broker holds 300" in context.no_tax_data["INFY"]
    snap, targets = _infy_case()
    policy = _policy(tax="limit", max_tax_inr=0)
    plan = plan_rebalance(snap, targets, policy, today=TODAY, tax=context)
    # INFY is planned without tax data (no cap applies to it), and the plan says why
    assert order(plan, "INFY").quantity == 101
    assert plan.tax is not None
    assert "broker holds 300" in plan.tax["no_tax_data"]["INFY"]
    assert plan.tax["orders"] == []


# --- properties --------------------------------------------------------------------------------

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    """Two to four symbols, some overweight, each with one to three FIFO lots of any age/cost."""
    n = draw(st.integers(2, 4))
    symbols = [f"S{i}" for i in range(n)]
    rows, lots = [], []
    for symbol in symbols:
        price = draw(st.sampled_from([100.0, 250.0, 1000.0]))
        sizes = draw(st.lists(st.integers(5, 60), min_size=1, max_size=3))
        ages = sorted(draw(st.lists(st.integers(1, 900), min_size=len(sizes), max_size=len(sizes))))
        for size, age in zip(sizes, reversed(ages), strict=True):
            cost = price * draw(st.sampled_from([0.5, 0.8, 0.95, 1.1]))
            lots.append(_lot(symbol, age, size, cost))
        rows.append({"symbol": symbol, "quantity": sum(sizes), "last_price": price})
    raw = [draw(st.floats(0.05, 1.0)) for _ in symbols]
    targets = {s: w / sum(raw) for s, w in zip(symbols, raw, strict=True)}
    declared = DeclaredGains(
        short_term=draw(st.sampled_from([0.0, 5_000.0, -3_000.0])),
        long_term=draw(st.sampled_from([0.0, 124_000.0, -2_000.0])),
    )
    cash = draw(st.sampled_from([0.0, 5_000.0]))
    return {
        "snapshot": snapshot(rows, cash=cash),
        "targets": targets,
        "context": _context(lots, declared=declared),
    }


def _tax(plan: Any, context: TaxContext) -> float:
    sells = [(o.symbol, o.quantity, o.price) for o in plan.orders if o.side == "SELL"]
    return estimate_plan(context, sells).total


@SETTINGS
@given(
    case=cases(),
    caps=st.tuples(st.sampled_from([None, 0.0, 500.0]), st.sampled_from([None, 0.0, 300.0])),
    time_cap=st.sampled_from([0.0, 0.9]),  # 0: the optimiser off, the fast plan made to fit
)
def test_limit_never_exceeds_the_caps(
    case: dict[str, Any], caps: tuple[Any, Any], time_cap: float
) -> None:
    short_cap, tax_cap = caps
    if short_cap is None and tax_cap is None:
        tax_cap = 100.0
    policy = _policy(
        tax="limit",
        max_short_term_gains_inr=short_cap,
        max_tax_inr=tax_cap,
        optimiser_time_cap_s=time_cap,
    )
    plan = plan_rebalance(
        case["snapshot"], case["targets"], policy, today=TODAY, tax=case["context"]
    )
    sells = [(o.symbol, o.quantity, o.price) for o in plan.orders if o.side == "SELL"]
    estimate = estimate_plan(case["context"], sells)
    if short_cap is not None:
        assert estimate.short_term_gains <= short_cap + 0.01
    if tax_cap is not None:
        assert estimate.total <= tax_cap + 0.01
    assert (
        verify_plan(
            plan, case["snapshot"], case["targets"], policy, today=TODAY, tax=case["context"]
        )
        == []
    )


@SETTINGS
@given(case=cases(), weight=st.sampled_from([0.5, 2.0, 20.0]), harvest=st.booleans())
def test_minimise_is_never_dominated_by_report(
    case: dict[str, Any], weight: float, harvest: bool
) -> None:
    args = (case["snapshot"], case["targets"])
    report = plan_rebalance(*args, _policy(tax="report"), today=TODAY, tax=case["context"])
    policy = _policy(tax="minimise", tax_weight=weight, tax_loss_harvesting=harvest)
    plan = plan_rebalance(*args, policy, today=TODAY, tax=case["context"])
    more_drift = plan.summary.objective_after > report.summary.objective_after + 1e-12
    more_tax = _tax(plan, case["context"]) > _tax(report, case["context"]) + 0.005
    assert not (more_drift and more_tax)


@settings(max_examples=25, deadline=None)
@given(case=cases())
def test_weight_zero_is_exactly_the_report_plan(case: dict[str, Any]) -> None:
    args = (case["snapshot"], case["targets"])
    report = plan_rebalance(*args, _policy(tax="report"), today=TODAY, tax=case["context"])
    zero = plan_rebalance(
        *args, _policy(tax="minimise", tax_weight=0), today=TODAY, tax=case["context"]
    )
    assert zero.plan_hash == report.plan_hash
    assert zero.orders == report.orders


def test_tax_off_ignores_the_lots() -> None:
    snap, targets = _infy_case()
    context = _context([_lot("INFY", 10, 300, 1900.0)])
    plain = plan_rebalance(snap, targets, _policy(), today=TODAY)
    off = plan_rebalance(snap, targets, _policy(min_holding_days=30), today=TODAY, tax=context)
    assert off.tax is None
    assert off.orders == plain.orders


def test_a_pre_2018_lot_is_grandfathered_in_the_plan_and_never_guessed_without_its_fmv() -> None:
    snap, targets = _infy_case()
    old = Lot(ACCOUNT, "INFY", date(2017, 6, 15), 300, 500.0, "test")
    with_fmv = _context([old], fmv_2018={"INFY": 1150.0})
    plan = plan_rebalance(snap, targets, _policy(tax="report"), today=TODAY, tax=with_fmv)
    assert plan.tax is not None
    (estimate,) = plan.tax["orders"]
    # cost max(500, min(1150, 2000)) = 1150: ₹850 a share, long-term, within the exemption
    assert estimate["lots"][0]["grandfathered"] is True
    assert estimate["long_term_gain"] == pytest.approx(101 * 850.0)
    without = plan_rebalance(snap, targets, _policy(tax="report"), today=TODAY, tax=_context([old]))
    assert without.tax is not None
    assert without.tax["orders"] == []
    assert "before 1 February 2018" in without.tax["no_tax_data"]["INFY"]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"tax": "limit"}, "max_short_term_gains_inr or max_tax_inr"),
        ({"tax": "sometimes"}, "tax"),
        ({"tax": "limit", "max_tax_inr": -1}, "max_tax_inr"),
        ({"tax": "minimise", "tax_weight": -0.5}, "tax_weight"),
    ],
)
def test_bad_tax_policy_names_the_field(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        Policy.model_validate(fields)
