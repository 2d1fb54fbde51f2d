"""Several portfolios in one account: a ledger of each portfolio's shares and cash.

The broker knows one total per symbol and one cash figure; which portfolio owns what is ours to
keep, as smallcase keeps each smallcase inside one demat. The ledger is an append-only list of
entries per portfolio:

* ``seed``: what a portfolio starts with when it is added to the account;
* ``fill``: its own executed orders (shares in or out; the notional and charges out of or into
  its cash), once per order tag;
* ``adjustment``: a person's resolution of a difference (a manual trade, a dividend, a split or
  bonus), with who decided and why.

Shares and cash in the account that belong to no portfolio sit in the ``OUTSIDE`` ledger, so
that every share and rupee the broker reports is owned by exactly one ledger.

``reconcile`` compares the ledgers' totals with the broker's each run. A difference is listed per
symbol with what each ledger says and what the broker says; it is never assigned to a portfolio
by a rule: ``resolve`` records the split a person chose, and must explain the whole difference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from rebalance.domain.market import Holding, Side
from rebalance.errors import InputDataError

OUTSIDE = "(outside)"  # shares and cash in the account that no portfolio owns
CASH_TOLERANCE_INR = 1.0  # cash differences below a rupee are rounding of the charge estimates
# The broker debits its own charges (stamp duty rounded per contract note, DP charges on the
# next day, GST on all of it), which differ from the planner's estimate: a cash difference up to
# the larger of 10% of the estimated charges of the fills since the cash was last settled and
# ₹50 is settled automatically as a "charges difference" (docs/accounts.md). Shares never are.
CHARGES_TOLERANCE_SHARE = 0.10
CHARGES_TOLERANCE_MIN_INR = 50.0
CHARGES_DIFFERENCE = "charges difference"
CHARGES_BY = "rebalance"  # who made an automatic charges difference entry


def charges_tolerance(estimated_charges: float) -> float:
    """The largest cash difference settled as a charges difference, rupees, for fills whose
    charges were estimated at ``estimated_charges`` rupees."""
    return max(CHARGES_TOLERANCE_MIN_INR, CHARGES_TOLERANCE_SHARE * estimated_charges)


class EntryKind(StrEnum):
    SEED = "seed"
    FILL = "fill"
    ADJUSTMENT = "adjustment"


@dataclass(frozen=True)
class Entry:
    """One movement of one portfolio's ledger: ``shares`` signed (whole shares of ``symbol``;
    0 with ``symbol`` None for cash only), ``cash`` signed rupees. ``ref`` is the order tag of a
    fill; ``by`` and ``note`` say who made a seed or adjustment and why."""

    portfolio: str
    kind: EntryKind
    at: datetime
    symbol: str | None = None
    shares: int = 0
    cash: float = 0.0
    ref: str | None = None
    by: str | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "kind": str(self.kind), "at": self.at.isoformat()}


@dataclass(frozen=True)
class Difference:
    """A symbol (or ``symbol`` None: the cash) whose ledgers do not add up to the broker's
    figure. ``ledgers`` says what each portfolio's ledger holds; ``difference`` = broker - sum."""

    symbol: str | None
    ledgers: Mapping[str, float]
    broker: float
    difference: float

    def describe(self) -> str:
        what = self.symbol or "cash"
        each = ", ".join(f"{p} {v:g}" for p, v in sorted(self.ledgers.items()) if v)
        return (
            f"{what}: the ledgers say {sum(self.ledgers.values()):g} ({each or 'none'}), "
            f"the broker says {self.broker:g}: {self.difference:+g} unexplained"
        )


@dataclass(frozen=True)
class Reconciliation:
    """The result of one comparison: clean when there are no differences."""

    differences: tuple[Difference, ...]

    @property
    def clean(self) -> bool:
        return not self.differences

    def lines(self) -> list[str]:
        """One sentence per difference, for the run's record and the person resolving it."""
        return [d.describe() for d in self.differences]


