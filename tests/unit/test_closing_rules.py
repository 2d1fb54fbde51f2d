"""record_run's closing rules and the books a lane settles: pure, no Postgres, no broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rebalance.execution import Closing, closing, stale_books
from rebalance.history.status import RunStatus
from rebalance.portfolio import BrokerName, ExecutionMode

NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # 13:30 IST


def test_an_approved_run_still_valid_is_interrupted_and_resumable_until_the_cutoff() -> None:
    until = NOW + timedelta(hours=1)
    close = closing(RunStatus.APPROVED, 9, dry_run=False, valid_until=until, now=NOW)
    assert close == Closing(
        RunStatus.INTERRUPTED,
        "place_orders stopped before sending anything; `rebalance resume 9` places the "
        "approved plan until 14:30 IST",
        {"valid_until": until.isoformat()},
    )


@pytest.mark.parametrize(
    ("dry_run", "valid_until"),
    [(True, NOW + timedelta(hours=1)), (False, None), (False, NOW), (False, NOW - timedelta(1))],
)
def test_an_approved_run_past_its_validity_or_dry_fails_naming_place_orders(
    dry_run: bool, valid_until: datetime | None
) -> None:
    close = closing(RunStatus.APPROVED, 9, dry_run=dry_run, valid_until=valid_until, now=NOW)
    assert close is not None
    assert close.status is RunStatus.FAILED
    assert (
        close.reason == "stopped at place_orders (the run was approved); that task's log says why"
    )


@pytest.mark.parametrize("status", [RunStatus.PLACED, RunStatus.PARTIALLY_FILLED])
def test_a_placed_run_is_completed(status: RunStatus) -> None:
    assert closing(status, 9, dry_run=False, valid_until=None, now=NOW) == Closing(
        RunStatus.COMPLETED, None
    )


def test_a_final_run_is_left_alone_and_an_early_stop_names_its_task() -> None:
    for final in (RunStatus.FAILED, RunStatus.REJECTED, RunStatus.INTERRUPTED, RunStatus.SKIPPED):
        assert closing(final, 9, dry_run=False, valid_until=None, now=NOW) is None
    close = closing(RunStatus.STARTED, 9, dry_run=False, valid_until=None, now=NOW)
    assert close is not None
    assert close.reason is not None
    assert close.reason.startswith("stopped at fetch_holdings or validate_snapshot")


def test_the_books_a_lane_settles_stale_runs_from() -> None:
    assert stale_books(BrokerName.PAPER, ExecutionMode.LIVE) == [str(m) for m in ExecutionMode]
    assert stale_books(BrokerName.ZERODHA, ExecutionMode.PAPER) == ["paper"]
    assert stale_books(BrokerName.ANGELONE, ExecutionMode.DRY_RUN) == ["live"]
    assert stale_books(BrokerName.ZERODHA, ExecutionMode.LIVE) == ["live"]
