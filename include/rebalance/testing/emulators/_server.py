"""The HTTP plumbing and the fault knobs shared by the broker emulators."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MISSING = object()  # in a patch: remove the field from the reply


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

    def __init__(self) -> None:
        self.faults = Faults()
        self.lock = threading.RLock()
        self.holdings: dict[str, Holding] = {}
        self.orders: list[dict[str, Any]] = []
        self.orders_received = 0  # placement requests received (placed or not)
        self.orders_by_tag: Counter[str] = Counter()  # orders actually placed, per tag
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
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
                try:
                    reply = emulator.handle(method, parts.path, query, raw, dict(self.headers))
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
