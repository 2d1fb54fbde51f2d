"""Plan quality: the planner against the global optimum over every eligible symbol.

Run by hand (not a test):
    .venv/bin/python benchmarks/plan_quality.py [--cases 300] [--seed 7] [--large 20]

For random portfolios over the whole policy space (bands, budget in % and in ₹, both budget modes,
cash targets, no cash figure, max trades from 1 to every symbol, min trade value, max weight,
no-buy / no-sell lists, buys-only / sells-only, sell proceeds off, partly unsellable holdings) it
scores plans on the planner's stated objective (docs/planner.md): the sum over the symbols and the
cash position of |weight after - target| plus what symbols end above the max weight, weights of
the value after charges, charges paid from cash. It compares

* ``planner``: ``plan_rebalance`` as shipped (optimiser with its time cap, fast plan as fallback);
* ``fast``: ``plan_rebalance`` with ``optimiser_time_cap_s: 0`` (the heuristic alone: "before");
* ``optimum``: an exact MILP written here from the policy's words, apart from the planner's code:
  every symbol may buy or sell (one order each) wherever the rules allow, with its own charge
  model, bands, budget, cash, max trades, min trade value, max weight, lists, filters, sellable
  quantities and the rule that no symbol ends further from its (max-weight-capped) target than it
  started. None of the planner's candidates, sides, share caps or selection is used.

It reports the ratio planner / optimum and fast / optimum (median, p95, max), hard-constraint
violations of each plan (``verify_plan``), how often the planner's solver proved optimality and
how often the global MILP did; then, on 200 to 1,000-symbol cases under the default time cap, how
often the planner fell back to the fast plan and its ratio.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from rebalance.costs import broker_rates, charge_total
from rebalance.domain.market import Side
from rebalance.plan import PlannedOrder, TradePlan
from rebalance.planning import plan_rebalance, verify_plan
from rebalance.policy import BudgetMode, Policy, TradeFilter
from rebalance.snapshot import COLUMNS, HoldingsSnapshot

BROKER = "paper"
TAKEN_AT = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
EPS = 1e-9
ROOMY_CAP = 10.0  # seconds: the time cap a time-capped case is re-run with, to see load effects


@dataclass(frozen=True)
class Case:
    """One random portfolio and policy."""

    snapshot: HoldingsSnapshot
    targets: dict[str, float]
    policy: Policy
    cash_target: float | None
    label: str


def random_case(
    rng: np.random.Generator, size: int | None = None, smallest: int = 3, largest: int = 200
) -> Case:
    """A random neutral-policy portfolio of ``size`` symbols (log-uniform in [smallest, largest]
    when None) with a random policy from the whole policy space."""
    n = size or round(math.exp(rng.uniform(math.log(smallest), math.log(largest))))
    symbols = [f"S{i:04d}" for i in range(n)]
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
    some = lambda: list(rng.choice(symbols, size=min(n, 3), replace=False))  # noqa: E731
    fixed_budget = rng.random() < 0.25
    policy = Policy(
        rebalance_budget_pct=float(rng.uniform(1, 5) if tight else rng.uniform(15, 100)),
        rebalance_budget_inr=float(value * rng.uniform(0.01, 0.3)) if fixed_budget else None,
        budget_mode=BudgetMode.MAX_SIDE if rng.random() < 0.5 else BudgetMode.TURNOVER,
        drift_band_abs_pct=float(rng.choice([0.0, 0.5, 2.0])),
        drift_band_rel_pct=float(rng.choice([0.0, 5.0, 15.0])),
        max_trades=int(rng.choice([1, 3, 5, 10, max(1, n // 2), n])),
        min_trade_value_inr=float(rng.choice([0.0, 2000.0, 5000.0])),
        max_position_weight_pct=float(
            100.0 if rng.random() < 0.5 else min(100.0, max(weights) * 100 * 1.2 + 1)
        ),
        no_buy=some() if rng.random() < 0.15 else [],
        no_sell=some() if rng.random() < 0.15 else [],
        trade_filter=rng.choice(
            [TradeFilter.BOTH, TradeFilter.BUYS_ONLY, TradeFilter.SELLS_ONLY], p=[0.7, 0.15, 0.15]
        ),
        use_sell_proceeds=bool(rng.random() < 0.85),
    )
    budget = (
        f"₹{policy.rebalance_budget_inr:,.0f}"
        if fixed_budget
        else (f"{policy.rebalance_budget_pct:.0f}%")
    )
    label = (
        f"n={n} budget {budget} {policy.budget_mode} trades<={policy.max_trades} "
        f"{policy.trade_filter} cash={'none' if cash is None else 'yes'}"
    )
    snapshot = HoldingsSnapshot(frame, cash, TAKEN_AT)
    return Case(snapshot, targets, policy, cash_target, label)


@dataclass(frozen=True)
class _Symbol:
    name: str
    price: float
    quantity: int
    sellable: int
    target: float


def _members(case: Case) -> tuple[list[_Symbol], float, float]:
    """The portfolio's symbols, the cash (0 when unknown) and the value (rupees)."""
    rows = case.snapshot.positions.to_dict(orient="records")
    symbols = [
        _Symbol(
            str(r["symbol"]),
            float(r["last_price"]),
            int(r["quantity"]),
            int(r["sellable_quantity"]),
            case.targets[str(r["symbol"])],
        )
        for r in rows
        if str(r["symbol"]) in case.targets
    ]
    cash = float(case.snapshot.cash or 0.0)
    return symbols, cash, sum(s.quantity * s.price for s in symbols) + cash


