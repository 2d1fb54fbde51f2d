"""Export an approved plan as a basket a person places by hand (the notes' manual queue, 13.4).

Pure: plan in (the plan JSON of the CLI contract: ``{"orders": [{"symbol", "exchange", "side",
"quantity", "price", ...}]}``), CSV text out; no Airflow, broker or database.

Layouts. Neither Kite's nor AngelOne's basket *import* file layout is published (searched Kite
Connect docs and forum, Zerodha support, SmartAPI docs and forum, December 2026; see
docs/brokers.md). The columns are therefore each broker's *documented order parameters*, under
the names its API uses, so a row maps one-to-one to an order a person (or a broker tool) enters:

* zerodha: Kite Connect v3 ``POST /orders/:variety`` and the Kite Publisher basket items:
  ``tradingsymbol, exchange, transaction_type, quantity, order_type, product, variety, price,
  market_protection, validity``;
* angelone: SmartAPI ``placeOrder``: ``variety, tradingsymbol, symboltoken, transactiontype,
  exchange, ordertype, producttype, duration, price, quantity``. ``symboltoken`` is required:
  the pipeline takes it from AngelOne's instrument master (``AngelOneBroker.symbol_tokens``); a
  symbol without one stops the export naming the symbol and the field.

Sells come first (they fund the buys). Prices follow ``pricing.price_order`` from the plan's
price (or a fresh quote when given): LIMIT with a buffer by default.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

from rebalance.brokers.pricing import PricingKind, PricingPolicy, price_order
from rebalance.brokers.symbols import angelone_symbol, canonical
from rebalance.domain.market import Quote, Side

KITE_COLUMNS = (
    "tradingsymbol",
    "exchange",
    "transaction_type",
    "quantity",
    "order_type",
    "product",
    "variety",
    "price",
    "market_protection",
    "validity",
)
ANGELONE_COLUMNS = (
    "variety",
    "tradingsymbol",
    "symboltoken",
    "transactiontype",
    "exchange",
    "ordertype",
    "producttype",
    "duration",
    "price",
    "quantity",
)
MAX_BASKET = 50  # Kite's basket holds 50 orders (Kite Publisher / basket orders): split beyond


class BasketError(ValueError):
    """A plan row that cannot become a basket order; the message names the row and field."""


def _leg(row: Any, n: int) -> tuple[str, str, Side, int, float]:
    where = f"plan order {n + 1}"
    if not isinstance(row, Mapping):
        raise BasketError(f"{where}: expected an object, got {type(row).__name__}")
    symbol = str(row.get("symbol") or "").strip().upper()
    if not symbol:
        raise BasketError(f"{where}: field 'symbol' is missing")
    exchange = str(row.get("exchange") or "NSE").strip().upper()
    if exchange not in ("NSE", "BSE"):
        raise BasketError(f"{where} ({symbol}): field 'exchange' is {exchange!r}, not NSE or BSE")
    try:
        side = Side(str(row.get("side", "")).upper())
    except ValueError:
        raise BasketError(
            f"{where} ({symbol}): field 'side' is {row.get('side')!r}, not BUY or SELL"
        ) from None
    quantity = row.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise BasketError(
            f"{where} ({symbol}): field 'quantity' is {quantity!r}, not a positive whole number"
        )
    price = row.get("price")
    if isinstance(price, bool) or not isinstance(price, int | float) or not price > 0:
        raise BasketError(f"{where} ({symbol}): field 'price' is {price!r}, not a price > 0")
    return canonical(symbol, exchange), exchange, side, quantity, float(price)


def basket_rows(
    plan: Mapping[str, Any],
    broker: str,
    *,
    policy: PricingPolicy | None = None,
    quotes: Mapping[str, Quote] | None = None,
    tokens: Mapping[str, str] | None = None,
) -> list[dict[str, str]]:
    """The basket's rows (column -> text), sells first. ``quotes`` (by symbol) give tick sizes,
    circuits and fresher prices; ``tokens`` (by symbol) AngelOne's symbol tokens."""
    if broker not in ("zerodha", "angelone"):
        raise BasketError(f"no basket layout for broker {broker!r}; known: zerodha, angelone")
    orders = plan.get("orders")
    if not isinstance(orders, list):
        raise BasketError("plan: field 'orders' is missing or not a list")
    policy = policy or PricingPolicy()
    legs = [_leg(row, n) for n, row in enumerate(orders)]
    legs.sort(key=lambda leg: 0 if leg[2] is Side.SELL else 1)
    out: list[dict[str, str]] = []
    for symbol, exchange, side, quantity, planned in legs:
        quote = (quotes or {}).get(symbol) or Quote(symbol, exchange, planned)
        priced = price_order(side, quote, policy)
        market = policy.kind is PricingKind.MARKET
        if broker == "zerodha":
            out.append(
                {
                    "tradingsymbol": symbol,
                    "exchange": exchange,
                    "transaction_type": str(side),
                    "quantity": str(quantity),
                    "order_type": "MARKET" if market else "LIMIT",
                    "product": "CNC",
                    "variety": "regular",
                    "price": "" if market else f"{priced.price:.2f}",
                    "market_protection": f"{priced.market_protection:g}" if market else "",
                    "validity": "DAY",
                }
            )
        else:
            # AngelOne: a limit at the protection price when the policy asks for "market".
            limit = priced.price if priced.price is not None else priced.worst_price
            if limit is None:  # automatic protection: price at the default band
                limit = price_order(side, quote, PricingPolicy(limit_buffer_pct=1.0)).price
            token = (tokens or {}).get(symbol, "")
            if not token:
                raise BasketError(
                    f"{exchange}:{symbol}: field 'symboltoken' has no value: the symbol is not in "
                    "AngelOne's instrument master (OpenAPIScripMaster.json)"
                )
            out.append(
                {
                    "variety": "NORMAL",
                    "tradingsymbol": angelone_symbol(symbol, exchange),
                    "symboltoken": token,
                    "transactiontype": str(side),
                    "exchange": exchange,
                    "ordertype": "LIMIT",
                    "producttype": "DELIVERY",
                    "duration": "DAY",
                    "price": f"{limit:.2f}",
                    "quantity": str(quantity),
                }
            )
    return out


def export_baskets(
    plan: Mapping[str, Any],
    broker: str,
    *,
    policy: PricingPolicy | None = None,
    quotes: Mapping[str, Quote] | None = None,
    tokens: Mapping[str, str] | None = None,
) -> list[str]:
    """The plan as CSV basket files (text), at most ``MAX_BASKET`` orders each, sells first."""
    rows = basket_rows(plan, broker, policy=policy, quotes=quotes, tokens=tokens)
    columns: Sequence[str] = KITE_COLUMNS if broker == "zerodha" else ANGELONE_COLUMNS
    files = []
    for start in range(0, max(len(rows), 1), MAX_BASKET):
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows[start : start + MAX_BASKET])
        files.append(buffer.getvalue())
    return files


__all__ = [
    "ANGELONE_COLUMNS",
    "KITE_COLUMNS",
    "MAX_BASKET",
    "BasketError",
    "basket_rows",
    "export_baskets",
]
