"""The 2026 broker rules, end to end: the real kiteconnect / smartapi-python clients against the
emulators in their strict mode (the default)."""

from __future__ import annotations

from typing import Any

import pytest

from rebalance.brokers.base import (
    OrderRejected,
    OrderRequest,
    OrderStatus,
    SellNotAuthorised,
    UnregisteredIP,
    capabilities_of,
)
from rebalance.brokers.pricing import PricingKind, PricingPolicy, price_order
from rebalance.brokers.tags import child_tag, order_tag
from rebalance.domain.market import Instrument, Side
from rebalance.testing.emulators.kite import UNPROTECTED_MARKET

LEG = order_tag("rules-2026", "acct", 3)


def placed(em: Any) -> int:
    return sum(em.orders_by_tag.values())


def test_quotes_carry_tick_and_circuit(emulated: Any) -> None:
    q = emulated.broker.quotes([Instrument("INFY"), Instrument("ITC")])
    infy, itc = q["INFY"], q["ITC"]
    assert infy.tick_size == 0.05
    assert itc.tick_size == 0.05
    # The emulated band: 20% around the previous close (1872.40 for INFY).
    assert (infy.lower_circuit, infy.upper_circuit) == (1497.9, 2246.9)


def test_priced_limit_orders_are_accepted_and_fill(emulated: Any) -> None:
    broker = emulated.broker
    quote = broker.quotes([Instrument("INFY")])["INFY"]
    priced = price_order(Side.BUY, quote, PricingPolicy(limit_buffer_pct=0.5))
    order_id = broker.place_order(priced.request("INFY", "NSE", Side.BUY, 2, LEG))
    report = broker.order(order_id)
    assert report.status is OrderStatus.COMPLETE
    assert report.average_price == quote.last_price  # filled at the market, not the limit


def test_unprotected_market_order_is_refused_with_kites_words(kite: Any) -> None:
    from brokers_support import zerodha_broker  # type: ignore[import-not-found]

    broker = zerodha_broker(kite, default_market_protection=None)
    with pytest.raises(OrderRejected) as info:
        broker.place_order(OrderRequest("INFY", "NSE", Side.BUY, 1, LEG))
    assert UNPROTECTED_MARKET in str(info.value)
    assert placed(kite) == 0


def test_default_protection_makes_a_plain_market_order_acceptable(emulated: Any) -> None:
    """The switch that keeps today's pipeline (plain MARKET requests) working in strict mode."""
    broker = emulated.broker
    order_id = broker.place_order(OrderRequest("INFY", "NSE", Side.BUY, 1, LEG))
    assert broker.order(order_id).status is OrderStatus.COMPLETE
    book = emulated.emulator.orders[-1]
    if emulated.name == "zerodha":
        assert (book["order_type"], book["market_protection"]) == ("LIMIT", -1.0)
    else:  # AngelOne takes no market orders: the adapter priced a limit at +1%
        assert (book["ordertype"], book["price"]) == ("LIMIT", 1909.05)


def test_protected_order_rests_open_when_the_market_moved_away(emulated: Any) -> None:
    broker = emulated.broker
    emulated.emulator.faults.market_moves["INFY"] = 3.0  # trades 3% above the quote
    request = OrderRequest("INFY", "NSE", Side.BUY, 4, LEG, market_protection=1.0)
    order_id = broker.place_order(request)
    report = broker.order(order_id)
    assert (report.status, report.filled_quantity) == (OrderStatus.OPEN, 0)
    broker.cancel(order_id)
    assert broker.order(order_id).status is OrderStatus.CANCELLED
    # Round 1 with a wider protection and its own tag fills.
    child = OrderRequest("INFY", "NSE", Side.BUY, 4, child_tag(LEG, 1), market_protection=5.0)
    assert broker.order(broker.place_order(child)).status is OrderStatus.COMPLETE
    assert emulated.emulator.orders_for_tag(child_tag(LEG, 1)) == 1


