"""AngelOne, through the official ``smartapi-python`` client (module ``SmartApi``).

* Credentials: api_key, client code, PIN and the TOTP secret (the base32 string shown when TOTP
  was enabled). The adapter logs in lazily (first call) with a fresh TOTP, and once more if the
  session expires during a run.
* Symbol tokens come from AngelOne's instrument master (``OpenAPIScripMaster.json``): downloaded
  at most once per IST day, cached on disk, loaded on first use (never at import / DAG parse).
* Orders are DELIVERY, variety NORMAL, and carry our idempotency key in ``ordertag``; the full
  placement response is read (``placeOrderFullResponse``), never the bare ``placeOrder`` that
  returns None on failure.
* Since 1 April 2026 AngelOne accepts no MARKET orders from algos (its SmartAPI announcement of
  25 Feb 2026): a MARKET request with a protection is sent as a LIMIT at the protection price,
  priced from a fresh quote on the tick and inside the day's circuit (``pricing.py``).
* Holdings: ``quantity`` vs ``realisedquantity`` + ``t1quantity`` (see ``holdings``);
  ``authorisedquantity`` is read when the account sells with CDSL TPIN.

The client's hazards, and how they are contained here:

* importing it calls api.ipify.org for the public IP and reads the MAC address: the import is
  done once, lazily, with ``requests.get`` and ``uuid.getnode`` stubbed (``_import_smartapi``);
  the headers carry fixed placeholder values (configurable);
* its constructor creates ``logs/<date>/app.log`` in the current directory and points the logzero
  logger at it: ``_ContainedSmartConnect`` sets the client's attributes itself, without that;
* on errors it logs request headers with the bearer token and the private key through logzero's
  default logger: that logger object is disabled (the adapter reads and reports every response).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
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
from rebalance.brokers.candles import date_windows, smartapi_candles
from rebalance.brokers.pricing import PricingPolicy, price_order
from rebalance.brokers.ratelimit import ANGELONE_LIMITS, BrokerLimiters, OrderGate, RateLimits
from rebalance.brokers.retry import RetryPolicy, retry_read
from rebalance.brokers.symbols import angelone_symbol, canonical
from rebalance.brokers.validation import (
    Fields,
    is_sell_not_authorised,
    is_unregistered_ip,
    sell_not_authorised_text,
    unregistered_ip_text,
)
from rebalance.domain.market import IST, Holding, Instrument, Quote, Side

T = TypeVar("T")
NAME = "angelone"
log = logging.getLogger(__name__)

INSTRUMENT_MASTER_URL = (
    "https://margincalculator.angelbroking.com/OpenAPI_File/files/OpenAPIScripMaster.json"
)
# Placeholders for the headers the API wants (the client itself sends fixed values, too).
DEFAULT_PUBLIC_IP = "106.193.147.98"
DEFAULT_LOCAL_IP = "127.0.0.1"
DEFAULT_MAC = "02:00:00:00:00:01"  # a locally administered address, not this machine's

# Session errors: token invalid / expired / missing, refresh token invalid / expired.
_TOKEN_CODES = {"AG8001", "AG8002", "AG8003", "AB8050", "AB8051", "AB1010", "AB1011"}
_LOGIN_CODES = {"AB1007", "AB1050", "AB1031", "AB1032", "AB1033", "AB1034", "AB1048", "AB1049"}
_TEMPORARY_CODES = {"AB1004", "AB2000", "AB1012"}
_RATE_WORDS = ("exceeding access rate", "too many requests", "rate limit")
# Sell refusals for want of a depository authorisation (CDSL TPIN / eDIS). The code is not in
# SmartAPI's published error table; AB4013 is the one reported with "TPIN is not validated".
# The message test (validation.is_sell_not_authorised) catches the others.
_SELL_AUTH_CODES = {"AB4013"}
# The band used for a MARKET request with automatic protection (-1): AngelOne takes no market
# orders from algos, so the adapter prices the limit itself. 1% is Kite's published automatic
# band for equities priced above ₹100 (the protection-percentage table in docs/brokers.md).
AUTO_PROTECTION_PCT = 1.0

_import_lock = threading.Lock()


def _import_smartapi() -> Any:
    """Import ``SmartApi.smartConnect`` without its import-time network call and MAC lookup."""
    import importlib
    import sys
    import uuid
    from unittest import mock

    with _import_lock:
        module = sys.modules.get("SmartApi.smartConnect")
        if module is None:
            import logzero

            logzero.logger.disabled = True  # before the import: it logs the failed IP lookup

            def no_network(*_a: Any, **_k: Any) -> Any:
                raise OSError("public IP lookup disabled by rebalance")

            with (
                mock.patch.object(requests, "get", no_network),
                mock.patch.object(uuid, "getnode", return_value=0x020000000001),
            ):
                module = importlib.import_module("SmartApi.smartConnect")
        # The module-level logzero logger receives the header dumps: silence it for good.
        module.logger.disabled = True
        logging.getLogger("SmartApi").setLevel(logging.WARNING)
        return module


class InstrumentMaster:
    """Canonical (exchange, symbol) -> AngelOne symbol token, from the daily instrument master.

    The download is cached as a compact index in ``cache_dir``; it is refreshed once per IST day.
    If a refresh fails, yesterday's index is used with a warning (equity tokens rarely change).
    """

    def __init__(
        self,
        cache_dir: Path,
        url: str = INSTRUMENT_MASTER_URL,
        *,
        timeout: float = 30.0,
        today: Callable[[], date] | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.url = url
        self.timeout = timeout
        self._today = today or (lambda: datetime.now(IST).date())
        self._index: dict[tuple[str, str], tuple[str, str]] | None = None
        self._ticks: dict[tuple[str, str], float] = {}
        self.downloads = 0

    @property
    def cache_file(self) -> Path:
        return self.cache_dir / "angelone-instruments.json"

    def token(self, symbol: str, exchange: str = "NSE") -> tuple[str, str] | None:
        """(symbol token, AngelOne trading symbol) of a canonical symbol, or None if unknown."""
        return self._load().get((exchange.upper(), canonical(symbol, exchange)))

    def tick_size(self, symbol: str, exchange: str = "NSE") -> float | None:
        """The tick size in rupees (the master gives paise), or None if unknown."""
        self._load()
        return self._ticks.get((exchange.upper(), canonical(symbol, exchange)))

    def _load(self) -> dict[tuple[str, str], tuple[str, str]]:
        if self._index is not None:
            return self._index
        cached = self._read_cache()
        if cached is not None and cached[0] == self._today().isoformat():
            self._index = cached[1]
            return self._index
        try:
            self._index = self._download()
        except (requests.RequestException, ValueError, OSError) as exc:
            if cached is None:
                raise TemporaryBrokerError(
                    NAME, f"cannot download the instrument master ({type(exc).__name__})"
                ) from None
            log.warning(
                "angelone instrument master download failed (%s); using the copy of %s",
                type(exc).__name__,
                cached[0],
            )
            self._index = cached[1]
        return self._index

    def _read_cache(self) -> tuple[str, dict[tuple[str, str], tuple[str, str]]] | None:
        try:
            raw = json.loads(self.cache_file.read_text(encoding="utf-8"))
            index = {(e, s): (t, ts) for e, s, t, ts, *_ in raw["instruments"]}
            self._ticks = {
                (e, s): float(rest[0]) for e, s, _t, _ts, *rest in raw["instruments"] if rest
            }
            return str(raw["date"]), index
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _download(self) -> dict[tuple[str, str], tuple[str, str]]:
        response = requests.get(self.url, timeout=self.timeout)
        response.raise_for_status()
        records = response.json()
        if not isinstance(records, list):
            raise ValueError("instrument master is not a list")
        self.downloads += 1
        index: dict[tuple[str, str], tuple[str, str]] = {}
        for rec in records:
            if not isinstance(rec, dict):
                continue
            exchange = str(rec.get("exch_seg", "")).upper()
            trading = str(rec.get("symbol", "")).upper()
            token = str(rec.get("token", ""))
            if exchange not in ("NSE", "BSE") or not trading or not token:
                continue
            if rec.get("instrumenttype") not in (None, ""):
                continue  # derivatives, indices: not ours
            if exchange == "NSE" and not trading.endswith("-EQ") and (exchange, trading) in index:
                continue
            key = (exchange, canonical(trading, exchange))
            # Prefer the -EQ series when a symbol has several (e.g. -BE, -BL).
            if key not in index or trading.endswith("-EQ"):
                index[key] = (token, trading)
                try:
                    tick = float(rec.get("tick_size") or 0) / 100  # paise -> rupees
                except (TypeError, ValueError):
                    tick = 0.0
                if tick > 0:
                    self._ticks[key] = tick
                else:
                    self._ticks.pop(key, None)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        payload = {
            "date": self._today().isoformat(),
            "source": self.url,
            "instruments": [
                [e, s, t, ts, *([self._ticks[(e, s)]] if (e, s) in self._ticks else [])]
                for (e, s), (t, ts) in sorted(index.items())
            ],
        }
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".angelone-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh)
        os.replace(tmp, self.cache_file)
        return index


class AngelOneBroker:
    """One AngelOne account over SmartAPI.

    ``AngelOneBroker(api_key, client_code, pin, totp_secret, cache_dir=Path(...))``; ``root`` and
    ``instrument_master_url`` point it elsewhere (tests: the emulator).
    """

    name = NAME
    # Today's delivery buys are not merged from the day's positions yet: the one-live-run-per-day
    # refusal stays for AngelOne (docs/brokers.md, "Settlement").
    capabilities = BrokerCapabilities(
        same_day_quantities_reliable=False,
        reads_sell_authorisation=True,
        charge_estimates=True,
    )

    def __init__(
        self,
        api_key: str,
        client_code: str,
        pin: str,
        totp_secret: str,
        *,
        cache_dir: Path,
        root: str | None = None,
        instrument_master_url: str = INSTRUMENT_MASTER_URL,
        timeout: float = 7.0,
        limits: RateLimits = ANGELONE_LIMITS,
        retry: RetryPolicy | None = None,
        public_ip: str = DEFAULT_PUBLIC_IP,
        local_ip: str = DEFAULT_LOCAL_IP,
        mac_address: str = DEFAULT_MAC,
        sleep: Callable[[float], None] | None = None,
        default_market_protection: float | None = AUTO_PROTECTION,
        demat_authorisation: str = "ddpi",
        registered_ips: Sequence[str] = (),
        order_gate: OrderGate | None = None,
    ) -> None:
        """See ``ZerodhaBroker`` for ``default_market_protection``, ``demat_authorisation``,
        ``registered_ips`` and ``order_gate``; the public-IP header defaults to the first
        registered IP."""
        missing = [
            n
            for n, v in (
                ("api_key", api_key),
                ("client_code", client_code),
                ("pin", pin),
                ("totp_secret", totp_secret),
            )
            if not v
        ]
        if missing:
            raise AuthError(NAME, f"the connection lacks {', '.join(missing)}")
        self._api_key = api_key
        self._client_code = client_code
        self._pin = pin
        self._totp_secret = totp_secret
        self._root = root
        self._timeout = timeout
        if registered_ips and public_ip == DEFAULT_PUBLIC_IP:
            public_ip = registered_ips[0]
        self._headers = (public_ip, local_ip, mac_address)
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
        self.limits = limits
        self._limiters = BrokerLimiters(limits)  # real sleeps: the limit is real time
        self._retry = retry or RetryPolicy()
        self._sleep = sleep or time.sleep
        self.instruments = InstrumentMaster(
            cache_dir, instrument_master_url, timeout=max(timeout, 10.0)
        )
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show the credentials
        return f"AngelOneBroker(root={self._root!r})"

    # --- session ----------------------------------------------------------------------------

    def _new_client(self) -> Any:
        module = _import_smartapi()
        public_ip, local_ip, mac = self._headers
        root = self._root or module.SmartConnect._rootUrl
        timeout = self._timeout

        base: Any = module.SmartConnect

        class _ContainedSmartConnect(base):
            # SmartConnect.__init__ minus its side effects (logs/ in the CWD, logzero logfile).
            def __init__(self, api_key: str) -> None:
                self.debug = False
                self.api_key = api_key
                self.session_expiry_hook = None
                self.disable_ssl = False
                self.access_token = None
                self.refresh_token = None
                self.feed_token = None
                self.userId = None
                self.proxies: dict[str, str] = {}
                self.root = root
                self.timeout = timeout
                self.Authorization = None
                self.clientLocalIp = self.clientLocalIP = local_ip
                self.clientPublicIp = self.clientPublicIP = public_ip
                self.clientMacAddress = mac
                self.privateKey = api_key
                self.reqsession = requests

        return _ContainedSmartConnect(self._api_key)

    def _session(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._login()
            return self._client

    def _login(self) -> Any:
        import pyotp

        client = self._new_client()
        try:
            totp = pyotp.TOTP(self._totp_secret).now()
        except Exception:
            raise AuthError(
                NAME, "the totp_secret in the connection is not a valid base32 TOTP secret"
            ) from None
        try:
            resp = client.generateSession(self._client_code, self._pin, totp)
        except (KeyError, TypeError):
            # The client reads the profile right after login and trips over a refused one.
            raise AuthError(
                NAME,
                "login failed: AngelOne refused the new session (invalid or expired token); "
                "check the api_key and client code in the AngelOne connection",
            ) from None
        except Exception as exc:
            raise translate(exc, what="login", placing=False) from None
        if not isinstance(resp, dict) or not _ok(resp):
            message, code = _message(resp)
            if code in _TEMPORARY_CODES or _is_rate(message):
                raise TemporaryBrokerError(NAME, f"login: {message} ({code})", {"errorcode": code})
            raise AuthError(
                NAME,
                f"login failed: {message} ({code}); check the client code, PIN and TOTP secret "
                "in the AngelOne connection",
                {"errorcode": code},
            )
        return client

    # --- plumbing ---------------------------------------------------------------------------

    def _call(self, what: str, method: str, *args: Any, kind: str = "reads") -> Any:
        """Call ``client.<method>(*args)`` and return its ``data``; re-login once on an expired
        session; translate errors; retry if it is a read."""
        limiter = getattr(self._limiters, kind)

        def once() -> Any:
            relogged = False
            while True:
                client = self._session()
                limiter.acquire()
                try:
                    resp = getattr(client, method)(*args)
                except Exception as exc:
                    raise translate(exc, what=what, placing=False) from None
                try:
                    return _unwrap(resp, what)
                except AuthError as err:
                    if relogged or err.details.get("errorcode") not in _TOKEN_CODES:
                        raise
                    with self._lock:
                        self._client = None
                    relogged = True

        return retry_read(once, what=f"angelone {what}", policy=self._retry, sleep=self._sleep)

    # --- reads ------------------------------------------------------------------------------

    def holdings(self) -> list[Holding]:
        data = self._call("holdings", "holding") or []
        if not isinstance(data, list):
            raise BadResponse(NAME, f"holdings: expected a list, got {type(data).__name__}")
        out = []
        for rec in data:
            f = Fields(NAME, "holdings", rec)
            trading = f.text("tradingsymbol")
            f.label = trading
            exchange = f.text("exchange").upper()
            quantity = f.quantity("quantity")
            t1 = f.quantity("t1quantity", default=0)
            # SmartAPI documents no formula. Its published examples show quantity ==
            # realisedquantity when t1quantity is 0, which fits both "quantity includes T1" and
            # "quantity is the settled part": max() counts T1 once under either reading.
            realised = f.quantity("realisedquantity", default=quantity)
            total = max(quantity, realised + t1)
            if total == 0:
                continue
            collateral = f.quantity("collateralquantity", default=0)
            authorised = None
            if self.demat_authorisation == "tpin":
                authorised = f.quantity("authorisedquantity", default=0)
            out.append(
                Holding(
                    symbol=canonical(trading, exchange),
                    exchange=exchange,
                    quantity=total,
                    sellable_quantity=max(0, total - t1 - collateral),
                    average_price=f.number("averageprice"),
                    last_price=f.price("ltp"),
                    isin=f.opt_text("isin"),
                    authorised_quantity=authorised,
                )
            )
        return out

    def quotes(self, instruments: Sequence[Instrument]) -> dict[str, Quote]:
        wanted: dict[tuple[str, str], str] = {}  # (exchange, token) -> canonical symbol
        for ins in instruments:
            found = self.instruments.token(ins.symbol, ins.exchange)
            if found is not None:
                wanted[(ins.exchange.upper(), found[0])] = canonical(ins.symbol, ins.exchange)
        out: dict[str, Quote] = {}
        items = list(wanted)
        size = max(1, self.limits.quote_batch_size)
        for start in range(0, len(items), size):
            batch: dict[str, list[str]] = {}
            for exchange, token in items[start : start + size]:
                batch.setdefault(exchange, []).append(token)
            data = self._call("quote", "getMarketData", "FULL", batch, kind="quotes")
            f = Fields(NAME, "quote", data)
            fetched = f.record.get("fetched") or []
            if not isinstance(fetched, list):
                raise f.bad("fetched", "is not a list")
            for rec in fetched:
                q = Fields(NAME, "quote", rec)
                exchange = q.text("exchange").upper()
                symbol = wanted.get((exchange, q.text("symbolToken")))
                if symbol is None:
                    continue
                q.label = symbol
                close = q.number("close", default=0.0)
                upper = q.number("upperCircuit", default=0.0)
                lower = q.number("lowerCircuit", default=0.0)
                out[symbol] = Quote(
                    symbol=symbol,
                    exchange=exchange,
                    last_price=q.price("ltp"),
                    previous_close=close if close > 0 else None,
                    as_of=_feed_time(q.opt_text("exchFeedTime")),
                    tick_size=self.instruments.tick_size(symbol, exchange),
                    upper_circuit=upper if upper > 0 else None,
                    lower_circuit=lower if lower > 0 else None,
                )
        return out

    def candles(self, instrument: Instrument, first: date, last: date) -> list[Candle]:
        """Daily candles (SmartAPI ``getCandleData``, ``interval=ONE_DAY``), by symbol token."""
        what = f"candle data {instrument.exchange}:{instrument.symbol}"
        found = self.instruments.token(instrument.symbol, instrument.exchange)
        if found is None:
            raise BadResponse(NAME, f"{what}: not in AngelOne's instrument master")
        out: list[Candle] = []
        for start, end in date_windows(first, last):
            params = {
                "exchange": instrument.exchange.upper(),
                "symboltoken": found[0],
                "interval": "ONE_DAY",
                "fromdate": f"{start.isoformat()} 09:15",
                "todate": f"{end.isoformat()} 15:30",
            }
            out += smartapi_candles(self._call(what, "getCandleData", params), what)
        return out

    def funds(self) -> Funds:
        data = self._call("funds", "rmsLimit")
        f = Fields(NAME, "funds (getRMS)", data)
        return Funds(available_cash=f.number("net"))

    def orders(self) -> list[OrderReport]:
        data = self._call("order book", "orderBook") or []  # null when the book is empty
        if not isinstance(data, list):
            raise BadResponse(NAME, f"order book: expected a list, got {type(data).__name__}")
        return [self._report(rec) for rec in data]

    def order(self, broker_order_id: str) -> OrderReport:
        for report in self.orders():
            if report.broker_order_id == broker_order_id:
                return report
        raise OrderNotFound(NAME, f"no order {broker_order_id} in today's order book")

    def _report(self, rec: Any) -> OrderReport:
        f = Fields(NAME, "order book", rec)
        order_id = f.text("orderid")
        f.label = order_id
        exchange = f.text("exchange").upper()
        symbol = canonical(f.text("tradingsymbol"), exchange)
        side = f.text("transactiontype").upper()
        if side not in ("BUY", "SELL"):
            raise f.bad("transactiontype", f"is {side!r}, expected BUY or SELL")
        quantity = f.quantity("quantity")
        filled = f.quantity("filledshares", default=0)
        if filled > quantity:
            raise f.bad("filledshares", f"{filled} exceeds the order quantity {quantity}")
        raw = f.text("status").lower()
        if raw == "complete":
            status = OrderStatus.COMPLETE
        elif raw == "rejected":
            status = OrderStatus.REJECTED
        elif raw == "cancelled":
            status = OrderStatus.CANCELLED
        elif raw in _OPEN_STATES:
            status = OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.OPEN
        else:
            raise f.bad("status", f"is {raw!r}, an order state we do not know")
        message = f.opt_text("text")
        if status is OrderStatus.REJECTED and side == "SELL" and is_sell_not_authorised(message):
            message = f"{sell_not_authorised_text(symbol, quantity, NAME)} ({message})"
        avg = f.number("averageprice", default=0.0)
        return OrderReport(
            broker_order_id=order_id,
            tag=f.opt_text("ordertag"),
            symbol=symbol,
            exchange=exchange,
            side=Side(side),
            quantity=quantity,
            status=status,
            filled_quantity=filled,
            average_price=avg if filled and avg > 0 else None,
            message=message,
            raw_status=raw,
        )

    def symbol_tokens(self, instruments: Sequence[Instrument]) -> dict[str, str]:
        """Canonical symbol -> SmartAPI symbol token, from the instrument master the adapter
        loads (what a manual-queue basket needs, ``brokers.basket``); unknown symbols left out."""
        tokens = {}
        for ins in instruments:
            found = self.instruments.token(ins.symbol, ins.exchange)
            if found is not None:
                tokens[canonical(ins.symbol, ins.exchange)] = found[0]
        return tokens

    # --- writes -----------------------------------------------------------------------------

    def place_order(self, order: OrderRequest) -> str:
        symbol = canonical(order.symbol, order.exchange)
        what = f"place {order.side} {symbol}"
        details = {"symbol": symbol, "tag": order.tag}
        found = self.instruments.token(symbol, order.exchange)
        if found is None:
            raise OrderRejected(
                NAME,
                f"{what}: {order.exchange}:{symbol} is not in AngelOne's instrument master",
                details,
            )
        token, trading = found
        price = order.price
        protection = order.market_protection
        if price is None and protection is None:
            protection = self.default_market_protection
        if price is None and protection is not None:
            price = self._protection_price(order, protection)
        params = {
            "variety": "NORMAL",
            "tradingsymbol": trading or angelone_symbol(symbol, order.exchange),
            "symboltoken": token,
            "transactiontype": str(order.side),
            "exchange": order.exchange.upper(),
            "ordertype": "MARKET" if price is None else "LIMIT",
            "producttype": "DELIVERY",
            "duration": "DAY",
            "price": "0" if price is None else f"{price:.2f}",
            "squareoff": "0",
            "stoploss": "0",
            "quantity": str(order.quantity),
            "ordertag": order.tag,
        }
        client = self._session()
        self._acquire_order_slot()
        try:
            resp = client.placeOrderFullResponse(params)
        except Exception as exc:
            err = translate(exc, what=what, placing=True)
            err.details.update(details)
            raise err from None
        if not isinstance(resp, dict):
            raise OrderOutcomeUnknown(
                NAME, f"{what}: unreadable reply; reconcile by tag {order.tag}", details
            )
        if not _ok(resp):
            message, code = _message(resp)
            details["errorcode"] = code
            if code in _TOKEN_CODES:
                with self._lock:
                    self._client = None
                raise AuthError(NAME, f"{what}: session expired ({message}); not placed", details)
            if is_unregistered_ip(message, code):
                raise UnregisteredIP(
                    NAME,
                    f"{what}: {unregistered_ip_text(NAME, self.registered_ips)} "
                    f"({message} ({code}))",
                    details,
                )
            if order.side is Side.SELL and (
                code in _SELL_AUTH_CODES or is_sell_not_authorised(message)
            ):
                raise SellNotAuthorised(
                    NAME,
                    sell_not_authorised_text(symbol, order.quantity, NAME) + f" ({message})",
                    details,
                )
            if code in _TEMPORARY_CODES or _is_rate(message):
                raise OrderOutcomeUnknown(
                    NAME, f"{what}: {message} ({code}); reconcile by tag, do not resend", details
                )
            raise OrderRejected(NAME, f"{what}: rejected by AngelOne: {message} ({code})", details)
        data = resp.get("data")
        order_id = data.get("orderid") if isinstance(data, dict) else None
        if not order_id:
            raise OrderOutcomeUnknown(
                NAME, f"{what}: success without an order id; reconcile by tag {order.tag}", details
            )
        return str(order_id)

    def _acquire_order_slot(self) -> None:
        self._limiters.orders.acquire()
        if self._gate is not None:
            self._gate.acquire()

    def _protection_price(self, order: OrderRequest, protection: float) -> float:
        """The limit a protected market order becomes: last price +/- protection, on the tick,
        inside the circuit."""
        symbol = canonical(order.symbol, order.exchange)
        quote = self.quotes([Instrument(symbol, order.exchange)]).get(symbol)
        if quote is None:
            raise OrderRejected(
                NAME,
                f"place {order.side} {symbol}: no quote to price the protected market order; "
                "not sent",
                {"symbol": symbol, "tag": order.tag},
            )
        pct = AUTO_PROTECTION_PCT if protection == AUTO_PROTECTION else protection
        priced = price_order(order.side, quote, PricingPolicy(limit_buffer_pct=min(pct, 20.0)))
        assert priced.price is not None
        return priced.price

    def estimate_charges(self, orders: Sequence[OrderRequest]) -> list[ChargeEstimate]:
        """AngelOne's own charges of ``orders`` (``estimateCharges``), one per order, in order.
        Limit orders at their price, market orders at the last price. A read: never places."""
        out: list[ChargeEstimate] = []
        prices: dict[str, float] = {}
        market = [o for o in orders if o.price is None]
        if market:
            quotes = self.quotes([Instrument(o.symbol, o.exchange) for o in market])
            prices = {s: q.last_price for s, q in quotes.items()}
        for o in orders:
            symbol = canonical(o.symbol, o.exchange)
            found = self.instruments.token(symbol, o.exchange)
            price = o.price if o.price is not None else prices.get(symbol)
            if found is None or price is None:
                raise BadResponse(NAME, f"estimateCharges: cannot price {o.exchange}:{symbol}")
            body = {
                "orders": [
                    {
                        "product_type": "DELIVERY",
                        "transaction_type": str(o.side),
                        "quantity": str(o.quantity),
                        "price": f"{price:.2f}",
                        "exchange": o.exchange.upper(),
                        "symbol_name": symbol,
                        "token": found[0],
                    }
                ]
            }
            data = self._call("estimateCharges", "estimateCharges", body)
            summary = Fields(NAME, "estimateCharges", data).record.get("summary")
            f = Fields(NAME, "estimateCharges", summary, symbol)
            breakdown: dict[str, float] = {}
            for part in f.record.get("breakup") or []:
                if isinstance(part, dict) and part.get("name"):
                    breakdown[str(part["name"])] = Fields(NAME, "estimateCharges", part).number(
                        "amount", default=0.0
                    )
            out.append(
                ChargeEstimate(
                    symbol=symbol,
                    side=o.side,
                    quantity=o.quantity,
                    price=price,
                    total=f.number("total_charges"),
                    breakdown=breakdown,
                )
            )
        return out

    def cancel(self, broker_order_id: str) -> None:
        client = self._session()
        self._acquire_order_slot()
        try:
            resp = client.cancelOrder(broker_order_id, "NORMAL")
        except Exception as exc:
            raise translate(exc, what=f"cancel {broker_order_id}", placing=False) from None
        if not isinstance(resp, dict) or not _ok(resp):
            message, code = _message(resp)
            raise CancelRejected(
                NAME, f"cancel {broker_order_id}: {message} ({code})", {"errorcode": code}
            )


_OPEN_STATES = {
    "open",
    "open pending",
    "trigger pending",
    "validation pending",
    "put order req received",
    "modify validation pending",
    "modify pending",
    "modified",
    "cancel pending",
    "after market order req received",
    "amo req received",
}


def _ok(resp: dict[str, Any]) -> bool:
    # Most replies carry "status"; some gateway errors carry "success" instead.
    status = resp.get("status", resp.get("success"))
    return status is True or (isinstance(status, str) and status.lower() == "true")


def _message(resp: Any) -> tuple[str, str]:
    if not isinstance(resp, dict):
        return "no reply", ""
    return str(resp.get("message") or "no message"), str(
        resp.get("errorcode") or resp.get("errorCode") or ""
    )


def _is_rate(message: str) -> bool:
    return any(w in message.lower() for w in _RATE_WORDS)


def _unwrap(resp: Any, what: str) -> Any:
    """The ``data`` of a SmartAPI envelope, or our error for a failed one."""
    if not isinstance(resp, dict):
        raise BadResponse(NAME, f"{what}: expected a JSON object, got {type(resp).__name__}")
    if "status" not in resp and "success" not in resp:
        raise BadResponse(NAME, f"{what}: the reply has no 'status' field")
    if _ok(resp):
        return resp.get("data")
    message, code = _message(resp)
    details = {"call": what, "errorcode": code}
    if code in _TOKEN_CODES or code in _LOGIN_CODES:
        return _raise(AuthError(NAME, f"{what}: session invalid or expired ({message})", details))
    if _is_rate(message):
        return _raise(RateLimited(NAME, f"{what}: rate limited by AngelOne ({message})", details))
    if code in _TEMPORARY_CODES:
        return _raise(TemporaryBrokerError(NAME, f"{what}: {message} ({code})", details))
    return _raise(BrokerError(NAME, f"{what}: {message} ({code})", details))


def _raise(err: BrokerError) -> Any:
    raise err


def _feed_time(value: str | None) -> datetime | None:
    if not value:
        return None
    for fmt in ("%d-%b-%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"):
        with contextlib.suppress(ValueError):
            return datetime.strptime(value, fmt).replace(tzinfo=IST)
    return None


def translate(exc: Exception, *, what: str, placing: bool) -> BrokerError:
    """Our error for an exception raised by the SmartAPI client or requests."""
    import SmartApi.smartExceptions

    sex = SmartApi.smartExceptions

    details = {"call": what, "error": type(exc).__name__}
    text = str(exc)
    if isinstance(exc, BrokerError):
        return exc
    if placing:
        return OrderOutcomeUnknown(
            NAME,
            f"{what}: outcome unknown ({_describe(exc)}); reconcile by tag, do not resend",
            details,
        )
    if _is_rate(text):
        return RateLimited(NAME, f"{what}: rate limited by AngelOne", details)
    if isinstance(exc, requests.Timeout):
        return TemporaryBrokerError(NAME, f"{what}: timed out", details)
    if isinstance(exc, requests.RequestException):
        return TemporaryBrokerError(NAME, f"{what}: network error ({_describe(exc)})", details)
    if isinstance(exc, sex.TokenException):
        return AuthError(NAME, f"{what}: session invalid or expired", details)
    if isinstance(exc, sex.DataException):
        # Non-JSON replies: gateway pages (5xx) and the like.
        return TemporaryBrokerError(NAME, f"{what}: unreadable reply from AngelOne", details)
    if isinstance(exc, sex.NetworkException | sex.GeneralException):
        return TemporaryBrokerError(NAME, f"{what}: AngelOne is unavailable", details)
    if isinstance(exc, KeyError | TypeError | ValueError):
        return BadResponse(NAME, f"{what}: unexpected reply ({type(exc).__name__})", details)
    return BrokerError(NAME, f"{what}: {_describe(exc)}", details)


def _describe(exc: Exception) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return type(exc).__name__


__all__ = ["INSTRUMENT_MASTER_URL", "AngelOneBroker", "InstrumentMaster", "translate"]
