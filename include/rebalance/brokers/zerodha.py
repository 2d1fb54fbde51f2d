"""Zerodha, through the official ``kiteconnect`` client (Kite Connect v3).

* Credentials: ``api_key`` and the day's ``access_token`` (see ``factory.py`` for the connection
  layout). The access token expires every morning (~06:00 IST): an expired one raises ``AuthError``
  telling the user to run ``rebalance broker login zerodha``.
* The client's debug mode (which prints headers with the token) is always off.
* Instruments are "NSE:INFY"; quotes go in batches of ``limits.quote_batch_size`` (Kite: 500).
* Orders are CNC (delivery), variety "regular", and carry our idempotency key in ``tag``. A
  MARKET order always carries ``market_protection`` (since 1 April 2026 Kite refuses it
  without): the request's own, else the adapter's ``default_market_protection`` (-1, automatic).
* Quotes carry the day's circuit limits (``/quote``) and the tick size (the instrument dump,
  downloaded once per IST day per exchange and cached).
* Holdings: settled + T1 from ``/portfolio/holdings``, plus today's delivery buys from the day's
  CNC positions (Kite shows a buy in positions on the trade day and in holdings from the next).
  ``authorised_quantity`` is read when the account sells with CDSL TPIN (``demat_authorisation``
  "tpin"); with a DDPI / POA it does not apply (None).
* Reads are rate-limited and retried on ``TemporaryBrokerError``; placement is rate-limited and
  never retried: a timeout or 5xx after sending raises ``OrderOutcomeUnknown``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import requests

from rebalance.brokers.base import (
    AUTO_PROTECTION,
    AuthError,
    BadResponse,
    BrokerCapabilities,
    BrokerError,
    CancelRejected,
    Candle,
    ChargeEstimate,
    Funds,
    OrderNotFound,
    OrderOutcomeUnknown,
    OrderRejected,
    OrderReport,
    OrderRequest,
    OrderStatus,
    RateLimited,
    SellNotAuthorised,
    TemporaryBrokerError,
    UnregisteredIP,
    check_market_protection,
)
from rebalance.brokers.candles import date_windows, kite_candles
from rebalance.brokers.ratelimit import ZERODHA_LIMITS, BrokerLimiters, OrderGate, RateLimits
from rebalance.brokers.retry import RetryPolicy, retry_read
from rebalance.brokers.symbols import canonical, kite_instrument
from rebalance.brokers.validation import (
    Fields,
    is_sell_not_authorised,
    is_unregistered_ip,
    sell_not_authorised_text,
    unregistered_ip_text,
)
from rebalance.domain.market import IST, Holding, Instrument, Quote, Side

T = TypeVar("T")
NAME = "zerodha"
log = logging.getLogger(__name__)
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
    capabilities = BrokerCapabilities(
        same_day_quantities_reliable=True,
        reads_sell_authorisation=True,
        charge_estimates=True,
    )

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
        default_market_protection: float | None = AUTO_PROTECTION,
        demat_authorisation: str = "ddpi",
        registered_ips: Sequence[str] = (),
        order_gate: OrderGate | None = None,
        cache_dir: Path | None = None,
        today: Callable[[], date] | None = None,
    ) -> None:
        """``default_market_protection``: what a MARKET request without its own protection gets
        (-1 = Kite's automatic band; None sends it unprotected, which Kite refuses).
        ``demat_authorisation``: "ddpi" (DDPI / POA: every sellable share may be sold) or
        "tpin" (each day's sells need CDSL TPIN authorisation: ``authorised_quantity`` applies).
        ``registered_ips``: the static IPs registered for the API key (named in refusals).
        ``order_gate``: the account's cross-process order limiter (``SharedOrderLimiter``);
        None = this process's limiter only. ``cache_dir``: where the day's tick sizes are kept.
        """
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
        if default_market_protection is not None:
            check_market_protection(default_market_protection, "default_market_protection")
        self.default_market_protection = default_market_protection
        if demat_authorisation not in ("ddpi", "tpin"):
            raise ValueError(
                f"demat_authorisation must be 'ddpi' or 'tpin', got {demat_authorisation!r}"
            )
        self.demat_authorisation = demat_authorisation
        self.registered_ips = tuple(registered_ips)
        self._gate = order_gate
        self._cache_dir = Path(cache_dir) if cache_dir else None
        self._today = today or (lambda: datetime.now(IST).date())
        self._ticks: dict[str, dict[str, float]] = {}  # exchange -> symbol -> tick (rupees)
        self._tokens: dict[str, dict[str, int]] = {}  # exchange -> symbol -> instrument token

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
        bought = self._day_buys()
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
            held = settled + t1 - used
            if held < 0:
                raise f.bad("used_quantity", f"exceeds quantity + t1_quantity ({settled + t1})")
            key = (exchange, canonical(symbol, exchange))
            today = bought.pop(key, None)
            today_qty = today[0] if today else 0
            if held + today_qty == 0:
                continue
            authorised = None
            if self.demat_authorisation == "tpin":
                authorised = f.quantity("authorised_quantity", default=0)
            out.append(
                Holding(
                    symbol=key[1],
                    exchange=exchange,
                    quantity=held + today_qty,
                    sellable_quantity=max(0, held - collateral),
                    average_price=f.number("average_price"),
                    last_price=f.price("last_price"),
                    isin=f.opt_text("isin"),
                    authorised_quantity=authorised,
                    bought_today=today_qty,
                )
            )
        # Bought today and not held before: only in positions until tomorrow.
        for (exchange, symbol), (qty, avg, last) in bought.items():
            out.append(
                Holding(
                    symbol=symbol,
                    exchange=exchange,
                    quantity=qty,
                    sellable_quantity=0,
                    average_price=avg,
                    last_price=last,
                    authorised_quantity=0 if self.demat_authorisation == "tpin" else None,
                    bought_today=qty,
                )
            )
        return out

    def _day_buys(self) -> dict[tuple[str, str], tuple[int, float, float]]:
        """Today's delivery (CNC) buys on NSE/BSE from the day's positions:
        (exchange, symbol) -> (shares, average buy price, last price).

        Sells of holdings are already netted in the holdings' ``used_quantity``; only the day's
        buys are added, so nothing is counted twice.
        """
        data = self._read("positions", self._kite.positions)
        day = data.get("day") if isinstance(data, dict) else None
        if not isinstance(day, list):
            raise BadResponse(NAME, "positions: expected an object with a 'day' list")
        out: dict[tuple[str, str], tuple[int, float, float]] = {}
        for rec in day:
            f = Fields(NAME, "positions", rec)
            if str(rec.get("product", "")).upper() != "CNC":
                continue
            exchange = f.text("exchange").upper()
            if exchange not in ("NSE", "BSE"):
                continue
            symbol = f.text("tradingsymbol")
            f.label = symbol
            qty = f.quantity("day_buy_quantity", default=0)
            if qty == 0:
                continue
            out[(exchange, canonical(symbol, exchange))] = (
                qty,
                f.number("day_buy_price", default=0.0) or f.number("average_price", default=0.0),
                f.price("last_price"),
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
                upper = f.number("upper_circuit_limit", default=0.0)
                lower = f.number("lower_circuit_limit", default=0.0)
                out[symbol] = Quote(
                    symbol=symbol,
                    exchange=exchange,
                    last_price=f.price("last_price"),
                    previous_close=prev if prev > 0 else None,
                    as_of=_as_ist(ts),
                    tick_size=self.tick_size(symbol, exchange),
                    upper_circuit=upper if upper > 0 else None,
                    lower_circuit=lower if lower > 0 else None,
                )
        return out

    def candles(self, instrument: Instrument, first: date, last: date) -> list[Candle]:
        """Daily candles (Kite historical data, ``interval=day``), by the instrument token."""
        token = self.instrument_token(instrument.symbol, instrument.exchange)
        what = f"historical data {instrument.exchange}:{instrument.symbol}"
        if token is None:
            raise BadResponse(NAME, f"{what}: no instrument token in today's instrument dump")
        rows: list[Any] = []
        for start, end in date_windows(first, last):
            call = functools.partial(
                self._kite.historical_data,
                token,
                f"{start.isoformat()} 00:00:00",
                f"{end.isoformat()} 23:59:59",
                "day",
            )
            rows += kite_candles(self._read(what, call), what)
        return rows

    def instrument_token(self, symbol: str, exchange: str = "NSE") -> int | None:
        """Kite's instrument token of an equity, from the instrument dump (read once)."""
        exchange = exchange.upper()
        if exchange not in self._tokens:
            rows = self._read(f"instruments {exchange}", lambda: self._kite.instruments(exchange))
            self._tokens[exchange] = {
                canonical(str(rec["tradingsymbol"]), exchange): int(rec["instrument_token"])
                for rec in (rows if isinstance(rows, list) else [])
                if isinstance(rec, dict)
                and rec.get("tradingsymbol")
                and str(rec.get("instrument_type", "EQ")).upper() == "EQ"
                and str(rec.get("instrument_token", "")).isdigit()
            }
        return self._tokens[exchange].get(canonical(symbol, exchange))

    def tick_size(self, symbol: str, exchange: str = "NSE") -> float | None:
        """The instrument's tick size in rupees, from the day's instrument dump (None if absent)."""
        exchange = exchange.upper()
        if exchange not in self._ticks:
            self._ticks[exchange] = self._load_ticks(exchange)
        return self._ticks[exchange].get(canonical(symbol, exchange))

    def _load_ticks(self, exchange: str) -> dict[str, float]:
        day = self._today().isoformat()
        cache = self._cache_dir / f"kite-ticks-{exchange}.json" if self._cache_dir else None
        if cache is not None:
            try:
                raw = json.loads(cache.read_text(encoding="utf-8"))
                if raw.get("date") == day:
                    return {str(k): float(v) for k, v in raw["ticks"].items()}
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                pass
        try:
            rows = self._read(f"instruments {exchange}", lambda: self._kite.instruments(exchange))
        except (TemporaryBrokerError, BadResponse) as exc:
            # A tick size is a refinement: without it prices round to ₹0.05 (pricing.py).
            log.warning("zerodha: no tick sizes for %s today (%s)", exchange, exc)
            return {}
        ticks: dict[str, float] = {}
        for rec in rows if isinstance(rows, list) else []:
            if not isinstance(rec, dict) or rec.get("segment") not in (exchange, None):
                continue
            if str(rec.get("instrument_type", "EQ")).upper() != "EQ":
                continue
            try:
                tick = float(rec.get("tick_size") or 0)
            except (TypeError, ValueError):
                continue
            if tick > 0 and rec.get("tradingsymbol"):
                ticks[canonical(str(rec["tradingsymbol"]), exchange)] = tick
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=".kite-ticks-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"date": day, "ticks": ticks}, fh)
            os.replace(tmp, cache)
        return ticks

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

    def _acquire_order_slot(self) -> None:
        self._limiters.orders.acquire()
        if self._gate is not None:
            self._gate.acquire()

    def place_order(self, order: OrderRequest) -> str:
        symbol = canonical(order.symbol, order.exchange)
        protection = order.market_protection
        if order.price is None and protection is None:
            protection = self.default_market_protection
        self._acquire_order_slot()
        try:
            order_id = self._kite.place_order(
                variety="regular",
                exchange=order.exchange.upper(),
                tradingsymbol=symbol,
                transaction_type=str(order.side),
                quantity=order.quantity,
                product="CNC",
                order_type=order.order_type,
                price=order.price,
                validity="DAY",
                tag=order.tag,
                market_protection=protection if order.price is None else None,
            )
        except Exception as exc:
            err = translate(exc, what=f"place {order.side} {symbol}", placing=True)
            if isinstance(err, SellNotAuthorised):
                err.message = sell_not_authorised_text(symbol, order.quantity, NAME) + (f" ({exc})")
            if isinstance(err, UnregisteredIP):
                err.message = unregistered_ip_text(NAME, self.registered_ips) + f" ({exc})"
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
        self._acquire_order_slot()
        try:
            self._kite.cancel_order(variety="regular", order_id=broker_order_id)
        except Exception as exc:
            err = translate(exc, what=f"cancel {broker_order_id}", placing=False)
            if type(err) is BrokerError:
                err = CancelRejected(NAME, err.message, err.details)
            raise err from None

    def estimate_charges(self, orders: Sequence[OrderRequest]) -> list[ChargeEstimate]:
        """Kite's own charges of ``orders`` (``POST /charges/orders``, the virtual contract
        note), in the same order. Limit orders are priced at their price, market orders at the
        last price. A read: retried, never places anything."""
        if not orders:
            return []
        prices = {}
        market = [o for o in orders if o.price is None]
        if market:
            quotes = self.quotes([Instrument(o.symbol, o.exchange) for o in market])
            prices = {s: q.last_price for s, q in quotes.items()}
        params: list[dict[str, Any]] = []
        for o in orders:
            symbol = canonical(o.symbol, o.exchange)
            price = o.price if o.price is not None else prices.get(symbol)
            if price is None:
                raise BadResponse(NAME, f"charges: no price for {o.exchange}:{symbol}")
            params.append(
                {
                    "order_id": o.tag,
                    "exchange": o.exchange.upper(),
                    "tradingsymbol": symbol,
                    "transaction_type": str(o.side),
                    "variety": "regular",
                    "product": "CNC",
                    "order_type": o.order_type,
                    "quantity": o.quantity,
                    "average_price": price,
                }
            )
        data = self._read("charges", lambda: self._kite.get_virtual_contract_note(params))
        if not isinstance(data, list) or len(data) != len(params):
            raise BadResponse(NAME, "charges: expected one result per order, in order")
        out = []
        for o, p, rec in zip(orders, params, data, strict=True):
            f = Fields(NAME, "charges", rec, p["tradingsymbol"])
            charges = f.record.get("charges")
            c = Fields(NAME, "charges", charges, p["tradingsymbol"])
            gst = charges.get("gst") if isinstance(charges, dict) else None
            gst_total = Fields(NAME, "charges", gst, "gst").number("total", default=0.0)
            breakdown = {
                "brokerage": c.number("brokerage", default=0.0),
                "stt": c.number("transaction_tax", default=0.0),
                "exchange_txn": c.number("exchange_turnover_charge", default=0.0),
                "sebi_fee": c.number("sebi_turnover_charge", default=0.0),
                "stamp_duty": c.number("stamp_duty", default=0.0),
                "gst": gst_total,
            }
            out.append(
                ChargeEstimate(
                    symbol=p["tradingsymbol"],
                    side=o.side,
                    quantity=o.quantity,
                    price=float(p["average_price"]),
                    total=c.number("total"),
                    breakdown=breakdown,
                )
            )
        return out


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
    if isinstance(exc, kex.PermissionException) and not (placing and is_unregistered_ip(text)):
        return AuthError(NAME, f"{what}: permission denied by Kite: {text}", details)
    if placing:
        if is_unregistered_ip(text):
            # Refused before it reached the exchange: definite, and retrying cannot help.
            advice = unregistered_ip_text(NAME, ())
            return UnregisteredIP(NAME, f"{what}: {advice} ({text})", details)
        if code == 428:
            # Kite's "holdings not authorised" (CDSL TPIN / eDIS): definite, nothing placed.
            return SellNotAuthorised(NAME, f"{what}: {text}", details)
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
