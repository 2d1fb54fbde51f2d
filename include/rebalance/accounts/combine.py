"""One snapshot across several accounts: the combined mode's planner input.

Each account's holdings are joined into one row per security: by ISIN where the broker gives
one, else by symbol. The combined row's quantity is the sum of the accounts' quantities and its
sellable quantity the sum of what each account may sell today (``Holding.sellable_today``: the
sellable quantity, capped by the depository authorisation where there is one). The combined cash
is the sum of the accounts' cash. What each account holds, may sell and may spend stays in its
``AccountAvailability``: the allocation (``allocate.py``) treats those as hard limits.

Nothing here guesses: a symbol with two ISINs, or two target symbols with one ISIN, is refused
with the accounts named.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd

from rebalance.domain.market import Holding, Quote
from rebalance.errors import InputDataError
from rebalance.holdings_file import COLUMNS
from rebalance.snapshot import HoldingsSnapshot

SOURCE = "combined accounts"
COMBINED_BROKER = "combined"
PRICE_SPREAD_NOTE = 0.005  # accounts' last prices further apart than 0.5% get a note


@dataclass(frozen=True)
class AccountHoldings:
    """What one account reported: its holdings and the cash it may spend on delivery buys.

    ``cash`` in rupees; None when the account's cash is not known (then it funds no buy).
    """

    account: str
    broker: str  # zerodha | angelone | paper: picks the charges table
    holdings: tuple[Holding, ...]
    cash: float | None


@dataclass(frozen=True)
class AccountAvailability:
    """One account's hard limits in the combined mode, keyed by the combined symbol.

    ``quantity`` and ``sellable`` are whole shares (``sellable`` is what may be sold today);
    ``cash`` rupees (0 when unknown, ``cash_known`` False); ``symbols`` maps a combined symbol
    to the account's own symbol for it (they differ when the ISIN joined two spellings).
    """

    account: str
    broker: str
    cash: float
    cash_known: bool
    quantity: Mapping[str, int] = field(default_factory=dict)
    sellable: Mapping[str, int] = field(default_factory=dict)
    symbols: Mapping[str, str] = field(default_factory=dict)

    def own_symbol(self, symbol: str) -> str:
        """The account's symbol for combined ``symbol`` (the same when not remapped)."""
        return self.symbols.get(symbol, symbol)


@dataclass(frozen=True)
class CombinedSnapshot:
    """The whole (``snapshot``: one row per security, planned as one portfolio), each account's
    limits (``accounts``), each account's own snapshot on the combined symbols (``per_account``:
    what the separate mode plans on) and notes a person may want to read."""

    snapshot: HoldingsSnapshot
    accounts: tuple[AccountAvailability, ...]
    per_account: Mapping[str, HoldingsSnapshot]
    notes: tuple[str, ...] = ()

    def account(self, name: str) -> AccountAvailability:
        for found in self.accounts:
            if found.account == name:
                return found
        raise KeyError(f"no account {name!r}; known: {[a.account for a in self.accounts]}")


@dataclass
class _Group:
    """One security across the accounts while the snapshot is built."""

    isin: str | None
    symbols: set[str] = field(default_factory=set)
    parts: list[tuple[int, Holding]] = field(default_factory=list)  # (account index, holding)


