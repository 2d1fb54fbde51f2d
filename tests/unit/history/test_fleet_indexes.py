"""Migration 0004: the fleet's indexes exist after ``upgrade`` and match ``tables.py``."""

from __future__ import annotations

from sqlalchemy import text

from rebalance.history import tables
from rebalance.history.database import engine_for
from rebalance.history.migrate import current_revision, upgrade

FLEET_INDEXES = {
    "ix_runs_created": ("rebalance_runs", "(created_at DESC, id DESC)", None),
    "ix_events_run": ("rebalance_run_events", "(run_id, id)", None),
    "ix_runs_placing": ("rebalance_runs", "(account, broker)", "placing"),
}


def index_definitions(url: str) -> dict[str, tuple[str, str]]:
    with engine_for(url).connect() as conn:
        rows = conn.execute(
            text("SELECT indexname, tablename, indexdef FROM pg_indexes WHERE schemaname='public'")
        )
        return {name: (table, definition) for name, table, definition in rows}


def test_head_has_the_fleet_indexes(history_db: str) -> None:
    assert (current_revision(history_db) or "") >= "0004"  # later migrations keep them
    found = index_definitions(history_db)
    for name, (table, columns, where) in FLEET_INDEXES.items():
        assert name in found, name
        assert found[name][0] == table
        assert columns in found[name][1], found[name][1]
        if where:
            assert f"WHERE ((status)::text = '{where}'::text)" in found[name][1]


def test_the_planner_uses_them(history_db: str) -> None:
    """With sequential scans priced out, each query of the fleet benchmark uses its index."""
    queries = {
        "ix_runs_created": "SELECT id FROM rebalance_runs ORDER BY created_at DESC, id DESC "
        "LIMIT 20",
        "ix_events_run": "SELECT * FROM rebalance_run_events WHERE run_id = 7 ORDER BY id",
        "ix_runs_placing": "SELECT id FROM rebalance_runs WHERE account = 'a' AND broker = 'paper' "
        "AND status = 'placing'",
    }
    with engine_for(history_db).connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))
        for name, query in queries.items():
            plan = "\n".join(str(r[0]) for r in conn.execute(text("EXPLAIN " + query)))
            assert name in plan, plan


def test_downgrade_to_0003_drops_them_and_upgrade_restores(history_db: str) -> None:
    from alembic import command

    from rebalance.history.migrate import alembic_config

    command.downgrade(alembic_config(history_db), "0003")
    assert not set(FLEET_INDEXES) & set(index_definitions(history_db))
    upgrade(history_db)
    assert set(FLEET_INDEXES) <= set(index_definitions(history_db))


def test_tables_py_declares_the_same_indexes() -> None:
    declared = {i.name for t in tables.metadata.tables.values() for i in t.indexes}
    assert set(FLEET_INDEXES) <= declared
