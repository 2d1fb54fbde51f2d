"""Order tags, canonical symbols, rate limits and read retries."""

from __future__ import annotations

import random

import pytest

from rebalance.brokers.base import AuthError, BadResponse, RateLimited, TemporaryBrokerError
from rebalance.brokers.ratelimit import ANGELONE_LIMITS, ZERODHA_LIMITS, RateLimiter, RateLimits
from rebalance.brokers.retry import RetryPolicy, retry_read
from rebalance.brokers.symbols import angelone_symbol, canonical, kite_instrument
from rebalance.brokers.tags import is_order_tag, order_tag, tag_belongs_to_run


def test_order_tag_is_deterministic_short_and_alphanumeric() -> None:
    tag = order_tag("demo/2026-01-30T15:10:00+05:30", "zerodha_main", 3)
    assert tag == order_tag("demo/2026-01-30T15:10:00+05:30", "zerodha_main", 3)
    assert len(tag) <= 15
    assert tag.isalnum()
    assert tag.endswith("003")
    assert is_order_tag(tag)
    assert tag_belongs_to_run(tag, "demo/2026-01-30T15:10:00+05:30", "zerodha_main")
    assert not tag_belongs_to_run(tag, "demo/2026-01-30T15:10:00+05:30", "angel_main")


def test_order_tags_differ_by_run_account_and_leg() -> None:
    tags = {
        order_tag(run, account, leg)
        for run in ("run-a", "run-b")
        for account in ("zerodha_main", "angel_main")
        for leg in range(50)
    }
    assert len(tags) == 2 * 2 * 50


@pytest.mark.parametrize("leg", [-1, 1000, True, 1.5])
def test_order_tag_rejects_bad_legs(leg: object) -> None:
    with pytest.raises(ValueError, match="leg"):
        order_tag("run", "acct", leg)  # type: ignore[arg-type]


def test_canonical_symbols() -> None:
    assert canonical("INFY-EQ") == "INFY"
    assert canonical("infy") == "INFY"
    assert canonical("BAJAJ-AUTO") == "BAJAJ-AUTO"  # a hyphen that is part of the name
    assert canonical("BAJAJ-AUTO-EQ") == "BAJAJ-AUTO"
    assert canonical("INFY", "BSE") == "INFY"
    assert angelone_symbol("INFY") == "INFY-EQ"
    assert angelone_symbol("INFY", "BSE") == "INFY"
    assert kite_instrument("INFY-EQ") == "NSE:INFY"


def test_documented_defaults() -> None:
    assert (ZERODHA_LIMITS.quotes_per_second, ZERODHA_LIMITS.orders_per_second) == (1, 10)
    assert ZERODHA_LIMITS.orders_per_minute == 400
    assert ZERODHA_LIMITS.quote_batch_size == 500
    assert (ANGELONE_LIMITS.orders_per_second, ANGELONE_LIMITS.orders_per_minute) == (10, 500)
    assert (ANGELONE_LIMITS.orders_per_hour, ZERODHA_LIMITS.orders_per_day) == (1000, 5000)
    assert ANGELONE_LIMITS.quote_batch_size == 50
    with pytest.raises(ValueError, match="unknown rate limit"):
        ZERODHA_LIMITS.with_overrides({"orders_per_week": 3})
    assert ZERODHA_LIMITS.with_overrides({"orders_per_second": 5}).orders_per_second == 5


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_rate_limiter_per_second_and_per_minute() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, 3, clock=clock, sleep=clock.sleep)
    assert [limiter.acquire() for _ in range(2)] == [0.0, 0.0]
    assert limiter.acquire() == pytest.approx(1.0)  # third call in the same second waits
    assert limiter.acquire() == pytest.approx(59.0)  # fourth call in the minute waits
    assert clock.now == pytest.approx(60.0)


def test_unlimited_limiter_never_waits() -> None:
    clock = FakeClock()
    limiter = RateLimiter(None, None, clock=clock, sleep=clock.sleep)
    assert sum(limiter.acquire() for _ in range(1000)) == 0
    assert RateLimits(None, None, None, None, None, None).quotes_per_second is None


def test_retry_read_retries_temporary_errors_with_jittered_backoff() -> None:
    calls: list[int] = []
    slept: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TemporaryBrokerError("x", "network")
        return "ok"

    policy = RetryPolicy(attempts=4, base_delay=1.0, max_delay=8.0)
    assert retry_read(flaky, what="t", policy=policy, sleep=slept.append, rng=random.Random(1))
    assert len(calls) == 3
    assert len(slept) == 2
    assert 0 <= slept[0] <= 1.0
    assert 0 <= slept[1] <= 2.0


def test_retry_read_waits_at_least_a_second_after_429_and_gives_up() -> None:
    slept: list[float] = []

    def limited() -> None:
        raise RateLimited("x", "429")

    with pytest.raises(RateLimited):
        retry_read(limited, what="t", policy=RetryPolicy(attempts=3), sleep=slept.append)
    assert len(slept) == 2
    assert all(s >= 1.0 for s in slept)


@pytest.mark.parametrize("error", [AuthError("x", "token"), BadResponse("x", "zero price")])
def test_retry_read_does_not_retry_definitive_errors(error: Exception) -> None:
    calls: list[int] = []

    def failing() -> None:
        calls.append(1)
        raise error

    with pytest.raises(type(error)):
        retry_read(failing, what="t", sleep=lambda _s: None)
    assert calls == [1]
