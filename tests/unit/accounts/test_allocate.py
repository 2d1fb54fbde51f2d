"""The allocation of a combined plan's orders to accounts: hand-checked examples."""

from __future__ import annotations

import itertools

import pytest

from rebalance.accounts import allocate as allocate_module
from rebalance.accounts.allocate import (
    SOLVER_HEURISTIC,
    SOLVER_OPTIMAL,
    Allocation,
    allocate_orders,
    check_allocation,
)
from rebalance.accounts.combine import AccountAvailability, combine_accounts
from rebalance.costs import broker_rates, order_charges
from rebalance.domain.market import Side
from rebalance.errors import InputDataError

from .support import TAKEN_AT, account, holding, order


def limits(name: str, broker: str, cash: float, **sellable: int) -> AccountAvailability:
    return AccountAvailability(name, broker, cash, True, dict(sellable), dict(sellable))


def parts(allocation: Allocation, symbol: str) -> dict[str, int]:
    return {o.account: o.quantity for o in allocation.orders if o.combined_symbol == symbol}


def test_a_buy_goes_to_zerodha_not_to_angelone_brokerage() -> None:
    """₹15,000 of INFY: Zerodha charges the levies only, ₹17.81 (STT 15 + stamp 2.25 + NSE
    0.4455 + SEBI 0.015 + IPFT 0.015 + GST 18% of 0.4755); AngelOne adds 0.1% brokerage, ₹15,
    plus its GST ₹2.70 = ₹35.51."""
    accounts = [limits("kite", "zerodha", 50_000), limits("angel", "angelone", 50_000)]
    result = allocate_orders([order("INFY", Side.BUY, 10, 1500.0)], accounts)
    assert result.solver == SOLVER_OPTIMAL
    assert parts(result, "INFY") == {"kite": 10}
    assert result.charges == pytest.approx(17.81109, abs=1e-6)
    angel = order_charges(15_000, Side.BUY, "NSE", broker_rates("angelone")).total
    assert angel == pytest.approx(35.51109, abs=1e-6)


def test_a_sell_goes_where_the_dp_charge_is_lower() -> None:
    """Selling ₹15,000 of INFY: Zerodha ₹30.90 (levies 15.56 + DP 15.34), AngelOne ₹56.86
    (levies 15.56 + brokerage 15 + GST 2.70 + DP 23.60)."""
    accounts = [limits("angel", "angelone", 0, INFY=40), limits("kite", "zerodha", 0, INFY=40)]
    result = allocate_orders([order("INFY", Side.SELL, 10, 1500.0)], accounts)
    assert parts(result, "INFY") == {"kite": 10}
    assert result.charges == pytest.approx(30.90109, abs=1e-6)


def test_a_sell_beyond_one_account_is_split_where_it_costs_least() -> None:
    """Neither account holds 50: Zerodha's 30 and AngelOne's 20 (brokerage 0.1% of ₹10,000 =
    ₹10) beat 20 and 30 (₹15 of brokerage): the cheaper account takes all it may."""
    accounts = [limits("kite", "zerodha", 0, ITC=30), limits("angel", "angelone", 0, ITC=30)]
    result = allocate_orders([order("ITC", Side.SELL, 50, 500.0)], accounts)
    assert parts(result, "ITC") == {"kite": 30, "angel": 20}
    expected = order_charges(15_000, Side.SELL, "NSE", broker_rates("zerodha")).total
    expected += order_charges(10_000, Side.SELL, "NSE", broker_rates("angelone")).total
    assert result.charges == pytest.approx(expected)


def test_cash_is_a_hard_limit_and_a_split_that_saves_brokerage_is_taken() -> None:
    """Zerodha has ₹5,000: 3 shares of ₹1,500 fit, 4 do not. Buying those 3 there cuts
    AngelOne's brokerage from ₹15 to ₹10.50 (x 1.18 with GST), worth a second order."""
    accounts = [limits("kite", "zerodha", 5_000), limits("angel", "angelone", 100_000)]
    result = allocate_orders([order("INFY", Side.BUY, 10, 1500.0)], accounts)
    assert parts(result, "INFY") == {"kite": 3, "angel": 7}
    assert (
        check_allocation(
            result, [order("INFY", Side.BUY, 10, 1500.0)], accounts, use_sell_proceeds=True
        )
        == []
    )


def test_no_split_without_a_saving_fewer_orders_break_the_tie() -> None:
    accounts = [limits("kite", "zerodha", 100_000), limits("kite2", "zerodha", 100_000)]
    result = allocate_orders([order("TCS", Side.BUY, 20, 3500.0)], accounts)
    assert len(result.orders) == 1
    assert sum(parts(result, "TCS").values()) == 20


