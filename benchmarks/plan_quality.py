"""Plan quality: our whole-share plan against the exact integer optimum and the naive 4.4 rounding.

Run by hand (not a test):  .venv/bin/python benchmarks/plan_quality.py [--cases 300] [--seed 7]

For random neutral-policy portfolios (3 to 500 symbols, prices ₹20 to ₹30,000, tight and loose
budgets, cash or fully invested, max trades, min trade value, max weight, partly unsellable
holdings) it measures post-trade drift, the sum over the portfolio's symbols of
|weight_after - target| with weights of the planning value, for

* ours: ``plan_rebalance``;
* optimum: a mixed-integer program (scipy.optimize.milp / HiGHS) over the same candidates, sides
  and share caps, with the same budget, cash (exact charges: linear rates + DP per sold scrip),
  max trades and min trade value;
* naive: the notes' floor-and-scale (4.4): scale, floor, drop dust, keep the largest max_trades,
  cut the smallest buys until cash pays.

and reports the ratio of ours and of naive to the optimum (median, p95, max), hard-constraint
violations (``verify_plan``) and how often the MILP proved optimality.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp

from rebalance.brokers.base import Side
from rebalance.costs import broker_rates, charge_total, proportional_rate
from rebalance.plan import PlannedOrder, PlanSummary, TradePlan
from rebalance.planning import plan_rebalance, verify_plan
from rebalance.planning.book import Book, build_book
from rebalance.planning.intents import Intent, decide_intents
from rebalance.planning.sizing import budget_inr, min_units, spendable_cash
from rebalance.policy import BudgetMode, Policy
from rebalance.snapshot import COLUMNS, HoldingsSnapshot

BROKER = "paper"
TAKEN_AT = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Case:
    """One random portfolio and policy."""

    snapshot: HoldingsSnapshot
    targets: dict[str, float]
    policy: Policy
    cash_target: float | None
    label: str


def random_case(rng: np.random.Generator, size: int | None = None) -> Case:
    """A random neutral-policy portfolio of ``size`` symbols (random 3..500 when None)."""
    n = size or round(math.exp(rng.uniform(math.log(3), math.log(500))))
    symbols = [f"S{i:03d}" for i in range(n)]
    prices = np.exp(rng.uniform(math.log(20), math.log(30_000), n)).round(2)
    weights = rng.dirichlet(np.full(n, 2.0))
    cash_target = None if rng.random() < 0.5 else float(rng.choice([0.0, 0.02, 0.05]))
    invested = 1.0 - (cash_target or 0.0)
    targets = {s: float(w) * invested for s, w in zip(symbols, weights, strict=True)}
    value = float(np.exp(rng.uniform(math.log(2e5), math.log(5e7))))
    drift = rng.normal(0.0, rng.choice([0.1, 0.3, 0.6]), n)
    held_value = np.clip(weights * invested * value * (1 + drift), 0, None)
    quantity = np.floor(held_value / prices).astype(int)
    quantity[rng.random(n) < 0.1] = 0
    sellable = np.where(rng.random(n) < 0.1, quantity // 2, quantity)
    cash = float(rng.uniform(0, 0.08) * value) if rng.random() < 0.8 else None
    frame = pd.DataFrame(
        {
            "symbol": symbols,
            "exchange": "NSE",
            "quantity": quantity,
            "sellable_quantity": sellable,
            "last_price": prices,
            "average_price": prices,
            "previous_close": None,
            "acquired_on": None,
            "isin": None,
        },
        columns=list(COLUMNS),
    )
    tight = rng.random() < 0.5
    policy = Policy(
        rebalance_budget_pct=float(rng.uniform(1, 5) if tight else rng.uniform(15, 100)),
        budget_mode=BudgetMode.MAX_SIDE if rng.random() < 0.7 else BudgetMode.TURNOVER,
        drift_band_abs_pct=float(rng.choice([0.0, 0.5, 2.0])),
        drift_band_rel_pct=float(rng.choice([0.0, 5.0, 15.0])),
        max_trades=int(rng.choice([10, max(1, n // 2), n])),
        min_trade_value_inr=float(rng.choice([0.0, 2000.0, 5000.0])),
        max_position_weight_pct=float(
            100.0 if rng.random() < 0.5 else min(100.0, max(weights) * 100 * 1.2 + 1)
        ),
    )
    label = f"n={n} {'tight' if tight else 'loose'} {policy.budget_mode}"
    snapshot = HoldingsSnapshot(frame, cash, TAKEN_AT)
    return Case(snapshot, targets, policy, cash_target, label)


def drift_of(book: Book, traded: dict[str, int]) -> float:
    """Sum over the book's symbols of |weight_after - target|, weights of the planning value.
    ``traded`` is symbol -> signed shares."""
    return sum(
        abs((ln.quantity + traded.get(ln.symbol, 0)) * ln.price / book.value - ln.target)
        for ln in book.lines
    )


def signed(orders: Sequence[PlannedOrder]) -> dict[str, int]:
    return {o.symbol: o.quantity if o.side is Side.BUY else -o.quantity for o in orders}


def optimum(book: Book, intents: Sequence[Intent], policy: Policy) -> tuple[dict[str, int], bool]:
    """The exact best integer plan (signed shares) by MILP, and whether HiGHS proved it optimal."""
    active = [i for i in intents if i.active]
    if not active:
        return {}, True
    rates = broker_rates(BROKER)
    n = len(active)
    # variables: y (shares, n), z (trade or not, n), e (|drift| as a fraction of value, n)
    c = np.concatenate([np.zeros(2 * n), np.ones(n)])
    integrality = np.concatenate([np.ones(2 * n), np.zeros(n)])
    upper = np.concatenate([[i.cap for i in active], np.ones(n), np.full(n, np.inf)])
    rows: list[np.ndarray] = []
    lower_b: list[float] = []
    upper_b: list[float] = []

    def add(row: np.ndarray, lo: float, hi: float) -> None:
        rows.append(row)
        lower_b.append(lo)
        upper_b.append(hi)

    for k, intent in enumerate(active):
        line, sign = intent.line, (1 if intent.side is Side.BUY else -1)
        # in fractions of value, so that HiGHS sees numbers near 1
        gap = line.value / book.value - line.target  # weight over target
        step = sign * line.price / book.value
        row = np.zeros(3 * n)
        row[k], row[2 * n + k] = -step, 1.0  # e >= gap + step*y
        add(row, gap, np.inf)
        row = np.zeros(3 * n)
        row[k], row[2 * n + k] = step, 1.0  # e >= -(gap + step*y)
        add(row, -gap, np.inf)
        row = np.zeros(3 * n)
        row[k], row[n + k] = 1.0, -intent.cap  # y <= cap*z
        add(row, -np.inf, 0.0)
        row = np.zeros(3 * n)
        row[k], row[n + k] = 1.0, -min_units(intent, policy)  # y >= kmin*z
        add(row, 0.0, np.inf)
    row = np.zeros(3 * n)
    row[n : 2 * n] = 1.0
    add(row, 0.0, policy.max_trades)
    budget = budget_inr(book, policy)
    buy_row, sell_row, cash_row = np.zeros(3 * n), np.zeros(3 * n), np.zeros(3 * n)
    for k, intent in enumerate(active):
        p, exchange = intent.line.price, intent.line.exchange
        if intent.side is Side.BUY:
            buy_row[k] = p
            cash_row[k] = p * (1 + proportional_rate(Side.BUY, exchange, rates))
        else:
            sell_row[k] = p
            cash_row[k] = -p * (1 - proportional_rate(Side.SELL, exchange, rates))
            cash_row[n + k] = rates.dp_charge_inr.value
    unit = book.value
    if policy.budget_mode is BudgetMode.MAX_SIDE:
        add(buy_row / unit, 0.0, budget / unit)
        add(sell_row / unit, 0.0, budget / unit)
    else:
        add((buy_row + sell_row) / unit, 0.0, budget / unit)
    add(cash_row / unit, -np.inf, spendable_cash(book) / unit)
    result = milp(
        c,
        constraints=LinearConstraint(np.array(rows), lower_b, upper_b),
        integrality=integrality,
        bounds=Bounds(np.zeros(3 * n), upper),
        options={"time_limit": 60.0, "mip_rel_gap": 1e-7},
    )
    if result.x is None:
        raise RuntimeError(f"MILP found no solution: {result.message}")
    shares = np.round(result.x[:n]).astype(int)
    plan = {
        i.line.symbol: int(y) if i.side is Side.BUY else -int(y)
        for i, y in zip(active, shares, strict=True)
        if y
    }
    return plan, result.status == 0


def naive(book: Book, intents: Sequence[Intent], policy: Policy) -> list[PlannedOrder]:
    """Notes 4.3-4.4 taken literally: one scale, floor, dust dropped, the largest max_trades
    kept, the smallest buys cut until cash (plus sell proceeds) pays."""
    rates = broker_rates(BROKER)
    active = [i for i in intents if i.active]
    buys = sum(i.goal for i in active if i.side is Side.BUY)
    sells = sum(i.goal for i in active if i.side is Side.SELL)
    demand = max(buys, sells) if policy.budget_mode is BudgetMode.MAX_SIDE else buys + sells
    budget = budget_inr(book, policy)
    scale = min(1.0, budget / demand) if demand else 1.0
    orders = []
    for intent in active:
        qty = min(intent.cap, math.floor(intent.goal * scale / intent.line.price))
        notional = qty * intent.line.price
        if qty > 0 and notional >= policy.min_trade_value_inr:
            orders.append(_order(intent, qty))
    orders = sorted(orders, key=lambda o: -o.notional)[: policy.max_trades]
    cash = spendable_cash(book)

    def short(plan: list[PlannedOrder]) -> float:
        flow = sum(
            (o.notional if o.side is Side.BUY else -o.notional)
            + charge_total(o.notional, o.side, o.exchange, rates)
            for o in plan
        )
        return flow - cash

    for order in sorted((o for o in orders if o.side is Side.BUY), key=lambda o: o.notional):
        if short(orders) <= 0:
            break
        orders.remove(order)
    return orders


def _order(intent: Intent, qty: int) -> PlannedOrder:
    line = intent.line
    side = intent.side or Side.BUY
    return PlannedOrder(line.symbol, line.exchange, side, qty, line.price, qty * line.price, ())


def _violations(plan: TradePlan, case: Case) -> list[str]:
    return verify_plan(
        plan, case.snapshot, case.targets, case.policy, cash_target=case.cash_target, broker=BROKER
    )


def _ratio(ours: float, best: float) -> float:
    if best <= 1e-12:
        return 1.0 if ours <= 1e-9 else math.inf
    return ours / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    ours_ratios, naive_ratios, violations, naive_violations, proven = [], [], 0, 0, 0
    worst: list[tuple[float, str]] = []
    empty_summary = PlanSummary(0.0, 0.0, 0.0, 0.0, 0.0, 0, 0.0)
    for _ in range(args.cases):
        case = random_case(rng)
        book = build_book(
            case.snapshot, case.targets, case.policy, cash_target=case.cash_target, today=None
        )
        intents, _ = decide_intents(book, case.policy)
        plan = plan_rebalance(
            case.snapshot, case.targets, case.policy, cash_target=case.cash_target, broker=BROKER
        )
        problems = _violations(plan, case)
        violations += bool(problems)
        naive_orders = naive(book, intents, case.policy)
        naive_plan = TradePlan(tuple(naive_orders), (), empty_summary)
        naive_violations += bool(_violations(naive_plan, case))
        best_plan, optimal = optimum(book, intents, case.policy)
        proven += optimal
        best = drift_of(book, best_plan)
        ours = drift_of(book, signed(plan.orders))
        ours_ratios.append(_ratio(ours, best))
        naive_ratios.append(_ratio(drift_of(book, signed(naive_orders)), best))
        worst.append((ours_ratios[-1], case.label))
        if problems:
            print(f"VIOLATION {case.label}: {problems[:3]}")
    _report("ours / optimum", ours_ratios)
    _report("naive / optimum", naive_ratios)
    print(f"cases: {args.cases}, MILP proven optimal: {proven}")
    print(f"plans with a hard-constraint violation: ours {violations}, naive {naive_violations}")
    print("worst cases (ours / optimum):")
    for ratio, label in sorted(worst, reverse=True)[:5]:
        print(f"  {ratio:.4f}  {label}")


def _report(name: str, ratios: list[float]) -> None:
    finite = sorted(r for r in ratios if math.isfinite(r))
    p95 = finite[min(len(finite) - 1, math.ceil(0.95 * len(finite)) - 1)]
    print(
        f"{name}: median {statistics.median(finite):.4f}, p95 {p95:.4f}, max {finite[-1]:.4f}, "
        f"infinite {len(ratios) - len(finite)}"
    )


if __name__ == "__main__":
    main()
