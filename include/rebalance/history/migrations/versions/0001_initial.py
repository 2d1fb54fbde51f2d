"""Initial history schema: runs, orders, run events.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str, *, nullable: bool = True, now: bool = False) -> sa.Column:
    default = sa.func.now() if now else None
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, server_default=default)


def upgrade() -> None:
    op.create_table(
        "rebalance_runs",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("portfolio_id", sa.String(64), nullable=False),
        sa.Column("portfolio_name", sa.Text, nullable=False),
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("broker", sa.String(16), nullable=False),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("airflow_run_id", sa.String(250), nullable=False),
        sa.Column("initiator", sa.String(16), nullable=False),
        sa.Column("broker_scope", sa.Text, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("status_reason", sa.Text),
        _ts("created_at", nullable=False, now=True),
        _ts("planned_at"),
        _ts("approved_at"),
        _ts("executed_at"),
        _ts("finished_at"),
        sa.Column("policy", JSONB, nullable=False),
        sa.Column("targets", JSONB, nullable=False),
        sa.Column("snapshot", JSONB),
        sa.Column("validation", JSONB),
        sa.Column("portfolio_value", sa.Float),
        sa.Column("cash", sa.Float),
        sa.Column("plan", JSONB),
        sa.Column("plan_hash", sa.String(64)),
        sa.Column("approval_decision", sa.String(16)),
        sa.Column("approved_by", sa.Text),
        sa.Column("approval_note", sa.Text),
        sa.Column("turnover_pct", sa.Float),
        sa.Column("budget_used_pct", sa.Float),
        sa.Column("max_drift_before", sa.Float),
        sa.Column("max_drift_after", sa.Float),
        sa.Column("trades", sa.Integer),
        sa.Column("estimated_charges", sa.Float),
        sa.UniqueConstraint("dag_id", "airflow_run_id", "account", name="uq_run_lane"),
    )
    op.create_index(
        "ix_runs_portfolio_created",
        "rebalance_runs",
        ["portfolio_id", sa.text("created_at DESC")],
    )
    op.create_table(
        "rebalance_orders",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id",
            sa.BigInteger,
            sa.ForeignKey("rebalance_runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("leg", sa.Integer, nullable=False),
        sa.Column("tag", sa.String(15), nullable=False, unique=True),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("exchange", sa.String(8), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("price", sa.Float, nullable=False),
        sa.Column("notional", sa.Float, nullable=False),
        sa.Column("reasons", JSONB, nullable=False),
        sa.Column("charges", sa.Float, nullable=False, server_default="0"),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("broker_order_id", sa.String(64)),
        sa.Column("filled_quantity", sa.Integer, nullable=False, server_default="0"),
        sa.Column("average_price", sa.Float),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        _ts("created_at", nullable=False, now=True),
        _ts("updated_at", nullable=False, now=True),
        sa.UniqueConstraint("run_id", "leg", name="uq_order_leg"),
    )
    op.create_table(
        "rebalance_run_events",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id",
            sa.BigInteger,
            sa.ForeignKey("rebalance_runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _ts("at", nullable=False, now=True),
        sa.Column("from_status", sa.String(24)),
        sa.Column("to_status", sa.String(24), nullable=False),
        sa.Column("message", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("rebalance_run_events")
    op.drop_table("rebalance_orders")
    op.drop_index("ix_runs_portfolio_created", table_name="rebalance_runs")
    op.drop_table("rebalance_runs")
