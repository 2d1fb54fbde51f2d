"""Re-pricing rounds (issue 12): a leg's child orders, recorded under the leg.

A leg (one row of ``rebalance_orders``) is one approved order. When its remainder is still open at
the fill deadline it is cancelled and, within the approved quantity, re-priced and sent again as a
child order tagged ``child_tag(leg_tag, n)``. The legs table keeps one row per leg:

* ``reprice_round``: the round of the leg's current order (0 = the first order, tag = the leg's);
* ``children``: every order sent for the leg, one object per round, written ahead of its send:
  ``{"round", "tag", "quantity", "price", "market_protection", "reference_price"}``. A child's
  quantity is the approved quantity less what earlier rounds filled, so the children never add
  up to more than the approved quantity.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "rebalance_orders",
        sa.Column("reprice_round", sa.Integer, nullable=False, server_default="0"),
    )
    op.add_column(
        "rebalance_orders",
        sa.Column("children", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    )


def downgrade() -> None:
    op.drop_column("rebalance_orders", "children")
    op.drop_column("rebalance_orders", "reprice_round")
