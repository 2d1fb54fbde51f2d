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
from dataclasses import replace
from datetime import date

from rebalance.costs import broker_rates, with_scrip_groups
from rebalance.errors import ConfigError
from rebalance.plan import TradePlan
from rebalance.planning.book import build_book
from rebalance.planning.intents import decide_intents
from rebalance.planning.optimise import optimise_plan
from rebalance.planning.report import build_plan
from rebalance.planning.sizing import size_plan
from rebalance.planning.taxes import lot_holding_snapshot, tax_model, tax_section
from rebalance.planning.verify import verify_plan
from rebalance.planning.whole_shares import round_to_whole_shares
from rebalance.policy import Policy, TaxMode
from rebalance.snapshot import HoldingsSnapshot
from rebalance.tax.planning import TaxContext

__all__ = ["plan_rebalance", "verify_plan"]


def plan_rebalance(
    snapshot: HoldingsSnapshot,
    targets: Mapping[str, float],
    policy: Policy,
    *,
    cash_target: float | None = None,
    broker: str = "paper",
    today: date | None = None,
    scrip_groups: Mapping[str, str] | None = None,
    tax: TaxContext | None = None,
) -> TradePlan:
    """Plan the trades that bring ``snapshot`` toward ``targets``.

    ``targets`` are fractions of portfolio value (0.1 = 10%) that sum to 1 with ``cash_target``
    (a fraction; None = fully invested, i.e. a cash target of 0). ``broker`` picks the charges
    table (zerodha, angelone, paper). ``today`` is the trading date for the holding-period rule;
    by default the snapshot's date in Asia/Kolkata. ``scrip_groups``: BSE scrip groups by symbol
    (the portfolio's ``execution.bse_scrip_groups``) for BSE orders' transaction charge.

    ``tax`` (the account's lots, from history) is used when the policy's ``tax`` is not off:
    ``min_holding_days`` then applies to the FIFO lots a sell consumes, ``limit`` and
    ``minimise`` shape the plan (planning/taxes.py) and the plan carries its tax estimate.

    Raises InputDataError (bad holdings) or ConfigError (bad targets, unknown broker).
    """
    try:
        rates = with_scrip_groups(broker_rates(broker), scrip_groups)
    except KeyError as exc:
        raise ConfigError("broker", [str(exc.args[0])]) from None
    tax = tax if policy.tax is not TaxMode.OFF else None
    lots_snapshot = lot_holding_snapshot(snapshot, tax, policy)
    book = build_book(lots_snapshot, targets, policy, cash_target=cash_target, today=today)
    # The steps that decide see the symbols in one order, whatever the order of the holdings
    # and the targets, so that one portfolio always gets one plan (ties in the heuristic's
    # queues and among the optimiser's equal plans would otherwise follow the input's order);
    # the report keeps the input's order.
    ordered = replace(book, lines=tuple(sorted(book.lines, key=lambda line: line.symbol)))
    intents, bias = decide_intents(ordered, policy, rates)
    sizing = size_plan(ordered, intents, policy, rates)
    units, sizing = round_to_whole_shares(ordered, sizing, policy, rates)
    model = tax_model(tax, policy, ordered) if tax is not None else None
    outcome = optimise_plan(ordered, intents, sizing, units, policy, rates, model)
    position = {line.symbol: index for index, line in enumerate(book.lines)}
    in_input_order = sorted(outcome.intents, key=lambda intent: position[intent.line.symbol])
    plan = build_plan(book, bias, sizing, replace(outcome, intents=in_input_order), policy, rates)
    if model is None:
        return plan
    plan = replace(plan, tax=tax_section(plan, model))
    if model.mode is TaxMode.MINIMISE and model.weight > 0:
        plain = policy.with_overrides(
            {"tax": TaxMode.REPORT, "tax_weight": 0.0, "tax_loss_harvesting": False}
        )
        report = plan_rebalance(
            snapshot,
            targets,
            plain,
            cash_target=cash_target,
            broker=broker,
            today=today,
            scrip_groups=scrip_groups,
            tax=tax,
        )
        if _dominates(report, plan):  # the solver's gap or time cap: never worse than report
            notes = (*report.notes, "tax: minimise kept the report plan (no better trade-off)")
            plan = replace(report, notes=notes, tax=tax_section(report, model))
    return plan


def _dominates(a: TradePlan, b: TradePlan) -> bool:
    """True when plan ``a`` has no more drift and no more tax than ``b``, and less of one."""
    drift_a, drift_b = a.summary.objective_after, b.summary.objective_after
    tax_a = (a.tax or {}).get("estimated_tax", 0.0)
    tax_b = (b.tax or {}).get("estimated_tax", 0.0)
    no_worse = drift_a <= drift_b + 1e-12 and tax_a <= tax_b + 0.005
    return no_worse and (drift_a < drift_b - 1e-12 or tax_a < tax_b - 0.005)
