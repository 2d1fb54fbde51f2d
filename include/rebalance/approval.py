"""Approving a plan: the auto-approval rule, the approval deadline, and the approval task.

``decide_automatically`` and ``approval_deadline`` are plain functions; ``PlanApprovalOperator``
is Airflow's human-in-the-loop ApprovalOperator with the plan preview as its body: a person
approves or rejects it in the task's Required Actions (or with ``rebalance approve``). No answer
by the deadline means the plan expired: recorded, nothing ordered.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.exceptions import AirflowSkipException

from rebalance.portfolio import ApprovalMode, Execution, ExecutionMode
from rebalance.schedule import IST


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


class PlanApprovalOperator(ApprovalOperator):
    """The ``approval`` task of a lane: auto-approve, or ask a person with the plan preview."""

    def __init__(self, *, portfolio_file: str, account: str, **kwargs: Any) -> None:
        super().__init__(
            subject="Approve rebalance", body="(the plan preview appears here)", **kwargs
        )
        self.portfolio_file = portfolio_file
        self.account = account

    def execute(self, context: Any) -> Any:
        from rebalance import tasks

        lane = tasks.Lane.from_context(context, self.portfolio_file, self.account)
        store = tasks.history_store()
        request = tasks.request_approval(lane, store)
        if request.decided is not None:
            return request.decided
        if request.refused is not None:
            raise AirflowSkipException(request.refused)
        assert request.deadline is not None
        assert request.preview is not None
        assert request.subject is not None
        remaining = request.deadline - datetime.now(request.deadline.tzinfo)
        if remaining <= timedelta(0):
            tasks.record_decision(lane, store, Decision.EXPIRED, by=None)
            raise AirflowSkipException(
                "approval deadline already passed: plan expired, nothing ordered"
            )
        if context["ti"].try_number > 1 and (answer := self._earlier_answer(context)) is not None:
            return self.execute_complete(context, answer)
        self.subject = request.subject
        self.body = request.preview
        self.response_timeout = remaining
        return super().execute(context)

    @staticmethod
    def _earlier_answer(context: Any) -> dict[str, Any] | None:
        """A person's answer to an earlier try of this task, if Airflow lost its resumption.

        Airflow 3.3 can fail a parked task that was answered within a scheduler loop of parking
        (the executor's late "finished" event for the parked process wins a race with the
        resume). The answer survives on the retry's request (Airflow moves it to the new try and
        clears it only when the request is made again), so it is read here before asking again.
        """
        from airflow.sdk.exceptions import AirflowRuntimeError
        from airflow.sdk.execution_time.hitl import get_hitl_detail_content_detail

        try:
            earlier = get_hitl_detail_content_detail(context["ti"].id)
        except AirflowRuntimeError:  # no earlier request for this task instance
            return None
        if not earlier.response_received or not earlier.chosen_options:
            return None
        user = earlier.responded_by_user
        return {
            "chosen_options": list(earlier.chosen_options),
            "params_input": earlier.params_input,
            "responded_at": earlier.responded_at,
            "responded_by_user": user.model_dump() if user is not None else None,
        }

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from rebalance import tasks

        lane = tasks.Lane.from_context(context, self.portfolio_file, self.account)
        store = tasks.history_store()
        if "error" in event:
            if event.get("error_type") == "timeout":
                tasks.record_decision(lane, store, Decision.EXPIRED, by=None)
                raise AirflowSkipException("no answer by the approval deadline: plan expired")
            raise RuntimeError(f"approval failed: {event['error']}")
        chosen = event["chosen_options"][0]
        user = event.get("responded_by_user") or {}
        by = user.get("name") or user.get("id") if isinstance(user, dict) else str(user)
        if chosen == self.APPROVE:
            return tasks.record_decision(lane, store, Decision.APPROVED, by=by)
        tasks.record_decision(lane, store, Decision.REJECTED, by=by)
        raise AirflowSkipException(f"plan rejected by {by or 'a user'}: nothing ordered")
