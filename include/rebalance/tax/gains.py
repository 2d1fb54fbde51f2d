"""Realised gains per sell (FIFO), and the estimated tax of a financial year.

A sell is split into the lots it consumes (``LotSale``): each piece has its holding days, its
term, its cost (grandfathered where the lot predates 1 February 2018) and its gain. A year's
tax nets the pieces: short-term losses against short- then long-term gains, long-term losses only
against long-term gains (ss.70, 74), then the s.112A exemption on what long-term gain is left,
then the rate of each piece's sale date, the surcharge (capped at 15%) and the 4% cess.

Gains are computed from trade prices; brokerage and other charges are not deducted (the
estimate errs a little high). Amounts are rupees, rates fractions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rebalance.tax.lots import Lot, consume_fifo
from rebalance.tax.rules import (
    CESS_RATE,
    GRANDFATHER_ACQUIRED_BEFORE,
    FinancialYear,
    TaxSettings,
    Term,
    ltcg_exemption,
    rate_for,
    term_of,
)


class MissingFmv(ValueError):  # noqa: N818 - reads as what happened
    """A lot bought before 1 February 2018 is sold and its 31 January 2018 FMV was not given."""


@dataclass(frozen=True)
class LotSale:
    """The part of one sell taken from one lot."""

    account: str
    symbol: str
    acquired_on: dt.date
    sold_on: dt.date
    quantity: int
    sale_price: float
    actual_cost_per_share: float
    cost_per_share: float
    grandfathered: bool
    lot_source: str = ""

    @property
    def holding_days(self) -> int:
        return (self.sold_on - self.acquired_on).days

    @property
    def term(self) -> Term:
        return term_of(self.acquired_on, self.sold_on)

    @property
    def rate(self) -> float:
        return rate_for(self.term, self.sold_on)

    @property
    def proceeds(self) -> float:
        return self.quantity * self.sale_price

    @property
    def cost(self) -> float:
        return self.quantity * self.cost_per_share

    @property
    def gain(self) -> float:
        """Proceeds minus (grandfathered) cost; negative for a loss."""
        return self.proceeds - self.cost


@dataclass(frozen=True)
class Sell:
    """One sell of ``quantity`` shares at ``price`` on ``sold_on``, split FIFO into lot pieces."""

    account: str
    symbol: str
    sold_on: dt.date
    quantity: int
    price: float
    pieces: tuple[LotSale, ...]
    source: str = ""

    @property
    def proceeds(self) -> float:
        return sum(p.proceeds for p in self.pieces)

    @property
    def cost(self) -> float:
        return sum(p.cost for p in self.pieces)

    @property
    def gain(self) -> float:
        return sum(p.gain for p in self.pieces)

    def gain_by_term(self, term: Term) -> float:
        return sum(p.gain for p in self.pieces if p.term is term)


def grandfathered_cost(
    lot: Lot, sold_on: dt.date, sale_price: float, fmv_2018: float | None
) -> tuple[float, bool]:
    """The cost per share of ``lot`` for a sale at ``sale_price``, and whether s.55(2)(ac) applied.

    For a lot acquired before 1 February 2018 and sold long-term: max(actual cost, min(FMV on
    31 January 2018, sale price)), the FMV per share of today (``fmv_2018`` / the lot's
    ``fmv_divisor``). Raises MissingFmv when such a lot is sold and no FMV was given: the FMV is
    the user's input, never guessed.
    """
    if lot.acquired_on >= GRANDFATHER_ACQUIRED_BEFORE or term_of(lot.acquired_on, sold_on) is (
        Term.SHORT
    ):
        return lot.cost_per_share, False
    if fmv_2018 is None:
        raise MissingFmv(
            f"{lot.symbol}: a lot bought on {lot.acquired_on.isoformat()} (before 1 February "
            "2018) is sold, and no fair market value of 31 January 2018 was given for "
            f"{lot.symbol} (--fmv FILE)"
        )
    fmv = fmv_2018 / lot.fmv_divisor
    cost = max(lot.cost_per_share, min(fmv, sale_price))
    return cost, cost != lot.cost_per_share


def realise(
    lots: Sequence[Lot],
    quantity: int,
    price: float,
    sold_on: dt.date,
    *,
    fmv_2018: float | None = None,
    source: str = "",
) -> tuple[Sell, list[Lot]]:
    """Sell ``quantity`` shares at ``price`` from ``lots`` (one account and symbol, FIFO order).

    Returns the sell with its pieces and the lots left. Raises NotEnoughLots (more than held) or
    MissingFmv (a pre-2018 lot without its FMV).
    """
    if price < 0:
        raise ValueError(f"{source or 'sell'}: negative price {price}")
    taken, remaining = consume_fifo(lots, quantity)
    pieces = []
    for used in taken:
        cost, grandfathered = grandfathered_cost(used.lot, sold_on, price, fmv_2018)
        pieces.append(
            LotSale(
                account=used.lot.account,
                symbol=used.lot.symbol,
                acquired_on=used.lot.acquired_on,
                sold_on=sold_on,
                quantity=used.quantity,
                sale_price=price,
                actual_cost_per_share=used.lot.cost_per_share,
                cost_per_share=cost,
                grandfathered=grandfathered,
                lot_source=used.lot.source,
            )
        )
    first = lots[0]
    sell = Sell(first.account, first.symbol, sold_on, quantity, price, tuple(pieces), source)
    return sell, remaining


@dataclass(frozen=True)
class DeclaredGains:
    """Gains the user realised elsewhere in the year (other accounts, mutual funds), signed.

    They are taken at the rates in force on the year's last day.
    """

    short_term: float = 0.0
    long_term: float = 0.0


@dataclass(frozen=True)
class YearTax:
    """The estimated tax on a financial year's equity gains, with every step shown."""

    fy: FinancialYear
    short_term_gains: float
    short_term_losses: float
    long_term_gains: float
    long_term_losses: float
    short_term_taxable: float
    long_term_after_set_off: float
    exemption: float
    exemption_used: float
    long_term_taxable: float
    short_term_loss_carried: float
    long_term_loss_carried: float
    tax: float
    surcharge: float
    cess: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def exemption_left(self) -> float:
        return self.exemption - self.exemption_used

    @property
    def total(self) -> float:
        """Tax + surcharge + cess, rupees."""
        return self.tax + self.surcharge + self.cess

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            k: round(v, 2) if isinstance(v, float) else v
            for k, v in self.__dict__.items()
            if k not in ("fy", "notes")
        }
        data["fy"] = self.fy.label
        data["exemption_left"] = round(self.exemption_left, 2)
        data["total"] = round(self.total, 2)
        data["notes"] = list(self.notes)
        return data


