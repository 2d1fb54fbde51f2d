"""Whole shares (notes 4.4): round the continuous plan down, then spend what is left of the budget.

1. Start from the continuous plan floored to whole shares (orders under the minimum start at 0).
2. If exact charges make the buys unaffordable, cut the smallest buys first (the notes' rule).
3. Greedy fill: repeatedly take the step (one share, or a first order of the minimum size) that
   brings a symbol closest to its goal, most expensive first, while the budget, the cash and the
   caps allow. Steps toward the continuous plan come before steps beyond it (up to the goal), and
   max-weight trims before both (``policy.fill_to_target`` off: no steps beyond the plan); a buy
   that cash could not pay for is retried after each sell.
4. Re-check the max weight against the value after charges and the minimum trade value.

Every step only moves a symbol toward its goal (never past it by more than half a share), so with a
neutral policy no symbol's drift grows.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from rebalance.costs import BrokerRates, charge_total, proportional_rate
from rebalance.domain.market import Side
from rebalance.planning.book import Book
from rebalance.planning.intents import Intent
from rebalance.planning.sizing import Sizing, min_units, promote
from rebalance.policy import BudgetMode, Policy

TOLERANCE_INR = 1e-6


@dataclass
class _Ledger:
    """Running totals of the integer plan (rupees) and the checks every step must pass.

    ``units`` are shares per symbol (one order each, its side is the intent's); ``trades`` counts
    the symbols with an order.
    """

    budget: float
    funding: float
    mode: BudgetMode
    use_proceeds: bool
    rates: BrokerRates
    units: dict[str, int] = field(default_factory=dict)
    charges: dict[str, float] = field(default_factory=dict)
    buys: float = 0.0
    sells: float = 0.0
    buy_charges: float = 0.0
    sell_charges: float = 0.0
    trades: int = 0

    def fits(self, intent: Intent, units: int) -> bool:
        """Whether setting ``intent``'s order to ``units`` shares keeps the budget and the cash:
        orders and all their charges are paid by spendable cash plus the sell proceeds, and buys
        by spendable cash alone when proceeds may not be used."""
        buys, sells, buy_ch, sell_ch = self._with(intent, units)
        # float sums of huge holdings round: allow a relative hair on top of the rupee one
        slack = TOLERANCE_INR - 1e-12 * max(self.budget, buys, sells, self.funding)
        if self.mode is BudgetMode.MAX_SIDE:
            within = buys <= self.budget + slack and sells <= self.budget + slack
        else:
            within = buys + sells <= self.budget + slack
        net = buys + buy_ch + sell_ch - sells <= self.funding + slack
        paid = self.use_proceeds or buys + buy_ch <= self.funding + slack
        return within and net and paid

    def set(self, intent: Intent, units: int) -> None:
        """Make ``intent``'s order ``units`` shares (0 = no order)."""
        self.buys, self.sells, self.buy_charges, self.sell_charges = self._with(intent, units)
        symbol = intent.line.symbol
        self.trades += (units > 0) - (self.units.get(symbol, 0) > 0)
        self.units[symbol] = units
        self.charges[symbol] = self._charge(intent, units)

    def _with(self, intent: Intent, units: int) -> tuple[float, float, float, float]:
        symbol, price = intent.line.symbol, intent.line.price
        delta = (units - self.units.get(symbol, 0)) * price
        charge_delta = self._charge(intent, units) - self.charges.get(symbol, 0.0)
        if intent.side is Side.BUY:
            return self.buys + delta, self.sells, self.buy_charges + charge_delta, self.sell_charges
        return self.buys, self.sells + delta, self.buy_charges, self.sell_charges + charge_delta

    def _charge(self, intent: Intent, units: int) -> float:
        side = intent.side or Side.BUY
        line = intent.line
        return charge_total(units * line.price, side, line.exchange, self.rates, symbol=line.symbol)


def round_to_whole_shares(
    book: Book, sizing: Sizing, policy: Policy, rates: BrokerRates
) -> tuple[dict[str, int], Sizing]:
    """Whole-share order sizes (symbol -> shares, all >= 0) and the final selection (reserve
    candidates join when selected ones end with no order and max_trades leaves room)."""
    ledger = _Ledger(
        sizing.budget, sizing.funding, policy.budget_mode, policy.use_sell_proceeds, rates
    )
    for intent in sizing.selected:
        ledger.set(intent, _start_units(intent, sizing, policy))
    _cut_to_fit(ledger, sizing.selected, policy)
    while True:
        _fill(ledger, sizing, policy)
        _swap(ledger, sizing, policy)
        room = policy.max_trades - ledger.trades
        if room <= 0 or not sizing.reserve:
            break
        sizing = promote(sizing, room)
        for intent in sizing.selected:
            ledger.units.setdefault(intent.line.symbol, 0)
    _respect_max_weight(ledger, book, sizing.selected, policy)
    return dict(ledger.units), sizing


def continuous_units(intent: Intent, sizing: Sizing) -> float:
    """Shares of the continuous plan (fractional)."""
    return sizing.scaled_value(intent) / intent.line.price


def _start_units(intent: Intent, sizing: Sizing, policy: Policy) -> int:
    units = min(intent.cap, math.floor(continuous_units(intent, sizing) + 1e-9))
    return units if units >= min_units(intent) else 0


def _cut_to_fit(ledger: _Ledger, selected: Sequence[Intent], policy: Policy) -> None:
    """Cut the smallest orders until the plan fits (buys first, they are what cash limits)."""
    by_size = sorted(
        selected,
        key=lambda i: (i.side is Side.SELL, ledger.units[i.line.symbol] * i.line.price),
    )
    for intent in by_size:
        if ledger.fits(intent, ledger.units[intent.line.symbol]):
            return
        units = _most_that_fits(ledger, intent, 0, ledger.units[intent.line.symbol])
        ledger.set(intent, units if units >= min_units(intent) else 0)


def _most_that_fits(ledger: _Ledger, intent: Intent, low: int, high: int) -> int:
    """The most shares in [low, high] that keep the budget and the cash (``low`` when none
    above it does), by bisection: fitting only gets harder as an order grows."""
    if ledger.fits(intent, high):
        return high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if ledger.fits(intent, middle) else (low, middle)
    return low


def _fill(ledger: _Ledger, sizing: Sizing, policy: Policy) -> None:
    """Greedy: best step first; buys that cash blocks wait for the next sell."""
    heap: list[tuple[int, float, str]] = []
    by_symbol = {i.line.symbol: i for i in sizing.selected}
    for intent in sizing.selected:
        _push(heap, ledger, intent, sizing, policy)
    # buys that cash blocked, cheapest next step first; after a sell only those that now fit
    # come back (re-queueing every parked buy after every sell was quadratic)
    parked: list[tuple[float, str]] = []
    while heap:
        _, _, symbol = heapq.heappop(heap)
        intent = by_symbol[symbol]
        if _advance(ledger, intent, sizing, policy):
            _push(heap, ledger, intent, sizing, policy)
            if intent.side is Side.SELL:
                _unpark(parked, by_symbol, heap, ledger, sizing, policy)
        elif intent.side is Side.BUY:
            add, _ = _step(ledger, intent, sizing, policy)
            if add:
                heapq.heappush(parked, (add * intent.line.price, symbol))


def _unpark(
    parked: list[tuple[float, str]],
    by_symbol: dict[str, Intent],
    heap: list[tuple[int, float, str]],
    ledger: _Ledger,
    sizing: Sizing,
    policy: Policy,
) -> None:
    """Queue again the parked buys whose next step the cash now pays, cheapest first."""
    while parked:
        intent = by_symbol[parked[0][1]]
        add, _ = _step(ledger, intent, sizing, policy)
        units = ledger.units[intent.line.symbol]
        if add and not ledger.fits(intent, units + add):
            return
        heapq.heappop(parked)
        _push(heap, ledger, intent, sizing, policy)


def _step(ledger: _Ledger, intent: Intent, sizing: Sizing, policy: Policy) -> tuple[int, float]:
    """(shares to add, drift reduction in rupees) of the symbol's next step; (0, 0) if none."""
    units = ledger.units[intent.line.symbol]
    if units >= intent.cap:
        return 0, 0.0
    add = min_units(intent) if units == 0 else 1
    if units == 0 and ledger.trades >= policy.max_trades:
        return 0, 0.0
    if units + add > intent.cap or (
        not policy.fill_to_target and _tier(intent, units, sizing) == 2
    ):
        return 0, 0.0
    price, goal = intent.line.price, intent.goal
    gain = abs(goal - units * price) - abs(goal - (units + add) * price)
    return (add, gain) if gain > TOLERANCE_INR else (0, 0.0)


def _tier(intent: Intent, units: int, sizing: Sizing) -> int:
    """0: max-weight trims, 1: toward the continuous plan, 2: beyond it, toward the goal."""
    if units < intent.trim_units:
        return 0
    return 1 if units < math.floor(continuous_units(intent, sizing) + 0.5) else 2


def _push(
    heap: list[tuple[int, float, str]],
    ledger: _Ledger,
    intent: Intent,
    sizing: Sizing,
    policy: Policy,
) -> None:
    add, gain = _step(ledger, intent, sizing, policy)
    if add:
        tier = _tier(intent, ledger.units[intent.line.symbol], sizing)
        heapq.heappush(heap, (tier, -gain, intent.line.symbol))


def _advance(ledger: _Ledger, intent: Intent, sizing: Sizing, policy: Policy) -> bool:
    """Apply the symbol's next step, as many whole shares at once as keep the same full gain and
    tier and fit. Returns False when not even one step fits."""
    add, _ = _step(ledger, intent, sizing, policy)
    units = ledger.units[intent.line.symbol]
    if not add or not ledger.fits(intent, units + add):
        return False
    if units > 0:
        add = _bulk(ledger, intent, units, sizing)
    ledger.set(intent, units + add)
    return True


def _bulk(ledger: _Ledger, intent: Intent, units: int, sizing: Sizing) -> int:
    """Largest run of single-share steps from ``units`` that all reduce drift by a full share,
    stay in one tier and fit (at least 1: the caller checked one share fits)."""
    price = intent.line.price
    full = math.floor(intent.goal / price + 1e-9)
    tier = _tier(intent, units, sizing)
    tier_end = intent.cap
    if tier == 0:
        tier_end = intent.trim_units
    elif tier == 1:
        tier_end = min(tier_end, math.floor(continuous_units(intent, sizing) + 0.5))
    most = max(1, min(tier_end, full) - units)
    guess = min(most, _affordable(ledger, intent))
    add = max(1, guess)
    while add > 1 and not ledger.fits(intent, units + add):
        add = max(1, min(add - 1, int(add * 0.9)))
    return add


def _affordable(ledger: _Ledger, intent: Intent) -> int:
    """A quick estimate of how many more shares the budget and cash allow."""
    return math.floor(_room(ledger, intent) / intent.line.price)


def _room(ledger: _Ledger, intent: Intent) -> float:
    """Rupees of more notional on ``intent``'s side that the budget and cash allow (estimate)."""
    if intent.side is Side.SELL:
        used = ledger.sells if ledger.mode is BudgetMode.MAX_SIDE else ledger.sells + ledger.buys
        return ledger.budget - used
    used = ledger.buys if ledger.mode is BudgetMode.MAX_SIDE else ledger.sells + ledger.buys
    rate = proportional_rate(Side.BUY, intent.line.exchange, ledger.rates)
    cash = ledger.funding - ledger.buys - ledger.buy_charges
    if ledger.use_proceeds:
        cash += ledger.sells - ledger.sell_charges
    return min(ledger.budget - used, cash / (1 + rate))


SWAP_ROUNDS = 8  # improvement rounds after the greedy fill
SWAP_TRIES = 6  # blocked steps tried per round, and removals verified per blocked step


def _swap(ledger: _Ledger, sizing: Sizing, policy: Policy) -> None:
    """Knapsack clean-up after the greedy: take a blocked step (too big for what is left) by giving
    back a few shares elsewhere, when that cuts drift. Refills after each accepted swap."""
    for _ in range(SWAP_ROUNDS):
        blocked = sorted(
            (
                (gain, add, i)
                for i in sizing.selected
                for add, gain in [_step(ledger, i, sizing, policy)]
                if add
            ),
            key=lambda item: -item[0],
        )[:SWAP_TRIES]
        if not any(_try_swap(ledger, sizing, policy, gain, add, j) for gain, add, j in blocked):
            return
        _fill(ledger, sizing, policy)


def _distance(intent: Intent, units: int) -> float:
    """How far ``units`` shares leave the symbol from its goal, rupees."""
    return abs(intent.goal - units * intent.line.price)


def _try_swap(
    ledger: _Ledger, sizing: Sizing, policy: Policy, gain: float, add: int, target: Intent
) -> bool:
    """Make room for ``add`` shares of ``target`` by cutting another order, if the exchange cuts
    drift; a new order that needs a trade slot may also come in whole. Returns whether a swap was
    applied."""
    if ledger.units[target.line.symbol] == 0 and ledger.trades >= policy.max_trades:
        whole = _bulk_target(target, sizing, policy)
        if whole > add and _swap_in(
            ledger, sizing, policy, _distance(target, 0) - _distance(target, whole), whole, target
        ):
            return True
    return _swap_in(ledger, sizing, policy, gain, add, target)


def _swap_in(
    ledger: _Ledger, sizing: Sizing, policy: Policy, gain: float, add: int, target: Intent
) -> bool:
    """Cut the order whose cut loses least drift so that ``add`` shares of ``target`` fit."""
    units = ledger.units[target.line.symbol]
    needs_slot = units == 0 and ledger.trades >= policy.max_trades
    needed = add * target.line.price - max(0.0, _room(ledger, target))
    options = []
    for donor in sizing.selected:
        held = ledger.units[donor.line.symbol]
        if donor is target or held == 0:
            continue
        cut = held if needs_slot else min(held, math.ceil(max(needed, 0.0) / donor.line.price))
        if 0 < held - cut < min_units(donor):
            cut = held
        if held - cut < donor.trim_units:
            continue  # a max-weight trim is not given back
        loss = _distance(donor, held - cut) - _distance(donor, held)
        if gain - loss > TOLERANCE_INR:
            options.append((loss, donor, held - cut))
    for _, donor, kept in sorted(options, key=lambda o: o[0])[:SWAP_TRIES]:
        before = ledger.units[donor.line.symbol]
        ledger.set(donor, kept)
        slot = units > 0 or ledger.trades < policy.max_trades
        if slot and add <= target.cap and ledger.fits(target, units + add):
            ledger.set(target, units + add)
            return True
        ledger.set(donor, before)
    return False


def _bulk_target(intent: Intent, sizing: Sizing, policy: Policy) -> int:
    """Shares a new order of ``intent`` would have: its cap, or the continuous plan's nearest
    share when ``fill_to_target`` is off (never under the minimum order)."""
    units = intent.cap
    if not policy.fill_to_target:
        units = min(units, math.floor(continuous_units(intent, sizing) + 0.5))
    return max(units, min_units(intent))


def _respect_max_weight(
    ledger: _Ledger, book: Book, selected: Sequence[Intent], policy: Policy
) -> None:
    """Against the value after charges (rupees): no buy ends above the max weight, and a trimmed
    holding's order ends it at or under it (one more share sold if the charges tipped it over)."""
    max_weight = policy.max_position_weight_pct / 100.0
    for intent in selected:
        units = ledger.units[intent.line.symbol]
        if intent.side is Side.BUY:
            room = math.floor(
                (max_weight * _value_after(ledger, book) - intent.line.value) / intent.line.price
                + 1e-9
            )
            if units > room:
                units = max(0, room)
                ledger.set(intent, units if units >= min_units(intent) else 0)
        elif intent.trim and units > 0:
            _finish_trim(ledger, book, intent, units, max_weight)


def _finish_trim(
    ledger: _Ledger, book: Book, intent: Intent, units: int, max_weight: float
) -> None:
    """Sell what the charges tipped back over the max weight, computed directly (a share at a
    time took minutes for a holding of 2^63 shares), within the sellable shares and the cash."""
    line = intent.line
    wanted = units
    for _ in range(3):  # the charges move a little with the order: settle in a few rounds
        over = (line.quantity - wanted) * line.price - max_weight * _value_after(ledger, book)
        if over <= 0:
            break
        wanted = min(line.sellable, wanted + math.ceil(over / line.price - 1e-9))
        wanted = _most_that_fits(ledger, intent, units, wanted)
        ledger.set(intent, wanted)


def _value_after(ledger: _Ledger, book: Book) -> float:
    """Portfolio value once the charges are paid, rupees (prices unchanged)."""
    return book.value - ledger.buy_charges - ledger.sell_charges
