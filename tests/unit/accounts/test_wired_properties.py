"""Hypothesis on the wired path (``combined.plan_combined``, what ``combined.plan_trades`` runs):
the plan of the whole, its split, the re-plan per account when the whole cannot be funded, and
each account's part as its lane's plan. No part ever buys beyond its account's cash or sells
beyond its sellable quantity, and a re-plan leaves nothing undone. Each limit is recomputed here
from the inputs."""

from __future__ import annotations

from typing import Any

from hypothesis import event, given

from rebalance.combined import SOLVER_PER_ACCOUNT, plan_combined
from rebalance.costs import broker_rates, order_charges
from rebalance.domain.market import Side

from .support import TAKEN_AT, TODAY
from .test_allocate_properties import SETTINGS, assert_within_limits, household_cases


@SETTINGS
@given(household_cases())
def test_each_lanes_part_stays_within_its_accounts_cash_and_sellable(case: dict[str, Any]) -> None:
    accounts = case["accounts"]
    held = sum(h.quantity * h.last_price for a in accounts for h in a.holdings)
    if held + sum(a.cash or 0.0 for a in accounts) <= 0:
        return  # nothing to plan: the planner refuses it (tested with the planner)
    policy = case["policy"]
    result = plan_combined(
        accounts, case["quotes"], case["targets"], policy, taken_at=TAKEN_AT, today=TODAY
    )
    allocation = result.allocation
    event("re-planned per account" if result.replanned else "one plan for the whole")
    if result.replanned:
        assert allocation.solver == SOLVER_PER_ACCOUNT
        assert allocation.complete, allocation.shortfalls  # never a shortfall left behind
    else:
        assert_within_limits(
            allocation, list(result.plan.orders), list(result.combined.accounts),
            policy.use_sell_proceeds,
        )  # fmt: skip
    for raw in accounts:
        part = result.part(raw.account)
        sellable: dict[str, int] = {}
        for h in raw.holdings:
            sellable[h.symbol] = sellable.get(h.symbol, 0) + h.sellable_today
        rates = broker_rates(raw.broker)
        spent = received = 0.0
        for o in part.orders:
            charges = order_charges(o.quantity * o.price, o.side, o.exchange, rates).total
            assert o.quantity > 0
            if o.side is Side.SELL:
                assert o.quantity <= sellable.get(o.symbol, 0), (raw.account, o)
                received += o.quantity * o.price - charges
            else:
                spent += o.quantity * o.price + charges
        cash = raw.cash or 0.0
        funds = cash + received if policy.use_sell_proceeds else cash
        assert spent <= funds + 1e-6, f"{raw.account} buys for {spent} with {funds}"
        assert cash + received - spent >= -1e-6
        assert [(o.symbol, o.side, o.quantity) for o in part.orders] == sorted(
            ((o.symbol, o.side, o.quantity) for o in allocation.for_account(raw.account)),
            key=lambda t: (t[1] is Side.BUY, t[0]),
        )
