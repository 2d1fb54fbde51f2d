"""The issue's scenarios against both emulated brokers, through the real client libraries."""

from __future__ import annotations

from typing import Any

import pytest

from rebalance.brokers.base import (
    AuthError,
    BadResponse,
    OrderOutcomeUnknown,
    OrderRejected,
    OrderRequest,
    OrderStatus,
    RateLimited,
    SellNotAuthorised,
    TemporaryBrokerError,
)
from rebalance.brokers.ratelimit import UNLIMITED
from rebalance.brokers.retry import RetryPolicy
from rebalance.brokers.tags import order_tag
from rebalance.brokers.validation import rejection_error
from rebalance.domain.market import Instrument, Side
from rebalance.testing.emulators import MISSING

TAG = order_tag("scenario-run", "acct", 7)


def sell(symbol: str = "INFY", qty: int = 5, tag: str = TAG) -> OrderRequest:
    return OrderRequest(symbol, "NSE", Side.SELL, qty, tag)


def placements(em: Any) -> int:
    return int(em.orders_received)


def test_success_round_trip(emulated: Any) -> None:
    broker = emulated.broker
    assert {h.symbol for h in broker.holdings()} >= {"INFY", "TCS", "RELIANCE"}
    order_id = broker.place_order(sell())
    report = broker.order(order_id)
    assert report.status is OrderStatus.COMPLETE
    assert report.tag == TAG
    assert emulated.emulator.orders_for_tag(TAG) == 1


def test_expired_token_fails_fast_with_how_to_fix(emulated: Any) -> None:
    em = emulated.emulator
    em.faults.expired_token = True
    broker = emulated.broker
    with pytest.raises(AuthError) as info:
        broker.holdings()
    if emulated.name == "zerodha":
        assert "rebalance broker login zerodha" in str(info.value)
        assert len(em.requests) == 1  # not retried
    else:
        assert "AngelOne" in str(info.value) or "angelone" in str(info.value)
    with pytest.raises(AuthError):
        broker.place_order(sell())
    assert em.orders_for_tag(TAG) == 0


def test_rate_limited_read_is_retried(emulated: Any) -> None:
    em = emulated.emulator
    broker = emulated.broker
    broker.funds()  # log in first (AngelOne)
    em.faults.rate_limit_next = 2
    before = len(em.requests)
    assert broker.funds().available_cash > 0
    assert len(em.requests) - before == 3  # two 429s, then the answer


def test_rate_limited_until_attempts_run_out(emulated: Any) -> None:
    em = emulated.emulator
    broker = emulated.make(retry=RetryPolicy(attempts=2, base_delay=0, max_delay=0))
    broker.funds()
    em.faults.rate_limit_next = 5
    with pytest.raises(RateLimited):
        broker.funds()


def test_read_timeout_is_temporary_and_retried(emulated: Any) -> None:
    em = emulated.emulator
    broker = emulated.make(timeout=0.2, retry=RetryPolicy(attempts=2, base_delay=0, max_delay=0))
    broker.funds()
    em.faults.slow_seconds = 0.4
    with pytest.raises(TemporaryBrokerError) as info:
        broker.holdings()
    assert "timed out" in str(info.value)
    em.faults.slow_seconds = 0.0
    assert broker.holdings()


def test_server_error_on_read_is_retried(emulated: Any) -> None:
    em = emulated.emulator
    broker = emulated.broker
    broker.funds()
    em.faults.server_error_next = 1
    assert broker.holdings()


def test_order_rejected_is_definitive(emulated: Any) -> None:
    em = emulated.emulator
    em.faults.reject_next_order = "Insufficient funds. Required margin is 95417.84"
    broker = emulated.broker
    with pytest.raises(OrderRejected) as info:
        broker.place_order(OrderRequest("TCS", "NSE", Side.BUY, 30, TAG))
    assert not isinstance(info.value, SellNotAuthorised)
    assert "Insufficient funds" in str(info.value)
    assert em.orders_for_tag(TAG) == 0


def test_partial_fill_then_cancel(emulated: Any) -> None:
    em = emulated.emulator
    em.faults.partial_fill["TCS"] = 3
    broker = emulated.broker
    order_id = broker.place_order(sell("TCS", 10))
    report = broker.order(order_id)
    assert report.status is OrderStatus.PARTIALLY_FILLED
    assert report.filled_quantity == 3
    assert report.average_price == pytest.approx(4102.30)
    broker.cancel(order_id)
    report = broker.order(order_id)
    assert report.status is OrderStatus.CANCELLED
    assert report.filled_quantity == 3


