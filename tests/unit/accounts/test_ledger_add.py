"""A portfolio added to an account that already has ledgers takes its part from the outside
ledger; never more than is there."""

from __future__ import annotations

import pytest

from rebalance.accounts.ledger import OUTSIDE, AccountLedger
from rebalance.errors import InputDataError

from .support import TAKEN_AT


def opened() -> AccountLedger:
    return AccountLedger.open(
        "kite", {"core": ({"INFY": 10}, 1000.0)}, {"INFY": 30, "TCS": 5}, 3000.0,
        at=TAKEN_AT, by="asha",
    )  # fmt: skip


def test_a_new_portfolio_takes_its_part_from_the_outside_ledger() -> None:
    ledger = opened().add_portfolio("satellite", {"INFY": 15, "TCS": 5}, 1500.0, at=TAKEN_AT,
                                    by="asha")  # fmt: skip
    assert ledger.shares("satellite") == {"INFY": 15, "TCS": 5}
    assert ledger.shares(OUTSIDE) == {"INFY": 5}
    assert ledger.cash(OUTSIDE) == pytest.approx(500.0)
    assert ledger.shares("core") == {"INFY": 10}
    assert ledger.reconcile({"INFY": 30, "TCS": 5}, 3000.0).clean


@pytest.mark.parametrize(
    ("shares", "cash", "message"),
    [
        ({"INFY": 21}, 0.0, "INFY: satellite takes 21, outside holds 20"),
        ({"TCS": -1}, 0.0, "TCS: satellite takes -1"),
        ({}, 2500.0, "cash: satellite takes ₹2,500.00, outside holds ₹2,000.00"),
    ],
)
def test_more_than_the_outside_ledger_holds_is_refused(
    shares: dict[str, int], cash: float, message: str
) -> None:
    with pytest.raises(InputDataError, match=message):
        opened().add_portfolio("satellite", shares, cash, at=TAKEN_AT, by="asha")


def test_a_portfolio_is_added_once() -> None:
    with pytest.raises(InputDataError, match="already has a ledger"):
        opened().add_portfolio("core", {}, 0.0, at=TAKEN_AT, by="asha")
