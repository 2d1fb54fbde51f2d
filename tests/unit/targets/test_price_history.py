"""The price-history check: gaps, stale closes, split-like jumps and short histories named by
symbol and date."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from target_support import day, flat_history

from rebalance.errors import InputDataError
from rebalance.targets.prices import (
    ProblemKind,
    check_price_history,
    closes_frame,
    raise_for_problems,
)

SYMBOLS = ["INFY", "TCS"]


def test_a_clean_history_has_no_problem() -> None:
    prices = flat_history(SYMBOLS, 61)
    assert check_price_history(prices, lookback_days=60, trading_days=list(prices.index)) == []


def test_a_missing_trading_day_names_the_symbol_and_the_date() -> None:
    prices = flat_history(SYMBOLS, 61)
    trading_days = list(prices.index)
    gap = trading_days[30]
    problems = check_price_history(
        prices.drop(index=gap), lookback_days=59, trading_days=trading_days
    )
    assert {p.kind for p in problems} == {ProblemKind.MISSING}
    assert [(p.symbol, p.day) for p in problems] == [("INFY", gap), ("TCS", gap)]
    assert f"INFY: no close on 1 trading day(s): {gap}" in problems[0].message
    assert "max_missing_days" in problems[0].message
    allowed = check_price_history(
        prices.drop(index=gap), lookback_days=59, trading_days=trading_days, max_missing_days=1
    )
    assert allowed == []


def test_an_empty_close_is_a_gap_without_a_calendar() -> None:
    prices = flat_history(SYMBOLS, 61)
    prices.iloc[10, 1] = np.nan
    [problem] = check_price_history(prices, lookback_days=60)
    assert (problem.kind, problem.symbol, problem.day) == (
        ProblemKind.MISSING,
        "TCS",
        prices.index[10],
    )


def test_a_repeated_close_is_stale() -> None:
    prices = flat_history(SYMBOLS, 61)
    prices.iloc[21:25, 0] = prices.iloc[20, 0]  # five equal closes
    [problem] = check_price_history(prices, lookback_days=60, max_stale_days=3)
    assert (problem.kind, problem.symbol, problem.day) == (
        ProblemKind.STALE,
        "INFY",
        prices.index[20],
    )
    assert f"close {prices.iloc[20, 0]:,.2f} unchanged on 5 trading days" in problem.message
    assert check_price_history(prices, lookback_days=60, max_stale_days=5) == []


def test_a_split_shows_as_a_jump_on_its_day() -> None:
    prices = flat_history(SYMBOLS, 61)
    prices.iloc[40:, 1] = prices.iloc[40:, 1] / 2.0  # a 1:2 split not adjusted
    [problem] = check_price_history(prices, lookback_days=60)
    assert (problem.kind, problem.symbol, problem.day) == (
        ProblemKind.JUMP,
        "TCS",
        prices.index[40],
    )
    assert "split or bonus" in problem.message
    before, after = prices.iloc[39, 1], prices.iloc[40, 1]
    assert (
        f"close moved {(after / before - 1) * 100:+.1f}% on {prices.index[40]}" in problem.message
    )


def test_too_short_a_history_says_how_long_it_is() -> None:
    prices = flat_history(SYMBOLS, 61)
    prices.iloc[:30, 0] = np.nan  # INFY listed 30 days later
    [problem] = check_price_history(prices, lookback_days=60)
    assert problem.kind is ProblemKind.TOO_SHORT
    assert problem.symbol == "INFY"
    assert f"INFY: 31 daily closes from {prices.index[30]}; lookback_days 60 needs 61" in (
        problem.message
    )


def test_duplicate_dates_are_refused() -> None:
    prices = flat_history(SYMBOLS, 10)
    doubled = prices.iloc[[0, 1, 1, 2]]
    [problem] = check_price_history(doubled, lookback_days=2)
    assert problem.kind is ProblemKind.BAD_INDEX
    assert problem.day == prices.index[1]


def test_problems_stop_with_a_message_naming_symbol_and_date() -> None:
    prices = flat_history(SYMBOLS, 61, start="2026-11-02")
    stale = prices.iloc[50, 0]
    prices.iloc[51:56, 0] = stale
    problems = check_price_history(prices, lookback_days=60)
    with pytest.raises(InputDataError) as caught:
        raise_for_problems(problems, "price history of portfolio demo_risk")
    text = str(caught.value)
    assert text.startswith("price history of portfolio demo_risk: invalid data")
    assert f"INFY: close {stale:,.2f} unchanged on 6 trading days {prices.index[50]}.." in text
    assert prices.index[50] == day("2027-01-11")
    raise_for_problems([], "nothing")  # no problem, no error


def test_candles_become_the_frame_with_ist_dates_and_gaps_left_empty() -> None:
    ist = ZoneInfo("Asia/Kolkata")
    frame = closes_frame(
        {
            # Kite: timezone-aware datetimes; SmartAPI: ISO strings with the offset.
            "INFY": [
                (datetime(2026, 11, 19, 0, 0, tzinfo=ist), 1500.0),
                (datetime(2026, 11, 20, 0, 0, tzinfo=ist), 1510.5),
            ],
            "TCS": [("2026-11-18T18:45:00+00:00", 3390.0)],  # the 19th in IST; no 20th
        }
    )
    assert list(frame.index) == [day("2026-11-19"), day("2026-11-20")]
    assert frame.loc[day("2026-11-20"), "INFY"] == 1510.5
    assert frame.loc[day("2026-11-19"), "TCS"] == 3390.0
    [problem] = check_price_history(frame, lookback_days=1)
    assert (problem.kind, problem.symbol, problem.day) == (
        ProblemKind.MISSING,
        "TCS",
        day("2026-11-20"),
    )
    with pytest.raises(ValueError, match=r"INFY: timestamp .* has no timezone"):
        closes_frame({"INFY": [(datetime(2026, 11, 20), 1.0)]})
