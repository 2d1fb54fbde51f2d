"""The charges table against the brokers' and exchanges' published figures (sources and dates in
docs/planner.md, "Charges"). Figures are worked by hand from the published rates, not taken from
our emulators."""

from __future__ import annotations

import logging

import pytest

from rebalance.costs import (
    BSE_GROUP_RATES,
    broker_rates,
    bse_txn_rate,
    charge_total,
    order_charges,
    proportional_rate,
    with_scrip_groups,
)
from rebalance.domain.market import Side

LAKH = 100_000.0


def test_zerodha_dp_charge_is_13_plus_gst_per_scrip_per_sell_day() -> None:
    # support.zerodha.com, "DP charges for BTST trades": ₹13 + 18% GST per stock per day.
    sell = order_charges(LAKH, Side.SELL, "NSE", broker_rates("zerodha"))
    assert sell.dp_charge == 15.34
    # A second order of the same scrip the same day (a re-pricing round): no second DP charge.
    again = order_charges(LAKH, Side.SELL, "NSE", broker_rates("zerodha"), dp_charge=False)
    assert again.dp_charge == 0
    assert sell.total - again.total == pytest.approx(15.34)


def test_nse_transaction_charge_is_0_00307_percent_in_all() -> None:
    # NSE 0.00297% + IPFT 0.0001% (₹10/crore) = ₹3.07 on ₹1 lakh; GST 18% on it and SEBI's ₹0.10.
    buy = order_charges(LAKH, Side.BUY, "NSE", broker_rates("zerodha"))
    assert buy.exchange_txn + buy.ipft == pytest.approx(3.07)
    assert buy.gst == pytest.approx(0.18 * (3.07 + 0.10))
    # Zerodha, ₹1 lakh delivery buy on NSE: STT 100 + stamp 15 + txn 3.07 + SEBI 0.10 + GST 0.5706.
    assert buy.total == pytest.approx(118.7406)
    sell = order_charges(LAKH, Side.SELL, "NSE", broker_rates("zerodha"))
    assert sell.total == pytest.approx(100 + 3.07 + 0.10 + 0.5706 + 15.34)


@pytest.mark.parametrize(
    ("group", "on_a_lakh"),
    [
        ("A", 3.75),  # ₹375 / crore
        ("B", 3.75),
        ("X", 100.0),  # ₹10,000 / crore
        ("XT", 100.0),
        ("Z", 100.0),
        ("ZP", 100.0),
        ("P", 1000.0),  # ₹1,00,000 / crore
        ("R", 1000.0),
        ("SS", 1000.0),
        ("ST", 1000.0),
        ("M", 2.75),  # ₹275 / crore
        ("T", 2.75),
        ("z", 100.0),  # case does not matter
    ],
)
def test_bse_transaction_charge_by_scrip_group(group: str, on_a_lakh: float) -> None:
    charges = order_charges(
        LAKH, Side.BUY, "BSE", broker_rates("zerodha"), scrip_group=group, symbol="SOMESCRIP"
    )
    assert charges.exchange_txn == pytest.approx(on_a_lakh)
    assert charges.ipft == 0


def test_bse_without_a_group_is_charged_as_group_a_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="rebalance.costs"):
        total = charge_total(LAKH, Side.BUY, "BSE", broker_rates("zerodha"), symbol="NOGROUPCO")
        bse_txn_rate("Q9", "ODDGROUPCO")
    assert total == pytest.approx(100 + 15 + 3.75 + 0.10 + 0.18 * 3.85)
    assert "no BSE scrip group for NOGROUPCO" in caplog.text
    assert "unknown BSE scrip group 'Q9' for ODDGROUPCO" in caplog.text


def test_every_group_of_the_exchange_table_is_known() -> None:
    # BSE's equity transaction-fee page and AngelOne's charges page list these groups.
    listed = [
        "A",
        "B",
        "E",
        "F",
        "FC",
        "G",
        "GC",
        "I",
        "W",
        "T",
        "M",
        "MT",
        "MS",
        "TS",
        "IF",
        "IT",
        "X",
        "XC",
        "XD",
        "XT",
        "Z",
        "ZP",
        "P",
        "R",
        "SS",
        "ST",
    ]
    assert sorted(BSE_GROUP_RATES) == sorted(listed)


def test_angelone_brokerage_and_dp() -> None:
    # angelone.in pricing from 2024-11-01: ₹20 or 0.1% per executed order, lower; minimum ₹2;
    # DP ₹20 + GST per scrip sold.
    rates = broker_rates("angelone")
    assert order_charges(LAKH, Side.SELL, "NSE", rates).brokerage == 20
    assert order_charges(5_000, Side.BUY, "NSE", rates).brokerage == 5
    assert order_charges(1_000, Side.BUY, "NSE", rates).brokerage == 2
    assert order_charges(LAKH, Side.SELL, "NSE", rates).dp_charge == pytest.approx(23.6)


