"""The target_model task's body with real parts (embedded Postgres, the paper broker, the real
kiteconnect client against the Kite emulator), without Airflow: the replacement case, stale and
gappy history stopping the lane, the cache's freshness rule."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml
from sqlalchemy import update

from rebalance import tasks
from rebalance.brokers.paper import PaperBroker
from rebalance.brokers.ratelimit import UNLIMITED
from rebalance.brokers.retry import RetryPolicy
from rebalance.brokers.zerodha import ZerodhaBroker
from rebalance.calendar import trading_calendar
from rebalance.domain.market import IST
from rebalance.history import tables
from rebalance.history.status import RunStatus
from rebalance.history.store import HistoryStore
from rebalance.history.target_history import cached_closes, target_model_of
from rebalance.lane import Lane, LaneStopped
from rebalance.target_model_task import target_model
from rebalance.target_service import last_close_day
from rebalance.testing.emulators import KiteEmulator

ROOT = Path(__file__).resolve().parents[3]
# A Friday afternoon after the close: the window ends on this day (when it is a trading day).
NOW = dt.datetime(2026, 11, 27, 17, 0, tzinfo=IST)
FAST = RetryPolicy(attempts=2, base_delay=0.0, max_delay=0.0, rate_limited_min_delay=0.0)


def _portfolio(folder: Path, name: str, data: dict) -> Path:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "portfolios" / "data" / "demo_holdings.csv", folder / "data")
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "exchange": "NSE", **data}))
    return path


def _lane(path: Path, account: str, run: str = "manual__1") -> Lane:
    return Lane(str(path), account, f"rebalance_{path.stem}", run)


def _swap_portfolio(folder: Path) -> Path:
    """INFY and TCS at 50% each, a universe of four scored symbols (INFY last), a top 2 rule;
    the paper holdings give every candidate a price."""
    path = _portfolio(
        folder,
        "swap",
        {
            "targets": {"INFY": 50, "TCS": 50},
            "universe": {"scores": "data/scores.csv", "replace_when": {"leaves_top": 2}},
            "policy": {"rebalance_budget_pct": 100, "max_trades": 10},
            "accounts": [
                {"name": "paper", "broker": "paper", "holdings_file": "data/h.csv", "cash_inr": 0}
            ],
        },
    )
    (folder / "data" / "scores.csv").write_text("symbol,score\nTCS,9\nHDFCBANK,8\nITC,7\nINFY,1\n")
    (folder / "data" / "h.csv").write_text(
        "symbol,exchange,quantity,last_price\nINFY,NSE,100,1000\nTCS,NSE,25,4000\n"
        "HDFCBANK,NSE,0,1500\nITC,NSE,0,450\n"
    )
    return path


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REBALANCE_STATE_DIR", str(tmp_path / "state"))
    trading_calendar()  # loaded once (seconds), before an emulator's client timeout runs


def test_a_replacement_exits_one_symbol_and_enters_one_with_the_reasons_recorded(
    tmp_path: Path, store: HistoryStore
) -> None:
    folder = tmp_path / "portfolios"
    path = _swap_portfolio(folder)
    lane = _lane(path, "paper")
    broker = PaperBroker("paper", folder / "data" / "h.csv", 0.0, tmp_path / "state")
    run_id = tasks.fetch_holdings(lane, store, broker)["run"]
    assert target_model(lane, store, broker, now=NOW)["model"] == "fixed"
    stored = target_model_of(store, run_id)
    assert stored is not None
    assert stored.weights == {"HDFCBANK": 0.5, "TCS": 0.5, "INFY": 0.0}
    (leaving,) = stored.record["replacement"]["exits"]
    (entering,) = stored.record["replacement"]["entries"]
    assert (leaving["symbol"], leaving["replaced_by"]) == ("INFY", "HDFCBANK")
    assert "outside the top 2" in leaving["reason"]
    assert (entering["symbol"], entering["replaces"]) == ("HDFCBANK", "INFY")

    tasks.plan_trades(lane, store)
    plan = store.run(run_id).plan
    assert plan is not None
    orders = {o["symbol"]: o for o in plan["orders"]}
    assert orders["INFY"]["side"] == "SELL"
    assert orders["HDFCBANK"]["side"] == "BUY"
    assert any(
        r.startswith("replacement_exit (INFY ranks 4 of 4") for r in orders["INFY"]["reasons"]
    )
    assert any(
        r.startswith("replacement_entry (HDFCBANK is the best-scoring")
        for r in orders["HDFCBANK"]["reasons"]
    )
    # A member that stays carries no replacement reason, whatever the planner does with it.
    assert not any("replacement" in r for r in orders.get("TCS", {}).get("reasons", []))


def _risk_parity(folder: Path, account: dict, **model: object) -> Path:
    return _portfolio(
        folder,
        "rp",
        {
            "targets": {
                "model": {"name": "risk_parity", "lookback_days": 60, **model},
                "symbols": ["INFY", "TCS", "ITC"],
            },
            "accounts": [account],
        },
    )


def _kite(kite: KiteEmulator) -> ZerodhaBroker:
    return ZerodhaBroker(
        kite.api_key,
        kite.access_token,
        root=kite.url,
        limits=UNLIMITED,
        retry=FAST,
        sleep=lambda _s: None,
    )


ZERODHA = {"name": "zerodha_main", "broker": "zerodha", "connection_id": "zerodha_test"}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("stale", "unchanged on 5 trading days"),
        ("gap", "no close on 1 trading day(s)"),
        ("jump", "a split or bonus not adjusted"),
    ],
)
def test_stale_gappy_or_jumping_history_stops_the_lane_with_the_message(
    tmp_path: Path, store: HistoryStore, edit: str, message: str
) -> None:
    path = _risk_parity(tmp_path / "portfolios", ZERODHA)
    lane = _lane(path, "zerodha_main")
    days = trading_calendar().trading_days_between(
        dt.date(2026, 11, 1), last_close_day(NOW, trading_calendar())
    )
    with KiteEmulator() as kite:
        edits: dict[dt.date, float | None]
        if edit == "stale":
            edits = dict.fromkeys(days[-5:], 1500.0)
        elif edit == "gap":
            edits = {days[-3]: None}
        else:
            edits = {days[-2]: 1.0}  # a -99.9% day, then back
        kite.history_edits["TCS"] = edits
        broker = _kite(kite)
        run_id = tasks.fetch_holdings(lane, store, broker)["run"]
        with pytest.raises(LaneStopped) as stopped:
            target_model(lane, store, broker, now=NOW)
    assert message in str(stopped.value)
    assert "TCS" in str(stopped.value)
    assert "nothing planned or ordered" in str(stopped.value)
    run = store.run(run_id)
    assert run.status == RunStatus.INVALID
    assert message in (run.status_reason or "")
    assert target_model_of(store, run_id) is None


def test_the_cache_serves_fresh_days_and_refetches_only_missing_ones(
    tmp_path: Path, store: HistoryStore
) -> None:
    path = _risk_parity(tmp_path / "portfolios", ZERODHA)
    with KiteEmulator() as kite:
        broker = _kite(kite)
        first = _lane(path, "zerodha_main", "manual__1")
        tasks.fetch_holdings(first, store, broker)
        target_model(first, store, broker, now=NOW)
        historical = [r for r in kite.requests if r[1].startswith("/instruments/historical/")]
        assert len(historical) == 3  # one request per symbol
        # The next trading day: only its close is missing, the rest is fresh in the cache.
        later = NOW + dt.timedelta(days=3)  # Monday 17:00 IST
        second = _lane(path, "zerodha_main", "manual__2")
        run_id = tasks.fetch_holdings(second, store, broker)["run"]
        target_model(second, store, broker, now=later)
        again = [r for r in kite.requests if r[1].startswith("/instruments/historical/")]
        assert len(again) == 6
    stored = target_model_of(store, run_id)
    assert stored is not None
    assert stored.record["price_history"]["fetched_days"] == 3  # one day for each symbol
    assert stored.record["price_history"]["cached_days"] == 3 * 60
    assert stored.as_of == last_close_day(later, trading_calendar())
    rc = [v["risk_contribution"] for v in stored.record["inputs"].values()]
    assert rc == pytest.approx([1 / 3] * 3, abs=1e-3)  # risk parity: equal shares of the risk
    assert sum(stored.weights.values()) == pytest.approx(1.0)
    cached = cached_closes(store, ["INFY"], "NSE", dt.date(2026, 1, 1), later.date())
    assert {c.source for c in cached["INFY"].values()} == {"zerodha"}


def test_a_replacement_lasts_into_the_next_run_until_the_universe_replaces_it(
    tmp_path: Path, store: HistoryStore
) -> None:
    folder = tmp_path / "portfolios"
    path = _swap_portfolio(folder)
    scores = folder / "data" / "scores.csv"
    broker = PaperBroker("paper", folder / "data" / "h.csv", 0.0, tmp_path / "state")
    first = _lane(path, "paper", "manual__1")
    first_id = tasks.fetch_holdings(first, store, broker)["run"]
    target_model(first, store, broker, now=NOW)
    with store.engine.begin() as conn:  # as if it completed: its members now stand
        conn.execute(
            update(tables.runs)
            .where(tables.runs.c.id == first_id)
            .values(status=str(RunStatus.COMPLETED))
        )
    # Unchanged scores: HDFCBANK stays in INFY's place, nothing is replaced again.
    second = _lane(path, "paper", "manual__2")
    second_id = tasks.fetch_holdings(second, store, broker)["run"]
    target_model(second, store, broker, now=NOW)
    kept = target_model_of(store, second_id)
    assert kept is not None
    assert kept.weights == {"HDFCBANK": 0.5, "TCS": 0.5}
    assert kept.record["replacement"]["exits"] == []
    # HDFCBANK falls out of the top 2 later: ITC replaces it, not INFY again.
    scores.write_text("symbol,score\nTCS,9\nITC,8\nINFY,2\nHDFCBANK,1\n")
    third = _lane(path, "paper", "manual__3")
    third_id = tasks.fetch_holdings(third, store, broker)["run"]
    target_model(third, store, broker, now=NOW)
    swapped = target_model_of(store, third_id)
    assert swapped is not None
    assert swapped.weights == {"ITC": 0.5, "TCS": 0.5, "HDFCBANK": 0.0}
