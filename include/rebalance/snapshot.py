"""The holdings snapshot of one account at one moment: the planner's input.

A snapshot is small (a row per symbol) and travels between tasks through the history store as
JSON records, never through XCom.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from rebalance.domain.market import Holding, Quote
from rebalance.errors import InputDataError
from rebalance.holdings_file import COLUMNS, REQUIRED_CSV_COLUMNS, check_cash, read_holdings_rows
from rebalance.schemas import HoldingsSnapshotSchema, validate_frame


@dataclass(frozen=True)
class HoldingsSnapshot:
    """Positions (a DataFrame with ``COLUMNS``) plus cash, for one account at ``taken_at``."""

    positions: pd.DataFrame
    cash: float | None
    taken_at: datetime
    account: str = "cli"
    broker: str = "file"

    def to_records(self) -> dict[str, Any]:
        """JSON-able form for the history store."""
        frame = self.positions.astype(object).where(self.positions.notna(), None)
        rows = frame.to_dict(orient="records")
        for row in rows:
            if isinstance(row.get("acquired_on"), date):
                row["acquired_on"] = row["acquired_on"].isoformat()
        return {
            "account": self.account,
            "broker": self.broker,
            "taken_at": self.taken_at.isoformat(),
            "cash": self.cash,
            "positions": rows,
        }

    @classmethod
    def from_records(cls, data: Mapping[str, Any]) -> HoldingsSnapshot:
        frame = _normalise(pd.DataFrame(list(data["positions"]), columns=list(COLUMNS)))
        return cls(
            positions=frame,
            cash=data.get("cash"),
            taken_at=datetime.fromisoformat(data["taken_at"]),
            account=data.get("account", "unknown"),
            broker=data.get("broker", "unknown"),
        )


def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill optional columns with their defaults; keep the column order of ``COLUMNS``."""
    frame = frame.copy()
    if "sellable_quantity" not in frame or frame["sellable_quantity"].isna().all():
        frame["sellable_quantity"] = frame.get("quantity")
    else:
        frame["sellable_quantity"] = frame["sellable_quantity"].fillna(frame["quantity"])
    for column in COLUMNS:
        if column not in frame:
            frame[column] = None
    frame["average_price"] = pd.to_numeric(frame["average_price"], errors="coerce").astype(float)
    frame["previous_close"] = pd.to_numeric(frame["previous_close"], errors="coerce").astype(float)
    frame["acquired_on"] = [
        date.fromisoformat(str(v)) if v is not None and not _isnan(v) and str(v) else None
        for v in frame["acquired_on"]
    ]
    return frame[list(COLUMNS)].reset_index(drop=True)


def _isnan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def snapshot_from_frame(
    frame: pd.DataFrame,
    *,
    source: str,
    cash: float | None,
    taken_at: datetime,
    account: str = "cli",
    broker: str = "file",
    row_offset: int = 0,
) -> HoldingsSnapshot:
    """Validate a holdings table (Pandera) and wrap it. Raises InputDataError naming the rows."""
    missing = [c for c in REQUIRED_CSV_COLUMNS if c not in frame.columns]
    if missing:
        raise InputDataError(source, [f"missing required column(s): {', '.join(missing)}"])
    unknown = sorted(set(frame.columns) - set(COLUMNS))
    if unknown:
        raise InputDataError(source, [f"unknown column(s): {', '.join(unknown)}"])
    for column in ("quantity", "sellable_quantity"):
        if column in frame:
            frame = _whole_shares(frame, column, source, row_offset)
    if "symbol" in frame:
        frame["symbol"] = frame["symbol"].astype(str).str.strip().str.upper()
    if "exchange" in frame:
        frame["exchange"] = frame["exchange"].astype(str).str.strip().str.upper()
    frame = _normalise(frame)
    validate_frame(HoldingsSnapshotSchema, frame, source, row_offset)
    if cash is not None and (not math.isfinite(cash) or cash < 0):
        raise InputDataError(source, [f"cash: must be a number >= 0, got {cash}"])
    return HoldingsSnapshot(frame, cash, taken_at, account, broker)


