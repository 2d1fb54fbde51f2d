"""Fixtures for the placement fault tests: the emulators with the real adapters, an approved run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest

from rebalance.brokers.ratelimit import RateLimits
from rebalance.brokers.retry import RetryPolicy
from rebalance.domain.market import IST, Side
from rebalance.execution import ExecutionSettings, legs_of
from rebalance.history.status import RunStatus
from rebalance.history.store import HistoryStore, RunKey
from rebalance.plan import PlannedOrder, PlanSummary, TradePlan
from rebalance.testing.emulators import KiteEmulator, SmartApiEmulator

# Short timings: a test's placement ends in a few seconds at most.
FAST = ExecutionSettings(
    deadline_seconds=3.0,
    poll_seconds=0.05,
    sell_wait_seconds=2.0,
    resend_grace_seconds=0.4,
    max_send_attempts=3,
    lock_wait_seconds=20.0,
)
# Quotes too: AngelOne quotes before sending a protected market order as a limit (2026 rules).
LIMITS = RateLimits(
    quotes_per_second=None, orders_per_second=None, orders_per_minute=None, reads_per_second=None
)
RETRY = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05, rate_limited_min_delay=0.01)
CLIENT_TIMEOUT = 0.5  # seconds: below the emulators' timeout_delay (1.0 in these tests)


def make_plan(cash_before: float | None = None, extra_buy: bool = True) -> TradePlan:
    """Two sells funding two buys (sells sort first: legs 0-1 sell, 2-3 buy)."""
    orders = [
        PlannedOrder("RELIANCE", "NSE", Side.SELL, 10, 1285.40, 12854.0, ("drift",), 15.0),
        PlannedOrder("INFY", "NSE", Side.SELL, 5, 1890.15, 9450.75, ("drift",), 12.0),
        PlannedOrder("ITC", "NSE", Side.BUY, 20, 430.10, 8602.0, ("drift",), 9.0),
    ]
    if extra_buy:
        orders.append(
            PlannedOrder("HDFCBANK", "NSE", Side.BUY, 3, 1742.55, 5227.65, ("drift",), 6.0)
        )
    summary = PlanSummary(
        portfolio_value=500_000.0,
        turnover_pct=7.2,
        budget_used_pct=72.0,
        max_drift_before=0.06,
        max_drift_after=0.01,
        trades=len(orders),
        estimated_charges=42.0,
        cash_before=cash_before,
    )
    return TradePlan(tuple(orders), (), summary)


def approved_run(
    store: HistoryStore,
    plan: TradePlan,
    *,
    dag_id: str = "rebalance_test",
    run_id: str = "scheduled__2026-01-05T15:10:00+05:30",
    account: str = "zerodha_main",
    portfolio_id: str = "test",
    mode: str = "live",
) -> int:
    """A run record as the upstream tasks leave it: planned, then approved."""
    run = store.open_run(
        RunKey(dag_id, run_id, account),
        portfolio_id=portfolio_id,
        portfolio_name=f"Test {portfolio_id}",
        broker="zerodha",
        initiator="scheduled",
        broker_scope=account,
        mode=mode,
        policy={"rebalance_budget_pct": 10},
        targets={"weights": {"RELIANCE": 0.5, "ITC": 0.5}, "cash": 0.0},
    )
    summary = plan.summary
    store.transition(
        run,
        RunStatus.PLANNED,
        f"{summary.trades} orders planned",
        plan=plan.to_dict(),
        plan_hash=plan.plan_hash,
        turnover_pct=summary.turnover_pct,
        max_drift_before=summary.max_drift_before,
        max_drift_after=summary.max_drift_after,
        trades=summary.trades,
    )
    store.transition(run, RunStatus.APPROVED, "approved automatically", approval_decision="auto")
    return run


def clock_at(hour: int, minute: int) -> Callable[[], datetime]:
    """A clock running from today's ``hour:minute`` IST (real seconds pass)."""
    target = datetime.combine(datetime.now(IST).date(), time(hour, minute), tzinfo=IST)
    offset = target - datetime.now(UTC)
    return lambda: datetime.now(UTC) + offset


@dataclass
class Venue:
    """One emulated broker and the real adapter pointed at it."""

    emulator: Any
    broker: Any

    def counts(self, tags: list[str]) -> list[int]:
        return [self.emulator.orders_for_tag(t) for t in tags]


def run_key(
    dag_id: str = "rebalance_test", run_id: str = "scheduled__2026-01-05T15:10:00+05:30"
) -> str:
    return f"{dag_id}/{run_id}"


def tags_of(plan: TradePlan, account: str = "zerodha_main", key: str | None = None) -> list[str]:
    return [str(leg["tag"]) for leg in legs_of(plan, key or run_key(), account)]


def kite_broker(kite: KiteEmulator) -> Any:
    from rebalance.brokers.zerodha import ZerodhaBroker

    return ZerodhaBroker(
        kite.api_key,
        kite.access_token,
        root=kite.url,
        timeout=CLIENT_TIMEOUT,
        limits=LIMITS,
        retry=RETRY,
        sleep=lambda _s: None,
        default_market_protection=None,  # unpriced orders fail loudly: every send is priced
    )


@pytest.fixture
def kite() -> Iterator[Venue]:
    with KiteEmulator() as emulator:
        emulator.faults.timeout_delay = 1.0
        yield Venue(emulator, kite_broker(emulator))


@pytest.fixture
def angel(tmp_path: Path) -> Iterator[Venue]:
    from rebalance.brokers.angelone import AngelOneBroker

    with SmartApiEmulator() as emulator:
        emulator.faults.timeout_delay = 1.0
        broker = AngelOneBroker(
            emulator.api_key,
            emulator.client_code,
            emulator.pin,
            emulator.totp_secret,
            cache_dir=tmp_path / "angel",
            root=emulator.url,
            instrument_master_url=emulator.master_url,
            timeout=CLIENT_TIMEOUT,
            limits=LIMITS,
            retry=RETRY,
            sleep=lambda _s: None,
            default_market_protection=None,  # unpriced orders fail loudly: every send is priced
        )
        yield Venue(emulator, broker)
