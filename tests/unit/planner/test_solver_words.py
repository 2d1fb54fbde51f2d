"""``summary.solver`` in words (rebalance.domain.solver) for every value the planner writes."""

from __future__ import annotations

from rebalance.domain.solver import SOLVER_WORDS, solver_words, stored_solver
from rebalance.planning.optimise import SOLVER_HEURISTIC, SOLVER_OPTIMAL, SOLVER_TIME_CAP


def test_every_solver_the_planner_writes_has_words() -> None:
    assert set(SOLVER_WORDS) == {SOLVER_OPTIMAL, SOLVER_TIME_CAP, SOLVER_HEURISTIC}
    assert solver_words(SOLVER_OPTIMAL) == "optimiser (MILP), proven optimal"


def test_a_stored_plan_says_which_method_made_it() -> None:
    assert stored_solver({"summary": {"solver": SOLVER_TIME_CAP}}).startswith("optimiser")
    # plans stored before the field existed were made by the heuristic; no plan: nothing
    assert stored_solver({"summary": {}}) == "heuristic (fast plan)"
    assert stored_solver(None) == "-"
    assert solver_words("something_new") == "something_new"