def combine_accounts(
    accounts: Sequence[AccountHoldings],
    *,
    taken_at: datetime,
    quotes: Mapping[str, Quote] | None = None,
    target_symbols: Iterable[str] = (),
) -> CombinedSnapshot:
    """Join ``accounts`` into one snapshot. Prices: ``quotes`` (keyed by combined symbol) when
    given, else the first account's last price, in the order of ``accounts``. Target symbols held
    nowhere appear with quantity 0 (a missing price stays NaN, for the planner to refuse).

    Raises InputDataError for two accounts with one name, a symbol with two ISINs, two target
    symbols sharing an ISIN, a negative or non-finite cash figure.
    """
    quotes = dict(quotes or {})
    targets = list(dict.fromkeys(target_symbols))
    _check_accounts(accounts)
    groups = _group(accounts, set(targets))
    combined_rows: list[dict[str, Any]] = []
    per_account_rows: list[list[dict[str, Any]]] = [[] for _ in accounts]
    availability = [_Availability() for _ in accounts]
    notes: list[str] = []
    for symbol, group in groups.items():
        price, note = _price(symbol, group, quotes)
        if note:
            notes.append(note)
        combined_rows.append(_combined_row(symbol, group, price, quotes))
        for index, holding in group.parts:
            per_account_rows[index].append(_account_row(symbol, holding, price, quotes))
            limits = availability[index]
            limits.quantity[symbol] = limits.quantity.get(symbol, 0) + holding.quantity
            limits.sellable[symbol] = limits.sellable.get(symbol, 0) + holding.sellable_today
            if holding.symbol != symbol:
                limits.symbols[symbol] = holding.symbol
                notes.append(
                    f"{accounts[index].account}: {holding.symbol} joined to {symbol} by ISIN "
                    f"{group.isin}"
                )
    for symbol in targets:
        if symbol not in groups:
            combined_rows.append(_empty_row(symbol, quotes))
    for rows in per_account_rows:
        held = {row["symbol"] for row in rows}
        rows.extend(_empty_row(s, quotes, groups.get(s)) for s in targets if s not in held)
    unknown_cash = [a.account for a in accounts if a.cash is None]
    if unknown_cash:
        notes.append(f"cash unknown in {', '.join(unknown_cash)}: counted as 0, funds no buy there")
    known = [a.cash for a in accounts if a.cash is not None]
    cash = float(sum(known)) if known else None
    name = "+".join(a.account for a in accounts)
    return CombinedSnapshot(
        snapshot=_snapshot(combined_rows, cash, taken_at, name, COMBINED_BROKER),
        accounts=tuple(
            AccountAvailability(
                account=a.account,
                broker=a.broker,
                cash=float(a.cash) if a.cash is not None else 0.0,
                cash_known=a.cash is not None,
                quantity=dict(limits.quantity),
                sellable=dict(limits.sellable),
                symbols=dict(limits.symbols),
            )
            for a, limits in zip(accounts, availability, strict=True)
        ),
        per_account={
            a.account: _snapshot(rows, a.cash, taken_at, a.account, a.broker)
            for a, rows in zip(accounts, per_account_rows, strict=True)
        },
        notes=tuple(notes),
    )


@dataclass
class _Availability:
    quantity: dict[str, int] = field(default_factory=dict)
    sellable: dict[str, int] = field(default_factory=dict)
    symbols: dict[str, str] = field(default_factory=dict)


def _check_accounts(accounts: Sequence[AccountHoldings]) -> None:
    problems = []
    if len(accounts) < 2:
        problems.append(f"accounts: the combined mode needs two or more, got {len(accounts)}")
    names = [a.account for a in accounts]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"accounts: {name!r} appears twice")
    for a in accounts:
        if a.cash is not None and (not math.isfinite(a.cash) or a.cash < 0):
            problems.append(f"{a.account}, cash: must be a number >= 0, got {a.cash}")
        seen: set[str] = set()
        for h in a.holdings:
            if h.symbol in seen:
                problems.append(f"{a.account}, {h.symbol}: held twice in one account")
            seen.add(h.symbol)
    if problems:
        raise InputDataError(SOURCE, problems)


def _group(accounts: Sequence[AccountHoldings], targets: set[str]) -> dict[str, _Group]:
    """Securities keyed by their combined symbol: ISIN first, then symbol for rows without one."""
    by_isin: dict[str, _Group] = {}
    isin_of_symbol: dict[str, tuple[str, str]] = {}  # symbol -> (isin, account that said so)
    problems: list[str] = []
    for index, a in enumerate(accounts):
        for h in a.holdings:
            if not h.isin:
                continue
            isin = h.isin.strip().upper()
            seen = isin_of_symbol.get(h.symbol)
            if seen and seen[0] != isin:
                problems.append(
                    f"{h.symbol}: ISIN {seen[0]} in {seen[1]} but {isin} in {a.account}; "
                    "one symbol cannot be two securities"
                )
                continue
            isin_of_symbol[h.symbol] = (isin, a.account)
            group = by_isin.setdefault(isin, _Group(isin))
            group.symbols.add(h.symbol)
            group.parts.append((index, h))
    by_symbol: dict[str, _Group] = {}
    for index, a in enumerate(accounts):
        for h in a.holdings:
            if h.isin:
                continue
            known = isin_of_symbol.get(h.symbol)
            group = by_isin[known[0]] if known else by_symbol.setdefault(h.symbol, _Group(None))
            group.symbols.add(h.symbol)
            group.parts.append((index, h))
    groups: dict[str, _Group] = {}
    for group in [*by_isin.values(), *by_symbol.values()]:
        indices = [index for index, _ in group.parts]
        for index in sorted({i for i in indices if indices.count(i) > 1}):
            spellings = sorted(h.symbol for i, h in group.parts if i == index)
            problems.append(
                f"{accounts[index].account}: {', '.join(spellings)} are one security (ISIN "
                f"{group.isin}) held twice in one account"
            )
        named = sorted(group.symbols & targets)
        if len(named) > 1:
            problems.append(
                f"targets {', '.join(named)} are one security (ISIN {group.isin}): keep one of them"
            )
            continue
        groups[named[0] if named else min(group.symbols)] = group
    if problems:
        raise InputDataError(SOURCE, problems)
    return dict(sorted(groups.items()))