def test_sell_without_authorisation_is_explained_per_symbol(emulated: Any) -> None:
    em = emulated.emulator
    em.faults.unauthorised_sells.add("INFY")
    broker = emulated.broker
    order_id = broker.place_order(sell("INFY", 5))
    report = broker.order(order_id)
    assert report.status is OrderStatus.REJECTED
    assert report.message is not None
    assert "INFY" in report.message
    assert "not authorised for sale" in report.message
    assert "DDPI" in report.message
    err = rejection_error(report, emulated.name)
    assert isinstance(err, SellNotAuthorised)
    assert err.details["symbol"] == "INFY"
    # A sell of another scrip goes through.
    assert broker.order(broker.place_order(sell("TCS", 1))).status is OrderStatus.COMPLETE


def test_sell_refused_at_placement_raises_sell_not_authorised(emulated: Any) -> None:
    em = emulated.emulator
    em.faults.reject_next_order = "Holdings not authorised: please complete eDIS with your TPIN"
    with pytest.raises(SellNotAuthorised) as info:
        emulated.broker.place_order(sell("RELIANCE", 2))
    assert "RELIANCE" in str(info.value)
    assert "not authorised for sale" in str(info.value)


def test_accepted_then_reply_times_out_is_unknown_and_reconcilable(emulated: Any) -> None:
    em = emulated.emulator
    em.faults.place_then_timeout = 1
    em.faults.timeout_delay = 0.6
    broker = emulated.make(timeout=0.3)
    broker.funds()
    with pytest.raises(OrderOutcomeUnknown) as info:
        broker.place_order(sell())
    assert "reconcile" in str(info.value)
    assert placements(em) == 1  # never resent
    assert em.orders_for_tag(TAG) == 1  # but it was placed
    assert [r.tag for r in broker.orders()] == [TAG]


def test_timeout_without_placing_is_unknown_and_not_resent(emulated: Any) -> None:
    em = emulated.emulator
    em.faults.timeout_without_placing = 1
    em.faults.timeout_delay = 0.6
    broker = emulated.make(timeout=0.3)
    broker.funds()
    with pytest.raises(OrderOutcomeUnknown):
        broker.place_order(sell())
    assert placements(em) == 1
    assert em.orders_for_tag(TAG) == 0
    assert broker.orders() == []


def test_server_error_on_placement_is_unknown_not_retried(emulated: Any) -> None:
    em = emulated.emulator
    broker = emulated.broker
    broker.funds()
    em.faults.server_error_next = 1
    # A limit: AngelOne prices a protected market order from a quote first (a read, retried).
    with pytest.raises(OrderOutcomeUnknown):
        broker.place_order(OrderRequest("INFY", "NSE", Side.SELL, 5, TAG, price=1890.15))
    sent = [
        p for m, p in em.requests if m == "POST" and ("placeOrder" in p or p.endswith("/regular"))
    ]
    assert len(sent) == 1


FIELD_NAMES = {
    "zerodha": {"avg": "average_price", "qty": "quantity", "price": "last_price"},
    "angelone": {"avg": "averageprice", "qty": "quantity", "price": "ltp"},
}


def test_missing_field_in_holdings_is_a_clear_bad_response(emulated: Any) -> None:
    name = FIELD_NAMES[emulated.name]["avg"]
    emulated.emulator.faults.holdings_patch["TCS"] = {name: MISSING}
    with pytest.raises(BadResponse) as info:
        emulated.broker.holdings()
    assert "TCS" in str(info.value)
    assert f"'{name}' is missing" in str(info.value)


def test_zero_price_in_quote_is_a_clear_bad_response(emulated: Any) -> None:
    name = FIELD_NAMES[emulated.name]["price"]
    emulated.emulator.faults.quote_patch["INFY"] = {name: 0}
    with pytest.raises(BadResponse) as info:
        emulated.broker.quotes([Instrument("INFY")])
    assert "INFY" in str(info.value)
    assert "not a usable price" in str(info.value)


def test_negative_quantity_in_holdings_is_a_clear_bad_response(emulated: Any) -> None:
    name = FIELD_NAMES[emulated.name]["qty"]
    emulated.emulator.faults.holdings_patch["RELIANCE"] = {name: -10}
    with pytest.raises(BadResponse) as info:
        emulated.broker.holdings()
    assert "RELIANCE" in str(info.value)
    assert "negative quantity" in str(info.value)


def test_non_numeric_price_is_a_clear_bad_response(emulated: Any) -> None:
    name = FIELD_NAMES[emulated.name]["price"]
    emulated.emulator.faults.holdings_patch["INFY"] = {name: "n/a"}
    with pytest.raises(BadResponse, match="not a number"):
        emulated.broker.holdings()


def test_quotes_are_batched_within_the_limit(emulated: Any) -> None:
    em = emulated.emulator
    limits = UNLIMITED.with_overrides({"quote_batch_size": 2})
    broker = emulated.make(limits=limits)
    broker.funds()
    before = len(em.requests)
    symbols = ["INFY", "TCS", "RELIANCE", "HDFCBANK", "ITC"]
    quotes = broker.quotes([Instrument(s) for s in symbols])
    assert set(quotes) == set(symbols)
    quote_calls = [p for _m, p in em.requests[before:] if "quote" in p]
    assert len(quote_calls) == 3
