"""The planner's output: a TradePlan of orders, per-symbol positions and summary metrics.

The JSON form (``to_dict``) is the contract of ``rebalance plan --format json`` (see design.md);
``plan_hash`` identifies exactly what a person approved.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from rebalance.domain.market import Side


@dataclass(frozen=True)
class PlannedOrder:
    """One proposed delivery order. ``price`` is the planning price (LTP), rupees."""

    symbol: str
    exchange: str
    side: Side
    quantity: int
    price: float
    notional: float
    reasons: tuple[str, ...]
    charges: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON form: side as text, reasons as a list."""
        data = asdict(self)
        data["side"] = str(self.side)
        data["reasons"] = list(self.reasons)
        return data


@dataclass(frozen=True)
class PositionLine:
    """A symbol's weights before and after the plan (fractions), and why it was left alone."""

    symbol: str
    weight_before: float
    target_weight: float
    weight_after: float
    quantity_before: int = 0
    quantity_after: int = 0
    skipped: tuple[str, ...] = ()  # e.g. ("inside_band",) when no order was made

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["skipped"] = list(self.skipped)
        return data


@dataclass(frozen=True)
class PlanSummary:
    """Section 9 metrics of a plan."""

    portfolio_value: float  # rupees, holdings (+ cash when modelled)
    turnover_pct: float  # (buys + sells) / value, %
    budget_used_pct: float  # measured as the policy's budget_mode, %
    max_drift_before: float  # fraction
    max_drift_after: float  # fraction
    trades: int
    estimated_charges: float  # rupees
    cash_before: float | None = None  # rupees, None when the snapshot had no cash figure
    cash_after: float | None = None  # rupees, after the orders and their charges
    budget_inr: float = 0.0  # rupees
    buy_value: float = 0.0  # rupees
    sell_value: float = 0.0  # rupees
    scale: float = 1.0  # the section 4.3 budget factor of the continuous plan
    total_drift_before: float = 0.0  # sum of |weight - target| over the symbols, fraction
    total_drift_after: float = 0.0  # fraction
    cash_weight_before: float = 0.0  # fraction of value
    cash_weight_after: float = 0.0  # fraction of value
    cash_target_weight: float = 0.0  # fraction of value (0 = fully invested)
    charges_breakdown: dict[str, float] = field(default_factory=dict)  # rupees by kind
    # The planner's objective (docs/planner.md): sum over the symbols and the cash position of
    # |weight - target| plus what symbols hold above the max weight, fractions of value (after
    # charges for "after"); and which method produced the plan: "milp_optimal" (proven best),
    # "milp_time_cap" (best found within the optimiser's time cap) or "heuristic" (the fast plan).
    objective_before: float = 0.0
    objective_after: float = 0.0
    solver: str = "heuristic"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TradePlan:
    """Orders (sells first), every symbol's position line, the summary and plan-level notes."""

    orders: tuple[PlannedOrder, ...]
    positions: tuple[PositionLine, ...]
    summary: PlanSummary
    notes: tuple[str, ...] = field(default=())  # plan-level explanations (e.g. budget scale)
    # the tax estimate of the plan's sells when the policy's ``tax`` is not off (JSON form of
    # ``planning.taxes.tax_section``; docs/tax.md); not part of the plan hash
    tax: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {
            "orders": [o.to_dict() for o in self.orders],
            "positions": [p.to_dict() for p in self.positions],
            "summary": self.summary.to_dict(),
            "notes": list(self.notes),
        }
        if self.tax is not None:
            data["tax"] = self.tax
        return data

    @property
    def plan_hash(self) -> str:
        """SHA-256 of the orders (symbol, side, quantity, price): what an approval approves."""
        payload = [
            [o.symbol, o.exchange, str(o.side), o.quantity, round(o.price, 4)] for o in self.orders
        ]
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TradePlan:
        orders = tuple(
            PlannedOrder(
                symbol=o["symbol"],
                exchange=o["exchange"],
                side=Side(o["side"]),
                quantity=int(o["quantity"]),
                price=float(o["price"]),
                notional=float(o["notional"]),
                reasons=tuple(o.get("reasons", ())),
                charges=float(o.get("charges", 0.0)),
            )
            for o in data["orders"]
        )
        positions = tuple(
            PositionLine(**{**p, "skipped": tuple(p.get("skipped", ()))}) for p in data["positions"]
        )
        notes = tuple(data.get("notes", ()))
        return cls(orders, positions, PlanSummary(**data["summary"]), notes, data.get("tax"))
