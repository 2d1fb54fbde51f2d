"""The approval rules: the decisions, the auto-approval rule and the approval deadline; asking
for a decision and recording it on the run.

No Airflow: the ``approval`` task (``approval_operator.py``) reaches ``request_approval`` and
``record_decision`` through the task bodies (``tasks.py``), which hand in the lane's values. No
answer by the deadline means the plan expired: recorded, nothing ordered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from rebalance.domain.market import IST
from rebalance.portfolio import ApprovalMode, Execution, ExecutionMode

if TYPE_CHECKING:  # the store pulls in drift and planning (pandas): not at DAG parse time
    from rebalance.history.records import RunRecord
    from rebalance.history.store import HistoryStore

log = logging.getLogger(__name__)

# What the approval task returns to place_orders (its XCom): run id, plan hash, decision.
Decided = dict[str, int | str | None]


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


@dataclass(frozen=True)
class ApprovalRequest:
    """Either a decision made without a person, or what to show the person and until when."""

    decided: Decided | None = None
    refused: str | None = None  # already rejected or expired: the lane stops, nothing ordered
    subject: str | None = None
    preview: str | None = None
    deadline: datetime | None = None


def request_approval(
    store: HistoryStore,
    run_id: int,
    *,
    execution: Execution,
    mode: ExecutionMode,
    portfolio_name: str,
    account: str,
    preview: Callable[[RunRecord], str],
    now: datetime | None = None,
) -> ApprovalRequest:
    """Approve automatically where the rules allow; otherwise ask (status awaiting_approval)
    with the plan's ``preview`` (rendered once the run is awaiting approval)."""
    from rebalance.history.status import RunStatus  # lazily: the DAG files import this module

    run = store.run(run_id)
    status = run.run_status
    if status is RunStatus.APPROVED:  # a retry after the decision was recorded
        return ApprovalRequest(decided={"run": run_id, "plan_hash": run.plan_hash})
    if status in (RunStatus.REJECTED, RunStatus.EXPIRED):  # a retry after a final "no"
        return ApprovalRequest(refused=f"plan {status}: {run.status_reason}")
    turnover, trades = run.turnover_pct or 0.0, run.trades or 0
    automatic = decide_automatically(execution, mode, turnover, trades)
    if automatic is not None:
        decided = record_decision(store, run_id, automatic, by="rebalance", account=account)
        return ApprovalRequest(decided=decided)
    store.transition(run_id, RunStatus.AWAITING_APPROVAL, "waiting for a person's approval")
    text = preview(run)
    subject = (
        f"Approve rebalance of {portfolio_name} ({account}): {run.trades} orders, "
        f"turnover {run.turnover_pct:.2f}%"
    )
    deadline = approval_deadline(now or datetime.now(UTC), execution, mode)
    return ApprovalRequest(subject=subject, preview=text, deadline=deadline)


def record_decision(
    store: HistoryStore, run_id: int, decision: Decision, *, by: str | None, account: str
) -> Decided:
    """Record an approval decision on the run and return what place_orders needs."""
    from rebalance.history.status import RunStatus

    plan_hash = store.run(run_id).plan_hash
    fields = {"approval_decision": str(decision), "approved_by": by, "approved_at": _utcnow()}
    who = by or "unknown"
    if decision in (Decision.AUTO, Decision.APPROVED, Decision.NOT_NEEDED):
        store.transition(run_id, RunStatus.APPROVED, f"{decision} by {who}", **fields)
    elif decision is Decision.REJECTED:
        store.transition(run_id, RunStatus.REJECTED, f"rejected by {who}", **fields)
    else:
        store.transition(run_id, RunStatus.EXPIRED, "no answer by the approval deadline", **fields)
    log.info("%s: plan %s %s by %s", account, (plan_hash or "")[:12], decision, by)
    return {"run": run_id, "plan_hash": plan_hash, "decision": str(decision)}


def _utcnow() -> datetime:
    return datetime.now(UTC)
