"""Migration 0009 (price history cache, model outputs): down and up again, and the round trips."""

from __future__ import annotations

import datetime as dt

from alembic import command
from sqlalchemy import inspect, update

from rebalance.brokers.base import Candle
from rebalance.history import tables
from rebalance.history.database import engine_for
from rebalance.history.migrate import alembic_config, upgrade
from rebalance.history.status import RunStatus
from rebalance.history.store import HistoryStore, RunKey
from rebalance.history.target_history import (
    cached_closes,
    last_completed_targets,
    save_candles,
    save_target_model,
    target_model_of,
)

FETCHED = dt.datetime(2026, 11, 20, 18, 0, tzinfo=dt.UTC)


def _run(store: HistoryStore, airflow_run_id: str) -> int:
    return store.open_run(
        RunKey("rebalance_demo_rp", airflow_run_id, "paper"),
        portfolio_id="demo_rp",
        portfolio_name="Demo risk parity",
        broker="paper",
        initiator="manual",
        broker_scope="paper",
        mode="paper",
        policy={},
        targets={"weights": {"INFY": 0.5, "TCS": 0.5}, "cash": None},
    )


def test_downgrade_removes_the_tables_and_upgrade_restores_them(history_db: str) -> None:
    command.downgrade(alembic_config(history_db), "0008")
    engine = engine_for(history_db)
    names = set(inspect(engine).get_table_names())
    assert not names & {"price_history", "target_models"}
    assert {"drift_snapshots", "combined_runs", "tax_trades"} <= names  # 0006-0008 stay
    upgrade(history_db)
    engine.dispose()
    assert {"price_history", "target_models"} <= set(inspect(engine).get_table_names())


def test_candles_round_trip_and_a_refetched_day_replaces_the_cached_one(
    store: HistoryStore,
) -> None:
    days = [dt.date(2026, 11, 18), dt.date(2026, 11, 19)]
    save_candles(
        store,
        "INFY",
        "NSE",
        [Candle(d, 10, 11, 9, 10.5 + i, 100) for i, d in enumerate(days)],
        source="zerodha",
        fetched_at=FETCHED,
    )
    later = FETCHED + dt.timedelta(days=1)
    save_candles(
        store, "INFY", "NSE", [Candle(days[1], 1, 1, 1, 12.0)], source="angelone", fetched_at=later
    )
    cached = cached_closes(store, ["INFY", "TCS"], "NSE", days[0], days[1])
    assert cached["TCS"] == {}
    assert cached["INFY"][days[0]].close == 10.5
    assert cached["INFY"][days[1]].close == 12.0
    assert cached["INFY"][days[1]].source == "angelone"
    assert cached["INFY"][days[1]].fetched_at == later
    assert cached_closes(store, ["INFY"], "BSE", days[0], days[1]) == {"INFY": {}}


def test_a_model_output_round_trips_and_the_last_completed_run_is_found(
    store: HistoryStore,
) -> None:
    first, second = _run(store, "manual__1"), _run(store, "manual__2")
    for run_id, weight in ((first, 0.6), (second, 0.7)):
        save_target_model(
            store,
            run_id,
            portfolio_id="demo_rp",
            account="paper",
            model="risk_parity",
            as_of=dt.date(2026, 11, 19),
            weights={"INFY": weight, "TCS": 1 - weight},
            record={"model": "risk_parity", "inputs": {"INFY": {"volatility": 0.2}}},
        )
    # A retry of the task replaces the row of the same run.
    save_target_model(
        store,
        first,
        portfolio_id="demo_rp",
        account="paper",
        model="risk_parity",
        as_of=dt.date(2026, 11, 19),
        weights={"INFY": 0.55, "TCS": 0.45},
        record={"model": "risk_parity"},
    )
    stored = target_model_of(store, first)
    assert stored is not None
    assert stored.weights == {"INFY": 0.55, "TCS": 0.45}
    assert stored.as_of == dt.date(2026, 11, 19)
    assert target_model_of(store, 10_000) is None
    assert last_completed_targets(store, "demo_rp") is None  # neither run completed
    with store.engine.begin() as conn:  # the statuses alone matter here, not their path
        for run_id, status in ((first, RunStatus.COMPLETED), (second, RunStatus.REJECTED)):
            conn.execute(
                update(tables.runs).where(tables.runs.c.id == run_id).values(status=str(status))
            )
    found = last_completed_targets(store, "demo_rp", "paper")
    assert found is not None
    assert found.run_id == first
    assert last_completed_targets(store, "demo_rp", "zerodha_main") is None
