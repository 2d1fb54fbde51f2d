"""The continuous plan: budget (4.3), proportional scaling, cash, max trades and min trade value.

The budget is measured as ``policy.budget_mode`` says: ``max_side`` (default, the notes' first
formula: buys and sells are each at most the budget) or ``turnover`` (buys + sells at most the
budget). Buys are scaled down further when cash (plus this run's sell proceeds, when allowed) cannot
pay for them with their charges.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

from rebalance.costs import BrokerRates, proportional_rate
from rebalance.domain.market import Side
from rebalance.planning.book import Book
from rebalance.planning.intents import Intent
from rebalance.policy import BudgetMode, Policy


@dataclass(frozen=True)
class Sizing:
    """The continuous plan.

    ``budget`` rupees; ``scale`` the 4.3 factor; ``buy_scale`` that times the cash factor;
    ``selected`` the candidates that may trade (at most ``max_trades``), ``reserve`` the others,
    best first; ``funding`` the cash that buys may spend before sell proceeds (rupees).
    """

    budget: float
    scale: float
    buy_scale: float
    selected: tuple[Intent, ...]
    reserve: tuple[Intent, ...]
    funding: float

    def scaled_value(self, intent: Intent) -> float:
        """Rupees this symbol trades in the continuous plan."""
        factor = self.buy_scale if intent.side is Side.BUY else self.scale
        return reach(intent) * factor


def promote(sizing: Sizing, count: int) -> Sizing:
    """``sizing`` with the first ``count`` reserve candidates moved into the selection (same
    scales: they only use what the selected ones left)."""
    return replace(
        sizing,
        selected=sizing.selected + sizing.reserve[:count],
        reserve=sizing.reserve[count:],
    )


def worth(intent: Intent) -> float:
    """Drift the symbol's largest allowed order would cut, rupees: its reach, less any overshoot
    of the last share (one ₹13,000 share against a ₹7,700 gap cuts only ₹2,400)."""
    return intent.goal - abs(intent.goal - intent.cap * intent.line.price)


def reach(intent: Intent) -> float:
    """How far the symbol can go toward its goal, rupees (the goal within its share cap)."""
    return min(intent.goal, intent.cap * intent.line.price)


def min_units(intent: Intent) -> int:
    """Fewest shares of an order of this symbol that meet its smallest order (the minimum trade
    value, or the charge-aware minimum)."""
    if not math.isfinite(intent.min_value):
        return intent.bound + 1
    return max(1, math.ceil(intent.min_value / intent.line.price - 1e-9))


def budget_inr(book: Book, policy: Policy) -> float:
    """The rebalance budget in rupees: the fixed amount, else the % of portfolio value."""
    if policy.rebalance_budget_inr is not None:
        return policy.rebalance_budget_inr
    return policy.rebalance_budget_pct / 100.0 * book.value


def spendable_cash(book: Book) -> float:
    """Cash that buys may use before sell proceeds: what is above the cash target, rupees."""
    return max(0.0, book.cash - book.cash_target * book.value)


def size_plan(book: Book, intents: Sequence[Intent], policy: Policy, rates: BrokerRates) -> Sizing:
    """The notes' proportional rule over the candidates that may trade.

    When there are more candidates than ``max_trades``, max-weight trims are kept first, then one
    at a time the candidate (the buy or the sell worth most, see ``worth``) that lets the
    continuous plan cut the most drift within the budget and cash: a sell counts twice when its
    proceeds are what the buys wait for. The others wait in ``reserve`` in case a selected one
    ends with no order. Orders under the minimum trade value are settled by
    ``round_to_whole_shares``.
    """
    budget = budget_inr(book, policy)
    funding = spendable_cash(book)
    selected, reserve = _select(intents, budget, funding, policy, rates)
    scale, buy_scale = _scales(selected, budget, funding, policy, rates)
    return Sizing(budget, scale, buy_scale, selected, reserve, funding)


def _select(
    intents: Sequence[Intent], budget: float, funding: float, policy: Policy, rates: BrokerRates
) -> tuple[tuple[Intent, ...], tuple[Intent, ...]]:
    """(selected, reserve): at most ``max_trades`` candidates, chosen greedily (see size_plan)."""
    ranked = sorted(
        (i for i in intents if i.active), key=lambda i: (not i.trim, -worth(i), i.line.symbol)
    )
    if len(ranked) <= policy.max_trades:
        return tuple(ranked), ()
    chosen = [i for i in ranked if i.trim][: policy.max_trades]
    buys = deque(i for i in ranked if not i.trim and i.side is Side.BUY)
    sells = deque(i for i in ranked if not i.trim and i.side is Side.SELL)
    totals = {side: sum(worth(i) for i in chosen if i.side is side) for side in Side}
    rate_buy = max(proportional_rate(Side.BUY, i.line.exchange, rates) for i in ranked)
    rate_sell = max(proportional_rate(Side.SELL, i.line.exchange, rates) for i in ranked)
    rates_pair = (rate_buy, rate_sell)
    while len(chosen) < policy.max_trades and (buys or sells):
        options = [queue for queue in (buys, sells) if queue]
        best = max(
            options,
            key=lambda queue: (
                _reduction(totals, queue[0], budget, funding, policy, rates_pair),
                worth(queue[0]),
            ),
        )
        pick = best.popleft()
        totals[pick.side or Side.BUY] += worth(pick)
        chosen.append(pick)
    picked = {i.line.symbol for i in chosen}
    return tuple(chosen), tuple(i for i in ranked if i.line.symbol not in picked)


def _reduction(
    totals: dict[Side, float],
    extra: Intent,
    budget: float,
    funding: float,
    policy: Policy,
    rates: tuple[float, float],
) -> float:
    """Drift (rupees) the continuous plan could cut with ``extra`` added to the chosen totals."""
    buys = totals[Side.BUY] + (worth(extra) if extra.side is Side.BUY else 0.0)
    sells = totals[Side.SELL] + (worth(extra) if extra.side is Side.SELL else 0.0)
    return _continuous_reduction(buys, sells, budget, funding, policy, rates)


def _continuous_reduction(
    buys: float,
    sells: float,
    budget: float,
    funding: float,
    policy: Policy,
    rates: tuple[float, float],
) -> float:
    """Most rupees of buys + sells (each toward its goal) that the budget and cash allow, given
    ``buys`` and ``sells`` rupees wanted. ``rates`` are the (buy, sell) charges per rupee."""
    buy_rate, sell_rate = rates
    keep = (1 - sell_rate) if policy.use_sell_proceeds else 0.0

    def total(sold: float, cap: float) -> float:
        return sold + max(0.0, min(buys, cap, (funding + sold * keep) / (1 + buy_rate)))

    if policy.budget_mode is BudgetMode.MAX_SIDE:
        sold = min(sells, budget)
        return total(sold, budget)
    # turnover: buys + sells <= budget; the best split is at a vertex
    crossing = (budget * (1 + buy_rate) - funding) / ((1 + buy_rate) + keep)
    vertices = {min(sells, budget), max(0.0, min(sells, budget, crossing)), 0.0}
    return max(total(sold, budget - sold) for sold in vertices)


def _scales(
    chosen: Sequence[Intent], budget: float, funding: float, policy: Policy, rates: BrokerRates
) -> tuple[float, float]:
    """(scale, buy_scale) of the continuous plan over ``chosen``."""
    buys = sum(reach(i) for i in chosen if i.side is Side.BUY)
    sells = sum(reach(i) for i in chosen if i.side is Side.SELL)
    demand = max(buys, sells) if policy.budget_mode is BudgetMode.MAX_SIDE else buys + sells
    scale = min(1.0, budget / demand) if demand > 0 else 1.0
    if buys <= 0 or scale <= 0:
        return scale, scale
    buy_rate = max(proportional_rate(Side.BUY, i.line.exchange, rates) for i in chosen)
    sell_rate = max(proportional_rate(Side.SELL, i.line.exchange, rates) for i in chosen)
    proceeds = sells * scale * (1 - sell_rate) if policy.use_sell_proceeds else 0.0
    need = buys * scale * (1 + buy_rate)
    return scale, scale * min(1.0, max(0.0, funding + proceeds) / need)