def test_proportional_rate_bounds_the_variable_charges() -> None:
    rates = broker_rates("zerodha")
    for exchange, group in (("NSE", None), ("BSE", "A"), ("BSE", "Z")):
        exact = order_charges(LAKH, Side.BUY, exchange, rates, scrip_group=group).total
        assert (
            proportional_rate(Side.BUY, exchange, rates, scrip_group=group) * LAKH >= exact - 1e-9
        )


def _bse_portfolio(groups: object) -> dict[str, object]:
    return {
        "name": "BSE book",
        "exchange": "BSE",
        "targets": {"ALPHA": 50, "BETA": 50},
        "accounts": [{"name": "paper", "broker": "paper", "holdings_file": "h.csv"}],
        "execution": {"bse_scrip_groups": groups},
    }


def test_portfolio_sets_bse_scrip_groups_and_warns_for_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from rebalance.portfolio import _warn_missing_scrip_groups, parse_portfolio

    _warn_missing_scrip_groups.cache_clear()
    with caplog.at_level(logging.WARNING, logger="rebalance.portfolio"):
        portfolio = parse_portfolio(_bse_portfolio({"ALPHA": "z"}), "bse.yaml", "bse")
        parse_portfolio(_bse_portfolio({"ALPHA": "z"}), "bse.yaml", "bse")  # a second parse
    assert portfolio.execution.bse_scrip_groups == {"ALPHA": "Z"}
    assert portfolio.symbols_without_scrip_group() == ["BETA"]
    # once a process, not at every parse of the DAG files
    assert caplog.text.count("execution.bse_scrip_groups gives no group for BETA") == 1
    # The rates carry the groups: ALPHA at Z's 0.1%, BETA (no group) at A's 0.00375%.
    rates = with_scrip_groups(broker_rates("zerodha"), portfolio.execution.bse_scrip_groups)
    alpha = order_charges(LAKH, Side.BUY, "BSE", rates, symbol="ALPHA")
    beta = order_charges(LAKH, Side.BUY, "BSE", rates, symbol="BETA")
    assert alpha.exchange_txn == pytest.approx(100.0)
    assert beta.exchange_txn == pytest.approx(3.75)


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ({"ALPHA": "Q9"}, "execution.bse_scrip_groups: ALPHA: 'Q9' is not a BSE scrip group"),
        ({"GAMMA": "A"}, "execution.bse_scrip_groups: GAMMA not among the targets"),
    ],
)
def test_bad_bse_scrip_groups_name_the_field(groups: dict[str, str], message: str) -> None:
    from rebalance.errors import ConfigError
    from rebalance.portfolio import parse_portfolio

    with pytest.raises(ConfigError) as caught:
        parse_portfolio(_bse_portfolio(groups), "bse.yaml", "bse")
    assert "bse.yaml" in str(caught.value)
    assert message in str(caught.value)


def test_exchange_levies_match_a_published_zerodha_contract_note() -> None:
    """A Zerodha contract note published on Scribd (document 794587952, "Contract Note
    18375000", trade date 13 Nov 2024, NSE capital market): buy 2 ZERODHAAMC-LIQUIDCASE at
    ₹105.34 = ₹210.68. Its levy columns: exchange transaction charges ₹0.01, SEBI turnover
    fees ₹0.00, IPFT ₹0.00 (a column of its own), taxable value of supply ₹0.01, IGST ₹0.00;
    net ₹210.69. Each levy is rounded to the paisa on the note.

    Only the exchange levies are comparable: the security is a liquid ETF (no STT on its
    purchase, a different stamp-duty rate), which our equity-delivery table does not model. The
    rates of that date are today's (NSE 0.00297% and IPFT ₹10/crore from 1 Oct 2024; SEBI
    ₹10/crore; GST 18%). No published equity-delivery contract note with line items was found
    for either broker (docs/brokers.md, "Charges checked against published figures")."""
    charges = order_charges(210.68, Side.BUY, "NSE", broker_rates("zerodha"))
    assert round(charges.exchange_txn, 2) == 0.01
    assert round(charges.sebi_fee, 2) == 0.00
    assert round(charges.ipft, 2) == 0.00
    assert round(charges.brokerage + charges.exchange_txn + charges.sebi_fee, 2) == 0.01
    assert round(charges.gst, 2) == 0.00
    levies = charges.exchange_txn + charges.sebi_fee + charges.ipft + charges.gst
    assert round(210.68 + round(levies, 2), 2) == 210.69
