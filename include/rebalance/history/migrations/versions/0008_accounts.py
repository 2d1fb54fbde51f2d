"""The combined accounts mode and per-portfolio ledgers in one account (issue 16).

``combined_runs`` holds one DAG run's plan for the whole of a portfolio held in several accounts:
the combined snapshot, the plan, its split per account (the allocation), the one approval and the
outcome per account. ``combined_run_parts`` links it to each account's ``rebalance_runs`` row
(the account's part, placed by its own lane). ``ledger_entries`` is the append-only ledger of
each portfolio's shares and cash inside a shared account (``rebalance.accounts.ledger``).

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "combined_runs",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("portfolio_id", sa.String(64), nullable=False),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("airflow_run_id", sa.String(250), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("status_reason", sa.Text),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("snapshot", JSONB),
        sa.Column("plan", JSONB),
        sa.Column("plan_hash", sa.String(64)),
        sa.Column("allocation", JSONB),
        sa.Column("allocation_hash", sa.String(64)),
        sa.Column("replanned", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("approval_decision", sa.String(16)),
        sa.Column("approved_by", sa.Text),
        sa.Column("approved_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", JSONB),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("dag_id", "airflow_run_id", name="uq_combined_run"),
    )
    op.create_table(
        "combined_run_parts",
        sa.Column(
            "combined_run_id",
            sa.BigInteger,
            sa.ForeignKey("combined_runs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("account", sa.String(32), primary_key=True),
        sa.Column(
            "run_id", sa.BigInteger, sa.ForeignKey("rebalance_runs.id"), nullable=False, unique=True
        ),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("account_key", sa.String(300), nullable=False),
        sa.Column("portfolio", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("symbol", sa.String(32)),
        sa.Column("shares", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("cash", sa.Float, nullable=False, server_default=sa.text("0")),
        sa.Column("ref", sa.String(64)),
        sa.Column("by", sa.Text),
        sa.Column("note", sa.Text, nullable=False, server_default=sa.text("''")),
        sa.Column("run_id", sa.BigInteger, sa.ForeignKey("rebalance_runs.id")),
    )
    op.create_index(
        "uq_ledger_fill_ref",
        "ledger_entries",
        ["account_key", "ref"],
        unique=True,
        postgresql_where=sa.text("ref IS NOT NULL"),
    )
    op.create_index("ix_ledger_entries_account", "ledger_entries", ["account_key", "id"])


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_account", table_name="ledger_entries")
    op.drop_index("uq_ledger_fill_ref", table_name="ledger_entries")
    op.drop_table("ledger_entries")
    op.drop_table("combined_run_parts")
    op.drop_table("combined_runs")
