"""Assign the combined plan's orders to accounts: a small mixed-integer program (HiGHS, through
``scipy.optimize.milp``), with a greedy fallback.

Hard limits, per account: a sell never exceeds what the account may sell today; buys (and their
charges) are funded inside the account, by its cash and, when ``use_sell_proceeds`` allows, by
its own sells' proceeds after their charges. Cash never moves between brokers.

The choice, lexicographically:

1. fill as much of the plan as the limits allow (fewest rupees left undone);
2. then the least charges (``costs.order_charges`` per broker: the levies on every rupee, the DP
   charge per scrip sold per account, AngelOne's brokerage of 0.1% between ₹2 and ₹20 per order,
   GST on brokerage);
3. then the fewest orders (an order may be split across accounts, in whole shares, only when that
   pays: a split of a Zerodha buy costs nothing more in charges, so this tie-break keeps it whole).

The brokerage ``max(min, min(cap, pct x notional))`` is concave above the minimum, so it takes a
binary per order part ("the cap applies"); the DP charge takes the part's 0/1 "has an order".
Every allocation, the solver's or the fallback's, is checked exactly by ``check_allocation``
before it is returned; a solver answer that fails the check (or no answer) gives the fallback.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from rebalance.accounts.combine import AccountAvailability
from rebalance.costs import STATUTORY, BrokerRates, Rate, broker_rates, order_charges
from rebalance.domain.market import Side
from rebalance.errors import InputDataError
from rebalance.plan import PlannedOrder

SOURCE = "combined plan"
SOLVER_OPTIMAL = "milp_optimal"
SOLVER_TIME_CAP = "milp_time_cap"  # HiGHS's best within the time cap, checked like any other
SOLVER_HEURISTIC = "heuristic"
ORDER_WEIGHT = 1e-3  # rupees per order: the tie-break, far below any real charge difference
CASH_MARGIN_INR = 0.01  # the program keeps a paisa of each account's cash against float noise
TOLERANCE_INR = 1e-6  # what ``check_allocation`` forgives


@dataclass(frozen=True)
class AccountOrder:
    """One account's part of a combined order. ``symbol`` is the account's own symbol,
    ``combined_symbol`` the plan's; ``charges`` the part's estimated charges, rupees."""

    account: str
    broker: str
    symbol: str
    combined_symbol: str
    exchange: str
    side: Side
    quantity: int
    price: float
    notional: float
    charges: float

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "side": str(self.side)}


@dataclass(frozen=True)
class Shortfall:
    """Shares of a combined order that no account can take, and why (a sentence)."""

    symbol: str
    side: Side
    planned: int
    allocated: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "side": str(self.side)}


@dataclass(frozen=True)
class AccountSplit:
    """One account's share of the allocation, rupees. ``cash_after`` = cash - buys - their
    charges + sells - their charges (None when the account's cash is unknown)."""

    account: str
    broker: str
    orders: int
    buy_value: float
    sell_value: float
    charges: float
    cash_before: float | None
    cash_after: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Allocation:
    """The combined plan split per account: the orders each account's lane places, what could
    not be placed anywhere, each account's totals, which method chose it, and notes."""

    orders: tuple[AccountOrder, ...]
    shortfalls: tuple[Shortfall, ...]
    splits: tuple[AccountSplit, ...]
    solver: str
    notes: tuple[str, ...] = ()

    @property
    def charges(self) -> float:
        """Estimated charges of every part, rupees."""
        return sum(o.charges for o in self.orders)

    @property
    def complete(self) -> bool:
        """True when every share of the plan has an account."""
        return not self.shortfalls

    def for_account(self, account: str) -> tuple[AccountOrder, ...]:
        """The orders of one account's lane, sells first (their proceeds fund the buys)."""
        return tuple(o for o in self.orders if o.account == account)

    @property
    def allocation_hash(self) -> str:
        """SHA-256 of every part (account, symbol, side, quantity, price): with the plan's hash,
        what an approval of the combined plan approves, so a lane places only its approved part."""
        payload = [
            [o.account, o.symbol, o.exchange, str(o.side), o.quantity, round(o.price, 4)]
            for o in self.orders
        ]
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "allocation_hash": self.allocation_hash,
            "orders": [o.to_dict() for o in self.orders],
            "shortfalls": [s.to_dict() for s in self.shortfalls],
            "splits": [s.to_dict() for s in self.splits],
            "solver": self.solver,
            "notes": list(self.notes),
            "charges": round(self.charges, 2),
        }


