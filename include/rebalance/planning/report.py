"""Turn the integer plan into a TradePlan: orders with reasons and charges, positions with their
weights before and after (or why they were left alone), and the summary of notes section 9."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from rebalance.costs import BrokerRates, Charges, order_charges
from rebalance.domain.market import Side
from rebalance.plan import PlannedOrder, PlanSummary, PositionLine, TradePlan
from rebalance.planning.book import Book, Line
from rebalance.planning.intents import Bias, Intent
from rebalance.planning.optimise import Outcome, objective
from rebalance.planning.sizing import Sizing
from rebalance.planning.whole_shares import continuous_units
from rebalance.policy import BudgetMode, Policy


@dataclass(frozen=True)
class _Outcome:
    """What the plan does to one symbol: signed shares and the order's charges (rupees)."""

    intent: Intent
    units: int
    charges: Charges | None

    @property
    def signed(self) -> int:
        return -self.units if self.intent.side is Side.SELL else self.units


def build_plan(
    book: Book,
    bias: Bias,
    sizing: Sizing,
    chosen: Outcome,
    policy: Policy,
    rates: BrokerRates,
) -> TradePlan:
    """Assemble the TradePlan of the chosen integer plan (symbol -> shares)."""
    intents, units = chosen.intents, chosen.units
    outcomes = [_outcome(i, units.get(i.line.symbol, 0), rates) for i in intents]
    charges = sum(o.charges.total for o in outcomes if o.charges)
    value_after = book.value - charges
    orders = _orders(outcomes, sizing, policy.max_position_weight_pct / 100.0)
    trades = sum(1 for o in outcomes if o.units > 0)
    why = _LeftAlone(sizing, trades >= policy.max_trades)
    positions = [_position(o, book, value_after, why) for o in outcomes]
    positions += [_ignored(line) for line in book.ignored]
    targets = {line.symbol: line.target for line in book.lines}
    summary = replace(
        _summary(book, outcomes, sizing, policy, value_after, charges),
        objective_before=objective(book, intents, {}, targets, policy, rates),
        objective_after=objective(book, intents, units, targets, policy, rates),
        solver=chosen.solver,
    )
    notes = (*_notes(book, sizing, policy, bias, summary), _solver_note(chosen))
    return TradePlan(tuple(orders), tuple(positions), summary, notes)


def _solver_note(chosen: Outcome) -> str:
    return (
        f"{chosen.note} ({chosen.solver}); objective {chosen.objective:.6f}, "
        f"fast plan {chosen.fast_objective:.6f}"
    )


def _outcome(intent: Intent, units: int, rates: BrokerRates) -> _Outcome:
    if units <= 0 or intent.side is None:
        return _Outcome(intent, 0, None)
    notional = units * intent.line.price
    return _Outcome(
        intent,
        units,
        order_charges(
            notional, intent.side, intent.line.exchange, rates, symbol=intent.line.symbol
        ),
    )


def _orders(outcomes: Sequence[_Outcome], sizing: Sizing, max_weight: float) -> list[PlannedOrder]:
    orders = [
        PlannedOrder(
            symbol=o.intent.line.symbol,
            exchange=o.intent.line.exchange,
            side=o.intent.side,
            quantity=o.units,
            price=o.intent.line.price,
            notional=o.units * o.intent.line.price,
            reasons=_order_reasons(o, sizing, max_weight),
            charges=round(o.charges.total, 2) if o.charges else 0.0,
        )
        for o in outcomes
        if o.units > 0 and o.intent.side is not None
    ]
    # Sells first: on a real account their proceeds fund the buys.
    return sorted(orders, key=lambda o: (o.side is Side.BUY, -o.notional, o.symbol))


def _order_reasons(outcome: _Outcome, sizing: Sizing, max_weight: float) -> tuple[str, ...]:
    intent = outcome.intent
    line = intent.line
    reasons = list(intent.reasons)
    if sizing.scale < 1:
        reasons.append("budget_scaled")
    if intent.side is Side.BUY and sizing.buy_scale < sizing.scale - 1e-12:
        reasons.append("cash_limited")
    nearest_goal = math.floor(intent.goal / line.price + 0.5)
    if intent.side is Side.SELL and outcome.units == line.sellable < nearest_goal:
        reasons.append("sellable_limited")
    capped = outcome.units == intent.cap < nearest_goal or line.target > max_weight
    if intent.side is Side.BUY and capped:
        reasons.append("max_weight_limited")
    if outcome.units != math.floor(continuous_units(intent, sizing) + 1e-9):
        reasons.append("reconciled")
    return tuple(reasons)


def _position(outcome: _Outcome, book: Book, value_after: float, why: _LeftAlone) -> PositionLine:
    line = outcome.intent.line
    after = line.quantity + outcome.signed
    return PositionLine(
        symbol=line.symbol,
        weight_before=line.value / book.value,
        target_weight=line.target,
        weight_after=after * line.price / value_after,
        quantity_before=line.quantity,
        quantity_after=after,
        skipped=() if outcome.units else why.reasons(outcome.intent),
    )


