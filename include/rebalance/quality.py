"""Data-quality checks of a holdings snapshot: a Great Expectations suite plus its Data Docs.

Pandera (``rebalance.schemas``) checks the *shape* of the table when the snapshot is built: types,
ranges, unique symbols. This module checks whether the data is fit to trade on *now*:

- every target symbol of the portfolio has a row in the quotes, with a price;
- every price that matters (a held or a target symbol) is present, > 0 and finite;
- quantities are whole and >= 0, the sellable quantity is within the held quantity, symbols unique;
- quantity x last_price is a finite, non-negative value, and agrees with a ``value`` column when a
  broker supplies one;
- the snapshot is not older than ``max_age`` (nor in the future) relative to ``now``;
- each quote is not older than ``price_max_age`` when the snapshot carries an ``as_of`` column
  (the quote's timestamp).

``check_snapshot`` never raises on bad data: it returns a QualityReport whose ``problems`` are lines
a person can act on (``row 3 (TCS): last_price is missing``). ``validate_snapshot`` is the
validate_snapshot task's judgement of a stored snapshot (the Pandera schema, then this suite); the
task (``tasks.validate_snapshot``) records its problems on the run, marks it invalid and stops the
lane. ``raise_for_report`` turns a failed report into an InputDataError (the tests use it; no task
does).

Great Expectations is heavy to import (seconds): it is imported inside ``check_snapshot`` only, so
importing this module stays cheap for DAG parsing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rebalance.errors import InputDataError

if TYPE_CHECKING:
    import pandas as pd

    from rebalance.snapshot import HoldingsSnapshot

SUITE_NAME = "holdings_snapshot_quality"
DOCS_SITE_NAME = "snapshot_quality"

#: A share price above this is a unit error (paise for rupees, a bad feed), not a real price.
MAX_PRICE_INR = 10_000_000.0
#: A supplied ``value`` column may differ from quantity x last_price by this much (the larger wins):
#: brokers round, and value and last price may be read a moment apart.
VALUE_TOLERANCE_PCT = 0.5
VALUE_TOLERANCE_INR = 1.0
#: A snapshot or quote stamped later than ``now`` by more than this is a clock or feed error.
FUTURE_SKEW = timedelta(minutes=5)
#: Optional columns a snapshot's positions may carry beyond ``snapshot.COLUMNS``.
VALUE_COLUMN = "value"
QUOTE_TIME_COLUMN = "as_of"
#: How many unexpected values each expectation keeps in ``QualityReport.results``.
SAMPLE_SIZE = 5


@dataclass(frozen=True)
class QualityReport:
    """The outcome of one data-quality validation of a snapshot.

    ``results`` is JSON-able: ``{"suite", "success", "evaluated", "failed", "checks": [{"check",
    "expectation", "column", "success", "unexpected_count", "unexpected_sample", "observed_value"}],
    "skipped": [...], "data_docs": {...} | None}``.
    """

    success: bool
    problems: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    docs_path: str | None = None


@dataclass(frozen=True)
class SnapshotValidation:
    """A stored snapshot judged (``validate_snapshot``): what the run records as ``validation``."""

    success: bool
    problems: list[str]
    record: dict[str, Any]  # JSON-able, the run's ``validation`` column
    docs_path: str | None = None


def validate_snapshot(
    snapshot: HoldingsSnapshot,
    *,
    source: str,
    target_symbols: Collection[str],
    now: datetime,
    max_age: timedelta,
    docs_dir: Path | None,
) -> SnapshotValidation:
    """The Pandera schema (``snapshot.snapshot_from_frame``), then the quality suite
    (``check_snapshot``): the validate_snapshot task's judgement of a stored snapshot."""
    from rebalance.snapshot import snapshot_from_frame

    try:
        snapshot_from_frame(
            snapshot.positions, source=source, cash=snapshot.cash, taken_at=snapshot.taken_at
        )
    except InputDataError as exc:
        record: dict[str, Any] = {"schema": "failed", "success": False, "problems": exc.problems}
        return SnapshotValidation(False, exc.problems, record)
    report = check_snapshot(
        snapshot, target_symbols=target_symbols, now=now, max_age=max_age, docs_dir=docs_dir
    )
    record = {
        "success": report.success,
        "problems": report.problems,
        "results": report.results,
        "docs_path": report.docs_path,
    }
    return SnapshotValidation(report.success, report.problems, record, report.docs_path)