def score(case: Case, trades: dict[str, int]) -> float:
    """The stated objective of a plan given as symbol -> signed shares (exact charges)."""
    symbols, cash, value = _members(case)
    rates = broker_rates(BROKER)
    max_weight = case.policy.max_position_weight_pct / 100.0
    charges = net = 0.0
    for s in symbols:
        shares = trades.get(s.name, 0)
        if shares:
            side = Side.BUY if shares > 0 else Side.SELL
            charges += charge_total(abs(shares) * s.price, side, "NSE", rates)
            net += shares * s.price
    after_value = value - charges
    total = 0.0
    for s in symbols:
        weight = (s.quantity + trades.get(s.name, 0)) * s.price / after_value
        total += abs(weight - s.target) + max(0.0, weight - max_weight)
    cash_weight = (cash - net - charges) / after_value
    return total + abs(cash_weight - (case.cash_target or 0.0))


def global_optimum(case: Case, time_limit: float) -> tuple[dict[str, int], bool]:
    """The exact best plan (symbol -> signed shares) by a MILP over every eligible symbol, and
    whether HiGHS proved it optimal. Written from the policy's words (see the module doc)."""
    policy = case.policy
    symbols, cash, value = _members(case)
    rates = broker_rates(BROKER)
    # charges per rupee (buy, sell) and per sell order, from the costs module's own function
    buy_rate = charge_total(1e6, Side.BUY, "NSE", rates) / 1e6
    sell_rate = (
        charge_total(2e6, Side.SELL, "NSE", rates) - charge_total(1e6, Side.SELL, "NSE", rates)
    ) / 1e6
    sell_fixed = charge_total(1e6, Side.SELL, "NSE", rates) - sell_rate * 1e6
    max_weight = policy.max_position_weight_pct / 100.0
    cash_target = case.cash_target or 0.0
    budget = (
        policy.rebalance_budget_inr
        if policy.rebalance_budget_inr is not None
        else policy.rebalance_budget_pct / 100.0 * value
    )
    spendable = max(0.0, cash - cash_target * value)
    # columns, everything in fractions of value: per symbol buy shares, sell shares, buy flag,
    # sell flag, |deviation|, excess over the max weight; then charges and the cash deviation
    n = len(symbols)
    cols_per = 6
    charges_col, cash_dev_col = cols_per * n, cols_per * n + 1
    width = cols_per * n + 2
    lower, upper = np.zeros(width), np.full(width, np.inf)
    integrality = np.zeros(width)
    cost = np.zeros(width)
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    row_lo: list[float] = []
    row_hi: list[float] = []

    def add(terms: dict[int, float], lo: float, hi: float, scale: float = 1e6) -> None:
        """A row; money rows (the default) are multiplied by 1e6 so that HiGHS's absolute
        feasibility tolerance is a millionth of a rupee-scale fraction, not ₹1 per crore."""
        for col, val in terms.items():
            rows.append(len(row_lo))
            cols.append(col)
            vals.append(val * scale)
        row_lo.append(lo * scale)
        row_hi.append(hi * scale)

    charge_terms: dict[int, float] = {charges_col: 1.0}
    buy_terms: dict[int, float] = {}
    sell_terms: dict[int, float] = {}
    buy_charge_terms: dict[int, float] = {}
    flags: dict[int, float] = {}
    for k, s in enumerate(symbols):
        b, v, yb, ys, dev, excess = (cols_per * k + j for j in range(cols_per))
        integrality[[b, v, yb, ys]] = 1
        upper[[yb, ys]] = 1
        step = s.price / value
        held = s.quantity * s.price / value
        weight, goal = held, min(s.target, max_weight)
        drift = weight - s.target
        out_of_band = abs(drift) > EPS and (
            abs(drift) >= policy.drift_band_abs_pct / 100 - EPS
            or abs(drift) >= policy.drift_band_rel_pct / 100 * s.target - EPS
        )
        over_max = weight > max_weight + EPS
        may_buy = (
            out_of_band
            and s.name not in policy.no_buy
            and policy.trade_filter is not TradeFilter.SELLS_ONLY
        )
        may_sell = (
            (out_of_band or over_max)
            and s.sellable > 0
            and s.name not in policy.no_sell
            and policy.trade_filter is not TradeFilter.BUYS_ONLY
        )
        # buy / sell shares: at most the max-weight room (planning value) / the sellable shares
        room = math.floor((max_weight - held) / step + 1e-9) if may_buy else 0
        upper[b] = max(0, room)
        upper[v] = s.sellable if may_sell else 0
        if may_sell and not out_of_band:  # a trim only: down to the max weight, one share more
            upper[v] = min(s.sellable, math.ceil((held - max_weight) / step - 1e-9) + 1)
        add({yb: 1, ys: 1}, 0, 1, 1)  # one order per symbol
        add({b: 1, yb: -max(upper[b], 0)}, -np.inf, 0, 1)
        add({v: 1, ys: -max(upper[v], 0)}, -np.inf, 0, 1)
        smallest = max(1, math.ceil(policy.min_trade_value_inr / s.price - 1e-9))
        add({b: 1, yb: -smallest}, 0, np.inf, 1)
        add({v: 1, ys: -smallest}, 0, np.inf, 1)
        if out_of_band:  # no symbol ends further from its (capped) target than it started
            gap = abs(goal - held)
            add({b: step, v: -step}, goal - held - gap, goal - held + gap)
        # |weight after - target| with weights of the value after charges (rupees / value)
        add({dev: 1, b: -step, v: step, charges_col: -s.target}, held - s.target, np.inf)
        add({dev: 1, b: step, v: -step, charges_col: s.target}, s.target - held, np.inf)
        add({excess: 1, b: -step, v: step, charges_col: -max_weight}, held - max_weight, np.inf)
        cost[[dev, excess]] = 1.0
        if max_weight < 1:  # a buy ends at most at the max weight of the value after charges
            big = held + upper[b] * step
            add({b: step, charges_col: max_weight, yb: big}, -np.inf, max_weight - held + big)
        charge_terms[b] = -buy_rate * step
        charge_terms[v] = -sell_rate * step
        charge_terms[ys] = -sell_fixed / value
        buy_charge_terms[b] = buy_rate * step
        buy_terms[b], sell_terms[v] = step, step
        flags[yb], flags[ys] = 1, 1
    add(charge_terms, 0, 0)
    net = {**buy_terms, **{k: -x for k, x in sell_terms.items()}}
    cash_gap = cash / value - cash_target
    keep = 1 - cash_target
    add({cash_dev_col: 1, **net, charges_col: keep}, cash_gap, np.inf)
    add({cash_dev_col: 1, **{k: -x for k, x in net.items()}, charges_col: -keep}, -cash_gap, np.inf)
    cost[cash_dev_col] = 1.0
    add(flags, 0, policy.max_trades, 1)
    if policy.budget_mode is BudgetMode.MAX_SIDE:
        add(buy_terms, 0, budget / value)
        add(sell_terms, 0, budget / value)
    else:
        add({**buy_terms, **sell_terms}, 0, budget / value)
    add({**net, charges_col: 1}, -np.inf, spendable / value)
    if not policy.use_sell_proceeds:
        add(
            {**{k: buy_terms[k] + buy_charge_terms[k] for k in buy_terms}},
            -np.inf,
            spendable / value,
        )
    matrix = coo_matrix((vals, (rows, cols)), shape=(len(row_lo), width)).tocsr()
    result = milp(
        cost,
        integrality=integrality,
        bounds=Bounds(lower, upper),
        constraints=LinearConstraint(matrix, row_lo, row_hi),
        options={"time_limit": time_limit, "mip_rel_gap": 1e-7},
    )
    if result.x is None:
        raise RuntimeError(f"global MILP found no plan: {result.message}")
    plan: dict[str, int] = {}
    for k, s in enumerate(symbols):
        shares = round(result.x[cols_per * k]) - round(result.x[cols_per * k + 1])
        if shares:
            plan[s.name] = shares
    return plan, result.status == 0


