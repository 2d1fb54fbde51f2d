"""A financial year's realised gains and estimated tax from a replayed ledger, and the estimate
of one more sell (the entry point the planner and the preview are meant to call).

A symbol whose lots cannot be trusted (a replay problem, or lots that do not add up to the
broker's quantity) has no tax data: its sells are left out of the year and it is listed with
why. Units on the "tax not modelled" list are left out the same way, with their reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rebalance.tax.gains import (
    DeclaredGains,
    LotSale,
    Sell,
    YearTax,
    realise,
    tax_per_sell,
    year_tax,
)
from rebalance.tax.lots import Lot, LotCheck, check_against_broker
from rebalance.tax.rules import FinancialYear, TaxSettings, Term
from rebalance.tax.tradebook import Ledger


def piece_dict(piece: LotSale) -> dict[str, object]:
    """JSON form of the part of a sell taken from one lot."""
    return {
        "acquired_on": piece.acquired_on.isoformat(),
        "quantity": piece.quantity,
        "holding_days": piece.holding_days,
        "term": str(piece.term),
        "cost_per_share": round(piece.cost_per_share, 4),
        "grandfathered": piece.grandfathered,
        "gain": round(piece.gain, 2),
    }


@dataclass(frozen=True)
class TaxReport:
    """Realised gains of ``fy`` by term, the exemption used and the estimated tax."""

    fy: FinancialYear
    year: YearTax
    sells: tuple[tuple[Sell, float], ...]
    no_tax_data: Mapping[str, str]
    not_modelled: Mapping[str, str]
    checks: tuple[LotCheck, ...]
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "fy": self.fy.label,
            "summary": self.year.to_dict(),
            "sells": [
                {
                    "account": s.account,
                    "symbol": s.symbol,
                    "sold_on": s.sold_on.isoformat(),
                    "quantity": s.quantity,
                    "price": round(s.price, 4),
                    "proceeds": round(s.proceeds, 2),
                    "cost": round(s.cost, 2),
                    "short_term_gain": round(s.gain_by_term(Term.SHORT), 2),
                    "long_term_gain": round(s.gain_by_term(Term.LONG), 2),
                    "estimated_tax": round(tax, 2),
                    "lots": [piece_dict(p) for p in s.pieces],
                }
                for s, tax in self.sells
            ],
            "no_tax_data": dict(self.no_tax_data),
            "tax_not_modelled": dict(self.not_modelled),
            "lot_checks": [
                {
                    "account": c.account,
                    "symbol": c.symbol,
                    "lots_quantity": c.lots_quantity,
                    "broker_quantity": c.broker_quantity,
                    "ok": c.ok,
                }
                for c in self.checks
            ],
            "notes": list(self.notes),
        }


def build_report(
    ledger: Ledger,
    fy: FinancialYear,
    settings: TaxSettings | None = None,
    declared: DeclaredGains | None = None,
    broker_quantities: Mapping[tuple[str, str], int] | None = None,
) -> TaxReport:
    """The report of ``fy`` from ``ledger``.

    ``broker_quantities`` ((account, symbol) -> shares the broker holds now), when given, is
    checked against the lots; a symbol that does not add up gets no tax data.
    """
    settings = settings or TaxSettings()
    no_tax: dict[str, str] = {symbol: why for (_, symbol), why in ledger.problems.items()}
    checks: list[LotCheck] = []
    if broker_quantities is not None:
        # only the accounts the broker's quantities cover: another account is not "held 0"
        for account in sorted({a for a, _ in broker_quantities}):
            held = {s: q for (a, s), q in broker_quantities.items() if a == account}
            for symbol, check in check_against_broker(account, ledger.all_lots(), held).items():
                checks.append(check)
                if not check.ok and symbol not in no_tax:
                    no_tax[symbol] = check.message
    not_modelled: dict[str, str] = {}
    kept: list[Sell] = []
    for sell in ledger.sells:
        reason = settings.not_modelled_reason(sell.symbol)
        if reason:
            not_modelled[sell.symbol] = f"tax not modelled: {reason}"
        elif sell.symbol not in no_tax and sell.sold_on in fy:
            kept.append(sell)
    for lot in ledger.all_lots():
        reason = settings.not_modelled_reason(lot.symbol)
        if reason:
            not_modelled[lot.symbol] = f"tax not modelled: {reason}"
    year = year_tax(fy, [p for s in kept for p in s.pieces], settings, declared)
    per_sell = tax_per_sell(kept, settings, {fy: declared} if declared else None)
    notes = list(year.notes)
    notes += [message for day, message in ledger.intraday if day in fy]
    if no_tax:
        notes.append(
            "the year's totals leave out the symbols without tax data: " + ", ".join(sorted(no_tax))
        )
    return TaxReport(
        fy=fy,
        year=year,
        sells=tuple(per_sell),
        no_tax_data=no_tax,
        not_modelled=not_modelled,
        checks=tuple(checks),
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class SellEstimate:
    """What selling ``quantity`` shares now would realise and add to the year's tax."""

    sell: Sell
    estimated_tax: float
    short_term_gain: float
    long_term_gain: float
    exemption_left_after: float


def estimate_sell(
    lots: Sequence[Lot],
    quantity: int,
    price: float,
    sold_on: dt.date,
    realised: Sequence[LotSale],
    settings: TaxSettings | None = None,
    declared: DeclaredGains | None = None,
    fmv_2018: float | None = None,
) -> SellEstimate:
    """The FIFO lots a planned sell consumes and the tax it adds, given the year's ``realised``
    pieces so far. Raises NotEnoughLots or MissingFmv (the symbol then has no tax data)."""
    fy = FinancialYear.of(sold_on)
    sell, _ = realise(lots, quantity, price, sold_on, fmv_2018=fmv_2018)
    before = year_tax(fy, realised, settings, declared)
    after = year_tax(fy, [*realised, *sell.pieces], settings, declared)
    return SellEstimate(
        sell=sell,
        estimated_tax=after.total - before.total,
        short_term_gain=sell.gain_by_term(Term.SHORT),
        long_term_gain=sell.gain_by_term(Term.LONG),
        exemption_left_after=after.exemption_left,
    )
