"""The Great Expectations price suite (gaps, stale days, split-like jumps, closes > 0)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from rebalance.quality import check_price_history_quality

DAYS = [d.date() for d in pd.bdate_range("2026-09-01", periods=41)]


def _closes() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    moves = 1 + rng.normal(0, 0.01, size=(len(DAYS), 2))
    return pd.DataFrame(100 * np.cumprod(moves, axis=0), index=DAYS, columns=["INFY", "TCS"])


def _check(frame: pd.DataFrame):  # type: ignore[no-untyped-def]
    return check_price_history_quality(
        frame,
        lookback_days=40,
        trading_days=DAYS,
        max_stale_days=3,
        max_missing_days=0,
        split_jump_pct=30.0,
    )


def test_a_clean_history_passes_every_check() -> None:
    report = _check(_closes())
    assert report.success
    assert report.problems == []
    assert {c["check"] for c in report.results["checks"]} == {
        "gaps",
        "stale_days",
        "split_like_jumps",
        "close_positive",
    }


@pytest.mark.parametrize(
    ("edit", "check", "words"),
    [
        ("gap", "gaps", "INFY: no close on 1 trading day(s): 2026-10-01"),
        ("stale", "stale_days", "INFY: close 100.00 unchanged on 5 trading days"),
        ("jump", "split_like_jumps", "a split or bonus not adjusted"),
    ],
)
def test_each_bad_history_fails_its_check_with_the_price_checks_words(
    edit: str, check: str, words: str
) -> None:
    frame = _closes()
    if edit == "gap":
        frame = frame.drop(index=dt.date(2026, 10, 1))
    elif edit == "stale":
        frame.loc[DAYS[10:15], "INFY"] = 100.0
    else:
        frame.loc[DAYS[20:], "INFY"] = frame.loc[DAYS[20:], "INFY"] / 2
    report = _check(frame)
    assert not report.success
    failed = {c["check"] for c in report.results["checks"] if not c["success"]}
    assert failed == {check}
    assert any(words in p for p in report.problems), report.problems
