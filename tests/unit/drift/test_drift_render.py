"""The text table of a drift series (what ``rebalance drift`` will print)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from rebalance.drift.record import DriftRecord, NotReadReason, WatchAction, WatchStatus
from rebalance.drift.render import render_drift, sparkline


def record(day: int, total: float | None, **fields: object) -> DriftRecord:
    base = DriftRecord(
        portfolio_id="core",
        account="zerodha_main",
        broker="zerodha",
        day=date(2026, 11, day),
        taken_at=datetime(2026, 11, day, 4, 30, tzinfo=UTC),
        status=WatchStatus.READ,
        total_drift=total,
        max_drift=None if total is None else total / 2,
        max_drift_symbol="INFY",
        band_abs_pct=2.0,
        band_rel_pct=15.0,
        action=WatchAction.INSIDE_BANDS,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def test_series_table_and_chart() -> None:
    records = [
        record(
            25,
            0.05,
            outside_band=("INFY", "TCS"),
            action=WatchAction.TRIGGER,
            alerted=True,
            since_last={"winners_pct": 60.0, "pnl": 12_340.4},
        ),
        record(23, 0.01),
        record(
            24,
            None,
            status=WatchStatus.NOT_READ,
            not_read_reason=NotReadReason.SESSION_EXPIRED,
            action=WatchAction.NOT_READ,
        ),
    ]
    text = render_drift(records)
    lines = text.splitlines()
    assert lines[0].split() == [
        "day", "account", "status", "total", "max", "outside", "band", "action", "since", "last",
    ]  # fmt: skip
    assert lines[2].startswith("2026-11-23  zerodha_main  read")  # oldest first
    assert "not read (session_expired)" in lines[3]
    assert "5.00%" in lines[4]
    assert "2.50% INFY" in lines[4]
    assert "INFY, TCS" in lines[4]
    assert "trigger (alerted)" in lines[4]
    assert "60% up, +₹12,340" in lines[4]
    assert "core / zerodha_main, 2026-11-23 to 2026-11-25" in text
    assert "  triggered      ^" in text
    assert "(abs band 2.00%)" in text


def test_sparkline_scales_and_gaps() -> None:
    assert sparkline([0.0, 0.5, 1.0, None]) == "▁▅█ "
    assert sparkline([2.0], top=1.0) == "█"  # clipped at the top
    assert sparkline([0.0, 0.0]) == "▁▁"


def test_no_records() -> None:
    assert render_drift([]) == "no drift records"
