"""Crash-safe placement: per-leg send time, plan hash and broker order count; run placement summary.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # When the latest send attempt started: the "sent but not in the book" grace runs from here.
    op.add_column("rebalance_orders", sa.Column("sent_at", sa.DateTime(timezone=True)))
    # The plan hash the leg was written ahead for: only legs of the approved plan are ever sent.
    op.add_column("rebalance_orders", sa.Column("plan_hash", sa.String(64)))
    # How many broker orders carry this leg's tag (1 when all is well; >1 is flagged loudly).
    op.add_column(
        "rebalance_orders",
        sa.Column("broker_orders", sa.Integer, nullable=False, server_default="0"),
    )
    # Counts and deadlines of the placement pass, for history and the CLI.
    op.add_column("rebalance_runs", sa.Column("placement", JSONB))


def downgrade() -> None:
    op.drop_column("rebalance_runs", "placement")
    op.drop_column("rebalance_orders", "broker_orders")
    op.drop_column("rebalance_orders", "plan_hash")
    op.drop_column("rebalance_orders", "sent_at")
