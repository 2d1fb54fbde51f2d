"""Tax in the plan (policy ``tax``; docs/tax.md): FIFO holding periods, the caps of ``tax: limit``
and the tax term of ``tax: minimise`` for the optimiser, and their independent check.

The tax of a sell is piecewise linear in its shares: the FIFO lots it consumes, oldest first,
each with its gain per share and term. The program has one segment column per lot, filled in
FIFO order (a binary per lot boundary), so a sell's short- and long-term gains are exact linear
expressions. The year's tax after the run is then exact with one more binary (the sign of the
year's net short-term gain, which decides whether a short-term loss reaches the long-term
gains): ``m x (r_s x max(0, S) + r_l x max(0, L + min(0, S) - exemption))``, with S and L the
year's net gains including the run's and ``m`` the surcharge and cess factor. The run's tax is
that minus the year's tax before the run. Money is in the program's units (``k`` per rupee).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from rebalance.domain.market import Side
from rebalance.plan import TradePlan
from rebalance.policy import Policy, TaxMode
from rebalance.snapshot import HoldingsSnapshot
from rebalance.tax.planning import (
    PlanTax,
    Segment,
    TaxContext,
    estimate_plan,
    sell_segments,
    sellable_by_holding,
)
from rebalance.tax.report import piece_dict
from rebalance.tax.rules import Term

if TYPE_CHECKING:
    from rebalance.planning.book import Book
    from rebalance.planning.intents import Intent

SLACK_INR = 0.01  # rupees: the program's float noise on a cap


class _Program(Protocol):
    """What the tax block needs of the optimiser's program (``optimise._Model``)."""

    def var(self, lower: float, upper: float, integer: bool = False, cost: float = 0.0) -> int: ...

    def row(self, terms: Sequence[tuple[int, float]], lower: float, upper: float) -> int: ...


class _Sell(Protocol):
    """What the tax block needs of an optimiser candidate (``optimise._Candidate``)."""

    intent: Intent
    sign: int
    bound: int
    units: int


@dataclass(frozen=True)
class TaxModel:
    """The tax inputs of one plan: the policy's mode and caps, and the FIFO segments per symbol
    at its planning price. ``short_before``/``long_before`` are the year's net gains so far
    (declared ones included), ``tax_before`` its estimated tax, rupees."""

    mode: TaxMode
    weight: float
    harvesting: bool
    max_short_term_gains: float | None
    max_tax: float | None
    segments: Mapping[str, tuple[Segment, ...]]
    short_rate: float
    long_rate: float
    multiplier: float
    exemption: float
    short_before: float
    long_before: float
    tax_before: float
    context: TaxContext

    @property
    def shapes_plan(self) -> bool:
        """True when tax changes the program (limit, or minimise with a weight)."""
        return self.mode is TaxMode.LIMIT or (self.mode is TaxMode.MINIMISE and self.weight > 0)


def tax_model(context: TaxContext, policy: Policy, book: Book) -> TaxModel:
    """The model of ``context`` for the symbols of ``book`` at their planning prices."""
    segments = {}
    for line in book.lines:
        found = sell_segments(context, line.symbol, line.price)
        if found is not None:
            segments[line.symbol] = tuple(found)
    short, long, before = context.year_before
    return TaxModel(
        mode=policy.tax,
        weight=policy.tax_weight,
        harvesting=policy.tax_loss_harvesting,
        max_short_term_gains=policy.max_short_term_gains_inr,
        max_tax=policy.max_tax_inr,
        segments=segments,
        short_rate=context.rate(Term.SHORT),
        long_rate=context.rate(Term.LONG),
        multiplier=context.multiplier,
        exemption=context.exemption,
        short_before=short,
        long_before=long,
        tax_before=before,
        context=context,
    )


