"""Scores for the ``scores`` model and the replacement universe: a file, or an installed function.

* A scores file is a CSV with the header ``symbol,score`` or ``symbol,score,as_of`` (ISO date).
  Errors name the file, the line and the field: ``scores.csv: invalid data - row 4, score: not a
  number ('abc')``.
* A watchlist file is a list of symbols, best first: one a line (``#`` starts a comment), or a CSV
  whose header has a ``symbol`` column.
* A scoring function is code the user installs as a package that declares an entry point in the
  group ``rebalance.scores``::

      [project.entry-points."rebalance.scores"]
      momentum = "my_signals.momentum:score"

  with ``def score(as_of: datetime.date, candidates: tuple[str, ...] | None) -> Mapping[str,
  float]``. A portfolio file names only the entry point (``entry_point: momentum``), never a module
  path: what runs is what the operator installed into the environment. It is loaded inside the
  task, never at DAG parse time.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from importlib.metadata import entry_points
from numbers import Real
from pathlib import Path

from rebalance.errors import InputDataError
from rebalance.targets.config import SYMBOL

ENTRY_POINT_GROUP = "rebalance.scores"
ScoringFunction = Callable[[date, tuple[str, ...] | None], Mapping[str, float]]


@dataclass(frozen=True)
class ScoreTable:
    """Scores by symbol (higher is better), the latest ``as_of`` given, and where they came from."""

    scores: dict[str, float]
    as_of: date | None
    source: str


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputDataError(str(path), [f"cannot read the file: {exc}"]) from None
    if not rows:
        raise InputDataError(str(path), ["the file is empty; expected a header symbol,score"])
    return [cell.strip() for cell in rows[0]], rows[1:]


def read_scores_csv(path: Path | str) -> ScoreTable:
    """Read ``symbol,score[,as_of]``; every bad row is reported (row = the file's line number)."""
    path = Path(path)
    header, rows = _read_rows(path)
    allowed = ("symbol", "score", "as_of")
    problems = [
        f"header: unknown column {name!r} (expected symbol,score[,as_of])"
        for name in header
        if name not in allowed
    ]
    problems += [
        f"header: missing column {name!r}" for name in ("symbol", "score") if name not in header
    ]
    if problems:
        raise InputDataError(str(path), problems)
    column = {name: header.index(name) for name in header}
    scores: dict[str, float] = {}
    first_row: dict[str, int] = {}
    dates: list[date] = []
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.append(f"row {line}: {len(row)} fields, the header has {len(header)}")
            continue
        symbol = row[column["symbol"]].strip()
        raw_score = row[column["score"]].strip()
        if not SYMBOL.match(symbol):
            problems.append(
                f"row {line}, symbol: {symbol!r} is not a symbol (upper case, e.g. INFY)"
            )
        elif symbol in first_row:
            problems.append(
                f"row {line}, symbol: duplicate {symbol} (first on row {first_row[symbol]})"
            )
        try:
            score = float(raw_score)
        except ValueError:
            problems.append(f"row {line}, score: not a number ({raw_score!r})")
            continue
        if not math.isfinite(score):
            problems.append(f"row {line}, score: must be a finite number ({raw_score!r})")
            continue
        if "as_of" in column:
            raw_day = row[column["as_of"]].strip()
            try:
                dates.append(date.fromisoformat(raw_day))
            except ValueError:
                problems.append(f"row {line}, as_of: not a date YYYY-MM-DD ({raw_day!r})")
        if SYMBOL.match(symbol) and symbol not in first_row:
            first_row[symbol] = line
            scores[symbol] = score
    if not problems and not scores:
        problems.append("no rows: at least one symbol,score is needed")
    if problems:
        raise InputDataError(str(path), problems)
    return ScoreTable(scores, max(dates) if dates else None, str(path))


def read_watchlist(path: Path | str) -> tuple[str, ...]:
    """Symbols best first: one a line (``#`` comments), or a CSV with a ``symbol`` column."""
    path = Path(path)
    header, rows = _read_rows(path)
    problems: list[str] = []
    symbols: list[str] = []
    if "symbol" in header:
        index, numbered = header.index("symbol"), list(enumerate(rows, start=2))
    else:
        index, numbered = 0, [(1, header), *enumerate(rows, start=2)]
    seen: dict[str, int] = {}
    for line, row in numbered:
        cell = row[index].split("#", 1)[0].strip() if len(row) > index else ""
        if not cell:
            continue
        if not SYMBOL.match(cell):
            problems.append(f"row {line}, symbol: {cell!r} is not a symbol (upper case, e.g. INFY)")
        elif cell in seen:
            problems.append(f"row {line}, symbol: duplicate {cell} (first on row {seen[cell]})")
        else:
            seen[cell] = line
            symbols.append(cell)
    if not problems and not symbols:
        problems.append("no symbols")
    if problems:
        raise InputDataError(str(path), problems)
    return tuple(symbols)


def watchlist_scores(symbols: Iterable[str], source: str = "watchlist") -> ScoreTable:
    """A watchlist's order as scores: the first of N symbols scores N, the last 1."""
    ordered = list(symbols)
    return ScoreTable(
        {symbol: float(len(ordered) - i) for i, symbol in enumerate(ordered)}, None, source
    )


def check_scores_age(table: ScoreTable, *, today: date, max_age_days: int) -> None:
    """Refuse scores whose ``as_of`` is older than ``max_age_days`` (or missing)."""
    if table.as_of is None:
        raise InputDataError(
            table.source, [f"as_of: missing; max_age_days {max_age_days} needs dated scores"]
        )
    if table.as_of < today - timedelta(days=max_age_days):
        raise InputDataError(
            table.source,
            [
                f"as_of: scores of {table.as_of} are older than {max_age_days} days on {today}; "
                "refresh the scores"
            ],
        )


def load_scoring_function(name: str) -> ScoringFunction:
    """The installed ``rebalance.scores`` entry point ``name`` (imported now, inside the task)."""
    found = entry_points(group=ENTRY_POINT_GROUP)
    matches = [ep for ep in found if ep.name == name]
    source = f"entry point {ENTRY_POINT_GROUP}:{name}"
    if not matches:
        installed = ", ".join(sorted({ep.name for ep in found})) or "none"
        raise InputDataError(
            source,
            [
                f"not installed (installed: {installed}); install the package that provides it "
                "into the Airflow environment"
            ],
        )
    try:
        function = matches[0].load()
    except Exception as exc:  # the user's package failed to import: say which and why
        raise InputDataError(source, [f"{matches[0].value} failed to load: {exc!r}"]) from exc
    if not callable(function):
        raise InputDataError(source, [f"{matches[0].value} is not a function"])
    return function


def scores_from_entry_point(
    name: str, *, as_of: date, candidates: Iterable[str] | None = None
) -> ScoreTable:
    """Call the installed scoring function and check what it returns (symbols, finite numbers)."""
    function = load_scoring_function(name)
    source = f"entry point {ENTRY_POINT_GROUP}:{name}"
    wanted = tuple(candidates) if candidates is not None else None
    try:
        result = function(as_of, wanted)
    except Exception as exc:  # the user's code failed: stop the lane naming it, not a bare trace
        raise InputDataError(source, [f"failed while scoring: {exc!r}"]) from exc
    if not isinstance(result, Mapping):
        raise InputDataError(
            source, [f"returned {type(result).__name__}; expected a mapping symbol -> score"]
        )
    problems: list[str] = []
    scores: dict[str, float] = {}
    for symbol, value in result.items():
        if not isinstance(symbol, str) or not SYMBOL.match(symbol):
            problems.append(f"{symbol!r}: not a symbol (upper case, e.g. INFY)")
            continue
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            problems.append(f"{symbol}: score must be a finite number, got {value!r}")
            continue
        scores[symbol] = float(value)
    if not problems and not scores:
        problems.append("returned no scores")
    if problems:
        raise InputDataError(source, problems)
    return ScoreTable(scores, as_of, source)