@dataclass(frozen=True)
class AccountLedger:
    """Every portfolio's ledger in one account (an immutable value: each change returns a new
    one). ``entries`` in the order they were made."""

    account: str
    entries: tuple[Entry, ...] = field(default=())

    @classmethod
    def open(
        cls,
        account: str,
        seeds: Mapping[str, tuple[Mapping[str, int], float]],
        broker_holdings: Mapping[str, int],
        broker_cash: float,
        *,
        at: datetime,
        by: str,
    ) -> AccountLedger:
        """A ledger where each portfolio of ``seeds`` (portfolio -> (shares by symbol, cash))
        starts with what it was given and the rest of the account is ``OUTSIDE``.

        Refuses (InputDataError naming symbol and portfolios) seeds above what the broker holds.
        """
        problems = []
        if OUTSIDE in seeds:
            problems.append(f"{OUTSIDE!r} is reserved for what no portfolio owns")
        symbols = sorted({s for shares, _ in seeds.values() for s in shares} | set(broker_holdings))
        outside: dict[str, int] = {}
        for symbol in symbols:
            seeded = {p: shares.get(symbol, 0) for p, (shares, _) in seeds.items()}
            if any(v < 0 for v in seeded.values()):
                problems.append(f"{symbol}: a seed below 0 shares ({seeded})")
            rest = broker_holdings.get(symbol, 0) - sum(seeded.values())
            if rest < 0:
                problems.append(
                    f"{symbol}: seeds {sum(seeded.values())} ({_each(seeded)}) > "
                    f"{broker_holdings.get(symbol, 0)} held"
                )
            elif rest:
                outside[symbol] = rest
        cash_rest = broker_cash - sum(cash for _, cash in seeds.values())
        if any(cash < 0 for _, cash in seeds.values()) or cash_rest < -CASH_TOLERANCE_INR:
            problems.append(
                f"cash: seeds ₹{broker_cash - cash_rest:,.2f} > ₹{broker_cash:,.2f} in the "
                "account, or a seed below 0"
            )
        if problems:
            raise InputDataError(f"ledger of {account}", problems)
        ledger = cls(account)
        # a rest below 0 within the tolerance is rounding: the outside ledger starts at 0
        outside_seed = (OUTSIDE, (outside, max(0.0, cash_rest)))
        for portfolio, (shares, cash) in [*seeds.items(), outside_seed]:
            ledger = ledger._seed(portfolio, shares, cash, at=at, by=by)
        return ledger

    def _seed(
        self, portfolio: str, shares: Mapping[str, int], cash: float, *, at: datetime, by: str
    ) -> AccountLedger:
        new = [
            Entry(portfolio, EntryKind.SEED, at, symbol, quantity, by=by, note="seeded")
            for symbol, quantity in sorted(shares.items())
            if quantity
        ]
        new.append(Entry(portfolio, EntryKind.SEED, at, cash=cash, by=by, note="seeded"))
        return AccountLedger(self.account, (*self.entries, *new))

    def add_portfolio(
        self, portfolio: str, shares: Mapping[str, int], cash: float, *, at: datetime, by: str
    ) -> AccountLedger:
        """A portfolio added to an account that already has ledgers: its ``shares`` and ``cash``
        move out of the ``OUTSIDE`` ledger (what no portfolio owned) into its own. Refuses a
        part above what the outside ledger holds, a portfolio already here, or ``OUTSIDE``."""
        problems = []
        if portfolio == OUTSIDE or portfolio in self.portfolios:
            problems.append(f"{portfolio!r} already has a ledger here (or is reserved)")
        outside = self.shares(OUTSIDE)
        problems += [
            f"{symbol}: {portfolio} takes {quantity}, outside holds {outside.get(symbol, 0)}"
            for symbol, quantity in sorted(shares.items())
            if not 0 <= quantity <= outside.get(symbol, 0)
        ]
        if not 0 <= cash <= self.cash(OUTSIDE) + CASH_TOLERANCE_INR:
            problems.append(f"cash: {portfolio} takes ₹{cash:,.2f}, outside holds "
                            f"₹{self.cash(OUTSIDE):,.2f}")  # fmt: skip
        if problems:
            raise InputDataError(f"ledger of {self.account}", problems)
        note = f"moved to {portfolio} when it was added to the account"
        moved = [
            Entry(OUTSIDE, EntryKind.ADJUSTMENT, at, symbol, -quantity, by=by, note=note)
            for symbol, quantity in sorted(shares.items())
            if quantity
        ]
        moved.append(Entry(OUTSIDE, EntryKind.ADJUSTMENT, at, cash=-cash, by=by, note=note))
        return AccountLedger(self.account, (*self.entries, *moved))._seed(
            portfolio, shares, cash, at=at, by=by
        )

    @property
    def portfolios(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.portfolio for e in self.entries))

    def shares(self, portfolio: str) -> dict[str, int]:
        """Shares by symbol that ``portfolio``'s ledger holds (symbols at 0 left out)."""
        totals: dict[str, int] = {}
        for e in self.entries:
            if e.portfolio == portfolio and e.symbol is not None:
                totals[e.symbol] = totals.get(e.symbol, 0) + e.shares
        return {s: q for s, q in sorted(totals.items()) if q}

    def cash(self, portfolio: str) -> float:
        """Rupees that ``portfolio``'s ledger holds."""
        return sum(e.cash for e in self.entries if e.portfolio == portfolio)

    def record_fill(
        self,
        portfolio: str,
        *,
        tag: str,
        symbol: str,
        side: Side,
        quantity: int,
        price: float,
        charges: float,
        at: datetime,
    ) -> AccountLedger:
        """Move ``portfolio``'s ledger by one executed order (``quantity`` filled shares at the
        average ``price``, ``charges`` rupees). The same fill twice (same tag and figures) is a
        no-op; the same tag with other figures is refused, never counted twice."""
        self._check_known(portfolio)
        if quantity <= 0 or not (math.isfinite(price) and price > 0) or charges < 0:
            raise InputDataError(
                f"ledger of {self.account}",
                [f"fill {tag}: quantity {quantity}, price {price}, charges {charges}"],
            )
        sign = 1 if side is Side.BUY else -1
        entry = Entry(
            portfolio,
            EntryKind.FILL,
            at,
            symbol,
            sign * quantity,
            -sign * quantity * price - charges,
            ref=tag,
            note=f"{side} {quantity} {symbol} @ ₹{price:,.2f}, charges ₹{charges:,.2f}",
        )
        for seen in self.entries:
            if seen.kind is EntryKind.FILL and seen.ref == tag:
                same = (seen.portfolio, seen.symbol, seen.shares) == (
                    portfolio,
                    symbol,
                    entry.shares,
                ) and abs(seen.cash - entry.cash) < 1e-6
                if same:
                    return self
                raise InputDataError(
                    f"ledger of {self.account}",
                    [f"fill {tag}: already recorded as {seen.note} for {seen.portfolio}"],
                )
        if side is Side.SELL and self.shares(portfolio).get(symbol, 0) < quantity:
            raise InputDataError(
                f"ledger of {self.account}",
                [
                    f"fill {tag}: {portfolio} sells {quantity} {symbol}, its ledger holds "
                    f"{self.shares(portfolio).get(symbol, 0)}"
                ],
            )
        return AccountLedger(self.account, (*self.entries, entry))

    def reconcile(
        self,
        broker_holdings: Mapping[str, int],
        broker_cash: float | None,
        *,
        cash_tolerance: float = CASH_TOLERANCE_INR,
    ) -> Reconciliation:
        """Compare the ledgers' totals with the broker's: every symbol whose shares differ, and
        the cash when it differs by more than ``cash_tolerance`` rupees (not compared when the
        broker's cash is unknown)."""
        per_portfolio = {p: self.shares(p) for p in self.portfolios}
        held_anywhere = {s for held in per_portfolio.values() for s in held}
        symbols = sorted(held_anywhere | set(broker_holdings))
        differences = []
        for symbol in symbols:
            ledgers = {p: float(held.get(symbol, 0)) for p, held in per_portfolio.items()}
            broker = float(broker_holdings.get(symbol, 0))
            if broker != sum(ledgers.values()):
                differences.append(
                    Difference(symbol, ledgers, broker, broker - sum(ledgers.values()))
                )
        if broker_cash is not None:
            cash = {p: self.cash(p) for p in self.portfolios}
            gap = broker_cash - sum(cash.values())
            if abs(gap) > cash_tolerance:
                differences.append(Difference(None, cash, broker_cash, gap))
        return Reconciliation(tuple(differences))

    def resolve(
        self,
        difference: Difference,
        split: Mapping[str, float],
        *,
        by: str,
        reason: str,
        at: datetime,
    ) -> AccountLedger:
        """Record a person's resolution of ``difference``: ``split`` gives each portfolio (or
        ``OUTSIDE``) its part, shares for a symbol or rupees for the cash. The parts must add up
        to the whole difference (shares exactly, cash within a paisa) and ``reason`` and ``by``
        must be given: the record says who decided what, and why."""
        problems = []
        if not by.strip() or not reason.strip():
            problems.append("a resolution names who decided (by) and why (reason)")
        unknown = sorted(set(split) - set(self.portfolios))
        if unknown:
            problems.append(f"unknown portfolio(s) {unknown}; known: {list(self.portfolios)}")
        total = sum(split.values())
        if difference.symbol is not None:
            if any(v != int(v) for v in split.values()):
                problems.append(f"{difference.symbol}: shares are whole numbers, got {split}")
            if total != difference.difference:
                problems.append(
                    f"{difference.symbol}: the parts add up to {total:g}, the difference is "
                    f"{difference.difference:+g}"
                )
        elif abs(total - difference.difference) > 0.01:
            problems.append(
                f"cash: the parts add up to ₹{total:,.2f}, the difference is "
                f"₹{difference.difference:+,.2f}"
            )
        for portfolio, part in split.items():
            if difference.symbol is not None:
                after = self.shares(portfolio).get(difference.symbol, 0) + part
                if after < 0:
                    problems.append(
                        f"{difference.symbol}: {portfolio}'s ledger would hold {after:g} shares"
                    )
        if problems:
            raise InputDataError(f"ledger of {self.account}", problems)
        new = tuple(
            Entry(
                portfolio,
                EntryKind.ADJUSTMENT,
                at,
                difference.symbol,
                int(part) if difference.symbol is not None else 0,
                0.0 if difference.symbol is not None else float(part),
                by=by,
                note=reason,
            )
            for portfolio, part in split.items()
            if part
        )
        return AccountLedger(self.account, (*self.entries, *new))

    def unsettled_fills(self) -> tuple[Entry, ...]:
        """The fills since the ledger's cash was last set by an entry other than a fill (a seed,
        a person's resolution, a charges difference): the fills whose charges as estimated the
        broker's cash may not match yet."""
        cash_set = [
            i for i, e in enumerate(self.entries) if e.kind is not EntryKind.FILL and not e.shares
        ]
        last = max(cash_set, default=-1)
        return tuple(e for e in self.entries[last + 1 :] if e.kind is EntryKind.FILL)

    def settle_charges(
        self, difference: Difference, estimated: Mapping[str, float], *, at: datetime
    ) -> AccountLedger:
        """The cash ``difference`` taken as the broker's charges differing from the estimate of
        the unsettled fills (``estimated``: portfolio -> rupees estimated): split in proportion
        to each portfolio's estimate (the last takes the paisa left), one automatic adjustment
        per portfolio whose note gives the amounts. Refused (InputDataError) for shares, for a
        difference beyond ``charges_tolerance`` or without estimated charges."""
        total = sum(v for v in estimated.values() if v > 0)
        tolerance = charges_tolerance(total)
        problems = []
        if difference.symbol is not None:
            problems.append(f"{difference.symbol}: a share difference is never a charge")
        elif total <= 0:
            problems.append("cash: no fill with estimated charges to explain the difference")
        elif abs(difference.difference) > tolerance:
            problems.append(
                f"cash: ₹{difference.difference:+,.2f} is beyond the charges tolerance "
                f"₹{tolerance:,.2f}"
            )
        for portfolio in estimated:
            self._check_known(portfolio)
        if problems:
            raise InputDataError(f"ledger of {self.account}", problems)
        shares = sorted((p, v) for p, v in estimated.items() if v > 0)
        parts: dict[str, float] = {}
        for portfolio, charges in shares[:-1]:
            parts[portfolio] = round(difference.difference * charges / total, 2)
        parts[shares[-1][0]] = round(difference.difference - sum(parts.values()), 2)
        new = tuple(
            Entry(
                portfolio,
                EntryKind.ADJUSTMENT,
                at,
                cash=part,
                by=CHARGES_BY,
                note=(
                    f"{CHARGES_DIFFERENCE}: charges estimated ₹{estimated[portfolio]:,.2f}, "
                    f"the broker's cash differs by ₹{part:+,.2f} (the account by "
                    f"₹{difference.difference:+,.2f}, tolerance ₹{tolerance:,.2f})"
                ),
            )
            for portfolio, part in parts.items()
        )
        return AccountLedger(self.account, (*self.entries, *new))

    def _check_known(self, portfolio: str) -> None:
        if portfolio not in self.portfolios:
            raise InputDataError(
                f"ledger of {self.account}",
                [f"portfolio {portfolio!r} has no ledger here; known: {list(self.portfolios)}"],
            )

    def sellable(
        self, portfolio: str, broker_quantity: Mapping[str, int], broker_sellable: Mapping[str, int]
    ) -> dict[str, int]:
        """What ``portfolio`` may sell today, per symbol: its ledger's shares less every share
        the broker says cannot be sold today (unsettled, pledged, not authorised), as if all of
        them were this portfolio's. So the portfolios' sells together never exceed the broker's
        sellable quantity, whichever portfolio the unsellable shares belong to. A symbol whose
        ledgers do not add up to the broker's quantity (an open difference) may not be sold."""
        self._check_known(portfolio)
        result = {}
        for symbol, held in self.shares(portfolio).items():
            owned = sum(self.shares(p).get(symbol, 0) for p in self.portfolios)
            if owned != broker_quantity.get(symbol, 0):
                result[symbol] = 0
                continue
            blocked = broker_quantity.get(symbol, 0) - broker_sellable.get(symbol, 0)
            result[symbol] = max(0, held - max(0, blocked))
        return result

    def portfolio_holdings(self, portfolio: str, broker: Sequence[Holding]) -> list[Holding]:
        """``portfolio``'s holdings as the planner's input: the broker's rows (prices, ISIN,
        exchange) with the ledger's quantity and ``sellable``'s sellable quantity (the
        depository authorisation already counted there). A symbol the ledger holds that the
        broker does not is left out: it is an open difference, for ``reconcile`` to show."""
        rows = {h.symbol: h for h in broker}
        quantity = {s: h.quantity for s, h in rows.items()}
        sellable_today = {s: h.sellable_today for s, h in rows.items()}
        may_sell = self.sellable(portfolio, quantity, sellable_today)
        return [
            replace(
                rows[symbol],
                quantity=held,
                sellable_quantity=may_sell.get(symbol, 0),
                authorised_quantity=None,
                bought_today=0,
            )
            for symbol, held in self.shares(portfolio).items()
            if symbol in rows
        ]

    def to_records(self) -> dict[str, Any]:
        """JSON-able form for the history store."""
        return {"account": self.account, "entries": [e.to_dict() for e in self.entries]}

    @classmethod
    def from_records(cls, data: Mapping[str, Any]) -> AccountLedger:
        """The ledger ``to_records`` wrote."""
        return cls(
            str(data["account"]),
            tuple(
                Entry(
                    **{
                        **entry,
                        "kind": EntryKind(entry["kind"]),
                        "at": datetime.fromisoformat(entry["at"]),
                    }
                )
                for entry in data["entries"]
            ),
        )


def _each(values: Mapping[str, int]) -> str:
    return ", ".join(f"{p} {v}" for p, v in sorted(values.items()) if v)
