"""Several portfolios in one account: ledgers, fills, reconciliation and a person's resolution."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalance.accounts.ledger import OUTSIDE, AccountLedger, EntryKind
from rebalance.domain.market import Side
from rebalance.errors import InputDataError

from .support import TAKEN_AT, holding

LATER = TAKEN_AT + timedelta(days=1)
BROKER = {"INFY": 100, "TCS": 20, "ITC": 50}


def opened() -> AccountLedger:
    """Core (60 INFY, 10 TCS, ₹50,000) and Momentum (30 INFY, ₹20,000) in one Zerodha account
    holding 100 INFY, 20 TCS and 50 ITC with ₹1,00,000: the rest is outside both."""
    return AccountLedger.open(
        "kite",
        {"core": ({"INFY": 60, "TCS": 10}, 50_000.0), "momentum": ({"INFY": 30}, 20_000.0)},
        BROKER,
        100_000.0,
        at=TAKEN_AT,
        by="asha",
    )


def test_opening_splits_the_account_and_the_rest_is_outside() -> None:
    ledger = opened()
    assert ledger.portfolios == ("core", "momentum", OUTSIDE)
    assert ledger.shares("core") == {"INFY": 60, "TCS": 10}
    assert ledger.shares(OUTSIDE) == {"INFY": 10, "ITC": 50, "TCS": 10}
    assert ledger.cash(OUTSIDE) == 30_000.0
    assert ledger.reconcile(BROKER, 100_000.0).clean


def test_seeds_above_what_the_broker_holds_are_refused() -> None:
    with pytest.raises(InputDataError) as error:
        AccountLedger.open(
            "kite",
            {"core": ({"INFY": 80}, 0.0), "momentum": ({"INFY": 30}, 0.0)},
            BROKER,
            0.0,
            at=TAKEN_AT,
            by="asha",
        )
    assert error.value.problems == ["INFY: seeds 110 (core 80, momentum 30) > 100 held"]


def test_a_fill_moves_only_its_portfolio_and_is_counted_once() -> None:
    ledger = opened().record_fill(
        "momentum",
        tag="QNOA93EMN28C000",
        symbol="ITC",
        side=Side.BUY,
        quantity=20,
        price=450.0,
        charges=10.5,
        at=LATER,
    )
    assert ledger.shares("momentum") == {"INFY": 30, "ITC": 20}
    assert ledger.cash("momentum") == pytest.approx(20_000 - 9_000 - 10.5)
    assert ledger.shares("core") == {"INFY": 60, "TCS": 10}
    again = ledger.record_fill(
        "momentum",
        tag="QNOA93EMN28C000",
        symbol="ITC",
        side=Side.BUY,
        quantity=20,
        price=450.0,
        charges=10.5,
        at=LATER,
    )
    assert again == ledger
    with pytest.raises(InputDataError, match="fill QNOA93EMN28C000: already recorded"):
        ledger.record_fill(
            "core",
            tag="QNOA93EMN28C000",
            symbol="ITC",
            side=Side.BUY,
            quantity=5,
            price=450.0,
            charges=1.0,
            at=LATER,
        )
    broker_after = {**BROKER, "ITC": 70}
    assert ledger.reconcile(broker_after, 100_000.0 - 9_010.5).clean


def test_a_portfolio_cannot_sell_what_its_ledger_does_not_hold() -> None:
    with pytest.raises(InputDataError, match="momentum sells 40 INFY, its ledger holds 30"):
        opened().record_fill(
            "momentum",
            tag="T1",
            symbol="INFY",
            side=Side.SELL,
            quantity=40,
            price=1500.0,
            charges=20.0,
            at=LATER,
        )


def test_a_manual_trade_is_listed_with_every_ledger_and_the_broker_never_assigned() -> None:
    ledger = opened()
    result = ledger.reconcile({**BROKER, "INFY": 90}, 115_000.0)
    assert not result.clean
    infy, cash = result.differences
    assert infy.symbol == "INFY"
    assert dict(infy.ledgers) == {"core": 60, "momentum": 30, OUTSIDE: 10}
    assert (infy.broker, infy.difference) == (90, -10)
    assert infy.describe() == (
        "INFY: the ledgers say 100 ((outside) 10, core 60, momentum 30), the broker says 90: "
        "-10 unexplained"
    )
    assert cash.symbol is None
    assert cash.difference == 15_000.0
    assert ledger.shares("core") == {"INFY": 60, "TCS": 10}  # nothing moved by itself


def test_a_bonus_is_resolved_by_a_person_and_the_split_must_explain_all_of_it() -> None:
    ledger = opened()
    (bonus,) = ledger.reconcile({**BROKER, "TCS": 40}, 100_000.0).differences  # 1:1 bonus
    with pytest.raises(InputDataError, match="the parts add up to 15, the difference is \\+20"):
        ledger.resolve(bonus, {"core": 10, OUTSIDE: 5}, by="asha", reason="TCS 1:1 bonus", at=LATER)
    with pytest.raises(InputDataError, match="names who decided"):
        ledger.resolve(bonus, {"core": 10, OUTSIDE: 10}, by="", reason="", at=LATER)
    with pytest.raises(InputDataError, match="unknown portfolio"):
        ledger.resolve(bonus, {"cor": 10, OUTSIDE: 10}, by="asha", reason="bonus", at=LATER)
    resolved = ledger.resolve(
        bonus, {"core": 10, OUTSIDE: 10}, by="asha", reason="TCS 1:1 bonus", at=LATER
    )
    assert resolved.shares("core")["TCS"] == 20
    assert resolved.reconcile({**BROKER, "TCS": 40}, 100_000.0).clean
    adjustments = [e for e in resolved.entries if e.kind is EntryKind.ADJUSTMENT]
    assert {(e.portfolio, e.shares, e.by, e.note) for e in adjustments} == {
        ("core", 10, "asha", "TCS 1:1 bonus"),
        (OUTSIDE, 10, "asha", "TCS 1:1 bonus"),
    }


def test_cash_within_a_rupee_is_rounding_beyond_it_a_difference_to_resolve() -> None:
    ledger = opened()
    assert ledger.reconcile(BROKER, 100_000.6).clean
    (dividend,) = ledger.reconcile(BROKER, 100_600.0).differences
    resolved = ledger.resolve(
        dividend, {"core": 600.0}, by="asha", reason="INFY dividend ₹10/share", at=LATER
    )
    assert resolved.cash("core") == 50_600.0
    assert resolved.reconcile(BROKER, 100_600.0).clean
    assert ledger.reconcile(BROKER, None).clean  # cash unknown: not compared


def test_a_portfolio_may_sell_its_shares_less_every_unsellable_share_of_the_account() -> None:
    ledger = opened()
    sellable = {"INFY": 85, "TCS": 20, "ITC": 50}  # 15 INFY pledged or unsettled
    core = ledger.sellable("core", BROKER, sellable)
    momentum = ledger.sellable("momentum", BROKER, sellable)
    assert core == {"INFY": 45, "TCS": 10}
    assert momentum == {"INFY": 15}
    assert core["INFY"] + momentum["INFY"] <= sellable["INFY"]
    disputed = ledger.sellable("core", {**BROKER, "INFY": 90}, sellable)
    assert disputed["INFY"] == 0  # an open difference: nothing sold until a person resolves it


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 50), min_size=1, max_size=4),
    st.integers(0, 30),
    st.integers(0, 200),
)
def test_the_portfolios_together_never_sell_beyond_the_brokers_sellable(
    seeds: list[int], outside: int, blocked: int
) -> None:
    """Whatever the split of an account's shares between portfolios and however many of them
    cannot be sold today, the portfolios' sellable quantities add up to at most the broker's."""
    held = sum(seeds) + outside
    broker_sellable = max(0, held - blocked)
    ledger = AccountLedger.open(
        "kite",
        {f"p{k}": ({"INFY": q}, 0.0) for k, q in enumerate(seeds)},
        {"INFY": held},
        0.0,
        at=TAKEN_AT,
        by="asha",
    )
    total = sum(
        ledger.sellable(p, {"INFY": held}, {"INFY": broker_sellable}).get("INFY", 0)
        for p in ledger.portfolios
        if p != OUTSIDE
    )
    assert total <= broker_sellable


def test_a_ledger_round_trips_through_json() -> None:
    ledger = opened().record_fill(
        "core",
        tag="QNOA93EMN28C001",
        symbol="TCS",
        side=Side.SELL,
        quantity=4,
        price=3500.0,
        charges=18.5,
        at=LATER,
    )
    again = AccountLedger.from_records(json.loads(json.dumps(ledger.to_records())))
    assert again == ledger
    assert again.cash("core") == pytest.approx(50_000 + 14_000 - 18.5)


def test_a_portfolios_holdings_for_the_planner_carry_its_own_shares_and_sellable() -> None:
    broker = [
        holding("INFY", 100, 1890.0, sellable=85, isin="INE009A01021"),
        holding("TCS", 20, 3450.0, authorised=12),
        holding("ITC", 50, 468.0),
    ]
    rows = {h.symbol: h for h in opened().portfolio_holdings("core", broker)}
    assert set(rows) == {"INFY", "TCS"}
    assert (rows["INFY"].quantity, rows["INFY"].sellable_today) == (60, 45)
    assert (rows["TCS"].quantity, rows["TCS"].sellable_today) == (10, 2)  # 8 not authorised
    assert (rows["INFY"].last_price, rows["INFY"].isin) == (1890.0, "INE009A01021")
