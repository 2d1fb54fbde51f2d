"""The exact plan: a mixed-integer program over every eligible symbol (HiGHS, via highspy).

The objective (docs/planner.md, "The objective and the optimiser"), in rupees of the value after
charges: the sum over the symbols and the cash position of |value after - target x (value -
charges)|, plus what any symbol ends above the max weight (so trims come first). Charges are paid
out of cash. Every hard rule is a constraint: the share bounds of ``Intent.bound`` (sellable
shares, never further from the goal than the symbol started, the band edge, trims), whole shares,
one order per symbol of at least its smallest order, ``max_trades``, the budget in its mode, cash
including exact charges (linear rates, the DP charge per sold scrip and the minimum / capped
brokerage as a piecewise-linear function with two binaries), sell proceeds, the max weight of a
buy against the value after charges. The objective's terms are set in one place, ``_build``
(the ``cost=`` of its columns): a new term (a tax cost) is a column with a cost there.

The first solve starts from the LP relaxation's plan rounded to whole shares (``_guided_start``):
the relaxation is nearly tight, so that start is near the optimum and HiGHS mostly proves the gap
(``MIP_GAP`` relative or ``MIP_ABS_GAP`` absolute) at its root. The fast plan
(``round_to_whole_shares``) is its cutoff, its start when the rounding finds nothing better, and
the answer when the solver hits its time cap without a better plan.

The objective is flat over many plans (a rupee bought cuts drift the same in any underweight
symbol), so ties (plans within ``TIE_SHARE`` of the best objective, and never worse than the fast
plan) are broken by a second step (``_tie_break``): closest to the notes' proportional plan
(4.3), then fewer orders, then less turnover. It rounds the relaxation's closest tied plan to
whole shares, or, when that rounding is no tie, searches briefly from the first plan; it is
skipped when the relaxation shows that no tied plan is ``TIE_SKIP`` closer to the proportional
plan, or when the first solve keeps the fast plan (built on the proportional plan). The program
lists the symbols in one order (the caller sorts them), HiGHS runs on one thread and within node
limits, so one portfolio gets one plan, whatever the order of its rows, unless a time limit (the
cap, or the tie-break search's share of it) is reached.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial

import highspy
import numpy as np
from scipy.sparse import csc_matrix

from rebalance.costs import STATUTORY, BrokerRates, charge_total
from rebalance.domain.market import Side
from rebalance.planning.book import Book
from rebalance.planning.intents import Intent
from rebalance.planning.sizing import Sizing, min_units
from rebalance.planning.taxes import (
    TaxModel,
    add_tax_block,
    capped_plan,
    tax_score,
    within_caps,
)
from rebalance.policy import BudgetMode, Policy, RebalanceTo

SOLVER_OPTIMAL = "milp_optimal"  # HiGHS proved the plan optimal (within MIP_GAP)
SOLVER_TIME_CAP = "milp_time_cap"  # the best plan HiGHS found within the time cap
SOLVER_HEURISTIC = "heuristic"  # the fast plan: optimiser off, timed out or not better
OVERLAYS = frozenset({"profit_take", "tilt", "today_bias"})  # the reasons an overlay adds
TIE_SHARE = 1e-3  # plans within 0.1% of the best objective count as ties (charges-sized)
SCALE = 1e6  # the program counts money in millionths of the portfolio's value
MIP_GAP = 2e-3  # relative optimality gap HiGHS must prove (1e-3 cost up to 25x on 50 symbols)
# ... or this absolute one, in money units (0.01% of the value: ₹100 on ₹10 lakh). A relative gap
# alone asks for a proof to the rupee when the plan leaves almost no drift (an objective of 0.6%
# of the value), which took 200-300 ms of a 50-symbol plan's search.
MIP_ABS_GAP = 100.0
TIE_SKIP = 500.0  # money units (0.05% of value): the least gain the tie-break is run for
TIE_NODES = 200  # the tie-break's search, when its rounding is no tie ...
TIE_SEARCH_SHARE = 0.1  # ... and at most this share of the time cap (75 ms of the default)
GUIDE_NODES = 50  # the guided start's narrow program (proven at its root in the cases measured)
ROUNDING_GAP = 0.03  # a rounding is a start or a tie-break: proving 0.2% on it cost 20 ms more
SLACK_INR = 1e-4  # rupees of float noise tolerated when the plan is checked exactly
ORDER_WEIGHT = 1e-3  # tie-break weights (money units), far below the distance to the
TURNOVER_WEIGHT = 1e-6  # proportional plan
_STATUS = {
    highspy.HighsModelStatus.kOptimal: 0,
    highspy.HighsModelStatus.kTimeLimit: 1,
    highspy.HighsModelStatus.kInterrupt: 1,
    highspy.HighsModelStatus.kSolutionLimit: 1,  # the node limit
    highspy.HighsModelStatus.kInfeasible: 2,
    highspy.HighsModelStatus.kObjectiveBound: 2,
}


@dataclass(frozen=True)
class Outcome:
    """The chosen integer plan and where it came from.

    ``units`` symbol -> shares (on the intent's side); ``intents`` are the planner's with the
    symbols the optimiser trades although the fast plan skipped them for size made active;
    ``objective`` and ``fast_objective`` the objective (fraction of value) of the chosen and of
    the fast plan.
    """

    units: dict[str, int]
    intents: list[Intent]
    solver: str
    objective: float
    fast_objective: float
    note: str


@dataclass(frozen=True)
class _ChargeModel:
    """Charges of one order of ``n`` rupees on one side and exchange: ``linear * n + fixed +
    gst_factor * max(brokerage_min, min(brokerage_cap, brokerage_pct * n))`` (no brokerage when
    the cap is 0)."""

    linear: float
    fixed: float
    brokerage_pct: float
    brokerage_min: float
    brokerage_cap: float
    gst_factor: float

    def brokerage(self, notional: float) -> float:
        if self.brokerage_cap <= 0:
            return 0.0
        return max(self.brokerage_min, min(self.brokerage_cap, self.brokerage_pct * notional))

    def total(self, notional: float) -> float:
        return self.linear * notional + self.fixed + self.gst_factor * self.brokerage(notional)


def charge_model(side: Side, exchange: str, rates: BrokerRates) -> _ChargeModel | None:
    """The charges of ``costs.charge_total`` as a linear rate, a fixed part and the brokerage
    function, read off the rates table and checked against ``charge_total`` at sample notionals;
    None when the table has a shape the model cannot express (then the fast plan is used)."""
    model = _ChargeModel(
        0.0,
        0.0,
        rates.brokerage_pct.value,
        rates.brokerage_min_inr.value,
        rates.brokerage_cap_inr.value,
        1.0 + STATUTORY.gst.value,
    )
    low, high = 1e8, 2e8  # far above any brokerage cap
    linear = (
        charge_total(high, side, exchange, rates) - charge_total(low, side, exchange, rates)
    ) / (high - low)
    linear -= (model.brokerage(high) - model.brokerage(low)) * model.gst_factor / (high - low)
    fixed = charge_total(low, side, exchange, rates) - linear * low
    model = replace(model, linear=linear, fixed=fixed - model.gst_factor * model.brokerage(low))
    for notional in (1.0, 150.0, 1999.0, 2000.0, 5000.0, 19999.0, 20001.0, 1e6, 3e7):
        exact = charge_total(notional, side, exchange, rates)
        if abs(model.total(notional) - exact) > 1e-6 * max(1.0, exact):
            return None
    return model


@contextmanager
def _stdout_to_stderr(quiet: bool = False) -> Iterator[None]:
    """Send what the solver prints to stdout to stderr (to nowhere when ``quiet``): HiGHS prints
    a debug line ("HighsMipSolverData::transformNewIntegerFeasibleSolution tmpSolver.run();")
    with printf whatever its output flag (ERGO-Code/HiGHS issue 2783, 2026-01), and its banner
    when a solver object is made, and the stdout of ``rebalance plan --format json`` is a
    contract."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no stdout to protect
        yield
        return
    target = os.open(os.devnull, os.O_WRONLY) if quiet else 2
    try:
        os.dup2(target, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        if quiet:
            os.close(target)


class _Model:
    """A MILP under construction: columns with bounds, integrality and cost; sparse rows."""

    def __init__(self) -> None:
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.integer: list[int] = []
        self.cost: list[float] = []
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []
        self.row_lower: list[float] = []
        self.row_upper: list[float] = []

    def var(self, lower: float, upper: float, integer: bool = False, cost: float = 0.0) -> int:
        self.lower.append(lower)
        self.upper.append(upper)
        self.integer.append(1 if integer else 0)
        self.cost.append(cost)
        return len(self.lower) - 1

    def row(self, terms: Sequence[tuple[int, float]], lower: float, upper: float) -> int:
        index = len(self.row_lower)
        for col, val in terms:
            if val != 0.0:
                self.rows.append(index)
                self.cols.append(col)
                self.vals.append(val)
        self.row_lower.append(lower)
        self.row_upper.append(upper)
        return index

    def integer_start(self, x: np.ndarray) -> dict[int, float]:
        """The integer columns of the solution ``x``, whole: a starting solution for ``solve``."""
        return {i: float(round(float(x[i]))) for i, flag in enumerate(self.integer) if flag}

    def activity(self, row: int, x: np.ndarray) -> float:
        """The value of row ``row`` at the solution ``x``."""
        entries = zip(self.rows, self.cols, self.vals, strict=True)
        return sum(v * float(x[c]) for r, c, v in entries if r == row)

    def solve(
        self,
        cost: Sequence[float],
        deadline: float,
        gap: float = MIP_GAP,
        cutoff: float | None = None,
        start: Mapping[int, float] | None = None,
        nodes: int | None = None,
        relax: bool = False,
    ) -> tuple[int, np.ndarray | None, float]:
        """(status, solution, objective): status 0 optimal, 1 time limit, 2 infeasible (also:
        nothing better than ``cutoff``), 4 anything else. ``cutoff`` is HiGHS's
        ``objective_bound``, the incumbent's objective: a cutoff, not a row (an objective row
        slowed the search down). ``start`` (column -> value, integer columns enough) is a
        starting solution: HiGHS completes and checks it, and keeps it if nothing beats it.
        ``nodes`` limits the branch-and-bound nodes: a limit that, unlike time, gives the same
        plan on a busy machine as on a quiet one. ``relax`` solves the LP relaxation. ``deadline``
        is a ``time.perf_counter()`` instant: HiGHS stops there (given at least 10 ms)."""
        with _stdout_to_stderr(quiet=True):
            highs = highspy.Highs()  # prints its banner before any option is read
        with _stdout_to_stderr():
            highs.setOptionValue("output_flag", False)
            highs.setOptionValue("threads", 1)  # one plan, one core: the machine is shared
            highs.setOptionValue("mip_rel_gap", gap)
            highs.setOptionValue("mip_abs_gap", MIP_ABS_GAP)
            # RENS and feasibility jump at the root took most of the time of small programs
            # for no better plan within the gap (measured on plan_speed's cases)
            highs.setOptionValue("mip_heuristic_run_rens", False)
            highs.setOptionValue("mip_heuristic_run_feasibility_jump", False)
            if cutoff is not None:
                highs.setOptionValue("objective_bound", cutoff)
            if nodes is not None:
                highs.setOptionValue("mip_max_nodes", nodes)
            highs.passModel(self._lp(cost, relax))
            if start:
                columns = sorted(start)
                highs.setSolution(
                    len(columns),
                    np.asarray(columns, dtype=np.int32),
                    np.asarray([start[c] for c in columns], dtype=np.float64),
                )
            # set last: building and passing a 500-symbol program takes tens of milliseconds
            highs.setOptionValue("time_limit", max(0.01, deadline - time.perf_counter()))
            highs.run()
        status = _STATUS.get(highs.getModelStatus(), 4)
        info = highs.getInfo()
        if info.primal_solution_status != highspy.SolutionStatus.kSolutionStatusFeasible:
            return status, None, math.inf
        solution = np.asarray(highs.getSolution().col_value)
        return status, solution, float(info.objective_function_value)

    def _lp(self, cost: Sequence[float], relax: bool = False) -> highspy.HighsLp:
        matrix = csc_matrix(
            (self.vals, (self.rows, self.cols)), shape=(len(self.row_lower), len(self.lower))
        )
        lp = highspy.HighsLp()
        lp.num_col_ = len(self.lower)
        lp.num_row_ = len(self.row_lower)
        lp.col_cost_ = np.asarray(cost, dtype=np.float64)
        lp.col_lower_ = np.asarray(self.lower, dtype=np.float64)
        lp.col_upper_ = np.asarray(self.upper, dtype=np.float64)
        lp.row_lower_ = np.asarray(self.row_lower, dtype=np.float64)
        lp.row_upper_ = np.asarray(self.row_upper, dtype=np.float64)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = matrix.indptr.astype(np.int32)
        lp.a_matrix_.index_ = matrix.indices.astype(np.int32)
        lp.a_matrix_.value_ = matrix.data.astype(np.float64)
        kinds = (highspy.HighsVarType.kContinuous, highspy.HighsVarType.kInteger)
        lp.integrality_ = [kinds[0 if relax else flag] for flag in self.integer]
        return lp


@dataclass
class _Candidate:
    """One symbol the program may trade: its columns and what the tie-break compares with."""

    intent: Intent
    sign: int  # +1 buy, -1 sell
    bound: int
    smallest: int
    proportional: float  # shares of the notes' proportional plan
    units: int = 0  # column of the shares
    trade: int = 0  # column of the 0/1 "has an order"
    charge_terms: list[tuple[int, float]] = field(default_factory=list)


def tracked_targets(book: Book, intents: Sequence[Intent], policy: Policy) -> dict[str, float]:
    """The target (fraction of value) the optimiser steers each symbol to: its target, capped at
    the max weight; when trading to target, a symbol that an overlay tags is steered to its goal
    after the overlay (profit taking, tilt and today's bias scale the goal, so the tracked target
    moves with it)."""
    max_weight = policy.max_position_weight_pct / 100.0
    tracked = {ln.symbol: min(ln.target, max_weight) for ln in book.lines}
    if policy.rebalance_to is RebalanceTo.TARGET:
        for intent in intents:
            side = intent.side or intent.direction
            if side is not None and OVERLAYS.intersection(intent.reasons):
                sign = 1 if side is Side.BUY else -1
                tracked[intent.line.symbol] = (intent.line.value + sign * intent.goal) / book.value
    return tracked


def objective(
    book: Book,
    intents: Sequence[Intent],
    units: Mapping[str, int],
    targets: Mapping[str, float],
    policy: Policy,
    rates: BrokerRates,
) -> float:
    """The objective of an integer plan, as a fraction of the value after charges: the sum over
    the symbols and the cash position of |weight after - target| plus the sum of what symbols
    end above the max weight. ``targets`` are fractions by symbol (the cash target is the
    book's)."""
    max_weight = policy.max_position_weight_pct / 100.0
    charges = 0.0
    net = 0.0
    after: dict[str, float] = {}
    for intent in intents:
        line = intent.line
        shares = units.get(line.symbol, 0)
        side = intent.side or intent.direction
        if shares and side is not None:
            notional = shares * line.price
            charges += charge_total(notional, side, line.exchange, rates, symbol=line.symbol)
            net += notional if side is Side.BUY else -notional
            shares = shares if side is Side.BUY else -shares
        after[line.symbol] = (line.quantity + shares) * line.price
    value = book.value - charges
    total = sum(
        abs(after[ln.symbol] / value - targets[ln.symbol])
        + max(0.0, after[ln.symbol] / value - max_weight)
        for ln in book.lines
    )
    cash_after = book.cash - net - charges
    return total + abs(cash_after / value - book.cash_target)


def optimise_plan(
    book: Book,
    intents: list[Intent],
    sizing: Sizing,
    fast_units: Mapping[str, int],
    policy: Policy,
    rates: BrokerRates,
    tax: TaxModel | None = None,
) -> Outcome:
    """The best plan the rules allow (see the module docstring), or the fast plan. ``tax``
    (planning/taxes.py) adds the caps of ``tax: limit`` or the tax term of ``tax: minimise``."""
    started = time.perf_counter()
    tracked = tracked_targets(book, intents, policy)
    fast = {s: u for s, u in fast_units.items() if u > 0}
    fast_objective = objective(book, intents, fast, tracked, policy, rates)
    fast_objective += tax_score(tax, book, intents, fast)

    def fallback(note: str) -> Outcome:
        if not within_caps(tax, intents, fast):  # the fast plan knows no tax: drop orders
            kept = capped_plan(tax, intents, fast, partial(_charge_of, rates=rates))
            value = objective(book, intents, kept, tracked, policy, rates)
            note += "; the fast plan breaks the tax caps: its orders that add most tax dropped"
            return Outcome(kept, intents, SOLVER_HEURISTIC, value, fast_objective, note)
        return Outcome(fast, intents, SOLVER_HEURISTIC, fast_objective, fast_objective, note)

    if policy.optimiser_time_cap_s <= 0:
        return fallback("optimiser off (optimiser_time_cap_s 0): the fast plan")
    models: dict[tuple[Side, str], _ChargeModel] = {}
    for side in Side:
        for exchange in {i.line.exchange for i in intents}:
            found = charge_model(side, exchange, rates)
            if found is None:
                return fallback("charges table of a shape the optimiser cannot model: fast plan")
            models[(side, exchange)] = found
    proportional = {i.line.symbol: sizing.scaled_value(i) / i.line.price for i in sizing.selected}
    candidates = _candidates(intents, sizing, proportional, policy)
    if not candidates:  # nothing may trade: the fast plan (no orders either) is the optimum
        return Outcome(
            fast,
            intents,
            SOLVER_OPTIMAL,
            fast_objective,
            fast_objective,
            "optimiser: no symbol may trade",
        )
    model, cands, objective_row, phase_two = _build(
        book,
        candidates,
        tracked,
        sizing,
        policy,
        models,
        tax,
    )
    # the fast plan within the program's bounds: its objective is then a valid cutoff, and the
    # fast plan HiGHS's starting solution
    bounds = {c.intent.line.symbol: c.bound for c in cands}
    fast_fits = all(units <= bounds.get(symbol, 0) for symbol, units in fast.items())
    fast_fits = fast_fits and within_caps(tax, intents, fast)
    limit = fast_objective * SCALE * (1 + 1e-9) + 1e-6
    cap = policy.optimiser_time_cap_s
    start: dict[int, float] = {}
    if fast_fits:
        for c in cands:
            shares = fast.get(c.intent.line.symbol, 0)
            start[c.units], start[c.trade] = float(shares), float(shares > 0)
    deadline = started + cap  # the cap covers building the program and every solve
    # the rounding gets at most half of what is left: the first solve needs the rest (on 500
    # symbols a rounding took the whole cap and left the first solve its 10 ms)
    halfway = (time.perf_counter() + deadline) / 2
    guided, guided_value = _guided_start(model, cands, policy.max_trades, halfway)
    if guided is not None and (not start or guided_value < limit):
        start = model.integer_start(guided)
    status, x, best = model.solve(
        model.cost,
        deadline,
        cutoff=limit if fast_fits else None,
        start=start,
    )
    if x is None or status not in (0, 1):
        if fast_fits and status == 2:  # nothing beats the fast plan
            return Outcome(
                fast,
                intents,
                SOLVER_OPTIMAL,
                fast_objective,
                fast_objective,
                "the fast plan is optimal",
            )
        return fallback(f"optimiser: no plan (HiGHS status {status}): the fast plan")
    first = _units(cands, x)
    chosen = first
    if status == 0 and first != fast:  # the fast plan is built on the proportional plan already
        model.row_upper[objective_row] = min(
            best * (1 + TIE_SHARE), limit if fast_fits else math.inf
        )
        # the tie-break may trade what the first solve or the proportional plan trades: another
        # symbol only moves the plan away from the proportional one, and a narrow program is a
        # fast one. The first solve's plan is its starting solution.
        for c in cands:
            symbol = c.intent.line.symbol
            if not first.get(symbol) and proportional.get(symbol, 0.0) <= 0.0:
                model.upper[c.units] = model.upper[c.trade] = 0.0
        status_two, x_two = _tie_break(
            model,
            cands,
            x,
            phase_two,
            SCALE / book.value,
            objective_row,
            best,
            deadline,
            min(deadline, time.perf_counter() + TIE_SEARCH_SHARE * cap),
        )
        if x_two is not None and status_two in (0, 1):
            chosen = _units(cands, x_two)
            if not _fits(book, cands, chosen, policy, rates) or not within_caps(
                tax, intents, chosen
            ):
                chosen = first
    if not _fits(book, cands, chosen, policy, rates) or not within_caps(tax, intents, chosen):
        return fallback("optimiser: its plan failed the exact check: the fast plan")
    value = objective(book, intents, chosen, tracked, policy, rates)
    value += tax_score(tax, book, intents, chosen)
    if value > fast_objective + 1e-12 and within_caps(tax, intents, fast):
        if status == 0:  # the fast plan is as good as the proven optimum (within MIP_GAP)
            return Outcome(
                fast,
                intents,
                SOLVER_OPTIMAL,
                fast_objective,
                fast_objective,
                "optimiser: the fast plan is optimal",
            )
        return fallback("optimiser: no better plan than the fast one within the time cap")
    if status != 0 and chosen == fast:  # the time cap came before HiGHS beat its starting plan
        return fallback("optimiser: no better plan than the fast one within the time cap")
    label = SOLVER_OPTIMAL if status == 0 else SOLVER_TIME_CAP
    by_symbol = {c.intent.line.symbol: c for c in cands}
    active = [
        _activate(i) if chosen.get(i.line.symbol, 0) and i.line.symbol in by_symbol else i
        for i in intents
    ]
    note = (
        "optimiser: proven optimal"
        if status == 0
        else f"optimiser: time cap {cap:g} s reached, best plan found"
    )
    return Outcome(chosen, active, label, value, fast_objective, note)


def _guided_start(
    model: _Model, cands: Sequence[_Candidate], max_trades: int, deadline: float
) -> tuple[np.ndarray | None, float]:
    """A starting plan rounded from the LP relaxation (solution, objective; None when there is
    none): the symbols the relaxation trades (at most ``max_trades``, those it trades most surely
    first) keep their relaxed shares rounded down or up, the others do not trade, and HiGHS picks
    the roundings (a small knapsack) within ``GUIDE_NODES`` nodes. The relaxation is nearly tight
    (the chord rows) and the objective flat, so this plan is near the optimum, and a near-optimal
    start lets HiGHS prove the gap at its root: on two 50-symbol cases whose fast plan was 0.5-14%
    above the optimum, 4 + 2-8 + 6 ms instead of 150-230 ms (HiGHS's own root heuristics, a restart
    and a sub-MIP took the rest)."""
    status, relaxed, _ = model.solve(model.cost, deadline, relax=True)
    if relaxed is None or status != 0:
        return None, math.inf
    return _rounded(model, cands, relaxed, model.cost, max_trades, deadline)


def _rounded(
    model: _Model,
    cands: Sequence[_Candidate],
    relaxed: np.ndarray,
    cost: Sequence[float],
    max_trades: int,
    deadline: float,
) -> tuple[np.ndarray | None, float]:
    """The relaxed plan ``relaxed`` rounded to whole shares by HiGHS (see ``_guided_start``):
    the solution and its objective under ``cost``."""
    traded = [c for c in cands if relaxed[c.units] > 1e-6]
    traded.sort(key=lambda c: (-float(relaxed[c.trade]), -float(relaxed[c.units])))
    allowed = {id(c) for c in traded[:max_trades]}
    saved = {c.units: (model.lower[c.units], model.upper[c.units]) for c in cands}
    for c in cands:
        lower, upper = saved[c.units]
        if id(c) not in allowed:
            model.upper[c.units] = 0.0
            continue
        below = math.floor(float(relaxed[c.units]) + 1e-6)
        # below the smallest order the relaxation trades a fraction of an order: none or the
        # smallest one
        model.lower[c.units] = max(lower, float(below) if below >= c.smallest else 0.0)
        model.upper[c.units] = min(upper, float(max(below + 1, c.smallest)))
    try:
        status, x, value = model.solve(cost, deadline, ROUNDING_GAP, nodes=GUIDE_NODES)
    finally:
        for c in cands:
            model.lower[c.units], model.upper[c.units] = saved[c.units]
    return (x, value) if x is not None and status in (0, 1) else (None, math.inf)


def _tie_break(
    model: _Model,
    cands: Sequence[_Candidate],
    x: np.ndarray,
    phase_two: Sequence[float],
    k: float,
    objective_row: int,
    best: float,
    deadline: float,
    search_deadline: float,
) -> tuple[int, np.ndarray | None]:
    """The tie-break's plan (status, solution), or (2, None) when the first plan ``x`` stands.

    When the LP relaxation shows that no tied plan is more than ``TIE_SKIP`` closer to the
    proportional plan, the first plan stands. Otherwise the relaxation's closest tied plan (found
    with half the tie share, so that whole shares have room within the other half) is rounded to
    whole shares without the objective row, which is fast, and kept if it is a tie and closer.
    When whole shares cost more than the tie share, a search with the row runs from the first
    plan, each symbol between its first and its relaxed trade, within ``TIE_NODES`` nodes and
    until ``search_deadline`` (a share of the cap: its root alone took 120-150 ms on 50 symbols
    and up to 0.8 s on 200); it keeps what it found closer than the first plan."""
    first_value = 0.0
    for c in cands:
        units = round(float(x[c.units]))
        price = c.intent.line.price * k
        first_value += abs(units - c.proportional) * price + TURNOVER_WEIGHT * price * units
        first_value += ORDER_WEIGHT * (units > 0)
    status, relaxed, bound = model.solve(phase_two, deadline, relax=True)
    if relaxed is None or status != 0 or first_value - bound <= TIE_SKIP:
        return 2, None
    tied = model.row_upper[objective_row]
    model.row_upper[objective_row] = min(tied, best * (1 + TIE_SHARE / 2))
    status, inner, _ = model.solve(phase_two, deadline, relax=True)
    model.row_upper[objective_row] = tied
    if inner is None or status != 0:
        return 2, None
    # the rounding, without the objective row (with it, 200 symbols took up to 0.8 s), checked
    # against it after
    model.row_upper[objective_row] = math.inf
    rounded, value = _rounded(model, cands, inner, phase_two, len(cands), deadline)
    model.row_upper[objective_row] = tied
    if (
        rounded is not None
        and value < first_value
        and model.activity(objective_row, rounded) <= tied
    ):
        return 0, rounded
    # whole shares cost more than the tie share there: a short search with the row, from the
    # first plan, each symbol between its first and its relaxed trade
    for c in cands:
        between = sorted((round(float(x[c.units])), float(inner[c.units])))
        model.lower[c.units] = max(model.lower[c.units], float(math.floor(between[0])))
        model.upper[c.units] = min(model.upper[c.units], float(math.ceil(between[1])))
    status, found, _ = model.solve(
        phase_two,
        search_deadline,
        start=model.integer_start(x),
        nodes=TIE_NODES,
        cutoff=first_value,
    )
    return (status, found) if found is not None and status in (0, 1) else (2, None)


def _charge_of(intent: Intent, shares: int, rates: BrokerRates) -> float:
    """The exact charges of ``shares`` of ``intent``'s symbol on its side, rupees."""
    side = intent.side or intent.direction or Side.BUY
    return charge_total(shares * intent.line.price, side, intent.line.exchange, rates)


def _activate(intent: Intent) -> Intent:
    if intent.active:
        return intent
    return replace(intent, side=intent.direction, skipped=())


def _candidates(
    intents: Sequence[Intent],
    sizing: Sizing,
    proportional: Mapping[str, float],
    policy: Policy,
) -> list[_Candidate]:
    """The symbols that may trade, each with its tightest share bound: the intent's hard bound,
    within what the budget and the money available could ever pay (a tight bound is what makes
    the program fast)."""
    sellable = sum(i.line.sellable * i.line.price for i in intents if i.direction is Side.SELL)
    proceeds = min(sizing.budget, sellable) if policy.use_sell_proceeds else 0.0
    most_spent = {
        Side.BUY: min(sizing.budget, sizing.funding + proceeds),
        Side.SELL: sizing.budget,
    }
    out = []
    for intent in intents:
        if intent.direction is None or intent.bound < 1 or policy.max_trades < 1:
            continue
        money = most_spent[intent.direction] + SLACK_INR
        bound = min(intent.bound, math.floor(money / intent.line.price))
        plan = proportional.get(intent.line.symbol, 0.0)
        if not policy.fill_to_target:
            bound = min(bound, max(intent.trim_units, math.floor(plan + 0.5)))
        smallest = min_units(intent)
        if smallest > bound:
            continue
        sign = 1 if intent.direction is Side.BUY else -1
        out.append(_Candidate(intent, sign, bound, smallest, plan))
    return out


def _build(
    book: Book,
    candidates: list[_Candidate],
    tracked: Mapping[str, float],
    sizing: Sizing,
    policy: Policy,
    models: Mapping[tuple[Side, str], _ChargeModel],
    tax: TaxModel | None = None,
) -> tuple[_Model, list[_Candidate], int, list[float]]:
    """The program; returns it, the candidates with their columns, the row of the objective
    (whose upper bound is set by the caller) and the tie-break cost vector."""
    m = _Model()
    # Money in millionths of the portfolio's value: HiGHS wants numbers near 1 (in rupees its
    # sub-MIP heuristics took seconds on 100 symbols); shares stay whole shares.
    k = SCALE / book.value
    value = SCALE
    unit = 1.0
    max_weight = policy.max_position_weight_pct / 100.0
    charges = m.var(0.0, math.inf)
    deviations: list[int] = []
    charge_row: list[tuple[int, float]] = [(charges, 1.0)]
    buy_terms: list[tuple[int, float]] = []
    sell_terms: list[tuple[int, float]] = []
    buy_charge_terms: list[tuple[int, float]] = []
    by_symbol: dict[str, _Candidate] = {}
    for c in candidates:
        line = c.intent.line
        price, held = line.price * k, line.value * k
        c.units = m.var(0.0, float(c.bound), integer=True)
        c.trade = m.var(0.0, 1.0, integer=True)
        m.row([(c.units, 1.0), (c.trade, -float(c.bound))], -math.inf, 0.0)
        m.row([(c.units, 1.0), (c.trade, -float(c.smallest))], 0.0, math.inf)
        side = Side.BUY if c.sign > 0 else Side.SELL
        c.charge_terms = _charge_terms(m, c, k, _scaled(models[(side, line.exchange)], k))
        charge_row += [(col, -val) for col, val in c.charge_terms]
        (buy_terms if c.sign > 0 else sell_terms).append((c.units, price))
        if c.sign > 0:
            buy_charge_terms += c.charge_terms
            if max_weight < 1:  # the buy ends at most at the max weight of the value after charges
                m.row(
                    [(c.units, price), (charges, max_weight)],
                    -math.inf,
                    max_weight * value - held,
                )
        elif held > max_weight * value - price:  # may end above the max weight
            excess = m.var(0.0, math.inf, cost=unit)
            deviations.append(excess)
            m.row(
                [(excess, 1.0), (c.units, price), (charges, -max_weight)],
                held - max_weight * value,
                math.inf,
            )
        by_symbol[line.symbol] = c
    m.row(charge_row, 0.0, 0.0)
    # the chord rows pay when every candidate may trade (whole shares are then what is left to
    # decide); when max_trades binds, the choice of symbols is, and they slowed a 30-symbol,
    # 3-trade case by 30%
    chords = policy.max_trades >= len(candidates)
    for ln in book.lines:
        target = tracked[ln.symbol]
        ln_price, ln_held = ln.price * k, ln.value * k
        gap = ln_held - target * value
        dev = m.var(0.0, math.inf, cost=unit)
        deviations.append(dev)
        trader = by_symbol.get(ln.symbol)
        move = [(trader.units, trader.sign * ln_price)] if trader else []
        m.row([(dev, 1.0), *[(k, -v) for k, v in move], (charges, -target)], gap, math.inf)
        m.row([(dev, 1.0), *move, (charges, target)], -gap, math.inf)
        if trader:  # without an order the deviation stays: e >= |gap| (1 - y) - target x C
            m.row([(dev, 1.0), (trader.trade, abs(gap)), (charges, target)], abs(gap), math.inf)
            if chords:
                _rounding_cut(m, trader, dev, charges, gap, ln_price, target)
    net = [*buy_terms, *[(k, -v) for k, v in sell_terms]]
    cash_gap = book.cash * k - book.cash_target * value
    keep = 1.0 - book.cash_target
    dev = m.var(0.0, math.inf, cost=unit)
    deviations.append(dev)
    m.row([(dev, 1.0), *net, (charges, keep)], cash_gap, math.inf)
    m.row([(dev, 1.0), *[(k, -v) for k, v in net], (charges, -keep)], -cash_gap, math.inf)
    m.row([(c.trade, 1.0) for c in candidates], 0.0, float(policy.max_trades))
    budget = sizing.budget * k
    if policy.budget_mode is BudgetMode.MAX_SIDE:
        m.row(buy_terms, 0.0, budget)
        m.row(sell_terms, 0.0, budget)
    else:
        m.row([*buy_terms, *sell_terms], 0.0, budget)
    m.row([*net, (charges, 1.0)], -math.inf, sizing.funding * k)
    if not policy.use_sell_proceeds:
        m.row([*buy_terms, *buy_charge_terms], -math.inf, sizing.funding * k)
    deviations += add_tax_block(m, candidates, k, tax)  # planning/taxes.py: caps, tax term
    objective_row = m.row([(d, unit) for d in deviations], 0.0, math.inf)
    # the tie-break: rupees away from the proportional plan, then orders, then turnover
    phase_two = [0.0] * len(m.lower)
    for c in candidates:
        price = c.intent.line.price * k
        distance = m.var(0.0, math.inf)
        m.row([(distance, 1.0), (c.units, -price * unit)], -c.proportional * price * unit, math.inf)
        m.row([(distance, 1.0), (c.units, price * unit)], c.proportional * price * unit, math.inf)
        below = math.floor(c.proportional)
        if 0 <= below < c.proportional and below + 1 <= c.bound:  # the chord over whole shares
            at_below = (c.proportional - below) * price * unit
            slope = (below + 1 - c.proportional) * price * unit - at_below
            m.row([(distance, 1.0), (c.units, -slope)], at_below - slope * below, math.inf)
        phase_two.append(1.0)
        phase_two[c.trade] = ORDER_WEIGHT
        phase_two[c.units] = TURNOVER_WEIGHT * price * unit
    m.cost.extend([0.0] * (len(m.lower) - len(m.cost)))
    return m, candidates, objective_row, phase_two


def _rounding_cut(
    m: _Model, c: _Candidate, dev: int, charges: int, gap: float, price: float, target: float
) -> None:
    """Whole shares in the LP relaxation: the deviation ``|gap + sign x price x units + target x
    C|`` is at least ``|gap + sign x price x units| - target x C`` (C >= 0), and over whole shares
    that is at least the chord between the two whole numbers of shares either side of the exact
    trade. Without this row the relaxation trades fractions of a share and its bound sat far below
    the plan (2,469 against 5,978 on a 50-symbol case), which made HiGHS branch for ~0.5 s."""
    exact = -gap / (c.sign * price)  # the units that would reach the target exactly
    below = math.floor(exact)
    if below < 0 or below + 1 > c.bound or exact == below:
        return
    at_below = abs(gap + c.sign * price * below)
    at_above = abs(gap + c.sign * price * (below + 1))
    slope = at_above - at_below
    # e + target x C - slope x units >= at_below - slope x below
    m.row(
        [(dev, 1.0), (charges, target), (c.units, -slope)],
        at_below - slope * below,
        math.inf,
    )


def _scaled(model: _ChargeModel, k: float) -> _ChargeModel:
    """The charge model with its rupee amounts in units of ``1 / k`` rupees."""
    return replace(
        model,
        fixed=model.fixed * k,
        brokerage_min=model.brokerage_min * k,
        brokerage_cap=model.brokerage_cap * k,
    )


def _charge_terms(
    m: _Model, c: _Candidate, k: float, model: _ChargeModel
) -> list[tuple[int, float]]:
    """Columns and coefficients whose sum is the order's exact charges (money units of ``1 / k``
    rupees; ``model`` already in them)."""
    price = c.intent.line.price * k
    terms = [(c.units, model.linear * price), (c.trade, model.fixed)]
    if model.brokerage_cap <= 0:
        return terms
    most = c.bound * price
    if model.brokerage_pct <= 0 or model.brokerage_min >= model.brokerage_cap:
        return [*terms, (c.trade, model.gst_factor * model.brokerage_min)]  # a flat brokerage
    low = model.brokerage_min / model.brokerage_pct  # the minimum applies up to here
    high = model.brokerage_cap / model.brokerage_pct  # the cap applies from here
    terms.append((c.trade, model.gst_factor * model.brokerage_min))
    if most <= low:
        return terms
    # notional = first + middle + rest, filled in that order (two binaries); brokerage is
    # the minimum plus pct x middle
    first = m.var(0.0, low)
    middle = m.var(0.0, high - low)
    past_low = m.var(0.0, 1.0, integer=True)
    pieces = [(c.units, price), (first, -1.0), (middle, -1.0)]
    m.row([(first, 1.0), (c.trade, -low)], -math.inf, 0.0)
    m.row([(first, 1.0), (past_low, -low)], 0.0, math.inf)
    m.row([(middle, 1.0), (past_low, -(high - low))], -math.inf, 0.0)
    if most > high:
        rest = m.var(0.0, most - high)
        past_high = m.var(0.0, 1.0, integer=True)
        pieces.append((rest, -1.0))
        m.row([(middle, 1.0), (past_high, -(high - low))], 0.0, math.inf)
        m.row([(rest, 1.0), (past_high, -(most - high))], -math.inf, 0.0)
    m.row(pieces, 0.0, 0.0)
    terms.append((middle, model.gst_factor * model.brokerage_pct))
    return terms


def _units(candidates: Sequence[_Candidate], x: np.ndarray) -> dict[str, int]:
    units = {}
    for c in candidates:
        shares = round(float(x[c.units]))
        if shares > 0:
            units[c.intent.line.symbol] = shares
    return units


def _fits(
    book: Book,
    candidates: Sequence[_Candidate],
    units: Mapping[str, int],
    policy: Policy,
    rates: BrokerRates,
) -> bool:
    """The plan checked with exact charges: bounds, smallest orders, max trades, budget, cash,
    proceeds and the max weight of buys."""
    buys = sells = buy_charges = sell_charges = 0.0
    bought: list[_Candidate] = []
    for c in candidates:
        shares = units.get(c.intent.line.symbol, 0)
        if not shares:
            continue
        if not c.smallest <= shares <= c.bound:
            return False
        line = c.intent.line
        notional = shares * line.price
        side = Side.BUY if c.sign > 0 else Side.SELL
        charge = charge_total(notional, side, line.exchange, rates, symbol=line.symbol)
        if c.sign > 0:
            buys, buy_charges = buys + notional, buy_charges + charge
            bought.append(c)
        else:
            sells, sell_charges = sells + notional, sell_charges + charge
    if len(units) > policy.max_trades:
        return False
    budget = max(buys, sells) if policy.budget_mode is BudgetMode.MAX_SIDE else buys + sells
    budget_limit = (
        policy.rebalance_budget_inr
        if policy.rebalance_budget_inr is not None
        else policy.rebalance_budget_pct / 100.0 * book.value
    )
    funding = max(0.0, book.cash - book.cash_target * book.value)
    if budget > budget_limit + SLACK_INR:
        return False
    if buys + buy_charges + sell_charges - sells > funding + SLACK_INR:
        return False
    if not policy.use_sell_proceeds and buys + buy_charges > funding + SLACK_INR:
        return False
    value_after = book.value - buy_charges - sell_charges
    max_weight = policy.max_position_weight_pct / 100.0
    return all(
        (c.intent.line.quantity + units[c.intent.line.symbol]) * c.intent.line.price
        <= max_weight * value_after + 1e-9 * value_after
        for c in bought
    )
