"""The demo portfolio with ``tax: report`` through Airflow (dag.test) on the paper broker: the
plan carries the tax estimate from the lots in history, a symbol whose lots do not add up is
planned without tax data with the message, and the run's fills extend the lots (issue 15).

Real parts: Airflow 3 runs the six tasks, history is a real PostgreSQL, the paper broker keeps its
order book on disk.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest

from rebalance.dag_factory import build_dag
from rebalance.history.status import RunStatus
from rebalance.history.tax_store import TaxStore
from rebalance.portfolio import load_portfolio
from rebalance.preview import render_preview
from rebalance.tax.tradebook import Trade, TradeType

pytestmark = pytest.mark.slow


def test_tax_report_through_the_pipeline(airflow_db: Path, store, demo_copy: Path) -> None:  # type: ignore[no-untyped-def]
    text = demo_copy.read_text().replace("policy:\n", "policy:\n  tax: report\n", 1)
    demo_copy.write_text(text)
    holdings = demo_copy.parent / "data" / "demo_holdings.csv"
    with holdings.open() as handle:
        rows = list(csv.DictReader(handle))
    trades = []
    for row in rows:
        quantity = int(row["quantity"])
        if row["symbol"] == "RELIANCE":
            quantity -= 20  # 20 shares came in by transfer: the lots do not add up
        trades.append(
            Trade(
                account="paper",
                symbol=row["symbol"],
                trade_type=TradeType.BUY,
                traded_on=dt.date.fromisoformat(row["acquired_on"]),
                quantity=quantity,
                price=float(row["average_price"]),
                trade_id=f"T-{row['symbol']}",
                source=f"test:{row['symbol']}",
            )
        )
    taxes = TaxStore(store.engine)
    assert taxes.add_trades(trades) == len(rows)

    dag_run = build_dag(demo_copy, load_portfolio(demo_copy)).test()

    assert str(dag_run.state) == "success"
    (run,) = store.runs("demo")
    assert run.status == RunStatus.COMPLETED
    tax = run.plan["tax"]
    assert tax["mode"] == "report"
    assert "RELIANCE" in tax["no_tax_data"]
    assert "add up to 100 shares but the broker holds 120" in tax["no_tax_data"]["RELIANCE"]
    sells = [o for o in run.plan["orders"] if o["side"] == "SELL"]
    estimated = {o["symbol"] for o in tax["orders"]}
    assert estimated == {o["symbol"] for o in sells} - {"RELIANCE"}
    assert tax["after_tax_cost"] == pytest.approx(tax["charges"] + tax["estimated_tax"], abs=0.01)
    preview = render_preview(
        run.plan, portfolio_name="Demo", account="paper", mode="paper", plan_hash=run.plan_hash
    )
    assert "after-tax cost of the rebalance" in preview
    assert "no tax data for RELIANCE" in preview

    # the run's fills extend the lots, once
    fills = [t for t in taxes.trades(["paper"]) if t.source.startswith(f"run {run.id} ")]
    legs = store.orders(run.id)
    assert len(fills) == len([leg for leg in legs if leg.filled_quantity > 0]) > 0
    assert {t.trade_id for t in fills} == {leg.tag for leg in legs}
    assert taxes.record_fills(run.id) == 0
