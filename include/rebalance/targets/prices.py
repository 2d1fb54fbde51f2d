"""Quality check of a daily close history before a risk model uses it.

A pure function over the frame the models take (a date index, one column per symbol, closes in
rupees). Each problem names the symbol and the date and says what to do, e.g.::

    INFY: no close on 2026-11-20 (a trading day); re-fetch the candles or raise max_missing_days
    TCS: close 3,412.50 unchanged on 5 trading days 2026-11-18..2026-11-24 (stale candles or a
        suspended stock); re-fetch the candles or drop the symbol

The caller (the DAG task) stops the lane when the list is not empty, with
``raise_for_problems``. The Great Expectations suite on the cached history (a later step) checks
the same rules so the Data Docs and this message agree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

import pandas as pd

from rebalance.domain.market import IST
from rebalance.errors import InputDataError


class ProblemKind(StrEnum):
    BAD_INDEX = "bad_index"  # dates not unique, not dates
    TOO_SHORT = "too_short"  # fewer closes than the lookback needs
    MISSING = "missing"  # a trading day without a close
    NOT_POSITIVE = "not_positive"  # a close <= 0
    STALE = "stale"  # the same close on too many consecutive days
    JUMP = "jump"  # a one-day move that looks like an unadjusted split or bonus


@dataclass(frozen=True)
class PriceProblem:
    kind: ProblemKind
    symbol: str | None
    day: date | None
    message: str


def _day(value: object) -> date:
    if isinstance(value, datetime | pd.Timestamp):
        return value.date()
    if isinstance(value, date):
        return value
    raise TypeError(value)


def closes_frame(
    closes: Mapping[str, Iterable[tuple[date | datetime | str, float]]],
) -> pd.DataFrame:
    """The models' frame from (timestamp, close) pairs per symbol, e.g. broker daily candles.

    Timestamps may be dates, timezone-aware datetimes (Kite's candles) or ISO strings with an
    offset (SmartAPI's ``2026-11-20T00:00:00+05:30``); each becomes its trading date in IST. A
    day a symbol lacks stays empty, for ``check_price_history`` to report.
    """
    columns: dict[str, dict[date, float]] = {}
    for symbol, pairs in closes.items():
        series: dict[date, float] = {}
        for stamp, close in pairs:
            when = datetime.fromisoformat(stamp) if isinstance(stamp, str) else stamp
            if isinstance(when, datetime):
                if when.tzinfo is None:
                    raise ValueError(f"{symbol}: timestamp {stamp!r} has no timezone")
                when = when.astimezone(IST).date()
            series[when] = float(close)
        columns[symbol] = series
    frame = pd.DataFrame(columns, dtype=float)
    return frame.reindex(sorted(frame.index)) if len(frame) else frame


def check_price_history(
    prices: pd.DataFrame,
    *,
    lookback_days: int,
    trading_days: Sequence[date] | None = None,
    max_stale_days: int = 3,
    max_missing_days: int = 0,
    split_jump_pct: float = 30.0,
) -> list[PriceProblem]:
    """Every problem of the last ``lookback_days + 1`` closes of each symbol; empty = usable.

    ``trading_days``: the exchange's trading days up to the last session whose close should be
    there (from ``rebalance.calendar``); only these days are judged, and
    a day in it without a row, or a row with an empty close, is missing. Without it only empty
    cells count. ``max_stale_days``: a close repeated on more consecutive trading days than this
    is stale. ``split_jump_pct``: a close-to-close move of at least this % (up or down) looks like
    a split or bonus the broker did not adjust.
    """
    problems: list[PriceProblem] = []
    try:
        days = [_day(value) for value in prices.index]
    except TypeError as exc:
        return [
            PriceProblem(
                ProblemKind.BAD_INDEX, None, None, f"the index must be dates; got {exc.args[0]!r}"
            )
        ]
    repeated = sorted(d for d, count in Counter(days).items() if count > 1)
    if repeated:
        return [
            PriceProblem(
                ProblemKind.BAD_INDEX,
                None,
                repeated[0],
                f"{len(repeated)} date(s) appear twice, first {repeated[0]}; one close a day",
            )
        ]
    frame = prices.copy()
    frame.index = pd.Index(days)
    frame = frame.sort_index()
    needed = lookback_days + 1
    if trading_days is not None:
        # Judge exactly the exchange's last trading days: a missing one becomes an empty row.
        frame = frame.reindex(sorted(set(trading_days))[-needed:])
    window = frame.iloc[-needed:]
    for column in window.columns:
        problems.extend(
            _check_symbol(
                str(column),
                window[column],
                needed=needed,
                lookback_days=lookback_days,
                max_stale_days=max_stale_days,
                max_missing_days=max_missing_days,
                split_jump_pct=split_jump_pct,
            )
        )
    return problems


def _check_symbol(
    symbol: str,
    window: pd.Series,
    *,
    needed: int,
    lookback_days: int,
    max_stale_days: int,
    max_missing_days: int,
    split_jump_pct: float,
) -> list[PriceProblem]:
    problems: list[PriceProblem] = []
    present = window.dropna()
    if len(window) < needed or not len(present) or present.index[0] != window.index[0]:
        # The history does not reach back to the window's first day (newly listed, or fetched
        # too short); a hole inside the window is a gap instead, below.
        first = f" from {present.index[0]}" if len(present) else ""
        problems.append(
            PriceProblem(
                ProblemKind.TOO_SHORT,
                symbol,
                present.index[0] if len(present) else None,
                f"{symbol}: {len(present)} daily closes{first}; lookback_days {lookback_days} "
                f"needs {needed}: shorten lookback_days or wait for more history (newly listed?)",
            )
        )
        return problems
    missing = [d for d, v in window.items() if pd.isna(v)]
    if len(missing) > max_missing_days:
        shown = ", ".join(str(d) for d in missing[:5]) + (" ..." if len(missing) > 5 else "")
        problems.append(
            PriceProblem(
                ProblemKind.MISSING,
                symbol,
                missing[0],
                f"{symbol}: no close on {len(missing)} trading day(s): {shown}; re-fetch the "
                f"candles, or allow gaps with max_missing_days (now {max_missing_days})",
            )
        )
    for day, value in window.dropna().items():
        if value <= 0:
            problems.append(
                PriceProblem(
                    ProblemKind.NOT_POSITIVE,
                    symbol,
                    _day(day),
                    f"{symbol}: close {value:g} on {day} is not a price; re-fetch the candles",
                )
            )
    closes = window.dropna()
    problems.extend(_stale_runs(symbol, closes, max_stale_days))
    previous = closes.shift(1)
    moves = (closes / previous - 1.0) * 100.0
    for day, move in moves.dropna().items():
        if abs(move) >= split_jump_pct:
            before = float(previous.loc[day])
            problems.append(
                PriceProblem(
                    ProblemKind.JUMP,
                    symbol,
                    _day(day),
                    f"{symbol}: close moved {move:+.1f}% on {day} ({before:,.2f} -> "
                    f"{float(closes.loc[day]):,.2f}): a split or bonus not adjusted in the "
                    "history? use adjusted candles or a lookback that starts after it",
                )
            )
    return problems


def _stale_runs(symbol: str, closes: pd.Series, max_stale_days: int) -> Iterable[PriceProblem]:
    """A run of more than ``max_stale_days`` equal consecutive closes."""
    run_start = 0
    values = closes.to_list()
    days = list(closes.index)
    for i in range(1, len(values) + 1):
        if i < len(values) and values[i] == values[run_start]:
            continue
        length = i - run_start
        if length > max_stale_days:
            yield PriceProblem(
                ProblemKind.STALE,
                symbol,
                days[run_start],
                f"{symbol}: close {values[run_start]:,.2f} unchanged on {length} trading days "
                f"{days[run_start]}..{days[i - 1]} (stale candles or a suspended stock); "
                "re-fetch the candles or drop the symbol",
            )
        run_start = i


def raise_for_problems(problems: Sequence[PriceProblem], source: str) -> None:
    """Stop with ``InputDataError`` listing every problem (``source`` names the history)."""
    if problems:
        raise InputDataError(source, [p.message for p in problems])