def _take(buckets: list[list[float]], amount: float) -> float:
    """Reduce ``buckets`` ([rate, gain] pairs, highest rate first) by ``amount``; the rest."""
    for bucket in buckets:
        used = min(bucket[1], amount)
        bucket[1] -= used
        amount -= used
    return amount


def year_tax(
    fy: FinancialYear,
    pieces: Iterable[LotSale],
    settings: TaxSettings | None = None,
    declared: DeclaredGains | None = None,
) -> YearTax:
    """The estimated tax on ``pieces`` sold in ``fy`` plus the ``declared`` gains.

    Pieces sold outside ``fy`` are ignored. Losses are set off in the order that lowers the tax
    (against the highest-rate gains first); what cannot be set off is reported as carried
    forward, not used (brought-forward losses of earlier years are not modelled).
    """
    settings = settings or TaxSettings()
    declared = declared or DeclaredGains()
    short: dict[float, float] = {}
    long: dict[float, float] = {}
    losses = {Term.SHORT: 0.0, Term.LONG: 0.0}
    gains_total = {Term.SHORT: 0.0, Term.LONG: 0.0}

    def add(term: Term, rate: float, gain: float) -> None:
        if gain < 0:
            losses[term] += -gain
            return
        gains_total[term] += gain
        target = short if term is Term.SHORT else long
        target[rate] = target.get(rate, 0.0) + gain

    for piece in pieces:
        if piece.sold_on in fy:
            add(piece.term, piece.rate, piece.gain)
    for term, amount in ((Term.SHORT, declared.short_term), (Term.LONG, declared.long_term)):
        if amount:
            add(term, rate_for(term, fy.last_day), amount)

    short_buckets = [[r, g] for r, g in sorted(short.items(), reverse=True)]
    long_buckets = [[r, g] for r, g in sorted(long.items(), reverse=True)]
    short_left = _take(short_buckets, losses[Term.SHORT])
    short_left = _take(long_buckets, short_left)
    long_left = _take(long_buckets, losses[Term.LONG])
    long_after = sum(b[1] for b in long_buckets)
    exemption = ltcg_exemption(fy)
    exemption_used = min(exemption, long_after)
    _take(long_buckets, exemption_used)

    tax = sum(r * g for r, g in short_buckets) + sum(r * g for r, g in long_buckets)
    surcharge = tax * settings.surcharge_rate
    cess = (tax + surcharge) * CESS_RATE
    notes = []
    if short_left > 0 or long_left > 0:
        notes.append(
            f"losses not set off this year (carried forward up to 8 years, not modelled): "
            f"short-term ₹{short_left:,.2f}, long-term ₹{long_left:,.2f}"
        )
    return YearTax(
        fy=fy,
        short_term_gains=gains_total[Term.SHORT],
        short_term_losses=losses[Term.SHORT],
        long_term_gains=gains_total[Term.LONG],
        long_term_losses=losses[Term.LONG],
        short_term_taxable=sum(b[1] for b in short_buckets),
        long_term_after_set_off=long_after,
        exemption=exemption,
        exemption_used=exemption_used,
        long_term_taxable=sum(b[1] for b in long_buckets),
        short_term_loss_carried=short_left,
        long_term_loss_carried=long_left,
        tax=tax,
        surcharge=surcharge,
        cess=cess,
        notes=tuple(notes),
    )


def marginal_tax(
    fy: FinancialYear,
    realised: Sequence[LotSale],
    proposed: Sequence[LotSale],
    settings: TaxSettings | None = None,
    declared: DeclaredGains | None = None,
) -> float:
    """How much the year's tax grows (negative: shrinks) if ``proposed`` pieces are sold too.

    This is the estimated tax of a planned sell given what the year has already realised, so
    the exemption left and the losses already booked are taken into account.
    """
    before = year_tax(fy, realised, settings, declared).total
    after = year_tax(fy, [*realised, *proposed], settings, declared).total
    return after - before


def tax_per_sell(
    sells: Sequence[Sell],
    settings: TaxSettings | None = None,
    declared: Mapping[FinancialYear, DeclaredGains] | None = None,
) -> list[tuple[Sell, float]]:
    """Each sell with the tax it added, in date order, within its financial year."""
    out = []
    done: dict[FinancialYear, list[LotSale]] = {}
    for sell in sorted(sells, key=lambda s: s.sold_on):
        fy = FinancialYear.of(sell.sold_on)
        booked = done.setdefault(fy, [])
        extra = marginal_tax(fy, booked, sell.pieces, settings, (declared or {}).get(fy))
        booked.extend(sell.pieces)
        out.append((sell, extra))
    return out
