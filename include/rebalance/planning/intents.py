"""What each symbol wants (notes sections 4.1, 4.2, 5, 7, 13.5), before any budget is applied.

An ``Intent`` is a side and a goal in rupees (how far the symbol wants to move) with its reasons, or
the reasons it is left alone. Hard limits (sellable shares, max weight, lists, filters, holding
period) are applied here as caps in whole shares, so nothing later can exceed them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rebalance.costs import BrokerRates, charge_total
from rebalance.domain.market import Side
from rebalance.planning.book import Book, Line
from rebalance.policy import Policy, RebalanceTo, TiltMode, TradeFilter

EPSILON = 1e-9


@dataclass(frozen=True)
class Intent:
    """One symbol's wish. ``goal`` is rupees >= 0 on ``side``; ``cap`` the most shares allowed.

    ``cap`` is the goal rounded to the nearest share (so a trade never moves the symbol further from
    its goal than it started), within the sellable quantity and the max weight. A symbol with
    ``skipped`` reasons is left alone and has ``side`` None.

    For the optimiser: ``direction`` is the side the symbol may trade on even when the fast plan
    skipped it for its size (None when it may not trade at all), ``bound`` the most shares any
    plan may trade (the hard limits: sellable shares, max-weight room, never further from its
    goal than it started, the band edge), ``min_value`` the smallest order in rupees (the minimum
    trade value, or more when ``max_order_charges_pct`` asks for it).
    """

    line: Line
    side: Side | None
    goal: float
    cap: int
    reasons: tuple[str, ...]
    skipped: tuple[str, ...]
    trim_units: int = 0  # shares that must be sold to get under the max weight
    direction: Side | None = None
    bound: int = 0
    min_value: float = 0.0

    @property
    def trim(self) -> bool:
        return self.trim_units > 0

    @property
    def active(self) -> bool:
        return self.side is not None and not self.skipped


@dataclass(frozen=True)
class Bias:
    """Market-wide inputs of the overlays: today's winners share (%), None when unknown."""

    today_winners_pct: float | None


def decide_intents(book: Book, policy: Policy, rates: BrokerRates) -> tuple[list[Intent], Bias]:
    """One Intent per line of ``book``. ``rates`` price the charge-aware minimum order."""
    bias = Bias(today_winners_pct(book))
    floors = _ChargeFloors(policy.max_order_charges_pct, rates)
    return [_intent(line, book, policy, bias, floors) for line in book.lines], bias


def today_winners_pct(book: Book) -> float | None:
    """Share of the portfolio's symbols trading above yesterday's close, %; None if unknown."""
    known = [ln for ln in book.lines if ln.previous_close is not None and ln.previous_close > 0]
    if not known:
        return None
    winners = sum(
        1 for ln in known if ln.previous_close is not None and ln.price > ln.previous_close
    )
    return 100.0 * winners / len(known)


def _intent(line: Line, book: Book, policy: Policy, bias: Bias, floors: _ChargeFloors) -> Intent:
    side, goal, reasons = _drift_goal(line, book, policy)
    if side is None:
        return Intent(line, None, 0.0, 0, (), reasons)
    blocked = _blocked(line, side, book, policy)
    if blocked:
        return Intent(line, None, 0.0, 0, (), (blocked,))
    goal, overlay = _overlays(line, side, goal, policy, bias)
    trim_units = _trim_units(line, book, policy)
    cap = _cap(line, side, goal, book, policy, trim_units)
    charge_floor = floors.smallest(side, line.exchange)
    min_value = max(policy.min_trade_value_inr, charge_floor)
    bound = _bound(line, side, goal, book, policy, trim_units, reasons)
    if min_value > bound * line.price:
        bound = 0  # no order this symbol may make is large enough
    tags = (*reasons, *overlay)
    skipped: tuple[str, ...] = ()
    if cap == 0:
        room = side is Side.BUY and _max_weight_room(line, book, policy) < 1
        skipped = ("max_weight" if room else "less_than_one_share",)
    elif cap * line.price < min_value:
        too_costly = cap * line.price >= policy.min_trade_value_inr
        skipped = ("charges_too_high" if too_costly else "below_min_trade_value",)
    if skipped:  # the fast plan leaves it alone; the optimiser may still trade it
        return Intent(line, None, goal, cap, tags, skipped, 0, side, bound, min_value)
    return Intent(line, side, goal, cap, tags, (), min(trim_units, cap), side, bound, min_value)