@dataclass(frozen=True)
class _Part:
    """A column group of the program: order ``order`` (index) in account ``account`` (index)."""

    order: int
    account: int
    bound: int  # most shares this account can take of the order
    x: int  # column: shares
    y: int  # column: 0/1 has an order
    b: int | None  # column: brokerage (rupees, before GST), when the broker charges one
    z: int | None  # column: 0/1 the brokerage cap applies


def allocate_orders(
    orders: Sequence[PlannedOrder],
    accounts: Sequence[AccountAvailability],
    *,
    use_sell_proceeds: bool = True,
    scrip_groups: Mapping[str, str] | None = None,
    time_limit: float = 10.0,
    use_solver: bool = True,
) -> Allocation:
    """Assign ``orders`` (the combined plan's, combined symbols) to ``accounts``.

    ``scrip_groups``: BSE scrip groups by symbol, for BSE orders' transaction charge. The result
    is never beyond an account's cash or sellable quantity; what does not fit is a shortfall
    with its reason. ``use_solver`` False goes straight to the greedy fallback (benchmarks
    compare the two). Raises InputDataError for an order twice in the plan, or an unknown broker.
    """
    _check_orders(orders)
    groups = dict(scrip_groups or {})
    try:
        rates = [broker_rates(a.broker) for a in accounts]
    except KeyError as exc:
        raise InputDataError(SOURCE, [str(exc.args[0])]) from None
    if not orders:
        return _result(orders, accounts, [], rates, groups, use_sell_proceeds, SOLVER_OPTIMAL, [])
    notes: list[str] = []
    solved = None
    if use_solver:
        try:
            solved = _solve(orders, accounts, rates, groups, use_sell_proceeds, time_limit)
        except Exception as exc:  # any solver failure has the same remedy: the fallback
            notes.append(f"the solver failed ({type(exc).__name__}: {exc})")
    if solved is not None:
        quantities, status = solved
        result = _result(orders, accounts, quantities, rates, groups, use_sell_proceeds, status, [])
        problems = check_allocation(result, orders, accounts, use_sell_proceeds=use_sell_proceeds)
        if not problems:
            return result
        notes.append("the solver's allocation failed the check: " + "; ".join(problems))
    elif use_solver and not notes:
        notes.append("the solver found no allocation in its time cap")
    quantities = _greedy(orders, accounts, rates, groups, use_sell_proceeds)
    notes.append("allocated by the greedy fallback (cheapest account first)")
    result = _result(
        orders, accounts, quantities, rates, groups, use_sell_proceeds, SOLVER_HEURISTIC, notes
    )
    problems = check_allocation(result, orders, accounts, use_sell_proceeds=use_sell_proceeds)
    if not problems:
        return result
    # Never an order beyond a limit: nothing is allocated and every order says why.
    notes.append("the fallback's allocation failed the check too: " + "; ".join(problems))
    nothing = [[0] * len(accounts) for _ in orders]
    return _result(
        orders, accounts, nothing, rates, groups, use_sell_proceeds, SOLVER_HEURISTIC, notes
    )


