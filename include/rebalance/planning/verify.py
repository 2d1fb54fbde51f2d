"""An independent check of a plan's hard constraints, written apart from the planner's own logic.

``verify_plan`` recomputes value, budget, cash and charges from the inputs and lists every broken
rule in words. Tests and benchmarks use it; a task can call it as a last guard before ordering.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from rebalance.costs import broker_rates, charge_total, with_scrip_groups
from rebalance.domain.market import IST, Side
from rebalance.plan import PlannedOrder, TradePlan
from rebalance.planning.taxes import tax_problems
from rebalance.policy import BudgetMode, Policy, TaxMode, TradeFilter, UnlistedHoldings
from rebalance.snapshot import HoldingsSnapshot
from rebalance.tax.planning import TaxContext

SLACK_INR = 1e-4  # rupees of float noise tolerated in sums
RELATIVE_SLACK = 1e-12  # and this share of the amounts compared (sums of huge holdings round)


def _slack(*amounts: float) -> float:
    return SLACK_INR + RELATIVE_SLACK * max((abs(a) for a in amounts), default=0.0)


def verify_plan(
    plan: TradePlan,
    snapshot: HoldingsSnapshot,
    targets: Mapping[str, float],
    policy: Policy,
    *,
    cash_target: float | None = None,
    broker: str = "paper",
    today: date | None = None,
    scrip_groups: Mapping[str, str] | None = None,
    tax: TaxContext | None = None,
) -> list[str]:
    """Every hard-constraint violation of ``plan`` (empty when it is safe to place).
    ``scrip_groups``: BSE scrip groups by symbol (the portfolio's ``execution.bse_scrip_groups``).
    With ``tax`` (the account's lots) and a policy ``tax`` not off: the FIFO holding periods and
    the caps of ``tax: limit`` too (planning/taxes.py, ``tax_problems``).
    """
    rows = {str(r["symbol"]): r for r in snapshot.positions.to_dict(orient="records")}
    rates = with_scrip_groups(broker_rates(broker), scrip_groups)
    selling_unlisted = policy.unlisted_holdings is UnlistedHoldings.SELL
    members = {s for s in rows if s in targets or (selling_unlisted and rows[s]["quantity"] > 0)}
    cash = snapshot.cash or 0.0
    value = sum(rows[s]["quantity"] * rows[s]["last_price"] for s in members) + cash
    problems = [p for o in plan.orders for p in _order_problems(o, rows, targets, members, policy)]
    when = today or snapshot.taken_at.astimezone(IST).date()
    lots = tax.lots if tax is not None and policy.tax is not TaxMode.OFF else {}
    problems += _holding_period_problems(plan, rows, policy, when, frozenset(lots))
    problems += tax_problems(plan, policy, tax)
    symbols = [o.symbol for o in plan.orders]
    if len(symbols) != len(set(symbols)):
        problems.append("more than one order for a symbol")
    if len(plan.orders) > policy.max_trades:
        problems.append(f"{len(plan.orders)} orders exceed max_trades {policy.max_trades}")
    charges = {
        o.symbol: charge_total(o.notional, o.side, o.exchange, rates, symbol=o.symbol)
        for o in plan.orders
    }
    if policy.max_order_charges_pct is not None:
        share = policy.max_order_charges_pct / 100.0
        problems += [
            f"{o.side} {o.quantity} {o.symbol}: charges ₹{charges[o.symbol]:,.2f} exceed "
            f"max_order_charges_pct {policy.max_order_charges_pct:g}% of ₹{o.notional:,.2f}"
            for o in plan.orders
            if charges[o.symbol] > share * o.notional + SLACK_INR
        ]
    problems += _money_problems(plan, charges, value, cash, cash_target or 0.0, policy)
    problems += _max_weight_problems(plan, rows, value - sum(charges.values()), policy)
    return problems


def _order_problems(
    order: PlannedOrder,
    rows: Mapping[str, Mapping[str, Any]],
    targets: Mapping[str, float],
    members: set[str],
    policy: Policy,
) -> list[str]:
    name = f"{order.side} {order.quantity} {order.symbol}"
    if order.symbol not in members:
        return [f"{name}: not a member of the portfolio"]
    row = rows[order.symbol]
    problems = []
    if not isinstance(order.quantity, int) or order.quantity < 1:
        problems.append(f"{name}: quantity must be a whole number >= 1")
    if abs(order.notional - order.quantity * row["last_price"]) > SLACK_INR:
        problems.append(f"{name}: notional is not quantity x last price")
    if order.notional < policy.min_trade_value_inr - SLACK_INR:
        problems.append(f"{name}: below min_trade_value_inr {policy.min_trade_value_inr}")
    if order.side is Side.SELL:
        if order.quantity > row["sellable_quantity"]:
            problems.append(f"{name}: above sellable quantity {row['sellable_quantity']}")
        if order.quantity > row["quantity"]:
            problems.append(f"{name}: would leave a negative holding")
        if order.symbol in policy.no_sell or policy.trade_filter is TradeFilter.BUYS_ONLY:
            problems.append(f"{name}: selling is not allowed (no_sell / buys_only)")
    else:
        if order.symbol in policy.no_buy or policy.trade_filter is TradeFilter.SELLS_ONLY:
            problems.append(f"{name}: buying is not allowed (no_buy / sells_only)")
        if order.symbol not in targets:
            problems.append(f"{name}: buying a symbol outside the targets")
    return problems


def _holding_period_problems(
    plan: TradePlan,
    rows: Mapping[str, Mapping[str, Any]],
    policy: Policy,
    today: date,
    with_lots: frozenset[str] = frozenset(),
) -> list[str]:
    """Sells of symbols held fewer than ``min_holding_days`` (by the snapshot's acquisition
    date; the symbols ``with_lots`` are checked on their FIFO lots by ``tax_problems``)."""
    if policy.min_holding_days is None:
        return []
    problems = []
    for order in plan.orders:
        if order.symbol in with_lots:
            continue
        acquired = rows[order.symbol].get("acquired_on") if order.symbol in rows else None
        if order.side is Side.SELL and isinstance(acquired, date):
            held = (today - acquired).days
            if held < policy.min_holding_days:
                problems.append(
                    f"SELL {order.symbol}: held {held} days < {policy.min_holding_days}"
                )
    return problems


def _money_problems(
    plan: TradePlan,
    charges: Mapping[str, float],
    value: float,
    cash: float,
    cash_target: float,
    policy: Policy,
) -> list[str]:
    budget = policy.rebalance_budget_inr or policy.rebalance_budget_pct / 100.0 * value
    buys = sum(o.notional for o in plan.orders if o.side is Side.BUY)
    sells = sum(o.notional for o in plan.orders if o.side is Side.SELL)
    buy_ch = sum(charges[o.symbol] for o in plan.orders if o.side is Side.BUY)
    sell_ch = sum(charges[o.symbol] for o in plan.orders if o.side is Side.SELL)
    problems = []
    if policy.budget_mode is BudgetMode.MAX_SIDE and max(buys, sells) > budget + _slack(budget):
        problems.append(
            f"buys ₹{buys:,.2f} or sells ₹{sells:,.2f} exceed the budget ₹{budget:,.2f}"
        )
    if policy.budget_mode is BudgetMode.TURNOVER and buys + sells > budget + _slack(budget):
        problems.append(f"turnover ₹{buys + sells:,.2f} exceeds the budget ₹{budget:,.2f}")
    spendable = max(0.0, cash - cash_target * value)
    if buys + buy_ch + sell_ch - sells > spendable + _slack(buys, sells, spendable):
        problems.append(
            f"orders need ₹{buys + buy_ch + sell_ch - sells:,.2f}, cash is ₹{spendable:,.2f}"
        )
    if not policy.use_sell_proceeds and buys + buy_ch > spendable + _slack(buys, spendable):
        problems.append(f"buys ₹{buys + buy_ch:,.2f} need sell proceeds (use_sell_proceeds is off)")
    return problems


def _max_weight_problems(
    plan: TradePlan, rows: Mapping[str, Mapping[str, Any]], value_after: float, policy: Policy
) -> list[str]:
    limit = policy.max_position_weight_pct / 100.0
    problems = []
    for order in plan.orders:
        if order.side is Side.BUY:
            row = rows[order.symbol]
            weight = (row["quantity"] + order.quantity) * row["last_price"] / value_after
            if weight > limit + 1e-9:
                problems.append(
                    f"BUY {order.symbol}: ends at {weight:.4%} > max weight {limit:.2%}"
                )
    return problems
