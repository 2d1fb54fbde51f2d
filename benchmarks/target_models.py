"""Target model speed: each model at 50 and 500 symbols on a year of synthetic daily closes.

Run by hand (not a test):  .venv/bin/python benchmarks/target_models.py [--repeat 5] [--seed 5]

Prices follow a one-factor model (market beta 0.5-1.5, idiosyncratic daily vol 1-3%) so the
covariance is realistic: correlated, full rank at 50 symbols, 500 symbols on 252 days (more
symbols than days) only with shrinkage. Reported: the first call in a fresh process (includes
importing skfolio / scikit-learn / cvxpy, what a task pays once) and the median of ``repeat``
warm calls. The price checks are timed too: the pure ``check_price_history`` and the Great
Expectations price suite the target_model task runs before a risk model.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from rebalance.quality import check_price_history_quality
from rebalance.targets.config import CovarianceEstimator, ScoreWeighting
from rebalance.targets.models import (
    inverse_volatility_weights,
    risk_parity_weights,
    score_weights,
)
from rebalance.targets.prices import check_price_history

LOOKBACK = 252


def synthetic_prices(rng: np.random.Generator, size: int, days: int = LOOKBACK + 1) -> pd.DataFrame:
    market = rng.normal(0.0004, 0.01, size=days - 1)
    beta = rng.uniform(0.5, 1.5, size=size)
    own = rng.normal(0.0, 1.0, size=(days - 1, size)) * rng.uniform(0.01, 0.03, size=size)
    returns = market[:, None] * beta + own
    closes = 100.0 * np.vstack([np.ones(size), np.cumprod(1.0 + returns, axis=0)])
    index = [d.date() for d in pd.bdate_range("2025-11-03", periods=days)]
    return pd.DataFrame(closes, index=index, columns=[f"S{i:03d}" for i in range(size)])


def timed(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(first call, median of warm calls) in milliseconds."""
    start = time.perf_counter()
    run()
    first = (time.perf_counter() - start) * 1000.0
    warm = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        warm.append((time.perf_counter() - start) * 1000.0)
    return first, statistics.median(warm)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"{'model':<40} {'symbols':>7} {'first ms':>10} {'warm ms':>10}")
    for size in (50, 500):
        prices = synthetic_prices(rng, size)
        scores = dict(zip(prices.columns, rng.normal(size=size), strict=True))
        cap = max(0.1, 2.0 / size)
        runs: dict[str, Callable[[], object]] = {
            "price check": lambda p=prices: check_price_history(p, lookback_days=LOOKBACK),
            "inverse_volatility (cap)": lambda p=prices, c=cap: inverse_volatility_weights(
                p, lookback_days=LOOKBACK, max_weight=c
            ),
            "risk_parity ledoit_wolf": lambda p=prices: risk_parity_weights(
                p, lookback_days=LOOKBACK, covariance=CovarianceEstimator.LEDOIT_WOLF
            ),
            "risk_parity ledoit_wolf (cap)": lambda p=prices, c=cap: risk_parity_weights(
                p, lookback_days=LOOKBACK, covariance=CovarianceEstimator.LEDOIT_WOLF, max_weight=c
            ),
            "scores top 20 equal (cap 10%)": lambda s=scores: score_weights(
                s, top_n=20, weighting=ScoreWeighting.EQUAL, max_weight=0.1
            ),
            # What the target_model task runs before a risk model (GX import in the first call).
            "GX price suite": lambda p=prices: check_price_history_quality(
                p,
                lookback_days=LOOKBACK,
                trading_days=list(p.index),
                max_stale_days=3,
                max_missing_days=0,
                split_jump_pct=30.0,
            ),
        }
        for label, run in runs.items():
            first, warm = timed(run, args.repeat)
            print(f"{label:<40} {size:>7} {first:>10.1f} {warm:>10.1f}")
        if size == 50:
            sample = lambda p=prices: risk_parity_weights(  # noqa: E731 - a local thunk
                p, lookback_days=LOOKBACK, covariance=CovarianceEstimator.SAMPLE
            )
            first, warm = timed(sample, args.repeat)
            print(f"{'risk_parity sample':<40} {size:>7} {first:>10.1f} {warm:>10.1f}")


if __name__ == "__main__":
    main()
