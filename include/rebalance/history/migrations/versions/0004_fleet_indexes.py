"""Indexes for a fleet's history (issue 19): the newest runs, a run's events, runs left placing.

Measured with benchmarks/history_queries.py on benchmarks/seed_history.py's 2,000 portfolios x
104 weekly runs (docs/history.md, "At fleet size"):

* ``ix_runs_created``: ``rebalance history`` and the Rebalance page list the newest runs of every
  portfolio (``ORDER BY created_at DESC, id DESC LIMIT n``): an index scan instead of a sort of
  every run.
* ``ix_events_run``: a run's events (``rebalance history show``, the run page) and the cascade
  when a run is deleted: an index scan instead of reading every event of the fleet.
* ``ix_runs_placing``: the runs of one account left ``placing`` (every lane's placement asks):
  a partial index, as small as the runs in flight.

Plain CREATE INDEX: it blocks writes to the table while it builds (seconds at fleet size); run the
upgrade between trading sessions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_runs_created",
        "rebalance_runs",
        [sa.text("created_at DESC"), sa.text("id DESC")],
    )
    op.create_index("ix_events_run", "rebalance_run_events", ["run_id", "id"])
    op.create_index(
        "ix_runs_placing",
        "rebalance_runs",
        ["account", "broker"],
        postgresql_where=sa.text("status = 'placing'"),
    )


def downgrade() -> None:
    op.drop_index("ix_runs_placing", table_name="rebalance_runs")
    op.drop_index("ix_events_run", table_name="rebalance_run_events")
    op.drop_index("ix_runs_created", table_name="rebalance_runs")
