"""Which method made a plan (``summary.solver`` of a TradePlan, docs/planner.md), in words.

Shared by the command line, the history report and the pages. The keys are the planner's
``rebalance.planning.optimise.SOLVER_*`` values; a plan stored before the field existed has none
and was made by the heuristic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SOLVER_WORDS = {
    "milp_optimal": "optimiser (MILP), proven optimal",
    "milp_time_cap": "optimiser (MILP), time cap reached: best plan found",
    "heuristic": "heuristic (fast plan)",
}


def solver_words(solver: str | None) -> str:
    """``summary.solver`` in words; an unknown value is shown as it is."""
    return SOLVER_WORDS.get(solver or "heuristic", str(solver))


def stored_solver(plan: Mapping[str, Any] | None) -> str:
    """The method of a stored plan (``TradePlan.to_dict()``) in words; "-" without a plan."""
    if not plan:
        return "-"
    return solver_words((plan.get("summary") or {}).get("solver"))
