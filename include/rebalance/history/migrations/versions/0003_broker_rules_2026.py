"""2026 broker rules: 20-character order tags (re-pricing child tags) and the shared order-rate
ledger of each broker account.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Both brokers accept 20-character tags; re-pricing rounds append "Rnn" to a leg's tag.
    op.alter_column("rebalance_orders", "tag", type_=sa.String(20), existing_type=sa.String(15))
    # Send times per account: the 10 orders/s (and per-minute/hour/day) limits are per broker
    # account, shared by every process trading it.
    op.create_table(
        "broker_order_sends",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("account_key", sa.String(64), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_order_sends_account_sent", "broker_order_sends", ["account_key", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_order_sends_account_sent", table_name="broker_order_sends")
    op.drop_table("broker_order_sends")
    # Tags longer than 15 characters cannot survive the narrower column.
    op.execute("DELETE FROM rebalance_orders WHERE length(tag) > 15")
    op.alter_column("rebalance_orders", "tag", type_=sa.String(15), existing_type=sa.String(20))
