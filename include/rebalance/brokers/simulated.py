"""Paper execution on a real account: reads from the broker, orders go nowhere real.

In ``mode: paper`` a Zerodha or AngelOne lane reads the account's true holdings, quotes and cash,
but every order is filled at the last price in a local order book (under the state directory),
so a person can watch a whole run against their real portfolio without risking a rupee.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import date
from pathlib import Path
from typing import Any

from rebalance.brokers.base import (
    BadResponse,
    Broker,
    Candle,
    CandleSource,
    Funds,
    OrderNotFound,
    OrderReport,
    OrderRequest,
    OrderStatus,
)
from rebalance.brokers.filestate import locked_json_state
from rebalance.domain.market import Holding, Instrument, Quote, Side


class SimulatedExecution:
    """Wraps ``inner``: reads go to it, orders fill in a JSON book at ``state_dir``."""

    def __init__(self, inner: Broker, account: str, state_dir: Path) -> None:
        self.inner = inner
        self.name = f"{inner.name}-paper"
        self.account = account
        self.book_file = Path(state_dir) / f"simulated-{inner.name}-{account}.json"

    def holdings(self) -> list[Holding]:
        return self.inner.holdings()

    def quotes(self, instruments: Sequence[Instrument]) -> dict[str, Quote]:
        return self.inner.quotes(instruments)

    def candles(self, instrument: Instrument, first: date, last: date) -> list[Candle]:
        """Daily history from the account's broker (a read, as the quotes are)."""
        if not isinstance(self.inner, CandleSource):
            raise BadResponse(self.inner.name, "this broker serves no daily price history")
        return self.inner.candles(instrument, first, last)

    def funds(self) -> Funds:
        return self.inner.funds()

    def place_order(self, order: OrderRequest) -> str:
        price = order.price
        if price is None:
            quote = self.inner.quotes([Instrument(order.symbol, order.exchange)])[order.symbol]
            price = quote.last_price
        with self._book() as book:
            order_id = f"SIM-{self.account}-{len(book) + 1}"
            book.append(
                {
                    "broker_order_id": order_id,
                    "tag": order.tag,
                    "symbol": order.symbol,
                    "exchange": order.exchange,
                    "side": str(order.side),
                    "quantity": order.quantity,
                    "average_price": price,
                }
            )
        return order_id

    def orders(self) -> list[OrderReport]:
        with self._book() as book:
            return [self._report(o) for o in book]

    def order(self, broker_order_id: str) -> OrderReport:
        for report in self.orders():
            if report.broker_order_id == broker_order_id:
                return report
        raise OrderNotFound(self.name, f"no simulated order {broker_order_id}")

    def cancel(self, broker_order_id: str) -> None:
        self.order(broker_order_id)  # simulated orders fill at once: nothing left to cancel

    @staticmethod
    def _report(o: dict[str, Any]) -> OrderReport:
        return OrderReport(
            broker_order_id=o["broker_order_id"],
            tag=o["tag"],
            symbol=o["symbol"],
            exchange=o["exchange"],
            side=Side(o["side"]),
            quantity=o["quantity"],
            status=OrderStatus.COMPLETE,
            filled_quantity=o["quantity"],
            average_price=o["average_price"],
        )

    def _book(self) -> AbstractContextManager[list[dict[str, Any]]]:
        return locked_json_state(self.book_file, _read_book)


def _read_book(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text())) if path.exists() else []
