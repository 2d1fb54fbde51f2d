"""The broker's charges differ from the estimate: a cash difference within the charges
tolerance is settled automatically as a "charges difference" entry, never a share difference."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rebalance.accounts.ledger import (
    CHARGES_BY,
    CHARGES_DIFFERENCE,
    AccountLedger,
    EntryKind,
    charges_tolerance,
)
from rebalance.domain.market import Side
from rebalance.errors import InputDataError

from .support import TAKEN_AT

LATER = TAKEN_AT + timedelta(days=1)
BROKER = {"INFY": 100, "TCS": 20}


def traded() -> AccountLedger:
    """Core and Momentum share an account; each bought with estimated charges (₹30, ₹10)."""
    ledger = AccountLedger.open(
        "kite",
        {"core": ({"INFY": 60}, 50_000.0), "momentum": ({"INFY": 30}, 20_000.0)},
        BROKER,
        100_000.0,
        at=TAKEN_AT,
        by="asha",
    )
    ledger = ledger.record_fill("core", tag="T1", symbol="TCS", side=Side.BUY, quantity=5,
                                price=4_000.0, charges=30.0, at=LATER)  # fmt: skip
    return ledger.record_fill("momentum", tag="T2", symbol="TCS", side=Side.BUY, quantity=2,
                              price=4_000.0, charges=10.0, at=LATER)  # fmt: skip


def test_the_tolerance_is_ten_percent_of_the_estimate_or_fifty_rupees() -> None:
    assert charges_tolerance(0.0) == 50.0
    assert charges_tolerance(400.0) == 50.0
    assert charges_tolerance(2_000.0) == pytest.approx(200.0)


def test_a_cash_gap_within_the_tolerance_is_split_by_each_portfolio_estimate() -> None:
    ledger = traded()
    assert [f.ref for f in ledger.unsettled_fills()] == ["T1", "T2"]
    broker_cash = 100_000.0 - 28_000.0 - 40.0 - 45.0  # the broker debited ₹45 more
    (gap,) = ledger.reconcile(BROKER | {"TCS": 27}, broker_cash).differences
    assert gap.symbol is None
    assert gap.difference == pytest.approx(-45.0)

    settled = ledger.settle_charges(gap, {"core": 30.0, "momentum": 10.0}, at=LATER)

    added = settled.entries[len(ledger.entries) :]
    assert [(e.portfolio, e.kind, e.by, e.cash) for e in added] == [
        ("core", EntryKind.ADJUSTMENT, CHARGES_BY, -33.75),
        ("momentum", EntryKind.ADJUSTMENT, CHARGES_BY, -11.25),
    ]
    assert all(e.note.startswith(CHARGES_DIFFERENCE) for e in added)
    assert "charges estimated ₹30.00" in added[0].note
    assert "the account by ₹-45.00" in added[0].note
    assert settled.reconcile(BROKER | {"TCS": 27}, broker_cash).clean
    assert settled.unsettled_fills() == ()  # the next fills start a new estimate


def test_beyond_the_tolerance_or_for_shares_or_without_trades_is_refused() -> None:
    ledger = traded()
    (cash_gap,) = ledger.reconcile(BROKER | {"TCS": 27}, 100_000.0 - 28_040.0 - 60.0).differences
    with pytest.raises(InputDataError, match=r"beyond the charges tolerance ₹50\.00"):
        ledger.settle_charges(cash_gap, {"core": 30.0, "momentum": 10.0}, at=LATER)
    with pytest.raises(InputDataError, match="no fill with estimated charges"):
        ledger.settle_charges(cash_gap, {}, at=LATER)
    (shares_gap,) = ledger.reconcile(BROKER | {"TCS": 28}, 100_000.0 - 28_040.0).differences
    assert shares_gap.symbol == "TCS"
    with pytest.raises(InputDataError, match="a share difference is never a charge"):
        ledger.settle_charges(shares_gap, {"core": 30.0}, at=LATER)
