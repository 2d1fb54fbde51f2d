"""One process placing orders on an emulated Kite account: the two-process rate-limit test runs
two of these at the same moment (``python rate_worker.py <json args>``); prints a JSON summary."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main() -> None:
    args = json.loads(sys.argv[1])
    from sqlalchemy import create_engine

    from rebalance.brokers.base import OrderRejected, OrderRequest
    from rebalance.brokers.ratelimit import UNLIMITED, ZERODHA_LIMITS
    from rebalance.brokers.retry import RetryPolicy
    from rebalance.brokers.shared_limits import SharedOrderLimiter
    from rebalance.brokers.tags import order_tag
    from rebalance.brokers.zerodha import ZerodhaBroker
    from rebalance.domain.market import Side

    gate = None
    if args["shared"]:
        engine = create_engine(args["db_url"])
        gate = SharedOrderLimiter(engine, args["account_key"], ZERODHA_LIMITS, broker="zerodha")
    broker = ZerodhaBroker(
        args["api_key"],
        args["access_token"],
        root=args["root"],
        timeout=5.0,
        # The in-process limiter alone would allow 10/s in *each* process.
        limits=UNLIMITED if args["shared"] else ZERODHA_LIMITS,
        retry=RetryPolicy(attempts=1),
        order_gate=gate,
        cache_dir=Path(args["cache_dir"]),
    )
    ids, refused = [], []
    while time.time() < args["start_at"]:
        time.sleep(0.001)
    for n in range(args["count"]):
        tag = order_tag("rate-test", args["name"], n)
        try:
            ids.append(
                broker.place_order(OrderRequest("INFY", "NSE", Side.BUY, 1, tag, price=1890.15))
            )
        except OrderRejected as exc:
            refused.append(str(exc))
        except Exception as exc:  # reported to the test, which fails on it
            refused.append(f"{type(exc).__name__}: {exc}")
    print(json.dumps({"ids": ids, "refused": refused}))


if __name__ == "__main__":
    main()
