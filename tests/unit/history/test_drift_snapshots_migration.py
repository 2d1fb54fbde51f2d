"""Migration 0006 (the drift watch's table): down and up again, and the store's round trip."""

from __future__ import annotations

import datetime as dt

from alembic import command
from sqlalchemy import inspect

from rebalance.drift.record import DriftRecord, WatchAction, WatchStatus
from rebalance.history.database import engine_for
from rebalance.history.migrate import alembic_config, upgrade
from rebalance.history.store import HistoryStore

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def test_downgrade_removes_the_table_and_the_column_and_upgrade_restores_them(
    history_db: str,
) -> None:
    command.downgrade(alembic_config(history_db), "0005")
    engine = engine_for(history_db)
    assert "drift_snapshots" not in inspect(engine).get_table_names()
    assert "trigger_event" not in {c["name"] for c in inspect(engine).get_columns("rebalance_runs")}
    upgrade(history_db)
    engine.dispose()
    assert "drift_snapshots" in inspect(engine).get_table_names()


def test_a_record_round_trips_and_the_same_day_merges(store: HistoryStore) -> None:
    day = dt.date(2026, 11, 16)
    first = DriftRecord(
        portfolio_id="demo",
        account="paper",
        broker="paper",
        day=day,
        taken_at=dt.datetime(2026, 11, 16, 10, tzinfo=IST),
        status=WatchStatus.READ,
        total_drift=0.05,
        max_drift=0.03,
        outside_band=("ITC",),
        breach_since=day,
        action=WatchAction.TRIGGER,
        alerted=True,
    )
    assert store.save_drift_record(first) == first
    assert store.drift_records("demo") == [first]
    retry = DriftRecord(
        portfolio_id="demo",
        account="paper",
        broker="paper",
        day=day,
        taken_at=dt.datetime(2026, 11, 16, 10, 5, tzinfo=IST),
        status=WatchStatus.READ,
        total_drift=0.04,
        max_drift=0.03,
        outside_band=("ITC",),
        breach_since=day,
        action=WatchAction.TOO_SOON,
    )
    merged = store.save_drift_record(retry)
    (stored,) = store.drift_records("demo")
    assert stored == merged
    assert stored.total_drift == 0.04  # the later reading
    assert stored.alerted  # what the first watch did stays done
    assert stored.action is WatchAction.TRIGGER
    assert store.latest_drift_record("demo", "paper", before=day + dt.timedelta(days=1)) == stored
    assert store.latest_drift_record("demo", "paper", before=day) is None
