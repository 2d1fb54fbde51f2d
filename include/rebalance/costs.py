"""Estimated Indian delivery (CNC) charges per order, per broker, from one rates table.

Every rate carries where it comes from and when it was checked. The figures are *estimates* for a
preview: contract notes round STT and stamp duty to the rupee and some levies change by circular,
so re-check the sources below when a rate looks stale (search for ``checked=``).

Rates are fractions of the order's notional (0.001 = 0.1%) unless the name says rupees.

BSE's transaction charge depends on the scrip's group (A/B 0.00375%, X/XT/Z/ZP 0.1%, P/R/SS/ST
1%, ...: ``BSE_GROUP_RATES``). Neither broker's instrument data carries the group, so a BSE order
is charged by the group the caller passes (``scrip_group``), else by the portfolio's per-symbol
override carried in the rates (``execution.bse_scrip_groups``, ``with_scrip_groups``) and,
without one, at the A/B rate with a warning naming the symbol and that field.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from functools import cache

from rebalance.domain.market import Side

_CHECKED = date(2026, 12, 2)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rate:
    """One rate with its provenance."""

    value: float
    source: str
    checked: date = _CHECKED


@dataclass(frozen=True)
class StatutoryRates:
    """Levies that every broker passes on for equity delivery: the same at Zerodha and AngelOne."""

    stt: Rate  # both sides of a delivery trade
    stamp_duty_buy: Rate  # buy side only
    sebi_fee: Rate  # ₹10 per crore = 1e-6 of turnover
    exchange_txn: dict[str, Rate]  # by exchange, both sides
    ipft: dict[str, Rate]  # Investor Protection Fund Trust levy, by exchange, both sides
    gst: Rate  # on brokerage + exchange txn + SEBI fee + IPFT (not on STT or stamp duty)


@dataclass(frozen=True)
class BrokerRates:
    """What one broker adds: brokerage per order and the DP charge per scrip sold per day."""

    name: str
    brokerage_pct: Rate  # fraction of notional
    brokerage_cap_inr: Rate  # at most this many rupees per order (0 = no brokerage)
    brokerage_min_inr: Rate  # at least this many rupees per order when brokerage applies
    dp_charge_inr: Rate  # rupees per scrip sold per day, GST included
    # BSE scrip group by symbol (the portfolio's ``execution.bse_scrip_groups``): a tuple of
    # pairs so that the rates stay hashable.
    scrip_groups: tuple[tuple[str, str], ...] = ()

    def scrip_group(self, symbol: str) -> str | None:
        """The BSE scrip group set for ``symbol``, if any."""
        for name, group in self.scrip_groups:
            if name == symbol:
                return group
        return None


_ZERODHA_CHARGES = "zerodha.com/charges (equity delivery column)"
_ANGELONE_CHARGES = "angelone.in/exchange-transaction-charges (stock investments column)"
_BSE_TF = "bseindia.com/static/members/TFEquity.aspx (equity segment transaction fees)"

# BSE transaction charges by scrip group, fraction of turnover, both sides. A/B and the
# non-exclusive scrips of the other groups: ₹375/crore (from 2022-12-01); exclusive E, F, FC, G,
# GC, I, W, T and M, MT, MS, TS, IF, IT: ₹275/crore; X (XC/XD merged 2017-12-01), XT, Z, ZP:
# ₹10,000/crore (from 2016-01-01); P, R (physical settlement), SS, ST: ₹1,00,000/crore.
_BSE_GROUP_TEXT = {
    0.0000375: "₹375/crore (A, B and non-exclusive scrips)",
    0.0000275: "₹275/crore (exclusive scrips of E, F, FC, G, GC, I, W, T; M, MT, MS, TS, IF, IT)",
    0.001: "₹10,000/crore (X, XT, Z, ZP)",
    0.01: "₹1,00,000/crore (P, R, SS, ST)",
}
_BSE_GROUPS = {
    **dict.fromkeys(("A", "B"), 0.0000375),
    **dict.fromkeys(
        ("E", "F", "FC", "G", "GC", "I", "W", "T", "M", "MT", "MS", "TS", "IF", "IT"), 0.0000275
    ),
    **dict.fromkeys(("X", "XC", "XD", "XT", "Z", "ZP"), 0.001),
    **dict.fromkeys(("P", "R", "SS", "ST"), 0.01),
}
BSE_GROUP_RATES: dict[str, Rate] = {}  # filled below, once Rate exists
BSE_DEFAULT_GROUP = "A"

STATUTORY = StatutoryRates(
    stt=Rate(0.001, f"{_ZERODHA_CHARGES}; {_ANGELONE_CHARGES}: 0.1% on buy & sell"),
    stamp_duty_buy=Rate(0.00015, f"{_ZERODHA_CHARGES}: 0.015% or ₹1500/crore on buy side"),
    sebi_fee=Rate(10 / 1e7, f"{_ZERODHA_CHARGES}: ₹10/crore"),
    exchange_txn={
        "NSE": Rate(
            0.0000297,
            f"{_ZERODHA_CHARGES}; {_ANGELONE_CHARGES}: NSE 0.00297% (from 2024-10-01); with the "
            "IPFT levy 0.00307% in all",
        ),
        "BSE": Rate(0.0000375, f"{_BSE_TF}: groups A/B ₹375/crore (the default group)"),
    },
    ipft={
        "NSE": Rate(
            0.000001,
            f"{_ANGELONE_CHARGES}: IPFT NSE 0.0001% (₹10/crore, NSE press release 2023-03-24)",
        ),
        "BSE": Rate(0.0, "no separate BSE IPFT line on either broker's charges page"),
    },
    gst=Rate(0.18, f"{_ZERODHA_CHARGES}: 18% on (brokerage + SEBI charges + transaction charges)"),
)

BROKERS: dict[str, BrokerRates] = {
    "zerodha": BrokerRates(
        name="zerodha",
        brokerage_pct=Rate(0.0, f"{_ZERODHA_CHARGES}: zero brokerage on equity delivery"),
        brokerage_cap_inr=Rate(0.0, f"{_ZERODHA_CHARGES}: zero brokerage on equity delivery"),
        brokerage_min_inr=Rate(0.0, f"{_ZERODHA_CHARGES}: zero brokerage on equity delivery"),
        dp_charge_inr=Rate(
            round(13 * 1.18, 2),
            "support.zerodha.com 'DP charges for BTST trades': ₹13 + 18% GST = ₹15.34 per scrip "
            "per day sold (₹12.75 + GST for women first holders: not modelled)",
        ),
    ),
    "angelone": BrokerRates(
        name="angelone",
        brokerage_pct=Rate(
            0.001,
            "angelone.in/blog/pricing-update-2024-for-i-trade: ₹20 or 0.1%, lower, from 2024-11-01",
        ),
        brokerage_cap_inr=Rate(
            20.0, "angelone.in pricing update 2024: flat ₹20 per executed order"
        ),
        brokerage_min_inr=Rate(2.0, "angelone.in pricing update 2024: minimum brokerage ₹2"),
        dp_charge_inr=Rate(
            20.0 * 1.18, "angelone.in pricing update 2024: DP ₹20 + GST per equity ISIN debited"
        ),
    ),
}
for _group, _value in _BSE_GROUPS.items():
    BSE_GROUP_RATES[_group] = Rate(
        _value, f"{_BSE_TF}; {_ANGELONE_CHARGES}: {_BSE_GROUP_TEXT[_value]}"
    )


def bse_txn_rate(scrip_group: str | None, symbol: str = "", *, warn: bool = True) -> Rate:
    """BSE's transaction charge for ``scrip_group``; unknown or missing: group A with a warning.

    A wrong group can understate the charge a hundredfold (Z group is 0.1%), so the warning names
    the symbol and says where to set the group.
    """
    group = (scrip_group or "").strip().upper()
    if group in BSE_GROUP_RATES:
        return BSE_GROUP_RATES[group]
    if warn:
        _warn_group(symbol or "?", group)
    return BSE_GROUP_RATES[BSE_DEFAULT_GROUP]


@cache
def _warn_group(symbol: str, group: str) -> None:
    what = f"unknown BSE scrip group {group!r}" if group else "no BSE scrip group"
    log.warning(
        "%s for %s: charged at group A's 0.00375%%; set the symbol's group (A, B, X, Z, ...) "
        "in the portfolio's execution.bse_scrip_groups if it trades in another group",
        what,
        symbol,
    )


BROKERS["paper"] = BrokerRates(
    name="paper",
    brokerage_pct=BROKERS["zerodha"].brokerage_pct,
    brokerage_cap_inr=BROKERS["zerodha"].brokerage_cap_inr,
    brokerage_min_inr=BROKERS["zerodha"].brokerage_min_inr,
    dp_charge_inr=BROKERS["zerodha"].dp_charge_inr,
)


@dataclass(frozen=True)
class Charges:
    """The estimated charges of one order, rupees."""

    brokerage: float
    stt: float
    exchange_txn: float
    sebi_fee: float
    ipft: float
    stamp_duty: float
    gst: float
    dp_charge: float

    @property
    def total(self) -> float:
        return (
            self.brokerage
            + self.stt
            + self.exchange_txn
            + self.sebi_fee
            + self.ipft
            + self.stamp_duty
            + self.gst
            + self.dp_charge
        )

    def as_dict(self) -> dict[str, float]:
        return {
            "brokerage": self.brokerage,
            "stt": self.stt,
            "exchange_txn": self.exchange_txn,
            "sebi_fee": self.sebi_fee,
            "ipft": self.ipft,
            "stamp_duty": self.stamp_duty,
            "gst": self.gst,
            "dp_charge": self.dp_charge,
        }


def broker_rates(broker: str) -> BrokerRates:
    """The rates of ``broker`` (zerodha, angelone, paper). Raises KeyError naming the broker."""
    try:
        return BROKERS[broker]
    except KeyError:
        raise KeyError(
            f"no charges table for broker {broker!r}; known: {sorted(BROKERS)}"
        ) from None


def with_scrip_groups(rates: BrokerRates, groups: Mapping[str, str] | None) -> BrokerRates:
    """``rates`` carrying the portfolio's BSE scrip groups (symbol -> group) for its BSE orders."""
    if not groups:
        return rates
    return replace(rates, scrip_groups=tuple(sorted((s, g.upper()) for s, g in groups.items())))


