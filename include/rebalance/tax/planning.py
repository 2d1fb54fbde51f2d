"""What the planner needs to know about tax for one account, and the tax of a planned sell.

``TaxContext`` is built from the account's lots (history: imported tradebooks, the pipeline's own
fills, corporate actions) checked against the broker's quantities: a symbol whose lots do not add
up is in ``no_tax_data`` with the message and is planned without tax data, never guessed. The
planner reads, per symbol, the FIFO segments a sell would consume (``sell_segments``) and the
shares it may sell under ``min_holding_days`` (``sellable_by_holding``); the preview reads the
estimate of the whole plan (``estimate_plan``). Rupees, whole shares, rates as fractions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rebalance.tax.gains import DeclaredGains, LotSale, MissingFmv, grandfathered_cost, year_tax
from rebalance.tax.lots import Lot, check_against_broker
from rebalance.tax.report import estimate_sell
from rebalance.tax.rules import (
    CESS_RATE,
    FinancialYear,
    TaxSettings,
    Term,
    ltcg_exemption,
    rate_for,
    term_of,
)
from rebalance.tax.tradebook import Ledger


@dataclass(frozen=True)
class Segment:
    """Shares of one FIFO lot a sell would take, in the order it takes them."""

    quantity: int
    gain_per_share: float  # sale price minus (grandfathered) cost, rupees
    term: Term
    acquired_on: dt.date


@dataclass(frozen=True)
class TaxContext:
    """One account's tax inputs on the day of planning.

    ``lots`` symbol -> the account's lots, oldest first (only symbols whose lots add up to the
    broker's quantity); ``no_tax_data`` symbol -> why it has none; ``realised`` the pieces already
    sold in the financial year of ``sold_on`` (every account in history); ``declared`` the gains
    the user realised elsewhere that year.
    """

    account: str
    sold_on: dt.date
    lots: Mapping[str, tuple[Lot, ...]]
    no_tax_data: Mapping[str, str] = field(default_factory=dict)
    realised: tuple[LotSale, ...] = ()
    declared: DeclaredGains = field(default_factory=DeclaredGains)
    settings: TaxSettings = field(default_factory=TaxSettings)
    fmv_2018: Mapping[str, float] = field(default_factory=dict)

    @property
    def fy(self) -> FinancialYear:
        return FinancialYear.of(self.sold_on)

    def modelled(self, symbol: str) -> bool:
        """True when a sell of ``symbol`` has tax data and is taxed as equity."""
        return symbol in self.lots and self.settings.not_modelled_reason(symbol) is None

    def why_not(self, symbol: str) -> str | None:
        """Why ``symbol``'s tax is not estimated (None when it is)."""
        reason = self.settings.not_modelled_reason(symbol)
        if reason:
            return f"tax not modelled: {reason}"
        return self.no_tax_data.get(symbol)

    @property
    def multiplier(self) -> float:
        """Tax -> tax + surcharge + cess."""
        return (1 + self.settings.surcharge_rate) * (1 + CESS_RATE)

    def rate(self, term: Term) -> float:
        return rate_for(term, self.sold_on)

    @property
    def year_before(self) -> tuple[float, float, float]:
        """(short-term net, long-term net, estimated total tax) the year holds before this plan."""
        short = sum(p.gain for p in self.realised if p.term is Term.SHORT and p.sold_on in self.fy)
        long = sum(p.gain for p in self.realised if p.term is Term.LONG and p.sold_on in self.fy)
        total = year_tax(self.fy, self.realised, self.settings, self.declared).total
        return short + self.declared.short_term, long + self.declared.long_term, total

    @property
    def exemption(self) -> float:
        return ltcg_exemption(self.fy)


