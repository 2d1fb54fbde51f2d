"""One snapshot across accounts: ISIN mapping, sellable and authorised quantities, cash."""

from __future__ import annotations

import math
from typing import Any

import pytest

from rebalance.accounts.combine import AccountHoldings, combine_accounts
from rebalance.domain.market import Quote
from rebalance.errors import InputDataError
from rebalance.planning import plan_rebalance
from rebalance.policy import Policy
from rebalance.snapshot import HoldingsSnapshot

from .support import TAKEN_AT, TODAY, account, holding

LTIM_ISIN = "INE214T01019"


def rows(snapshot: HoldingsSnapshot) -> dict[str, dict[str, Any]]:
    return {r["symbol"]: r for r in snapshot.positions.to_dict("records")}


def test_holdings_are_summed_per_security_and_sellable_is_what_may_be_sold_today() -> None:
    combined = combine_accounts(
        [
            account(
                "kite",
                "zerodha",
                10_000.0,
                holding("INFY", 40, 1500.0, sellable=30, authorised=12),
                holding("TCS", 5, 3500.0),
            ),
            account("angel", "angelone", 2_500.0, holding("INFY", 10, 1500.0, sellable=10)),
        ],
        taken_at=TAKEN_AT,
    )
    infy = rows(combined.snapshot)["INFY"]
    assert (infy["quantity"], infy["sellable_quantity"]) == (50, 22)  # 12 authorised + 10
    assert combined.snapshot.cash == 12_500.0
    assert combined.account("kite").sellable == {"INFY": 12, "TCS": 5}
    assert combined.account("angel").quantity == {"INFY": 10}
    kite_alone = rows(combined.per_account["kite"])
    assert kite_alone["INFY"]["sellable_quantity"] == 12
    assert combined.per_account["angel"].cash == 2_500.0


def test_isin_joins_two_spellings_and_each_account_keeps_its_own() -> None:
    combined = combine_accounts(
        [
            account("kite", "zerodha", 0.0, holding("LTIM", 10, 5000.0, isin=LTIM_ISIN)),
            account("angel", "angelone", 0.0, holding("MINDTREE", 4, 5010.0, isin=LTIM_ISIN)),
        ],
        taken_at=TAKEN_AT,
        target_symbols=["LTIM"],
    )
    assert list(rows(combined.snapshot)) == ["LTIM"]
    assert rows(combined.snapshot)["LTIM"]["quantity"] == 14
    assert combined.account("angel").own_symbol("LTIM") == "MINDTREE"
    assert combined.account("kite").own_symbol("LTIM") == "LTIM"
    assert any("MINDTREE joined to LTIM by ISIN INE214T01019" in n for n in combined.notes)


def test_a_holding_without_isin_joins_the_same_symbol_with_one() -> None:
    combined = combine_accounts(
        [
            account("kite", "zerodha", 0.0, holding("ITC", 10, 450.0, isin="INE154A01025")),
            account("angel", "angelone", 0.0, holding("ITC", 20, 450.0)),
        ],
        taken_at=TAKEN_AT,
    )
    itc = rows(combined.snapshot)["ITC"]
    assert (itc["quantity"], itc["isin"]) == (30, "INE154A01025")


def test_one_symbol_with_two_isins_is_refused_not_guessed() -> None:
    with pytest.raises(InputDataError) as error:
        combine_accounts(
            [
                account("kite", "zerodha", 0.0, holding("ABC", 1, 10.0, isin="INE000A01011")),
                account("angel", "angelone", 0.0, holding("ABC", 1, 10.0, isin="INE999Z01019")),
            ],
            taken_at=TAKEN_AT,
        )
    assert error.value.problems == [
        "ABC: ISIN INE000A01011 in kite but INE999Z01019 in angel; one symbol cannot be two "
        "securities"
    ]


def test_two_target_symbols_of_one_security_are_refused() -> None:
    with pytest.raises(InputDataError, match="targets LTIM, MINDTREE are one security"):
        combine_accounts(
            [
                account("kite", "zerodha", 0.0, holding("LTIM", 1, 10.0, isin=LTIM_ISIN)),
                account("angel", "angelone", 0.0, holding("MINDTREE", 1, 10.0, isin=LTIM_ISIN)),
            ],
            taken_at=TAKEN_AT,
            target_symbols=["LTIM", "MINDTREE"],
        )


