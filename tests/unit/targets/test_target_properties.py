"""Properties of the capped weights every model shares: sum to 1, within bounds, order kept."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from rebalance.targets.config import ScoreWeighting
from rebalance.targets.models import bounded_weights, score_weights

bases = st.dictionaries(
    st.from_regex(r"[A-Z]{2,6}", fullmatch=True),
    st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
    min_size=1,
    max_size=40,
)


@st.composite
def feasible(draw: st.DrawFn) -> tuple[dict[str, float], float, float]:
    base = draw(bases)
    n = len(base)
    low = draw(st.floats(min_value=0.0, max_value=1.0 / n))
    high = draw(st.floats(min_value=max(low, 1.0 / n), max_value=1.0))
    return base, low, high


@settings(max_examples=300, deadline=None)
@given(feasible())
def test_bounded_weights_sum_to_one_within_bounds_and_keep_the_order(
    case: tuple[dict[str, float], float, float],
) -> None:
    base, low, high = case
    weights = bounded_weights(base, min_weight=low, max_weight=high)
    assert set(weights) == set(base)
    assert abs(sum(weights.values()) - 1.0) < 1e-9
    for weight in weights.values():
        assert low - 1e-12 <= weight <= high + 1e-12
    ordered = sorted(base, key=base.__getitem__)
    for smaller, larger in itertools.pairwise(ordered):
        if base[smaller] < base[larger] or all(v == 0 for v in base.values()):
            assert weights[smaller] <= weights[larger] + 1e-12


@settings(max_examples=200, deadline=None)
@given(bases, st.integers(min_value=1, max_value=50))
def test_scores_hold_the_best_top_n(scores: dict[str, float], top_n: int) -> None:
    result = score_weights(scores, top_n=top_n, weighting=ScoreWeighting.EQUAL)
    held = set(result.weights)
    assert len(held) == min(top_n, len(scores))
    worst_held = min(scores[s] for s in held)
    assert all(scores[s] <= worst_held for s in scores if s not in held)
    assert abs(sum(result.weights.values()) - 1.0) < 1e-9
