"""Plan time and tax with ``tax`` off / report / limit / minimise (issue 15), 50 symbols with
three FIFO lots each (synthetic, seeded), at the default optimiser time cap and at 10 s.

Run by hand (not a test):  .venv/bin/python benchmarks/tax_plan_speed.py [--symbols 50]
Prints per mode the median wall time of ``plan_rebalance`` (5 runs), the orders, the estimated
tax of the run, the drift objective after, and which method made the plan.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from rebalance.planning import plan_rebalance
from rebalance.policy import Policy
from rebalance.snapshot import COLUMNS, HoldingsSnapshot
from rebalance.tax.lots import Lot
from rebalance.tax.planning import TaxContext

TODAY = date(2026, 11, 25)
MODES: dict[str, dict[str, Any]] = {
    "off": {},
    "report": {"tax": "report"},
    "limit": {"tax": "limit", "max_tax_inr": 2000, "max_short_term_gains_inr": 10000},
    "minimise": {"tax": "minimise", "tax_weight": 5},
}


def case(symbols: int, seed: int = 7) -> tuple[HoldingsSnapshot, dict[str, float], TaxContext]:
    rng = random.Random(seed)
    rows, lots = [], {}
    for i in range(symbols):
        symbol = f"S{i:03d}"
        price = rng.choice([100.0, 500.0, 2000.0])
        ages = sorted(rng.sample(range(5, 900), 3), reverse=True)
        lots[symbol] = tuple(
            Lot("main", symbol, TODAY - timedelta(days=d), rng.randint(10, 80), price * cost)
            for d, cost in ((d, rng.uniform(0.5, 1.2)) for d in ages)
        )
        quantity = sum(lot.quantity for lot in lots[symbol])
        rows.append(
            {"symbol": symbol, "exchange": "NSE", "quantity": quantity, "last_price": price,
             "sellable_quantity": quantity, "average_price": None, "previous_close": None,
             "acquired_on": None, "isin": None}
        )  # fmt: skip
    raw = [rng.uniform(0.2, 1.0) for _ in rows]
    targets = {r["symbol"]: w / sum(raw) for r, w in zip(rows, raw, strict=True)}
    taken = datetime(2026, 11, 25, 9, 45, tzinfo=UTC)
    snapshot = HoldingsSnapshot(pd.DataFrame(rows, columns=list(COLUMNS)), 10_000.0, taken)
    return snapshot, targets, TaxContext("main", TODAY, lots)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=50)
    args = parser.parse_args()
    snapshot, targets, context = case(args.symbols)
    base = {"max_position_weight_pct": 100, "max_trades": 20, "rebalance_budget_pct": 20}
    for cap in (None, 10.0):
        print(f"--- optimiser_time_cap_s {'default' if cap is None else cap}")
        for name, extra in MODES.items():
            policy = Policy.model_validate(
                {**base, **extra, **({} if cap is None else {"optimiser_time_cap_s": cap})}
            )
            times = []
            for _ in range(5 if cap is None else 1):
                started = time.perf_counter()
                plan = plan_rebalance(snapshot, targets, policy, today=TODAY, tax=context)
                times.append(time.perf_counter() - started)
            tax = (plan.tax or {}).get("estimated_tax")
            print(
                f"{name:9s} median {1000 * statistics.median(times):6.0f} ms  orders "
                f"{len(plan.orders):2d}  tax {tax}  drift {plan.summary.objective_after:.4f}  "
                f"{plan.summary.solver}"
            )


if __name__ == "__main__":
    main()
