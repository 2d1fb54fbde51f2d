"""10 orders a second per account, across processes: two processes place 30 orders each on one
account at the same moment, through the real kiteconnect client, against the strict emulator.

The shared limiter (Postgres) keeps the emulator at <= 10 orders in any one second, and nothing
is lost or sent twice. Without it, each process's own limiter allows 10/s and the emulator
refuses the excess with HTTP 429 (the control test), so the first test can fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from rebalance.brokers.base import OrderRejected
from rebalance.brokers.ratelimit import RateLimits
from rebalance.brokers.shared_limits import SharedOrderLimiter, account_key
from rebalance.testing.emulators import KiteEmulator

WORKER = Path(__file__).with_name("rate_worker.py")


def run_two(
    kite: KiteEmulator, db_url: str, tmp_path: Path, *, shared: bool, count: int
) -> list[Any]:
    start_at = time.time() + 3.0  # both start at the same moment, after their imports
    procs = []
    for name in ("lane-a", "lane-b"):
        args = {
            "name": name,
            "shared": shared,
            "db_url": db_url,
            "account_key": account_key("zerodha", "ZX1234"),
            "api_key": kite.api_key,
            "access_token": kite.access_token,
            "root": kite.url,
            "cache_dir": str(tmp_path / name),
            "start_at": start_at,
            "count": count,
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(WORKER), json.dumps(args)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_two_processes_share_ten_orders_a_second(history_db: str, tmp_path: Path) -> None:
    with KiteEmulator() as kite:
        results = run_two(kite, history_db, tmp_path, shared=True, count=30)
        ids = [i for r in results for i in r["ids"]]
        refused = [m for r in results for m in r["refused"]]
        peak = kite.max_orders_in_one_second()
        print(f"\nmax orders seen by the emulator in any one second: {peak}")
        assert refused == []
        assert peak <= 10
        assert kite.orders_refused_for_rate == 0
        assert len(ids) == len(set(ids)) == 60  # nothing lost
        assert len(kite.orders) == 60
        assert sorted(kite.orders_by_tag.values()) == [1] * 60  # nothing sent twice
        arrivals = sorted(kite.order_arrivals)
        assert arrivals[-1] - arrivals[0] >= 5.0  # 60 orders at 10/s take at least 5 s


def test_control_without_the_shared_limiter_the_broker_refuses(
    history_db: str, tmp_path: Path
) -> None:
    with KiteEmulator() as kite:
        results = run_two(kite, history_db, tmp_path, shared=False, count=15)
        refused = [m for r in results for m in r["refused"]]
        print(
            f"\nwithout the shared limiter: max {kite.max_orders_in_one_second()} in one second, "
            f"{kite.orders_refused_for_rate} refused with 429"
        )
        assert kite.orders_refused_for_rate > 0
        assert kite.max_orders_in_one_second() > 10
        assert refused  # the 429s surfaced as unknown outcomes / refusals in the lanes


def test_daily_cap_refuses_instead_of_waiting(history_db: str) -> None:
    engine = create_engine(history_db)
    limits = RateLimits(orders_per_second=None, orders_per_minute=None, orders_per_day=3)
    gate = SharedOrderLimiter(engine, account_key("zerodha", "ZX9"), limits, broker="zerodha")
    for _ in range(3):
        assert gate.acquire() == 0.0
    with pytest.raises(OrderRejected, match="daily cap of 3 orders"):
        gate.acquire()
    other = SharedOrderLimiter(engine, account_key("zerodha", "ZX8"), limits, broker="zerodha")
    assert other.acquire() == 0.0  # another account has its own budget
    engine.dispose()


def test_per_second_window_waits_by_the_database_clock(history_db: str) -> None:
    engine = create_engine(history_db)
    limits = RateLimits(orders_per_second=2, orders_per_minute=None, orders_per_day=None)
    slept: list[float] = []
    gate = SharedOrderLimiter(
        engine,
        account_key("angelone", "A1"),
        limits,
        sleep=lambda s: (slept.append(s), time.sleep(s)),
    )
    assert gate.acquire() == 0.0
    assert gate.acquire() == 0.0
    waited = gate.acquire()
    window = 1.0 + gate.margin  # one second, widened against jitter
    assert window - 0.2 < waited <= window + 0.1  # until the first send leaves the window
    assert slept
    engine.dispose()
