"""The planner: holdings snapshot + targets + policy -> TradePlan. Pure: no I/O, clock or globals.

The steps, one module each (see docs/planner.md for the choices and why):

* ``book``: check the inputs, join holdings with targets, value the portfolio (holdings + cash).
* ``intents``: drift bands, max-weight trims, lists, filters, holding period, overlays -> a goal per
  symbol in rupees and a cap in whole shares.
* ``sizing``: the budget, the notes' proportional scale, cash, max trades and min trade value.
* ``whole_shares``: whole shares; the left-over budget goes to the steps that cut drift most (the
  fast plan: the optimiser's incumbent bound and fallback).
* ``optimise``: the exact best plan by a mixed-integer program (HiGHS) within a time cap.
* ``report``: orders with reasons and charges, positions with why, the summary.
* ``verify``: an independent check of a plan's hard constraints (tests, benchmarks, and a last
  guard before orders are placed).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from rebalance.costs import broker_rates
from rebalance.errors import ConfigError
from rebalance.plan import TradePlan
from rebalance.planning.book import build_book
from rebalance.planning.intents import decide_intents
from rebalance.planning.optimise import optimise_plan
from rebalance.planning.report import build_plan
from rebalance.planning.sizing import size_plan
from rebalance.planning.verify import verify_plan
from rebalance.planning.whole_shares import round_to_whole_shares
from rebalance.policy import Policy
from rebalance.snapshot import HoldingsSnapshot

__all__ = ["plan_rebalance", "verify_plan"]


def plan_rebalance(
    snapshot: HoldingsSnapshot,
    targets: Mapping[str, float],
    policy: Policy,
    *,
    cash_target: float | None = None,
    broker: str = "paper",
    today: date | None = None,
) -> TradePlan:
    """Plan the trades that bring ``snapshot`` toward ``targets``.

    ``targets`` are fractions of portfolio value (0.1 = 10%) that sum to 1 with ``cash_target``
    (a fraction; None = fully invested, i.e. a cash target of 0). ``broker`` picks the charges
    table (zerodha, angelone, paper). ``today`` is the trading date for the holding-period rule;
    by default the snapshot's date in Asia/Kolkata.

    Raises InputDataError (bad holdings) or ConfigError (bad targets, unknown broker).
    """
    try:
        rates = broker_rates(broker)
    except KeyError as exc:
        raise ConfigError("broker", [str(exc.args[0])]) from None
    book = build_book(snapshot, targets, policy, cash_target=cash_target, today=today)
    intents, bias = decide_intents(book, policy, rates)
    sizing = size_plan(book, intents, policy, rates)
    units, sizing = round_to_whole_shares(book, sizing, policy, rates)
    outcome = optimise_plan(book, intents, sizing, units, policy, rates)
    return build_plan(book, bias, sizing, outcome, policy, rates)