def check_allocation(
    allocation: Allocation,
    orders: Sequence[PlannedOrder],
    accounts: Sequence[AccountAvailability],
    *,
    use_sell_proceeds: bool,
) -> list[str]:
    """Every hard limit the allocation breaks, in words (empty when it is sound): shares beyond
    the plan, a sell beyond an account's sellable quantity, an account whose buys and charges
    exceed its cash plus its own sells' proceeds (an account never ends below zero, even by a
    sell whose charges exceed its proceeds), buys beyond the cash alone when sells may not fund
    them, an account that does not exist."""
    problems: list[str] = []
    by_name = {a.account: a for a in accounts}
    planned = {(o.symbol, o.side): o.quantity for o in orders}
    given: dict[tuple[str, Side], int] = {}
    spend: dict[str, float] = {}  # buys and their charges
    proceeds: dict[str, float] = {}  # sells less their charges
    for part in allocation.orders:
        account = by_name.get(part.account)
        if account is None:
            problems.append(f"{part.account}: not one of the accounts")
            continue
        key = (part.combined_symbol, part.side)
        given[key] = given.get(key, 0) + part.quantity
        if part.quantity <= 0:
            problems.append(f"{part.account} {part.symbol}: quantity {part.quantity}")
        if part.side is Side.SELL:
            sellable = account.sellable.get(part.combined_symbol, 0)
            if part.quantity > sellable:
                problems.append(
                    f"{part.account}: sells {part.quantity} {part.symbol}, {sellable} sellable"
                )
            proceeds[part.account] = proceeds.get(part.account, 0.0) + part.notional - part.charges
        else:
            spend[part.account] = spend.get(part.account, 0.0) + part.notional + part.charges
    for key, quantity in given.items():
        if quantity > planned.get(key, 0):
            problems.append(
                f"{key[1]} {key[0]}: {quantity} allocated, {planned.get(key, 0)} planned"
            )
    for name, account in by_name.items():
        spent, got = spend.get(name, 0.0), proceeds.get(name, 0.0)
        if spent - got > account.cash + TOLERANCE_INR:
            problems.append(
                f"{name}: buys and charges ₹{spent:,.2f} less sells ₹{got:,.2f} exceed its cash "
                f"₹{account.cash:,.2f}"
            )
        if not use_sell_proceeds and spent > account.cash + TOLERANCE_INR:
            problems.append(
                f"{name}: buys need ₹{spent:,.2f}, its cash is ₹{account.cash:,.2f} (sells may "
                "not fund buys)"
            )
    return problems


def _check_orders(orders: Sequence[PlannedOrder]) -> None:
    problems = []
    seen: set[tuple[str, Side]] = set()
    for index, o in enumerate(orders):
        if (o.symbol, o.side) in seen:
            problems.append(f"order {index} ({o.symbol}): a second {o.side} order of the symbol")
        seen.add((o.symbol, o.side))
        if o.quantity <= 0 or not (math.isfinite(o.price) and o.price > 0):
            problems.append(
                f"order {index} ({o.symbol}): quantity {o.quantity} and price {o.price} must be > 0"
            )
    if problems:
        raise InputDataError(SOURCE, problems)


def _levies(side: Side, exchange: str, symbol: str, group: str | None, rates: BrokerRates) -> float:
    """Charges per rupee that every order pays whatever its size (no brokerage, no DP)."""
    linear = replace(rates, brokerage_cap_inr=Rate(0.0, "levies only"))
    return (
        order_charges(
            1e6, side, exchange, linear, scrip_group=group, symbol=symbol, dp_charge=False
        ).total
        / 1e6
    )


