"""Zerodha, through the official ``kiteconnect`` client (Kite Connect v3).

* Credentials: ``api_key`` and the day's ``access_token`` (see ``factory.py`` for the connection
  layout). The access token expires every morning (~06:00 IST): an expired one raises ``AuthError``
  telling the user to run ``rebalance broker login zerodha``.
* The client's debug mode (which prints headers with the token) is always off.
* Instruments are "NSE:INFY"; quotes go in batches of ``limits.quote_batch_size`` (Kite: 500).
* Orders are CNC (delivery), variety "regular", and carry our idempotency key in ``tag``.
* Reads are rate-limited and retried on ``TemporaryBrokerError``; placement is rate-limited and
  never retried: a timeout or 5xx after sending raises ``OrderOutcomeUnknown``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import requests

from rebalance.brokers.base import (
    AuthError,
    BadResponse,
    BrokerError,
    CancelRejected,
    Funds,
    Holding,
    Instrument,
    OrderNotFound,
    OrderOutcomeUnknown,
    OrderRejected,
    OrderReport,
    OrderRequest,
    OrderStatus,
    Quote,
    RateLimited,
    SellNotAuthorised,
    Side,
    TemporaryBrokerError,
)
from rebalance.brokers.ratelimit import ZERODHA_LIMITS, BrokerLimiters, RateLimits
from rebalance.brokers.retry import RetryPolicy, retry_read
from rebalance.brokers.symbols import canonical, kite_instrument
from rebalance.brokers.validation import (
    Fields,
    is_sell_not_authorised,
    sell_not_authorised_text,
)
from rebalance.schedule import IST

T = TypeVar("T")
NAME = "zerodha"
LOGIN_HINT = (
    "the Kite access token is missing, expired or invalid (it expires every morning); "
    "log in again with `rebalance broker login zerodha --api-key <key> --request-token <token>`"
)
_OPEN_STATES = {
    "OPEN",
    "OPEN PENDING",
    "VALIDATION PENDING",
    "PUT ORDER REQ RECEIVED",
    "TRIGGER PENDING",
    "AMO REQ RECEIVED",
    "MODIFY VALIDATION PENDING",
    "MODIFY PENDING",
    "MODIFIED",
    "CANCEL PENDING",
}

# The client logs requests with headers only in debug mode; keep its logger quiet regardless.
logging.getLogger("kiteconnect").setLevel(logging.WARNING)


class ZerodhaBroker:
    """One Zerodha account over Kite Connect: ``ZerodhaBroker(api_key, access_token)``."""

    name = NAME

    def __init__(
        self,
        api_key: str,
        access_token: str,
        *,
        root: str | None = None,
        timeout: float = 7.0,
        limits: RateLimits = ZERODHA_LIMITS,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        from kiteconnect import KiteConnect

        if not api_key:
            raise AuthError(NAME, "the connection has no api_key (login field)")
        if not access_token:
            raise AuthError(NAME, LOGIN_HINT)
        self._kite = KiteConnect(
            api_key, access_token=access_token, root=root, timeout=timeout, debug=False
        )
        self._kite.debug = False
        self.limits = limits
        self._limiters = BrokerLimiters(limits)  # real sleeps: the limit is real time
        self._retry = retry or RetryPolicy()
        self._sleep = sleep

    def __repr__(self) -> str:  # never show the token
        return f"ZerodhaBroker(root={self._kite.root!r})"

    # --- plumbing ---------------------------------------------------------------------------

    def _read(self, what: str, call: Callable[[], T], *, quote: bool = False) -> T:
        limiter = self._limiters.quotes if quote else self._limiters.reads

        def once() -> T:
            limiter.acquire()
            try:
                return call()
            except Exception as exc:
                raise translate(exc, what=what, placing=False) from None

        if self._sleep is not None:
            return retry_read(once, what=f"zerodha {what}", policy=self._retry, sleep=self._sleep)
        return retry_read(once, what=f"zerodha {what}", policy=self._retry)

    # --- reads ------------------------------------------------------------------------------

    def holdings(self) -> list[Holding]:
        data = self._read("holdings", self._kite.holdings)
        if not isinstance(data, list):
            raise BadResponse(NAME, f"holdings: expected a list, got {type(data).__name__}")
        out = []
        for rec in data:
            f = Fields(NAME, "holdings", rec)
            symbol = f.text("tradingsymbol")
            f.label = symbol
            exchange = f.text("exchange").upper()
            settled = f.quantity("quantity")
            t1 = f.quantity("t1_quantity", default=0)
            used = f.quantity("used_quantity", default=0)
            collateral = f.quantity("collateral_quantity", default=0)
            total = settled + t1 - used
            if total < 0:
                raise f.bad("used_quantity", f"exceeds quantity + t1_quantity ({settled + t1})")
            if total == 0:
                continue
            out.append(
                Holding(
                    symbol=canonical(symbol, exchange),
                    exchange=exchange,
                    quantity=total,
                    sellable_quantity=max(0, total - collateral),
                    average_price=f.number("average_price"),
                    last_price=f.price("last_price"),
                    isin=f.opt_text("isin"),
                )
            )
        return out

    def quotes(self, instruments: Sequence[Instrument]) -> dict[str, Quote]:
        keys = list(dict.fromkeys(kite_instrument(i.symbol, i.exchange) for i in instruments))
        out: dict[str, Quote] = {}
        size = max(1, self.limits.quote_batch_size)
        for start in range(0, len(keys), size):
            batch = keys[start : start + size]
            data = self._read("quote", functools.partial(self._kite.quote, batch), quote=True)
            if not isinstance(data, dict):
                raise BadResponse(NAME, f"quote: expected an object, got {type(data).__name__}")
            for key, rec in data.items():
                if key not in batch:
                    continue
                exchange, _, symbol = key.partition(":")
                f = Fields(NAME, "quote", rec, key)
                ohlc = rec.get("ohlc") if isinstance(rec, dict) else None
                prev = 0.0
                if ohlc:
                    prev = Fields(NAME, "quote", ohlc, key).number("close", default=0.0)
                ts = rec.get("last_trade_time") or rec.get("timestamp")
                out[symbol] = Quote(
                    symbol=symbol,
                    exchange=exchange,
                    last_price=f.price("last_price"),
                    previous_close=prev if prev > 0 else None,
                    as_of=_as_ist(ts),
                )
        return out

    def funds(self) -> Funds:
        data = self._read("margins", lambda: self._kite.margins("equity"))
        f = Fields(NAME, "margins", data, "equity")
        return Funds(available_cash=f.number("net"))

    def orders(self) -> list[OrderReport]:
        data = self._read("orders", self._kite.orders)
        if not isinstance(data, list):
            raise BadResponse(NAME, f"orders: expected a list, got {type(data).__name__}")
        return [self._report(rec) for rec in data]

    def order(self, broker_order_id: str) -> OrderReport:
        data = self._read(
            f"order {broker_order_id}", lambda: self._kite.order_history(broker_order_id)
        )
        if not isinstance(data, list) or not data:
            raise OrderNotFound(NAME, f"no order {broker_order_id} in today's order book")
        return self._report(data[-1])

    def _report(self, rec: Any) -> OrderReport:
        f = Fields(NAME, "orders", rec)
        order_id = f.text("order_id")
        f.label = order_id
        symbol = canonical(f.text("tradingsymbol"), f.text("exchange"))
        raw = f.text("status").upper()
        side = f.text("transaction_type").upper()
        if side not in ("BUY", "SELL"):
            raise f.bad("transaction_type", f"is {side!r}, expected BUY or SELL")
        quantity = f.quantity("quantity")
        filled = f.quantity("filled_quantity", default=0)
        if filled > quantity:
            raise f.bad("filled_quantity", f"{filled} exceeds the order quantity {quantity}")
        status = _status(raw, filled)
        if status is None:
            raise f.bad("status", f"is {raw!r}, an order state we do not know")
        message = f.opt_text("status_message")
        if status is OrderStatus.REJECTED and side == "SELL" and is_sell_not_authorised(message):
            message = f"{sell_not_authorised_text(symbol, quantity, NAME)} ({message})"
        avg = f.number("average_price", default=0.0)
        return OrderReport(
            broker_order_id=order_id,
            tag=f.opt_text("tag"),
            symbol=symbol,
            exchange=f.text("exchange").upper(),
            side=Side(side),
            quantity=quantity,
            status=status,
            filled_quantity=filled,
            average_price=avg if filled and avg > 0 else None,
            message=message,
            raw_status=raw,
        )

    # --- writes -----------------------------------------------------------------------------

    def place_order(self, order: OrderRequest) -> str:
        symbol = canonical(order.symbol, order.exchange)
        self._limiters.orders.acquire()
        try:
            order_id = self._kite.place_order(
                variety="regular",
                exchange=order.exchange.upper(),
                tradingsymbol=symbol,
                transaction_type=str(order.side),
                quantity=order.quantity,
                product="CNC",
                order_type="MARKET" if order.price is None else "LIMIT",
                price=order.price,
                validity="DAY",
                tag=order.tag,
            )
        except Exception as exc:
            err = translate(exc, what=f"place {order.side} {symbol}", placing=True)
            if isinstance(err, SellNotAuthorised):
                err.message = sell_not_authorised_text(symbol, order.quantity, NAME) + (f" ({exc})")
            err.details.setdefault("symbol", symbol)
            err.details.setdefault("tag", order.tag)
            raise err from None
        if not order_id:
            raise OrderOutcomeUnknown(
                NAME,
                f"place {order.side} {symbol}: the reply carried no order_id; "
                f"reconcile by tag {order.tag}",
                {"tag": order.tag, "symbol": symbol},
            )
        return str(order_id)

    def cancel(self, broker_order_id: str) -> None:
        self._limiters.orders.acquire()
        try:
            self._kite.cancel_order(variety="regular", order_id=broker_order_id)
        except Exception as exc:
            err = translate(exc, what=f"cancel {broker_order_id}", placing=False)
            if type(err) is BrokerError:
                err = CancelRejected(NAME, err.message, err.details)
            raise err from None


def _status(raw: str, filled: int) -> OrderStatus | None:
    if raw == "COMPLETE":
        return OrderStatus.COMPLETE
    if raw == "REJECTED":
        return OrderStatus.REJECTED
    if raw == "CANCELLED":
        return OrderStatus.CANCELLED
    if raw in _OPEN_STATES:
        return OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.OPEN
    return None


def _as_ist(ts: Any) -> datetime | None:
    if isinstance(ts, datetime):
        return ts if ts.tzinfo else ts.replace(tzinfo=IST)
    if isinstance(ts, str) and ts:
        try:
            parsed = datetime.fromisoformat(ts)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=IST)
    return None


def translate(exc: Exception, *, what: str, placing: bool) -> BrokerError:
    """Our error for a kiteconnect / requests exception. ``placing``: during order placement."""
    from kiteconnect import exceptions as kex

    code = getattr(exc, "code", None)
    text = str(exc) or type(exc).__name__
    details = {"call": what, "error": type(exc).__name__}
    if code is not None:
        details["http_status"] = str(code)
    if isinstance(exc, BrokerError):
        return exc
    if isinstance(exc, kex.TokenException):
        return AuthError(NAME, f"{what}: {LOGIN_HINT} (Kite said: {text})", details)
    if isinstance(exc, kex.PermissionException):
        return AuthError(NAME, f"{what}: permission denied by Kite: {text}", details)
    if placing:
        if isinstance(exc, kex.OrderException | kex.InputException) and code != 429:
            if is_sell_not_authorised(text):
                return SellNotAuthorised(NAME, f"{what}: {text}", details)
            return OrderRejected(NAME, f"{what}: rejected by Zerodha: {text}", details)
        # 429, 5xx, network errors, timeouts, unreadable replies: we cannot know if it was placed.
        return OrderOutcomeUnknown(
            NAME,
            f"{what}: outcome unknown ({_describe(exc)}); reconcile by tag, do not resend",
            details,
        )
    if code == 429 or "too many requests" in text.lower():
        return RateLimited(NAME, f"{what}: rate limited by Kite (HTTP 429)", details)
    if isinstance(exc, requests.Timeout):
        return TemporaryBrokerError(NAME, f"{what}: timed out", details)
    if isinstance(exc, requests.RequestException):
        return TemporaryBrokerError(NAME, f"{what}: network error ({_describe(exc)})", details)
    if isinstance(exc, kex.DataException) and (
        text.startswith("Couldn't parse") or text.startswith("Unknown Content-Type")
    ):
        return BadResponse(NAME, f"{what}: unreadable reply from Kite", details)
    if isinstance(exc, kex.NetworkException | kex.DataException):
        return TemporaryBrokerError(NAME, f"{what}: Kite is unavailable ({text})", details)
    if isinstance(exc, kex.GeneralException) and (code or 500) >= 500:
        return TemporaryBrokerError(NAME, f"{what}: Kite error {code}: {text}", details)
    if isinstance(exc, kex.InputException) and "order" in what and "order_id" in text.lower():
        return OrderNotFound(NAME, f"{what}: {text}", details)
    if isinstance(exc, kex.KiteException):
        return BrokerError(NAME, f"{what}: {text}", details)
    if isinstance(exc, KeyError | TypeError | ValueError):
        return BadResponse(NAME, f"{what}: unexpected reply from Kite ({_describe(exc)})", details)
    return BrokerError(NAME, f"{what}: {_describe(exc)}", details)


def _describe(exc: Exception) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return f"{type(exc).__name__}: {exc}"


__all__ = ["LOGIN_HINT", "ZerodhaBroker", "translate"]