def test_sell_proceeds_fund_buys_only_inside_their_account_and_only_when_allowed() -> None:
    accounts = [limits("kite", "zerodha", 0, INFY=20), limits("angel", "angelone", 1_000)]
    orders = [order("INFY", Side.SELL, 20, 1500.0), order("TCS", Side.BUY, 5, 3500.0)]
    result = allocate_orders(orders, accounts)
    assert parts(result, "TCS") == {"kite": 5}  # funded by kite's own INFY sale
    without = allocate_orders(orders, accounts, use_sell_proceeds=False)
    assert parts(without, "INFY") == {"kite": 20}
    assert parts(without, "TCS") == {}
    (short,) = without.shortfalls
    assert (short.symbol, short.planned, short.allocated) == ("TCS", 5, 0)
    assert "cash only" in short.reason
    assert "kite ₹0.00" in short.reason


def test_too_little_cash_anywhere_gives_the_largest_part_and_says_why() -> None:
    accounts = [limits("a", "zerodha", 3_000), limits("b", "zerodha", 3_000)]
    orders = [order("LT", Side.BUY, 10, 1000.0)]
    result = allocate_orders(orders, accounts)
    assert parts(result, "LT") == {"a": 2, "b": 2}  # 3 shares + charges exceed ₹3,000
    (short,) = result.shortfalls
    assert (short.planned, short.allocated) == (10, 4)
    assert "funded inside one account" in short.reason
    assert not result.complete
    rates = broker_rates("zerodha")
    assert 3_000 + order_charges(3_000, Side.BUY, "NSE", rates).total > 3_000


def test_a_sell_beyond_the_sellable_quantity_is_cut_with_each_accounts_figure() -> None:
    accounts = [limits("kite", "zerodha", 0, HDFCBANK=12), limits("angel", "angelone", 0)]
    result = allocate_orders([order("HDFCBANK", Side.SELL, 30, 1700.0)], accounts)
    assert parts(result, "HDFCBANK") == {"kite": 12}
    (short,) = result.shortfalls
    assert short.reason == "sellable today: kite 12, angel 0 = 12 of 30 shares"


def test_the_depository_authorisation_caps_what_an_account_may_sell() -> None:
    """50 sellable but 10 authorised today (CDSL TPIN): the allocation sells 10 there."""
    combined = combine_accounts(
        [
            account("kite", "zerodha", 0.0, holding("INFY", 50, 1500.0, authorised=10)),
            account("angel", "angelone", 0.0, holding("INFY", 30, 1500.0)),
        ],
        taken_at=TAKEN_AT,
    )
    assert combined.account("kite").sellable == {"INFY": 10}
    result = allocate_orders([order("INFY", Side.SELL, 45, 1500.0)], combined.accounts)
    assert parts(result, "INFY") == {"kite": 10, "angel": 30}
    assert result.shortfalls[0].reason == "sellable today: kite 10, angel 30 = 40 of 45 shares"


def test_an_account_order_carries_the_accounts_own_symbol() -> None:
    combined = combine_accounts(
        [
            account("kite", "zerodha", 0.0, holding("LTIM", 10, 5000.0, isin="INE214T01019")),
            account("angel", "angelone", 0.0, holding("MINDTREE", 10, 5000.0, isin="INE214T01019")),
        ],
        taken_at=TAKEN_AT,
        target_symbols=["LTIM"],
    )
    result = allocate_orders([order("LTIM", Side.SELL, 15, 5000.0)], combined.accounts)
    assert {(o.account, o.symbol, o.combined_symbol) for o in result.orders} == {
        ("kite", "LTIM", "LTIM"),
        ("angel", "MINDTREE", "LTIM"),
    }


def test_the_solver_failing_leaves_the_greedy_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("HiGHS crashed")

    monkeypatch.setattr(allocate_module, "milp", broken)
    accounts = [limits("kite", "zerodha", 5_000, INFY=4), limits("angel", "angelone", 100_000)]
    orders = [order("INFY", Side.SELL, 4, 1500.0), order("TCS", Side.BUY, 10, 3500.0)]
    result = allocate_orders(orders, accounts)
    assert result.solver == SOLVER_HEURISTIC
    assert "the solver failed (RuntimeError: HiGHS crashed)" in result.notes[0]
    assert check_allocation(result, orders, accounts, use_sell_proceeds=True) == []
    assert result.complete


