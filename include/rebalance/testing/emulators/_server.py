"""The HTTP plumbing and the fault knobs shared by the broker emulators."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MISSING = object()  # in a patch: remove the field from the reply
CLIENT_IP_HEADER = "X-Emulator-Client-IP"  # the socket's peer address, added by the server
AUTO_PROTECTION_PCT = 1.0  # the band the emulators apply for market_protection=-1
CIRCUIT_PCT = 20.0  # the emulated daily price band around the previous close


def tick_for(price: float) -> float:
    """The emulated instrument's tick: 0.01 below ₹250, else 0.05 (NSE's equity ticks)."""
    return 0.01 if price < 250 else 0.05


def on_tick(price: float, tick: float) -> float:
    steps = (Decimal(str(price)) / Decimal(str(tick))).quantize(Decimal(1), ROUND_HALF_UP)
    return float(steps * Decimal(str(tick)))


def circuit_band(reference: float) -> tuple[float, float]:
    """(lower, upper) circuit of an instrument whose previous close is ``reference``."""
    tick = tick_for(reference)
    return (
        on_tick(reference * (1 - CIRCUIT_PCT / 100), tick),
        on_tick(reference * (1 + CIRCUIT_PCT / 100), tick),
    )


def fake_credential(kind: str) -> str:
    """A throwaway credential for an emulator or a test: made fresh each run, plainly fake.

    Nothing that looks like a real key is ever committed; tests that scan logs for leaks still
    get values distinctive enough that a match cannot happen by accident.
    """
    return f"fake-{kind}-{secrets.token_hex(6)}"


def fake_totp_secret() -> str:
    """A fresh base32 TOTP secret (pyotp needs base32), made each run."""
    import pyotp

    return str(pyotp.random_base32())


def fake_digits(count: int) -> str:
    """A fresh numeric credential (AngelOne's PIN), made each run."""
    return "".join(str(secrets.randbelow(10)) for _ in range(count))


@dataclass
class Holding:
    """One position of the emulated account."""

    symbol: str  # canonical NSE symbol
    quantity: int
    average_price: float
    last_price: float
    isin: str | None = None
    previous_close: float | None = None
    t1_quantity: int = 0
    collateral_quantity: int = 0
    token: str = ""  # AngelOne symbol token


@dataclass
class Faults:
    """Fault injection knobs. Counters (``*_next``) count down as they fire."""

    expired_token: bool = False  # every authenticated call answers the auth error
    rate_limit_next: int = 0  # the next N calls answer HTTP 429 (Kite) / access-rate (SmartAPI)
    server_error_next: int = 0  # the next N calls answer HTTP 503
    slow_seconds: float = 0.0  # every reply waits this long (client timeouts)
    reject_next_order: str | None = None  # the next placement is refused with this message
    unauthorised_sells: set[str] = field(default_factory=set)  # sells rejected (no DDPI/eDIS)
    partial_fill: dict[str, int] = field(default_factory=dict)  # symbol -> shares filled
    place_then_timeout: int = 0  # the next N placements: order placed, reply too late
    timeout_without_placing: int = 0  # the next N placements: reply too late, nothing placed
    timeout_delay: float = 1.5  # seconds the two above wait before replying
    holdings_patch: dict[str, dict[str, Any]] = field(default_factory=dict)  # symbol -> fields
    quote_patch: dict[str, dict[str, Any]] = field(default_factory=dict)  # symbol -> fields
    # symbol -> percent: the market trades this far from the quoted last price when an order
    # arrives (+ above, - below), so a limit / protected order may not be marketable and rests.
    market_moves: dict[str, float] = field(default_factory=dict)


def apply_patch(record: dict[str, Any], patch: dict[str, Any] | None) -> dict[str, Any]:
    if not patch:
        return record
    out = dict(record)
    for key, value in patch.items():
        if value is MISSING:
            out.pop(key, None)
        else:
            out[key] = value
    return out


@dataclass
class Reply:
    status: int
    body: Any  # dict/list -> JSON; str/bytes -> as is
    content_type: str = "application/json"
    delay: float = 0.0


class EmulatorServer:
    """A local HTTP server on 127.0.0.1 and a free port, in a daemon thread.

    Subclasses implement ``handle(method, path, query, body, headers) -> Reply``. Use as a
    context manager or call ``start()`` / ``stop()``; ``url`` is the root to give the client.
    """

    broker = "emulator"

    def __init__(
        self,
        *,
        strict_2026: bool = True,
        registered_ips: set[str] | None = None,
        orders_per_second: int = 10,
        ddpi: bool = True,
    ) -> None:
        """``strict_2026`` enforces the broker rules in force since 1 April 2026 (unprotected
        market orders refused, 10 orders a second, registered IP, tags of at most 20 characters,
        sell authorisation, limits inside the circuit, tick sizes). ``registered_ips``: the IPs
        orders may come from (default: 127.0.0.1, the tests' own). ``ddpi``: the account has a
        DDPI / POA; if False a sell needs ``authorise(symbol, shares)`` first."""
        self.strict_2026 = strict_2026
        self.registered_ips = {"127.0.0.1"} if registered_ips is None else set(registered_ips)
        self.orders_per_second = orders_per_second
        self.ddpi = ddpi
        self.authorised: dict[str, int] = {}  # symbol -> shares authorised for sale today
        self.order_arrivals: list[float] = []  # monotonic arrival time of each order request
        self.orders_refused_for_rate = 0
        self._recent: deque[float] = deque()
        self.faults = Faults()
        self.lock = threading.RLock()
        self.holdings: dict[str, Holding] = {}
        self.orders: list[dict[str, Any]] = []
        self.orders_received = 0  # placement requests received (placed or not)
        self.orders_by_tag: Counter[str] = Counter()  # orders actually placed, per tag
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        # Daily history edits for tests: symbol -> day -> a close, or None to leave the day out.
        self.history_edits: dict[str, dict[date, float | None]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> EmulatorServer:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: request lines would land on stderr

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                query = parse_qs(parts.query, keep_blank_values=True)
                with emulator.lock:
                    emulator.requests.append((method, parts.path))
                headers = dict(self.headers)
                headers[CLIENT_IP_HEADER] = str(self.client_address[0])
                try:
                    reply = emulator.handle(method, parts.path, query, raw, headers)
                except Exception as exc:  # pragma: no cover - a bug in the emulator
                    reply = Reply(500, {"status": "error", "message": f"emulator bug: {exc}"})
                delay = reply.delay + emulator.faults.slow_seconds
                if delay:
                    time.sleep(delay)
                if isinstance(reply.body, (dict, list)):
                    payload = json.dumps(reply.body).encode()
                elif isinstance(reply.body, str):
                    payload = reply.body.encode()
                else:
                    payload = reply.body
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): fine

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PUT(self) -> None:
                self._serve("PUT")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.broker}-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("emulator not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # --- state helpers ----------------------------------------------------------------------

    def add_holding(self, holding: Holding) -> None:
        with self.lock:
            self.holdings[holding.symbol] = holding

    def set_price(self, symbol: str, last_price: float) -> None:
        with self.lock:
            self.holdings[symbol].last_price = last_price

    def orders_for_tag(self, tag: str) -> int:
        """How many orders with this tag were placed (in the book)."""
        with self.lock:
            return self.orders_by_tag[tag]

    def reset_faults(self) -> None:
        self.faults = Faults()

    def authorise(self, symbol: str, shares: int) -> None:
        """Authorise ``shares`` of ``symbol`` for sale today (as CDSL TPIN / eDIS would)."""
        with self.lock:
            self.authorised[symbol] = self.authorised.get(symbol, 0) + shares

    # --- the 2026 checks shared by both emulators ---------------------------------------------

    def ip_refused(self, headers: dict[str, str]) -> bool:
        """True if strict and the request did not come from a registered IP."""
        return self.strict_2026 and headers.get(CLIENT_IP_HEADER) not in self.registered_ips

    def order_arrived(self) -> bool:
        """Record an order request (placement or cancellation); False if it exceeds the
        per-second limit (strict mode), which the broker answers with a refusal."""
        now = time.monotonic()
        with self.lock:
            self.order_arrivals.append(now)
            while self._recent and self._recent[0] <= now - 1.0:
                self._recent.popleft()
            if self.strict_2026 and len(self._recent) >= self.orders_per_second:
                self.orders_refused_for_rate += 1
                return False
            self._recent.append(now)
            return True

    def max_orders_in_one_second(self) -> int:
        """The most order requests that arrived within any one second (sliding window)."""
        with self.lock:
            times = sorted(self.order_arrivals)
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= 1.0:
                start += 1
            best = max(best, end - start + 1)
        return best

    def sell_authorised(self, symbol: str, quantity: int) -> bool:
        """True if the account may sell ``quantity`` of ``symbol`` (DDPI, or authorised today);
        a sale uses up the authorisation."""
        if not self.strict_2026 or self.ddpi:
            return True
        with self.lock:
            if self.authorised.get(symbol, 0) < quantity:
                return False
            self.authorised[symbol] -= quantity
            return True

    def market_price(self, symbol: str, last_price: float) -> float:
        """Where the market trades when an order arrives (``faults.market_moves``)."""
        move = self.faults.market_moves.get(symbol, 0.0)
        return on_tick(last_price * (1 + move / 100), tick_for(last_price))

    def take(self, name: str) -> bool:
        """Consume one shot of the counter fault ``name``; True if it fires."""
        with self.lock:
            left = getattr(self.faults, name)
            if left > 0:
                setattr(self.faults, name, left - 1)
                return True
            return False

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: bytes,
        headers: dict[str, str],
    ) -> Reply:
        raise NotImplementedError


DEMO_HOLDINGS = [
    Holding("RELIANCE", 120, 1100.00, 1285.40, "INE002A01018", 1279.10, token="2885"),
    Holding("HDFCBANK", 60, 1520.00, 1742.55, "INE040A01034", 1738.00, token="1333"),
    Holding("INFY", 95, 1450.00, 1890.15, "INE009A01021", 1872.40, token="1594"),
    Holding("TCS", 20, 3650.00, 4102.30, "INE467B01029", 4120.75, token="11536"),
]
# Instruments the emulators can quote and trade that the demo account does not hold.
EXTRA_PRICES = {"ITC": (430.10, 428.00, "INE154A01025", "1660")}
