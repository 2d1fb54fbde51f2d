"""The approval rules: the decisions, the auto-approval rule and the approval deadline.

Plain functions, no Airflow: the ``approval`` task (``approval_operator.py``) and the task bodies
(``tasks.request_approval``, ``tasks.record_decision``) use them. No answer by the deadline means
the plan expired: recorded, nothing ordered.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from rebalance.domain.market import IST
from rebalance.portfolio import ApprovalMode, Execution, ExecutionMode


class Decision(StrEnum):
    AUTO = "auto"  # approved by the portfolio's rule
    NOT_NEEDED = "not_needed"  # dry run or no orders: nothing will be ordered
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


def decide_automatically(
    execution: Execution, mode: ExecutionMode, turnover_pct: float, trades: int
) -> Decision | None:
    """The decision that needs no person, or None when a person must approve.

    A dry run or an empty plan orders nothing, so it needs no approval. ``approval: auto`` approves
    at once, but only while turnover stays within ``auto_approve_max_turnover_pct`` (if set):
    a bigger plan goes to a person instead.
    """
    if mode is ExecutionMode.DRY_RUN or trades == 0:
        return Decision.NOT_NEEDED
    if execution.approval is ApprovalMode.AUTO:
        limit = execution.auto_approve_max_turnover_pct
        if limit is None or turnover_pct <= limit:
            return Decision.AUTO
    return None


def approval_deadline(now: datetime, execution: Execution, mode: ExecutionMode) -> datetime:
    """When an unanswered approval expires.

    Live orders must be approved by ``approval_cutoff`` (IST) of the day the run asks, before
    market close; a request made after it expires at once. Paper runs are not tied to market
    hours and get ``approval_timeout_minutes`` instead.
    """
    if mode is ExecutionMode.LIVE:
        local = now.astimezone(IST)
        cutoff = datetime.combine(local.date(), execution.approval_cutoff, tzinfo=IST)
        return max(cutoff, now)
    return now + timedelta(minutes=execution.approval_timeout_minutes)


def approval_valid_until(
    mode: ExecutionMode,
    execution: Execution,
    asked_at: datetime,
    approved_at: datetime | None,
) -> datetime | None:
    """Until when a run's approval allows sending its legs (a retry, a resume).

    live: the approval cut-off (IST) of the day the plan was approved; paper: the approval
    timeout counted from the approval request (``asked_at``: when the plan was made). Dry runs
    send nothing: None.
    """
    if mode is ExecutionMode.DRY_RUN:
        return None
    if mode is ExecutionMode.LIVE:
        day = (approved_at or asked_at).astimezone(IST).date()
        return datetime.combine(day, execution.approval_cutoff, tzinfo=IST)
    return asked_at + timedelta(minutes=execution.approval_timeout_minutes)