def test_limit_outside_the_circuit_or_off_the_tick_is_refused(emulated: Any) -> None:
    broker = emulated.broker
    with pytest.raises(OrderRejected, match="circuit"):
        broker.place_order(OrderRequest("INFY", "NSE", Side.BUY, 1, LEG, price=2300.0))
    with pytest.raises(OrderRejected, match=r"[Tt]ick"):
        broker.place_order(OrderRequest("INFY", "NSE", Side.BUY, 1, LEG, price=1890.02))
    assert placed(emulated.emulator) == 0


def test_protected_market_order_priced_by_policy_is_accepted(emulated: Any) -> None:
    broker = emulated.broker
    quote = broker.quotes([Instrument("TCS")])["TCS"]
    policy = PricingPolicy(kind=PricingKind.MARKET, market_protection_pct=2.0)
    request = price_order(Side.SELL, quote, policy).request("TCS", "NSE", Side.SELL, 2, LEG)
    assert broker.order(broker.place_order(request)).status is OrderStatus.COMPLETE


def test_order_from_an_unregistered_ip_is_a_named_refusal(emulated: Any) -> None:
    em = emulated.emulator
    em.registered_ips = {"203.0.113.7"}
    broker = emulated.make(registered_ips=("203.0.113.7",))
    with pytest.raises(UnregisteredIP) as info:
        broker.place_order(OrderRequest("INFY", "NSE", Side.BUY, 1, LEG, price=1890.15))
    message = str(info.value)
    assert "203.0.113.7" in message
    assert "docs/deploy.md" in message
    assert "Not retried" in message
    assert em.orders_received == 1  # sent once, not retried
    assert placed(em) == 0
    assert broker.holdings()  # reads are not IP-checked


def test_unauthorised_sell_is_a_definite_refusal_and_authorisation_is_read(emulated: Any) -> None:
    em = emulated.emulator
    em.ddpi = False
    broker = emulated.make(demat_authorisation="tpin")
    infy = next(h for h in broker.holdings() if h.symbol == "INFY")
    assert (infy.authorised_quantity, infy.sellable_today) == (0, 0)
    with pytest.raises(SellNotAuthorised) as info:
        broker.place_order(OrderRequest("INFY", "NSE", Side.SELL, 5, LEG, price=1890.15))
    assert "authorise" in str(info.value)
    assert "TPIN" in str(info.value)
    assert placed(em) == 0
    em.authorise("INFY", 5)
    infy = next(h for h in broker.holdings() if h.symbol == "INFY")
    assert (infy.authorised_quantity, infy.sellable_today) == (5, 5)
    order_id = broker.place_order(OrderRequest("INFY", "NSE", Side.SELL, 5, LEG, price=1890.15))
    assert broker.order(order_id).status is OrderStatus.COMPLETE
    ddpi = emulated.make()  # demat_authorisation "ddpi": not applicable
    assert all(h.authorised_quantity is None for h in ddpi.holdings())


def test_tags_over_20_characters_are_refused_by_the_emulator(emulated: Any) -> None:
    """Our OrderRequest refuses them first; the emulator too, for a client that does not."""
    em = emulated.emulator
    if emulated.name == "zerodha":
        from kiteconnect import KiteConnect

        client = KiteConnect(em.api_key, access_token=em.access_token, root=em.url)
        with pytest.raises(Exception, match="tag"):
            client.place_order(
                variety="regular",
                exchange="NSE",
                tradingsymbol="INFY",
                transaction_type="BUY",
                quantity=1,
                product="CNC",
                order_type="LIMIT",
                price=1890.15,
                tag="A" * 21,
            )
    else:
        broker = emulated.broker
        broker.quotes([Instrument("INFY")])  # logs in
        resp = broker._session().placeOrderFullResponse(
            {
                "variety": "NORMAL",
                "tradingsymbol": "INFY-EQ",
                "symboltoken": "1594",
                "transactiontype": "BUY",
                "exchange": "NSE",
                "ordertype": "LIMIT",
                "producttype": "DELIVERY",
                "duration": "DAY",
                "price": "1890.15",
                "quantity": "1",
                "ordertag": "A" * 21,
            }
        )
        assert resp["status"] is False
        assert "20" in resp["message"]
    assert placed(em) == 0


