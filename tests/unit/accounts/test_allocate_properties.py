"""Hypothesis: no account ever buys beyond its own cash or sells beyond its own sellable quantity.

Checked on the allocation of random orders (solver and greedy fallback) and end to end: random
accounts combined, planned as one portfolio by the existing planner, then allocated. Each limit
is recomputed here from the inputs, not taken from ``check_allocation``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rebalance.accounts.allocate import Allocation, allocate_orders, check_allocation
from rebalance.accounts.combine import AccountAvailability, combine_accounts
from rebalance.costs import broker_rates, order_charges
from rebalance.domain.market import Quote, Side
from rebalance.plan import PlannedOrder
from rebalance.planning import plan_rebalance
from rebalance.policy import Policy

from .support import TAKEN_AT, TODAY, account, holding, order

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SYMBOLS = ["INFY", "TCS", "ITC", "SBIN", "LT", "HDFCBANK"]
BROKERS = st.sampled_from(["zerodha", "angelone", "paper"])
PRICES = st.sampled_from([12.5, 99.95, 450.0, 812.3, 1500.0, 3500.0, 24_000.0])
CASH = st.one_of(st.just(0.0), st.floats(0, 400_000).map(lambda c: round(c, 2)))


def assert_within_limits(
    allocation: Allocation,
    orders: list[PlannedOrder],
    accounts: list[AccountAvailability],
    proceeds: bool,
) -> None:
    assert check_allocation(allocation, orders, accounts, use_sell_proceeds=proceeds) == []
    planned = {(o.symbol, o.side): o for o in orders}
    for a in accounts:
        mine = allocation.for_account(a.account)
        rates = broker_rates(a.broker)
        received, spent = 0.0, 0.0
        for part in mine:
            charges = order_charges(part.quantity * part.price, part.side, part.exchange, rates)
            assert part.charges == charges.total
            assert part.quantity > 0
            if part.side is Side.SELL:
                assert part.quantity <= a.sellable.get(part.combined_symbol, 0)
                received += part.notional - charges.total
            else:
                spent += part.notional + charges.total
        funds = a.cash + received if proceeds else a.cash
        assert spent <= funds + 1e-6, f"{a.account} buys for {spent} with {funds}"
        assert a.cash + received - spent >= -1e-6, f"{a.account} ends below zero"
    for key, o in planned.items():
        given_ = sum(p.quantity for p in allocation.orders if (p.combined_symbol, p.side) == key)
        short = [s for s in allocation.shortfalls if (s.symbol, s.side) == key]
        assert given_ + sum(s.planned - s.allocated for s in short) == o.quantity
        assert all(s.reason for s in short)


@st.composite
def allocation_cases(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(2, 3))
    accounts = [
        AccountAvailability(
            f"acct{k}",
            draw(BROKERS),
            draw(CASH),
            True,
            sellable := {
                s: draw(st.integers(0, 300)) for s in draw(st.sets(st.sampled_from(SYMBOLS)))
            },
            dict(sellable),
        )
        for k in range(n)
    ]
    orders = []
    for symbol in draw(st.sets(st.sampled_from(SYMBOLS), min_size=1, max_size=5)):
        side = draw(st.sampled_from([Side.BUY, Side.SELL]))
        held = sum(a.sellable.get(symbol, 0) for a in accounts)
        top = max(1, int(held * 1.3)) if side is Side.SELL else 400
        orders.append(order(symbol, side, draw(st.integers(1, top)), draw(PRICES)))
    return {"accounts": accounts, "orders": orders, "proceeds": draw(st.booleans())}


@SETTINGS
@given(allocation_cases(), st.booleans())
def test_no_account_beyond_its_cash_or_sellable(case: dict[str, Any], solver: bool) -> None:
    allocation = allocate_orders(
        case["orders"], case["accounts"], use_sell_proceeds=case["proceeds"], use_solver=solver
    )
    event(allocation.solver)
    if solver:  # the greedy fallback is for a failed solve, not a routine answer
        assert allocation.solver.startswith("milp"), allocation.notes
    assert_within_limits(allocation, case["orders"], case["accounts"], case["proceeds"])


@st.composite
def household_cases(draw: st.DrawFn) -> dict[str, Any]:
    """Two or three accounts holding parts of one model portfolio, planned as one."""
    symbols = draw(st.lists(st.sampled_from(SYMBOLS), min_size=2, max_size=6, unique=True))
    prices = {s: draw(PRICES) for s in symbols}
    accounts = []
    for k in range(draw(st.integers(2, 3))):
        holdings = []
        for s in draw(st.sets(st.sampled_from(symbols))):
            quantity = draw(st.integers(0, 400))
            holdings.append(
                holding(
                    s,
                    quantity,
                    prices[s],
                    sellable=draw(st.integers(0, quantity)),
                    authorised=draw(st.one_of(st.none(), st.integers(0, quantity))),
                )
            )
        accounts.append(
            account(f"acct{k}", draw(BROKERS), draw(st.one_of(st.none(), CASH)), *holdings)
        )
    raw = draw(st.lists(st.integers(1, 10), min_size=len(symbols), max_size=len(symbols)))
    targets = {s: w / sum(raw) for s, w in zip(symbols, raw, strict=True)}
    policy = Policy(
        rebalance_budget_pct=draw(st.sampled_from([5.0, 25.0, 100.0])),
        drift_band_abs_pct=draw(st.sampled_from([0.0, 2.0])),
        drift_band_rel_pct=0.0,
        max_position_weight_pct=100.0,
        min_trade_value_inr=draw(st.sampled_from([0.0, 2000.0])),
        use_sell_proceeds=draw(st.booleans()),
        max_trades=50,
    )
    quotes = {s: Quote(s, "NSE", p) for s, p in prices.items()}
    return {"accounts": accounts, "targets": targets, "policy": policy, "quotes": quotes}


@SETTINGS
@given(household_cases())
def test_combined_plan_allocated_within_every_accounts_limits(case: dict[str, Any]) -> None:
    combined = combine_accounts(
        case["accounts"], taken_at=TAKEN_AT, quotes=case["quotes"], target_symbols=case["targets"]
    )
    snapshot = combined.snapshot
    held = (snapshot.positions["quantity"] * snapshot.positions["last_price"]).sum()
    if held + (snapshot.cash or 0.0) <= 0:
        return
    policy = case["policy"]
    plan = plan_rebalance(snapshot, case["targets"], policy, broker="angelone", today=TODAY)
    allocation = allocate_orders(
        plan.orders, combined.accounts, use_sell_proceeds=policy.use_sell_proceeds
    )
    event(allocation.solver)
    event("complete" if allocation.complete else "shortfall")
    assert_within_limits(
        allocation, list(plan.orders), list(combined.accounts), policy.use_sell_proceeds
    )
    for a, raw in zip(combined.accounts, case["accounts"], strict=True):
        for h in raw.holdings:
            assert a.sellable[h.symbol] == h.sellable_today <= h.quantity
