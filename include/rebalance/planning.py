"""The planner: holdings snapshot + targets + policy -> TradePlan. Pure: no I/O, no clock.

First cut (walking skeleton): target weights, drift bands, budget scaling, floor to whole shares.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from rebalance.brokers.base import Side
from rebalance.plan import PlannedOrder, PlanSummary, PositionLine, TradePlan
from rebalance.policy import Policy
from rebalance.snapshot import HoldingsSnapshot


def plan_rebalance(
    snapshot: HoldingsSnapshot,
    targets: Mapping[str, float],
    policy: Policy,
    *,
    cash_target: float | None = None,
    broker: str = "paper",
) -> TradePlan:
    """Plan the trades that bring ``snapshot`` toward ``targets`` (fractions summing to 1 with
    ``cash_target``). ``broker`` selects the brokerage line of the charges table."""
    del broker
    frame = snapshot.positions.set_index("symbol")
    values = {s: float(frame.at[s, "quantity"] * frame.at[s, "last_price"]) for s in frame.index}
    cash = snapshot.cash if cash_target is not None and snapshot.cash is not None else 0.0
    value = sum(values[s] for s in targets if s in values) + cash
    deltas: dict[str, float] = {}
    drifts: dict[str, float] = {}
    for symbol, target in targets.items():
        live = values.get(symbol, 0.0) / value if value else 0.0
        drifts[symbol] = live - target
        inside = abs(live - target) < policy.drift_band_abs_pct / 100 and abs(
            live - target
        ) < policy.drift_band_rel_pct / 100 * target
        if not inside:
            deltas[symbol] = target * value - values.get(symbol, 0.0)
    budget = policy.rebalance_budget_inr or policy.rebalance_budget_pct / 100 * value
    total_buy = sum(d for d in deltas.values() if d > 0)
    total_sell = -sum(d for d in deltas.values() if d < 0)
    biggest = max(total_buy, total_sell)
    scale = min(1.0, budget / biggest) if biggest > 0 else 1.0
    orders = []
    after_values = dict(values)
    for symbol, delta in deltas.items():
        price = float(frame.at[symbol, "last_price"])
        qty = math.floor(abs(delta) * scale / price)
        if delta < 0:
            qty = min(qty, int(frame.at[symbol, "sellable_quantity"]))
        if qty <= 0 or qty * price < policy.min_trade_value_inr:
            continue
        side = Side.BUY if delta > 0 else Side.SELL
        reasons = ("drift",) + (("budget_scaled",) if scale < 1 else ())
        orders.append(
            PlannedOrder(symbol, str(frame.at[symbol, "exchange"]), side, qty, price, qty * price, reasons)
        )
        after_values[symbol] = values.get(symbol, 0.0) + (qty * price if delta > 0 else -qty * price)
    orders = orders[: policy.max_trades]
    positions = tuple(
        PositionLine(
            symbol=s,
            weight_before=values.get(s, 0.0) / value if value else 0.0,
            target_weight=t,
            weight_after=after_values.get(s, 0.0) / value if value else 0.0,
        )
        for s, t in targets.items()
    )
    traded = sum(o.notional for o in orders)
    summary = PlanSummary(
        portfolio_value=value,
        turnover_pct=100 * traded / value if value else 0.0,
        budget_used_pct=100 * traded / budget if budget else 0.0,
        max_drift_before=max((abs(d) for d in drifts.values()), default=0.0),
        max_drift_after=max((abs(p.weight_after - p.target_weight) for p in positions), default=0.0),
        trades=len(orders),
        estimated_charges=0.0,
    )
    return TradePlan(tuple(orders), positions, summary)
