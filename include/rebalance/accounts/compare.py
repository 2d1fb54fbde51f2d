"""The separate and the combined mode on the same holdings: what each trades and costs.

* separate: each account is its own portfolio, planned on its own to the same targets with the
  existing planner (``plan_rebalance``) and its broker's charges table (the notes' 10.A, v1);
* combined: one plan for the whole (``combine_accounts``), its orders assigned to the accounts by
  ``allocate_orders`` (the notes' 10.B).

Both are measured on the whole: turnover (buys + sells, rupees and % of the whole's value),
charges (per order part, its account's broker), orders, the largest drift from target of the
whole after the trades, and the symbols bought in one account while sold in another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from rebalance.accounts.allocate import AccountOrder, Allocation, Shortfall, allocate_orders
from rebalance.accounts.combine import CombinedSnapshot
from rebalance.costs import broker_rates, charge_total, order_charges
from rebalance.domain.market import Side
from rebalance.plan import TradePlan
from rebalance.planning import plan_rebalance
from rebalance.policy import Policy, UnlistedHoldings

SEPARATE = "separate"
COMBINED = "combined"


@dataclass(frozen=True)
class ModeResult:
    """One mode's orders (per account) and what they do to the whole. Rupees unless named."""

    mode: str
    orders: tuple[AccountOrder, ...]
    value: float  # the whole: the targets' symbols at last price + every account's cash
    buy_value: float
    sell_value: float
    charges: float
    max_drift_after: float  # fraction, the whole's largest |weight - target| after the trades
    both_ways: tuple[str, ...]  # symbols bought in one account and sold in another
    shortfalls: tuple[Shortfall, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def turnover(self) -> float:
        return self.buy_value + self.sell_value

    @property
    def turnover_pct(self) -> float:
        return 100.0 * self.turnover / self.value if self.value else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "orders": [o.to_dict() for o in self.orders],
            "value": self.value,
            "buy_value": self.buy_value,
            "sell_value": self.sell_value,
            "turnover": self.turnover,
            "turnover_pct": self.turnover_pct,
            "charges": round(self.charges, 2),
            "max_drift_after": self.max_drift_after,
            "both_ways": list(self.both_ways),
            "shortfalls": [s.to_dict() for s in self.shortfalls],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Comparison:
    """Both modes, plus the combined plan and its allocation (what the combined lane runs)."""

    separate: ModeResult
    combined: ModeResult
    plan: TradePlan
    allocation: Allocation


def compare_modes(
    combined: CombinedSnapshot,
    targets: Mapping[str, float],
    policy: Policy,
    *,
    cash_target: float | None = None,
    today: date | None = None,
    planning_broker: str | None = None,
) -> Comparison:
    """Plan ``combined`` both ways. ``planning_broker``: the charges table the combined plan is
    sized with (default: the dearest of the accounts' brokers, so the plan never counts on
    charges lower than some account's); the allocation then charges each part at its account's.
    """
    separate_orders: list[AccountOrder] = []
    notes: list[str] = []
    for account in combined.accounts:
        snapshot = combined.per_account[account.account]
        if not _has_value(snapshot.positions, snapshot.cash, targets, policy):
            notes.append(f"{account.account}: nothing held and no cash: not planned")
            continue
        plan = plan_rebalance(
            snapshot, targets, policy, cash_target=cash_target, broker=account.broker, today=today
        )
        rates = broker_rates(account.broker)
        separate_orders.extend(
            AccountOrder(
                account=account.account,
                broker=account.broker,
                symbol=account.own_symbol(o.symbol),
                combined_symbol=o.symbol,
                exchange=o.exchange,
                side=o.side,
                quantity=o.quantity,
                price=o.price,
                notional=o.notional,
                charges=order_charges(o.notional, o.side, o.exchange, rates).total,
            )
            for o in plan.orders
        )
    broker = planning_broker or dearest_broker(combined)
    plan = plan_rebalance(
        combined.snapshot, targets, policy, cash_target=cash_target, broker=broker, today=today
    )
    allocation = allocate_orders(
        plan.orders, combined.accounts, use_sell_proceeds=policy.use_sell_proceeds
    )
    return Comparison(
        separate=_measure(SEPARATE, separate_orders, combined, targets, policy, (), notes),
        combined=_measure(
            COMBINED,
            list(allocation.orders),
            combined,
            targets,
            policy,
            allocation.shortfalls,
            [f"planned with the {broker} charges table", *allocation.notes],
        ),
        plan=plan,
        allocation=allocation,
    )


def _has_value(
    positions: Any, cash: float | None, targets: Mapping[str, float], policy: Policy
) -> bool:
    listed = positions["symbol"].isin(list(targets))
    if policy.unlisted_holdings is UnlistedHoldings.SELL:
        listed = listed | (positions["quantity"] > 0)
    held = (positions["quantity"][listed] * positions["last_price"][listed]).sum()
    return bool(held > 0 or (cash or 0) > 0)


def dearest_broker(combined: CombinedSnapshot) -> str:
    """The accounts' broker whose charges on a ₹1 lakh buy and sell are highest: the charges
    table to size the combined plan with, so it never counts on charges lower than some
    account's (the allocation then charges each part at its own account's)."""
    return max(
        sorted({a.broker for a in combined.accounts}),
        key=lambda b: sum(
            charge_total(100_000.0, side, "NSE", broker_rates(b)) for side in (Side.BUY, Side.SELL)
        ),
    )


def _measure(
    mode: str,
    orders: Sequence[AccountOrder],
    combined: CombinedSnapshot,
    targets: Mapping[str, float],
    policy: Policy,
    shortfalls: Sequence[Shortfall],
    notes: Sequence[str],
) -> ModeResult:
    rows = combined.snapshot.positions
    quantity = dict(zip(rows["symbol"], rows["quantity"].astype(int), strict=True))
    price = dict(zip(rows["symbol"], rows["last_price"].astype(float), strict=True))
    symbols = set(targets)
    if policy.unlisted_holdings is UnlistedHoldings.SELL:
        symbols |= {s for s, q in quantity.items() if q > 0}
    cash = float(combined.snapshot.cash or 0.0)
    value = sum(quantity.get(s, 0) * price[s] for s in symbols) + cash
    buys = sum(o.notional for o in orders if o.side is Side.BUY)
    sells = sum(o.notional for o in orders if o.side is Side.SELL)
    charges = sum(o.charges for o in orders)
    after = dict(quantity)
    for o in orders:
        after[o.combined_symbol] += o.quantity if o.side is Side.BUY else -o.quantity
    value_after = sum(after.get(s, 0) * price[s] for s in symbols) + cash - buys + sells - charges
    drift = max(
        (abs(after.get(s, 0) * price[s] / value_after - targets.get(s, 0.0)) for s in symbols),
        default=0.0,
    )
    bought = {(o.combined_symbol, o.account) for o in orders if o.side is Side.BUY}
    sold = {(o.combined_symbol, o.account) for o in orders if o.side is Side.SELL}
    both = sorted({s for s, a in bought for t, b in sold if s == t and a != b})
    return ModeResult(
        mode=mode,
        orders=tuple(orders),
        value=value,
        buy_value=buys,
        sell_value=sells,
        charges=charges,
        max_drift_after=drift,
        both_ways=tuple(both),
        shortfalls=tuple(shortfalls),
        notes=tuple(notes),
    )
