"""The run and order state machines. Every status change goes through ``check_transition``.

Run lifecycle (one run = one portfolio x account lane of one Airflow DAG run)::

    started -> invalid                                  (snapshot failed validation)
    started -> planned -> awaiting_approval -> approved | rejected | expired
    approved -> placing -> placed | partially_filled | failed
    planned | approved -> completed                     (dry run, or nothing to order)
    placed | partially_filled -> completed              (record_run closes the run)
    any non-final status -> failed                      (with the reason)
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    STARTED = "started"
    INVALID = "invalid"
    PLANNED = "planned"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    PLACING = "placing"
    PLACED = "placed"
    PARTIALLY_FILLED = "partially_filled"
    FAILED = "failed"
    COMPLETED = "completed"

    @property
    def is_final(self) -> bool:
        return self in FINAL_RUN_STATUSES


FINAL_RUN_STATUSES = frozenset(
    {RunStatus.INVALID, RunStatus.REJECTED, RunStatus.EXPIRED, RunStatus.FAILED, RunStatus.COMPLETED}
)

_RUN_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.STARTED: frozenset({RunStatus.PLANNED, RunStatus.INVALID, RunStatus.FAILED}),
    RunStatus.PLANNED: frozenset(
        {RunStatus.AWAITING_APPROVAL, RunStatus.APPROVED, RunStatus.COMPLETED, RunStatus.FAILED}
    ),
    RunStatus.AWAITING_APPROVAL: frozenset(
        {RunStatus.APPROVED, RunStatus.REJECTED, RunStatus.EXPIRED, RunStatus.FAILED}
    ),
    RunStatus.APPROVED: frozenset({RunStatus.PLACING, RunStatus.COMPLETED, RunStatus.FAILED}),
    RunStatus.PLACING: frozenset(
        {RunStatus.PLACED, RunStatus.PARTIALLY_FILLED, RunStatus.FAILED, RunStatus.PLACING}
    ),
    RunStatus.PLACED: frozenset({RunStatus.COMPLETED, RunStatus.FAILED}),
    RunStatus.PARTIALLY_FILLED: frozenset({RunStatus.COMPLETED, RunStatus.FAILED}),
    RunStatus.INVALID: frozenset(),
    RunStatus.REJECTED: frozenset(),
    RunStatus.EXPIRED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.COMPLETED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A status change the state machine forbids (a bug, or a second copy of a task)."""


def check_transition(current: RunStatus, new: RunStatus) -> None:
    """Raise IllegalTransition unless ``current -> new`` is allowed."""
    if new not in _RUN_TRANSITIONS[current]:
        raise IllegalTransition(f"run status cannot go from {current} to {new}")


class OrderState(StrEnum):
    """Our record of one leg: written ahead as pending, then settled by the broker's word."""

    PENDING = "pending"  # written ahead, not yet sent
    SENT = "sent"  # sent; outcome unknown until the broker's order book says
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    COMPLETE = "complete"
    CANCELLED = "cancelled"
    REJECTED = "rejected"  # refused by the broker (definitive)
    DENIED = "denied"  # refused by us (a guardrail) before sending
    NOT_PLACED = "not_placed"  # reconciliation proved the broker never saw it

    @property
    def is_terminal(self) -> bool:
        return self in (
            OrderState.COMPLETE,
            OrderState.CANCELLED,
            OrderState.REJECTED,
            OrderState.DENIED,
            OrderState.NOT_PLACED,
        )
