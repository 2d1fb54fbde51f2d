"""The card's Preview of a computed portfolio (issue 17): it plans on the model's targets, run on
the history database's price cache when that is fresh, else on the targets the last completed run
stored, and says which (with the as-of date) and where they came from.

Through the app with FastAPI's TestClient, a real history database and the risk-parity demo
portfolio's paper account; the cache is filled with the paper broker's own daily candles.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from rebalance.brokers.synthetic_history import synthetic_candles
from rebalance.calendar import trading_calendar
from rebalance.history.store import HistoryStore
from rebalance.history.target_history import save_candles
from rebalance.portfolio import load_portfolio
from rebalance.settings import portfolios_dir
from rebalance.target_service import compute_targets, file_price_loader, window_days
from rebalance.testing.model_runs import completed_model_run
from rebalance.ui.app import Viewer, create_app, viewer

PORTFOLIO = "demo_risk_parity"
ACCOUNT = "paper_rp"


@pytest.fixture
def client(history_db: str) -> Iterator[TestClient]:
    app = create_app()
    app.dependency_overrides[viewer] = lambda: Viewer(name="tester", can_read=lambda ids: set(ids))
    app.state.can_trigger = lambda dag_id: True
    with TestClient(app, headers={"Authorization": "Bearer user-jwt"}) as c:
        yield c


def symbols() -> list[str]:
    return list(load_portfolio(portfolios_dir() / f"{PORTFOLIO}.yaml").targets)


def fill_cache(store: HistoryStore, fetched_at: datetime, leave_out: str | None = None) -> None:
    """The paper broker's candles of the model's window, as the target_model task caches them."""
    days = window_days(fetched_at, trading_calendar(), 252)
    for symbol in symbols():
        candles = synthetic_candles(symbol, days[0], days[-1])
        if symbol == leave_out:
            candles = candles[:-1]
        save_candles(store, symbol, "NSE", candles, source="paper", fetched_at=fetched_at)


def planned_targets(html: str) -> dict[str, float]:
    """symbol -> target weight (%) from the orders' and the left-alone tables."""
    found = {}
    for symbol, target in re.findall(r"<td>([A-Z]+)</td><td class='num'>[\d.]+% / ([\d.]+)%", html):
        found[symbol] = float(target)
    for row in re.findall(r"<tr data-side='\w+'>(.*?)</tr>", html):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
        found[cells[1]] = float(cells[6].split(" / ")[1].rstrip("%"))
    return found


def model_targets(now: datetime, folder: Path) -> dict[str, float]:
    """The model's targets on the window's candles, through ``rebalance plan --prices``'s loader."""
    days = window_days(now, trading_calendar(), 252)
    frame = pd.DataFrame(
        {s: {c.day: c.close for c in synthetic_candles(s, days[0], days[-1])} for s in symbols()}
    )
    frame.index.name = "date"
    frame.to_csv(folder / "closes.csv")
    path = portfolios_dir() / f"{PORTFOLIO}.yaml"
    loader = file_price_loader(folder / "closes.csv", trading_calendar())
    return compute_targets(load_portfolio(path), path, today=days[-1], load_prices=loader).weights


def test_a_fresh_cache_plans_on_the_model_run_now(
    client: TestClient, store: HistoryStore, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    fill_cache(store, now)
    page = client.get(f"/preview/{PORTFOLIO}")
    assert page.status_code == 200, page.text
    html = page.text
    assert "data-origin='computed'" in html, html[-3000:]
    assert "Targets computed now: the risk_parity model" in html
    assert "from the price history cache" in html
    assert "Where the targets came from" in html
    assert "id='target-inputs'" in html  # volatility and risk contribution per symbol
    # The plan's targets are the model's on these closes, not the nominal 10% each.
    expected = model_targets(now, tmp_path)
    assert len({round(w, 3) for w in expected.values()}) > 2
    shown = planned_targets(html)
    assert set(shown) == set(expected)
    for symbol, weight in expected.items():
        assert shown[symbol] == pytest.approx(100 * weight, abs=0.006)
    assert store.runs(limit=10) == []  # a preview records no run


def test_a_stale_cache_plans_on_the_last_completed_runs_targets(
    client: TestClient, store: HistoryStore
) -> None:
    fill_cache(store, datetime.now(UTC) - timedelta(days=9))  # older than REFRESH_AFTER
    weights = dict.fromkeys(symbols(), 0.05) | {"INFY": 0.2, "TCS": 0.15, "ITC": 0.1}
    weights = {s: w / sum(weights.values()) for s, w in weights.items()}
    run = completed_model_run(store, weights)
    html = client.get(f"/preview/{PORTFOLIO}").text
    assert "data-origin='stored'" in html, html[-3000:]
    origin = re.search(r"id='targets-origin'[^>]*>(.*?)</p>", html)
    assert origin is not None
    assert f"Targets of the last completed run (run {run}, risk_parity model as of 2026-11-27)" in (
        origin.group(1)
    )
    assert "the price history cache" in origin.group(1)
    assert "is not fresh" in origin.group(1)
    assert "Where the targets came from" in html
    shown = planned_targets(html)
    for symbol, weight in weights.items():
        assert shown[symbol] == pytest.approx(100 * weight, abs=0.006)


def test_one_missing_close_is_enough_to_fall_back(client: TestClient, store: HistoryStore) -> None:
    fill_cache(store, datetime.now(UTC), leave_out="LT")
    completed_model_run(store, dict.fromkeys(symbols(), 0.1))
    html = client.get(f"/preview/{PORTFOLIO}").text
    assert "data-origin='stored'" in html
    assert "LT: 1 of 253 closes missing or stale" in html


def test_no_cache_and_no_completed_run_says_what_to_do(
    client: TestClient, store: HistoryStore
) -> None:
    html = client.get(f"/preview/{PORTFOLIO}").text
    problem = re.search(r"id='problem'>(.*?)</p>", html)
    assert problem is not None, html[-2000:]
    assert "the risk_parity model cannot run now" in problem.group(1)
    assert "no completed run of paper_rp has stored targets yet" in problem.group(1)
    assert "id='preview-orders'" not in html  # no plan on the nominal weights


def test_a_fixed_portfolio_shows_no_target_source(client: TestClient) -> None:
    html = client.get("/preview/demo").text
    assert "id='preview-orders'" in html
    assert "targets-origin" not in html
    assert "Where the targets came from" not in html