def test_kite_counts_todays_buys_once_and_settles_them(kite: Any) -> None:
    from brokers_support import zerodha_broker

    broker = zerodha_broker(kite)
    assert capabilities_of(broker).same_day_quantities_reliable
    before = {h.symbol: h.quantity for h in broker.holdings()}
    broker.place_order(OrderRequest("INFY", "NSE", Side.BUY, 3, LEG, price=1899.0))
    broker.place_order(OrderRequest("ITC", "NSE", Side.BUY, 7, child_tag(LEG, 1), price=432.0))
    today = {h.symbol: h for h in broker.holdings()}
    assert today["INFY"].quantity == before["INFY"] + 3
    assert today["INFY"].bought_today == 3
    assert today["INFY"].sellable_quantity == before["INFY"]  # today's buy is not sellable
    assert (today["ITC"].quantity, today["ITC"].sellable_quantity) == (7, 0)
    kite.settle_day()  # next day: in holdings as T1, not in positions any more
    tomorrow = {h.symbol: h for h in broker.holdings()}
    assert tomorrow["INFY"].quantity == before["INFY"] + 3
    assert tomorrow["INFY"].bought_today == 0
    assert tomorrow["ITC"].quantity == 7


def test_angelone_quantity_is_not_double_counted(angel: Any, tmp_path: Any) -> None:
    from brokers_support import angelone_broker

    broker = angelone_broker(angel, tmp_path / "cache")
    angel.holdings["INFY"].t1_quantity = 4
    # Reading 1: quantity is the settled part (95) and T1 comes on top.
    assert next(h for h in broker.holdings() if h.symbol == "INFY").quantity == 99
    # Reading 2: quantity already includes T1 (99 = 95 realised + 4 T1): still 99.
    angel.faults.holdings_patch["INFY"] = {"quantity": 99, "realisedquantity": 95}
    held = next(h for h in broker.holdings() if h.symbol == "INFY")
    assert (held.quantity, held.sellable_quantity) == (99, 95)
    assert not capabilities_of(broker).same_day_quantities_reliable


def test_broker_charge_estimates(emulated: Any) -> None:
    broker = emulated.broker
    orders = [
        OrderRequest("INFY", "NSE", Side.BUY, 10, LEG, price=1890.15),
        OrderRequest("TCS", "NSE", Side.SELL, 2, child_tag(LEG, 1)),
    ]
    estimates = broker.estimate_charges(orders)
    assert [e.symbol for e in estimates] == ["INFY", "TCS"]
    assert estimates[0].price == 1890.15
    assert estimates[1].price == 4102.30
    assert all(e.total > 0 for e in estimates)
    assert estimates[0].total > 0.001 * 18901.5  # at least the STT
    assert placed(emulated.emulator) == 0  # an estimate places nothing


def test_kite_without_tick_sizes_still_quotes_and_prices_on_five_paise(
    kite: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from brokers_support import zerodha_broker
    from kiteconnect.exceptions import NetworkException

    broker = zerodha_broker(kite)

    def down(_exchange: str) -> None:
        raise NetworkException("Gateway timed out", code=503)

    broker._kite.instruments = down  # type: ignore[method-assign]  # the dump is unavailable
    quote = broker.quotes([Instrument("INFY")])["INFY"]
    assert quote.tick_size is None
    assert quote.upper_circuit == 2246.9
    priced = price_order(Side.BUY, quote, PricingPolicy())
    assert priced.notes == ("no tick size from the broker: rounded to ₹0.05",)
    assert "no tick sizes for NSE" in caplog.text


def test_tick_sizes_are_cached_for_the_day(kite: Any, tmp_path: Any) -> None:
    from brokers_support import zerodha_broker

    zerodha_broker(kite, cache_dir=tmp_path).quotes([Instrument("INFY")])
    assert (tmp_path / "kite-ticks-NSE.json").exists()
    downloads = sum(1 for _m, p in kite.requests if p.startswith("/instruments/"))
    zerodha_broker(kite, cache_dir=tmp_path).quotes([Instrument("TCS")])
    assert sum(1 for _m, p in kite.requests if p.startswith("/instruments/")) == downloads == 1
