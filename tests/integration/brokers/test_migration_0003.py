"""Migration 0003: 20-character order tags and the shared order-rate ledger, up and down."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, inspect, text

from rebalance.brokers.tags import child_tag, order_tag
from rebalance.history.migrate import alembic_config, current_revision, upgrade


def test_0003_widens_tags_and_adds_the_send_ledger(history_db: str) -> None:
    engine = create_engine(history_db)
    columns = {c["name"]: c for c in inspect(engine).get_columns("rebalance_orders")}
    assert columns["tag"]["type"].length == 20
    assert "broker_order_sends" in inspect(engine).get_table_names()
    child = child_tag(order_tag("mig-run", "acct", 1), 2)
    with engine.begin() as conn:
        run_id = conn.execute(
            text(
                "INSERT INTO rebalance_runs (portfolio_id, portfolio_name, account, broker, "
                "dag_id, airflow_run_id, initiator, broker_scope, mode, status, policy, targets) "
                "VALUES ('p', 'P', 'a', 'paper', 'd', 'r', 'manual', 'a', 'paper', 'started', "
                "'{}', '{}') RETURNING id"
            )
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO rebalance_orders (run_id, leg, tag, symbol, exchange, side, "
                "quantity, price, notional, reasons, state) VALUES (:run, 1, :tag, 'INFY', "
                "'NSE', 'BUY', 1, 1.0, 1.0, '[]', 'pending')"
            ),
            {"run": run_id, "tag": child},
        )
    engine.dispose()

    command.downgrade(alembic_config(history_db), "0002")
    assert current_revision(history_db) == "0002"
    engine = create_engine(history_db)
    assert "broker_order_sends" not in inspect(engine).get_table_names()
    with engine.connect() as conn:  # the 18-character child tag could not survive the downgrade
        assert conn.execute(text("SELECT count(*) FROM rebalance_orders")).scalar_one() == 0
    engine.dispose()
    upgrade(history_db, "0003")
    assert current_revision(history_db) == "0003"
