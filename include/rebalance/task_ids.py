"""Airflow task ids of a lane: ``<account>.<step>`` (each account's tasks are one TaskGroup).

Built and read only here: the DAG factory names the steps, the CLI and the page link to the
approval task, the alerts read the account back from a failed task's id.
"""

from __future__ import annotations

APPROVAL = "approval"  # the step a person answers (approval_operator.PlanApprovalOperator)
TASK_ORDER = (  # the steps of a lane, in order
    "fetch_holdings",
    "validate_snapshot",
    "plan_trades",
    APPROVAL,
    "place_orders",
    "record_run",
)


def lane_task_id(account: str, step: str) -> str:
    """The full task id of ``step`` in ``account``'s lane (its TaskGroup is the account)."""
    return f"{account}.{step}"


def approval_task_id(account: str) -> str:
    """The approval task of ``account``'s lane, as Airflow's API and Required Actions name it."""
    return lane_task_id(account, APPROVAL)


def split_task_id(task_id: str) -> tuple[str, str]:
    """(account, step) of a task id; the account is "" for a task outside any lane."""
    account, _, step = task_id.rpartition(".")
    return account, step