def lot_holding_snapshot(
    snapshot: HoldingsSnapshot, context: TaxContext | None, policy: Policy
) -> HoldingsSnapshot:
    """``snapshot`` with ``min_holding_days`` applied to the FIFO lots a sell would consume: for
    a symbol with lots, the sellable quantity is at most the oldest lots held long enough, and
    its single acquisition date no longer decides (the lots do). Unchanged without lots."""
    if context is None or policy.min_holding_days is None or not context.lots:
        return snapshot
    frame = snapshot.positions.copy()
    for index, symbol in frame["symbol"].items():
        shares = sellable_by_holding(context, str(symbol), policy.min_holding_days)
        if shares is not None:
            frame.at[index, "sellable_quantity"] = min(
                int(frame.at[index, "sellable_quantity"]), shares
            )
            frame.at[index, "acquired_on"] = None
    return replace(snapshot, positions=frame)


def add_tax_block(
    m: _Program, candidates: Sequence[_Sell], k: float, model: TaxModel | None
) -> list[int]:
    """Add the tax of the run to the program: the caps of ``tax: limit`` as rows, and for
    ``tax: minimise`` a column equal to ``weight x`` the run's tax (floored at 0 without loss
    harvesting), returned for the objective (cost 1 per money unit, as a deviation)."""
    if model is None or not model.shapes_plan:
        return []
    short_terms: list[tuple[int, float]] = []
    long_terms: list[tuple[int, float]] = []
    gross_short: list[tuple[int, float]] = []
    reach = abs(model.short_before) + abs(model.long_before)
    short_low = short_high = model.short_before  # the range of the year's short-term net
    for c in candidates:
        segments = model.segments.get(c.intent.line.symbol)
        if c.sign > 0 or not segments:
            continue
        columns = _fifo_columns(m, c, segments)
        for column, segment in zip(columns, segments, strict=False):
            gain = segment.gain_per_share * k
            (short_terms if segment.term is Term.SHORT else long_terms).append((column, gain))
            if segment.term is Term.SHORT and gain > 0:
                gross_short.append((column, gain))
            if segment.term is Term.SHORT:
                short_low += min(0.0, segment.gain_per_share) * segment.quantity
                short_high += max(0.0, segment.gain_per_share) * segment.quantity
            reach += abs(segment.gain_per_share) * segment.quantity
    if model.max_short_term_gains is not None:
        m.row(gross_short, -math.inf, (model.max_short_term_gains + SLACK_INR) * k)
    if not short_terms and not long_terms:
        return []
    if model.mode is TaxMode.LIMIT and model.max_tax is None:
        return []
    big = (reach + model.exemption + 1.0) * k
    # S = short_before + run's short-term = plus + minus, plus >= 0 >= minus, one of them zero;
    # the sign binary only where S may take either sign
    plus = m.var(0.0, big if short_high > 0 else 0.0)
    minus = m.var(-big if short_low < 0 else 0.0, 0.0)
    m.row([(plus, 1.0), (minus, 1.0), *[(c, -v) for c, v in short_terms]],
          model.short_before * k, model.short_before * k)  # fmt: skip
    if short_low < 0 < short_high:
        positive = m.var(0.0, 1.0, integer=True)
        m.row([(plus, 1.0), (positive, -big)], -math.inf, 0.0)
        m.row([(minus, 1.0), (positive, -big)], -big, math.inf)
    # taxable long-term: >= L + min(0, S) - exemption, >= 0
    taxable = m.var(0.0, math.inf)
    m.row(
        [(taxable, 1.0), (minus, -1.0), *[(c, -v) for c, v in long_terms]],
        (model.long_before - model.exemption) * k,
        math.inf,
    )
    year = [
        (plus, model.multiplier * model.short_rate),
        (taxable, model.multiplier * model.long_rate),
    ]
    if model.mode is TaxMode.LIMIT:
        if model.max_tax is not None:
            m.row(year, -math.inf, (model.tax_before + model.max_tax + SLACK_INR) * k)
        return []
    # minimise: weight x the run's tax, floored at 0; with loss harvesting weight x the year's
    # tax after the run (the run's tax plus a constant: a loss that lowers the year's tax counts)
    penalty = m.var(0.0, math.inf, cost=1.0)  # money units, as a deviation column
    w = model.weight
    floor = 0.0 if model.harvesting else -w * model.tax_before * k
    m.row([(penalty, 1.0), *[(c, -w * v) for c, v in year]], floor, math.inf)
    return [penalty]


