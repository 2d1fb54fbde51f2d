"""One contract, three brokers: paper, Zerodha (kiteconnect -> emulator), AngelOne (SmartAPI ->
emulator). Whatever the pipeline relies on is asserted here, the same way for each."""

from __future__ import annotations

from typing import Any

import pytest

from rebalance.brokers.base import (
    Broker,
    CancelRejected,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
    OrderStatus,
)
from rebalance.brokers.tags import order_tag
from rebalance.domain.market import Instrument, Side


def instruments(*symbols: str) -> list[Instrument]:
    return [Instrument(s) for s in symbols]


def test_is_a_broker(under_test: Any) -> None:
    assert isinstance(under_test.broker, Broker)
    assert under_test.broker.name in ("paper", "zerodha", "angelone")


def test_holdings_are_canonical_and_consistent(under_test: Any) -> None:
    holdings = under_test.broker.holdings()
    assert holdings
    symbols = [h.symbol for h in holdings]
    assert len(symbols) == len(set(symbols))
    for h in holdings:
        assert "-" not in h.symbol
        assert h.symbol == h.symbol.upper()
        assert h.exchange == "NSE"
        assert h.quantity > 0
        assert 0 <= h.sellable_quantity <= h.quantity
        assert h.last_price > 0
        assert h.average_price >= 0
        assert h.isin
        assert h.isin.startswith("INE")
    assert under_test.held in symbols
    assert under_test.not_held not in symbols


def test_quotes_by_canonical_symbol_unknown_left_out(under_test: Any) -> None:
    quotes = under_test.broker.quotes(
        instruments(under_test.held, under_test.not_held, "NOSUCHSCRIP")
    )
    assert set(quotes) == {under_test.held, under_test.not_held}
    for symbol, quote in quotes.items():
        assert quote.symbol == symbol
        assert quote.exchange == "NSE"
        assert quote.last_price > 0
        assert quote.previous_close is None or quote.previous_close > 0


def test_funds(under_test: Any) -> None:
    assert under_test.broker.funds().available_cash > 0


def test_buy_fills_and_shows_in_book_holdings_and_cash(under_test: Any) -> None:
    broker = under_test.broker
    price = broker.quotes(instruments(under_test.not_held))[under_test.not_held].last_price
    cash_before = broker.funds().available_cash
    tag = order_tag("contract-run", "acct", 1)
    order_id = broker.place_order(OrderRequest(under_test.not_held, "NSE", Side.BUY, 2, tag))
    report = broker.order(order_id)
    assert report.status is OrderStatus.COMPLETE
    assert report.filled_quantity == 2
    assert report.average_price == pytest.approx(price)
    assert report.tag == tag
    assert report.symbol == under_test.not_held
    assert report.side is Side.BUY
    assert [r.broker_order_id for r in broker.orders() if r.tag == tag] == [order_id]
    held = {h.symbol: h for h in broker.holdings()}
    assert held[under_test.not_held].quantity == 2
    assert held[under_test.not_held].sellable_quantity <= 2  # paper: 0 until T+1
    assert broker.funds().available_cash == pytest.approx(cash_before - 2 * price, abs=0.01)


def test_sell_reduces_holding(under_test: Any) -> None:
    broker = under_test.broker
    before = {h.symbol: h for h in broker.holdings()}[under_test.held]
    order_id = broker.place_order(
        OrderRequest(under_test.held, "NSE", Side.SELL, 5, order_tag("r", "a", 2))
    )
    assert broker.order(order_id).status is OrderStatus.COMPLETE
    after = {h.symbol: h for h in broker.holdings()}[under_test.held]
    assert after.quantity == before.quantity - 5
    assert after.sellable_quantity == before.sellable_quantity - 5


def test_sell_more_than_held_is_rejected(under_test: Any) -> None:
    broker = under_test.broker
    request = OrderRequest(under_test.held, "NSE", Side.SELL, 100_000, order_tag("r", "a", 3))
    if broker.name == "paper":  # the paper broker refuses at once
        with pytest.raises(OrderRejected, match=under_test.held):
            broker.place_order(request)
    else:  # real brokers accept, then their RMS rejects
        order_id = broker.place_order(request)
        report = broker.order(order_id)
        assert report.status is OrderStatus.REJECTED
        assert report.filled_quantity == 0
        assert report.message
    held = {h.symbol: h for h in broker.holdings()}[under_test.held]
    assert held.quantity > 0


def test_open_order_can_be_cancelled_once(under_test: Any) -> None:
    broker = under_test.broker
    order_id = under_test.make_open_order(order_tag("r", "a", 4))
    assert broker.order(order_id).status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)
    broker.cancel(order_id)
    report = broker.order(order_id)
    assert report.status is OrderStatus.CANCELLED
    assert report.status.is_terminal
    with pytest.raises(CancelRejected):
        broker.cancel(order_id)


def test_unknown_order(under_test: Any) -> None:
    with pytest.raises(OrderNotFound):
        under_test.broker.order("999999999999")


def test_empty_order_book(under_test: Any) -> None:
    assert under_test.broker.orders() == []
