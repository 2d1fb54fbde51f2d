"""rebalance.quality.check_snapshot: the Great Expectations suite on a holdings snapshot.

Bad snapshots are built directly as HoldingsSnapshot (bypassing Pandera) because the point of
the GX suite is to catch what reaches validate_snapshot by any road (history records, brokers).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from rebalance.errors import InputDataError
from rebalance.quality import QualityReport, check_snapshot, raise_for_report
from rebalance.snapshot import HoldingsSnapshot, read_holdings_csv

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEMO_CSV = PROJECT_ROOT / "portfolios" / "data" / "demo_holdings.csv"
IST = ZoneInfo("Asia/Kolkata")
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=IST)
MAX_AGE = timedelta(minutes=30)


@pytest.fixture(scope="module")
def demo() -> HoldingsSnapshot:
    return read_holdings_csv(DEMO_CSV, cash=50_000.0, taken_at=NOW - timedelta(minutes=2))


@pytest.fixture(scope="module")
def targets(demo: HoldingsSnapshot) -> list[str]:
    return list(demo.positions["symbol"])


def _with(
    demo: HoldingsSnapshot, change: Callable[[pd.DataFrame], pd.DataFrame]
) -> HoldingsSnapshot:
    frame = change(demo.positions.copy())
    return HoldingsSnapshot(frame, demo.cash, demo.taken_at, demo.account, demo.broker)


def _check(snapshot: HoldingsSnapshot, targets: list[str], **kwargs: object) -> QualityReport:
    options: dict[str, object] = {"now": NOW, "max_age": MAX_AGE, "docs_dir": None}
    options.update(kwargs)
    return check_snapshot(snapshot, target_symbols=targets, **options)  # type: ignore[arg-type]


def _failed_checks(report: QualityReport) -> set[str]:
    return {c["check"] for c in report.results["checks"] if not c["success"]}


def _row_of(demo: HoldingsSnapshot, symbol: str) -> int:
    return int(demo.positions.index[demo.positions["symbol"] == symbol][0])


def test_demo_snapshot_passes(demo: HoldingsSnapshot, targets: list[str]) -> None:
    report = _check(demo, targets)
    assert report.success, report.problems
    assert report.problems == []
    assert report.docs_path is None
    assert report.results["suite"] == "holdings_snapshot_quality"
    assert report.results["failed"] == 0
    checks = {c["check"] for c in report.results["checks"]}
    assert {
        "targets_quoted",
        "price_present",
        "price_positive",
        "quantity_non_negative",
        "quantity_whole",
        "sellable_within_quantity",
        "symbol_unique",
        "value_finite",
        "snapshot_fresh",
    } <= checks
    assert all(c["success"] for c in report.results["checks"])
    json.dumps(report.results)  # JSON-able for the run record


def _set(symbol: str, column: str, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        if column in ("quantity", "sellable_quantity"):
            frame[column] = frame[column].astype(float)
        frame.loc[frame["symbol"] == symbol, column] = value
        return frame

    return change


@pytest.mark.parametrize(
    ("change", "check", "expected"),
    [
        (_set("TCS", "last_price", math.nan), "price_present", "(TCS): last_price is missing"),
        (_set("ITC", "last_price", 0.0), "price_positive", "(ITC): last_price must be > 0"),
        (_set("ITC", "last_price", -3.5), "price_positive", "(got -3.5)"),
        (_set("LT", "last_price", math.inf), "price_positive", "(LT): last_price must be > 0"),
        (_set("SBIN", "quantity", -5), "quantity_non_negative", "(SBIN): quantity must be >= 0"),
        (_set("SBIN", "quantity", 10.5), "quantity_whole", "(SBIN): quantity must be a whole"),
        (
            _set("INFY", "sellable_quantity", 500),
            "sellable_within_quantity",
            "(INFY): sellable_quantity 500.0 exceeds quantity 95.0",
        ),
        (
            _set("INFY", "sellable_quantity", math.nan),
            "sellable_present",
            "(INFY): sellable_quantity is missing",
        ),
        (_set("ITC", "symbol", "TCS"), "symbol_unique", "(TCS): symbol appears more than once"),
    ],
)
def test_each_bad_row_fails_naming_row_and_symbol(
    demo: HoldingsSnapshot,
    targets: list[str],
    change: Callable[[pd.DataFrame], pd.DataFrame],
    check: str,
    expected: str,
) -> None:
    report = _check(_with(demo, change), targets)
    assert not report.success
    assert check in _failed_checks(report)
    matching = [p for p in report.problems if expected in p]
    assert matching, report.problems
    assert all(p.startswith("row ") for p in matching)
    assert all(check in p for p in matching)


def test_missing_price_names_the_row_number(demo: HoldingsSnapshot, targets: list[str]) -> None:
    row = _row_of(demo, "TCS")
    report = _check(_with(demo, _set("TCS", "last_price", math.nan)), targets)
    assert f"row {row} (TCS): last_price is missing (price_present)" in report.problems
    [summary] = [c for c in report.results["checks"] if c["check"] == "price_present"]
    assert summary["unexpected_count"] == 1
    assert summary["unexpected_rows"] == [{"row": row, "symbol": "TCS"}]


def test_missing_target_symbol_fails(demo: HoldingsSnapshot, targets: list[str]) -> None:
    report = _check(demo, [*targets, "ASIANPAINT", "NESTLEIND"])
    assert not report.success
    assert _failed_checks(report) == {"targets_quoted"}
    assert "target symbol ASIANPAINT: no row with a price in the quotes (targets_quoted)" in (
        report.problems
    )
    assert any("NESTLEIND" in p for p in report.problems)
    [summary] = [c for c in report.results["checks"] if c["check"] == "targets_quoted"]
    assert summary["missing_targets"] == ["ASIANPAINT", "NESTLEIND"]


def test_target_symbols_are_compared_case_insensitively(
    demo: HoldingsSnapshot, targets: list[str]
) -> None:
    assert _check(demo, [t.lower() for t in targets]).success


def test_unpriced_row_that_is_neither_held_nor_targeted_is_not_a_problem(
    demo: HoldingsSnapshot, targets: list[str]
) -> None:
    def add_unpriced(frame: pd.DataFrame) -> pd.DataFrame:
        extra = frame.iloc[[0]].copy()
        extra["symbol"], extra["quantity"], extra["sellable_quantity"] = "OLDCO", 0, 0
        extra["last_price"] = math.nan
        return pd.concat([frame, extra], ignore_index=True)

    snapshot = _with(demo, add_unpriced)
    assert _check(snapshot, targets).success
    # ... but once the portfolio targets it, its price is required.
    report = _check(snapshot, [*targets, "OLDCO"])
    assert not report.success
    assert any("(OLDCO): last_price is missing" in p for p in report.problems)


def test_stale_snapshot_fails(demo: HoldingsSnapshot, targets: list[str]) -> None:
    old = HoldingsSnapshot(demo.positions, demo.cash, NOW - timedelta(hours=3, minutes=5))
    report = _check(old, targets)
    assert not report.success
    assert _failed_checks(report) == {"snapshot_fresh"}
    [problem] = report.problems
    assert "is 3h 5m old" in problem
    assert "the limit is 30m" in problem
    # the same snapshot within a wider limit passes
    assert _check(old, targets, max_age=timedelta(hours=4)).success


def test_snapshot_from_the_future_fails(demo: HoldingsSnapshot, targets: list[str]) -> None:
    ahead = HoldingsSnapshot(demo.positions, demo.cash, NOW + timedelta(hours=1))
    report = _check(ahead, targets)
    assert _failed_checks(report) == {"snapshot_fresh"}
    assert "in the future" in report.problems[0]


def test_value_column_is_checked_against_quantity_times_price(
    demo: HoldingsSnapshot, targets: list[str]
) -> None:
    def with_value(frame: pd.DataFrame) -> pd.DataFrame:
        frame["value"] = frame["quantity"] * frame["last_price"] + 0.4  # rounding is tolerated
        return frame

    consistent = _with(demo, with_value)
    report = _check(consistent, targets)
    assert report.success, report.problems
    assert "value_consistent" in {c["check"] for c in report.results["checks"]}

    def off_for_hdfc(frame: pd.DataFrame) -> pd.DataFrame:
        frame = with_value(frame)
        frame.loc[frame["symbol"] == "HDFCBANK", "value"] *= 1.10
        return frame

    report = _check(_with(demo, off_for_hdfc), targets)
    assert _failed_checks(report) == {"value_consistent"}
    [problem] = report.problems
    assert problem.startswith(f"row {_row_of(demo, 'HDFCBANK')} (HDFCBANK): value ")


def test_value_check_is_reported_as_skipped_without_a_value_column(
    demo: HoldingsSnapshot, targets: list[str]
) -> None:
    report = _check(demo, targets)
    assert any(s.startswith("value_consistent") for s in report.results["skipped"])


def _quoted_at(stamps: dict[str, datetime]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame["as_of"] = [stamps.get(s, NOW - timedelta(minutes=1)) for s in frame["symbol"]]
        return frame

    return change


def test_stale_quote_fails_when_quote_times_are_given(
    demo: HoldingsSnapshot, targets: list[str]
) -> None:
    fresh = _with(demo, _quoted_at({}))
    assert _check(fresh, targets, price_max_age=timedelta(minutes=15)).success

    stale = _with(demo, _quoted_at({"ITC": NOW - timedelta(minutes=45)}))
    report = _check(stale, targets, price_max_age=timedelta(minutes=15))
    assert _failed_checks(report) == {"quote_fresh"}
    [problem] = report.problems
    assert problem.startswith(f"row {_row_of(demo, 'ITC')} (ITC): quote as_of ")
    assert "is 45m old; the limit is 15m" in problem
    # without a price_max_age the quote times are not judged
    assert _check(stale, targets).success


def test_missing_quote_time_fails_when_quote_times_are_checked(
    demo: HoldingsSnapshot, targets: list[str]
) -> None:
    def drop_lt(frame: pd.DataFrame) -> pd.DataFrame:
        frame = _quoted_at({})(frame)
        frame["as_of"] = frame["as_of"].astype(object)
        frame.loc[frame["symbol"] == "LT", "as_of"] = None
        return frame

    report = _check(_with(demo, drop_lt), targets, price_max_age=timedelta(minutes=15))
    assert _failed_checks(report) == {"quote_time_present"}
    assert any("(LT): the quote has no as_of time" in p for p in report.problems)


def test_price_max_age_without_quote_times_is_reported_as_skipped(
    demo: HoldingsSnapshot, targets: list[str]
) -> None:
    report = _check(demo, targets, price_max_age=timedelta(minutes=15))
    assert report.success
    assert any("no as_of column" in s for s in report.results["skipped"])


def test_several_problems_are_all_reported(demo: HoldingsSnapshot, targets: list[str]) -> None:
    def break_two(frame: pd.DataFrame) -> pd.DataFrame:
        frame = _set("TCS", "last_price", math.nan)(frame)
        return _set("SBIN", "quantity", -1)(frame)

    report = _check(_with(demo, break_two), [*targets, "ASIANPAINT"])
    assert {"price_present", "quantity_non_negative", "targets_quoted"} <= _failed_checks(report)
    text = "\n".join(report.problems)
    for needle in ("(TCS)", "(SBIN)", "ASIANPAINT"):
        assert needle in text


def test_data_docs_are_written_with_the_suite_and_the_validation(
    demo: HoldingsSnapshot, targets: list[str], tmp_path: Path
) -> None:
    bad = _with(demo, _set("TCS", "last_price", math.nan))
    report = _check(bad, targets, docs_dir=tmp_path / "run-1")
    assert report.docs_path == str((tmp_path / "run-1" / "index.html").resolve())
    index = Path(report.docs_path)
    assert index.is_file()
    assert "holdings_snapshot_quality" in index.read_text()
    docs = report.results["data_docs"]
    [page] = docs["validation_pages"]
    html = Path(page).read_text()
    assert "holdings_snapshot_quality" in html
    assert "last_price" in html
    [suite_page] = docs["suite_pages"]
    assert "Every target symbol of the portfolio has a row in the quotes." in (
        Path(suite_page).read_text()
    )
    # the report itself is the same as without Data Docs
    plain = _check(bad, targets)
    assert plain.problems == report.problems
    assert plain.success is report.success is False


def test_raise_for_report_names_the_rows(demo: HoldingsSnapshot, targets: list[str]) -> None:
    report = _check(_with(demo, _set("TCS", "last_price", math.nan)), targets)
    with pytest.raises(InputDataError, match=r"row \d+ \(TCS\): last_price is missing") as info:
        raise_for_report(report, "zerodha:main")
    assert info.value.source == "zerodha:main"
    raise_for_report(_check(demo, targets), "zerodha:main")  # a good report does not raise


def test_naive_times_are_refused(demo: HoldingsSnapshot, targets: list[str]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _check(demo, targets, now=NOW.replace(tzinfo=None))


def test_importing_quality_imports_neither_great_expectations_nor_pandas() -> None:
    code = (
        "import sys, rebalance.quality; "
        "print([m for m in ('great_expectations', 'pandas') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def test_no_network_is_used(
    demo: HoldingsSnapshot, targets: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError(f"network is not allowed in this test: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    report = _check(demo, targets, docs_dir=tmp_path / "docs")
    assert report.success
    assert attempts == []
