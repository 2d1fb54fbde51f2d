"""The trading rules as pure functions: no Postgres, no broker, no clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from types import SimpleNamespace

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


def test_a_second_live_run_is_judged_only_live_on_a_broker_with_unreliable_same_day_holdings() -> (
    None
):
    from rebalance.portfolio import BrokerName, ExecutionMode
    from rebalance.trading_rules import second_live_run

    read: list[int] = []

    def earlier() -> Iterator[EarlierLiveRun]:
        read.append(1)
        yield EarlierLiveRun(7, datetime(2026, 1, 5, 10, 0, tzinfo=IST), filled_shares=3)

    angel, live = BrokerName.ANGELONE, ExecutionMode.LIVE
    assert second_live_run("a", angel, ExecutionMode.PAPER, TODAY, earlier()) is None
    assert second_live_run("a", BrokerName.ZERODHA, live, TODAY, earlier()) is None
    assert second_live_run("a", BrokerName.PAPER, live, TODAY, earlier()) is None
    assert read == []  # the earlier runs (a read of the store) are not read for these
    assert "run 7 today" in (second_live_run("a", angel, live, TODAY, earlier()) or "")


def test_earlier_live_runs_are_the_accounts_other_live_runs_and_read_fills_lazily() -> None:
    from rebalance.trading_rules import earlier_live_runs

    when = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)
    runs = [
        SimpleNamespace(id=1, account="a", mode="live", created_at=when),
        SimpleNamespace(id=2, account="a", mode="paper", created_at=when),
        SimpleNamespace(id=3, account="b", mode="live", created_at=when),
        SimpleNamespace(id=4, account="a", mode="live", created_at=when),  # this run
    ]
    asked: list[int] = []

    def filled(run_id: int) -> int:
        asked.append(run_id)
        return 5

    found = earlier_live_runs(runs, 4, "a", filled)  # type: ignore[arg-type]
    assert asked == []
    assert list(found) == [EarlierLiveRun(1, when, 5)]
    assert asked == [1]


def test_the_orders_judged_for_a_price_move_are_those_not_yet_sent() -> None:
    from rebalance.history.status import OrderState
    from rebalance.trading_rules import orders_to_judge

    orders = [order("ITC", 430.0), order("TCS", 3500.0)]
    assert orders_to_judge(orders, None) == orders  # before the first send: all
    assert orders_to_judge(orders, []) == orders  # no legs written yet: none were sent
    legs = [
        SimpleNamespace(symbol="ITC", order_state=OrderState.COMPLETE),
        SimpleNamespace(symbol="TCS", order_state=OrderState.NOT_SENT),
    ]
    assert orders_to_judge(orders, legs) == [orders[1]]  # type: ignore[arg-type]


def test_a_runs_price_move_quotes_only_the_legs_still_to_send() -> None:
    """``moved_since_planning``: the orders not yet sent are quoted (and only when there are
    some); a run with no plan or nothing left to send is not judged."""
    from rebalance.history.status import OrderState
    from rebalance.plan import PlanSummary, TradePlan
    from rebalance.trading_rules import moved_since_planning

    summary = PlanSummary(100_000.0, 5.0, 50.0, 0.05, 0.01, 2, 10.0)
    plan = TradePlan((order("ITC", 430.0), order("TCS", 3500.0)), (), summary)
    run = SimpleNamespace(plan=plan.to_dict())
    asked: list[list[str]] = []

    def quotes(instruments: list) -> dict[str, Quote]:  # type: ignore[type-arg]
        asked.append([i.symbol for i in instruments])
        return {"ITC": quote("ITC", 430.0), "TCS": quote("TCS", 3700.0)}

    reason = moved_since_planning(run, None, quotes, 2.0)  # type: ignore[arg-type]
    assert reason is not None
    assert "TCS: 3,500.00 -> 3,700.00" in reason
    assert "ITC" not in reason
    assert asked == [["ITC", "TCS"]]

    itc_unsent = [
        SimpleNamespace(symbol="ITC", order_state=OrderState.NOT_SENT),
        SimpleNamespace(symbol="TCS", order_state=OrderState.COMPLETE),
    ]
    assert moved_since_planning(run, itc_unsent, quotes, 2.0) is None  # type: ignore[arg-type]
    assert asked[-1] == ["ITC"]

    all_sent = [SimpleNamespace(symbol=s, order_state=OrderState.COMPLETE) for s in ("ITC", "TCS")]
    asked.clear()
    assert moved_since_planning(run, all_sent, quotes, 2.0) is None  # type: ignore[arg-type]
    unplanned = SimpleNamespace(plan=None)
    assert moved_since_planning(unplanned, None, quotes, 2.0) is None  # type: ignore[arg-type]
    assert asked == []  # nothing to judge: the broker is not asked
