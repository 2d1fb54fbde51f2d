"""The paper broker: holdings and prices from a CSV file, fills at the last price, deterministic.

For the demo, dry runs and tests. It behaves like a broker where that matters to the pipeline:

* its order book lives in ``<state_dir>/paper-<account>.json``, written atomically under a file
  lock, so reconciliation by tag works across task retries and processes;
* a market order fills at once, completely, at the file's last price; a limit order fills at the
  last price if it is marketable (buy limit >= last, sell limit <= last), else it stays open until
  cancelled;
* fills move ``holdings()`` and ``funds()``: a buy adds to quantity (not to today's sellable
  quantity, as at a real broker: delivery settles T+1), a sell takes from both; a buy above the
  available cash or a sell above the sellable quantity is rejected, like a real broker would;
* order ids are ``PAPER-<account>-<n>``, n counting from 1 per account; like a real broker, a
  repeated tag is accepted (guarding against duplicates is the execution layer's job).

The CSV has the columns ``symbol,exchange,quantity,last_price`` and optionally ``average_price,
sellable_quantity,previous_close,acquired_on,isin``; a row with quantity 0 only supplies a price.
"""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from rebalance.brokers.base import (
    BadResponse,
    BrokerCapabilities,
    CancelRejected,
    Candle,
    Funds,
    OrderNotFound,
    OrderRejected,
    OrderReport,
    OrderRequest,
    OrderStatus,
)
from rebalance.brokers.filestate import locked_json_state
from rebalance.brokers.synthetic_history import synthetic_candles
from rebalance.domain.market import IST, Holding, Instrument, Quote, Side

_STATE_VERSION = 1
_REQUIRED = ("symbol", "exchange", "quantity", "last_price")


@dataclass(frozen=True)
class _Row:
    symbol: str
    exchange: str
    quantity: int
    sellable_quantity: int
    average_price: float
    last_price: float
    previous_close: float | None
    acquired_on: date | None
    isin: str | None