def build_context(
    ledger: Ledger,
    account: str,
    broker_quantities: Mapping[str, int],
    sold_on: dt.date,
    *,
    declared: DeclaredGains | None = None,
    settings: TaxSettings | None = None,
    fmv_2018: Mapping[str, float] | None = None,
) -> TaxContext:
    """The context of ``account`` from a replayed ``ledger`` and the broker's quantities now.

    A symbol the broker holds whose lots do not add up (or whose replay had a problem) goes to
    ``no_tax_data`` with the message; it keeps no lots, so the planner cannot use a guess.
    """
    checks = check_against_broker(account, ledger.all_lots(), broker_quantities)
    no_tax: dict[str, str] = {}
    lots: dict[str, tuple[Lot, ...]] = {}
    for symbol, check in checks.items():
        problem = ledger.problems.get((account, symbol))
        if problem:
            no_tax[symbol] = problem
        elif not check.ok:
            no_tax[symbol] = check.message
        elif check.broker_quantity:
            lots[symbol] = tuple(ledger.lots_of(account, symbol))
    fy = FinancialYear.of(sold_on)
    realised = tuple(
        p
        for s in ledger.sells
        if s.sold_on in fy and (s.account, s.symbol) not in ledger.problems
        for p in s.pieces
    )
    return TaxContext(
        account=account,
        sold_on=sold_on,
        lots=lots,
        no_tax_data=no_tax,
        realised=realised,
        declared=declared or DeclaredGains(),
        settings=settings or TaxSettings(),
        fmv_2018=dict(fmv_2018 or {}),
    )


def sellable_by_holding(context: TaxContext, symbol: str, min_holding_days: int) -> int | None:
    """Shares of ``symbol`` a sell may take when FIFO lots held fewer than ``min_holding_days``
    days may not be sold: the oldest lots up to the first one that is too young. None when the
    symbol has no lots (the per-symbol acquisition date then decides, as without tax data)."""
    if symbol not in context.lots:
        return None
    shares = 0
    for lot in context.lots[symbol]:
        if (context.sold_on - lot.acquired_on).days < min_holding_days:
            break
        shares += lot.quantity
    return shares


def sell_segments(context: TaxContext, symbol: str, price: float) -> list[Segment] | None:
    """The FIFO segments a sell of ``symbol`` at ``price`` consumes, oldest first; None when its
    tax is not estimated (no tax data, not equity, or a pre-2018 lot without its FMV)."""
    if not context.modelled(symbol):
        return None
    out = []
    for lot in context.lots[symbol]:
        try:
            cost, _ = grandfathered_cost(lot, context.sold_on, price, context.fmv_2018.get(symbol))
        except MissingFmv:
            return None
        term = term_of(lot.acquired_on, context.sold_on)
        out.append(Segment(lot.quantity, price - cost, term, lot.acquired_on))
    return out


@dataclass(frozen=True)
class OrderTax:
    """The estimate of one planned sell: the lots it takes and the tax it adds alone."""

    symbol: str
    quantity: int
    short_term_gain: float
    long_term_gain: float
    estimated_tax: float
    pieces: tuple[LotSale, ...]


@dataclass(frozen=True)
class PlanTax:
    """The estimate of a plan's sells: per order, the run's total and what the year has left."""

    orders: tuple[OrderTax, ...]
    total: float  # the tax the run adds to the year (all its sells together), rupees
    short_term_gains: float  # gross short-term gains of the run (losses not netted), rupees
    exemption_left_after: float
    no_tax_data: Mapping[str, str]

    def pieces(self) -> list[LotSale]:
        return [p for o in self.orders for p in o.pieces]


def estimate_plan(context: TaxContext, sells: Sequence[tuple[str, int, float]]) -> PlanTax:
    """The tax of ``sells`` ((symbol, shares, price)) given the year so far. A sell without tax
    data is listed in ``no_tax_data`` and adds nothing to the total (it is not guessed)."""
    orders: list[OrderTax] = []
    skipped: dict[str, str] = {}
    for symbol, quantity, price in sells:
        if not context.modelled(symbol) or sell_segments(context, symbol, price) is None:
            skipped[symbol] = context.why_not(symbol) or (
                f"{symbol}: a lot bought before 1 February 2018 and no FMV of 31 January 2018"
            )
            continue
        estimate = estimate_sell(
            context.lots[symbol],
            quantity,
            price,
            context.sold_on,
            context.realised,
            context.settings,
            context.declared,
            context.fmv_2018.get(symbol),
        )
        orders.append(
            OrderTax(
                symbol,
                quantity,
                estimate.short_term_gain,
                estimate.long_term_gain,
                estimate.estimated_tax,
                estimate.sell.pieces,
            )
        )
    pieces = [p for o in orders for p in o.pieces]
    before = year_tax(context.fy, context.realised, context.settings, context.declared)
    after = year_tax(context.fy, [*context.realised, *pieces], context.settings, context.declared)
    return PlanTax(
        orders=tuple(orders),
        total=after.total - before.total,
        short_term_gains=sum(p.gain for p in pieces if p.term is Term.SHORT and p.gain > 0),
        exemption_left_after=after.exemption_left,
        no_tax_data=skipped,
    )