class _ChargeFloors:
    """The smallest notional (rupees) whose estimated charges are at most
    ``max_order_charges_pct`` of it, per side and exchange (0 when the option is off; infinity
    when no order is cheap enough). Charges per rupee only fall as an order grows (the fixed DP
    charge and minimum brokerage spread out), so a bisection finds it."""

    def __init__(self, pct: float | None, rates: BrokerRates) -> None:
        self._share = None if pct is None else pct / 100.0
        self._rates = rates
        self._known: dict[tuple[Side, str], float] = {}

    def smallest(self, side: Side, exchange: str) -> float:
        if self._share is None:
            return 0.0
        key = (side, exchange)
        if key not in self._known:
            self._known[key] = self._bisect(side, exchange, self._share)
        return self._known[key]

    def _bisect(self, side: Side, exchange: str, share: float) -> float:
        def cheap(notional: float) -> bool:
            return charge_total(notional, side, exchange, self._rates) <= share * notional

        low, high = 0.01, 1e12
        if not cheap(high):
            return math.inf
        if cheap(low):
            return 0.0
        for _ in range(200):
            if high - low <= 0.005:
                break
            middle = (low + high) / 2
            low, high = (low, middle) if cheap(middle) else (middle, high)
        return high


def _drift_goal(
    line: Line, book: Book, policy: Policy
) -> tuple[Side | None, float, tuple[str, ...]]:
    """Side and rupee goal from the drift bands (4.2) and the max-weight trim (7)."""
    max_weight = policy.max_position_weight_pct / 100.0
    weight = line.value / book.value
    drift = weight - line.target
    out_of_band = abs(drift) > EPSILON and (
        abs(drift) >= policy.drift_band_abs_pct / 100.0 - EPSILON
        or abs(drift) >= policy.drift_band_rel_pct / 100.0 * line.target - EPSILON
    )
    over_max = weight > max_weight + EPSILON
    if out_of_band:
        delta = min(line.target, max_weight) * book.value - line.value
        if policy.rebalance_to is RebalanceTo.BAND_EDGE and line.listed:
            delta = _to_band_edge(delta, line, book, policy)
            if over_max:  # the trim still goes at least to the max weight
                delta = min(delta, max_weight * book.value - line.value)
        tag = "drift" if line.listed else "exit"
        reasons: tuple[str, ...] = (tag, "max_weight_trim") if over_max else (tag,)
    elif over_max:
        delta, reasons = max_weight * book.value - line.value, ("max_weight_trim",)
    else:
        return None, 0.0, ("inside_band",)
    if abs(delta) < EPSILON:
        return None, 0.0, ("at_target",)
    return (Side.BUY if delta > 0 else Side.SELL), abs(delta), reasons


def _to_band_edge(delta: float, line: Line, book: Book, policy: Policy) -> float:
    """The rupee move that takes the symbol only to the nearest edge of its band (4.2): the band
    is the drift under both the absolute and the relative width, so its half-width is the
    smaller of them."""
    width = min(policy.drift_band_abs_pct / 100.0, policy.drift_band_rel_pct / 100.0 * line.target)
    shorter = max(0.0, abs(delta) - width * book.value)
    return math.copysign(shorter, delta)


def _blocked(line: Line, side: Side, book: Book, policy: Policy) -> str | None:
    """Why a trade on ``side`` is not allowed at all, or None."""
    if side is Side.BUY:
        if line.symbol in policy.no_buy:
            return "no_buy"
        if policy.trade_filter is TradeFilter.SELLS_ONLY:
            return "filtered"
        return None
    if line.symbol in policy.no_sell:
        return "no_sell"
    if policy.trade_filter is TradeFilter.BUYS_ONLY:
        return "filtered"
    if line.sellable <= 0:
        return "not_sellable"
    if _inside_holding_period(line, book, policy):
        return "holding_period"
    return None


