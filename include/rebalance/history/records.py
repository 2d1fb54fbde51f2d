"""Typed, frozen records of the history store: what ``HistoryStore`` hands back.

``RunRecord`` is one row of ``rebalance_runs`` (one lane of one DAG run), ``LegRecord`` one row of
``rebalance_orders`` (one leg of an approved plan), ``EventRecord`` one status change. Code that
reads history uses their attributes; the JSON columns (snapshot, plan, policy, placement...) stay
plain JSON, and the plan becomes a ``TradePlan`` where it is used (``TradePlan.from_dict``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Self

from rebalance.history.status import OrderState, RunStatus

if TYPE_CHECKING:
    from sqlalchemy import RowMapping

    from rebalance.snapshot import HoldingsSnapshot


class _Record:
    """A frozen record built from a database row; read by attribute only."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | RowMapping) -> Self:
        """The record of a database row (its columns by name; unknown columns are an error)."""
        return cls(**dict(row))


@dataclass(frozen=True, eq=True)
class RunRecord(_Record):
    """One run: a lane of a DAG run, its status, what it planned and how placement went."""

    id: int
    portfolio_id: str
    portfolio_name: str
    account: str
    broker: str
    dag_id: str
    airflow_run_id: str
    initiator: str  # scheduled | manual
    broker_scope: str  # the accounts this DAG run covers, comma-separated
    mode: str  # dry_run | paper | live
    status: str  # a RunStatus value (see ``run_status``)
    status_reason: str | None
    created_at: datetime
    planned_at: datetime | None
    approved_at: datetime | None
    executed_at: datetime | None
    finished_at: datetime | None
    policy: dict[str, Any]
    targets: dict[str, Any]
    snapshot: dict[str, Any] | None  # HoldingsSnapshot.to_records()
    validation: dict[str, Any] | None
    portfolio_value: float | None  # rupees
    cash: float | None  # rupees
    plan: dict[str, Any] | None  # TradePlan.to_dict(); TradePlan.from_dict reads it
    plan_hash: str | None
    approval_decision: str | None  # auto | approved | rejected | expired | not_needed
    approved_by: str | None
    approval_note: str | None
    turnover_pct: float | None  # %
    budget_used_pct: float | None  # %
    max_drift_before: float | None  # fraction
    max_drift_after: float | None  # fraction
    trades: int | None
    estimated_charges: float | None  # rupees
    placement: dict[str, Any] | None  # counts and deadlines of the placement pass
    # 0006: the breach (asset event extra) of a run the drift watch triggered; None otherwise
    trigger_event: dict[str, Any] | None = None

    @property
    def run_status(self) -> RunStatus:
        return RunStatus(self.status)

    @property
    def planned_orders(self) -> list[dict[str, Any]]:
        """The stored plan's orders (JSON), none when nothing was planned."""
        return list(self.plan["orders"]) if self.plan else []

    def holdings_snapshot(self) -> HoldingsSnapshot:
        """The stored snapshot as a ``HoldingsSnapshot`` (LookupError: none stored yet)."""
        from rebalance.snapshot import HoldingsSnapshot

        if self.snapshot is None:
            raise LookupError(f"run {self.id} has no snapshot: fetch_holdings has not stored one")
        return HoldingsSnapshot.from_records(self.snapshot)


@dataclass(frozen=True, eq=True)
class LegRecord(_Record):
    """One leg: a planned order of the approved plan, written ahead, sent and settled."""

    id: int
    run_id: int
    leg: int  # 0.. in plan order
    tag: str  # our idempotency tag at the broker (brokers/tags.py)
    symbol: str
    exchange: str
    side: str  # BUY | SELL
    quantity: int  # shares
    price: float  # rupees, the planning price
    notional: float  # rupees
    reasons: list[str]
    charges: float  # rupees, estimated
    state: str  # an OrderState value (see ``order_state``)
    broker_order_id: str | None
    filled_quantity: int  # shares
    average_price: float | None  # rupees
    error: str | None
    attempts: int
    sent_at: datetime | None
    plan_hash: str | None
    broker_orders: int  # orders found with our tag (more than 1: a resend made a second order)
    created_at: datetime
    updated_at: datetime
    reprice_round: int = 0  # 0005: the round of the leg's current order (0: the leg's own tag)
    children: list[dict[str, Any]] = field(default_factory=list)  # 0005: one per round sent

    @property
    def order_state(self) -> OrderState:
        return OrderState(self.state)


@dataclass(frozen=True, eq=True)
class EventRecord(_Record):
    """One status change of a run."""

    id: int
    run_id: int
    at: datetime
    from_status: str | None
    to_status: str
    message: str | None