def raise_for_report(report: QualityReport, source: str) -> None:
    """Raise InputDataError (naming the bad rows) when the report failed; do nothing otherwise."""
    if not report.success:
        raise InputDataError(source, report.problems or ["data-quality validation failed"])


def check_snapshot(
    snapshot: HoldingsSnapshot,
    *,
    target_symbols: Collection[str],
    now: datetime,
    max_age: timedelta,
    docs_dir: Path | None,
    price_max_age: timedelta | None = None,
) -> QualityReport:
    """Validate ``snapshot`` with the Great Expectations suite; write Data Docs under ``docs_dir``.

    ``now`` and ``snapshot.taken_at`` must be timezone-aware. Rows are named by their index in
    ``snapshot.positions`` (0-based) and their symbol. With ``docs_dir``, the site (index.html, the
    suite and this validation's page) is written there; give each run its own directory.
    """
    if now.tzinfo is None or snapshot.taken_at.tzinfo is None:
        raise ValueError("check_snapshot: now and snapshot.taken_at must be timezone-aware")
    if max_age <= timedelta(0):
        raise ValueError(f"check_snapshot: max_age must be positive, got {max_age}")
    if price_max_age is not None and price_max_age <= timedelta(0):
        raise ValueError(f"check_snapshot: price_max_age must be positive, got {price_max_age}")

    targets = sorted({str(s).strip().upper() for s in target_symbols})
    frame = _check_frame(snapshot, targets, now)
    has_value = VALUE_COLUMN in frame.columns
    has_quote_time = "quote_age_s" in frame.columns
    skipped: list[str] = []
    if not has_value:
        skipped.append("value_consistent: the snapshot has no value column to compare with")
    if price_max_age is None:
        skipped.append("quote_fresh: no price_max_age given")
    elif not has_quote_time:
        skipped.append(
            "quote_fresh: the snapshot has no as_of column (quote time); only the snapshot's "
            "age is checked"
        )
    check_quotes = price_max_age is not None and has_quote_time

    validation = _run_suite(
        frame,
        targets=targets,
        max_age=max_age,
        price_max_age=price_max_age if check_quotes else None,
        with_value=has_value,
        now=now,
        asset_name=f"{snapshot.broker}_{snapshot.account}",
        docs_dir=docs_dir,
    )

    checks: list[dict[str, Any]] = []
    problems: list[str] = []
    for result in validation["results"]:
        summary, lines = _describe(result, frame, snapshot, now, max_age, price_max_age)
        checks.append(summary)
        problems.extend(lines)
    success = bool(validation["success"])
    if not success and not problems:  # never a silent failure
        problems.append("data-quality validation failed (see the Data Docs)")
    results: dict[str, Any] = {
        "suite": SUITE_NAME,
        "success": success,
        "evaluated": len(checks),
        "failed": sum(1 for c in checks if not c["success"]),
        "checks": checks,
        "skipped": skipped,
        "data_docs": validation["data_docs"],
    }
    docs_path = validation["data_docs"]["index"] if validation["data_docs"] else None
    return QualityReport(success=success, problems=problems, results=results, docs_path=docs_path)


# --- the table the suite runs on -----------------------------------------------------------


def _check_frame(snapshot: HoldingsSnapshot, targets: list[str], now: datetime) -> pd.DataFrame:
    """Positions plus the derived columns the expectations read (one row per position)."""
    import numpy as np
    import pandas as pd

    positions = snapshot.positions
    frame = pd.DataFrame(index=positions.index)
    frame["symbol"] = positions["symbol"].astype(object)
    frame["exchange"] = positions["exchange"].astype(object)
    frame["quantity"] = pd.to_numeric(positions["quantity"], errors="coerce").astype(float)
    frame["sellable_quantity"] = pd.to_numeric(
        positions["sellable_quantity"], errors="coerce"
    ).astype(float)
    frame["last_price"] = pd.to_numeric(positions["last_price"], errors="coerce").astype(float)
    target_set = set(targets)
    frame["is_target"] = frame["symbol"].isin(target_set)
    frame["needs_price"] = frame["is_target"] | (frame["quantity"].fillna(0) != 0)
    for column in ("quantity", "sellable_quantity"):
        values = frame[column]
        whole = values.notna() & np.isfinite(values) & (values == np.floor(values))
        frame[f"{column}_is_whole"] = whole | values.isna()  # a missing value fails elsewhere
    frame["market_value"] = frame["quantity"] * frame["last_price"]
    if VALUE_COLUMN in positions.columns:
        reported = pd.to_numeric(positions[VALUE_COLUMN], errors="coerce").astype(float)
        frame[VALUE_COLUMN] = reported
        frame["value_gap_inr"] = (reported - frame["market_value"]).abs()
        frame["value_tolerance_inr"] = np.maximum(
            VALUE_TOLERANCE_INR, frame["market_value"].abs() * VALUE_TOLERANCE_PCT / 100
        )
    frame["snapshot_age_s"] = (now - snapshot.taken_at).total_seconds()
    if QUOTE_TIME_COLUMN in positions.columns:
        stamps = pd.to_datetime(positions[QUOTE_TIME_COLUMN], errors="coerce", utc=True)
        frame["quote_age_s"] = (pd.Timestamp(now).tz_convert("UTC") - stamps).dt.total_seconds()
    return frame


