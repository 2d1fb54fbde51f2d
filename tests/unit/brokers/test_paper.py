"""The paper broker: file-backed, deterministic, its order book shared across processes."""

from __future__ import annotations

import multiprocessing
import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rebalance.brokers.base import BadResponse, OrderRejected, OrderRequest, OrderStatus
from rebalance.brokers.paper import PaperBroker
from rebalance.brokers.tags import order_tag
from rebalance.domain.market import Side

DEMO = Path(__file__).resolve().parents[3] / "portfolios" / "data" / "demo_holdings.csv"
NOW = datetime(2026, 1, 30, 15, 10, tzinfo=ZoneInfo("Asia/Kolkata"))


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "holdings.csv"
    shutil.copy(DEMO, path)
    return path


def paper(csv: Path, state: Path) -> PaperBroker:
    return PaperBroker("demo", csv, 50_000, state, clock=lambda: NOW)


def test_reads_the_demo_file(csv: Path, tmp_path: Path) -> None:
    broker = paper(csv, tmp_path / "state")
    holdings = {h.symbol: h for h in broker.holdings()}
    assert len(holdings) == 10
    infy = holdings["INFY"]
    assert (infy.quantity, infy.last_price, infy.isin) == (95, 1890.15, "INE009A01021")
    assert infy.acquired_on is not None
    assert broker.funds().available_cash == 50_000


def test_fills_are_deterministic_and_survive_a_new_instance(csv: Path, tmp_path: Path) -> None:
    ids = []
    for run in ("a", "b"):
        broker = paper(csv, tmp_path / run)
        ids.append(
            [
                broker.place_order(
                    OrderRequest("INFY", "NSE", Side.SELL, 10, order_tag(run, "d", 0))
                ),
                broker.place_order(
                    OrderRequest("ITC", "NSE", Side.BUY, 20, order_tag(run, "d", 1))
                ),
            ]
        )
    assert ids[0] == ids[1] == ["PAPER-demo-1", "PAPER-demo-2"]
    again = paper(csv, tmp_path / "a")  # e.g. the retried task, in another process
    tags = {r.tag: r for r in again.orders()}
    assert tags[order_tag("a", "d", 0)].status is OrderStatus.COMPLETE
    holdings = {h.symbol: h for h in again.holdings()}
    assert holdings["INFY"].quantity == 85
    assert holdings["ITC"].quantity == 420
    cash = 50_000 + 10 * 1890.15 - 20 * 468.25  # the file's prices
    assert again.funds().available_cash == pytest.approx(cash, abs=0.01)


def test_rejects_what_a_broker_would(csv: Path, tmp_path: Path) -> None:
    broker = paper(csv, tmp_path / "s")
    with pytest.raises(OrderRejected, match="sellable"):
        broker.place_order(OrderRequest("TCS", "NSE", Side.SELL, 21, order_tag("r", "d", 0)))
    with pytest.raises(OrderRejected, match="available"):
        broker.place_order(OrderRequest("TCS", "NSE", Side.BUY, 100, order_tag("r", "d", 1)))
    with pytest.raises(OrderRejected, match="no price"):
        broker.place_order(OrderRequest("NOSUCH", "NSE", Side.BUY, 1, order_tag("r", "d", 2)))
    assert [r.status for r in broker.orders()] == [OrderStatus.REJECTED, OrderStatus.REJECTED]


def test_bad_file_names_row_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("symbol,exchange,quantity,last_price\nINFY,NSE,10,0\n")
    with pytest.raises(BadResponse, match=r"row 2: last_price of INFY must be > 0"):
        PaperBroker("x", bad, 0, tmp_path).holdings()
    bad.write_text("symbol,exchange,quantity,last_price\nINFY,NSE,-3,10\n")
    with pytest.raises(BadResponse, match=r"row 2: quantity must be a whole number >= 0"):
        PaperBroker("x", bad, 0, tmp_path).holdings()


def _place_many(args: tuple[str, str, int]) -> list[str]:
    csv, state, worker = args
    broker = PaperBroker("demo", Path(csv), 1_000_000, Path(state))
    return [
        broker.place_order(
            OrderRequest("ITC", "NSE", Side.BUY, 1, order_tag("conc", str(worker), leg))
        )
        for leg in range(10)
    ]


def test_order_book_is_safe_across_processes(csv: Path, tmp_path: Path) -> None:
    state = tmp_path / "shared"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        results = pool.map(_place_many, [(str(csv), str(state), w) for w in range(3)])
    ids = [i for r in results for i in r]
    assert len(set(ids)) == 30
    broker = PaperBroker("demo", csv, 1_000_000, state)
    assert len(broker.orders()) == 30
    assert {h.symbol: h.quantity for h in broker.holdings()}["ITC"] == 430
    assert not list(state.glob("*.tmp")), "a temporary file was left behind"
