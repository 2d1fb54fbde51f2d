"""Order pricing (tick, circuit, buffer, protection), order requests and child tags: pure code."""

from __future__ import annotations

import pytest

from rebalance.brokers.base import OrderRequest
from rebalance.brokers.pricing import (
    PricingKind,
    PricingPolicy,
    clamp_to_circuit,
    price_order,
    round_to_tick,
)
from rebalance.brokers.tags import (
    CHILD_TAG_MAX_LEN,
    child_tag,
    is_order_tag,
    order_tag,
    split_tag,
    tag_belongs_to_run,
)
from rebalance.domain.market import Holding, Quote, Side


def quote(last: float = 1000.0, tick: float | None = 0.05, **kw: float) -> Quote:
    return Quote("INFY", "NSE", last, tick_size=tick, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("price", "tick", "side", "expected"),
    [
        (1005.03, 0.05, Side.BUY, 1005.0),  # buys round down: never pay beyond the buffer
        (1005.03, 0.05, Side.SELL, 1005.05),  # sells round up: never sell below it
        (1005.05, 0.05, Side.BUY, 1005.05),  # already on the grid (no float drift)
        (99.999, 0.01, Side.BUY, 99.99),
        (0.1 + 0.2, 0.1, Side.SELL, 0.3),
    ],
)
def test_round_to_tick(price: float, tick: float, side: Side, expected: float) -> None:
    assert round_to_tick(price, tick, side) == expected


def test_limit_buy_and_sell_with_buffer() -> None:
    policy = PricingPolicy(limit_buffer_pct=0.5)
    buy = price_order(Side.BUY, quote(1000.0), policy)
    sell = price_order(Side.SELL, quote(1000.0), policy)
    assert (buy.price, buy.market_protection) == (1005.0, None)
    assert sell.price == 995.0
    assert buy.notes == ()
    assert sell.worst_price == 995.0


def test_limit_is_clamped_to_the_circuit_and_stays_on_the_tick() -> None:
    q = quote(1000.0, upper_circuit=1002.0, lower_circuit=998.0)
    buy = price_order(Side.BUY, q, PricingPolicy(limit_buffer_pct=2))
    sell = price_order(Side.SELL, q, PricingPolicy(limit_buffer_pct=2))
    assert buy.price == 1002.0
    assert "upper circuit" in buy.notes[0]
    assert sell.price == 998.0
    assert "lower circuit" in sell.notes[0]
    # A band edge off the grid: the price stays inside the band and on the grid.
    off_grid = quote(1000.0, upper_circuit=1002.02, lower_circuit=997.98)
    assert price_order(Side.BUY, off_grid, PricingPolicy(limit_buffer_pct=2)).price == 1002.0
    assert price_order(Side.SELL, off_grid, PricingPolicy(limit_buffer_pct=2)).price == 998.0


def test_missing_tick_falls_back_to_five_paise_with_a_note() -> None:
    priced = price_order(Side.BUY, quote(1000.03, tick=None), PricingPolicy(limit_buffer_pct=0))
    assert priced.price == 1000.0
    assert "no tick size" in priced.notes[0]


def test_protected_market_order() -> None:
    policy = PricingPolicy(kind=PricingKind.MARKET, market_protection_pct=2.0)
    priced = price_order(Side.BUY, quote(500.0, upper_circuit=505.0), policy)
    assert (priced.price, priced.market_protection) == (None, 2.0)
    assert priced.worst_price == 505.0  # the protection price, clamped to the circuit
    auto = price_order(
        Side.SELL, quote(500.0), PricingPolicy(kind=PricingKind.MARKET, market_protection_pct=-1)
    )
    assert (auto.market_protection, auto.worst_price) == (-1, None)
    request = priced.request("INFY", "NSE", Side.BUY, 3, "ABC")
    assert (request.order_type, request.market_protection) == ("MARKET", 2.0)


def test_rounds_widen_the_buffer() -> None:
    policy = PricingPolicy(limit_buffer_pct=0.5, reprice_step_pct=0.5)
    prices = [price_order(Side.BUY, quote(1000.0), policy, round_number=n).price for n in (0, 1, 2)]
    assert prices == [1005.0, 1010.0, 1015.0]


