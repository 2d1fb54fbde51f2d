"""The continuous plan: budget (4.3), proportional scaling, cash, max trades and min trade value.

The budget is measured as ``policy.budget_mode`` says: ``max_side`` (default, the notes' first
formula: buys and sells are each at most the budget) or ``turnover`` (buys + sells at most the
budget). Buys are scaled down further when cash (plus this run's sell proceeds, when allowed) cannot
pay for them with their charges.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rebalance.brokers.base import Side
from rebalance.costs import BrokerRates, proportional_rate
from rebalance.planning.book import Book
from rebalance.planning.intents import Intent
from rebalance.policy import BudgetMode, Policy


@dataclass(frozen=True)
class Sizing:
    """The continuous plan.

    ``budget`` rupees; ``scale`` the 4.3 factor; ``buy_scale`` that times the cash factor;
    ``selected`` the symbols allowed to trade; ``dropped`` symbol -> why it may not.
    ``funding`` is the cash that buys may spend before sell proceeds (rupees).
    """

    budget: float
    scale: float
    buy_scale: float
    selected: tuple[Intent, ...]
    dropped: dict[str, str]
    funding: float

    def scaled_value(self, intent: Intent) -> float:
        """Rupees this symbol trades in the continuous plan."""
        factor = self.buy_scale if intent.side is Side.BUY else self.scale
        return reach(intent) * factor


def reach(intent: Intent) -> float:
    """How far the symbol can go toward its goal, rupees (the goal within its share cap)."""
    return min(intent.goal, intent.cap * intent.line.price)


def min_units(intent: Intent, policy: Policy) -> int:
    """Fewest shares of an order of this symbol that meet the minimum trade value."""
    return max(1, math.ceil(policy.min_trade_value_inr / intent.line.price - 1e-9))


def budget_inr(book: Book, policy: Policy) -> float:
    """The rebalance budget in rupees: the fixed amount, else the % of portfolio value."""
    if policy.rebalance_budget_inr is not None:
        return policy.rebalance_budget_inr
    return policy.rebalance_budget_pct / 100.0 * book.value


def spendable_cash(book: Book) -> float:
    """Cash that buys may use before sell proceeds: what is above the cash target, rupees."""
    return max(0.0, book.cash - book.cash_target * book.value)


@dataclass(frozen=True)
class _Totals:
    """Running sums over a prefix of the ranked candidates (rupees, rates per rupee)."""

    buys: float = 0.0
    sells: float = 0.0
    buy_rate: float = 0.0
    sell_rate: float = 0.0
    buy_need: float = 0.0  # the largest min-value / reach ratio among buys
    sell_need: float = 0.0  # the same among sells

    def plus(self, intent: Intent, policy: Policy, rates: BrokerRates) -> _Totals:
        amount = reach(intent)
        need = min_units(intent, policy) * intent.line.price / amount
        rate = proportional_rate(intent.side or Side.BUY, intent.line.exchange, rates)
        if intent.side is Side.BUY:
            return _Totals(
                self.buys + amount,
                self.sells,
                max(self.buy_rate, rate),
                self.sell_rate,
                max(self.buy_need, need),
                self.sell_need,
            )
        return _Totals(
            self.buys,
            self.sells + amount,
            self.buy_rate,
            max(self.sell_rate, rate),
            self.buy_need,
            max(self.sell_need, need),
        )


def size_plan(book: Book, intents: Sequence[Intent], policy: Policy, rates: BrokerRates) -> Sizing:
    """Pick the symbols that trade and the scale factors, by the notes' proportional rule.

    Candidates are ranked by how far they can move (max-weight trims first); the longest prefix of
    at most ``max_trades`` whose every scaled trade still meets the minimum trade value trades.
    """
    budget = budget_inr(book, policy)
    funding = spendable_cash(book)
    ranked = sorted(
        (i for i in intents if i.active), key=lambda i: (not i.trim, -reach(i), i.line.symbol)
    )
    best, best_scales = 0, (1.0, 1.0)
    totals = _Totals()
    for count, intent in enumerate(ranked[: policy.max_trades], start=1):
        totals = totals.plus(intent, policy, rates)
        scales = _scales(totals, budget, funding, policy)
        if scales[0] >= totals.sell_need - 1e-9 and scales[1] >= totals.buy_need - 1e-9:
            best, best_scales = count, scales
    kept = _Totals()
    for intent in ranked[:best]:
        kept = kept.plus(intent, policy, rates)
    dropped = {
        intent.line.symbol: _why_dropped(intent, position, kept, budget, funding, policy, rates)
        for position, intent in enumerate(ranked[best:], start=best)
    }
    return Sizing(budget, best_scales[0], best_scales[1], tuple(ranked[:best]), dropped, funding)


def _scales(totals: _Totals, budget: float, funding: float, policy: Policy) -> tuple[float, float]:
    """(scale, buy_scale) of the continuous plan for these totals."""
    if policy.budget_mode is BudgetMode.MAX_SIDE:
        demand = max(totals.buys, totals.sells)
    else:
        demand = totals.buys + totals.sells
    scale = min(1.0, budget / demand) if demand > 0 else 1.0
    if totals.buys <= 0:
        return scale, scale
    proceeds = totals.sells * scale * (1 - totals.sell_rate) if policy.use_sell_proceeds else 0.0
    need = totals.buys * scale * (1 + totals.buy_rate)
    return scale, scale * min(1.0, max(0.0, funding + proceeds) / need)


def _why_dropped(
    intent: Intent,
    position: int,
    kept: _Totals,
    budget: float,
    funding: float,
    policy: Policy,
    rates: BrokerRates,
) -> str:
    """Why a ranked candidate beyond the kept prefix does not trade."""
    if position >= policy.max_trades:
        return "max_trades"
    scale, buy_scale = _scales(kept.plus(intent, policy, rates), budget, funding, policy)
    smallest = min_units(intent, policy) * intent.line.price
    if intent.side is Side.BUY and reach(intent) * scale >= smallest > reach(intent) * buy_scale:
        return "no_cash"
    return "budget_too_small"