def _fifo_columns(m: _Program, c: _Sell, segments: Sequence[Segment]) -> list[int]:
    """One column per lot the sell may reach, summing to its shares, filled oldest first."""
    columns: list[int] = []
    reached = 0
    for segment in segments:
        if reached >= c.bound:
            break
        columns.append(m.var(0.0, float(segment.quantity)))
        reached += segment.quantity
    m.row([(c.units, 1.0), *[(col, -1.0) for col in columns]], 0.0, 0.0)
    for i in range(len(columns) - 1):
        full = m.var(0.0, 1.0, integer=True)  # 1: lot i is used up, so lot i + 1 may start
        m.row([(columns[i], 1.0), (full, -float(segments[i].quantity))], 0.0, math.inf)
        m.row([(columns[i + 1], 1.0), (full, -float(segments[i + 1].quantity))], -math.inf, 0.0)
    return columns


def run_tax(model: TaxModel | None, sells: Mapping[str, tuple[int, float]]) -> PlanTax | None:
    """The exact estimate of ``sells`` (symbol -> (shares, price)); None without a model."""
    if model is None:
        return None
    return estimate_plan(model.context, [(s, q, p) for s, (q, p) in sells.items()])


def _sells_of(intents: Sequence[Intent], units: Mapping[str, int]) -> dict[str, tuple[int, float]]:
    out = {}
    for intent in intents:
        shares = units.get(intent.line.symbol, 0)
        if shares and (intent.side or intent.direction) is Side.SELL:
            out[intent.line.symbol] = (shares, intent.line.price)
    return out


def within_caps(
    model: TaxModel | None, intents: Sequence[Intent], units: Mapping[str, int]
) -> bool:
    """True unless ``tax: limit`` and the plan's exact estimate exceeds a cap."""
    if model is None or model.mode is not TaxMode.LIMIT:
        return True
    estimate = run_tax(model, _sells_of(intents, units))
    return estimate is None or not cap_problems(model.max_short_term_gains, model.max_tax, estimate)


def tax_score(
    model: TaxModel | None, book: Book, intents: Sequence[Intent], units: Mapping[str, int]
) -> float:
    """The tax term of the objective (fraction of value) of an integer plan: 0 unless minimise."""
    if model is None or model.mode is not TaxMode.MINIMISE or model.weight <= 0:
        return 0.0
    estimate = run_tax(model, _sells_of(intents, units))
    tax = 0.0 if estimate is None else estimate.total
    if model.harvesting:  # as the program counts it: the year's tax after the run
        return model.weight * (model.tax_before + tax) / book.value
    return model.weight * max(0.0, tax) / book.value


def cap_problems(max_short: float | None, max_tax: float | None, estimate: PlanTax) -> list[str]:
    """The caps of ``tax: limit`` the estimate breaks, in words."""
    problems = []
    if max_short is not None and estimate.short_term_gains > max_short + SLACK_INR:
        problems.append(
            f"short-term gains ₹{estimate.short_term_gains:,.2f} exceed "
            f"max_short_term_gains_inr ₹{max_short:,.2f}"
        )
    if max_tax is not None and estimate.total > max_tax + SLACK_INR:
        problems.append(f"estimated tax ₹{estimate.total:,.2f} exceeds max_tax_inr ₹{max_tax:,.2f}")
    return problems


def tax_problems(plan: TradePlan, policy: Policy, context: TaxContext | None) -> list[str]:
    """verify_plan's tax checks, from the plan and the lots alone: the FIFO lots each sell
    consumes are held at least ``min_holding_days``; with ``tax: limit``, the caps hold."""
    if context is None or policy.tax is TaxMode.OFF:
        return []
    from rebalance.tax.lots import NotEnoughLots, consume_fifo

    problems = []
    sells = [o for o in plan.orders if o.side is Side.SELL]
    for order in sells:
        lots = context.lots.get(order.symbol)
        if policy.min_holding_days is None or not lots:
            continue
        try:
            taken, _ = consume_fifo(lots, order.quantity)
        except NotEnoughLots as exc:
            problems.append(f"SELL {order.quantity} {order.symbol}: {exc}")
            continue
        for used in taken:
            held = (context.sold_on - used.lot.acquired_on).days
            if held < policy.min_holding_days:
                problems.append(
                    f"SELL {order.quantity} {order.symbol}: takes {used.quantity} shares of the "
                    f"lot of {used.lot.acquired_on.isoformat()}, held {held} days < "
                    f"min_holding_days {policy.min_holding_days}"
                )
    if policy.tax is TaxMode.LIMIT:
        estimate = estimate_plan(context, [(o.symbol, o.quantity, o.price) for o in sells])
        problems += cap_problems(policy.max_short_term_gains_inr, policy.max_tax_inr, estimate)
    return problems


