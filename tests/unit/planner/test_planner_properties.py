"""Hypothesis: the hard constraints hold for random portfolios and policies.

Each property is asserted directly here, and ``verify_plan`` (the independent checker that a task
can run before ordering) must agree that the plan is clean.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from planner_support import TODAY, position, snapshot

from rebalance.costs import broker_rates, charge_total
from rebalance.domain.market import Side
from rebalance.plan import TradePlan
from rebalance.planning import plan_rebalance, verify_plan
from rebalance.policy import BudgetMode, Policy, TiltMode, TradeFilter, UnlistedHoldings
from rebalance.schemas import PlanOrdersSchema, PlanPositionsSchema, validate_frame
from rebalance.snapshot import HoldingsSnapshot

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PRICES = st.one_of(
    st.floats(20, 30_000, allow_nan=False).map(lambda p: round(p, 2)),
    st.sampled_from([1.0, 5.5, 99.95, 2500.0]),
)


@st.composite
def portfolios(draw: st.DrawFn) -> dict[str, Any]:
    """A snapshot, targets, cash target, broker and today."""
    n = draw(st.integers(1, 12))
    symbols = [f"S{i}" for i in range(n)]
    rows = []
    for symbol in symbols:
        quantity = draw(st.integers(0, 3000))
        rows.append(
            {
                "symbol": symbol,
                "quantity": quantity,
                "sellable_quantity": draw(st.integers(0, quantity)),
                "last_price": draw(PRICES),
                "average_price": draw(st.one_of(st.none(), PRICES)),
                "previous_close": draw(st.one_of(st.none(), PRICES)),
                "acquired_on": draw(
                    st.one_of(st.none(), st.integers(0, 800).map(lambda d: TODAY - timedelta(d)))
                ),
            }
        )
    extra = draw(st.integers(0, 2))  # holdings outside the targets
    for k in range(extra):
        quantity = draw(st.integers(1, 500))
        rows.append({"symbol": f"X{k}", "quantity": quantity, "last_price": draw(PRICES)})
    raw = draw(st.lists(st.integers(0, 100), min_size=n, max_size=n))
    if sum(raw) == 0:
        raw[0] = 1
    cash_target = draw(st.one_of(st.none(), st.sampled_from([0.0, 0.02, 0.1])))
    invested = 1 - (cash_target or 0.0)
    targets = {s: invested * w / sum(raw) for s, w in zip(symbols, raw, strict=True)}
    cash = draw(st.one_of(st.none(), st.floats(0, 2e6, allow_nan=False)))
    if not cash and all(r["quantity"] == 0 for r in rows[:n]):
        cash = 10_000.0  # a portfolio worth nothing is refused (tested with the bad inputs)
    return {
        "snapshot": snapshot(rows, cash),
        "targets": targets,
        "cash_target": cash_target,
        "broker": draw(st.sampled_from(["paper", "zerodha", "angelone"])),
    }


@st.composite
def policies(draw: st.DrawFn, symbols: list[str], neutral: bool = False) -> Policy:
    subset = st.lists(st.sampled_from(symbols), max_size=3, unique=True) if symbols else st.just([])
    values: dict[str, Any] = {
        "rebalance_budget_pct": draw(st.floats(0, 100)),
        "rebalance_budget_inr": draw(st.one_of(st.none(), st.floats(1000, 5e6))),
        "budget_mode": draw(st.sampled_from(list(BudgetMode))),
        "drift_band_abs_pct": draw(st.sampled_from([0.0, 0.5, 2.0, 5.0])),
        "drift_band_rel_pct": draw(st.sampled_from([0.0, 15.0, 50.0])),
        "max_trades": draw(st.integers(0, 12)),
        "min_trade_value_inr": draw(st.sampled_from([0.0, 500.0, 2000.0, 20_000.0])),
        "max_position_weight_pct": draw(st.sampled_from([5.0, 15.0, 40.0, 100.0])),
        "no_buy": draw(subset),
        "no_sell": draw(subset),
        "trade_filter": draw(st.sampled_from(list(TradeFilter))),
        "unlisted_holdings": draw(st.sampled_from(list(UnlistedHoldings))),
        "use_sell_proceeds": draw(st.booleans()),
        "fill_to_target": draw(st.booleans()),
        "min_holding_days": draw(st.one_of(st.none(), st.sampled_from([30, 365]))),
    }
    if not neutral:
        values |= {
            "tilt_mode": draw(st.sampled_from(list(TiltMode))),
            "profit_take_threshold_pct": draw(st.one_of(st.none(), st.floats(0, 50))),
            "today_winners_bias": draw(st.booleans()),
        }
    return Policy(**values)


def _plan(case: dict[str, Any], policy: Policy) -> TradePlan:
    return plan_rebalance(
        case["snapshot"],
        case["targets"],
        policy,
        cash_target=case["cash_target"],
        broker=case["broker"],
        today=TODAY,
    )


def _rows(snap: HoldingsSnapshot) -> dict[str, dict[str, Any]]:
    return {str(r["symbol"]): r for r in snap.positions.to_dict(orient="records")}


@SETTINGS
@given(data=st.data())
def test_hard_constraints_hold(data: st.DataObject) -> None:
    case = data.draw(portfolios())
    policy = data.draw(policies(list(case["targets"])))
    plan = _plan(case, policy)
    event(f"orders: {min(len(plan.orders), 3)}{'+' if len(plan.orders) >= 3 else ''}")
    rows = _rows(case["snapshot"])
    rates = broker_rates(case["broker"])
    assert len(plan.orders) <= policy.max_trades
    for o in plan.orders:
        row = rows[o.symbol]
        assert isinstance(o.quantity, int)
        assert o.quantity >= 1
        assert o.notional >= policy.min_trade_value_inr - 1e-6
        if o.side is Side.SELL:
            assert o.quantity <= row["sellable_quantity"] <= row["quantity"]
            assert o.symbol not in policy.no_sell
            assert policy.trade_filter is not TradeFilter.BUYS_ONLY
            acquired = row["acquired_on"]
            if policy.min_holding_days is not None and isinstance(acquired, date):
                assert (TODAY - acquired).days >= policy.min_holding_days
        else:
            assert o.symbol not in policy.no_buy
            assert o.symbol in case["targets"]
            assert policy.trade_filter is not TradeFilter.SELLS_ONLY
            assert (
                position(plan, o.symbol).weight_after <= policy.max_position_weight_pct / 100 + 1e-9
            )
    buys = sum(o.notional for o in plan.orders if o.side is Side.BUY)
    sells = sum(o.notional for o in plan.orders if o.side is Side.SELL)
    budget = plan.summary.budget_inr
    used = max(buys, sells) if policy.budget_mode is BudgetMode.MAX_SIDE else buys + sells
    assert used <= budget + 1e-6
    charges = sum(charge_total(o.notional, o.side, o.exchange, rates) for o in plan.orders)
    cash = case["snapshot"].cash or 0.0
    spendable = max(0.0, cash - (case["cash_target"] or 0.0) * plan.summary.portfolio_value)
    assert buys - sells + charges <= spendable + 1e-6
    for p in plan.positions:
        assert p.quantity_after >= 0
        traded = any(o.symbol == p.symbol for o in plan.orders)
        assert traded != bool(p.skipped), f"{p.symbol}: a reason exactly when left alone"
    assert all(o.reasons for o in plan.orders)
    assert (
        verify_plan(
            plan,
            case["snapshot"],
            case["targets"],
            policy,
            cash_target=case["cash_target"],
            broker=case["broker"],
            today=TODAY,
        )
        == []
    )


@SETTINGS
@given(data=st.data())
def test_neutral_policy_only_moves_toward_targets(data: st.DataObject) -> None:
    case = data.draw(portfolios())
    policy = data.draw(policies(list(case["targets"]), neutral=True))
    plan = _plan(case, policy)
    value_after = plan.summary.portfolio_value - plan.summary.estimated_charges
    # every weight after is of the value after charges: untouched weights rise by at most that
    # (the summary's charges are rounded to the paisa, hence the half paisa)
    slack = (plan.summary.estimated_charges + 0.005) / value_after + 1e-9
    for o in plan.orders:
        p = position(plan, o.symbol)
        if o.side is Side.BUY:
            assert p.weight_before < p.target_weight, f"bought overweight {o.symbol}"
        elif "exit" not in o.reasons and "max_weight_trim" not in o.reasons:
            assert p.weight_before > p.target_weight, f"sold underweight {o.symbol}"
    for p in plan.positions:
        trimmed = any(o.symbol == p.symbol and "max_weight_trim" in o.reasons for o in plan.orders)
        if not trimmed:
            before = abs(p.weight_before - p.target_weight)
            assert abs(p.weight_after - p.target_weight) <= before + slack, p.symbol
    assert plan.summary.max_drift_after <= plan.summary.max_drift_before + slack or any(
        "max_weight_trim" in o.reasons for o in plan.orders
    )


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_plan_is_deterministic_and_round_trips(data: st.DataObject) -> None:
    case = data.draw(portfolios())
    policy = data.draw(policies(list(case["targets"])))
    first, second = _plan(case, policy), _plan(case, policy)
    assert first == second
    assert TradePlan.from_dict(first.to_dict()).plan_hash == first.plan_hash


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_plan_tables_match_the_pandera_schemas(data: st.DataObject) -> None:
    case = data.draw(portfolios())
    plan = _plan(case, data.draw(policies(list(case["targets"]))))
    body = plan.to_dict()
    orders = pd.DataFrame(
        body["orders"],
        columns=["symbol", "exchange", "side", "quantity", "price", "notional", "charges"],
    )
    validate_frame(PlanOrdersSchema, orders, "plan orders")
    validate_frame(PlanPositionsSchema, pd.DataFrame(body["positions"]), "plan positions")