class PaperBroker:
    """One paper account: ``PaperBroker("paper", Path("holdings.csv"), 50_000, Path("state"))``.

    ``cash`` is rupees available before any paper fill. ``clock`` (tz-aware, IST) stamps orders
    and the ``acquired_on`` of bought shares; tests pass a fixed one.
    """

    name = "paper"
    # Fills move the paper holdings at once: a second run the same day sees them.
    capabilities = BrokerCapabilities(same_day_quantities_reliable=True)

    def __init__(
        self,
        account: str,
        holdings_file: Path,
        cash: float,
        state_dir: Path,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not account or not account.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"paper account name {account!r} must be alphanumeric (with _ or -)")
        if cash < 0:
            raise ValueError(f"paper account {account}: cash must be >= 0 rupees, got {cash}")
        self.account = account
        self.holdings_file = Path(holdings_file)
        self.cash = float(cash)
        self.state_dir = Path(state_dir)
        self._clock = clock or (lambda: datetime.now(IST))

    # --- files ------------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.state_dir / f"paper-{self.account}.json"

    def _bad(self, message: str) -> BadResponse:
        return BadResponse(self.name, f"{self.holdings_file}: {message}")

    def _read_rows(self) -> dict[str, _Row]:
        try:
            text = self.holdings_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise self._bad(f"cannot read the holdings file ({exc.strerror})") from exc
        reader = csv.DictReader(text.splitlines())
        missing = [c for c in _REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise self._bad(f"missing column(s): {', '.join(missing)}")
        rows: dict[str, _Row] = {}
        for lineno, raw in enumerate(reader, start=2):
            row = self._parse_row(raw, lineno)
            if row.symbol in rows:
                raise self._bad(f"row {lineno}: symbol {row.symbol} appears twice")
            rows[row.symbol] = row
        return rows

    def _parse_row(self, raw: dict[str, str | None], lineno: int) -> _Row:
        def cell(name: str) -> str:
            return (raw.get(name) or "").strip()

        def number(name: str, *, required: bool) -> float | None:
            value = cell(name)
            if not value:
                if required:
                    raise self._bad(f"row {lineno}: {name} is empty")
                return None
            try:
                return float(value)
            except ValueError:
                raise self._bad(f"row {lineno}: {name} {value!r} is not a number") from None

        def whole(name: str, *, default: int | None) -> int:
            value = number(name, required=default is None)
            if value is None:
                assert default is not None
                return default
            if value != int(value) or value < 0:
                raise self._bad(f"row {lineno}: {name} must be a whole number >= 0, got {value}")
            return int(value)

        symbol = cell("symbol").upper()
        if not symbol:
            raise self._bad(f"row {lineno}: symbol is empty")
        last_price = number("last_price", required=True)
        assert last_price is not None
        if last_price <= 0:
            raise self._bad(f"row {lineno}: last_price of {symbol} must be > 0, got {last_price}")
        quantity = whole("quantity", default=None)
        sellable = whole("sellable_quantity", default=quantity)
        if sellable > quantity:
            raise self._bad(
                f"row {lineno}: sellable_quantity {sellable} of {symbol} "
                f"exceeds quantity {quantity}"
            )
        acquired: date | None = None
        if cell("acquired_on"):
            try:
                acquired = date.fromisoformat(cell("acquired_on"))
            except ValueError:
                raise self._bad(
                    f"row {lineno}: acquired_on {cell('acquired_on')!r} is not a YYYY-MM-DD date"
                ) from None
        return _Row(
            symbol=symbol,
            exchange=(cell("exchange") or "NSE").upper(),
            quantity=quantity,
            sellable_quantity=sellable,
            average_price=number("average_price", required=False) or 0.0,
            last_price=last_price,
            previous_close=number("previous_close", required=False),
            acquired_on=acquired,
            isin=cell("isin") or None,
        )

    def _locked_state(self) -> contextlib.AbstractContextManager[dict[str, Any]]:
        """The state, under an exclusive lock; changes to the dict are written back atomically."""
        return locked_json_state(self.state_file, self._load_state)

    def _load_state(self, path: Path) -> dict[str, Any]:
        if not path.exists():
            return {"version": _STATE_VERSION, "account": self.account, "next_id": 1, "orders": []}
        try:
            state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BadResponse(self.name, f"{path}: unreadable paper order book ({exc})") from exc
        if state.get("account") != self.account:
            raise BadResponse(self.name, f"{path}: belongs to account {state.get('account')!r}")
        return state

    def _snapshot(self) -> tuple[dict[str, Any], dict[str, _Row]]:
        with self._locked_state() as state:
            return json.loads(json.dumps(state)), self._read_rows()

    # --- positions --------------------------------------------------------------------------

    @staticmethod
    def _apply_fills(
        rows: dict[str, _Row], orders: list[dict[str, Any]], cash: float
    ) -> tuple[dict[str, dict[str, Any]], float]:
        book: dict[str, dict[str, Any]] = {
            s: {
                "exchange": r.exchange,
                "quantity": r.quantity,
                "sellable": r.sellable_quantity,
                "cost": r.average_price * r.quantity,
                "acquired_on": r.acquired_on,
                "isin": r.isin,
            }
            for s, r in rows.items()
        }
        for o in orders:
            filled = int(o["filled_quantity"])
            if not filled:
                continue
            price = float(o["average_price"])
            pos = book.setdefault(
                o["symbol"],
                {
                    "exchange": o["exchange"],
                    "quantity": 0,
                    "sellable": 0,
                    "cost": 0.0,
                    "acquired_on": None,
                    "isin": None,
                },
            )
            if o["side"] == Side.BUY:
                pos["quantity"] += filled
                pos["cost"] += filled * price
                cash -= filled * price
                if pos["acquired_on"] is None:
                    pos["acquired_on"] = date.fromisoformat(o["placed_at"][:10])
            else:
                avg = pos["cost"] / pos["quantity"] if pos["quantity"] else 0.0
                pos["quantity"] -= filled
                pos["sellable"] -= filled
                pos["cost"] -= avg * filled
                cash += filled * price
        return book, cash

    def holdings(self) -> list[Holding]:
        state, rows = self._snapshot()
        book, _ = self._apply_fills(rows, state["orders"], self.cash)
        out = []
        for symbol in sorted(book):
            pos = book[symbol]
            if pos["quantity"] <= 0:
                continue
            row = rows.get(symbol)
            out.append(
                Holding(
                    symbol=symbol,
                    exchange=pos["exchange"],
                    quantity=pos["quantity"],
                    sellable_quantity=max(0, pos["sellable"]),
                    average_price=round(pos["cost"] / pos["quantity"], 4),
                    last_price=row.last_price if row else 0.0,
                    isin=pos["isin"],
                    acquired_on=pos["acquired_on"],
                )
            )
        return out

    def quotes(self, instruments: Sequence[Instrument]) -> dict[str, Quote]:
        """Prices of the requested symbols found in the file; unknown symbols are left out."""
        rows = self._read_rows()
        out: dict[str, Quote] = {}
        for ins in instruments:
            row = rows.get(ins.symbol.upper())
            if row is None or row.exchange != ins.exchange.upper():
                continue
            out[row.symbol] = Quote(
                symbol=row.symbol,
                exchange=row.exchange,
                last_price=row.last_price,
                previous_close=row.previous_close,
                as_of=None,
            )
        return out

    def candles(self, instrument: Instrument, first: date, last: date) -> list[Candle]:
        """Emulated daily history: deterministic per symbol (``synthetic_history``), any symbol."""
        return synthetic_candles(instrument.symbol.upper(), first, last)

    def funds(self) -> Funds:
        state, rows = self._snapshot()
        _, cash = self._apply_fills(rows, state["orders"], self.cash)
        return Funds(available_cash=round(cash, 2))

    # --- orders -----------------------------------------------------------------------------

    def place_order(self, order: OrderRequest) -> str:
        symbol = order.symbol.upper()
        with self._locked_state() as state:
            rows = self._read_rows()
            row = rows.get(symbol)
            if row is None or row.exchange != order.exchange.upper():
                raise OrderRejected(
                    self.name,
                    f"{order.exchange}:{symbol}: no price in {self.holdings_file.name}; "
                    "the paper broker only trades symbols listed in its file",
                    {"symbol": symbol},
                )
            book, cash = self._apply_fills(rows, state["orders"], self.cash)
            # Open orders reserve cash and shares, as at a real broker.
            for o in state["orders"]:
                if o["status"] in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED):
                    rest = int(o["quantity"]) - int(o["filled_quantity"])
                    if o["side"] == Side.BUY:
                        cash -= rest * float(o["price"] or 0)
                    elif o["symbol"] in book:
                        book[o["symbol"]]["sellable"] -= rest
            price = row.last_price
            marketable = (
                order.price is None
                or (order.side is Side.BUY and order.price >= price)
                or (order.side is Side.SELL and order.price <= price)
            )
            reject: str | None = None
            if order.side is Side.SELL:
                sellable = book.get(symbol, {}).get("sellable", 0)
                if order.quantity > sellable:
                    reject = (
                        f"sell of {order.quantity} {symbol} exceeds the sellable quantity "
                        f"{max(0, sellable)}"
                    )
            else:
                needed = order.quantity * (price if marketable else float(order.price or price))
                if needed > cash + 1e-6:
                    reject = (
                        f"buy of {order.quantity} {symbol} needs ₹{needed:,.2f}, "
                        f"only ₹{max(0.0, cash):,.2f} available"
                    )
            order_id = f"PAPER-{self.account}-{state['next_id']}"
            state["next_id"] += 1
            filled = order.quantity if marketable and reject is None else 0
            if reject:
                status = OrderStatus.REJECTED
            elif filled:
                status = OrderStatus.COMPLETE
            else:
                status = OrderStatus.OPEN
            state["orders"].append(
                {
                    "order_id": order_id,
                    "tag": order.tag,
                    "symbol": symbol,
                    "exchange": order.exchange.upper(),
                    "side": str(order.side),
                    "quantity": order.quantity,
                    "price": order.price,
                    "status": str(status),
                    "filled_quantity": filled,
                    "average_price": price if filled else None,
                    "message": reject,
                    "placed_at": self._clock().isoformat(),
                }
            )
        if reject:
            raise OrderRejected(self.name, f"{symbol}: {reject}", {"order_id": order_id})
        return order_id

    @staticmethod
    def _report(o: dict[str, Any]) -> OrderReport:
        return OrderReport(
            broker_order_id=o["order_id"],
            tag=o["tag"],
            symbol=o["symbol"],
            exchange=o["exchange"],
            side=Side(o["side"]),
            quantity=int(o["quantity"]),
            status=OrderStatus(o["status"]),
            filled_quantity=int(o["filled_quantity"]),
            average_price=o["average_price"],
            message=o["message"],
            raw_status=o["status"],
        )

    def orders(self) -> list[OrderReport]:
        state, _ = self._snapshot()
        return [self._report(o) for o in state["orders"]]

    def order(self, broker_order_id: str) -> OrderReport:
        state, _ = self._snapshot()
        for o in state["orders"]:
            if o["order_id"] == broker_order_id:
                return self._report(o)
        raise OrderNotFound(self.name, f"no order {broker_order_id} in account {self.account}")

    def cancel(self, broker_order_id: str) -> None:
        with self._locked_state() as state:
            for o in state["orders"]:
                if o["order_id"] != broker_order_id:
                    continue
                if OrderStatus(o["status"]).is_terminal:
                    raise CancelRejected(
                        self.name,
                        f"order {broker_order_id} is already {o['status']} and cannot be cancelled",
                    )
                o["status"] = str(OrderStatus.CANCELLED)
                o["message"] = "cancelled by user"
                return
        raise OrderNotFound(self.name, f"no order {broker_order_id} in account {self.account}")


__all__ = ["PaperBroker"]