def test_a_second_order_of_one_symbol_and_side_is_refused() -> None:
    orders = [order("INFY", Side.BUY, 1, 1500.0), order("INFY", Side.BUY, 2, 1500.0)]
    with pytest.raises(InputDataError, match=r"order 1 \(INFY\): a second BUY order"):
        allocate_orders(orders, [limits("kite", "zerodha", 1e6)])


@pytest.mark.parametrize("proceeds", [True, False])
def test_least_charges_against_every_split_of_a_small_plan(proceeds: bool) -> None:
    """Brute force over every whole-share split of a sell and a buy between a Zerodha and an
    AngelOne account: no full allocation within the limits is cheaper than the solver's."""
    accounts = [
        limits("kite", "zerodha", 9_000, SBIN=6),
        limits("angel", "angelone", 4_000, SBIN=5),
    ]
    orders = [order("SBIN", Side.SELL, 8, 800.0), order("ITC", Side.BUY, 12, 450.0)]
    result = allocate_orders(orders, accounts, use_sell_proceeds=proceeds)
    assert result.complete
    best = float("inf")
    for sold, bought in itertools.product(range(9), range(13)):
        split = {"SBIN": (sold, 8 - sold), "ITC": (bought, 12 - bought)}
        if sold > 6 or 8 - sold > 5:
            continue
        charges, feasible = 0.0, True
        for index, a in enumerate(accounts):
            rates = broker_rates(a.broker)
            sell = split["SBIN"][index] * 800.0
            buy = split["ITC"][index] * 450.0
            sell_charges = order_charges(sell, Side.SELL, "NSE", rates).total
            buy_charges = order_charges(buy, Side.BUY, "NSE", rates).total
            funds = a.cash + (sell - sell_charges if proceeds else 0.0)
            feasible &= buy + buy_charges <= funds - 0.01
            charges += sell_charges + buy_charges
        if feasible:
            best = min(best, charges)
    assert result.charges == pytest.approx(best, abs=1e-6)


def test_an_account_never_ends_below_zero_by_a_sell_that_costs_more_than_it_brings() -> None:
    """Found by the property test: 1 share at ₹12.50 pays a ₹15.34 DP charge. With no cash the
    sell would leave the account ₹2.85 in debit: it is a shortfall; with ₹100 it is placed."""
    orders = [order("IDEA", Side.SELL, 1, 12.5)]
    broke = allocate_orders(orders, [limits("kite", "zerodha", 0.0, IDEA=1)])
    assert broke.orders == ()
    assert "exceed its proceeds" in broke.shortfalls[0].reason
    funded = allocate_orders(orders, [limits("kite", "zerodha", 100.0, IDEA=1)])
    assert parts(funded, "IDEA") == {"kite": 1}
    assert funded.splits[0].cash_after == pytest.approx(100.0 + 12.5 - funded.charges)


def test_a_fallback_beyond_a_limit_is_never_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    """The last guard: if both the solver and the fallback gave an allocation beyond a limit,
    nothing is allocated and every order is a shortfall with the check's words in the notes."""

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("HiGHS crashed")

    def reckless(orders: list[object], accounts: list[object], *args: object) -> list[list[int]]:
        return [[9] * len(accounts) for _ in orders]  # 9 shares from every account

    monkeypatch.setattr(allocate_module, "milp", broken)
    monkeypatch.setattr(allocate_module, "_greedy", reckless)
    accounts = [limits("kite", "zerodha", 0, INFY=4), limits("angel", "angelone", 0, INFY=4)]
    orders = [order("INFY", Side.SELL, 8, 1500.0)]
    result = allocate_orders(orders, accounts)
    assert result.orders == ()
    assert [(s.symbol, s.planned, s.allocated) for s in result.shortfalls] == [("INFY", 8, 0)]
    assert "kite: sells 9 INFY, 4 sellable" in result.notes[-1]


def test_the_allocation_hash_changes_with_any_part() -> None:
    accounts = [limits("kite", "zerodha", 5_000), limits("angel", "angelone", 100_000)]
    one = allocate_orders([order("INFY", Side.BUY, 10, 1500.0)], accounts)
    same = allocate_orders([order("INFY", Side.BUY, 10, 1500.0)], accounts)
    other = allocate_orders([order("INFY", Side.BUY, 9, 1500.0)], accounts)
    assert one.allocation_hash == same.allocation_hash
    assert one.allocation_hash != other.allocation_hash
    assert one.to_dict()["allocation_hash"] == one.allocation_hash
