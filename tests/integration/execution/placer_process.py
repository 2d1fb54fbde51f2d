"""A placement in a process of its own, killed with SIGKILL at a checkpoint (the fault tests).

Run as ``python placer_process.py '<json>'``: the history database URL, the Kite emulator's URL
and credentials, the run, the approved hash, the execution settings and where to die
(``{"point": "before_send", "leg": 0}``). Nothing is cleaned up on the way out, exactly as when
a worker is killed: the placement lock goes with the process's database connection.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any


def main(spec: dict[str, Any]) -> None:
    from sqlalchemy import create_engine

    from rebalance.brokers.ratelimit import RateLimits
    from rebalance.brokers.retry import RetryPolicy
    from rebalance.brokers.zerodha import ZerodhaBroker
    from rebalance.execution import ExecutionSettings, place_approved
    from rebalance.history.store import HistoryStore

    kill = spec["kill"]

    def checkpoint(name: str, info: Mapping[str, Any]) -> None:
        if name == kill["point"] and kill.get("leg") in (None, info.get("leg")):
            os.kill(os.getpid(), signal.SIGKILL)

    kite = spec["kite"]
    broker = ZerodhaBroker(
        kite["api_key"],
        kite["access_token"],
        root=kite["url"],
        timeout=0.5,
        default_market_protection=None,  # an unpriced order would be refused: every send is priced
        limits=RateLimits(orders_per_second=None, orders_per_minute=None, reads_per_second=None),
        retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05, rate_limited_min_delay=0.01),
    )
    valid_until = spec.get("valid_until")
    place_approved(
        HistoryStore(create_engine(spec["db_url"])),
        spec["run"],
        broker,
        approved_hash=spec["approved_hash"],
        tag_seed=spec["tag_seed"],
        account=spec["account"],
        settings=ExecutionSettings(**spec["settings"]),
        valid_until=datetime.fromisoformat(valid_until) if valid_until else None,
        checkpoint=checkpoint,
    )


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