def _whole_shares(frame: pd.DataFrame, column: str, source: str, row_offset: int) -> pd.DataFrame:
    values = pd.to_numeric(frame[column], errors="coerce")
    problems = []
    for index, (raw, number) in enumerate(zip(frame[column], values, strict=True)):
        if column == "sellable_quantity" and (raw is None or _isnan(raw) or raw == ""):
            continue
        if _isnan(number) or number != int(number):
            problems.append(
                f"row {index + row_offset}, {column}: must be a whole number (got {raw!r})"
            )
    if problems:
        raise InputDataError(source, problems)
    frame = frame.copy()
    frame[column] = values.astype("Int64").astype(object).where(values.notna(), None)
    if column == "quantity":
        frame[column] = values.astype(int)
    return frame


def read_holdings_csv(
    path: Path | str, *, cash: float | None, taken_at: datetime
) -> HoldingsSnapshot:
    """The CLI's holdings file: ``symbol, exchange, quantity, last_price`` required,
    ``average_price, sellable_quantity`` (and ``previous_close, acquired_on, isin``) optional.

    Row numbers in every error are the file's line numbers (the header is row 1), the same
    numbering the Pandera checks use (``row_offset=2``).
    """
    check_cash(cash)
    rows, _ = read_holdings_rows(path)
    return snapshot_from_rows(rows, source=str(path), cash=cash, taken_at=taken_at)


def snapshot_from_rows(
    rows: list[dict[str, Any]], *, source: str, cash: float | None, taken_at: datetime
) -> HoldingsSnapshot:
    """A snapshot from the checked rows of ``holdings_file.read_holdings_rows``."""
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["quantity"] = frame["quantity"].astype(int)
    return snapshot_from_frame(frame, source=source, cash=cash, taken_at=taken_at, row_offset=2)


def check_no_sell_symbols(
    snapshot: HoldingsSnapshot, targets: Iterable[str], no_sell: Iterable[str], source: str
) -> None:
    """A no_sell symbol must be a target or held: one that is neither is a typo that would
    protect nothing (InputDataError naming ``source``, with the closest symbol)."""
    from difflib import get_close_matches

    known = {*targets, *(str(s) for s in snapshot.positions["symbol"])}
    problems = []
    for symbol in sorted(set(no_sell) - known):
        close = get_close_matches(symbol, sorted(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        problems.append(
            f"policy.no_sell: {symbol!r} is neither one of the targets nor held in {source}{hint}"
        )
    if problems:
        raise InputDataError(source, problems)


def raw_snapshot_from_broker(
    holdings: Iterable[Holding],
    quotes: Mapping[str, Quote],
    *,
    cash: float | None,
    taken_at: datetime,
    account: str,
    broker: str,
    target_symbols: Iterable[str] = (),
    exchange: str = "NSE",
) -> HoldingsSnapshot:
    """Join holdings with quotes, unvalidated; target symbols not held appear with quantity 0.

    A target the broker did not quote keeps a missing price, for validation to report.
    """
    rows: dict[str, dict[str, Any]] = {}
    for h in holdings:
        quote = quotes.get(h.symbol)
        rows[h.symbol] = {
            "symbol": h.symbol,
            "exchange": h.exchange,
            "quantity": h.quantity,
            "sellable_quantity": h.sellable_quantity,
            "last_price": quote.last_price if quote else h.last_price,
            "average_price": h.average_price,
            "previous_close": quote.previous_close if quote else None,
            "acquired_on": h.acquired_on.isoformat() if h.acquired_on else None,
            "isin": h.isin,
        }
    for symbol in target_symbols:
        if symbol in rows:
            continue
        quote = quotes.get(symbol)
        rows[symbol] = {
            "symbol": symbol,
            "exchange": quote.exchange if quote else exchange,
            "quantity": 0,
            "sellable_quantity": 0,
            "last_price": quote.last_price if quote else float("nan"),
            "average_price": None,
            "previous_close": quote.previous_close if quote else None,
            "acquired_on": None,
            "isin": None,
        }
    frame = _normalise(pd.DataFrame(list(rows.values()), columns=list(COLUMNS)))
    return HoldingsSnapshot(frame, cash, taken_at, account, broker)