# --- the checks: one record each ------------------------------------------------------------


@dataclass(frozen=True)
class _Suite:
    """What the checks' expectations are built from (GX's row condition included)."""

    targets: list[str]
    max_age: timedelta
    price_max_age: timedelta | None
    with_value: bool
    needs_price: Any  # GX row condition: the row is held or a target


@dataclass
class _Failure:
    """A failed check, as its ``explain`` reads it; ``summary`` may be amended."""

    check: str
    kwargs: dict[str, Any]
    indexes: list[Any]
    frame: pd.DataFrame
    snapshot: HoldingsSnapshot
    now: datetime
    max_age: timedelta
    price_max_age: timedelta | None
    summary: dict[str, Any]

    def row(self, i: Any) -> str:
        return f"row {i} ({_symbol(self.frame, i)})"

    def value(self, i: Any, column: str) -> Any:
        return _jsonable(self.frame.at[i, column]) if i in self.frame.index else None

    def each(self, line: Callable[[Any], str]) -> list[str]:
        """One line per unexpected row, each ending with the check's name."""
        return [f"{line(i)} ({self.check})" for i in self.indexes]


@dataclass(frozen=True)
class Check:
    """One data-quality check: its name, the Great Expectations expectation that runs it (class
    and arguments, description included) and the lines a person reads when it fails."""

    name: str
    expectation: str  # a class of ``great_expectations.expectations``
    arguments: Callable[[_Suite], dict[str, Any]]
    explain: Callable[[_Failure], list[str]]
    applies: Callable[[_Suite], bool] = lambda suite: True


def _missing_targets(failure: _Failure) -> list[str]:
    present = set(failure.frame["symbol"].dropna())
    missing = sorted(set(failure.kwargs.get("value_set") or []) - present)
    failure.summary["missing_targets"] = missing
    failure.summary["unexpected_count"] = len(missing)
    return [
        f"target symbol {s}: no row with a price in the quotes ({failure.check})" for s in missing
    ]


def _stale_snapshot(failure: _Failure) -> list[str]:
    taken_at, now = failure.snapshot.taken_at, failure.now
    age = now - taken_at
    if age < timedelta(0):
        return [
            f"snapshot taken_at {taken_at.isoformat()} is {_duration(-age)} in the future of "
            f"{now.isoformat()} (clock or feed error) ({failure.check})"
        ]
    return [
        f"snapshot taken_at {taken_at.isoformat()} is {_duration(age)} old at {now.isoformat()}; "
        f"the limit is {_duration(failure.max_age)} ({failure.check})"
    ]


def _stale_quotes(failure: _Failure) -> list[str]:
    limit = _duration(failure.price_max_age) if failure.price_max_age else "?"
    lines = []
    for i in failure.indexes:
        age_s = failure.value(i, "quote_age_s")
        positions = failure.snapshot.positions
        stamp = positions.at[i, QUOTE_TIME_COLUMN] if i in failure.frame.index else None
        when = "in the future" if age_s is not None and age_s < 0 else "old"
        span = _duration(timedelta(seconds=abs(age_s))) if age_s is not None else "?"
        lines.append(
            f"{failure.row(i)}: quote as_of {stamp} is {span} {when}; the limit is {limit} "
            f"(stale price, {failure.check})"
        )
    return lines