def test_clamp_leaves_prices_inside_the_band() -> None:
    assert clamp_to_circuit(1000.0, quote(upper_circuit=1200.0, lower_circuit=800.0)) == (
        1000.0,
        None,
    )


@pytest.mark.parametrize("bad", [0, 0.0, -2, 101, True, "1"])
def test_market_protection_zero_or_out_of_range_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="market_protection"):
        OrderRequest("INFY", "NSE", Side.BUY, 1, "ABC", market_protection=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="market_protection"):
        PricingPolicy(kind=PricingKind.MARKET, market_protection_pct=bad)  # type: ignore[arg-type]


def test_order_request_rules() -> None:
    assert OrderRequest("INFY", "NSE", Side.BUY, 1, "A" * 20, market_protection=-1).tag
    with pytest.raises(ValueError, match="at most 20"):
        OrderRequest("INFY", "NSE", Side.BUY, 1, "A" * 21)
    with pytest.raises(ValueError, match="limit order carries its price"):
        OrderRequest("INFY", "NSE", Side.BUY, 1, "ABC", price=10.0, market_protection=1.0)
    with pytest.raises(ValueError, match="limit price must be > 0"):
        OrderRequest("INFY", "NSE", Side.BUY, 1, "ABC", price=0.0)
    assert OrderRequest("INFY", "NSE", Side.BUY, 1, "ABC", price=10.0).order_type == "LIMIT"


def test_child_tags_are_deterministic_and_within_20_characters() -> None:
    leg = order_tag("demo/2026-04-02T15:10:00+05:30", "zerodha_main", 7)
    assert child_tag(leg, 0) == leg  # round 0 keeps today's 15-character tag
    children = [child_tag(leg, n) for n in range(1, 100)]
    assert len(set(children)) == 99
    assert all(len(t) <= CHILD_TAG_MAX_LEN and t.isalnum() and t.startswith(leg) for t in children)
    assert child_tag(leg, 3) == child_tag(leg, 3) == f"{leg}R03"
    assert split_tag(child_tag(leg, 12)) == (leg, 12)
    assert split_tag(leg) == (leg, 0)
    assert is_order_tag(child_tag(leg, 5))
    assert tag_belongs_to_run(child_tag(leg, 5), "demo/2026-04-02T15:10:00+05:30", "zerodha_main")
    assert not tag_belongs_to_run(child_tag(leg, 5), "other-run", "zerodha_main")
    for bad_round in (-1, 100, True):
        with pytest.raises(ValueError, match="round"):
            child_tag(leg, bad_round)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a leg tag"):
        child_tag(child_tag(leg, 1), 2)
    with pytest.raises(ValueError, match="not one of our order tags"):
        split_tag("NOTOURS")


def test_sellable_today_respects_the_authorisation() -> None:
    ddpi = Holding("INFY", "NSE", 10, 8, 1.0, 1.0)
    tpin = Holding("INFY", "NSE", 10, 8, 1.0, 1.0, authorised_quantity=3)
    assert (ddpi.sellable_today, tpin.sellable_today) == (8, 3)


def test_authorisation_needed_lists_sells_beyond_the_authorisation() -> None:
    from rebalance.brokers.validation import authorisation_needed

    holdings = [
        Holding("INFY", "NSE", 10, 10, 1.0, 1.0, authorised_quantity=4),
        Holding("TCS", "NSE", 5, 5, 1.0, 1.0, authorised_quantity=5),
        Holding("ITC", "NSE", 9, 9, 1.0, 1.0),  # DDPI: not applicable
    ]
    needs = authorisation_needed(holdings, {"INFY": 6, "TCS": 5, "ITC": 9}, "zerodha")
    assert needs == [
        {
            "symbol": "INFY",
            "shares": 2,
            "authorised": 4,
            "where": "Kite > Holdings > Authorisation (CDSL TPIN), or sign the DDPI",
        }
    ]
