"""Client-side rate limits, so we stay under each broker's documented request rates.

Defaults (checked against the brokers' published limits; sources and dates in docs/brokers.md):

* Kite Connect: quote 1 request/s; orders 10/s per account (strict from 1 April 2026, HTTP 429
  beyond), 400/min and 5,000/day; every other endpoint 10/s. A quote takes up to 500 instruments.
* SmartAPI: market quote 10/s and 500/min; orders 10/s per account from 1 April 2026 (the
  exchanges' threshold for unregistered algos; SmartAPI's own endpoint limit is 20/s), 500/min and
  1,000/hour; getHolding, getOrderBook 1/s; getRMS 2/s. A market-quote call takes 50 tokens.

These limiters live in one process. The order limits are per *account*, shared by every lane and
portfolio that trades the account at the same time, across processes: ``SharedOrderLimiter``
(``brokers/shared_limits.py``) enforces them through the history database; the adapters take it
as their ``order_gate``.

Every limit is configurable (``RateLimits`` fields; ``None`` = no limit of that kind), e.g. from the
connection's extra, see ``factory.py``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any, Protocol


@dataclass(frozen=True)
class RateLimits:
    """Requests per second / per minute for each kind of call; None means unlimited."""

    quotes_per_second: float | None = 1
    quotes_per_minute: float | None = None
    orders_per_second: float | None = 10
    orders_per_minute: float | None = 400
    orders_per_hour: float | None = None
    orders_per_day: float | None = 5000  # per IST calendar day (shared limiter only)
    reads_per_second: float | None = 10  # holdings, funds, order book, order status
    reads_per_minute: float | None = None
    quote_batch_size: int = 500  # instruments per quote call

    def with_overrides(self, overrides: dict[str, Any] | None) -> RateLimits:
        """A copy with the given fields replaced; unknown names are an error."""
        if not overrides:
            return self
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(
                f"unknown rate limit setting(s): {', '.join(unknown)}; known: {sorted(known)}"
            )
        return replace(self, **overrides)


ZERODHA_LIMITS = RateLimits()
ANGELONE_LIMITS = RateLimits(
    quotes_per_second=10,
    quotes_per_minute=500,
    orders_per_second=10,
    orders_per_minute=500,
    orders_per_hour=1000,
    orders_per_day=None,
    reads_per_second=1,
    reads_per_minute=None,
    quote_batch_size=50,
)
UNLIMITED = RateLimits(
    quotes_per_second=None,
    quotes_per_minute=None,
    orders_per_second=None,
    orders_per_minute=None,
    orders_per_hour=None,
    orders_per_day=None,
    reads_per_second=None,
    reads_per_minute=None,
    quote_batch_size=10_000,
)


class OrderGate(Protocol):
    """Blocks until one more order (placement or cancellation) may be sent for the account."""

    def acquire(self) -> float:
        """Wait for a slot; return the seconds waited. May raise OrderRejected (a daily cap)."""
        ...


class RateLimiter:
    """A sliding-window limiter: at most ``per_second`` calls in any second and ``per_minute``
    in any minute. ``acquire()`` blocks (sleeps) until a call is allowed. Thread-safe."""

    def __init__(
        self,
        per_second: float | None,
        per_minute: float | None = None,
        per_hour: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._windows: list[tuple[float, int]] = []
        if per_second:
            self._windows.append((1.0, max(1, int(per_second))))
        if per_minute:
            self._windows.append((60.0, max(1, int(per_minute))))
        if per_hour:
            self._windows.append((3600.0, max(1, int(per_hour))))
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    def acquire(self) -> float:
        """Wait until a call is allowed; return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                horizon = max((w for w, _ in self._windows), default=0.0)
                while self._calls and self._calls[0] <= now - horizon:
                    self._calls.popleft()
                delay = 0.0
                for window, limit in self._windows:
                    recent = [t for t in self._calls if t > now - window]
                    if len(recent) >= limit:
                        delay = max(delay, recent[-limit] + window - now)
                if delay <= 0:
                    self._calls.append(now)
                    return waited
            self._sleep(delay)
            waited += delay


class BrokerLimiters:
    """The three limiters of one broker account: quotes, orders, other reads."""

    def __init__(
        self,
        limits: RateLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limits = limits
        self.quotes = RateLimiter(
            limits.quotes_per_second, limits.quotes_per_minute, clock=clock, sleep=sleep
        )
        self.orders = RateLimiter(
            limits.orders_per_second,
            limits.orders_per_minute,
            limits.orders_per_hour,
            clock=clock,
            sleep=sleep,
        )
        self.reads = RateLimiter(
            limits.reads_per_second, limits.reads_per_minute, clock=clock, sleep=sleep
        )


__all__ = [
    "ANGELONE_LIMITS",
    "UNLIMITED",
    "ZERODHA_LIMITS",
    "BrokerLimiters",
    "OrderGate",
    "RateLimiter",
    "RateLimits",
]