def _inside_holding_period(line: Line, book: Book, policy: Policy) -> bool:
    """True when the holding was acquired fewer than ``min_holding_days`` days before today.
    An unknown acquisition date does not block a sale."""
    if policy.min_holding_days is None or line.acquired_on is None:
        return False
    return (book.today - line.acquired_on).days < policy.min_holding_days


def _overlays(
    line: Line, side: Side, goal: float, policy: Policy, bias: Bias
) -> tuple[float, tuple[str, ...]]:
    """Notes section 5: profit taking, tilt and today's-winners bias scale the goal (rupees)."""
    tags: list[str] = []
    pnl = line.pnl_pct
    threshold = policy.profit_take_threshold_pct
    if side is Side.SELL and threshold is not None and pnl is not None and pnl >= threshold:
        goal *= 1 + policy.profit_take_boost_pct / 100.0
        tags.append("profit_take")
    factor = _tilt_factor(side, pnl, policy)
    if factor != 1.0:
        goal *= factor
        tags.append("tilt")
    if policy.today_winners_bias and bias.today_winners_pct is not None:
        high = bias.today_winners_pct >= policy.today_winners_high_pct
        low = bias.today_winners_pct <= policy.today_winners_low_pct
        if (high and side is Side.SELL) or (low and side is Side.BUY):
            goal *= 1 + policy.today_bias_pct / 100.0
            tags.append("today_bias")
    return goal, tuple(tags)


def _tilt_factor(side: Side, pnl: float | None, policy: Policy) -> float:
    """Mean reversion buys more of underweight losers; momentum buys fewer of them and trims
    overweight winners less."""
    if pnl is None or policy.tilt_mode is TiltMode.NEUTRAL:
        return 1.0
    strength = policy.tilt_strength_pct / 100.0
    if policy.tilt_mode is TiltMode.MEAN_REVERSION:
        return 1 + strength if side is Side.BUY and pnl < 0 else 1.0
    if side is Side.BUY and pnl < 0:
        return 1 - strength
    if side is Side.SELL and pnl > 0:
        return 1 - strength
    return 1.0


def _cap(line: Line, side: Side, goal: float, book: Book, policy: Policy, trim_units: int) -> int:
    """Most shares this symbol may trade: the goal to the nearest share, at least the max-weight
    trim, within sellable shares or the max-weight room."""
    nearest = max(math.floor(goal / line.price + 0.5), trim_units)
    if side is Side.SELL:
        return max(0, min(nearest, line.sellable))
    return max(0, min(nearest, _max_weight_room(line, book, policy)))


def _bound(
    line: Line,
    side: Side,
    goal: float,
    book: Book,
    policy: Policy,
    trim_units: int,
    reasons: tuple[str, ...],
) -> int:
    """Most shares any plan may trade on ``side``: never further from the goal than the symbol
    started (at most twice the goal), only to the goal's nearest share when trading to the band
    edge or trimming a symbol inside its band (a trim: one share more), and within the sellable
    shares or the max-weight room."""
    if policy.rebalance_to is RebalanceTo.BAND_EDGE or reasons == ("max_weight_trim",):
        most = math.floor(goal / line.price + 0.5)
    else:
        most = math.floor(2 * goal / line.price + EPSILON)
    # a trim may sell one share more, for when the charges tip the holding back over the max
    most = max(most, trim_units + 1 if trim_units else 0)
    if side is Side.SELL:
        return max(0, min(most, line.sellable))
    return max(0, min(most, _max_weight_room(line, book, policy)))


def _trim_units(line: Line, book: Book, policy: Policy) -> int:
    """Shares to sell so the holding ends at or under the max weight (0 when it is not above)."""
    excess = line.value - policy.max_position_weight_pct / 100.0 * book.value
    return max(0, math.ceil(excess / line.price - EPSILON))


def _max_weight_room(line: Line, book: Book, policy: Policy) -> int:
    """Shares that can be bought before the holding passes the max weight (of planning value)."""
    room = policy.max_position_weight_pct / 100.0 * book.value - line.value
    return max(0, math.floor(room / line.price + EPSILON))
