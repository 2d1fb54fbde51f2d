"""Alembic environment of the history database (online migrations only)."""

from __future__ import annotations

from alembic import context

from rebalance.history.database import engine_for
from rebalance.history.tables import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")
if not url:
    raise RuntimeError("sqlalchemy.url is not set: run migrations through `rebalance db upgrade`")

with engine_for(url).connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
