"""Lots per demat account, FIFO consumption, splits and bonuses, and the check against the broker.

Shares sold from a demat account are taken first-in-first-out, account by account (CBDT Circular
768 of 24 June 1998): the lots of one (account, symbol) are kept in the order they entered the
account, and a sell consumes from the front. Quantities are whole shares, money is rupees.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from rebalance.tax.rules import GRANDFATHER_FMV_DATE


@dataclass(frozen=True)
class Lot:
    """Shares of one symbol that entered one demat account on one day at one cost.

    ``cost_per_share`` is the actual cost in rupees (0 for bonus shares). ``fmv_divisor`` is how
    many of today's shares one share of 31 January 2018 became through later splits: the FMV the
    user gives (per share as quoted that day) is divided by it. ``source`` says where the lot came
    from (a tradebook line, a bonus, a fill), for messages.
    """

    account: str
    symbol: str
    acquired_on: dt.date
    quantity: int
    cost_per_share: float
    source: str = ""
    fmv_divisor: float = 1.0

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise ValueError(f"{self.source or self.symbol}: a lot needs a positive quantity")
        if self.cost_per_share < 0:
            raise ValueError(f"{self.source or self.symbol}: a lot's cost cannot be negative")


@dataclass(frozen=True)
class Consumption:
    """``quantity`` shares taken from ``lot`` by one sell."""

    lot: Lot
    quantity: int


class NotEnoughLots(ValueError):  # noqa: N818 - reads as what happened
    """A sell asks for more shares than the account's lots hold."""


def consume_fifo(lots: Sequence[Lot], quantity: int) -> tuple[list[Consumption], list[Lot]]:
    """Take ``quantity`` shares from ``lots`` (one account and symbol, oldest first).

    Returns what was taken from each lot and the lots left (a partly used lot stays at the front
    with its remainder). Raises NotEnoughLots when the lots hold fewer than ``quantity``; never
    takes more than a lot holds.
    """
    if quantity <= 0:
        raise ValueError(f"a sell needs a positive quantity, got {quantity}")
    held = sum(lot.quantity for lot in lots)
    if quantity > held:
        first = lots[0] if lots else None
        where = f"{first.account}/{first.symbol}: " if first else ""
        raise NotEnoughLots(f"{where}a sell of {quantity} shares, but the lots hold only {held}")
    taken: list[Consumption] = []
    left = quantity
    remaining: list[Lot] = []
    for lot in lots:
        if left == 0:
            remaining.append(lot)
            continue
        used = min(left, lot.quantity)
        taken.append(Consumption(lot, used))
        left -= used
        if used < lot.quantity:
            remaining.append(replace(lot, quantity=lot.quantity - used))
    return taken, remaining


class ActionKind(StrEnum):
    """A corporate action that changes the lots without a trade."""

    SPLIT = "split"
    BONUS = "bonus"


@dataclass(frozen=True)
class CorporateAction:
    """A split or bonus of ``symbol``, ``new`` shares for every ``old`` held.

    * split (or consolidation): on ``on`` (the ex-date) every lot's quantity is multiplied by
      new/old and its cost per share divided by it; the acquisition date stays (no transfer).
    * bonus: ``new`` free shares for every ``old`` held the day before ``on`` (the allotment
      date), as a new lot acquired on ``on`` at cost 0 (s.55(2)(aa)(iiia); holding from
      allotment). ``quantity`` gives the shares actually credited when the ratio leaves a
      fraction (it is then required).

    ``account`` limits the action to one account (None: every account holding the symbol).
    """

    symbol: str
    kind: ActionKind
    on: dt.date
    new: int
    old: int
    account: str | None = None
    quantity: int | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.new <= 0 or self.old <= 0:
            raise ValueError(f"{self.source or self.symbol}: the ratio needs positive numbers")
        if self.quantity is not None and self.quantity <= 0:
            raise ValueError(f"{self.source or self.symbol}: quantity must be positive")


class LotProblem(ValueError):  # noqa: N818 - reads as what happened
    """The lots of a symbol cannot be trusted (a sell without lots, a fractional split, ...)."""


def apply_split(lots: Sequence[Lot], action: CorporateAction) -> list[Lot]:
    """``lots`` (one account and symbol) after the split ``action``. Raises LotProblem when a lot
    would hold a fraction of a share (record what the depository credited instead)."""
    out = []
    for lot in lots:
        shares = lot.quantity * action.new
        if shares % action.old:
            raise LotProblem(
                f"{lot.account}/{lot.symbol}: the {action.new}:{action.old} {action.kind} on "
                f"{action.on.isoformat()} leaves a fraction of a share in the lot of "
                f"{lot.quantity} from {lot.acquired_on.isoformat()}"
            )
        factor = action.new / action.old
        after_fmv_day = action.on > GRANDFATHER_FMV_DATE
        out.append(
            replace(
                lot,
                quantity=shares // action.old,
                cost_per_share=lot.cost_per_share / factor,
                fmv_divisor=lot.fmv_divisor * factor if after_fmv_day else lot.fmv_divisor,
            )
        )
    return out


def bonus_lot(lots: Sequence[Lot], action: CorporateAction, account: str) -> Lot | None:
    """The lot a bonus ``action`` credits to ``account``, holding ``lots``; None when it holds
    none. Raises LotProblem when the ratio leaves a fraction and no quantity was given."""
    held = sum(lot.quantity for lot in lots)
    if action.quantity is not None:
        credited = action.quantity
    elif held == 0:
        return None
    elif (held * action.new) % action.old:
        raise LotProblem(
            f"{account}/{action.symbol}: a {action.new}:{action.old} bonus on "
            f"{action.on.isoformat()} on {held} shares leaves a fraction; give the quantity "
            "credited"
        )
    else:
        credited = held * action.new // action.old
    return Lot(
        account=account,
        symbol=action.symbol,
        acquired_on=action.on,
        quantity=credited,
        cost_per_share=0.0,
        source=action.source or f"bonus {action.new}:{action.old} on {action.on.isoformat()}",
    )


@dataclass(frozen=True)
class LotCheck:
    """Whether the lots of (account, symbol) add up to the broker's quantity."""

    account: str
    symbol: str
    lots_quantity: int
    broker_quantity: int

    @property
    def ok(self) -> bool:
        return self.lots_quantity == self.broker_quantity

    @property
    def message(self) -> str:
        if self.ok:
            return ""
        return (
            f"{self.symbol}: the lots of account {self.account} add up to {self.lots_quantity} "
            f"shares but the broker holds {self.broker_quantity}; {self.symbol} is planned without "
            "tax data (a transfer, a corporate action not recorded, or a tradebook that starts "
            "after the first purchase?)"
        )


def check_against_broker(
    account: str, lots: Iterable[Lot], broker_quantities: Mapping[str, int]
) -> dict[str, LotCheck]:
    """Per symbol held at the broker or in the lots: do the lots add up? Never guesses a fix."""
    totals: dict[str, int] = {}
    for lot in lots:
        if lot.account == account:
            totals[lot.symbol] = totals.get(lot.symbol, 0) + lot.quantity
    symbols = sorted(set(totals) | {s for s, q in broker_quantities.items() if q})
    return {
        s: LotCheck(account, s, totals.get(s, 0), int(broker_quantities.get(s, 0))) for s in symbols
    }
