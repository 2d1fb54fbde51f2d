"""The approval rules: when no person is needed, and when an unanswered plan expires."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from rebalance.approval import Decision, approval_deadline, decide_automatically
from rebalance.portfolio import ApprovalMode, Execution, ExecutionMode
from rebalance.preview import render_preview

IST = ZoneInfo("Asia/Kolkata")
AUTO = Execution(approval=ApprovalMode.AUTO)
MANUAL = Execution(approval=ApprovalMode.MANUAL)
CAPPED = Execution(approval=ApprovalMode.AUTO, auto_approve_max_turnover_pct=10)


@pytest.mark.parametrize(
    ("execution", "mode", "turnover", "trades", "expected"),
    [
        (AUTO, ExecutionMode.PAPER, 25.0, 4, Decision.AUTO),
        (MANUAL, ExecutionMode.LIVE, 5.0, 4, None),
        (MANUAL, ExecutionMode.DRY_RUN, 5.0, 4, Decision.NOT_NEEDED),  # nothing will be ordered
        (MANUAL, ExecutionMode.LIVE, 0.0, 0, Decision.NOT_NEEDED),  # an empty plan
        (CAPPED, ExecutionMode.LIVE, 9.99, 3, Decision.AUTO),
        (CAPPED, ExecutionMode.LIVE, 10.0, 3, Decision.AUTO),
        (CAPPED, ExecutionMode.LIVE, 10.01, 3, None),  # above the limit: a person decides
    ],
)
def test_decide_automatically(
    execution: Execution,
    mode: ExecutionMode,
    turnover: float,
    trades: int,
    expected: Decision | None,
) -> None:
    assert decide_automatically(execution, mode, turnover, trades) == expected


def test_live_runs_expire_at_the_cutoff_of_the_day() -> None:
    morning = datetime(2026, 11, 30, 10, 0, tzinfo=IST)
    assert approval_deadline(morning, MANUAL, ExecutionMode.LIVE) == datetime(
        2026, 11, 30, 15, 25, tzinfo=IST
    )


def test_a_live_request_after_the_cutoff_expires_at_once() -> None:
    evening = datetime(2026, 11, 30, 16, 0, tzinfo=IST)
    assert approval_deadline(evening, MANUAL, ExecutionMode.LIVE) == evening


def test_the_cutoff_is_read_in_ist_whatever_the_clock_zone() -> None:
    utc_morning = datetime(2026, 11, 30, 4, 30, tzinfo=ZoneInfo("UTC"))  # 10:00 IST
    execution = Execution(approval_cutoff=time(15, 0))
    deadline = approval_deadline(utc_morning, execution, ExecutionMode.LIVE)
    assert deadline == datetime(2026, 11, 30, 15, 0, tzinfo=IST)


def test_paper_runs_get_the_timeout_instead() -> None:
    night = datetime(2026, 11, 30, 23, 0, tzinfo=IST)
    execution = Execution(approval_timeout_minutes=45)
    assert approval_deadline(night, execution, ExecutionMode.PAPER) == night + timedelta(minutes=45)


def test_preview_lists_orders_weights_and_the_hash() -> None:
    plan = {
        "orders": [
            {
                "side": "SELL",
                "symbol": "INFY",
                "quantity": 12,
                "price": 1890.15,
                "notional": 22681.8,
                "charges": 27.4,
                "reasons": ["drift", "budget_scaled"],
            },
        ],
        "positions": [
            {
                "symbol": "INFY",
                "weight_before": 0.151,
                "target_weight": 0.10,
                "weight_after": 0.133,
                "skipped": [],
            },
            {
                "symbol": "TCS",
                "weight_before": 0.095,
                "target_weight": 0.10,
                "weight_after": 0.095,
                "skipped": ["inside_band"],
            },
        ],
        "summary": {
            "portfolio_value": 1_185_953.45,
            "turnover_pct": 1.91,
            "budget_used_pct": 19.1,
            "max_drift_before": 0.051,
            "max_drift_after": 0.033,
            "estimated_charges": 27.4,
        },
    }
    text = render_preview(
        plan, portfolio_name="Demo", account="paper", mode="live", plan_hash="ab" * 32
    )
    assert "| SELL | INFY | 12 | 1,890.15 | 22,681.80 | 27.40 | drift, budget_scaled |" in text
    assert "| TCS | 9.50% | 10.00% | 9.50% | inside_band |" in text
    assert "₹1,185,953.45" in text
    assert "abababababababab" in text
