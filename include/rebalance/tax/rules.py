"""The dated rules of capital-gains tax on listed Indian equity, each with its source.

One table, read by sale date (the rate in force on the day of the transfer decides), so a year
that straddles a change (FY 2024-25, the 23 July 2024 Budget) is taxed piece by piece. Sources
and the dates they were checked are in docs/tax.md; change a rule here and there together.

Rates are fractions (0.2 = 20%); amounts are rupees. Nothing here is tax advice.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum


class Term(StrEnum):
    """Short-term (held 12 months or less) or long-term (held more than 12 months)."""

    SHORT = "short"
    LONG = "long"


@dataclass(frozen=True)
class RateRegime:
    """Rates for sales on or after ``starts`` (until the next regime starts)."""

    starts: dt.date
    stcg_rate: float
    ltcg_rate: float
    source: str


#: Sales before this day are not modelled: until 31 March 2018 long-term gains on listed equity
#: were exempt (s.10(38)), and this tool does not compute years that old.
FIRST_MODELLED_SALE = dt.date(2018, 4, 1)

#: Listed equity shares and units of equity-oriented funds, STT paid, by sale date.
REGIMES: tuple[RateRegime, ...] = (
    RateRegime(
        starts=FIRST_MODELLED_SALE,
        stcg_rate=0.15,
        ltcg_rate=0.10,
        source="Income-tax Act 1961 s.111A (15%) and s.112A (10%, Finance Act 2018, "
        "from 1 April 2018)",
    ),
    RateRegime(
        starts=dt.date(2024, 7, 23),
        stcg_rate=0.20,
        ltcg_rate=0.125,
        source="Finance (No. 2) Act 2024 amending s.111A and s.112A for transfers on or after "
        "23 July 2024; the same rates in the Income-tax Act 2025 from 1 April 2026",
    ),
)

#: The LTCG a person may realise in a financial year before s.112A taxes it, by the first FY
#: (start year) it applies to. From FY 2024-25 the ₹1.25 lakh limit covers the whole year's
#: long-term gains, those taxed at 10% and at 12.5% together (s.112A(2) proviso).
LTCG_EXEMPTION_BY_FY: tuple[tuple[int, float], ...] = ((2018, 100_000.0), (2024, 125_000.0))

#: Grandfathering (s.55(2)(ac)): shares acquired before this day take as cost
#: max(actual cost, min(FMV on 31 January 2018, sale price)).
GRANDFATHER_ACQUIRED_BEFORE = dt.date(2018, 2, 1)
GRANDFATHER_FMV_DATE = dt.date(2018, 1, 31)

#: Health and Education Cess on income tax plus surcharge (Finance Act 2018 onwards).
CESS_RATE = 0.04
#: The surcharge on tax on s.111A/s.112A gains never exceeds 15% (Finance (No. 2) Act 2019 as
#: amended by the Taxation Laws (Amendment) Act 2019). Which rate applies depends on the person's
#: total income, which this tool does not know: the user gives it (default 0).
SURCHARGE_CAP = 0.15

#: Units that are not equity shares or equity-oriented fund units for tax, with the reason. Their
#: gains are not taxed at the equity rates, so this tool does not estimate them ("tax not
#: modelled"). A default; the user may replace or extend it.
NOT_MODELLED_DEFAULT: dict[str, str] = {
    "GOLDBEES": "gold ETF: short-term gains at the slab rate, long-term (after 12 months) at "
    "12.5% under s.112 without the ₹1.25 lakh exemption; not the equity rules",
    "SILVERBEES": "silver ETF: short-term gains at the slab rate, long-term (after 12 months) at "
    "12.5% under s.112 without the ₹1.25 lakh exemption; not the equity rules",
    "LIQUIDBEES": "liquid (debt) ETF: gains are taxed at the person's slab rate, not at the "
    "equity rates",
    "GILT5YBEES": "gilt (debt) ETF: gains are taxed at the person's slab rate, not at the "
    "equity rates",
}


def regime_for(sold_on: dt.date) -> RateRegime:
    """The rates in force for a sale on ``sold_on``; ValueError before FIRST_MODELLED_SALE."""
    if sold_on < FIRST_MODELLED_SALE:
        raise ValueError(
            f"sale on {sold_on.isoformat()}: sales before {FIRST_MODELLED_SALE.isoformat()} are "
            "not modelled (long-term gains were exempt under s.10(38) then)"
        )
    chosen = REGIMES[0]
    for regime in REGIMES:
        if sold_on >= regime.starts:
            chosen = regime
    return chosen


def rate_for(term: Term, sold_on: dt.date) -> float:
    """The tax rate (fraction) on a ``term`` gain from a sale on ``sold_on``."""
    regime = regime_for(sold_on)
    return regime.stcg_rate if term is Term.SHORT else regime.ltcg_rate


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus whole calendar months; the 29-31st clamp to the month's last day."""
    month_index = day.month - 1 + months
    year = day.year + month_index // 12
    month = month_index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def term_of(acquired_on: dt.date, sold_on: dt.date) -> Term:
    """Long-term when held for more than 12 months (s.2(42A)), by trade dates (Circular 704).

    Bought on 10 March 2025: sold on 10 March 2026 is short-term (exactly 12 months), sold on
    11 March 2026 is long-term.
    """
    if sold_on < acquired_on:
        raise ValueError(
            f"sale on {sold_on.isoformat()} before the acquisition on {acquired_on.isoformat()}"
        )
    return Term.LONG if sold_on > add_months(acquired_on, 12) else Term.SHORT


