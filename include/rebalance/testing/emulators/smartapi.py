"""An emulator of the SmartAPI REST endpoints the AngelOne adapter uses, and of the instrument
master file (``/OpenAPI_File/files/OpenAPIScripMaster.json``).

Envelopes as SmartAPI sends them: ``{"status": true, "message": "SUCCESS", "errorcode": "",
"data": ...}`` and ``{"status": false, "message": ..., "errorcode": "AG8001", "data": null}``; the
rate limit answers HTTP 403 with the plain text "Access denied because of exceeding access rate".

    with SmartApiEmulator() as angel:
        broker = AngelOneBroker(..., root=angel.url, instrument_master_url=angel.master_url)
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from rebalance.brokers.candles import MAX_DAYS_PER_REQUEST
from rebalance.testing.emulators._server import (
    DEMO_HOLDINGS,
    EXTRA_PRICES,
    EmulatorServer,
    Holding,
    Reply,
    apply_patch,
    circuit_band,
    fake_credential,
    fake_digits,
    fake_totp_secret,
    on_tick,
    tick_for,
)
from rebalance.testing.emulators.history import candle_row, parse_day, served_candles

SELL_NOT_AUTHORISED = (
    "Your order has been rejected as your holdings are not authorised for sale. Please authorize "
    "your holdings (eDIS) using CDSL TPIN or submit the DDPI."
)
# SmartAPI forum, "Getting IP restricted even after IP whitelisting" (April 2026).
UNREGISTERED_IP = "Access denied: Unregistered IP address. Register your IP before retrying."
# AngelOne takes no market orders from algos since 1 April 2026; its API's words for the refusal
# are not published: these are ours.
MARKET_NOT_ALLOWED = "Market orders are not allowed for API (algo) orders. Place a limit order."
# The TPIN refusal: code and words as reported on the SmartAPI forum (not in the error table).
TPIN_NOT_VALIDATED = (
    "TPIN is not validated for this sell. Authorise your holdings (eDIS) with CDSL TPIN."
)
OUTSIDE_CIRCUIT = "Order price is beyond the circuit limits of the day"
_P = "/rest/secure/angelbroking"
MASTER_PATH = "/OpenAPI_File/files/OpenAPIScripMaster.json"


class SmartApiEmulator(EmulatorServer):
    broker = "angelone"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        client_code: str | None = None,
        pin: str | None = None,
        totp_secret: str | None = None,
        cash: float = 100_000.0,
        holdings: list[Holding] | None = None,
        strict_2026: bool = True,
        registered_ips: set[str] | None = None,
        ddpi: bool = True,
    ) -> None:
        super().__init__(strict_2026=strict_2026, registered_ips=registered_ips, ddpi=ddpi)
        # Credentials not given are made fresh (and plainly fake) for this emulator.
        self.api_key = api_key or fake_credential("api-key")
        self.client_code = client_code or "F" + fake_digits(7)
        self.pin = pin or fake_digits(4)
        self.totp_secret = totp_secret or fake_totp_secret()
        self.cash = cash
        for h in holdings if holdings is not None else DEMO_HOLDINGS:
            self.add_holding(Holding(**h.__dict__))
        self.extra = dict(EXTRA_PRICES)
        self.jwt_tokens: list[str] = []  # every session token handed out (for leak scans)
        self.logins = 0
        self.master_downloads = 0
        self._next_id = 1

    @property
    def master_url(self) -> str:
        return self.url + MASTER_PATH

    def airflow_connection(self, **extra: str) -> str:
        """This emulator as an ``AIRFLOW_CONN_*`` value (JSON) for ``brokers/connections.py``;
        ``extra`` adds connection extras such as ``default_market_protection``."""
        return json.dumps(
            {
                "conn_type": "generic",
                "login": self.client_code,
                "password": self.pin,
                "extra": {
                    "api_key": self.api_key,
                    "totp_secret": self.totp_secret,
                    "root": self.url,
                    "instrument_master_url": self.master_url,
                    **extra,
                },
            }
        )

    def expire_sessions(self) -> None:
        """Invalidate every token handed out so far (as at midnight)."""
        with self.lock:
            self.jwt_tokens = [f"expired:{t}" for t in self.jwt_tokens]

    # --- envelopes --------------------------------------------------------------------------

    @staticmethod
    def ok(data: Any) -> Reply:
        return Reply(200, {"status": True, "message": "SUCCESS", "errorcode": "", "data": data})

    @staticmethod
    def error(message: str, errorcode: str, status: int = 200) -> Reply:
        return Reply(
            status, {"status": False, "message": message, "errorcode": errorcode, "data": None}
        )

    # --- routing ----------------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: bytes,
        headers: dict[str, str],
    ) -> Reply:
        if method == "GET" and path == MASTER_PATH:
            with self.lock:
                self.master_downloads += 1
            return Reply(200, self.instrument_master())
        if self.take("rate_limit_next"):
            return Reply(403, "Access denied because of exceeding access rate", "text/plain")
        if self.take("server_error_next"):
            return Reply(503, "<html>503 Service Temporarily Unavailable</html>", "text/html")
        try:
            payload = json.loads(body.decode() or "{}") if method in ("POST", "PUT") else {}
        except ValueError:
            return self.error("Invalid request body", "AB1001", 400)
        if headers.get("X-PrivateKey") != self.api_key:
            return self.error("Invalid API Key", "AG8004", 401)
        if path == "/rest/auth/angelbroking/user/v1/loginByPassword":
            return self._login(payload)
        auth = headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ")
        with self.lock:
            valid = token in self.jwt_tokens
        if self.faults.expired_token or not valid:
            return self.error("Invalid Token", "AG8001", 401)
        with self.lock:
            if path == f"{_P}/user/v1/getProfile":
                return self.ok({"clientcode": self.client_code, "name": "Emulated User"})
            if path == f"{_P}/portfolio/v1/getHolding":
                return self.ok(self._holdings())
            if path == f"{_P}/market/v1/quote":
                return self.ok(self._quotes(payload))
            if path == f"{_P}/historical/v1/getCandleData":
                return self._candles(payload)
            if path == f"{_P}/user/v1/getRMS":
                cash = f"{self.cash:.2f}"
                return self.ok({"net": cash, "availablecash": cash, "utiliseddebits": "0.00"})
            if path == f"{_P}/order/v1/getOrderBook":
                return self.ok(list(self.orders) or None)  # SmartAPI sends null for "none"
            if path == f"{_P}/order/v1/placeOrder":
                if self.ip_refused(headers):
                    self.orders_received += 1
                    return Reply(
                        200,
                        {
                            "success": False,
                            "message": UNREGISTERED_IP,
                            "errorCode": "AG7002",
                            "data": "",
                        },
                    )
                if not self.order_arrived():
                    self.orders_received += 1
                    return Reply(
                        403, "Access denied because of exceeding access rate", "text/plain"
                    )
                return self._place(payload)
            if path == f"{_P}/order/v1/cancelOrder":
                if not self.order_arrived():
                    return Reply(
                        403, "Access denied because of exceeding access rate", "text/plain"
                    )
                return self._cancel(payload)
            if path == f"{_P}/brokerage/v1/estimateCharges":
                return self._estimate(payload)
        return self.error(f"Route not found: {path}", "AB1003", 404)

    def _login(self, payload: dict[str, Any]) -> Reply:
        import pyotp

        if payload.get("clientcode") != self.client_code or payload.get("password") != self.pin:
            return self.error("Invalid clientcode or PIN", "AB1007")
        if not pyotp.TOTP(self.totp_secret).verify(str(payload.get("totp")), valid_window=1):
            return self.error("Invalid totp", "AB1050")
        jwt = fake_credential("jwt")
        with self.lock:
            self.jwt_tokens.append(jwt)
            self.logins += 1
        return self.ok(
            {"jwtToken": jwt, "refreshToken": fake_credential("refresh"), "feedToken": "f"}
        )

    # --- data -------------------------------------------------------------------------------

    def instrument_master(self) -> list[dict[str, Any]]:
        rows = [
            (h.symbol, h.token, h.previous_close or h.last_price) for h in self.holdings.values()
        ]
        rows += [(s, extra[3], extra[1] or extra[0]) for s, extra in self.extra.items()]
        out = [
            {
                "token": token,
                "symbol": f"{symbol}-EQ",
                "name": symbol,
                "expiry": "",
                "strike": "-1.000000",
                "lotsize": "1",
                "instrumenttype": "",
                "exch_seg": "NSE",
                "tick_size": f"{tick_for(price) * 100:.6f}",  # paise, as AngelOne gives it
            }
            for symbol, token, price in rows
        ]
        out.append(  # a derivative and a BSE line, which the adapter must tell apart
            {
                "token": "35003",
                "symbol": "INFY26JANFUT",
                "name": "INFY",
                "expiry": "29JAN2026",
                "strike": "-1.000000",
                "lotsize": "400",
                "instrumenttype": "FUTSTK",
                "exch_seg": "NFO",
                "tick_size": "10.000000",
            }
        )
        out.append(
            {
                "token": "500209",
                "symbol": "INFY",
                "name": "INFY",
                "expiry": "",
                "strike": "-1.000000",
                "lotsize": "1",
                "instrumenttype": "",
                "exch_seg": "BSE",
                "tick_size": "5.000000",
            }
        )
        return out

    def _token_map(self) -> dict[str, tuple[str, float, float | None, str | None]]:
        out = {
            h.token: (h.symbol, h.last_price, h.previous_close, h.isin)
            for h in self.holdings.values()
        }
        for symbol, (price, close, isin, token) in self.extra.items():
            out.setdefault(token, (symbol, price, close, isin))
        return out

    def _holdings(self) -> list[dict[str, Any]] | None:
        out = []
        for h in self.holdings.values():
            rec = {
                "tradingsymbol": f"{h.symbol}-EQ",
                "exchange": "NSE",
                "isin": h.isin,
                "t1quantity": h.t1_quantity,
                "realisedquantity": h.quantity,
                "quantity": h.quantity,
                "authorisedquantity": self.authorised.get(h.symbol, 0),
                "product": "DELIVERY",
                "collateralquantity": h.collateral_quantity or None,
                "collateraltype": None,
                "haircut": 0.0,
                "averageprice": h.average_price,
                "ltp": h.last_price,
                "symboltoken": h.token,
                "close": h.previous_close,
                "profitandloss": round((h.last_price - h.average_price) * h.quantity, 2),
                "pnlpercentage": 0.0,
            }
            out.append(apply_patch(rec, self.faults.holdings_patch.get(h.symbol)))
        return out or None

    def _candles(self, payload: dict[str, Any]) -> Reply:
        """``getCandleData``: ``{exchange, symboltoken, interval, fromdate, todate}``."""
        found = self._token_map().get(str(payload.get("symboltoken", "")))
        if found is None or payload.get("exchange") != "NSE":
            return self.error("Invalid symbol token", "AB1019")
        if payload.get("interval") != "ONE_DAY":
            return self.error("the emulator serves ONE_DAY candles only", "AB1004")
        try:
            first = parse_day(str(payload["fromdate"]))
            last = parse_day(str(payload["todate"]))
        except (KeyError, ValueError):
            return self.error("Invalid date format", "AB1004")
        if last < first or (last - first).days > MAX_DAYS_PER_REQUEST:
            return self.error("Something Went Wrong, Please Try After Sometime", "AB1004")
        rows = served_candles(found[0], first, last, self.history_edits)
        return self.ok([candle_row(c) for c in rows])

    def _quotes(self, payload: dict[str, Any]) -> dict[str, Any]:
        tokens = self._token_map()
        fetched, unfetched = [], []
        for exchange, wanted in (payload.get("exchangeTokens") or {}).items():
            for token in wanted:
                if exchange != "NSE" or token not in tokens:
                    unfetched.append({"exchange": exchange, "symbolToken": token})
                    continue
                symbol, price, close, _isin = tokens[token]
                lower, upper = circuit_band(close or price)
                rec = {
                    "exchange": "NSE",
                    "tradingSymbol": f"{symbol}-EQ",
                    "symbolToken": token,
                    "ltp": price,
                    "open": price,
                    "high": price,
                    "low": price,
                    "close": close,
                    "exchFeedTime": "05-Jan-2026 15:29:58",
                    "exchTradeTime": "05-Jan-2026 15:29:58",
                    "upperCircuit": upper,
                    "lowerCircuit": lower,
                }
                fetched.append(apply_patch(rec, self.faults.quote_patch.get(symbol)))
        return {"fetched": fetched, "unfetched": unfetched}

    # --- orders -----------------------------------------------------------------------------

    def _place(self, p: dict[str, Any]) -> Reply:
        self.orders_received += 1
        if self.faults.reject_next_order:
            message, self.faults.reject_next_order = self.faults.reject_next_order, None
            return self.error(message, "AB4008")
        for name in ("tradingsymbol", "symboltoken", "transactiontype", "exchange", "quantity"):
            if not p.get(name):
                return self.error(f"Invalid {name}", "AB1009")
        if p.get("producttype") != "DELIVERY":
            return self.error("Only DELIVERY is expected from this app", "AB1009")
        tag = str(p.get("ordertag") or "")
        if len(tag) > 20:
            return self.error("Ordertag length should be less than 20 characters", "AB4036")
        tokens = self._token_map()
        if p["symboltoken"] not in tokens:
            return self.error("Invalid symbol token", "AB1009")
        if self.take("timeout_without_placing"):
            return Reply(
                504,
                "<html>504 Gateway Time-out</html>",
                "text/html",
                delay=self.faults.timeout_delay,
            )
        symbol, price, close, _isin = tokens[p["symboltoken"]]
        quantity = int(p["quantity"])
        side = str(p["transactiontype"])
        order_type = str(p.get("ordertype", "MARKET"))
        limit = float(p.get("price") or 0) if order_type == "LIMIT" else None
        if self.strict_2026:
            if order_type != "LIMIT":
                return self.error(MARKET_NOT_ALLOWED, "AB1009")
            lower, upper = circuit_band(close or price)
            if limit is None or not lower <= limit <= upper:
                return self.error(OUTSIDE_CIRCUIT, "AB4019")
            tick = tick_for(close or price)
            if abs(on_tick(limit, tick) - limit) > 1e-9:
                return self.error(f"Price should be in multiples of tick size {tick}", "AB4018")
            if side == "SELL" and not self.sell_authorised(symbol, quantity):
                return self.error(TPIN_NOT_VALIDATED, "AB4013")
        order_id = f"2601050{self._next_id:08d}"
        unique = f"emu-{secrets.token_hex(6)}"
        self._next_id += 1
        order: dict[str, Any] = {
            "variety": "NORMAL",
            "ordertype": p.get("ordertype", "MARKET"),
            "producttype": "DELIVERY",
            "duration": "DAY",
            "price": float(p.get("price") or 0),
            "quantity": str(quantity),
            "tradingsymbol": p["tradingsymbol"],
            "symboltoken": p["symboltoken"],
            "transactiontype": side,
            "exchange": p["exchange"],
            "orderid": order_id,
            "uniqueorderid": unique,
            "ordertag": tag,
            "status": "complete",
            "orderstatus": "complete",
            "text": "",
            "filledshares": "0",
            "unfilledshares": str(quantity),
            "averageprice": 0.0,
            "cancelsize": "0",
            "updatetime": "05-Jan-2026 15:10:00",
        }
        held = self.holdings.get(symbol)
        market = self.market_price(symbol, price)
        marketable = limit is None or (limit >= market if side == "BUY" else limit <= market)
        if side == "SELL" and symbol in self.faults.unauthorised_sells:
            order.update(status="rejected", orderstatus="rejected", text=SELL_NOT_AUTHORISED)
        elif side == "SELL" and (held is None or held.quantity < quantity):
            order.update(status="rejected", orderstatus="rejected", text="Insufficient holdings")
        elif not marketable:
            order.update(status="open", orderstatus="open")  # rests in the book
        else:
            filled = min(quantity, self.faults.partial_fill.get(symbol, quantity))
            self._fill(symbol, side, filled, market)
            status = "complete" if filled == quantity else "open"
            order.update(
                status=status,
                orderstatus=status,
                filledshares=str(filled),
                unfilledshares=str(quantity - filled),
                averageprice=market if filled else 0.0,
            )
        self.orders.append(order)
        if tag:
            self.orders_by_tag[tag] += 1
        if self.take("place_then_timeout"):
            return Reply(
                504,
                "<html>504 Gateway Time-out</html>",
                "text/html",
                delay=self.faults.timeout_delay,
            )
        return self.ok({"script": p["tradingsymbol"], "orderid": order_id, "uniqueorderid": unique})

    def _fill(self, symbol: str, side: str, filled: int, price: float) -> None:
        if not filled:
            return
        held = self.holdings.get(symbol)
        if side == "BUY":
            self.cash -= filled * price
            if held is None:
                _p, close, isin, token = self.extra[symbol]
                self.holdings[symbol] = Holding(
                    symbol, 0, price, price, isin, close, t1_quantity=filled, token=token
                )
            else:
                total = held.quantity + held.t1_quantity
                held.average_price = (held.average_price * total + price * filled) / (
                    total + filled
                )
                held.t1_quantity += filled
        else:
            assert held is not None
            self.cash += filled * price
            held.quantity -= filled

    def _estimate(self, payload: dict[str, Any]) -> Reply:
        from rebalance.costs import broker_rates, order_charges
        from rebalance.domain.market import Side

        orders = payload.get("orders")
        if not isinstance(orders, list) or not orders:
            return self.error("Invalid orders", "AB1009")
        total = value = 0.0
        parts = {"brokerage": 0.0, "external": 0.0, "taxes": 0.0}
        for o in orders:
            try:
                notional = float(o["price"]) * int(o["quantity"])
                side = Side(str(o["transaction_type"]))
                exchange = str(o["exchange"])
            except (KeyError, TypeError, ValueError):
                return self.error("Invalid order in estimateCharges", "AB1009")
            c = order_charges(notional, side, exchange, broker_rates("angelone"))
            total += c.total - c.dp_charge
            value += notional
            parts["brokerage"] += c.brokerage
            parts["external"] += c.exchange_txn + c.ipft + c.sebi_fee + c.stamp_duty + c.stt
            parts["taxes"] += c.gst
        return self.ok(
            {
                "summary": {
                    "total_charges": round(total, 4),
                    "trade_value": round(value, 2),
                    "breakup": [
                        {
                            "name": "Angel One Brokerage",
                            "amount": round(parts["brokerage"], 4),
                            "msg": "",
                            "breakup": [],
                        },
                        {
                            "name": "External Charges",
                            "amount": round(parts["external"], 4),
                            "msg": "",
                            "breakup": [],
                        },
                        {
                            "name": "Taxes",
                            "amount": round(parts["taxes"], 4),
                            "msg": "",
                            "breakup": [],
                        },
                    ],
                },
                "charges": [],
            }
        )

    def _cancel(self, p: dict[str, Any]) -> Reply:
        order = next((o for o in self.orders if o["orderid"] == p.get("orderid")), None)
        if order is None:
            return self.error("Invalid order id", "AB2001")
        if order["status"] != "open":
            return self.error(f"Order is already {order['status']}", "AB4009")
        order.update(
            status="cancelled", orderstatus="cancelled", cancelsize=order["unfilledshares"]
        )
        return self.ok({"orderid": order["orderid"], "uniqueorderid": order["uniqueorderid"]})


__all__ = ["SELL_NOT_AUTHORISED", "SmartApiEmulator"]
