"""The replacement rule: exits paired with entries, each with its reason."""

from __future__ import annotations

import pytest

from rebalance.targets.universe import (
    ENTRY_TAG,
    EXIT_TAG,
    plan_replacements,
    ranking,
    replaced_weights,
)

HELD = ["INFY", "TCS", "ITC"]
# Ranks: INFY 1, TCS 2, HCLTECH 3, LT 4, ITC 5, SBIN 6.
SCORES = {"INFY": 0.9, "TCS": 0.8, "ITC": 0.2, "HCLTECH": 0.7, "LT": 0.6, "SBIN": 0.1}


def test_a_symbol_leaving_the_top_m_is_replaced_by_the_best_not_held() -> None:
    result = plan_replacements(HELD, SCORES, leaves_top=3)
    [exit_] = result.exits
    [entry] = result.entries
    assert (exit_.symbol, exit_.rank, exit_.replaced_by, exit_.tag) == (
        "ITC",
        5,
        "HCLTECH",
        EXIT_TAG,
    )
    assert exit_.detail == (
        "replacement: ITC ranks 5 of 6, outside the top 3 (replace_when.leaves_top); "
        "replaced by HCLTECH"
    )
    assert (entry.symbol, entry.rank, entry.replaces, entry.tag) == ("HCLTECH", 3, "ITC", ENTRY_TAG)
    assert entry.detail == (
        "replacement: HCLTECH is the best-scoring symbol not held (rank 3 of 6, score 0.7); "
        "replaces ITC"
    )
    assert result.members(HELD) == ["INFY", "TCS", "HCLTECH"]
    assert result.notes == ()


def test_a_score_below_the_threshold_is_replaced() -> None:
    result = plan_replacements(HELD, SCORES, score_below=0.5)
    assert [(e.symbol, e.replaced_by) for e in result.exits] == [("ITC", "HCLTECH")]
    assert "score 0.2 is below 0.5 (replace_when.score_below)" in result.exits[0].detail


def test_no_qualifying_candidate_keeps_the_symbol_and_says_why() -> None:
    # Only SBIN is not held and within the watchlist, and it would itself leave the top 3.
    result = plan_replacements(HELD, SCORES, leaves_top=3, candidates=["SBIN"])
    assert result.exits == ()
    assert result.entries == ()
    assert result.notes == (
        "ITC: ranks 5 of 6, outside the top 3 (replace_when.leaves_top), but no candidate "
        "qualifies; kept",
    )


def test_worst_exits_first_and_max_entries() -> None:
    held = ["INFY", "ITC", "SBIN"]
    both = plan_replacements(held, SCORES, leaves_top=4)
    assert [(e.symbol, e.replaced_by) for e in both.exits] == [("SBIN", "TCS"), ("ITC", "HCLTECH")]
    one = plan_replacements(held, SCORES, leaves_top=4, max_entries=1)
    assert [(e.symbol, e.replaced_by) for e in one.exits] == [("SBIN", "TCS")]
    assert one.notes == (
        "ITC: ranks 5 of 6, outside the top 4 (replace_when.leaves_top), but pick.max_entries 1 "
        "reached; kept",
    )


def test_lists_and_unscored_holdings_are_respected() -> None:
    result = plan_replacements(
        [*HELD, "WIPRO"], SCORES, leaves_top=3, never_sell=["ITC"], never_buy=["HCLTECH"]
    )
    assert result.exits == ()
    assert (
        "ITC: ranks 5 of 6, outside the top 3 (replace_when.leaves_top), but it is on the "
        "no-sell list; kept" in result.notes
    )
    assert "WIPRO: held but not scored by the universe; kept" in result.notes
    swapped = plan_replacements(HELD, SCORES, leaves_top=4, never_buy=["HCLTECH"])
    assert [(e.symbol, e.replaced_by) for e in swapped.exits] == [("ITC", "LT")]


def test_fixed_weights_follow_the_replacement_and_ties_rank_by_symbol() -> None:
    result = plan_replacements(HELD, SCORES, leaves_top=3)
    assert replaced_weights({"INFY": 0.5, "TCS": 0.3, "ITC": 0.2}, result) == {
        "INFY": 0.5,
        "TCS": 0.3,
        "HCLTECH": 0.2,
    }
    assert ranking({"B": 1.0, "A": 1.0, "C": 2.0}) == {"C": 1, "A": 2, "B": 3}
    with pytest.raises(ValueError, match="leaves_top and/or score_below"):
        plan_replacements(HELD, SCORES)
