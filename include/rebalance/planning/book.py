"""The planner's checked view of its inputs: one ``Line`` per symbol, the cash, the value.

Everything the planner decides is computed from a ``Book``; building it is where bad input is
refused, with messages that name the symbol (the row) and the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from rebalance.domain.market import IST
from rebalance.errors import ConfigError, InputDataError
from rebalance.policy import Policy, UnlistedHoldings
from rebalance.snapshot import HoldingsSnapshot

WEIGHT_SUM_TOLERANCE = 1e-4  # targets + cash target must sum to 1 within this (fraction)
SNAPSHOT_SOURCE = "holdings snapshot"


@dataclass(frozen=True)
class Line:
    """One symbol of the portfolio: what is held, its price and its target.

    ``quantity`` and ``sellable`` are whole shares, prices rupees, ``target`` a fraction of value.
    ``listed`` is False for a holding that is not in the targets (sold out: target 0).
    """

    symbol: str
    exchange: str
    price: float
    quantity: int
    sellable: int
    average_price: float | None
    previous_close: float | None
    acquired_on: date | None
    target: float
    listed: bool

    @property
    def value(self) -> float:
        """Market value held, rupees."""
        return self.quantity * self.price

    @property
    def pnl_pct(self) -> float | None:
        """Gain since entry in % (price over average price), None when the average is unknown."""
        if self.average_price is None or self.average_price <= 0:
            return None
        return (self.price / self.average_price - 1.0) * 100.0


@dataclass(frozen=True)
class Book:
    """The portfolio as the planner sees it.

    ``value`` is the holdings of ``lines`` plus ``cash`` (rupees); ``cash`` is what the snapshot
    says is available (0 when unknown); ``cash_target`` is a fraction (0 = fully invested).
    ``ignored`` are holdings outside the targets that the policy leaves alone.
    """

    lines: tuple[Line, ...]
    cash: float
    cash_known: bool
    cash_target: float
    value: float
    today: date
    ignored: tuple[Line, ...]


def build_book(
    snapshot: HoldingsSnapshot,
    targets: Mapping[str, float],
    policy: Policy,
    *,
    cash_target: float | None,
    today: date | None,
) -> Book:
    """Check the inputs and join holdings with targets. Raises InputDataError / ConfigError."""
    _check_targets(targets, cash_target)
    rows = _rows(snapshot)
    missing = [s for s in targets if s not in rows]
    if missing:
        raise InputDataError(
            SNAPSHOT_SOURCE,
            [
                f"{s}: in the targets but not in the holdings (add a row with quantity 0 and its "
                "last_price)"
                for s in missing
            ],
        )
    lines: list[Line] = []
    ignored: list[Line] = []
    for symbol, row in rows.items():
        listed = symbol in targets
        line = _line(row, targets.get(symbol, 0.0), listed)
        if listed or (policy.unlisted_holdings is UnlistedHoldings.SELL and line.quantity > 0):
            lines.append(line)
        elif line.quantity > 0:
            ignored.append(line)
    cash = float(snapshot.cash) if snapshot.cash is not None else 0.0
    if not math.isfinite(cash) or cash < 0:
        raise InputDataError(SNAPSHOT_SOURCE, [f"cash: must be a number >= 0, got {snapshot.cash}"])
    value = math.fsum([*(line.value for line in lines), cash])  # exact: order-independent
    if value <= 0:
        raise InputDataError(SNAPSHOT_SOURCE, ["portfolio value is 0: nothing held and no cash"])
    when = today or snapshot.taken_at.astimezone(IST).date()
    return Book(
        lines=tuple(lines),
        cash=cash,
        cash_known=snapshot.cash is not None,
        cash_target=cash_target or 0.0,
        value=value,
        today=when,
        ignored=tuple(ignored),
    )


def _check_targets(targets: Mapping[str, float], cash_target: float | None) -> None:
    problems = []
    if not targets:
        problems.append("targets: at least one symbol is needed")
    for symbol, weight in targets.items():
        if not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
            problems.append(f"targets.{symbol}: weight must be a fraction >= 0, got {weight!r}")
    if cash_target is not None and not (0 <= cash_target < 1):
        problems.append(f"cash_target: must be a fraction in [0, 1), got {cash_target!r}")
    if not problems:
        total = sum(targets.values()) + (cash_target or 0.0)
        if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
            cash_note = f" + cash {cash_target:.2%}" if cash_target else " (no cash target)"
            problems.append(
                f"targets: weights sum to {sum(targets.values()):.2%}{cash_note} = {total:.2%}, "
                "expected 100%"
            )
    if problems:
        raise ConfigError("targets", problems)


def _rows(snapshot: HoldingsSnapshot) -> dict[str, dict[str, Any]]:
    """The snapshot's rows keyed by symbol, each checked (the snapshot may be built by hand)."""
    rows: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for index, row in enumerate(snapshot.positions.to_dict(orient="records")):
        symbol = str(row.get("symbol"))
        if symbol in rows:
            problems.append(f"row {index}, symbol: duplicate symbol {symbol}")
            continue
        problems.extend(f"row {index} ({symbol}), {p}" for p in _row_problems(row))
        rows[symbol] = row
    if problems:
        raise InputDataError(SNAPSHOT_SOURCE, problems)
    return rows


def _row_problems(row: Mapping[str, Any]) -> list[str]:
    problems = []
    price = _number(row.get("last_price"))
    if price is None or price <= 0:
        problems.append(f"last_price: must be a number > 0, got {row.get('last_price')!r}")
    for field in ("quantity", "sellable_quantity"):
        number = _number(row.get(field))
        if number is None or number < 0 or number != int(number):
            problems.append(f"{field}: must be a whole number >= 0, got {row.get(field)!r}")
    quantity, sellable = _number(row.get("quantity")), _number(row.get("sellable_quantity"))
    if quantity is not None and sellable is not None and sellable > quantity:
        problems.append(f"sellable_quantity: {sellable:g} exceeds quantity {quantity:g}")
    if row.get("exchange") not in ("NSE", "BSE"):
        problems.append(f"exchange: must be NSE or BSE, got {row.get('exchange')!r}")
    return problems


def _number(value: Any) -> float | None:
    """A finite float, or None for missing / NaN / non-numeric."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _line(row: Mapping[str, Any], target: float, listed: bool) -> Line:
    acquired = row.get("acquired_on")
    return Line(
        symbol=str(row["symbol"]),
        exchange=str(row["exchange"]),
        price=float(row["last_price"]),
        quantity=int(row["quantity"]),
        sellable=int(row["sellable_quantity"]),
        average_price=_number(row.get("average_price")),
        previous_close=_number(row.get("previous_close")),
        acquired_on=acquired if isinstance(acquired, date) else None,
        target=float(target),
        listed=listed,
    )
