"""Retries for reads only: backoff with full jitter on TemporaryBrokerError (network, 5xx, 429).

Order placement never goes through here: an order whose outcome is unknown is settled by reading
the order book and matching our tag (``execution.py``), never by sending it again.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from rebalance.brokers.base import RateLimited, TemporaryBrokerError

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` in all (1 = no retry); delays in seconds, doubled each time, capped."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    rate_limited_min_delay: float = 1.0  # after a 429, wait at least a full rate window

    def delay(self, attempt: int, error: Exception, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max_delay, base * 2**attempt)]."""
        cap = min(self.max_delay, self.base_delay * (2**attempt))
        delay = rng.uniform(0, cap)
        if isinstance(error, RateLimited):
            delay = max(delay, min(self.rate_limited_min_delay, self.max_delay))
        return delay


NO_RETRY = RetryPolicy(attempts=1)


def retry_read(
    call: Callable[[], T],
    *,
    what: str,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Run the read ``call``; on TemporaryBrokerError wait and try again, up to policy.attempts.

    Any other error (AuthError, BadResponse, ...) is raised at once: retrying cannot fix it.
    """
    rng = rng or random.Random()
    for attempt in range(policy.attempts):
        try:
            return call()
        except TemporaryBrokerError as exc:
            if attempt + 1 >= policy.attempts:
                raise
            delay = policy.delay(attempt, exc, rng)
            log.warning(
                "%s failed (%s); retry %d of %d in %.1fs",
                what,
                exc,
                attempt + 1,
                policy.attempts - 1,
                delay,
            )
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


__all__ = ["NO_RETRY", "RetryPolicy", "retry_read"]