@pytest.mark.parametrize(
    ("accounts", "problem"),
    [
        (
            [
                account(
                    "kite",
                    "zerodha",
                    0.0,
                    holding("LTIM", 1, 10.0, isin=LTIM_ISIN),
                    holding("MINDTREE", 1, 10.0, isin=LTIM_ISIN),
                ),
                account("angel", "angelone", 0.0),
            ],
            "kite: LTIM, MINDTREE are one security (ISIN INE214T01019) held twice in one account",
        ),
        ([account("kite", "zerodha", 0.0)], "accounts: the combined mode needs two or more, got 1"),
        (
            [account("kite", "zerodha", 0.0), account("kite", "angelone", 0.0)],
            "accounts: 'kite' appears twice",
        ),
        (
            [account("kite", "zerodha", -5.0), account("angel", "angelone", 0.0)],
            "kite, cash: must be a number >= 0, got -5.0",
        ),
        (
            [
                account("kite", "zerodha", 0.0, holding("A", 1, 1.0), holding("A", 2, 1.0)),
                account("angel", "angelone", 0.0),
            ],
            "kite, A: held twice in one account",
        ),
    ],
)
def test_bad_accounts_are_refused(accounts: list[AccountHoldings], problem: str) -> None:
    with pytest.raises(InputDataError) as error:
        combine_accounts(accounts, taken_at=TAKEN_AT)
    assert error.value.problems == [problem]


def test_unknown_cash_counts_as_none_and_says_so() -> None:
    combined = combine_accounts(
        [account("kite", "zerodha", None), account("angel", "angelone", 800.0)], taken_at=TAKEN_AT
    )
    assert combined.snapshot.cash == 800.0
    assert not combined.account("kite").cash_known
    assert "cash unknown in kite: counted as 0, funds no buy there" in combined.notes
    nothing = combine_accounts(
        [account("kite", "zerodha", None), account("angel", "angelone", None)], taken_at=TAKEN_AT
    )
    assert nothing.snapshot.cash is None


def test_targets_held_nowhere_get_a_row_at_the_quote_and_prices_come_from_one_source() -> None:
    combined = combine_accounts(
        [
            account("kite", "zerodha", 0.0, holding("INFY", 1, 1500.0)),
            account("angel", "angelone", 0.0, holding("INFY", 1, 1530.0)),
        ],
        taken_at=TAKEN_AT,
        quotes={"TCS": Quote("TCS", "NSE", 3500.0)},
        target_symbols=["INFY", "TCS", "ITC"],
    )
    table = rows(combined.snapshot)
    assert table["TCS"]["last_price"] == 3500.0
    assert table["ITC"]["last_price"] is None or math.isnan(table["ITC"]["last_price"])
    assert table["INFY"]["last_price"] == 1500.0  # the first account's, with a note
    assert rows(combined.per_account["angel"])["INFY"]["last_price"] == 1500.0
    assert rows(combined.per_account["angel"])["TCS"]["quantity"] == 0
    assert any(n.startswith("INFY: the accounts' last prices range") for n in combined.notes)


def test_the_existing_planner_plans_on_the_combined_snapshot() -> None:
    combined = combine_accounts(
        [
            account("kite", "zerodha", 5_000.0, holding("INFY", 100, 1500.0)),
            account("angel", "angelone", 5_000.0, holding("TCS", 10, 3500.0)),
        ],
        taken_at=TAKEN_AT,
    )
    plan = plan_rebalance(
        combined.snapshot,
        {"INFY": 0.5, "TCS": 0.5},
        Policy(rebalance_budget_pct=100, max_position_weight_pct=100),
        broker="angelone",
        today=TODAY,
    )
    sides = {o.symbol: (str(o.side), o.quantity) for o in plan.orders}
    assert sides["INFY"][0] == "SELL"
    assert sides["TCS"][0] == "BUY"
    assert sides["INFY"][1] <= 100