def exchange_txn_rate(
    exchange: str, scrip_group: str | None = None, symbol: str = "", *, warn: bool = True
) -> float:
    """The exchange's transaction charge, fraction of turnover (BSE: by scrip group)."""
    if exchange == "BSE":
        return bse_txn_rate(scrip_group, symbol, warn=warn).value
    return STATUTORY.exchange_txn[exchange].value


def order_charges(
    notional: float,
    side: Side,
    exchange: str,
    rates: BrokerRates,
    *,
    scrip_group: str | None = None,
    symbol: str = "",
    dp_charge: bool = True,
) -> Charges:
    """Estimated charges of one delivery order of ``notional`` rupees (0 for no order).

    The DP charge is per scrip per day sold: counted on a sell unless ``dp_charge`` is False
    (a second order of a scrip already sold today, e.g. a re-pricing round). ``scrip_group``:
    the BSE group of the scrip (see ``bse_txn_rate``), by default the one ``rates`` carry for
    ``symbol``; ignored on NSE.
    """
    if notional <= 0:
        return Charges(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    if exchange == "BSE" and scrip_group is None and symbol:
        scrip_group = rates.scrip_group(symbol)
    brokerage = 0.0
    if rates.brokerage_cap_inr.value > 0:
        brokerage = min(rates.brokerage_cap_inr.value, rates.brokerage_pct.value * notional)
        brokerage = max(brokerage, rates.brokerage_min_inr.value)
    exchange_txn = exchange_txn_rate(exchange, scrip_group, symbol) * notional
    sebi = STATUTORY.sebi_fee.value * notional
    ipft = STATUTORY.ipft[exchange].value * notional
    is_buy = side is Side.BUY
    return Charges(
        brokerage=brokerage,
        stt=STATUTORY.stt.value * notional,
        exchange_txn=exchange_txn,
        sebi_fee=sebi,
        ipft=ipft,
        stamp_duty=STATUTORY.stamp_duty_buy.value * notional if is_buy else 0.0,
        gst=STATUTORY.gst.value * (brokerage + exchange_txn + sebi + ipft),
        dp_charge=0.0 if is_buy or not dp_charge else rates.dp_charge_inr.value,
    )


def charge_total(
    notional: float,
    side: Side,
    exchange: str,
    rates: BrokerRates,
    *,
    scrip_group: str | None = None,
    symbol: str = "",
) -> float:
    """``order_charges(...).total``: the planner calls this in its inner loop."""
    return order_charges(
        notional, side, exchange, rates, scrip_group=scrip_group, symbol=symbol
    ).total


def proportional_rate(
    side: Side, exchange: str, rates: BrokerRates, *, scrip_group: str | None = None
) -> float:
    """An upper bound of the charges per rupee traded, leaving out the fixed DP charge and the
    minimum brokerage: used to size orders before their exact charges are known."""
    levies = (
        exchange_txn_rate(exchange, scrip_group, warn=False)
        + STATUTORY.sebi_fee.value
        + STATUTORY.ipft[exchange].value
        + rates.brokerage_pct.value
    )
    stamp = STATUTORY.stamp_duty_buy.value if side is Side.BUY else 0.0
    return STATUTORY.stt.value + stamp + levies * (1 + STATUTORY.gst.value)
