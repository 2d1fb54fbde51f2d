"""The run and order state machines. Every status change goes through ``check_transition``.

Run lifecycle (one run = one portfolio x account lane of one Airflow DAG run)::

    started -> invalid                                  (snapshot failed validation)
    started -> skipped                                  (nothing to do or refused before planning:
                                                         schedule_and_drift inside the bands, or a
                                                         second live run the same day at a broker
                                                         whose same-day quantities are not reliable;
                                                         the reason says which)
    started -> planned -> awaiting_approval -> approved | rejected | expired
    approved -> placing -> placed | partially_filled | failed
    planned | approved -> completed                     (dry run, or nothing to order)
    placed | partially_filled -> completed              (record_run closes the run)
    approved | placing -> interrupted                   (placement stopped, legs never sent)
    interrupted -> placing                              (``rebalance resume``, same run)
    interrupted -> completed | failed                   (settled for good: validity over)
    any non-final status -> failed                      (with the reason)

After placing: ``placed`` = every leg filled completely; ``partially_filled`` = some shares filled
but not every leg completely (a partial fill, a rejection, a buy held back, an unsettled leg);
``failed`` = nothing filled. The reason text and the orders say which.

``interrupted`` = the placement stopped (a crash, a lost worker, an expired login) before every
leg of the approved plan was sent, while the approval is still valid. It ends the lane (the DAG
run is failed) but not the plan: ``rebalance resume RUN`` sends the remaining legs of the *same*
run (same tags) until the approval's validity ends (live: the approval cut-off of that day;
paper: the approval timeout). Settling it once that is over closes it for good.

Order lifecycle (one leg of a run, see ``OrderState``)::

    pending -> sent -> open -> partially_filled -> complete | cancelled
    pending | sent | open -> rejected                    (the broker said no: definitive)
    pending -> denied                                    (we did not send it: a guardrail)
    sent -> pending                                      (not in the book past the grace: resend)
    sent -> not_placed                                   (never seen, attempts used up)
    not_placed -> open | partially_filled | complete | cancelled | rejected   (the book caught up)
    pending -> not_sent                                  (never sent: placement interrupted,
                                                          prices moved, approval no longer valid)
    not_sent -> pending                                  (``rebalance resume``: send it after all)
    not_sent -> open | partially_filled | complete | cancelled | rejected     (found in the book)
    cancelled -> pending                                 (re-priced: the remainder goes out as a
                                                          child order, next ``reprice_round``)

``not_sent`` (we know it never left: it was still ``pending``) is distinct from an unknown outcome
(``sent`` and never seen in the book): only the second can be at the broker.
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
    INTERRUPTED = "interrupted"  # placement stopped with legs never sent; resumable while valid
    SKIPPED = "skipped"  # nothing planned or ordered: inside the bands, or a trading rule refused

    @property
    def is_final(self) -> bool:
        return self in FINAL_RUN_STATUSES


FINAL_RUN_STATUSES = frozenset(
    {
        RunStatus.INVALID,
        RunStatus.REJECTED,
        RunStatus.EXPIRED,
        RunStatus.FAILED,
        RunStatus.COMPLETED,
        RunStatus.INTERRUPTED,  # final for the DAG run; only ``rebalance resume`` reopens it
        RunStatus.SKIPPED,
    }
)

_RUN_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.STARTED: frozenset(
        {RunStatus.PLANNED, RunStatus.INVALID, RunStatus.FAILED, RunStatus.SKIPPED}
    ),
    RunStatus.PLANNED: frozenset(
        {RunStatus.AWAITING_APPROVAL, RunStatus.APPROVED, RunStatus.COMPLETED, RunStatus.FAILED}
    ),
    RunStatus.AWAITING_APPROVAL: frozenset(
        {RunStatus.APPROVED, RunStatus.REJECTED, RunStatus.EXPIRED, RunStatus.FAILED}
    ),
    RunStatus.APPROVED: frozenset(
        {RunStatus.PLACING, RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.INTERRUPTED}
    ),
    RunStatus.PLACING: frozenset(
        {
            RunStatus.PLACED,
            RunStatus.PARTIALLY_FILLED,
            RunStatus.FAILED,
            RunStatus.PLACING,
            RunStatus.INTERRUPTED,
        }
    ),
    RunStatus.INTERRUPTED: frozenset({RunStatus.PLACING, RunStatus.COMPLETED, RunStatus.FAILED}),
    RunStatus.PLACED: frozenset({RunStatus.COMPLETED, RunStatus.FAILED}),
    RunStatus.PARTIALLY_FILLED: frozenset({RunStatus.COMPLETED, RunStatus.FAILED}),
    RunStatus.INVALID: frozenset(),
    RunStatus.REJECTED: frozenset(),
    RunStatus.EXPIRED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.COMPLETED: frozenset(),
    RunStatus.SKIPPED: frozenset(),
}


class IllegalTransition(RuntimeError):  # noqa: N818
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
    NOT_PLACED = "not_placed"  # sent, but reconciliation proved the broker never saw it
    NOT_SENT = "not_sent"  # never sent (still pending when placement stopped); error says why

    @property
    def is_terminal(self) -> bool:
        return self in (
            OrderState.COMPLETE,
            OrderState.CANCELLED,
            OrderState.REJECTED,
            OrderState.DENIED,
            OrderState.NOT_PLACED,
            OrderState.NOT_SENT,
        )


_BROKER_STATES = frozenset(
    {
        OrderState.OPEN,
        OrderState.PARTIALLY_FILLED,
        OrderState.COMPLETE,
        OrderState.CANCELLED,
        OrderState.REJECTED,
    }
)

_ORDER_TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    # A pending leg may be found in the book (an earlier copy sent it and crashed before recording).
    OrderState.PENDING: _BROKER_STATES | {OrderState.SENT, OrderState.DENIED, OrderState.NOT_SENT},
    OrderState.SENT: _BROKER_STATES | {OrderState.PENDING, OrderState.NOT_PLACED},
    OrderState.OPEN: frozenset(
        {
            OrderState.PARTIALLY_FILLED,
            OrderState.COMPLETE,
            OrderState.CANCELLED,
            OrderState.REJECTED,
        }
    ),
    OrderState.PARTIALLY_FILLED: frozenset({OrderState.COMPLETE, OrderState.CANCELLED}),
    OrderState.COMPLETE: frozenset(),
    # Re-pricing: a remainder cancelled at the fill deadline is sent again as a child order.
    OrderState.CANCELLED: frozenset({OrderState.PENDING}),
    OrderState.REJECTED: frozenset(),
    OrderState.DENIED: frozenset(),
    # The book lagged past the grace: the broker's word wins over our guess.
    OrderState.NOT_PLACED: _BROKER_STATES,
    # Only a resume sends it after all; a copy that did send it before dying shows in the book.
    OrderState.NOT_SENT: _BROKER_STATES | {OrderState.PENDING},
}


def check_order_transition(current: OrderState, new: OrderState) -> None:
    """Raise IllegalTransition unless a leg may go from ``current`` to ``new`` (same = no-op)."""
    if new is not current and new not in _ORDER_TRANSITIONS[current]:
        raise IllegalTransition(f"order state cannot go from {current} to {new}")
