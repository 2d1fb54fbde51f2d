"""Separate vs combined accounts mode: turnover and charges on the same holdings (issue 16).

Run by hand (not a test):  .venv/bin/python benchmarks/accounts_modes.py [--random 200] [--seed 16]

Four named households (one model portfolio held across Zerodha and AngelOne accounts), then
``--random`` seeded random households. Each is planned both ways by ``compare_modes``: separate
(each account pulled to the targets on its own, with its broker's charges) and combined (one plan
for the whole, its orders allocated to the accounts by the MILP). The policy is the example
portfolio's (budget 10%, bands 2% / 15%, max 8 trades, min ₹2,000, max weight 25%).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from rebalance.accounts.allocate import allocate_orders
from rebalance.accounts.combine import AccountHoldings, CombinedSnapshot, combine_accounts
from rebalance.accounts.compare import Comparison, ModeResult, compare_modes
from rebalance.domain.market import IST, Holding, Quote
from rebalance.policy import Policy

TAKEN_AT = datetime(2026, 11, 25, 15, 15, tzinfo=IST)
PRICES = {  # rupees, late-2026 orders of magnitude
    "HDFCBANK": 1720.0,
    "INFY": 1890.0,
    "TCS": 3450.0,
    "ASIANPAINT": 2380.0,
    "NESTLEIND": 2250.0,
    "PIDILITIND": 1480.0,
    "RELIANCE": 1520.0,
    "ICICIBANK": 1380.0,
    "ITC": 468.0,
    "LT": 3650.0,
    "SBIN": 820.0,
    "BHARTIARTL": 1950.0,
}
QUALITY = {  # the example portfolio, 5% cash
    "HDFCBANK": 0.20,
    "INFY": 0.15,
    "TCS": 0.15,
    "ASIANPAINT": 0.15,
    "NESTLEIND": 0.15,
    "PIDILITIND": 0.15,
}
NIFTY10 = dict.fromkeys(
    ["HDFCBANK", "ICICIBANK", "RELIANCE", "INFY", "TCS", "ITC", "LT", "SBIN", "BHARTIARTL"], 0.1
) | {"ASIANPAINT": 0.1}
POLICY = Policy(
    rebalance_budget_pct=10,
    drift_band_abs_pct=2,
    drift_band_rel_pct=15,
    max_trades=8,
    min_trade_value_inr=2000,
    max_position_weight_pct=25,
)


@dataclass(frozen=True)
class Household:
    name: str
    accounts: list[AccountHoldings]
    targets: dict[str, float]
    cash_target: float | None = None


def held(
    name: str,
    broker: str,
    value: float,
    weights: Mapping[str, float],
    cash: float,
    *,
    sellable_share: float = 1.0,
) -> AccountHoldings:
    """An account worth ``value`` rupees in shares at ``weights`` (fractions of ``value``)."""
    holdings = []
    for symbol, weight in weights.items():
        quantity = int(value * weight / PRICES[symbol])
        if quantity:
            holdings.append(
                Holding(
                    symbol,
                    "NSE",
                    quantity,
                    int(quantity * sellable_share),
                    PRICES[symbol] * 0.85,
                    PRICES[symbol],
                )
            )
    return AccountHoldings(name, broker, tuple(holdings), cash)


def named_households() -> list[Household]:
    q = QUALITY
    return [
        Household(
            "quality, 8L+4L, accounts drifted apart",
            [
                held(
                    "kite",
                    "zerodha",
                    800_000,
                    q | {"INFY": 0.22, "TCS": 0.20, "NESTLEIND": 0.08},
                    40_000,
                ),
                held(
                    "angel",
                    "angelone",
                    400_000,
                    q | {"INFY": 0.05, "TCS": 0.08, "NESTLEIND": 0.27},
                    20_000,
                ),
            ],
            q,
            0.05,
        ),
        Household(
            "quality, 20L invested + 2L trading with a fresh ₹50k",
            [
                held(
                    "kite", "zerodha", 2_000_000, q | {"HDFCBANK": 0.23, "PIDILITIND": 0.12}, 30_000
                ),
                held("angel", "angelone", 200_000, {"INFY": 0.5, "TCS": 0.4}, 50_000),
            ],
            q,
            0.05,
        ),
        Household(
            "nifty-10 over three accounts, each lopsided",
            [
                held("kite", "zerodha", 600_000, dict.fromkeys(list(NIFTY10)[:5], 0.2), 10_000),
                held(
                    "kite-spouse", "zerodha", 500_000, dict.fromkeys(list(NIFTY10)[5:], 0.2), 10_000
                ),
                held("angel", "angelone", 300_000, dict.fromkeys(NIFTY10, 0.1), 60_000),
            ],
            NIFTY10,
        ),
        Household(
            "quality, half of kite's shares pledged, cash only at angel",
            [
                held(
                    "kite",
                    "zerodha",
                    900_000,
                    q | {"TCS": 0.25, "ASIANPAINT": 0.05},
                    0,
                    sellable_share=0.5,
                ),
                held("angel", "angelone", 300_000, q | {"TCS": 0.05, "ASIANPAINT": 0.25}, 60_000),
            ],
            q,
            0.05,
        ),
    ]


def random_household(rng: np.random.Generator, index: int) -> Household:
    """2-3 accounts (Zerodha or AngelOne) holding the quality model with random tilts."""
    accounts = []
    for k in range(int(rng.integers(2, 4))):
        tilt = {s: w * float(rng.lognormal(0, 0.45)) for s, w in QUALITY.items()}
        total = sum(tilt.values())
        weights = {s: w / total * 0.95 for s, w in tilt.items()}
        value = float(rng.choice([150_000, 400_000, 1_000_000, 3_000_000]))
        broker = str(rng.choice(["zerodha", "angelone"]))
        cash = float(rng.uniform(0, 0.08)) * value
        accounts.append(held(f"a{k}", broker, value, weights, round(cash, 2)))
    return Household(f"random {index}", accounts, QUALITY, 0.05)


def run(household: Household) -> tuple[CombinedSnapshot, Comparison, float]:
    quotes = {s: Quote(s, "NSE", p) for s, p in PRICES.items()}
    combined = combine_accounts(
        household.accounts, taken_at=TAKEN_AT, quotes=quotes, target_symbols=household.targets
    )
    start = time.perf_counter()
    result = compare_modes(combined, household.targets, POLICY, cash_target=household.cash_target)
    return combined, result, (time.perf_counter() - start) * 1000.0


def line(mode: ModeResult) -> str:
    short = f", {len(mode.shortfalls)} shortfall(s)" if mode.shortfalls else ""
    both = ", ".join(mode.both_ways) or "-"
    return (
        f"  {mode.mode:<9} {len(mode.orders):>3} orders  turnover ₹{mode.turnover:>11,.0f} "
        f"({mode.turnover_pct:5.2f}%)  charges ₹{mode.charges:>8,.2f}  max drift after "
        f"{mode.max_drift_after:6.2%}  both ways: {both}{short}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", type=int, default=200, help="random households")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    for household in named_households():
        _, result, ms = run(household)
        value = result.combined.value
        print(
            f"{household.name}: value ₹{value:,.0f}, max drift before "
            f"{result.plan.summary.max_drift_before:.2%} (the whole)"
        )
        print(line(result.separate))
        print(line(result.combined))
        split = ", ".join(f"{s.account} {s.orders}" for s in result.allocation.splits)
        print(f"  combined split: {split}; solver {result.allocation.solver}; {ms:.0f} ms")
    rng = np.random.default_rng(args.seed)
    ratios_turnover, ratios_charges, both_ways, times = [], [], 0, []
    greedy_extra: list[float] = []  # charges of the greedy fallback over the MILP's, rupees
    greedy_short = 0  # cases where the fallback left shares undone that the MILP placed
    drift: dict[str, list[float]] = {"before": [], "separate": [], "combined": []}
    for index in range(args.random):
        combined, result, ms = run(random_household(rng, index))
        times.append(ms)
        greedy = allocate_orders(
            result.plan.orders,
            combined.accounts,
            use_sell_proceeds=POLICY.use_sell_proceeds,
            use_solver=False,
        )
        greedy_short += len(greedy.shortfalls) > len(result.allocation.shortfalls)
        if greedy.complete and result.allocation.complete:
            greedy_extra.append(greedy.charges - result.allocation.charges)
        drift["before"].append(result.plan.summary.max_drift_before)
        drift["separate"].append(result.separate.max_drift_after)
        drift["combined"].append(result.combined.max_drift_after)
        both_ways += bool(result.separate.both_ways)
        if result.separate.turnover > 0:
            ratios_turnover.append(result.combined.turnover / result.separate.turnover)
            ratios_charges.append(result.combined.charges / result.separate.charges)
    if ratios_turnover:
        print(
            f"{args.random} random households (seed {args.seed}): combined / separate median "
            f"turnover {statistics.median(ratios_turnover):.2f}, charges "
            f"{statistics.median(ratios_charges):.2f}; separate traded a symbol both ways in "
            f"{both_ways}; compare_modes median {statistics.median(times):.0f} ms, max "
            f"{max(times):.0f} ms"
        )
        print(
            f"  greedy fallback vs MILP: charges ₹{statistics.mean(greedy_extra):.2f} more on "
            f"average, ₹{max(greedy_extra):.2f} at most ({len(greedy_extra)} complete cases); "
            f"more left undone in {greedy_short}"
        )
        print(
            "  median max drift of the whole: "
            + ", ".join(f"{k} {statistics.median(v):.2%}" for k, v in drift.items())
        )


if __name__ == "__main__":
    main()
