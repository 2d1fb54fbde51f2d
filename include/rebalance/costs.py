"""Estimated Indian delivery (CNC) charges per order, per broker, from one rates table.

Every rate carries where it comes from and when it was checked. The figures are *estimates* for a
preview: contract notes round STT and stamp duty to the rupee and some levies change by circular,
so re-check the sources below when a rate looks stale (search for ``checked=``).

Rates are fractions of the order's notional (0.001 = 0.1%) unless the name says rupees.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rebalance.brokers.base import Side

_CHECKED = date(2026, 11, 25)


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


_ZERODHA_CHARGES = "zerodha.com/charges (equity delivery column)"
_ANGELONE_CHARGES = "angelone.in/exchange-transaction-charges (stock investments column)"

STATUTORY = StatutoryRates(
    stt=Rate(0.001, f"{_ZERODHA_CHARGES}; {_ANGELONE_CHARGES}: 0.1% on buy & sell"),
    stamp_duty_buy=Rate(0.00015, f"{_ZERODHA_CHARGES}: 0.015% or ₹1500/crore on buy side"),
    sebi_fee=Rate(10 / 1e7, f"{_ZERODHA_CHARGES}: ₹10/crore"),
    exchange_txn={
        "NSE": Rate(
            0.0000297, f"{_ZERODHA_CHARGES}; {_ANGELONE_CHARGES}: NSE 0.00297% (from 2024-10-01)"
        ),
        "BSE": Rate(0.0000375, f"{_ZERODHA_CHARGES}: BSE 0.00375% (groups A/B)"),
    },
    ipft={
        "NSE": Rate(0.000001, f"{_ANGELONE_CHARGES}: IPFT NSE 0.0001% (₹10/crore)"),
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
            13.5 * 1.18,
            "support.zerodha.com 'What do DP charges mean?': ₹13.5 + 18% GST per scrip sold",
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


def order_charges(notional: float, side: Side, exchange: str, rates: BrokerRates) -> Charges:
    """Estimated charges of one delivery order of ``notional`` rupees (0 for no order).

    The DP charge is counted once per sell order: the planner makes at most one order per symbol,
    and the depository charges once per scrip sold per day.
    """
    if notional <= 0:
        return Charges(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    brokerage = 0.0
    if rates.brokerage_cap_inr.value > 0:
        brokerage = min(rates.brokerage_cap_inr.value, rates.brokerage_pct.value * notional)
        brokerage = max(brokerage, rates.brokerage_min_inr.value)
    exchange_txn = STATUTORY.exchange_txn[exchange].value * notional
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
        dp_charge=0.0 if is_buy else rates.dp_charge_inr.value,
    )


def charge_total(notional: float, side: Side, exchange: str, rates: BrokerRates) -> float:
    """``order_charges(...).total``: the planner calls this in its inner loop."""
    return order_charges(notional, side, exchange, rates).total


def proportional_rate(side: Side, exchange: str, rates: BrokerRates) -> float:
    """An upper bound of the charges per rupee traded, leaving out the fixed DP charge and the
    minimum brokerage: used to size orders before their exact charges are known."""
    levies = (
        STATUTORY.exchange_txn[exchange].value
        + STATUTORY.sebi_fee.value
        + STATUTORY.ipft[exchange].value
        + rates.brokerage_pct.value
    )
    stamp = STATUTORY.stamp_duty_buy.value if side is Side.BUY else 0.0
    return STATUTORY.stt.value + stamp + levies * (1 + STATUTORY.gst.value)