def _present(column: str, description: str, **extra: Any) -> Callable[[_Suite], dict[str, Any]]:
    return lambda suite: {"column": column, "description": description, **extra}


def _missing(column: str) -> Callable[[_Failure], list[str]]:
    return lambda f: f.each(lambda i: f"{f.row(i)}: {column} is missing")


def _negative(column: str) -> Callable[[_Failure], list[str]]:
    return lambda f: f.each(
        lambda i: f"{f.row(i)}: {column} must be >= 0 (got {f.value(i, column)})"
    )


def _fractional(column: str) -> Callable[[_Failure], list[str]]:
    return lambda f: f.each(
        lambda i: (
            f"{f.row(i)}: {column} must be a whole number of shares (got {f.value(i, column)})"
        )
    )


#: The suite, in the order it runs (and the Data Docs list it).
CHECKS: tuple[Check, ...] = (
    Check(
        "not_empty",
        "ExpectTableRowCountToBeBetween",
        lambda s: {"min_value": 1, "description": "The snapshot has at least one row."},
        lambda f: ["the snapshot has no rows (no holdings and no quotes)"],
    ),
    Check(
        "symbol_present",
        "ExpectColumnValuesToNotBeNull",
        _present("symbol", "Every row names a symbol."),
        lambda f: f.each(lambda i: f"row {i}: symbol is missing"),
    ),
    Check(
        "symbol_unique",
        "ExpectColumnValuesToBeUnique",
        _present("symbol", "One row per symbol."),
        lambda f: f.each(lambda i: f"{f.row(i)}: symbol appears more than once"),
    ),
    Check(
        "targets_quoted",
        "ExpectColumnDistinctValuesToContainSet",
        lambda s: {
            "column": "symbol",
            "value_set": s.targets,
            "description": "Every target symbol of the portfolio has a row in the quotes.",
        },
        _missing_targets,
        applies=lambda s: bool(s.targets),
    ),
    Check(
        "price_present",
        "ExpectColumnValuesToNotBeNull",
        lambda s: {
            "column": "last_price",
            "row_condition": s.needs_price,
            "description": "Every held or target symbol has a last price.",
        },
        _missing("last_price"),
    ),
    Check(
        "price_positive",
        "ExpectColumnValuesToBeBetween",
        _present(
            "last_price",
            f"Prices are > 0 and finite (at most {MAX_PRICE_INR:,.0f} INR).",
            min_value=0,
            strict_min=True,
            max_value=MAX_PRICE_INR,
        ),
        lambda f: f.each(
            lambda i: (
                f"{f.row(i)}: last_price must be > 0 and at most {MAX_PRICE_INR:,.0f} "
                f"(got {f.value(i, 'last_price')})"
            )
        ),
    ),
    Check(
        "quantity_present",
        "ExpectColumnValuesToNotBeNull",
        _present("quantity", "Every row has a quantity."),
        _missing("quantity"),
    ),
    Check(
        "quantity_non_negative",
        "ExpectColumnValuesToBeBetween",
        _present("quantity", "Never a negative holding.", min_value=0),
        _negative("quantity"),
    ),
    Check(
        "quantity_whole",
        "ExpectColumnValuesToBeInSet",
        _present("quantity_is_whole", "Quantities are whole shares.", value_set=[True]),
        _fractional("quantity"),
    ),
    Check(
        "sellable_present",
        "ExpectColumnValuesToNotBeNull",
        _present("sellable_quantity", "Every row has a sellable quantity."),
        _missing("sellable_quantity"),
    ),
    Check(
        "sellable_non_negative",
        "ExpectColumnValuesToBeBetween",
        _present("sellable_quantity", "The sellable quantity is >= 0.", min_value=0),
        _negative("sellable_quantity"),
    ),
    Check(
        "sellable_whole",
        "ExpectColumnValuesToBeInSet",
        _present(
            "sellable_quantity_is_whole", "Sellable quantities are whole shares.", value_set=[True]
        ),
        _fractional("sellable_quantity"),
    ),
    Check(
        "sellable_within_quantity",
        "ExpectColumnPairValuesAToBeGreaterThanB",
        lambda s: {
            "column_A": "quantity",
            "column_B": "sellable_quantity",
            "or_equal": True,
            "description": "Never sell more than is held: sellable_quantity <= quantity.",
        },
        lambda f: f.each(
            lambda i: (
                f"{f.row(i)}: sellable_quantity {f.value(i, 'sellable_quantity')} exceeds "
                f"quantity {f.value(i, 'quantity')}"
            )
        ),
    ),
    Check(
        "value_finite",
        "ExpectColumnValuesToBeBetween",
        _present(
            "market_value",
            "quantity x last_price is a finite, non-negative number.",
            min_value=0,
            max_value=MAX_PRICE_INR * 1e7,
        ),
        lambda f: f.each(
            lambda i: (
                f"{f.row(i)}: quantity x last_price is not a finite non-negative value "
                f"(got {f.value(i, 'market_value')})"
            )
        ),
    ),
    Check(
        "snapshot_fresh",
        "ExpectColumnMaxToBeBetween",
        lambda s: {
            "column": "snapshot_age_s",
            "min_value": -FUTURE_SKEW.total_seconds(),
            "max_value": s.max_age.total_seconds(),
            "description": (
                f"The snapshot is at most {_duration(s.max_age)} old "
                "(age in seconds at validation time)."
            ),
        },
        _stale_snapshot,
    ),
    Check(
        "value_consistent",
        "ExpectColumnPairValuesAToBeGreaterThanB",
        lambda s: {
            "column_A": "value_tolerance_inr",
            "column_B": "value_gap_inr",
            "or_equal": True,
            "description": (
                "A supplied value agrees with quantity x last_price within "
                f"{VALUE_TOLERANCE_PCT}% or {VALUE_TOLERANCE_INR:.0f} INR."
            ),
        },
        lambda f: f.each(
            lambda i: (
                f"{f.row(i)}: value {f.value(i, VALUE_COLUMN)} differs from quantity x "
                f"last_price {f.value(i, 'market_value')} by {f.value(i, 'value_gap_inr')} INR, "
                f"more than the tolerance {f.value(i, 'value_tolerance_inr')}"
            )
        ),
        applies=lambda s: s.with_value,
    ),
    Check(
        "quote_time_present",
        "ExpectColumnValuesToNotBeNull",
        lambda s: {
            "column": "quote_age_s",
            "row_condition": s.needs_price,
            "description": "Every held or target symbol's quote has a time (as_of).",
        },
        lambda f: f.each(lambda i: f"{f.row(i)}: the quote has no as_of time"),
        applies=lambda s: s.price_max_age is not None,
    ),
    Check(
        "quote_fresh",
        "ExpectColumnValuesToBeBetween",
        lambda s: {
            "column": "quote_age_s",
            "min_value": -FUTURE_SKEW.total_seconds(),
            "max_value": s.price_max_age.total_seconds() if s.price_max_age else None,
            "description": f"Quotes are at most {_duration(s.price_max_age or timedelta())} old.",
        },
        _stale_quotes,
        applies=lambda s: s.price_max_age is not None,
    ),
)
CHECK_NAMED = {check.name: check for check in CHECKS}


