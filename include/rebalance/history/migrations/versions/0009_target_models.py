"""Where targets come from (issue 17): the price history cache and each run's model output.

``price_history`` caches the brokers' daily candles (one row per symbol, exchange and trading
day, with the broker that served it and when), so a risk model fetches only missing or stale
days. ``target_models`` holds, per lane run, the targets the model produced and the inputs that
produced them (model, parameters, as-of date, per-symbol volatility / risk contribution / score,
replacements with their reasons); plan_trades plans against them, the preview shows them and the
drift watch measures against the last completed run's.

Revision ID: 0009
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "price_history",
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("exchange", sa.String(8), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("open", sa.Float),
        sa.Column("high", sa.Float),
        sa.Column("low", sa.Float),
        sa.Column("close", sa.Float, nullable=False),
        sa.Column("volume", sa.BigInteger),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "target_models",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id",
            sa.BigInteger,
            sa.ForeignKey("rebalance_runs.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("portfolio_id", sa.String(64), nullable=False),
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("model", sa.String(32), nullable=False),
        sa.Column("as_of", sa.Date),
        sa.Column("weights", JSONB, nullable=False),
        sa.Column("record", JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index(
        "ix_target_models_portfolio",
        "target_models",
        ["portfolio_id", sa.text("created_at DESC")],
    )


def downgrade() -> None:
    op.drop_index("ix_target_models_portfolio", table_name="target_models")
    op.drop_table("target_models")
    op.drop_table("price_history")
