"""Planner speed: in-process time of ``plan_rebalance`` after warm-up, 10 to 2,000 symbols.

Run by hand (not a test):  .venv/bin/python benchmarks/plan_speed.py [--cases 5] [--repeat 5]

Portfolios come from ``plan_quality.random_case`` (random prices, drift, cash, budgets and the
whole policy space). Two policies per size: the case's own, and one where every symbol may trade
(max_trades = size, no bands), the slow path of the whole-share reconciliation. Each is timed as
shipped (optimiser with its time cap) and with the fast plan alone (``optimiser_time_cap_s: 0``).
Goals: planner p95 <= 100 ms at 50 symbols and <= 1 s at 500; fast plan < 100 ms at 2,000
symbols. The last lines fit time ~ n^k between sizes: how time grows.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections import Counter
from itertools import pairwise

import numpy as np

from plan_quality import BROKER, Case, random_case
from rebalance.planning import plan_rebalance

SIZES = (10, 50, 200, 500, 1000, 2000)


def time_case(case: Case, repeat: int) -> tuple[list[float], list[float], str]:
    """Wall and CPU milliseconds of ``repeat`` runs of the planner on ``case`` (after one
    warm-up run) and the solver that produced the plan. CPU time (all threads of the process)
    says what a run costs when the machine is shared and wall time stretches."""
    run = lambda: plan_rebalance(  # noqa: E731 - a local thunk reads best here
        case.snapshot, case.targets, case.policy, cash_target=case.cash_target, broker=BROKER
    )
    solver = run().summary.solver
    timings, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        timings.append((time.perf_counter() - start) * 1000.0)
        cpu.append((time.process_time() - start_cpu) * 1000.0)
    return timings, cpu, solver


def _with(case: Case, overrides: dict[str, object]) -> Case:
    return Case(
        case.snapshot,
        case.targets,
        case.policy.with_overrides(overrides),
        case.cash_target,
        case.label,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cases", type=int, default=5, help="portfolios per size")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    rng = np.random.default_rng(args.seed)
    medians: dict[tuple[str, str], dict[int, float]] = {}
    for size in args.sizes:
        cases = [random_case(rng, size) for _ in range(args.cases)]
        for label in ("case policy", "all may trade"):
            everyone = {"max_trades": size, "drift_band_abs_pct": 0, "drift_band_rel_pct": 0}
            chosen = [_with(c, everyone) if label == "all may trade" else c for c in cases]
            for mode in ("planner", "fast plan"):
                timings: list[float] = []
                cpu: list[float] = []
                solvers = Counter[str]()
                for case in chosen:
                    if mode == "fast plan":
                        case = _with(case, {"optimiser_time_cap_s": 0})
                    found, used, solver = time_case(case, args.repeat)
                    timings += found
                    cpu += used
                    solvers[solver] += 1
                timings.sort()
                cpu.sort()
                p95 = timings[math.ceil(0.95 * len(timings)) - 1]
                cpu_p95 = cpu[math.ceil(0.95 * len(cpu)) - 1]
                median = statistics.median(timings)
                medians.setdefault((label, mode), {})[size] = median
                print(
                    f"{size:>5} symbols, {label:<13}, {mode:<9}: median {median:8.1f} ms, "
                    f"p95 {p95:8.1f} ms, max {timings[-1]:8.1f} ms; cpu median "
                    f"{statistics.median(cpu):7.1f} ms, p95 {cpu_p95:7.1f} ms "
                    f"({len(timings)} runs; {dict(solvers)})",
                    flush=True,
                )
    print("growth, time ~ n^k between consecutive sizes (medians):")
    for (label, mode), by_size in medians.items():
        sizes = sorted(by_size)
        slopes = [
            f"{a}->{b}: {math.log(by_size[b] / by_size[a]) / math.log(b / a):.2f}"
            for a, b in pairwise(sizes)
            if by_size[a] > 0
        ]
        print(f"  {label:<13} {mode:<9} " + ", ".join(slopes))


if __name__ == "__main__":
    main()