def signed(plan: TradePlan) -> dict[str, int]:
    return {o.symbol: o.quantity if o.side is Side.BUY else -o.quantity for o in plan.orders}


def _as_plan(case: Case, trades: dict[str, int], like: TradePlan) -> TradePlan:
    """The global optimum as a TradePlan, so that verify_plan checks it too."""
    prices = {s.name: s.price for s in _members(case)[0]}
    orders = tuple(
        PlannedOrder(
            name,
            "NSE",
            Side.BUY if shares > 0 else Side.SELL,
            abs(shares),
            prices[name],
            abs(shares) * prices[name],
            ("drift",),
        )
        for name, shares in trades.items()
    )
    return TradePlan(orders, (), like.summary)


def _plan(case: Case, policy: Policy) -> TradePlan:
    return plan_rebalance(
        case.snapshot, case.targets, policy, cash_target=case.cash_target, broker=BROKER
    )


def _violations(plan: TradePlan, case: Case) -> list[str]:
    return verify_plan(
        plan, case.snapshot, case.targets, case.policy, cash_target=case.cash_target, broker=BROKER
    )


def _ratio(ours: float, best: float) -> float:
    return ours / best if best > 1e-12 else (1.0 if ours <= 1e-12 else math.inf)


def _report(name: str, ratios: list[float]) -> None:
    ordered = sorted(ratios)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    print(
        f"{name}: median {statistics.median(ordered):.4f}, p95 {p95:.4f}, "
        f"max {ordered[-1]:.4f} ({len(ordered)} cases)"
    )


