"""The manual-queue basket exporter: an approved plan as CSV baskets per broker layout."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from rebalance.brokers.basket import (
    ANGELONE_COLUMNS,
    KITE_COLUMNS,
    MAX_BASKET,
    BasketError,
    basket_rows,
    export_baskets,
)
from rebalance.brokers.pricing import PricingKind, PricingPolicy
from rebalance.domain.market import Quote

PLAN: dict[str, Any] = {
    "orders": [
        {"symbol": "INFY", "exchange": "NSE", "side": "BUY", "quantity": 3, "price": 1890.15},
        {"symbol": "TCS", "exchange": "NSE", "side": "SELL", "quantity": 2, "price": 4102.30},
        {"symbol": "ITC", "exchange": "BSE", "side": "BUY", "quantity": 10, "price": 199.99},
    ]
}


def parse(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_kite_basket_layout_sells_first_limit_with_buffer() -> None:
    (text,) = export_baskets(PLAN, "zerodha")
    assert text.splitlines()[0] == ",".join(KITE_COLUMNS)
    rows = parse(text)
    assert [r["tradingsymbol"] for r in rows] == ["TCS", "INFY", "ITC"]
    tcs, infy, itc = rows
    assert (tcs["transaction_type"], tcs["price"], tcs["order_type"]) == (
        "SELL",
        "4081.80",
        "LIMIT",
    )
    assert (infy["price"], infy["product"], infy["variety"]) == ("1899.60", "CNC", "regular")
    assert itc["price"] == "200.95"  # 199.99 * 1.005 = 200.989..., down to the 0.05 fallback tick
    assert {r["market_protection"] for r in rows} == {""}


def test_quotes_give_tick_and_circuit() -> None:
    quotes = {"ITC": Quote("ITC", "BSE", 199.99, tick_size=0.01, upper_circuit=200.5)}
    itc = next(
        r for r in basket_rows(PLAN, "zerodha", quotes=quotes) if r["tradingsymbol"] == "ITC"
    )
    assert itc["price"] == "200.50"  # 200.98 clamped to the upper circuit


def test_kite_protected_market_rows() -> None:
    policy = PricingPolicy(kind=PricingKind.MARKET, market_protection_pct=2)
    rows = basket_rows(PLAN, "zerodha", policy=policy)
    assert {(r["order_type"], r["price"], r["market_protection"]) for r in rows} == {
        ("MARKET", "", "2")
    }


TOKENS = {"INFY": "1594", "TCS": "11536", "ITC": "500875"}


def test_angelone_layout_uses_smartapi_names_and_limits() -> None:
    (text,) = export_baskets(PLAN, "angelone", tokens=TOKENS)
    assert text.splitlines()[0] == ",".join(ANGELONE_COLUMNS)
    rows = parse(text)
    assert [r["tradingsymbol"] for r in rows] == ["TCS-EQ", "INFY-EQ", "ITC"]  # BSE: no suffix
    assert [r["symboltoken"] for r in rows] == ["11536", "1594", "500875"]
    assert {r["ordertype"] for r in rows} == {"LIMIT"}
    auto = basket_rows(
        PLAN,
        "angelone",
        policy=PricingPolicy(kind=PricingKind.MARKET, market_protection_pct=-1),
        tokens=TOKENS,
    )
    assert auto[1]["price"] == "1909.05"  # INFY at +1%


def test_large_plans_split_into_baskets_of_50() -> None:
    plan = {
        "orders": [
            {"symbol": f"S{n}", "exchange": "NSE", "side": "BUY", "quantity": 1, "price": 100.0}
            for n in range(MAX_BASKET + 1)
        ]
    }
    files = export_baskets(plan, "zerodha")
    assert [len(parse(f)) for f in files] == [MAX_BASKET, 1]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"exchange": "NSE", "side": "BUY", "quantity": 1, "price": 1.0}, "'symbol' is missing"),
        ({"symbol": "A", "side": "HOLD", "quantity": 1, "price": 1.0}, "field 'side' is 'HOLD'"),
        ({"symbol": "A", "side": "BUY", "quantity": 1.5, "price": 1.0}, "field 'quantity' is 1.5"),
        ({"symbol": "A", "side": "BUY", "quantity": 0, "price": 1.0}, "field 'quantity' is 0"),
        ({"symbol": "A", "side": "BUY", "quantity": 1, "price": 0}, "field 'price' is 0"),
        ({"symbol": "A", "exchange": "MCX", "side": "BUY", "quantity": 1, "price": 1.0}, "MCX"),
    ],
)
def test_bad_rows_name_the_row_and_field(row: dict[str, Any], message: str) -> None:
    plan = {"orders": [PLAN["orders"][0], row]}
    with pytest.raises(BasketError, match="plan order 2") as info:
        basket_rows(plan, "zerodha")
    assert message in str(info.value)


def test_unknown_broker_and_missing_orders() -> None:
    with pytest.raises(BasketError, match="no basket layout for broker 'paper'"):
        basket_rows(PLAN, "paper")
    with pytest.raises(BasketError, match="'orders' is missing"):
        basket_rows({}, "zerodha")


def test_angelone_basket_without_a_symbol_token_names_the_symbol_and_field() -> None:
    with pytest.raises(BasketError, match=r"NSE:TCS: field 'symboltoken' has no value"):
        export_baskets(PLAN, "angelone", tokens={"INFY": "1594", "ITC": "500875"})
