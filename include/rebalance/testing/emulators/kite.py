"""An emulator of the Kite Connect v3 REST endpoints the Zerodha adapter uses.

Envelopes as Kite sends them: ``{"status": "success", "data": ...}`` and
``{"status": "error", "message": ..., "error_type": "TokenException", "data": null}`` with the
HTTP status Kite uses (403 token, 400 input, 429 rate limit, 503 network).

    with KiteEmulator() as kite:
        client = KiteConnect("key", access_token="token", root=kite.url)
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import parse_qs

from rebalance.brokers.candles import MAX_DAYS_PER_REQUEST
from rebalance.testing.emulators._server import (
    AUTO_PROTECTION_PCT,
    DEMO_HOLDINGS,
    EXTRA_PRICES,
    EmulatorServer,
    Holding,
    Reply,
    apply_patch,
    circuit_band,
    fake_credential,
    on_tick,
    tick_for,
)
from rebalance.testing.emulators.history import candle_row, parse_day, served_candles

SELL_NOT_AUTHORISED = (
    "RMS:Rule: Check holding authorisation. Your holdings are not authorised for sale: "
    "authorise them with CDSL TPIN (eDIS) or submit the DDPI."
)
# Kite's words (Kite Connect forum, "market_protection parameter — clarification", April 2026).
UNPROTECTED_MARKET = (
    "Market orders without market protection are not allowed via API. Please set market "
    "protection or use a Limit order."
)
# Kite's words for a limit outside the day's band (tradingqna.com, April 2026).
OUTSIDE_CIRCUIT = (
    "Price exceeds circuit limits for the instrument. Place an order within the daily range."
)
# Kite's text for an order from an unregistered IP is not published: these words are ours.
UNREGISTERED_IP = (
    "Order request from an unregistered IP address. Register your static IP in the developer "
    "console (IP Whitelist) before placing orders."
)
HOLDINGS_NOT_AUTHORISED = (
    "Holdings are not authorised for sale. Authorise them with CDSL TPIN (Holdings > "
    "Authorisation) or submit the DDPI."
)


class KiteEmulator(EmulatorServer):
    broker = "zerodha"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        access_token: str | None = None,
        api_secret: str | None = None,
        request_token: str | None = None,
        cash: float = 100_000.0,
        holdings: list[Holding] | None = None,
        strict_2026: bool = True,
        registered_ips: set[str] | None = None,
        ddpi: bool = True,
    ) -> None:
        super().__init__(strict_2026=strict_2026, registered_ips=registered_ips, ddpi=ddpi)
        # Credentials not given are made fresh (and plainly fake) for this emulator.
        self.api_key = api_key or fake_credential("api-key")
        self.access_token = access_token or fake_credential("access-token")
        self.api_secret = api_secret or fake_credential("api-secret")
        self.request_token = request_token or fake_credential("request-token")
        # Today's delivery buys: in positions on the trade day, in holdings (T1) from the next.
        self.day_buys: dict[str, tuple[int, float]] = {}  # symbol -> (shares, average price)
        self.cash = cash
        for h in holdings if holdings is not None else DEMO_HOLDINGS:
            self.add_holding(Holding(**h.__dict__))
        self.prices = {s: p for s, (p, *_r) in EXTRA_PRICES.items()}
        self._next_id = 1

    def airflow_connection(self, **extra: str) -> str:
        """This emulator as an ``AIRFLOW_CONN_*`` value (JSON) for ``brokers/connections.py``;
        ``extra`` adds connection extras such as ``default_market_protection``."""
        return json.dumps(
            {
                "conn_type": "generic",
                "login": self.api_key,
                "password": self.access_token,
                "extra": {"root": self.url, **extra},
            }
        )

    # --- envelopes --------------------------------------------------------------------------

    @staticmethod
    def ok(data: Any) -> Reply:
        return Reply(200, {"status": "success", "data": data})

    @staticmethod
    def error(status: int, error_type: str, message: str) -> Reply:
        return Reply(
            status, {"status": "error", "message": message, "error_type": error_type, "data": None}
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
        if method == "POST" and path == "/charges/orders":
            try:
                orders = json.loads(body.decode() or "[]")
            except ValueError:
                return self.error(400, "InputException", "Invalid JSON body.")
        form = {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        if self.take("rate_limit_next"):
            return self.error(429, "NetworkException", "Too many requests")
        if self.take("server_error_next"):
            return self.error(503, "NetworkException", "Gateway timed out / service unavailable")
        if method == "POST" and path == "/session/token":
            return self._session(form)
        auth = headers.get("Authorization") or headers.get("authorization") or ""
        if self.faults.expired_token or auth != f"token {self.api_key}:{self.access_token}":
            return self.error(403, "TokenException", "Incorrect `api_key` or `access_token`.")
        with self.lock:
            if method == "GET" and path == "/portfolio/holdings":
                return self.ok(self._holdings())
            if method == "GET" and path == "/portfolio/positions":
                return self.ok(self._positions())
            if method == "GET" and path.startswith("/instruments/historical/"):
                return self._historical(path, query)
            if method == "GET" and path.startswith("/instruments/"):
                return Reply(200, self._instruments(path.rsplit("/", 1)[-1]), "text/csv")
            if method == "POST" and path == "/charges/orders":
                return self._charges(orders)
            if method == "GET" and path == "/quote":
                return self.ok(self._quotes(query.get("i", [])))
            if method == "GET" and path in ("/user/margins/equity", "/user/margins"):
                equity = {
                    "enabled": True,
                    "net": round(self.cash, 2),
                    "available": {"cash": round(self.cash, 2), "live_balance": round(self.cash, 2)},
                    "utilised": {"debits": 0},
                }
                return self.ok(equity if path.endswith("equity") else {"equity": equity})
            if method == "GET" and path == "/orders":
                return self.ok(list(self.orders))
            if method == "GET" and path.startswith("/orders/"):
                found = self._find(path.rsplit("/", 1)[-1])
                if found is None:
                    return self.error(400, "InputException", "Couldn't find that `order_id`.")
                return self.ok([found])
            if method == "POST" and path == "/orders/regular":
                if self.ip_refused(headers):
                    self.orders_received += 1
                    return self.error(403, "PermissionException", UNREGISTERED_IP)
                if not self.order_arrived():
                    self.orders_received += 1
                    return self.error(429, "NetworkException", "Too many requests")
                return self._place(form)
            if method == "DELETE" and path.startswith("/orders/regular/"):
                if not self.order_arrived():
                    return self.error(429, "NetworkException", "Too many requests")
                return self._cancel(path.rsplit("/", 1)[-1])
        return self.error(404, "GeneralException", f"Route not found: {method} {path}")

    def _session(self, form: dict[str, str]) -> Reply:
        expected = hashlib.sha256(
            (self.api_key + self.request_token + self.api_secret).encode()
        ).hexdigest()
        if form.get("api_key") != self.api_key or form.get("checksum") != expected:
            return self.error(403, "TokenException", "Invalid `checksum`.")
        self.access_token = fake_credential("session")
        return self.ok(
            {
                "user_id": "ZX1234",
                "user_name": "Emulated User",
                "access_token": self.access_token,
                "public_token": "publictoken",
                "login_time": "2026-01-05 08:30:00",
            }
        )

    # --- reads ------------------------------------------------------------------------------

    def _holdings(self) -> list[dict[str, Any]]:
        out = []
        for h in self.holdings.values():
            rec = {
                "tradingsymbol": h.symbol,
                "exchange": "NSE",
                "instrument_token": int(h.token or 0),
                "isin": h.isin,
                "product": "CNC",
                "quantity": h.quantity,
                "t1_quantity": h.t1_quantity,
                "realised_quantity": h.quantity,
                "authorised_quantity": self.authorised.get(h.symbol, 0),
                "opening_quantity": h.quantity,
                "collateral_quantity": h.collateral_quantity,
                "used_quantity": 0,
                "average_price": h.average_price,
                "last_price": h.last_price,
                "close_price": h.previous_close,
                "pnl": round((h.last_price - h.average_price) * h.quantity, 2),
            }
            out.append(apply_patch(rec, self.faults.holdings_patch.get(h.symbol)))
        return out

    def _positions(self) -> dict[str, list[dict[str, Any]]]:
        day = []
        for symbol, (qty, avg) in self.day_buys.items():
            price = self._price(symbol)
            last = price[0] if price else avg
            day.append(
                {
                    "tradingsymbol": symbol,
                    "exchange": "NSE",
                    "product": "CNC",
                    "quantity": qty,
                    "overnight_quantity": 0,
                    "day_buy_quantity": qty,
                    "day_buy_price": avg,
                    "day_sell_quantity": 0,
                    "average_price": avg,
                    "last_price": last,
                }
            )
        return {"net": [dict(p) for p in day], "day": day}

    def settle_day(self) -> None:
        """The next trading day: today's delivery buys move from positions to holdings (T1)."""
        with self.lock:
            for symbol, (qty, avg) in self.day_buys.items():
                held = self.holdings.get(symbol)
                if held is None:
                    price = self._price(symbol)
                    close = price[1] if price else None
                    isin = EXTRA_PRICES.get(symbol, (0, 0, None))[2]
                    self.holdings[symbol] = Holding(
                        symbol, 0, avg, price[0] if price else avg, isin, close, t1_quantity=qty
                    )
                else:
                    total = held.quantity + held.t1_quantity
                    held.average_price = (held.average_price * total + avg * qty) / (total + qty)
                    held.t1_quantity += qty
            self.day_buys.clear()
            self.authorised.clear()

    def _historical(self, path: str, query: dict[str, list[str]]) -> Reply:
        """``GET /instruments/historical/{instrument_token}/{interval}?from=..&to=..``."""
        token, _, interval = path.removeprefix("/instruments/historical/").partition("/")
        symbols = sorted(set(self.holdings) | set(self.prices) | set(self.day_buys))
        if not token.isdigit() or not 1 <= int(token) <= len(symbols):
            return self.error(400, "InputException", "invalid token")
        if interval != "day":
            return self.error(400, "InputException", "the emulator serves day candles only")
        try:
            first = parse_day(query["from"][-1])
            last = parse_day(query["to"][-1])
        except (KeyError, ValueError):
            return self.error(400, "InputException", "invalid from date or to date")
        if (last - first).days > MAX_DAYS_PER_REQUEST:
            return self.error(400, "InputException", "interval exceeds max limit: 2000 days")
        symbol = symbols[int(token) - 1]
        rows = served_candles(symbol, first, last, self.history_edits)
        return self.ok({"candles": [candle_row(c) for c in rows]})

    def _instruments(self, exchange: str) -> str:
        lines = [
            "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,"
            "tick_size,lot_size,instrument_type,segment,exchange"
        ]
        symbols = sorted(set(self.holdings) | set(self.prices) | set(self.day_buys))
        for n, symbol in enumerate(symbols, start=1):
            price = self._price(symbol)
            if price is None or exchange != "NSE":
                continue
            lines.append(
                f"{n},{n},{symbol},{symbol},0,,0,{tick_for(price[1] or price[0])},1,EQ,NSE,NSE"
            )
        return "\n".join(lines) + "\n"

    def _charges(self, orders: Any) -> Reply:
        from rebalance.costs import broker_rates, order_charges
        from rebalance.domain.market import Side

        if not isinstance(orders, list):
            return self.error(400, "InputException", "Expected a list of orders.")
        out = []
        for o in orders:
            try:
                notional = float(o["average_price"]) * int(o["quantity"])
                side = Side(str(o["transaction_type"]))
                exchange = str(o["exchange"])
            except (KeyError, TypeError, ValueError):
                return self.error(400, "InputException", "Invalid order in the charges request.")
            c = order_charges(notional, side, exchange, broker_rates("zerodha"))
            out.append(
                {
                    "transaction_type": str(side),
                    "tradingsymbol": o.get("tradingsymbol"),
                    "exchange": exchange,
                    "variety": "regular",
                    "product": "CNC",
                    "order_type": o.get("order_type"),
                    "quantity": int(o["quantity"]),
                    "price": float(o["average_price"]),
                    "charges": {
                        "transaction_tax": round(c.stt, 4),
                        "transaction_tax_type": "stt",
                        "exchange_turnover_charge": round(c.exchange_txn + c.ipft, 4),
                        "sebi_turnover_charge": round(c.sebi_fee, 4),
                        "brokerage": round(c.brokerage, 4),
                        "stamp_duty": round(c.stamp_duty, 4),
                        "gst": {
                            "igst": round(c.gst, 4),
                            "cgst": 0,
                            "sgst": 0,
                            "total": round(c.gst, 4),
                        },
                        "total": round(c.total - c.dp_charge, 4),
                    },
                }
            )
        return self.ok(out)

    def _price(self, symbol: str) -> tuple[float, float | None] | None:
        if symbol in self.holdings:
            return self.holdings[symbol].last_price, self.holdings[symbol].previous_close
        if symbol in self.prices:
            return self.prices[symbol], EXTRA_PRICES.get(symbol, (0, None))[1]
        return None

    def _quotes(self, keys: list[str]) -> dict[str, Any]:
        out = {}
        for key in keys:
            exchange, _, symbol = key.partition(":")
            price = self._price(symbol)
            if exchange != "NSE" or price is None:
                continue  # Kite leaves unknown instruments out
            last, close = price
            lower, upper = circuit_band(close or last)
            rec = {
                "instrument_token": 0,
                "timestamp": "2026-01-05 15:29:59",
                "last_trade_time": "2026-01-05 15:29:58",
                "last_price": last,
                "volume": 1000,
                "ohlc": {"open": last, "high": last, "low": last, "close": close or last},
                "upper_circuit_limit": upper,
                "lower_circuit_limit": lower,
            }
            out[key] = apply_patch(rec, self.faults.quote_patch.get(symbol))
        return out

    def _find(self, order_id: str) -> dict[str, Any] | None:
        return next((o for o in self.orders if o["order_id"] == order_id), None)

    # --- writes -----------------------------------------------------------------------------

    def _place(self, form: dict[str, str]) -> Reply:
        self.orders_received += 1
        if self.faults.reject_next_order:
            message, self.faults.reject_next_order = self.faults.reject_next_order, None
            return self.error(400, "OrderException", message)
        for name in ("tradingsymbol", "exchange", "transaction_type", "quantity", "product"):
            if not form.get(name):
                return self.error(400, "InputException", f"Missing `{name}`")
        if form["product"] != "CNC":
            return self.error(400, "InputException", "Only CNC is expected from this app")
        tag = form.get("tag", "")
        if len(tag) > 20 or (tag and not tag.isalnum()):
            return self.error(400, "InputException", "Invalid `tag`.")
        symbol = form["tradingsymbol"]
        price = self._price(symbol)
        if price is None:
            return self.error(400, "InputException", "Invalid `tradingsymbol`.")
        order_type = form.get("order_type", "MARKET")
        side = form["transaction_type"]
        quantity = int(form["quantity"])
        last, close = price
        limit: float | None = None
        if order_type == "LIMIT":
            try:
                limit = float(form.get("price") or 0)
            except ValueError:
                return self.error(400, "InputException", "Invalid `price`.")
        if self.strict_2026:
            refused = self._strict_checks(form, order_type, limit, last, close)
            if refused is not None:
                return refused
            if order_type == "MARKET":
                # A protected market order becomes a limit at the protection price.
                pct = float(form["market_protection"])
                pct = AUTO_PROTECTION_PCT if pct == -1 else pct
                sign = 1 if side == "BUY" else -1
                lower, upper = circuit_band(close or last)
                limit = min(
                    upper, max(lower, on_tick(last * (1 + sign * pct / 100), tick_for(last)))
                )
                order_type = "LIMIT"
        if side == "SELL" and not self.sell_authorised(symbol, quantity):
            return self.error(428, "HoldingException", HOLDINGS_NOT_AUTHORISED)
        if self.take("timeout_without_placing"):
            return Reply(504, "upstream timed out", "text/html", delay=self.faults.timeout_delay)
        order_id = f"2601050000{self._next_id:05d}"
        self._next_id += 1
        order: dict[str, Any] = {
            "order_id": order_id,
            "exchange_order_id": None,
            "status": "COMPLETE",
            "status_message": None,
            "tradingsymbol": symbol,
            "exchange": form["exchange"],
            "transaction_type": side,
            "order_type": order_type,
            "product": "CNC",
            "variety": "regular",
            "validity": "DAY",
            "quantity": quantity,
            "price": limit or 0.0,
            "filled_quantity": 0,
            "pending_quantity": 0,
            "cancelled_quantity": 0,
            "average_price": 0,
            "market_protection": float(form.get("market_protection") or 0),
            "tag": tag or None,
            "tags": [tag] if tag else None,
            "order_timestamp": "2026-01-05 15:10:00",
        }
        held = self.holdings.get(symbol)
        market = self.market_price(symbol, last)
        marketable = limit is None or (limit >= market if side == "BUY" else limit <= market)
        if side == "SELL" and symbol in self.faults.unauthorised_sells:
            order.update(status="REJECTED", status_message=SELL_NOT_AUTHORISED)
        elif side == "SELL" and (held is None or held.quantity < quantity):
            order.update(status="REJECTED", status_message="RMS:Rule: Insufficient holdings")
        elif not marketable:
            order.update(pending_quantity=quantity, status="OPEN")  # rests in the book
        else:
            filled = min(quantity, self.faults.partial_fill.get(symbol, quantity))
            self._fill(symbol, side, filled, market)
            order.update(
                filled_quantity=filled,
                pending_quantity=quantity - filled,
                average_price=market if filled else 0,
                status="COMPLETE" if filled == quantity else "OPEN",
            )
        self.orders.append(order)
        if tag:
            self.orders_by_tag[tag] += 1
        if self.take("place_then_timeout"):
            return Reply(504, "upstream timed out", "text/html", delay=self.faults.timeout_delay)
        return self.ok({"order_id": order_id})

    def _strict_checks(
        self,
        form: dict[str, str],
        order_type: str,
        limit: float | None,
        last: float,
        close: float | None,
    ) -> Reply | None:
        """Kite's refusals under the 2026 rules, or None if the order passes."""
        if order_type == "MARKET":
            raw = form.get("market_protection")
            if raw in (None, ""):
                return self.error(400, "InputException", UNPROTECTED_MARKET)
            try:
                pct = float(str(raw))
            except ValueError:
                return self.error(
                    400,
                    "InputException",
                    f"Invalid request (failed to decode market_protection, got: {raw} "
                    "(expected decimal))",
                )
            if pct != -1 and not 0 < pct <= 100:
                return self.error(400, "InputException", UNPROTECTED_MARKET)
            return None
        if limit is None or limit <= 0:
            return self.error(400, "InputException", "Invalid `price`.")
        lower, upper = circuit_band(close or last)
        if not lower <= limit <= upper:
            return self.error(400, "InputException", OUTSIDE_CIRCUIT)
        tick = tick_for(close or last)
        if abs(on_tick(limit, tick) - limit) > 1e-9:
            return self.error(
                400,
                "InputException",
                f"Tick size for this script is {tick:.2f}. Kindly enter price in the multiple "
                "of tick size for this script",
            )
        return None

    def _fill(self, symbol: str, side: str, filled: int, price: float) -> None:
        if not filled:
            return
        held = self.holdings.get(symbol)
        if side == "BUY":
            self.cash -= filled * price
            shares, avg = self.day_buys.get(symbol, (0, 0.0))
            self.day_buys[symbol] = (
                shares + filled,
                (avg * shares + price * filled) / (shares + filled),
            )
        else:
            assert held is not None
            self.cash += filled * price
            held.quantity -= filled

    def _cancel(self, order_id: str) -> Reply:
        order = self._find(order_id)
        if order is None:
            return self.error(400, "InputException", "Couldn't find that `order_id`.")
        if order["status"] != "OPEN":
            return self.error(
                400,
                "InputException",
                f"Order cannot be cancelled as it is {order['status'].lower()}.",
            )
        order.update(
            status="CANCELLED",
            cancelled_quantity=order["quantity"] - order["filled_quantity"],
            pending_quantity=0,
        )
        return self.ok({"order_id": order_id})


__all__ = ["SELL_NOT_AUTHORISED", "KiteEmulator"]
