"""Tax lots in history (issue 15; docs/tax.md): the trades lots are built from, corporate actions,
the FMV of 31 January 2018, and the gains the user declares from elsewhere per financial year.

``tax_trades`` holds every delivery trade of an account that the lots are replayed from: the rows
of an imported tradebook (``origin`` tradebook, keyed by the broker's trade id) and the
pipeline's own fills (``origin`` fill, keyed by the leg's tag), so a re-import or a retried
``record_run`` adds nothing twice. Lots and realised sells are derived (FIFO per account), never
stored, so one wrong row is fixed by deleting it, not by repairing lots.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tax_trades",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        sa.Column("traded_on", sa.Date, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("price", sa.Float, nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("trade_key", sa.String(128), nullable=False),
        sa.Column("isin", sa.String(16)),
        sa.Column("source", sa.Text),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("account", "trade_key", name="uq_tax_trade"),
        sa.CheckConstraint("quantity > 0", name="ck_tax_trade_quantity"),
        sa.CheckConstraint("price >= 0", name="ck_tax_trade_price"),
    )
    op.create_index("ix_tax_trades_account_symbol", "tax_trades", ["account", "symbol"])
    op.create_table(
        "tax_corporate_actions",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("on_date", sa.Date, nullable=False),
        sa.Column("new", sa.Integer, nullable=False),
        sa.Column("old", sa.Integer, nullable=False),
        sa.Column("account", sa.String(32), nullable=False, server_default=""),
        sa.Column("quantity", sa.Integer),
        sa.Column("source", sa.Text),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("symbol", "kind", "on_date", "account", name="uq_tax_action"),
    )
    op.create_table(
        "tax_fmv_2018",
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("fmv", sa.Float, nullable=False),
    )
    op.create_table(
        "tax_declared_gains",
        sa.Column("fy", sa.String(7), primary_key=True),
        sa.Column("short_term", sa.Float, nullable=False, server_default="0"),
        sa.Column("long_term", sa.Float, nullable=False, server_default="0"),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def downgrade() -> None:
    op.drop_table("tax_declared_gains")
    op.drop_table("tax_fmv_2018")
    op.drop_table("tax_corporate_actions")
    op.drop_index("ix_tax_trades_account_symbol", table_name="tax_trades")
    op.drop_table("tax_trades")
