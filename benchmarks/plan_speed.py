"""Planner speed: in-process time of ``plan_rebalance`` after warm-up, 50 and 500 symbols.

Run by hand (not a test):  .venv/bin/python benchmarks/plan_speed.py [--repeat 30] [--seed 11]

Portfolios come from ``plan_quality.random_case`` (random prices, drift, cash, budgets). Two
policies per size: the case's own (often max_trades 10) and one where every symbol may trade
(max_trades = size, no bands), the slow path of the reconciliation. Goals: <= 20 ms at 50 symbols,
<= 200 ms at 500 (median and p95 reported).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from plan_quality import BROKER, Case, random_case
from rebalance.planning import plan_rebalance


def time_case(case: Case, repeat: int) -> list[float]:
    """Milliseconds of ``repeat`` runs of the planner on ``case`` (after one warm-up run)."""
    run = lambda: plan_rebalance(  # noqa: E731 - a local thunk reads best here
        case.snapshot, case.targets, case.policy, cash_target=case.cash_target, broker=BROKER
    )
    run()
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        timings.append((time.perf_counter() - start) * 1000.0)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--cases", type=int, default=5, help="portfolios per size")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    for size in (50, 500):
        for label in ("case policy", "all may trade"):
            timings: list[float] = []
            for _ in range(args.cases):
                case = random_case(rng, size)
                if label == "all may trade":
                    policy = case.policy.with_overrides(
                        {"max_trades": size, "drift_band_abs_pct": 0, "drift_band_rel_pct": 0}
                    )
                    case = Case(case.snapshot, case.targets, policy, case.cash_target, case.label)
                timings += time_case(case, args.repeat)
            timings.sort()
            p95 = timings[int(0.95 * (len(timings) - 1))]
            print(
                f"{size:>4} symbols, {label:<14}: median {statistics.median(timings):7.2f} ms, "
                f"p95 {p95:7.2f} ms, max {timings[-1]:7.2f} ms ({len(timings)} runs)"
            )


if __name__ == "__main__":
    main()
