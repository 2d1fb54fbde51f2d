"""The drift watch's history (issue 13): one row per portfolio, account and IST trading day.

``drift_snapshots`` holds what the daily drift watch saw (``rebalance.drift.record.COLUMNS``,
types in docs/drift.md): a time series of total and max drift per account, the symbols outside
their band, what the watch decided and what it sent. ``rebalance_runs.trigger_event`` stores the
breach (the asset event's extra) of a run the watch triggered, so the run shows why it started.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drift_snapshots",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("portfolio_id", sa.String(64), nullable=False),
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("broker", sa.String(16), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("not_read_reason", sa.String(24)),
        sa.Column("detail", sa.Text),
        sa.Column("portfolio_value", sa.Float),
        sa.Column("cash", sa.Float),
        sa.Column("cash_weight", sa.Float),
        sa.Column("cash_target", sa.Float),
        sa.Column("total_drift", sa.Float),
        sa.Column("max_drift", sa.Float),
        sa.Column("max_drift_symbol", sa.String(32)),
        sa.Column("outside_band", JSONB, nullable=False),
        sa.Column("positions", JSONB, nullable=False),
        sa.Column("band_abs_pct", sa.Float),
        sa.Column("band_rel_pct", sa.Float),
        sa.Column("targets_run_id", sa.BigInteger),
        sa.Column("since_last", JSONB),
        sa.Column("breach_since", sa.Date),
        sa.Column("action", sa.String(24)),
        sa.Column("action_reason", sa.Text),
        sa.Column("alerted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("login_notice_sent", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("portfolio_id", "account", "day", name="uq_drift_day"),
    )
    op.add_column("rebalance_runs", sa.Column("trigger_event", JSONB))


def downgrade() -> None:
    op.drop_column("rebalance_runs", "trigger_event")
    op.drop_table("drift_snapshots")
