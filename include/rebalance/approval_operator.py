"""The ``approval`` task: Airflow's human-in-the-loop ApprovalOperator with the plan preview.

A person approves or rejects the plan in the task's Required Actions (or with ``rebalance
approve``); the rules (auto-approval, deadline) are ``approval.py``'s. When it starts waiting, the
task tells people (``rebalance.alerts.ApprovalWaitingNotifier``: the task log, and the webhook /
e-mail if configured) with the link and the cut-off in IST. Only the portfolio's
``execution.approvers`` may answer (Airflow's ``assigned_users``: others see the request but the
API refuses their answer); none listed = anyone who may act on the DAG.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.exceptions import AirflowSkipException
from airflow.sdk.execution_time.hitl import HITLUser

from rebalance.alerts import ApprovalWaiting, approval_notifiers, in_ist
from rebalance.approval import ApprovalRequest, Decision
from rebalance.portfolio import Portfolio

if TYPE_CHECKING:
    from rebalance.history.records import RunRecord
    from rebalance.history.store import HistoryStore
    from rebalance.lane import Lane


def request_approval(
    lane: Lane, store: HistoryStore, now: datetime | None = None
) -> ApprovalRequest:
    """The lane's approval (``approval.request_approval``): automatic where the rules allow,
    otherwise what to ask a person, with the plan's preview (``preview_inputs.plan_preview``,
    the broker built only if the preview needs it)."""
    from rebalance import approval
    from rebalance.preview_inputs import plan_preview
    from rebalance.wiring import broker_for

    def preview(run: RunRecord) -> str:
        return plan_preview(
            run,
            portfolio_name=lane.portfolio.name,
            account=lane.account,
            mode=lane.mode,
            broker=lane.account_config.broker,
            tag_seed=lane.tag_seed,
            open_broker=lambda: broker_for(lane, store),
        )

    return approval.request_approval(
        store,
        lane.run_id(store),
        execution=lane.portfolio.execution,
        mode=lane.mode,
        portfolio_name=lane.portfolio.name,
        account=lane.account,
        preview=preview,
        now=now,
    )


def assigned_users(approvers: Sequence[str]) -> list[HITLUser] | None:
    """Airflow's ``assigned_users`` for a portfolio's approvers; None (anyone) when none are named.

    Airflow compares the ``id`` with the answering user's id (``BaseAuthManager.
    is_authorized_hitl_task``): the user name with the simple auth manager, the numeric id with
    FAB. The name is only shown.
    """
    return [HITLUser(id=user, name=user) for user in approvers] or None


def answer_note(deadline: datetime, approvers: Sequence[str], dag_id: str) -> str:
    """The lines under the plan preview: the cut-off (IST) and who may answer (Markdown)."""
    who = ", ".join(f"`{u}`" for u in approvers) if approvers else f"anyone who may act on {dag_id}"
    return (
        f"\n\n---\n\n**Answer by {in_ist(deadline)}**: no answer by then and the plan expires, "
        f"nothing is ordered.  \n**Who may answer:** {who}."
    )


def required_actions_link(context: Any) -> str:
    """The approval task's Required Actions page: absolute with ``[api] base_url``, else a path."""
    try:
        return str(ApprovalOperator.generate_link_to_ui_from_context(context=context))
    except ValueError:  # no base_url configured: the path still says where to go
        ti = context["task_instance"]
        return f"/dags/{ti.dag_id}/runs/{ti.run_id}/tasks/{ti.task_id}/required_actions"


class PlanApprovalOperator(ApprovalOperator):
    """The ``approval`` task of a lane: auto-approve, or ask a person with the plan preview.

    The answerers (``assigned_users``) and the waiting notice (``notifiers``) are worked out here,
    not by the DAG factory: at parse time from ``portfolio`` when it is passed (no file, database
    or network), and again when the task runs from the portfolio file as it is then, which is
    what decides. Values passed explicitly are kept.
    """

    def __init__(
        self,
        *,
        portfolio_file: str,
        account: str,
        portfolio: Portfolio | None = None,
        **kwargs: Any,
    ) -> None:
        fixed_users, fixed_notifiers = "assigned_users" in kwargs, "notifiers" in kwargs
        if not fixed_users and portfolio is not None:
            kwargs["assigned_users"] = assigned_users(portfolio.execution.approvers)
        super().__init__(
            subject="Approve rebalance", body="(the plan preview appears here)", **kwargs
        )
        self._fixed_users, self._fixed_notifiers = fixed_users, fixed_notifiers
        self.portfolio_file = portfolio_file
        self.account = account

    def execute(self, context: Any) -> Any:
        from rebalance import tasks, wiring
        from rebalance.lane import Lane

        lane = Lane.from_context(context, self.portfolio_file, self.account)
        store = wiring.open_store()
        request = request_approval(lane, store)
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
        approvers = lane.portfolio.execution.approvers
        if not self._fixed_users:
            self.assigned_users = assigned_users(approvers)
        if not self._fixed_notifiers:
            self.notifiers = approval_notifiers(
                ApprovalWaiting(
                    portfolio=lane.portfolio.name,
                    account=self.account,
                    dag_id=lane.dag_id,
                    airflow_run_id=lane.airflow_run_id,
                    subject=request.subject,
                    link=required_actions_link(context),
                    deadline=request.deadline,
                    approvers=approvers,
                    history_run=store.find_run(lane.run_key),
                )
            )
        self.subject = request.subject
        self.body = request.preview + answer_note(request.deadline, approvers, lane.dag_id)
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
        if "error" in event:
            if event.get("error_type") == "timeout":
                self.record(context, Decision.EXPIRED, by=None)
                raise AirflowSkipException("no answer by the approval deadline: plan expired")
            raise RuntimeError(f"approval failed: {event['error']}")
        chosen = event["chosen_options"][0]
        user = event.get("responded_by_user") or {}
        by = user.get("name") or user.get("id") if isinstance(user, dict) else str(user)
        if chosen == self.APPROVE:
            return self.record(context, Decision.APPROVED, by=by)
        self.record(context, Decision.REJECTED, by=by)
        raise AirflowSkipException(f"plan rejected by {by or 'a user'}: nothing ordered")

    def record(self, context: Any, decision: Decision, by: str | None) -> dict[str, Any]:
        """Record a person's decision (or the deadline's) on the lane's run."""
        from rebalance import tasks, wiring
        from rebalance.lane import Lane

        lane = Lane.from_context(context, self.portfolio_file, self.account)
        return tasks.record_decision(lane, wiring.open_store(), decision, by=by)