def _solve(
    orders: Sequence[PlannedOrder],
    accounts: Sequence[AccountAvailability],
    rates: Sequence[BrokerRates],
    groups: Mapping[str, str],
    use_sell_proceeds: bool,
    time_limit: float,
) -> tuple[list[list[int]], str] | None:
    """The program's quantities per order and account (None when HiGHS gives no solution)."""
    columns = _Columns()
    parts: list[_Part] = []
    for i, o in enumerate(orders):
        for a, account in enumerate(accounts):
            bound = (
                min(o.quantity, account.sellable.get(o.symbol, 0))
                if o.side is Side.SELL
                else o.quantity
            )
            if bound <= 0:
                continue
            x = columns.add(0, bound, integer=True)
            y = columns.add(0, 1, integer=True)
            b = z = None
            if rates[a].brokerage_cap_inr.value > 0:
                b = columns.add(0, math.inf, integer=False)
                z = columns.add(0, 1, integer=True)
            parts.append(_Part(i, a, bound, x, y, b, z))
    short = [columns.add(0, o.quantity, integer=False) for o in orders]  # shares left undone
    rows = _Rows()
    for i, o in enumerate(orders):
        filled = {p.x: 1.0 for p in parts if p.order == i}
        rows.add({**filled, short[i]: 1.0}, o.quantity, o.quantity)
    # per account: the whole day's net outflow (buys + every charge - sells) within its cash,
    # and, when sells may not fund buys, the buys and their charges within its cash as well
    net: dict[int, dict[int, float]] = {a: {} for a in range(len(accounts))}
    buys: dict[int, dict[int, float]] = {a: {} for a in range(len(accounts))}
    cost = np.zeros(columns.count)
    for p in parts:
        o, r = orders[p.order], rates[p.account]
        rows.add({p.x: 1.0, p.y: -float(p.bound)}, -math.inf, 0.0)
        terms = [(p.x, o.price * _levies(o.side, o.exchange, o.symbol, groups.get(o.symbol), r))]
        if o.side is Side.SELL:
            terms.append((p.y, r.dp_charge_inr.value))
        if p.b is not None and p.z is not None:
            pct, cap = r.brokerage_pct.value, r.brokerage_cap_inr.value
            low = r.brokerage_min_inr.value
            rows.add({p.b: 1.0, p.y: -low}, 0.0, math.inf)
            rows.add({p.b: 1.0, p.z: -cap}, 0.0, math.inf)
            rows.add({p.b: 1.0, p.x: -pct * o.price, p.z: pct * o.price * p.bound}, 0.0, math.inf)
            rows.add({p.z: 1.0, p.y: -1.0}, -math.inf, 0.0)
            terms.append((p.b, 1.0 + STATUTORY.gst.value))
        for column, coefficient in terms:
            cost[column] += coefficient
        cost[p.y] += ORDER_WEIGHT
        sign = 1.0 if o.side is Side.BUY else -1.0
        for column, coefficient in [*terms, (p.x, sign * o.price)]:
            _add(net[p.account], column, coefficient)
            if o.side is Side.BUY:
                _add(buys[p.account], column, coefficient)
    for a, account in enumerate(accounts):
        cap = max(0.0, account.cash - CASH_MARGIN_INR)
        if net[a]:
            rows.add(net[a], -math.inf, cap)
        if buys[a] and not use_sell_proceeds:
            rows.add(buys[a], -math.inf, cap)
    undone = np.zeros(columns.count)
    for i, o in enumerate(orders):
        undone[short[i]] = o.price
    first = columns.solve(undone, rows, time_limit)
    if first is None:
        return None
    least_undone = float(undone @ first[0])
    smallest = min(o.price for o in orders)
    # the second solve keeps the first's fill (within half the cheapest share of float noise)
    at_most = least_undone + smallest / 2
    rows.add({short[i]: o.price for i, o in enumerate(orders)}, -math.inf, at_most)
    second = columns.solve(cost, rows, time_limit)
    solution, status = second if second is not None else first
    quantities = [[0] * len(accounts) for _ in orders]
    for p in parts:
        quantities[p.order][p.account] = round(float(solution[p.x]))
    return quantities, status


def _add(row: dict[int, float], column: int, coefficient: float) -> None:
    row[column] = row.get(column, 0.0) + coefficient