@dataclass(frozen=True, order=True)
class FinancialYear:
    """An Indian financial year, 1 April ``start_year`` to 31 March ``start_year + 1``."""

    start_year: int

    @property
    def label(self) -> str:
        return f"{self.start_year}-{(self.start_year + 1) % 100:02d}"

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.start_year, 4, 1)

    @property
    def last_day(self) -> dt.date:
        return dt.date(self.start_year + 1, 3, 31)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, dt.date) and self.first_day <= day <= self.last_day

    @classmethod
    def of(cls, day: dt.date) -> FinancialYear:
        return cls(day.year if day.month >= 4 else day.year - 1)

    @classmethod
    def parse(cls, text: str) -> FinancialYear:
        """``2026-27`` (or ``2026-2027``). Raises ValueError with the expected form."""
        match = re.fullmatch(r"\s*(\d{4})-(\d{2}|\d{4})\s*", text)
        if match:
            start = int(match.group(1))
            end = match.group(2)
            expected = f"{(start + 1) % 100:02d}" if len(end) == 2 else str(start + 1)
            if end == expected:
                return cls(start)
        raise ValueError(f"financial year {text!r}: expected the form 2026-27")

    def __str__(self) -> str:
        return self.label


def ltcg_exemption(fy: FinancialYear) -> float:
    """The s.112A exemption (rupees of long-term gains per year) for ``fy``."""
    amount = 0.0
    for first_year, limit in LTCG_EXEMPTION_BY_FY:
        if fy.start_year >= first_year:
            amount = limit
    return amount


@dataclass(frozen=True)
class TaxSettings:
    """What the estimate needs beyond the trades: the surcharge rate and the non-equity list.

    ``surcharge_pct`` is a percent (10 means 10%), as the person's total income sets it; it is
    capped at 15% for these gains. ``not_modelled`` maps symbol -> why its tax is not estimated.
    """

    surcharge_pct: float = 0.0
    not_modelled: tuple[tuple[str, str], ...] = tuple(NOT_MODELLED_DEFAULT.items())

    def __post_init__(self) -> None:
        if not 0 <= self.surcharge_pct <= 100:
            raise ValueError(f"surcharge_pct: must be between 0 and 100, got {self.surcharge_pct}")

    @property
    def surcharge_rate(self) -> float:
        """The surcharge as a fraction, after the 15% cap on s.111A/s.112A gains."""
        return min(self.surcharge_pct / 100, SURCHARGE_CAP)

    def not_modelled_reason(self, symbol: str) -> str | None:
        """Why ``symbol``'s tax is not estimated, or None when it is equity."""
        return dict(self.not_modelled).get(symbol.upper())
