"""The holdings CSV file a person writes for ``rebalance plan`` (and the paper broker's file).

Read with the standard library only (no pandas), so bad input is refused before anything heavy
is imported. Every problem names the file, the row and the field; the row is the file's line
number (the header is row 1), the numbering every holdings message uses.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import stat
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rebalance.errors import InputDataError

REQUIRED_CSV_COLUMNS = ("symbol", "exchange", "quantity", "last_price")
COLUMNS = (
    "symbol",
    "exchange",
    "quantity",
    "sellable_quantity",
    "last_price",
    "average_price",
    "previous_close",
    "acquired_on",
    "isin",
)


_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9&_.\-]{0,29}$")  # as the Pandera schema's symbol check
# Sane bounds for a holdings file (rupees, shares); docs/planner.md "Bounds" says why each holds.
MAX_PRICE_INR = 10_000_000.0  # ₹1 crore a share: 30x the dearest Indian share ever (~₹3.3 lakh)
MIN_PRICE_INR = 0.01  # the exchange's smallest tick
MAX_QUANTITY = 1_000_000_000  # 100 crore shares of one symbol in one account
MAX_POSITION_VALUE_INR = 1e12  # ₹1 lakh crore in one position
MAX_CASH_INR = 1e12  # ₹1 lakh crore of cash
MAX_HOLDINGS_FILE_BYTES = 2 * 1024 * 1024  # ~20,000 rows; NSE lists about 2,500 equities
_EARLIEST_DATE = date(1990, 1, 1)  # before NSE (1994) and dematerialisation: a typo
_WHOLE_NUMBER = re.compile(r"^[+-]?\d{1,19}(\.0*)?$")
_DECIMAL = re.compile(r"^[+-]?(\d{1,12}(\.\d*)?|\.\d+)$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISIN = re.compile(r"^[A-Z]{2}[A-Z0-9]{9}[0-9]$")


def check_cash(cash: float | None, source: str = "--cash") -> None:
    """Cash is a finite number of rupees in ``[0, MAX_CASH_INR]`` (or unknown: None)."""
    if cash is None:
        return
    if isinstance(cash, bool) or not isinstance(cash, int | float) or not math.isfinite(cash):
        raise InputDataError(source, [f"cash: must be a number of rupees, got {cash!r}"])
    if not 0 <= cash <= MAX_CASH_INR:
        raise InputDataError(
            source, [f"cash: must be between 0 and {MAX_CASH_INR:,.0f} rupees, got {cash:g}"]
        )


def read_holdings_rows(path: Path | str) -> tuple[list[dict[str, Any]], list[int]]:
    """Read and check a holdings CSV: its rows (dicts of ``COLUMNS``, typed) and line numbers.

    Every problem names the file, the row (the file's line number: the header is row 1) and the
    field, and all problems of the file are reported at once. Checks: a regular file of at most
    ``MAX_HOLDINGS_FILE_BYTES``; UTF-8 (a BOM is allowed), no NUL bytes; CRLF or LF lines; a
    header with the required columns, no unknown or repeated column; per row the right number of
    fields, a valid symbol once per file, NSE/BSE, whole share counts and prices within the bounds
    above (no ``inf``, ``nan`` or exponent tricks), ISO dates that exist and are not in the future.
    """
    source = str(path)
    data = _read_bounded(Path(path), source)
    text = _decode(data, source)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    problems: list[str] = []
    header: list[str] | None = None
    header_line = 1
    records: list[tuple[int, list[str]]] = []
    end_of_previous = 0
    try:
        for fields in reader:
            first_line, end_of_previous = end_of_previous + 1, reader.line_num
            if not fields or all(not f.strip() for f in fields):
                continue  # a blank line (keeps the line numbering)
            if first_line != reader.line_num:
                problems.append(f"row {first_line}: a quoted field spans several lines")
                continue
            if header is None:
                header, header_line = [f.strip() for f in fields], first_line
            else:
                records.append((first_line, fields))
    except csv.Error as exc:
        problems.append(f"row {reader.line_num}: cannot read CSV ({exc})")
    if header is None:
        raise InputDataError(
            source, [*problems, f"row 1: no header line (expected {', '.join(COLUMNS[:5])} ...)"]
        )
    _check_header(header, header_line, problems)
    if problems:
        raise InputDataError(source, problems)
    if not records:
        raise InputDataError(
            source,
            [
                f"row {header_line + 1}: no holdings rows after the header (a target not held "
                "needs a row with quantity 0 and its last_price)"
            ],
        )
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    seen: dict[str, int] = {}
    for line, fields in records:
        if len(fields) != len(header):
            problems.append(f"row {line}: {len(fields)} fields, the header has {len(header)}")
            continue
        row, row_problems = _parse_row(dict(zip(header, fields, strict=True)), line)
        problems += row_problems
        symbol = row.get("symbol")
        if isinstance(symbol, str):
            if symbol in seen:
                problems.append(
                    f"row {line} ({symbol}), symbol: {symbol} is already on line {seen[symbol]}"
                )
            else:
                seen[symbol] = line
        rows.append(row)
        lines.append(line)
    if problems:
        raise InputDataError(source, problems)
    return rows, lines


def _read_bounded(path: Path, source: str) -> bytes:
    """The file's bytes: only a regular file, never more than the size cap, never blocking."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise InputDataError(source, [f"cannot read the file: {exc.strerror}"]) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise InputDataError(source, ["not a regular file (a directory, pipe or device)"])
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > MAX_HOLDINGS_FILE_BYTES:
            raise InputDataError(
                source,
                [
                    f"the file is {info.st_size / 1e6:.1f} MB; a holdings file is at most "
                    f"{MAX_HOLDINGS_FILE_BYTES // (1024 * 1024)} MiB (about 20,000 rows)"
                ],
            )
        data = handle.read(MAX_HOLDINGS_FILE_BYTES + 1)
    if len(data) > MAX_HOLDINGS_FILE_BYTES:
        raise InputDataError(source, ["the file grew past the size cap while being read"])
    return data


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _decode(data: bytes, source: str) -> str:
    """UTF-8 text (a leading BOM dropped); a NUL or a bad byte is reported with its line."""
    if (nul := data.find(b"\x00")) >= 0:
        raise InputDataError(
            source, [f"row {_line_of(data, nul)}: binary data (a NUL byte): not a CSV text file"]
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = _line_of(data, exc.start)
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InputDataError(
            source,
            [
                f"row {line}, byte {column}: not UTF-8 (byte 0x{data[exc.start]:02x}); save the "
                "file as UTF-8"
            ],
        ) from None


def _check_header(header: list[str], line: int, problems: list[str]) -> None:
    missing = [c for c in REQUIRED_CSV_COLUMNS if c not in header]
    if missing:
        problems.append(f"row {line}: missing required column(s): {', '.join(missing)}")
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        problems.append(
            f"row {line}: unknown column(s): {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(COLUMNS)})"
        )
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        problems.append(f"row {line}: column(s) given twice: {', '.join(repeated)}")


def _parse_row(raw: Mapping[str, str], line: int) -> tuple[dict[str, Any], list[str]]:
    """One CSV row to typed values, with every problem as ``line N (SYMBOL), field: ...``."""
    problems: list[str] = []
    cells = {k: v.strip() for k, v in raw.items()}
    symbol = cells.get("symbol", "").upper()
    where = f"row {line} ({symbol})" if symbol else f"row {line}"

    def bad(field: str, message: str) -> None:
        problems.append(f"{where}, {field}: {message}")

    if not _SYMBOL.match(symbol):
        bad("symbol", f"{cells.get('symbol', '')!r} is not a symbol (e.g. INFY, M&M, BAJAJ-AUTO)")
    exchange = cells.get("exchange", "").upper()
    if exchange not in ("NSE", "BSE"):
        bad("exchange", f"must be NSE or BSE, got {cells.get('exchange', '')!r}")
    quantity = _shares(cells.get("quantity", ""), "quantity", bad, required=True)
    sellable = _shares(cells.get("sellable_quantity", ""), "sellable_quantity", bad, required=False)
    if quantity is not None and sellable is not None and sellable > quantity:
        bad("sellable_quantity", f"{sellable} exceeds quantity {quantity}")
    price = _price(cells.get("last_price", ""), "last_price", bad, required=True)
    if quantity is not None and price is not None and quantity * price > MAX_POSITION_VALUE_INR:
        bad(
            "quantity",
            f"{quantity} x last_price {price:g} = ₹{quantity * price:,.0f}, above the "
            f"₹{MAX_POSITION_VALUE_INR:,.0f} a position may be worth",
        )
    average = _price(
        cells.get("average_price", ""), "average_price", bad, required=False, zero=True
    )
    previous = _price(cells.get("previous_close", ""), "previous_close", bad, required=False)
    acquired = _date(cells.get("acquired_on", ""), "acquired_on", bad)
    isin = cells.get("isin", "").upper() or None
    if isin is not None and not _ISIN.match(isin):
        bad("isin", f"{isin!r} is not an ISIN (12 characters, e.g. INE009A01021)")
    row = {
        "symbol": symbol if _SYMBOL.match(symbol) else None,
        "exchange": exchange,
        "quantity": quantity,
        "sellable_quantity": quantity if sellable is None else sellable,
        "last_price": price,
        "average_price": average,
        "previous_close": previous,
        "acquired_on": acquired,
        "isin": isin,
    }
    return row, problems


def _shares(text: str, field: str, bad: Any, *, required: bool) -> int | None:
    if not text:
        if required:
            bad(field, "is empty (a whole number of shares)")
        return None
    if not _WHOLE_NUMBER.match(text):
        shown = text if len(text) <= 30 else text[:27] + "..."
        bad(field, f"must be a whole number of shares, got {shown!r}")
        return None
    value = int(text.split(".")[0])
    if value < 0:
        bad(field, f"must be >= 0, got {value}")
        return None
    if value > MAX_QUANTITY:
        bad(field, f"{value} is above the {MAX_QUANTITY:,} shares a holding may have")
        return None
    return value


def _price(text: str, field: str, bad: Any, *, required: bool, zero: bool = False) -> float | None:
    if not text:
        if required:
            bad(field, "is empty (a price in rupees)")
        return None
    if not _DECIMAL.match(text):
        shown = text if len(text) <= 30 else text[:27] + "..."
        bad(field, f"must be a price in rupees like 1890.15, got {shown!r}")
        return None
    value = float(text)
    if value == 0 and zero:
        return value
    if not MIN_PRICE_INR <= value <= MAX_PRICE_INR:
        bad(field, f"must be between {MIN_PRICE_INR} and {MAX_PRICE_INR:,.0f} rupees, got {text}")
        return None
    return value


def _date(text: str, field: str, bad: Any) -> date | None:
    if not text:
        return None
    try:
        if not _ISO_DATE.match(text):
            raise ValueError
        value = date.fromisoformat(text)
    except ValueError:
        bad(field, f"{text!r} is not a date (YYYY-MM-DD, e.g. 2024-03-15)")
        return None
    if not _EARLIEST_DATE <= value <= date.today() + timedelta(days=1):
        bad(field, f"{value} is not a plausible acquisition date (in the future or before 1990)")
        return None
    return value
