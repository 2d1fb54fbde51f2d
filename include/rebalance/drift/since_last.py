"""Winners, losers and P&L since the last completed rebalance (notes 13.6).

The notes ask whether winners/losers should be counted since entry, against a reference price,
or since the last rebalance, and say the last is "often the most meaningful, but requires history
snapshots". The history keeps, per run, the holdings snapshot the plan was made from (quantities
and last prices *before* the orders) and every order's fills. The position the rebalance left is
that snapshot plus the fills, so:

* ``price_change_pct`` = today's last price / the snapshot's last price - 1 (in %): a symbol is a
  winner when it is > 0, a loser when < 0.
* ``pnl`` = the left position's value today - its value at the rebalance, where shares kept are
  valued at the snapshot's price and shares bought at their average fill price (rupees).

The figures assume the position is still the one the rebalance left; ``quantity_changed`` says
when today's holding differs (shares bought or sold outside the pipeline since).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rebalance.domain.market import Side
from rebalance.snapshot import HoldingsSnapshot


@dataclass(frozen=True)
class Fill:
    """Shares of one order of the last rebalance that were filled, at their average price."""

    symbol: str
    side: Side
    quantity: int  # filled shares, >= 0
    average_price: float | None  # rupees; None = unknown (the snapshot's price is used)


@dataclass(frozen=True)
class SymbolSince:
    """One position the last rebalance left, measured today."""

    symbol: str
    quantity: int  # shares the rebalance left
    quantity_now: int  # shares held today
    price_then: float  # rupees, the rebalance snapshot's last price
    price_now: float  # rupees
    value_then: float  # rupees: kept shares at price_then + bought shares at their fill price
    value_now: float  # rupees: quantity x price_now

    @property
    def price_change_pct(self) -> float:
        return (self.price_now / self.price_then - 1.0) * 100.0

    @property
    def pnl(self) -> float:
        return self.value_now - self.value_then

    @property
    def pnl_pct(self) -> float:
        return self.pnl / self.value_then * 100.0 if self.value_then > 0 else 0.0

    @property
    def quantity_changed(self) -> bool:
        return self.quantity_now != self.quantity


@dataclass(frozen=True)
class SinceLast:
    """The 13.6 figures of one account since its last completed rebalance."""

    run_id: int | None  # the history run the baseline comes from
    symbols: tuple[SymbolSince, ...]  # sorted by symbol
    skipped: tuple[tuple[str, str], ...]  # (symbol, why) of positions that cannot be measured

    @property
    def winners(self) -> int:
        return sum(1 for s in self.symbols if s.price_change_pct > 0)

    @property
    def losers(self) -> int:
        return sum(1 for s in self.symbols if s.price_change_pct < 0)

    @property
    def winners_pct(self) -> float | None:
        """Share of the measured positions priced above their rebalance price, %."""
        return 100.0 * self.winners / len(self.symbols) if self.symbols else None

    @property
    def losers_pct(self) -> float | None:
        return 100.0 * self.losers / len(self.symbols) if self.symbols else None

    @property
    def pnl(self) -> float:
        return sum(s.pnl for s in self.symbols)

    @property
    def value_then(self) -> float:
        return sum(s.value_then for s in self.symbols)

    @property
    def pnl_pct(self) -> float | None:
        return self.pnl / self.value_then * 100.0 if self.value_then > 0 else None

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the drift record (the ``since_last`` column)."""
        return {
            "run_id": self.run_id,
            "winners": self.winners,
            "losers": self.losers,
            "winners_pct": self.winners_pct,
            "losers_pct": self.losers_pct,
            "pnl": self.pnl,
            "pnl_pct": self.pnl_pct,
            "value_then": self.value_then,
            "symbols": [
                {
                    "symbol": s.symbol,
                    "quantity": s.quantity,
                    "quantity_now": s.quantity_now,
                    "price_then": s.price_then,
                    "price_now": s.price_now,
                    "price_change_pct": s.price_change_pct,
                    "pnl": s.pnl,
                    "pnl_pct": s.pnl_pct,
                    "quantity_changed": s.quantity_changed,
                }
                for s in self.symbols
            ],
            "skipped": [{"symbol": symbol, "why": why} for symbol, why in self.skipped],
        }


def _prices(snapshot: HoldingsSnapshot) -> dict[str, tuple[int, float | None]]:
    """symbol -> (quantity, last price or None when missing / not a positive number)."""
    rows: dict[str, tuple[int, float | None]] = {}
    for row in snapshot.positions.to_dict(orient="records"):
        price = row.get("last_price")
        usable = isinstance(price, int | float) and math.isfinite(price) and price > 0
        rows[str(row["symbol"])] = (int(row["quantity"]), float(price) if usable else None)
    return rows


def since_last_rebalance(
    baseline: HoldingsSnapshot,
    fills: Iterable[Fill],
    today: HoldingsSnapshot,
    *,
    run_id: int | None = None,
) -> SinceLast:
    """The 13.6 figures: ``baseline`` is the snapshot the last completed run planned from,
    ``fills`` that run's filled orders, ``today`` the watch's snapshot of the same account."""
    then = _prices(baseline)
    now = _prices(today)
    bought: dict[str, int] = {}
    sold: dict[str, int] = {}
    bought_value: dict[str, float] = {}
    for fill in fills:
        if fill.quantity <= 0:
            continue
        if fill.side is Side.BUY:
            bought[fill.symbol] = bought.get(fill.symbol, 0) + fill.quantity
            price = fill.average_price or then.get(fill.symbol, (0, None))[1] or 0.0
            bought_value[fill.symbol] = bought_value.get(fill.symbol, 0.0) + fill.quantity * price
        else:
            sold[fill.symbol] = sold.get(fill.symbol, 0) + fill.quantity
    measured: list[SymbolSince] = []
    skipped: list[tuple[str, str]] = []
    for symbol in sorted({*then, *bought}):
        held, price_then = then.get(symbol, (0, None))
        kept = max(0, held - sold.get(symbol, 0))
        quantity = kept + bought.get(symbol, 0)
        if quantity == 0:
            continue  # not a position after the rebalance: nothing to measure
        if price_then is None and bought.get(symbol):
            price_then = bought_value[symbol] / bought[symbol]
        quantity_now, price_now = now.get(symbol, (0, None))
        if price_then is None or price_then <= 0:
            skipped.append((symbol, "no price in the rebalance snapshot"))
            continue
        if price_now is None:
            skipped.append((symbol, "no price today"))
            continue
        measured.append(
            SymbolSince(
                symbol=symbol,
                quantity=quantity,
                quantity_now=quantity_now,
                price_then=price_then,
                price_now=price_now,
                value_then=kept * price_then + bought_value.get(symbol, 0.0),
                value_now=quantity * price_now,
            )
        )
    return SinceLast(run_id, tuple(measured), tuple(skipped))
