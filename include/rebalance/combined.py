"""The combined accounts mode as a run does it (issue 16; docs/accounts.md), without Airflow.

Each account's lane fetches and validates its snapshot as in the separate mode. Then, once for
the DAG run, ``plan_combined`` joins the validated snapshots (``accounts.combine``), plans the
whole once (``planning.plan_rebalance``) and assigns the plan's orders to the accounts
(``accounts.allocate``: each account's cash and sellable quantity are hard limits, charges are
minimised). When the whole's plan cannot be funded inside the accounts (the allocation reports a
shortfall), it is re-planned with each account's own limits: each account planned on its own
snapshot (the separate mode's plan), so nothing is left half done. Each account's part becomes
that account's run plan (``part_plan``), placed by its own lane with the usual crash-safe
execution; ``combined_outcome`` reads the parts back for the combined record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from rebalance.accounts.allocate import AccountOrder, Allocation, allocate_orders
from rebalance.accounts.combine import AccountHoldings, CombinedSnapshot, combine_accounts
from rebalance.accounts.compare import dearest_broker
from rebalance.accounts.modes import combined_refusals
from rebalance.domain.market import Holding, Quote, Side
from rebalance.drift.measure import measure_drift
from rebalance.drift.trigger import Gate, RunKind, gate_run
from rebalance.errors import ConfigError
from rebalance.history.records import LegRecord, RunRecord
from rebalance.history.status import OrderState
from rebalance.plan import PlannedOrder, PlanSummary, PositionLine, TradePlan
from rebalance.planning import plan_rebalance
from rebalance.planning.book import build_book
from rebalance.planning.taxes import tax_model, tax_section
from rebalance.policy import Policy
from rebalance.portfolio import Portfolio
from rebalance.snapshot import HoldingsSnapshot
from rebalance.tax.planning import TaxContext
from rebalance.tax_preview import summary_line as tax_summary_line

SOLVER_PER_ACCOUNT = "per_account"  # the re-plan: each account planned within its own limits


@dataclass(frozen=True)
class CombinedPlan:
    """The whole's plan, its split per account (``allocation``: what the lanes place) and
    whether it had to be re-planned per account (``replanned``). ``taxes``: each account's tax
    context (``tax: report``), for the tax estimate of its part."""

    combined: CombinedSnapshot
    plan: TradePlan
    allocation: Allocation
    replanned: bool
    notes: tuple[str, ...]
    targets: Mapping[str, float]
    policy: Policy | None = None
    taxes: Mapping[str, TaxContext] = field(default_factory=dict)
    cash_target: float | None = None

    def part(self, account: str) -> TradePlan:
        """``account``'s part as a plan of its own (its run's plan), with the tax estimate of
        its sells from its own FIFO lots when the tax mode is on."""
        snapshot = self.combined.per_account[account]
        part = part_plan(
            account,
            self.allocation.for_account(account),
            snapshot,
            self.targets,
            self.plan,
            self.allocation_hash,
        )
        context = self.taxes.get(account)
        if context is None or self.policy is None:
            return part
        tax = part_tax(part, snapshot, self.targets, self.policy, context, self.cash_target)
        return replace(part, tax=tax)

    @property
    def allocation_hash(self) -> str:
        return self.allocation.allocation_hash

    def snapshot_record(self) -> dict[str, Any]:
        """The whole and each account's limits, JSON-able (the combined record's snapshot)."""
        return {
            **self.combined.snapshot.to_records(),
            "accounts": [
                {
                    "account": a.account,
                    "broker": a.broker,
                    "cash": a.cash,
                    "cash_known": a.cash_known,
                    "sellable": dict(a.sellable),
                }
                for a in self.combined.accounts
            ],
            "notes": list(self.combined.notes),
        }


def account_holdings(run: RunRecord) -> tuple[AccountHoldings, dict[str, Quote]]:
    """An account's validated snapshot (its run record) as ``combine_accounts`` reads it: the
    holdings (the stored sellable quantity is already today's: authorisation counted at fetch)
    and every row's last price as a quote, so a target held nowhere still has a price."""
    snapshot = HoldingsSnapshot.from_records(run.snapshot or {})
    holdings: list[Holding] = []
    quotes: dict[str, Quote] = {}
    for row in snapshot.positions.to_dict(orient="records"):
        price = float(row["last_price"])
        if math.isfinite(price) and price > 0:
            close = row.get("previous_close")
            quotes[row["symbol"]] = Quote(
                row["symbol"],
                row["exchange"],
                price,
                float(close) if close is not None and math.isfinite(close) else None,
            )
        if int(row["quantity"]) > 0:
            holdings.append(
                Holding(
                    symbol=row["symbol"],
                    exchange=row["exchange"],
                    quantity=int(row["quantity"]),
                    sellable_quantity=int(row["sellable_quantity"]),
                    average_price=float(row["average_price"] or 0.0),
                    last_price=price,
                    isin=row.get("isin") or None,
                    acquired_on=row.get("acquired_on"),
                )
            )
    return AccountHoldings(run.account, run.broker, tuple(holdings), snapshot.cash), quotes


def gate_whole(
    accounts: Sequence[AccountHoldings],
    quotes: Mapping[str, Quote],
    portfolio: Portfolio,
    policy: Policy,
    kind: RunKind,
    *,
    taken_at: datetime,
) -> Gate:
    """The ``schedule_and_drift`` gate of a combined run, on the whole's drift: the accounts
    are one portfolio, so an account off its targets alone (the other holding what it lacks)
    is no reason to trade, and a whole off its targets is one even when each account alone is
    inside its bands (docs/accounts.md, docs/drift.md)."""
    targets = portfolio.target_fractions()
    combined = combine_accounts(accounts, taken_at=taken_at, quotes=quotes, target_symbols=targets)
    measurement = measure_drift(
        combined.snapshot, targets, policy, cash_target=portfolio.cash_target_fraction
    )
    return gate_run(portfolio.trigger, kind, measurement)


def plan_combined(
    accounts: Sequence[AccountHoldings],
    quotes: Mapping[str, Quote],
    targets: Mapping[str, float],
    policy: Policy,
    *,
    taken_at: datetime,
    cash_target: float | None = None,
    today: date | None = None,
    taxes: Mapping[str, TaxContext] | None = None,
) -> CombinedPlan:
    """One plan for the whole of ``accounts`` and its split per account.

    ``taxes``: each account's tax context (``tax_history.context_for``) with ``tax: report``:
    each part then carries the tax estimate of its own sells (FIFO per account). ``tax: limit``
    and ``minimise`` are refused (ConfigError): the split does not weigh tax lots
    (``accounts.modes``), and a cap or objective silently ignored would be worse.
    """
    if refused := combined_refusals(policy, []):
        raise ConfigError("policy", refused)
    contexts = dict(taxes or {})
    combined = combine_accounts(accounts, taken_at=taken_at, quotes=quotes, target_symbols=targets)
    broker = dearest_broker(combined)
    plan = plan_rebalance(
        combined.snapshot, targets, policy, cash_target=cash_target, broker=broker, today=today
    )
    allocation = allocate_orders(
        plan.orders, combined.accounts, use_sell_proceeds=policy.use_sell_proceeds
    )
    notes = [f"the whole planned with the {broker} charges table", *combined.notes]
    if allocation.complete:
        return CombinedPlan(
            combined,
            plan,
            allocation,
            False,
            tuple(notes),
            dict(targets),
            policy,
            contexts,
            cash_target,
        )
    undone = "; ".join(f"{s.side} {s.symbol}: {s.reason}" for s in allocation.shortfalls)
    notes.append(
        f"the whole's plan could not be funded inside the accounts ({undone}): re-planned with "
        "each account's own limits"
    )
    split = replan_per_account(combined, targets, policy, cash_target=cash_target, today=today)
    return CombinedPlan(
        combined, plan, split, True, tuple(notes), dict(targets), policy, contexts, cash_target
    )


def replan_per_account(
    combined: CombinedSnapshot,
    targets: Mapping[str, float],
    policy: Policy,
    *,
    cash_target: float | None = None,
    today: date | None = None,
) -> Allocation:
    """Each account planned on its own snapshot with its own broker's charges, each plan
    checked against that account's limits by ``allocate_orders`` (one account at a time)."""
    orders: list[AccountOrder] = []
    parts: list[Allocation] = []
    for account in combined.accounts:
        snapshot = combined.per_account[account.account]
        held = float((snapshot.positions["quantity"] * snapshot.positions["last_price"]).sum())
        if held <= 0 and not snapshot.cash:
            continue
        own = plan_rebalance(
            snapshot, targets, policy, cash_target=cash_target, broker=account.broker, today=today
        )
        part = allocate_orders(own.orders, [account], use_sell_proceeds=policy.use_sell_proceeds)
        parts.append(part)
        orders.extend(part.orders)
    return Allocation(
        orders=tuple(orders),
        shortfalls=tuple(s for p in parts for s in p.shortfalls),
        splits=tuple(s for p in parts for s in p.splits),
        solver=SOLVER_PER_ACCOUNT,
        notes=tuple(n for p in parts for n in p.notes),
    )


def part_plan(
    account: str,
    parts: Sequence[AccountOrder],
    snapshot: HoldingsSnapshot,
    targets: Mapping[str, float],
    whole: TradePlan,
    allocation_hash: str,
) -> TradePlan:
    """One account's part of a combined plan as that account's run plan: its orders (sells
    first, the account's own symbols), its positions before and after (weights of the account's
    own value) and a summary of the part. The whole's drift is the combined plan's."""
    reasons = {o.symbol: o.reasons for o in whole.orders}
    orders = tuple(
        PlannedOrder(
            symbol=o.symbol,
            exchange=o.exchange,
            side=o.side,
            quantity=o.quantity,
            price=o.price,
            notional=o.notional,
            reasons=(f"combined plan {allocation_hash[:12]}", *reasons.get(o.combined_symbol, ())),
            charges=o.charges,
        )
        for o in sorted(parts, key=lambda o: (o.side is Side.BUY, o.symbol))
    )
    frame = snapshot.positions
    cash = snapshot.cash or 0.0
    value = float((frame["quantity"] * frame["last_price"]).sum()) + cash
    moved = {o.combined_symbol: o.quantity * (1 if o.side is Side.BUY else -1) for o in parts}
    buys = sum(o.notional for o in parts if o.side is Side.BUY)
    sells = sum(o.notional for o in parts if o.side is Side.SELL)
    charges = sum(o.charges for o in parts)
    positions = []
    for row in frame.to_dict(orient="records"):
        before = int(row["quantity"])
        after = before + moved.get(row["symbol"], 0)
        price = float(row["last_price"])
        positions.append(
            PositionLine(
                symbol=row["symbol"],
                weight_before=before * price / value if value else 0.0,
                target_weight=float(targets.get(row["symbol"], 0.0)),
                weight_after=after * price / value if value else 0.0,
                quantity_before=before,
                quantity_after=after,
            )
        )
    summary = PlanSummary(
        portfolio_value=value,
        turnover_pct=100.0 * (buys + sells) / value if value else 0.0,
        budget_used_pct=whole.summary.budget_used_pct,
        max_drift_before=whole.summary.max_drift_before,
        max_drift_after=whole.summary.max_drift_after,
        trades=len(orders),
        estimated_charges=charges,
        cash_before=snapshot.cash,
        cash_after=None if snapshot.cash is None else cash - buys + sells - charges,
        buy_value=buys,
        sell_value=sells,
        solver=whole.summary.solver,
    )
    note = (
        f"{account}'s part of the combined plan (allocation {allocation_hash[:12]}); the drift "
        "figures are the whole's"
    )
    return TradePlan(orders, tuple(positions), summary, (note,))


def part_tax(
    part: TradePlan,
    snapshot: HoldingsSnapshot,
    targets: Mapping[str, float],
    policy: Policy,
    context: TaxContext,
    cash_target: float | None,
) -> dict[str, Any]:
    """The tax estimate of one account's part (``planning.taxes.tax_section``): its sells
    against that account's FIFO lots, the year's gains so far, charges + tax."""
    book = build_book(snapshot, targets, policy, cash_target=cash_target, today=context.sold_on)
    return tax_section(part, tax_model(context, policy, book))


def left_undone(legs: Sequence[LegRecord]) -> list[dict[str, Any]]:
    """The legs of a part not completely filled: what the account still has to do."""
    undone = []
    for leg in legs:
        missing = leg.quantity - leg.filled_quantity
        if missing > 0 and leg.order_state is not OrderState.COMPLETE:
            undone.append(
                {
                    "symbol": leg.symbol,
                    "side": leg.side,
                    "quantity": missing,
                    "state": str(leg.order_state),
                }
            )
    return undone


def combined_outcome(parts: Mapping[str, tuple[RunRecord, Sequence[LegRecord]]]) -> dict[str, Any]:
    """What each account's lane did with its part, and the combined status: ``completed`` (every
    part completed), ``partial`` (some parts traded, some did not finish) or ``failed``.

    One account failing never undoes the other's orders: the outcome says what each did."""
    accounts: dict[str, Any] = {}
    finished = 0
    for account, (run, legs) in sorted(parts.items()):
        filled = sum(leg.filled_quantity for leg in legs)
        undone = left_undone(legs) if legs else []
        if run.status in ("completed", "skipped") and not undone:
            finished += 1
        elif not legs and run.plan and not run.plan.get("orders"):
            finished += 1  # nothing to place
        accounts[account] = {
            "run_id": run.id,
            "status": str(run.status),
            "reason": run.status_reason,
            "orders": len(legs),
            "filled_shares": filled,
            "left_undone": undone
            if legs
            else [
                {"symbol": o["symbol"], "side": o["side"], "quantity": o["quantity"]}
                for o in (run.plan or {}).get("orders", [])
                if str(run.status) != "completed"
            ],
        }
    traded = any(a["filled_shares"] for a in accounts.values())
    if finished == len(parts):
        status = "completed"
    elif traded:
        status = "partial"
    else:
        status = "failed"
    return {"status": status, "accounts": accounts}


def split_markdown(
    allocation: Mapping[str, Any],
    replanned: bool,
    taxes: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> str:
    """The stored allocation's split per account, as the preview and the page show it, with
    each account's tax estimate (``taxes``: account -> its part's ``plan["tax"]``) when on."""
    lines = [
        "### Split per account",
        "",
        f"Allocation `{str(allocation.get('allocation_hash', ''))[:12]}` "
        f"({allocation.get('solver', '?')}): each account's cash and sellable quantity are hard "
        "limits; no cash moves between brokers.",
        "",
        "| account | orders | buys ₹ | sells ₹ | charges ₹ | cash after ₹ |",
        "|---|---|---:|---:|---:|---:|",
    ]
    orders = allocation.get("orders", [])
    for split in allocation.get("splits", []):
        mine = ", ".join(
            f"{o['side']} {o['quantity']} {o['symbol']}"
            for o in orders
            if o["account"] == split["account"]
        )
        after = split.get("cash_after")
        lines.append(
            f"| `{split['account']}` ({split['broker']}) | {mine or 'none'} | "
            f"{split['buy_value']:,.2f} | {split['sell_value']:,.2f} | {split['charges']:,.2f} | "
            f"{'?' if after is None else f'{after:,.2f}'} |"
        )
    if replanned:
        lines += [
            "",
            "**Re-planned per account**: the whole's plan could not be funded inside the "
            "accounts, so each account was planned within its own limits.",
        ]
    for shortfall in allocation.get("shortfalls", []):
        lines.append(f"* left undone: {shortfall['side']} {shortfall['symbol']}: "
                     f"{shortfall['reason']}")  # fmt: skip
    for account, tax in sorted((taxes or {}).items()):
        if (line := tax_summary_line(tax)) is not None:
            lines.append(f"* tax of `{account}`'s part (its own FIFO lots): {line}")
    return "\n".join(lines)
