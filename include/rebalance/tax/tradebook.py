"""Tradebook importers (Zerodha Console, AngelOne) and the replay of trades into lots and sells.

Layouts (sources in docs/tax.md):

* Zerodha Console -> Reports -> Tradebook, equity, CSV: one row per fill,
  ``symbol, isin, trade_date, exchange, segment, series, trade_type, auction, quantity, price,
  trade_id, order_id, order_execution_time`` (``trade_date`` YYYY-MM-DD, ``trade_type``
  buy/sell, quantity written as ``10.000000``). Title-case headers (``Trade Date``) of the
  XLSX export saved as CSV are accepted too.
* AngelOne -> Reports -> Trades History (``Trades_History_<client>.xlsx``, sheet
  ``TradesAndCharges``): a preamble, a ``TradeBook And Charges`` title, then
  ``Scrip/Contract | Buy/Sell | Buy Price | Sell Price | Quantity | Brokerage | GST | STT |
  Sebi Tax | Exchange Turnover Charges | Stamp Duty | Other Charges | IPFT Charges | Order Type |
  Segment | Exchange | Order ID | Trade ID | Date``. Equity rows have Segment ``CAPITAL``; rows
  with quantity 0 and no Trade ID are per-order brokerage lines. Read from the .xlsx (standard
  library only) or from that sheet saved as CSV.

Every error names the file, the row (the CSV line or the spreadsheet row; the header of a plain
CSV is line 1) and the field. Nothing is guessed: a bad row stops the import.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from xml.etree import ElementTree

from rebalance.errors import InputDataError
from rebalance.tax.gains import MissingFmv, Sell, realise
from rebalance.tax.lots import (
    ActionKind,
    CorporateAction,
    Lot,
    LotProblem,
    NotEnoughLots,
    apply_split,
    bonus_lot,
)


class TradeType(StrEnum):
    """Buy or sell, as the tradebooks write it."""

    BUY = "buy"
    SELL = "sell"


@dataclass(frozen=True)
class Trade:
    """One fill from a tradebook (or one of the pipeline's own fills)."""

    account: str
    symbol: str
    trade_type: TradeType
    traded_on: dt.date
    quantity: int
    price: float
    trade_id: str = ""
    isin: str = ""
    source: str = ""


ZERODHA_COLUMNS = (
    "symbol",
    "isin",
    "trade_date",
    "exchange",
    "segment",
    "series",
    "trade_type",
    "auction",
    "quantity",
    "price",
    "trade_id",
    "order_id",
    "order_execution_time",
)
ZERODHA_REQUIRED = ("symbol", "trade_date", "segment", "trade_type", "quantity", "price")

ANGELONE_HEADER_MARK = "scrip/contract"
ANGELONE_SHEET = "TradesAndCharges"
ANGELONE_REQUIRED = (
    "scrip/contract",
    "buy/sell",
    "buy price",
    "sell price",
    "quantity",
    "segment",
    "trade id",
    "date",
)


@dataclass
class ImportResult:
    """Trades read from one file, and rows deliberately left out (with why)."""

    trades: list[Trade] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class _Problems:
    """Collects every bad field of a file, then raises one InputDataError listing them all."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, row: int, column: str, message: str) -> None:
        self.items.append(f"line {row}, field {column}: {message}")

    def raise_if_any(self) -> None:
        if self.items:
            raise InputDataError(str(self.path), self.items)


def _norm(name: object) -> str:
    return re.sub(r"\s+", " ", str(name or "").strip().lower())


def _number(raw: str, row: int, column: str, problems: _Problems) -> float | None:
    """A number as written in a tradebook (thousands separators allowed), or None, said."""
    try:
        return float(raw.strip().replace(",", ""))
    except ValueError:
        problems.add(row, column, f"not a number: {raw!r}")
        return None


def _quantity(raw: str, row: int, column: str, problems: _Problems) -> int | None:
    value = _number(raw, row, column, problems)
    if value is None:
        return None
    if value != int(value) or value < 0:
        problems.add(row, column, f"not a whole number of shares: {raw!r}")
        return None
    return int(value)


def _price(raw: str, row: int, column: str, problems: _Problems) -> float | None:
    value = _number(raw, row, column, problems)
    if value is None:
        return None
    if not value > 0:
        problems.add(row, column, f"must be a positive price, got {raw!r}")
        return None
    return value


def _date(raw: object, row: int, column: str, problems: _Problems) -> dt.date | None:
    """YYYY-MM-DD (optionally with a time), DD-MM-YYYY, or an Excel date serial number."""
    if isinstance(raw, float):
        if 1 <= raw < 2_958_466:
            return dt.date(1899, 12, 30) + dt.timedelta(days=int(raw))
        problems.add(row, column, f"not a date: {raw!r}")
        return None
    text = str(raw).strip()
    iso = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})(?:[T ][\d:.]+)?", text)
    dmy = re.fullmatch(r"(\d{2})-(\d{2})-(\d{4})(?: [\d:.]+)?", text)
    try:
        if iso:
            return dt.date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
        if dmy:
            return dt.date(int(dmy.group(3)), int(dmy.group(2)), int(dmy.group(1)))
    except ValueError:
        pass
    hint = " (day/month order is ambiguous with '/': use YYYY-MM-DD)" if "/" in text else ""
    problems.add(row, column, f"not a date in the form YYYY-MM-DD: {text!r}{hint}")
    return None


def read_zerodha_tradebook(path: Path, account: str) -> ImportResult:
    """Trades of a Zerodha Console equity tradebook CSV. Raises InputDataError listing every bad
    row and field; rows of other segments are skipped with a note."""
    problems = _Problems(path)
    result = ImportResult()
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise InputDataError(str(path), ["line 1: the file is empty (expected a header)"])
        columns = [_norm(h).replace(" ", "_") for h in header]
        missing = [c for c in ZERODHA_REQUIRED if c not in columns]
        if missing:
            raise InputDataError(
                str(path),
                [
                    f"line 1: missing column(s) {', '.join(missing)} (a Zerodha Console "
                    f"tradebook has {', '.join(ZERODHA_COLUMNS)})"
                ],
            )
        index = {c: columns.index(c) for c in columns}
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) < len(columns):
                problems.add(line, columns[len(cells)], "missing (the row is short)")
                continue

            def cell(name: str, cells: list[str] = cells) -> str:
                return cells[index[name]].strip() if name in index else ""

            symbol = cell("symbol").upper()
            if not symbol:
                problems.add(line, "symbol", "empty")
            segment = cell("segment").upper()
            if segment and segment != "EQ":
                result.skipped.append(f"{path}: line {line}: segment {segment} is not equity")
                continue
            kind = cell("trade_type").lower()
            if kind not in ("buy", "sell"):
                problems.add(line, "trade_type", f"expected buy or sell, got {kind!r}")
            traded_on = _date(cell("trade_date"), line, "trade_date", problems)
            quantity = _quantity(cell("quantity"), line, "quantity", problems)
            if quantity == 0:
                problems.add(line, "quantity", "zero shares")
            price = _price(cell("price"), line, "price", problems)
            if problems.items or traded_on is None or quantity is None or price is None:
                continue
            result.trades.append(
                Trade(
                    account=account,
                    symbol=symbol,
                    trade_type=TradeType(kind),
                    traded_on=traded_on,
                    quantity=quantity,
                    price=price,
                    trade_id=cell("trade_id"),
                    isin=cell("isin"),
                    source=f"{path.name}:{line}",
                )
            )
    problems.raise_if_any()
    return result


_NS = {
    "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "p": "http://schemas.openxmlformats.org/package/2006/relationships",
}


def _column_index(ref: str) -> int:
    letters = re.match(r"[A-Z]+", ref)
    index = 0
    for char in letters.group(0) if letters else "A":
        index = index * 26 + (ord(char) - 64)
    return index - 1


def read_xlsx_rows(path: Path, sheet: str | None = None) -> Iterator[tuple[int, list[object]]]:
    """(row number, cells) of one sheet of an .xlsx, read with the standard library.

    Cells are str (text) or float (numbers, Excel dates as serials). ``sheet`` by name, or the
    first sheet. Raises InputDataError for a file that is not a readable workbook.
    """
    try:
        with zipfile.ZipFile(path) as book:
            names = set(book.namelist())
            shared: list[str] = []
            if "xl/sharedStrings.xml" in names:
                root = ElementTree.fromstring(book.read("xl/sharedStrings.xml"))
                for item in root.findall("m:si", _NS):
                    shared.append("".join(t.text or "" for t in item.iter(f"{{{_NS['m']}}}t")))
            workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
            rels = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
            targets = {
                r.get("Id"): r.get("Target", "") for r in rels.findall("p:Relationship", _NS)
            }
            sheets = [
                (s.get("name"), targets.get(s.get(f"{{{_NS['r']}}}id")))
                for s in workbook.iter(f"{{{_NS['m']}}}sheet")
            ]
            chosen = next((t for n, t in sheets if n == sheet), None) if sheet else None
            chosen = chosen or (sheets[0][1] if sheets else None)
            if not chosen:
                raise InputDataError(str(path), ["the workbook has no sheets"])
            member = chosen.lstrip("/")
            member = member if member.startswith("xl/") else f"xl/{member}"
            data = ElementTree.fromstring(book.read(member))
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError) as exc:
        raise InputDataError(str(path), [f"not a readable .xlsx workbook ({exc})"]) from None
    for row in data.iter(f"{{{_NS['m']}}}row"):
        number = int(row.get("r", "0"))
        cells: list[object] = []
        for c in row.findall("m:c", _NS):
            position = _column_index(c.get("r", "A"))
            while len(cells) < position:
                cells.append("")
            kind = c.get("t", "n")
            value = c.find("m:v", _NS)
            if kind == "s" and value is not None:
                cells.append(shared[int(value.text or 0)])
            elif kind == "inlineStr":
                cells.append("".join(t.text or "" for t in c.iter(f"{{{_NS['m']}}}t")))
            elif kind in ("str", "b", "e"):
                cells.append(value.text or "" if value is not None else "")
            else:
                cells.append(float(value.text) if value is not None and value.text else "")
        yield number, cells


def _csv_rows(path: Path) -> Iterator[tuple[int, list[object]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        for cells in reader:
            yield reader.line_num, list(cells)


def _csv_records(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row) of a CSV with a header: names normalised (``_norm``), values stripped, blank
    rows skipped. InputDataError names the required columns the header lacks."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = [_norm(f) for f in reader.fieldnames or []]
        missing = [c for c in required if c not in fields]
        if missing:
            raise InputDataError(str(path), [f"line 1: missing column(s) {', '.join(missing)}"])
        for raw in reader:
            row = {_norm(k): (v or "").strip() for k, v in raw.items() if k is not None}
            if any(row.values()):
                yield reader.line_num, row


def read_angelone_tradebook(
    path: Path, account: str, symbol_map: Mapping[str, str] | None = None
) -> ImportResult:
    """Trades of an AngelOne Trades History report (.xlsx, or its TradesAndCharges sheet as CSV).

    ``symbol_map`` maps the report's ``Scrip/Contract`` text to the trading symbol the broker's
    holdings use; without an entry the text is used as it is (a mismatch then shows up when the
    lots are checked against the broker). Raises InputDataError naming row and field.
    """
    problems = _Problems(path)
    result = ImportResult()
    rows = (
        read_xlsx_rows(path, ANGELONE_SHEET) if path.suffix.lower() == ".xlsx" else _csv_rows(path)
    )
    header: list[str] | None = None
    for number, cells in rows:
        if header is None:
            if cells and _norm(cells[0]) == ANGELONE_HEADER_MARK:
                header = [_norm(c) for c in cells]
                missing = [c for c in ANGELONE_REQUIRED if c not in header]
                if missing:
                    raise InputDataError(
                        str(path), [f"line {number}: missing column(s) {', '.join(missing)}"]
                    )
            continue
        if not cells or not str(cells[0]).strip():
            continue
        if str(cells[0]).strip().upper().startswith("NOTE"):
            break

        def cell(name: str, row: list[object] = cells, names: list[str] = header) -> object:
            position = names.index(name)
            return row[position] if position < len(row) else ""

        def text(name: str, row: list[object] = cells, names: list[str] = header) -> str:
            value = cell(name, row, names)
            if isinstance(value, float) and value == int(value):
                return str(int(value))
            return str(value).strip()

        segment = text("segment").upper()
        quantity_text = text("quantity")
        if quantity_text in ("0", "0.0") and not text("trade id"):
            continue  # a per-order brokerage line, not a fill
        if segment != "CAPITAL":
            result.skipped.append(f"{path}: line {number}: segment {segment} is not equity")
            continue
        kind = text("buy/sell").lower()
        if kind not in ("buy", "sell"):
            problems.add(number, "Buy/Sell", f"expected Buy or Sell, got {kind!r}")
            continue
        price_column = "buy price" if kind == "buy" else "sell price"
        price = _price(text(price_column), number, price_column.title(), problems)
        quantity = _quantity(quantity_text, number, "Quantity", problems)
        traded_on = _date(cell("date"), number, "Date", problems)
        scrip = text("scrip/contract")
        if quantity == 0:
            problems.add(number, "Quantity", "zero shares on a trade row")
        if problems.items or price is None or quantity is None or traded_on is None:
            continue
        result.trades.append(
            Trade(
                account=account,
                symbol=(symbol_map or {}).get(scrip, scrip).upper(),
                trade_type=TradeType(kind),
                traded_on=traded_on,
                quantity=quantity,
                price=price,
                trade_id=text("trade id"),
                source=f"{path.name}:{number}",
            )
        )
    if header is None:
        raise InputDataError(
            str(path),
            [
                "no header row starting with 'Scrip/Contract' (is this AngelOne's Trades History "
                f"report, sheet {ANGELONE_SHEET}?)"
            ],
        )
    problems.raise_if_any()
    return result


def detect_broker(path: Path) -> str:
    """``zerodha`` or ``angelone`` from the file's content (never its name)."""
    if path.suffix.lower() == ".xlsx":
        return "angelone"
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            lowered = line.strip().lower()
            if number == 1 and "trade_type" in lowered.replace(" ", "_"):
                return "zerodha"
            if lowered.startswith(("scrip/contract", '"scrip/contract')):
                return "angelone"
            if number > 100:
                break
    raise InputDataError(
        str(path),
        [
            "line 1: not a Zerodha Console tradebook (header with trade_type) nor an AngelOne "
            "Trades History report (a 'Scrip/Contract' header row); pass --broker"
        ],
    )


def read_tradebook(
    path: Path,
    account: str,
    broker: str | None = None,
    symbol_map: Mapping[str, str] | None = None,
) -> ImportResult:
    """Trades of a tradebook of ``broker`` (``zerodha`` | ``angelone``; detected when None)."""
    if not path.is_file():
        raise InputDataError(str(path), ["no such file"])
    broker = broker or detect_broker(path)
    if broker == "zerodha":
        return read_zerodha_tradebook(path, account)
    if broker == "angelone":
        return read_angelone_tradebook(path, account, symbol_map)
    raise InputDataError("--broker", [f"expected zerodha or angelone, got {broker!r}"])


@dataclass
class Ledger:
    """Lots left and sells made per (account, symbol) after replaying trades and actions.

    ``problems`` names each (account, symbol) whose lots cannot be trusted, with why: such a
    symbol has no tax data (its sells after the problem are not in ``sells``).
    """

    lots: dict[tuple[str, str], list[Lot]] = field(default_factory=dict)
    sells: list[Sell] = field(default_factory=list)
    problems: dict[tuple[str, str], str] = field(default_factory=dict)
    intraday: list[tuple[dt.date, str]] = field(default_factory=list)

    def all_lots(self) -> list[Lot]:
        return [lot for key in sorted(self.lots) for lot in self.lots[key]]

    def lots_of(self, account: str, symbol: str) -> list[Lot]:
        return list(self.lots.get((account, symbol), []))


def _vwap(trades: Sequence[Trade]) -> float:
    return sum(t.quantity * t.price for t in trades) / sum(t.quantity for t in trades)


def replay(
    trades: Iterable[Trade],
    actions: Iterable[CorporateAction] = (),
    fmv_2018: Mapping[str, float] | None = None,
) -> Ledger:
    """Replay ``trades`` and corporate ``actions`` in date order into lots and FIFO sells.

    Buys and sells of one symbol in one account on one day are netted first: the netted
    quantity is intraday (speculative income, not modelled here) and only the rest is a
    delivery buy (a lot at the day's average buy price) or a delivery sell (at the day's average
    sell price). Actions apply before the trades of their day.
    """
    fmv_2018 = fmv_2018 or {}
    ledger = Ledger()
    days: dict[dt.date, dict[tuple[str, str], list[Trade]]] = {}
    for trade in trades:
        days.setdefault(trade.traded_on, {}).setdefault((trade.account, trade.symbol), [])
        days[trade.traded_on][(trade.account, trade.symbol)].append(trade)
    by_date: dict[dt.date, list[CorporateAction]] = {}
    for action in actions:
        by_date.setdefault(action.on, []).append(action)
    for day in sorted(set(days) | set(by_date)):
        for action in by_date.get(day, []):
            _apply_action(ledger, action)
        for (account, symbol), group in sorted(days.get(day, {}).items()):
            _apply_day(ledger, account, symbol, day, group, fmv_2018.get(symbol))
    return ledger


def _apply_action(ledger: Ledger, action: CorporateAction) -> None:
    accounts = sorted(
        {a for a, s in ledger.lots if s == action.symbol}
        if action.account is None
        else {action.account}
    )
    for account in accounts:
        key = (account, action.symbol)
        if key in ledger.problems:
            continue
        lots = ledger.lots.get(key, [])
        try:
            if action.kind is ActionKind.SPLIT:
                ledger.lots[key] = apply_split(lots, action)
            else:
                credited = bonus_lot(lots, action, account)
                if credited is not None:
                    ledger.lots[key] = [*lots, credited]
        except LotProblem as exc:
            ledger.problems[key] = str(exc)


def _apply_day(
    ledger: Ledger,
    account: str,
    symbol: str,
    day: dt.date,
    group: list[Trade],
    fmv: float | None,
) -> None:
    key = (account, symbol)
    if key in ledger.problems:
        return
    buys = [t for t in group if t.trade_type is TradeType.BUY]
    sells = [t for t in group if t.trade_type is TradeType.SELL]
    bought = sum(t.quantity for t in buys)
    sold = sum(t.quantity for t in sells)
    netted = min(bought, sold)
    if netted:
        ledger.intraday.append(
            (
                day,
                f"{symbol} ({account}): {netted} shares bought and sold on {day.isoformat()} "
                "netted as intraday (speculative income, not modelled)",
            )
        )
    sources = ", ".join(t.source for t in group if t.source)
    if bought > sold:
        lot = Lot(account, symbol, day, bought - sold, _vwap(buys), sources)
        ledger.lots.setdefault(key, []).append(lot)
    elif sold > bought:
        try:
            sell, left = realise(
                ledger.lots.get(key, []),
                sold - bought,
                _vwap(sells),
                day,
                fmv_2018=fmv,
                source=sources,
            )
        except NotEnoughLots:
            held = sum(lot.quantity for lot in ledger.lots.get(key, []))
            ledger.problems[key] = (
                f"{symbol}: a sell of {sold - bought} shares on {day.isoformat()} ({sources}) "
                f"but the trades before it leave only {held} in account {account} (the tradebook "
                "probably starts after the first purchase, or shares came in by transfer); "
                f"{symbol} has no tax data"
            )
            ledger.lots.pop(key, None)
            return
        except MissingFmv as exc:
            ledger.problems[key] = f"{exc}; {symbol} has no tax data"
            ledger.lots.pop(key, None)
            return
        ledger.sells.append(sell)
        ledger.lots[key] = left


def read_corporate_actions(path: Path) -> list[CorporateAction]:
    """Splits and bonuses from a CSV: ``symbol, action, date, new, old[, quantity, account]``.

    ``action`` is split or bonus; ``date`` the split's ex-date or the bonus allotment date
    (YYYY-MM-DD); ``new``/``old`` the ratio (a 1:5 split of a ₹10 share into ₹2 shares is
    new=5, old=1; a 1:1 bonus is new=1, old=1). Raises InputDataError naming line and field.
    """
    problems = _Problems(path)
    actions: list[CorporateAction] = []
    required = ("symbol", "action", "date", "new", "old")
    for line, row in _csv_records(path, required):
        kind = row["action"].lower()
        if kind not in ("split", "bonus"):
            problems.add(line, "action", f"expected split or bonus, got {kind!r}")
        on = _date(row["date"], line, "date", problems)
        new = _quantity(row["new"], line, "new", problems)
        old = _quantity(row["old"], line, "old", problems)
        quantity = (
            _quantity(row["quantity"], line, "quantity", problems) if row.get("quantity") else None
        )
        if not row["symbol"]:
            problems.add(line, "symbol", "empty")
        if not new or not old:
            if new == 0 or old == 0:
                problems.add(line, "new" if new == 0 else "old", "must be positive")
            continue
        if problems.items or on is None or kind not in ("split", "bonus"):
            continue
        actions.append(
            CorporateAction(
                symbol=row["symbol"].upper(),
                kind=ActionKind(kind),
                on=on,
                new=new,
                old=old,
                account=row.get("account") or None,
                quantity=quantity or None,
                source=f"{path.name}:{line}",
            )
        )
    problems.raise_if_any()
    return actions


def read_symbol_values(path: Path, value_column: str, *, integer: bool = False) -> dict[str, float]:
    """``symbol -> value`` from a CSV with columns ``symbol`` and ``value_column`` (the FMV of
    31 January 2018, or a holdings quantity). Raises InputDataError naming line and field."""
    problems = _Problems(path)
    values: dict[str, float] = {}
    for line, row in _csv_records(path, ("symbol", value_column)):
        symbol = row["symbol"].upper()
        if not symbol:
            problems.add(line, "symbol", "empty")
            continue
        if symbol in values:
            problems.add(line, "symbol", f"{symbol} appears twice")
            continue
        parsed = (
            _quantity(row[value_column], line, value_column, problems)
            if integer
            else _price(row[value_column], line, value_column, problems)
        )
        if parsed is not None:
            values[symbol] = float(parsed)
    problems.raise_if_any()
    return values


def read_symbol_map(path: Path) -> dict[str, str]:
    """``Scrip/Contract`` text -> trading symbol, from a CSV with columns ``scrip, symbol``."""
    problems = _Problems(path)
    mapping: dict[str, str] = {}
    for line, row in _csv_records(path, ("scrip", "symbol")):
        for column in ("scrip", "symbol"):
            if not row[column]:
                problems.add(line, column, "empty")
        if row["scrip"] and row["symbol"]:
            mapping[row["scrip"]] = row["symbol"].upper()
    problems.raise_if_any()
    return mapping