def _price(symbol: str, group: _Group, quotes: Mapping[str, Quote]) -> tuple[float, str | None]:
    """The one price of the security, and a note when the accounts' prices disagree."""
    prices = [h.last_price for _, h in group.parts if h.last_price and h.last_price > 0]
    quote = quotes.get(symbol)
    price = quote.last_price if quote else (prices[0] if prices else math.nan)
    if prices and price > 0 and (max(prices) - min(prices)) / price > PRICE_SPREAD_NOTE:
        return price, (
            f"{symbol}: the accounts' last prices range ₹{min(prices):,.2f} to "
            f"₹{max(prices):,.2f}; planned at ₹{price:,.2f}"
        )
    return price, None


def _combined_row(
    symbol: str, group: _Group, price: float, quotes: Mapping[str, Quote]
) -> dict[str, Any]:
    holdings = [h for _, h in group.parts]
    quantity = sum(h.quantity for h in holdings)
    costed = [h for h in holdings if h.average_price and h.average_price > 0 and h.quantity > 0]
    costed_quantity = sum(h.quantity for h in costed)
    average = (
        sum(h.average_price * h.quantity for h in costed) / costed_quantity
        if costed_quantity
        else None
    )
    exchanges = {h.exchange for h in holdings}
    quote = quotes.get(symbol)
    # The latest acquisition date: min_holding_days then protects every account's youngest lot.
    dates = [h.acquired_on for h in holdings if h.acquired_on]
    return {
        "symbol": symbol,
        "exchange": "NSE" if "NSE" in exchanges else min(exchanges),
        "quantity": quantity,
        "sellable_quantity": sum(h.sellable_today for h in holdings),
        "last_price": price,
        "average_price": average,
        "previous_close": quote.previous_close if quote else None,
        "acquired_on": max(dates).isoformat() if dates else None,
        "isin": group.isin,
    }


def _account_row(
    symbol: str, holding: Holding, price: float, quotes: Mapping[str, Quote]
) -> dict[str, Any]:
    quote = quotes.get(symbol)
    acquired: date | None = holding.acquired_on
    return {
        "symbol": symbol,
        "exchange": holding.exchange,
        "quantity": holding.quantity,
        "sellable_quantity": holding.sellable_today,
        "last_price": price,
        "average_price": holding.average_price or None,
        "previous_close": quote.previous_close if quote else None,
        "acquired_on": acquired.isoformat() if acquired else None,
        "isin": holding.isin,
    }


def _empty_row(
    symbol: str, quotes: Mapping[str, Quote], group: _Group | None = None
) -> dict[str, Any]:
    """A target held nowhere (or not in this account): quantity 0 at the one price."""
    quote = quotes.get(symbol)
    price = _price(symbol, group, quotes)[0] if group else (quote.last_price if quote else math.nan)
    return {
        "symbol": symbol,
        "exchange": quote.exchange if quote else (group.parts[0][1].exchange if group else "NSE"),
        "quantity": 0,
        "sellable_quantity": 0,
        "last_price": price,
        "average_price": None,
        "previous_close": quote.previous_close if quote else None,
        "acquired_on": None,
        "isin": group.isin if group else None,
    }


def _snapshot(
    rows: list[dict[str, Any]], cash: float | None, taken_at: datetime, account: str, broker: str
) -> HoldingsSnapshot:
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return HoldingsSnapshot.from_records(
        {
            "positions": frame.astype(object).where(frame.notna(), None).to_dict("records"),
            "cash": cash,
            "taken_at": taken_at.isoformat(),
            "account": account,
            "broker": broker,
        }
    )