def _expectations(
    targets: list[str],
    *,
    max_age: timedelta,
    price_max_age: timedelta | None,
    with_value: bool,
) -> list[Any]:
    """The GX expectations of the checks that apply, each tagged with its check's name."""
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    needs_price = Column("needs_price") == True  # noqa: E712 (a GX condition, not a comparison)
    suite = _Suite(targets, max_age, price_max_age, with_value, needs_price)
    return [
        getattr(gx.expectations, check.expectation)(
            **check.arguments(suite), meta={"check": check.name}
        )
        for check in CHECKS
        if check.applies(suite)
    ]


def _ephemeral_context() -> Any:
    """A Great Expectations context in memory only: no files, no analytics, no progress bars,
    no Data Docs site (``_run_suite`` writes the run's page itself when asked)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites={},
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def _run_suite(
    frame: pd.DataFrame,
    *,
    targets: list[str],
    max_age: timedelta,
    price_max_age: timedelta | None,
    with_value: bool,
    now: datetime,
    asset_name: str,
    docs_dir: Path | None,
) -> dict[str, Any]:
    """Build an ephemeral (in-memory) context, run the suite once, optionally write Data Docs.

    A fresh context per call keeps the function pure (no state shared between runs, a Data Docs
    index listing only this validation); building it costs milliseconds next to GX's import.
    """
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    context = _ephemeral_context()
    source = context.data_sources.add_pandas("holdings_snapshot")
    asset = source.add_dataframe_asset(_safe_name(asset_name))
    batch = asset.add_batch_definition_whole_dataframe("snapshot")
    # The whole suite in one store write: add_expectation() re-serialises the suite every time.
    expectations = _expectations(
        targets, max_age=max_age, price_max_age=price_max_age, with_value=with_value
    )
    suite = context.suites.add(gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(
            name=f"{SUITE_NAME}_{_safe_name(asset_name)}", data=batch, suite=suite
        )
    )
    result_format = {"result_format": "COMPLETE"}
    run_id = RunIdentifier(run_name=f"{asset_name} {now.isoformat()}", run_time=now)
    docs: dict[str, Any] | None = None
    if docs_dir is None:
        result = definition.run(
            batch_parameters={"dataframe": frame}, result_format=result_format, run_id=run_id
        )
    else:
        docs_dir = Path(docs_dir).resolve()
        docs_dir.mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site(
            DOCS_SITE_NAME,
            {
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"{SUITE_NAME}_checkpoint",
                validation_definitions=[definition],
                actions=[
                    gx.checkpoint.UpdateDataDocsAction(
                        name="update_data_docs", site_names=[DOCS_SITE_NAME]
                    )
                ],
                result_format=result_format,
            )
        )
        checkpoint_result = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=run_id)
        ((identifier, result),) = checkpoint_result.run_results.items()
        index = docs_dir / "index.html"
        pages = sorted(str(p) for p in (docs_dir / "validations").rglob("*.html"))
        suite_pages = sorted(str(p) for p in (docs_dir / "expectations").rglob("*.html"))
        docs = {
            "index": str(index),
            "validation_pages": pages,
            "suite_pages": suite_pages,
            "validation_id": str(identifier),
        }
    return {"success": bool(result.success), "results": result.results, "data_docs": docs}


# --- turning results into lines a person acts on --------------------------------------------


def _describe(
    result: Any,
    frame: pd.DataFrame,
    snapshot: HoldingsSnapshot,
    now: datetime,
    max_age: timedelta,
    price_max_age: timedelta | None,
) -> tuple[dict[str, Any], list[str]]:
    config = result.expectation_config
    check = str((config.meta or {}).get("check", config.type))
    kwargs = dict(config.kwargs)
    detail = dict(result.result or {})
    indexes = [i for i in detail.get("unexpected_index_list") or [] if not isinstance(i, dict)]
    summary: dict[str, Any] = {
        "check": check,
        "expectation": config.type,
        "column": kwargs.get("column")
        or ", ".join(str(kwargs[k]) for k in ("column_A", "column_B") if k in kwargs)
        or None,
        "success": bool(result.success),
        "unexpected_count": int(detail.get("unexpected_count") or 0),
        "unexpected_sample": _jsonable(
            list(detail.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]
        ),
        "unexpected_rows": [
            {"row": _jsonable(i), "symbol": _symbol(frame, i)} for i in indexes[:SAMPLE_SIZE]
        ],
        "observed_value": _jsonable(detail.get("observed_value")),
    }
    if result.exception_info and result.exception_info.get("raised_exception"):
        message = str(result.exception_info.get("exception_message"))
        summary["error"] = message
        return summary, [f"check {check} could not run: {message}"]
    if result.success:
        return summary, []

    known = CHECK_NAMED.get(check)
    lines: list[str] = []
    if known is not None:
        failure = _Failure(
            check, kwargs, indexes, frame, snapshot, now, max_age, price_max_age, summary
        )
        lines = known.explain(failure)
    if not lines:
        lines.append(
            f"check {check} failed on {summary['column'] or 'the table'}: "
            f"{summary['unexpected_count']} unexpected value(s), "
            f"e.g. {summary['unexpected_sample']}"
        )
    return summary, lines


def _symbol(frame: pd.DataFrame, index: Any) -> str:
    if index in frame.index:
        symbol = frame.at[index, "symbol"]
        if isinstance(symbol, str) and symbol:
            return symbol
    return "?"


def _duration(span: timedelta) -> str:
    seconds = round(span.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if secs or not parts:
        parts.append(f"{secs}s")
    return " ".join(parts)


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "snapshot"


def _jsonable(value: Any) -> Any:
    """Numbers, strings, None, lists and dicts only (numpy scalars and NaN made plain)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float):
        return None if math.isnan(value) else (str(value) if math.isinf(value) else value)
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


