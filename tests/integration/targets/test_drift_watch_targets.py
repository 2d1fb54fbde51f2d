"""The daily drift watch of a portfolio whose targets a model computes (issues 13 and 17): it
measures against the targets stored by the account's last completed run, and says which run."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from sqlalchemy import update

from rebalance.brokers.base import Broker
from rebalance.brokers.factory import make_broker
from rebalance.domain.market import IST
from rebalance.drift_watch import read_account
from rebalance.history import tables
from rebalance.history.status import RunStatus
from rebalance.history.store import HistoryStore, RunKey
from rebalance.history.target_history import save_target_model
from rebalance.portfolio import load_portfolio

ROOT = Path(__file__).resolve().parents[3]
NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=IST)
SYMBOLS = ["RELIANCE", "HDFCBANK", "INFY", "TCS", "ICICIBANK"]
SYMBOLS += ["ITC", "LT", "SBIN", "BHARTIARTL", "HINDUNILVR"]


def _completed_run(store: HistoryStore, weights: dict[str, float], status: RunStatus) -> int:
    run_id = store.open_run(
        RunKey("rebalance_demo_risk_parity", f"manual__{status}", "paper_rp"),
        portfolio_id="demo_risk_parity",
        portfolio_name="Demo Risk Parity Ten",
        broker="paper",
        initiator="manual",
        broker_scope="paper_rp",
        mode="paper",
        policy={},
        targets={"weights": weights, "cash": None},
    )
    save_target_model(
        store,
        run_id,
        portfolio_id="demo_risk_parity",
        account="paper_rp",
        model="risk_parity",
        as_of=dt.date(2026, 11, 20),
        weights=weights,
        record={"model": "risk_parity"},
    )
    with store.engine.begin() as conn:  # only the final status matters to the watch
        conn.execute(
            update(tables.runs).where(tables.runs.c.id == run_id).values(status=str(status))
        )
    return run_id


def test_the_watch_measures_against_the_last_completed_runs_model_targets(
    store: HistoryStore, tmp_path: Path
) -> None:
    folder = tmp_path / "portfolios"
    shutil.copytree(ROOT / "portfolios", folder)
    path = folder / "demo_risk_parity.yaml"
    portfolio = load_portfolio(path)

    def connect() -> Broker:
        return make_broker(
            portfolio.accounts[0], None, state_dir=tmp_path / "state", portfolio_file=path
        )

    before = read_account(portfolio, "paper_rp", connect, now=NOW, store=store)
    assert before.targets_run_id is None  # no completed run yet: the file's nominal weights
    assert {p.symbol: p.target for p in before.positions} == dict.fromkeys(SYMBOLS, 0.1)

    model = {s: (0.19 if s == "ITC" else 0.09) for s in SYMBOLS}
    completed = _completed_run(store, model, RunStatus.COMPLETED)
    _completed_run(store, dict.fromkeys(SYMBOLS, 0.1), RunStatus.REJECTED)  # later, not completed
    after = read_account(portfolio, "paper_rp", connect, now=NOW, store=store)
    assert after.targets_run_id == completed
    targets = {p.symbol: p.target for p in after.positions}
    assert targets == {s: model[s] for s in SYMBOLS}
    itc = next(p for p in after.positions if p.symbol == "ITC")
    assert itc.drift == itc.weight - 0.19
