"""The target_model task through Airflow (dag.test): the risk-parity demo on the paper broker's
emulated history, and a risk-parity lane at Zerodha reading the Kite emulator's candles through
the real kiteconnect client. Real Postgres, real Airflow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from rebalance.dag_factory import build_dag
from rebalance.history.status import RunStatus
from rebalance.history.store import HistoryStore
from rebalance.history.target_history import target_model_of
from rebalance.portfolio import load_portfolio
from rebalance.testing.emulators import KiteEmulator

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _run(path: Path):  # type: ignore[no-untyped-def]
    return build_dag(path, load_portfolio(path)).test()


def test_the_risk_parity_demo_runs_end_to_end_on_the_paper_broker(
    airflow_db: Path, store: HistoryStore, demo_copy: Path
) -> None:
    path = demo_copy.with_name("demo_risk_parity.yaml")
    dag_run = _run(path)
    assert str(dag_run.state) == "success"
    (run,) = store.runs("demo_risk_parity")
    assert run.status == RunStatus.COMPLETED
    assert run.targets["model"] == "risk_parity"
    stored = target_model_of(store, run.id)
    assert stored is not None
    assert stored.model == "risk_parity"
    assert stored.as_of is not None
    assert stored.record["library"] == "skfolio"
    assert stored.record["price_history"]["days"] == 253
    assert stored.record["price_history"]["source"] == "paper"
    assert set(stored.weights) == set(load_portfolio(path).targets)
    assert all(0.04 - 1e-6 <= w <= 0.20 + 1e-6 for w in stored.weights.values())
    assert run.plan is not None
    planned = {p["symbol"]: p["target_weight"] for p in run.plan["positions"]}
    assert planned == pytest.approx(stored.weights)  # the plan used the model's targets
    assert (run.trades or 0) > 0
    events = [e.to_status for e in store.events(run.id)]
    assert events[-1] == "completed"


@pytest.fixture
def kite_connection(monkeypatch: pytest.MonkeyPatch) -> Iterator[KiteEmulator]:
    with KiteEmulator() as kite:
        unprotected = kite.airflow_connection(default_market_protection="none")
        monkeypatch.setenv("AIRFLOW_CONN_ZERODHA_TEST", unprotected)
        yield kite


def test_a_zerodha_lane_reads_the_kite_candles_and_plans_on_the_model_targets(
    airflow_db: Path, store: HistoryStore, demo_copy: Path, kite_connection: KiteEmulator
) -> None:
    data = yaml.safe_load(demo_copy.with_name("demo_risk_parity.yaml").read_text())
    data["accounts"] = [
        {"name": "zerodha_main", "broker": "zerodha", "connection_id": "zerodha_test"}
    ]
    data["targets"]["symbols"] = sorted(kite_connection.holdings)[:4]
    data["targets"]["model"]["lookback_days"] = 60
    data["targets"]["model"].update(min_weight_pct=5, max_weight_pct=60)
    data["execution"] = {"mode": "dry_run", "approval": "auto"}
    path = demo_copy.with_name("rp_zerodha.yaml")
    path.write_text(yaml.safe_dump(data))
    dag_run = _run(path)
    assert str(dag_run.state) == "success"
    (run,) = store.runs("rp_zerodha")
    stored = target_model_of(store, run.id)
    assert stored is not None
    assert stored.record["price_history"]["source"] == "zerodha"
    assert stored.record["price_history"]["fetched_days"] == 4 * 61
    historical = [
        p for m, p in kite_connection.requests if p.startswith("/instruments/historical/")
    ]
    assert len(historical) == 4
    assert run.plan is not None
    planned = {p["symbol"]: p["target_weight"] for p in run.plan["positions"]}
    assert {s: planned[s] for s in stored.weights} == pytest.approx(stored.weights)