class _Columns:
    """The program's variables (bounds, integrality) and its solve."""

    def __init__(self) -> None:
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.integer: list[int] = []

    @property
    def count(self) -> int:
        return len(self.lower)

    def add(self, lower: float, upper: float, *, integer: bool) -> int:
        self.lower.append(lower)
        self.upper.append(upper)
        self.integer.append(1 if integer else 0)
        return len(self.lower) - 1

    def solve(
        self, cost: np.ndarray, rows: _Rows, time_limit: float
    ) -> tuple[np.ndarray, str] | None:
        matrix = coo_matrix(
            (rows.vals, (rows.rows, rows.cols)), shape=(len(rows.lower), self.count)
        ).tocsr()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = milp(
                cost,
                integrality=np.asarray(self.integer),
                bounds=Bounds(np.asarray(self.lower), np.asarray(self.upper)),
                constraints=LinearConstraint(
                    matrix, np.asarray(rows.lower), np.asarray(rows.upper)
                ),
                options={"time_limit": time_limit, "mip_rel_gap": 1e-9},
            )
        if result.x is None:
            return None
        return np.asarray(result.x), SOLVER_OPTIMAL if result.status == 0 else SOLVER_TIME_CAP


class _Rows:
    """The program's constraints, as a sparse matrix in triplets."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []
        self.lower: list[float] = []
        self.upper: list[float] = []

    def add(self, coefficients: Mapping[int, float], lower: float, upper: float) -> None:
        index = len(self.lower)
        for column, value in coefficients.items():
            self.rows.append(index)
            self.cols.append(column)
            self.vals.append(value)
        self.lower.append(lower)
        self.upper.append(upper)


def _charges(
    order: PlannedOrder, quantity: int, rates: BrokerRates, groups: Mapping[str, str]
) -> float:
    return order_charges(
        quantity * order.price,
        order.side,
        order.exchange,
        rates,
        scrip_group=groups.get(order.symbol),
        symbol=order.symbol,
    ).total


def _greedy(
    orders: Sequence[PlannedOrder],
    accounts: Sequence[AccountAvailability],
    rates: Sequence[BrokerRates],
    groups: Mapping[str, str],
    use_sell_proceeds: bool,
) -> list[list[int]]:
    """The fallback: sells first to the accounts where they cost least, then each buy (largest
    first) whole in the cheapest account that can fund it, else split by what each can fund."""
    quantities = [[0] * len(accounts) for _ in orders]
    net = [a.cash for a in accounts]  # cash after the parts so far: never below 0
    cash = [a.cash for a in accounts]  # cash left for buys when sells may not fund them
    by_size = sorted(range(len(orders)), key=lambda i: -orders[i].quantity * orders[i].price)
    for i in (i for i in by_size if orders[i].side is Side.SELL):
        o, left = orders[i], orders[i].quantity

        def sell_cost(a: int, o: PlannedOrder = o, left: int = left) -> float:
            n = min(left, accounts[a].sellable.get(o.symbol, 0))
            return _charges(o, n, rates[a], groups) / n if n else math.inf

        for a in sorted(range(len(accounts)), key=sell_cost):
            n = min(left, accounts[a].sellable.get(o.symbol, 0))
            if n <= 0:
                continue
            received = n * o.price - _charges(o, n, rates[a], groups)
            if net[a] + received < 0:  # charges above proceeds, and no cash to pay them
                continue
            quantities[i][a] = n
            left -= n
            net[a] += received
    for i in (i for i in by_size if orders[i].side is Side.BUY):
        o, left = orders[i], orders[i].quantity

        def funds(a: int) -> float:
            return net[a] if use_sell_proceeds else min(net[a], cash[a])

        whole = [
            a
            for a in range(len(accounts))
            if o.quantity * o.price + _charges(o, o.quantity, rates[a], groups) <= funds(a)
        ]
        if whole:
            chosen = min(whole, key=lambda a: _charges(o, o.quantity, rates[a], groups))
            order_of_accounts = [chosen]
        else:
            order_of_accounts = sorted(range(len(accounts)), key=lambda a: -funds(a))
        for a in order_of_accounts:
            n = _affordable(o, left, funds(a), rates[a], groups)
            if n <= 0:
                continue
            quantities[i][a] = n
            paid = n * o.price + _charges(o, n, rates[a], groups)
            net[a] -= paid
            cash[a] -= paid
            left -= n
    return quantities


def _affordable(
    order: PlannedOrder, most: int, funds: float, rates: BrokerRates, groups: Mapping[str, str]
) -> int:
    """Most shares (<= ``most``) of a buy that ``funds`` rupees pay for, charges included."""
    n = min(most, max(0, math.floor(funds / order.price)))
    while n > 0 and n * order.price + _charges(order, n, rates, groups) > funds:
        n -= 1
    return n


def _result(
    orders: Sequence[PlannedOrder],
    accounts: Sequence[AccountAvailability],
    quantities: Sequence[Sequence[int]],
    rates: Sequence[BrokerRates],
    groups: Mapping[str, str],
    use_sell_proceeds: bool,
    solver: str,
    notes: list[str],
) -> Allocation:
    parts: list[AccountOrder] = []
    shortfalls: list[Shortfall] = []
    for i, o in enumerate(orders):
        for a, account in enumerate(accounts):
            n = quantities[i][a] if quantities else 0
            if n > 0:
                parts.append(
                    AccountOrder(
                        account=account.account,
                        broker=account.broker,
                        symbol=account.own_symbol(o.symbol),
                        combined_symbol=o.symbol,
                        exchange=o.exchange,
                        side=o.side,
                        quantity=n,
                        price=o.price,
                        notional=n * o.price,
                        charges=_charges(o, n, rates[a], groups),
                    )
                )
        given = sum(quantities[i]) if quantities else 0
        if given < o.quantity:
            shortfalls.append(
                Shortfall(o.symbol, o.side, o.quantity, given, _why(o, accounts, use_sell_proceeds))
            )
    parts.sort(key=lambda p: (p.account, p.side is Side.BUY, -p.notional, p.symbol))
    splits = tuple(_split(account, parts) for account in accounts)
    return Allocation(tuple(parts), tuple(shortfalls), splits, solver, tuple(notes))


def _why(order: PlannedOrder, accounts: Sequence[AccountAvailability], proceeds: bool) -> str:
    if order.side is Side.SELL:
        each = ", ".join(f"{a.account} {a.sellable.get(order.symbol, 0)}" for a in accounts)
        total = sum(a.sellable.get(order.symbol, 0) for a in accounts)
        if total < order.quantity:
            return f"sellable today: {each} = {total} of {order.quantity} shares"
        return (
            f"sellable today: {each}, but the charges of a sell there (DP charge, brokerage) "
            "exceed its proceeds and the account's cash cannot pay the rest"
        )
    each = ", ".join(
        f"{a.account} ₹{a.cash:,.2f}" + ("" if a.cash_known else " (unknown)") for a in accounts
    )
    funded = "cash and its own sells' proceeds" if proceeds else "cash only"
    return f"each buy is funded inside one account ({funded}); cash: {each}"


def _split(account: AccountAvailability, parts: Sequence[AccountOrder]) -> AccountSplit:
    mine = [p for p in parts if p.account == account.account]
    buys = sum(p.notional for p in mine if p.side is Side.BUY)
    sells = sum(p.notional for p in mine if p.side is Side.SELL)
    charges = sum(p.charges for p in mine)
    return AccountSplit(
        account=account.account,
        broker=account.broker,
        orders=len(mine),
        buy_value=buys,
        sell_value=sells,
        charges=charges,
        cash_before=account.cash if account.cash_known else None,
        cash_after=account.cash - buys + sells - charges if account.cash_known else None,
    )