class _LeftAlone:
    """Why a symbol that wanted to trade has no order (the reserve set is built once)."""

    def __init__(self, sizing: Sizing, slots_full: bool) -> None:
        self._reserve = {i.line.symbol for i in sizing.reserve}
        self._cash_limited = sizing.buy_scale < sizing.scale
        self._slots_full = slots_full

    def reasons(self, intent: Intent) -> tuple[str, ...]:
        if intent.skipped:
            return intent.skipped
        if self._slots_full or intent.line.symbol in self._reserve:
            return ("max_trades",)
        if intent.side is Side.BUY and self._cash_limited:
            return ("no_cash",)
        return ("budget_too_small",)


def _ignored(line: Line) -> PositionLine:
    """A holding outside the targets that the policy leaves alone: not part of the value."""
    return PositionLine(
        symbol=line.symbol,
        weight_before=0.0,
        target_weight=0.0,
        weight_after=0.0,
        quantity_before=line.quantity,
        quantity_after=line.quantity,
        skipped=("unlisted",),
    )


def _summary(
    book: Book,
    outcomes: Sequence[_Outcome],
    sizing: Sizing,
    policy: Policy,
    value_after: float,
    charges: float,
) -> PlanSummary:
    buys = sum(o.units * o.intent.line.price for o in outcomes if o.intent.side is Side.BUY)
    sells = sum(o.units * o.intent.line.price for o in outcomes if o.intent.side is Side.SELL)
    used = max(buys, sells) if policy.budget_mode is BudgetMode.MAX_SIDE else buys + sells
    drifts_before = [o.intent.line.value / book.value - o.intent.line.target for o in outcomes]
    drifts_after = [
        (o.intent.line.quantity + o.signed) * o.intent.line.price / value_after
        - o.intent.line.target
        for o in outcomes
    ]
    cash_after = book.cash - buys + sells - charges
    return PlanSummary(
        portfolio_value=book.value,
        turnover_pct=100.0 * (buys + sells) / book.value,
        budget_used_pct=100.0 * used / sizing.budget if sizing.budget > 0 else 0.0,
        max_drift_before=max((abs(d) for d in drifts_before), default=0.0),
        max_drift_after=max((abs(d) for d in drifts_after), default=0.0),
        trades=sum(1 for o in outcomes if o.units > 0),
        estimated_charges=round(charges, 2),
        cash_before=book.cash if book.cash_known else None,
        cash_after=cash_after if book.cash_known else None,
        budget_inr=sizing.budget,
        buy_value=buys,
        sell_value=sells,
        scale=sizing.scale,
        total_drift_before=sum(abs(d) for d in drifts_before),
        total_drift_after=sum(abs(d) for d in drifts_after),
        cash_weight_before=book.cash / book.value,
        cash_weight_after=cash_after / value_after,
        cash_target_weight=book.cash_target,
        charges_breakdown=_breakdown(outcomes),
    )


def _breakdown(outcomes: Sequence[_Outcome]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for outcome in outcomes:
        if outcome.charges:
            for kind, amount in outcome.charges.as_dict().items():
                totals[kind] = totals.get(kind, 0.0) + amount
    return {kind: round(amount, 2) for kind, amount in totals.items()}


def _notes(
    book: Book, sizing: Sizing, policy: Policy, bias: Bias, summary: PlanSummary
) -> tuple[str, ...]:
    """Plan-level explanations, one line each."""
    notes = [
        f"portfolio value ₹{book.value:,.2f} (holdings + cash ₹{book.cash:,.2f}); "
        f"cash target {book.cash_target:.2%}"
        + ("" if book.cash_known else "; cash unknown: buys are paid by sells only"),
        f"budget ₹{sizing.budget:,.2f} measured as {policy.budget_mode}; "
        f"scale {sizing.scale:.4f}, buy scale {sizing.buy_scale:.4f}",
        f"cash spendable before sell proceeds ₹{sizing.funding:,.2f}; sell proceeds "
        + ("fund buys" if policy.use_sell_proceeds else "do not fund buys"),
    ]
    max_weight = policy.max_position_weight_pct / 100.0
    capped = [ln.symbol for ln in book.lines if ln.target > max_weight]
    if capped:
        notes.append(f"targets above the max weight {max_weight:.2%} capped: {', '.join(capped)}")
    if book.ignored:
        names = ", ".join(ln.symbol for ln in book.ignored)
        notes.append(f"holdings outside the targets left alone (unlisted_holdings=ignore): {names}")
    if policy.today_winners_bias and bias.today_winners_pct is not None:
        notes.append(f"today's winners {bias.today_winners_pct:.1f}% of the portfolio's symbols")
    if summary.trades == 0:
        notes.append("no trades: every symbol is inside its band or was left alone (see positions)")
    return tuple(notes)
