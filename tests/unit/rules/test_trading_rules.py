"""The trading rules as pure functions: no Postgres, no broker, no clock."""

from __future__ import annotations

from datetime import UTC, date, datetime

from rebalance.domain.market import IST, Quote, Side
from rebalance.plan import PlannedOrder
from rebalance.trading_rules import EarlierLiveRun, price_move, second_live_run_today

TODAY = date(2026, 1, 5)


def order(symbol: str, price: float) -> PlannedOrder:
    return PlannedOrder(symbol, "NSE", Side.BUY, 10, price, 10 * price, ("drift",))


def quote(symbol: str, price: float) -> Quote:
    return Quote(symbol, "NSE", price)


def test_a_second_live_run_after_a_fill_today_is_refused_with_the_run_named() -> None:
    earlier = [EarlierLiveRun(7, datetime(2026, 1, 5, 10, 0, tzinfo=IST), filled_shares=3)]
    reason = second_live_run_today("zerodha_main", TODAY, earlier)
    assert reason is not None
    assert "run 7 today" in reason
    assert "zerodha_main" in reason


def test_a_run_today_that_filled_nothing_or_one_yesterday_does_not_refuse() -> None:
    earlier = [
        EarlierLiveRun(7, datetime(2026, 1, 5, 10, 0, tzinfo=IST), filled_shares=0),
        EarlierLiveRun(6, datetime(2026, 1, 4, 14, 0, tzinfo=IST), filled_shares=50),
    ]
    assert second_live_run_today("zerodha_main", TODAY, earlier) is None


def test_the_day_is_the_exchange_day_not_utc() -> None:
    # 20:00 UTC on 4 January is 01:30 IST on 5 January: the same trading day as TODAY.
    late = datetime(2026, 1, 4, 20, 0, tzinfo=UTC)
    assert second_live_run_today("a", TODAY, [EarlierLiveRun(3, late, 1)]) is not None


def test_prices_within_the_limit_pass_and_a_move_beyond_it_is_named() -> None:
    orders = [order("INFY", 1500.0), order("TCS", 4000.0)]
    tcs = quote("TCS", 4000.0)
    assert price_move(orders, {"INFY": quote("INFY", 1510.0), "TCS": tcs}, 1.0) is None
    reason = price_move(orders, {"INFY": quote("INFY", 1560.0), "TCS": tcs}, 2.0)
    assert reason == (
        "prices moved more than 2.0% since planning: INFY: 1,500.00 -> 1,560.00 (+4.00%)"
    )


def test_a_missing_quote_counts_as_moved() -> None:
    reason = price_move([order("INFY", 1500.0)], {}, 5.0)
    assert reason is not None
    assert "INFY: no quote now" in reason