def tax_section(plan: TradePlan, model: TaxModel) -> dict[str, Any]:
    """The tax estimate of ``plan`` as the plan's JSON carries it (the preview and the page read
    it): per sell the lots it takes and the tax it adds alone; the run's total (all its sells
    together, given the year so far); charges + tax, the after-tax cost of the rebalance."""
    sells = [o for o in plan.orders if o.side is Side.SELL]
    estimate = estimate_plan(model.context, [(o.symbol, o.quantity, o.price) for o in sells])
    context = model.context
    section: dict[str, Any] = {
        "mode": str(model.mode),
        "fy": context.fy.label,
        "account": context.account,
        "orders": [
            {
                "symbol": o.symbol,
                "quantity": o.quantity,
                "short_term_gain": round(o.short_term_gain, 2),
                "long_term_gain": round(o.long_term_gain, 2),
                "estimated_tax": round(o.estimated_tax, 2),
                "lots": [piece_dict(p) for p in o.pieces],
            }
            for o in estimate.orders
        ],
        "estimated_tax": round(estimate.total, 2),
        "short_term_gains": round(estimate.short_term_gains, 2),
        "exemption_left_after": round(estimate.exemption_left_after, 2),
        "charges": round(plan.summary.estimated_charges, 2),
        "after_tax_cost": round(plan.summary.estimated_charges + estimate.total, 2),
        "no_tax_data": dict(sorted({**context.no_tax_data, **estimate.no_tax_data}.items())),
    }
    if model.mode is TaxMode.LIMIT:
        section["caps"] = {
            "max_short_term_gains_inr": model.max_short_term_gains,
            "max_tax_inr": model.max_tax,
        }
    if model.mode is TaxMode.MINIMISE:
        section["tax_weight"] = model.weight
    return section


def capped_plan(
    model: TaxModel | None,
    intents: Sequence[Intent],
    units: Mapping[str, int],
    charge: Callable[[Intent, int], float],
) -> dict[str, int]:
    """``units`` (a plan that keeps every other rule) made to keep the caps of ``tax: limit``
    by dropping whole orders: the sells that add the most tax first, until the caps hold; then
    the largest buys until what the dropped sells would have paid for (less their charges) is
    no longer bought. Dropping whole orders keeps the budget, the max trades, the smallest
    orders and the max weight; the buys dropped keep the cash. Used when the optimiser found no
    plan and the fast plan breaks a cap. ``charge(intent, shares)`` is an order's charges."""
    plan = dict(units)
    if within_caps(model, intents, plan):
        return plan
    by_symbol = {i.line.symbol: i for i in intents}
    sells = _sells_of(intents, plan)
    owed = 0.0  # the dropped sells' proceeds less their charges, rupees
    while sells and not within_caps(model, intents, plan):
        estimate = run_tax(model, sells)
        taxes = {o.symbol: o.estimated_tax for o in estimate.orders} if estimate else {}
        worst = max(sells, key=lambda s: (taxes.get(s, 0.0), s))
        shares, price = sells.pop(worst)
        owed += shares * price - charge(by_symbol[worst], shares)
        del plan[worst]
    buys = sorted(
        (s for s in plan if s not in sells), key=lambda s: (-plan[s] * by_symbol[s].line.price, s)
    )
    for symbol in buys:
        if owed <= 0:
            break
        owed -= plan[symbol] * by_symbol[symbol].line.price + charge(
            by_symbol[symbol], plan[symbol]
        )
        del plan[symbol]
    return plan