def run(cases: list[Case], optimum_limit: float, title: str) -> None:
    print(f"== {title}")
    ours_r, fast_r = [], []
    violations = Counter[str]()
    solvers = Counter[str]()
    proven = 0
    seconds: list[float] = []
    worst: list[tuple[float, str]] = []
    uncapped: list[float] = []
    sensitive: list[tuple[float, float, str]] = []
    for case in cases:
        started = time.perf_counter()
        plan = _plan(case, case.policy)
        seconds.append(time.perf_counter() - started)
        fast = _plan(case, case.policy.with_overrides({"optimiser_time_cap_s": 0}))
        best, optimal = global_optimum(case, optimum_limit)
        proven += optimal
        solvers[plan.summary.solver] += 1
        violations["planner"] += bool(_violations(plan, case))
        violations["fast"] += bool(_violations(fast, case))
        violations["optimum"] += bool(_violations(_as_plan(case, best, fast), case))
        best_score = score(case, best)
        ours_r.append(_ratio(score(case, signed(plan)), best_score))
        fast_r.append(_ratio(score(case, signed(fast)), best_score))
        worst.append((ours_r[-1], f"{case.label} solver={plan.summary.solver}"))
        uncapped.append(ours_r[-1])
        if plan.summary.solver != "milp_optimal":  # the wall-time cap cut the search short
            roomy = _plan(case, case.policy.with_overrides({"optimiser_time_cap_s": ROOMY_CAP}))
            uncapped[-1] = _ratio(score(case, signed(roomy)), best_score)
            if uncapped[-1] < ours_r[-1] - 1e-9:
                sensitive.append((ours_r[-1], uncapped[-1], case.label))
    _report("planner / optimum", ours_r)
    _report(f"planner / optimum, capped cases re-run with a {ROOMY_CAP:g} s cap", uncapped)
    print(
        f"load-sensitive cases (better with a {ROOMY_CAP:g} s cap: the wall-time cap, not the "
        f"solver, limited them): {len(sensitive)}"
    )
    for capped, roomy_ratio, label in sorted(sensitive, reverse=True)[:5]:
        print(f"  {capped:.4f} -> {roomy_ratio:.4f}  {label}")
    _report("fast    / optimum", fast_r)
    print(f"planner's solver: {dict(solvers)}")
    print(f"global MILP proven optimal in {proven} of {len(cases)} ({optimum_limit:g} s limit)")
    print(
        f"plans with a violation (verify_plan): planner {violations['planner']}, "
        f"fast {violations['fast']}, global optimum {violations['optimum']}"
    )
    seconds.sort()
    print(
        f"planner time: median {statistics.median(seconds) * 1000:.0f} ms, "
        f"p95 {seconds[math.ceil(0.95 * len(seconds)) - 1] * 1000:.0f} ms, "
        f"max {seconds[-1] * 1000:.0f} ms"
    )
    print("worst cases (planner / optimum):")
    for ratio, label in sorted(worst, reverse=True)[:5]:
        print(f"  {ratio:.4f}  {label}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--large", type=int, default=20, help="200-1,000-symbol cases")
    parser.add_argument("--optimum-limit", type=float, default=60.0, help="seconds per MILP")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    run([random_case(rng) for _ in range(args.cases)], args.optimum_limit, "3-200 symbols")
    if args.large:
        large = [random_case(rng, smallest=200, largest=1000) for _ in range(args.large)]
        run(large, args.optimum_limit, "200-1,000 symbols, default time cap")


if __name__ == "__main__":
    main()
