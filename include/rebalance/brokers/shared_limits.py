"""The order rate limits of one broker account, shared by every process through Postgres.

Since 1 April 2026 a broker account may receive at most 10 orders a second (HTTP 429 beyond),
and Kite caps it at 400 a minute and 5,000 a day, SmartAPI at 500 a minute and 1,000 an hour.
Every lane and portfolio trading the same account counts against the same budget, and lanes run
in separate processes, so an in-process limiter is not enough.

``SharedOrderLimiter.acquire()`` runs one short transaction:

1. ``pg_advisory_xact_lock`` on the account: the processes of one account queue here, so the
   check and the insert below are atomic across processes (other accounts are not blocked);
2. count the account's sends in each window (``broker_order_sends``, by the database's clock:
   one clock for every process);
3. if a window is full, commit (releasing the lock), sleep until the oldest send in it leaves the
   window, and try again; else insert this send's time and commit.

A send is recorded when its slot is granted, just before the HTTP request. Windows are widened by
``margin_seconds`` (default 0.25 s) so that jitter between the slot and the request's arrival
(a loaded worker, the network) cannot crowd 11 requests into one second at the broker: with 0.1 s
a loaded 2-core machine once let 11 arrive within a second at the emulator. The daily cap counts
the IST calendar day and refuses (``OrderRejected``) rather than waits: waiting for tomorrow is
never what a run wants.

The account key is a hash of the broker and the client identity, so no identifier or credential
is stored (``account_key``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select, text

from rebalance.brokers.base import OrderRejected
from rebalance.brokers.ratelimit import RateLimits
from rebalance.domain.market import IST
from rebalance.history.tables import order_sends

_KEEP = timedelta(days=2)  # rows older than this are deleted as new ones arrive


def account_key(broker: str, identity: str) -> str:
    """A stable, non-reversible key for one broker account (32 hex characters)."""
    if not broker or not identity:
        raise ValueError("account_key needs a broker and a client identity")
    return hashlib.sha256(f"{broker}\x1f{identity}".encode()).hexdigest()[:32]


class SharedOrderLimiter:
    """``OrderGate`` for one broker account, shared across processes through the history DB."""

    def __init__(
        self,
        engine: Engine,
        key: str,
        limits: RateLimits,
        *,
        broker: str = "",
        margin_seconds: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine = engine
        self.key = key
        self.broker = broker
        self.margin = margin_seconds
        self._sleep = sleep
        self.windows: list[tuple[float, int]] = [
            (seconds + margin_seconds, int(limit))
            for seconds, limit in (
                (1.0, limits.orders_per_second),
                (60.0, limits.orders_per_minute),
                (3600.0, limits.orders_per_hour),
            )
            if limit
        ]
        self.per_day = int(limits.orders_per_day) if limits.orders_per_day else None
        # pg_advisory_xact_lock takes a signed bigint.
        digest = hashlib.sha256(f"orders:{key}".encode()).digest()
        self._lock_id = int.from_bytes(digest[:8], "big", signed=True)

    def acquire(self) -> float:
        waited = 0.0
        while True:
            delay = self._try_once()
            if delay <= 0:
                return waited
            self._sleep(delay)
            waited += delay

    def _try_once(self) -> float:
        """Record a send and return 0, or return the seconds to wait before trying again."""
        with self.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": self._lock_id})
            now: datetime = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
            delay = 0.0
            for window, limit in self.windows:
                # The limit-th most recent send inside the window, if the window is full.
                edge = conn.execute(
                    select(order_sends.c.sent_at)
                    .where(order_sends.c.account_key == self.key)
                    .where(order_sends.c.sent_at > now - timedelta(seconds=window))
                    .order_by(order_sends.c.sent_at.desc())
                    .offset(limit - 1)
                    .limit(1)
                ).scalar()
                if edge is not None:
                    delay = max(delay, (edge + timedelta(seconds=window) - now).total_seconds())
            if delay > 0:
                return delay + 0.001
            if self.per_day is not None:
                start = now.astimezone(IST).replace(hour=0, minute=0, second=0, microsecond=0)
                sent_today = conn.execute(
                    select(func.count())
                    .select_from(order_sends)
                    .where(order_sends.c.account_key == self.key)
                    .where(order_sends.c.sent_at >= start)
                ).scalar_one()
                if sent_today >= self.per_day:
                    raise OrderRejected(
                        self.broker or "broker",
                        f"the account's daily cap of {self.per_day} orders is reached "
                        f"({sent_today} sent since midnight IST); not sent",
                    )
            conn.execute(order_sends.insert().values(account_key=self.key, sent_at=now))
            conn.execute(
                order_sends.delete()
                .where(order_sends.c.account_key == self.key)
                .where(order_sends.c.sent_at < now - _KEEP)
            )
            return 0.0


__all__ = ["SharedOrderLimiter", "account_key"]