# --- the price history a risk model reads (issue 17) ----------------------------------------

PRICE_SUITE_NAME = "price_history_quality"


def price_check_frame(
    prices: pd.DataFrame, trading_days: list[Any], lookback_days: int
) -> pd.DataFrame:
    """One row per symbol and trading day of the window: the close, and per row the symbol's
    missing days, the length of the equal-close run ending that day and the move from the
    previous close in % (what the price expectations judge)."""
    import pandas as pd

    window = sorted(set(trading_days))[-(lookback_days + 1) :]
    frame = prices.copy()
    frame.index = pd.Index([d.date() if isinstance(d, datetime) else d for d in frame.index])
    frame = frame.reindex(window)
    rows = []
    for symbol in frame.columns:
        closes = frame[symbol].astype(float)
        missing = int(closes.isna().sum())
        present = closes.dropna()
        runs = (present != present.shift(1)).cumsum()
        run_length = runs.groupby(runs).cumcount() + 1
        moves = (present / present.shift(1) - 1.0).abs() * 100.0
        for day, close in closes.items():
            rows.append(
                {
                    "symbol": str(symbol),
                    "day": day,
                    "close": close,
                    "missing_days": missing,
                    "stale_run": int(run_length.get(day, 0)),
                    "move_pct": float(moves.get(day, float("nan"))),
                }
            )
    return pd.DataFrame(rows)


def check_price_history_quality(
    prices: pd.DataFrame,
    *,
    lookback_days: int,
    trading_days: list[Any],
    max_stale_days: int,
    max_missing_days: int,
    split_jump_pct: float,
) -> QualityReport:
    """The Great Expectations suite on a daily close history: gaps, stale runs, split-like jumps,
    closes > 0. The problem lines are those of ``targets.prices.check_price_history`` (one rule,
    one wording); GX records which expectation failed and on how many rows."""
    import great_expectations as gx

    from rebalance.targets.prices import check_price_history

    frame = price_check_frame(prices, trading_days, lookback_days)
    expectations = [
        gx.expectations.ExpectColumnValuesToBeBetween(
            column="missing_days", max_value=max_missing_days, meta={"check": "gaps"}
        ),
        gx.expectations.ExpectColumnValuesToBeBetween(
            column="stale_run", max_value=max_stale_days, meta={"check": "stale_days"}
        ),
        gx.expectations.ExpectColumnValuesToBeBetween(
            column="move_pct",
            max_value=split_jump_pct,
            strict_max=True,
            meta={"check": "split_like_jumps"},
        ),
        gx.expectations.ExpectColumnValuesToBeBetween(
            column="close", min_value=0, strict_min=True, meta={"check": "close_positive"}
        ),
    ]
    context = _ephemeral_context()
    batch = (
        context.data_sources.add_pandas("price_history")
        .add_dataframe_asset("closes")
        .add_batch_definition_whole_dataframe("window")
    )
    suite = context.suites.add(
        gx.ExpectationSuite(name=PRICE_SUITE_NAME, expectations=expectations)
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=PRICE_SUITE_NAME, data=batch, suite=suite)
    )
    result = definition.run(batch_parameters={"dataframe": frame})
    checks: list[dict[str, Any]] = []
    for r in result.results:
        expectation = r.expectation_config
        checks.append(
            {
                "check": str((expectation.meta or {}).get("check")) if expectation else "unknown",
                "column": expectation.kwargs.get("column") if expectation else None,
                "success": bool(r.success),
                "unexpected_count": int((r.result or {}).get("unexpected_count") or 0),
            }
        )
    problems = [
        p.message
        for p in check_price_history(
            prices,
            lookback_days=lookback_days,
            trading_days=trading_days,
            max_stale_days=max_stale_days,
            max_missing_days=max_missing_days,
            split_jump_pct=split_jump_pct,
        )
    ]
    success = bool(result.success) and not problems
    if not success and not problems:  # never a silent failure
        failed = ", ".join(str(c["check"]) for c in checks if not c["success"])
        problems.append(f"price history validation failed: {failed}")
    results = {
        "suite": PRICE_SUITE_NAME,
        "success": success,
        "evaluated": len(checks),
        "failed": sum(1 for c in checks if not c["success"]),
        "checks": checks,
    }
    return QualityReport(success=success, problems=problems, results=results)
