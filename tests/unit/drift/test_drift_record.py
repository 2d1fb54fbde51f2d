"""The drift record: JSON round trip, the table's columns, same-day merges, the asset extra."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from drift_support import TAKEN_AT, snapshot

from rebalance.drift.measure import measure_drift
from rebalance.drift.record import (
    COLUMNS,
    DriftRecord,
    NotReadReason,
    WatchAction,
    WatchStatus,
    breach_asset_name,
    breach_event_extra,
    merge_same_day,
    not_read_record,
    read_record,
)
from rebalance.policy import Policy

DAY = date(2026, 11, 25)


def breached_record() -> DriftRecord:
    rows = [
        {"symbol": "INFY", "quantity": 110, "last_price": 100.0},
        {"symbol": "TCS", "quantity": 100, "last_price": 100.0},
    ]
    m = measure_drift(snapshot(rows, cash=500.0), {"INFY": 0.5, "TCS": 0.5}, Policy())
    record = read_record(
        portfolio_id="core",
        account="zerodha_main",
        broker="zerodha",
        day=DAY,
        taken_at=TAKEN_AT,
        measurement=m,
        policy=Policy(),
        targets_run_id=41,
        since_last={"run_id": 41, "winners_pct": 50.0, "pnl": -120.5},
    )
    return replace(
        record,
        breach_since=DAY,
        action=WatchAction.TRIGGER,
        action_reason="outside band: ...",
        alerted=True,
    )


def test_round_trip_through_json() -> None:
    record = breached_record()
    row = json.loads(json.dumps(record.to_dict()))
    assert DriftRecord.from_dict(row) == record
    assert tuple(row) == COLUMNS  # the columns the migration creates, in this order
    # value 21,500 with the cash: INFY 51.2% (+1.2%, inside), TCS 46.5% (-3.5%, outside)
    assert row["outside_band"] == ["TCS"]
    assert row["day"] == "2026-11-25"
    assert row["taken_at"] == "2026-11-25T04:30:00+00:00"
    assert row["max_drift_symbol"] == "TCS"
    assert row["max_drift"] == pytest.approx(0.5 - 10_000 / 21_500)
    assert row["cash_weight"] == pytest.approx(500 / 21_500)


def test_rows_as_the_driver_returns_them() -> None:
    row = breached_record().to_dict()
    row.update(id=9, created_at=TAKEN_AT, day=DAY, taken_at=TAKEN_AT, breach_since=DAY)
    assert DriftRecord.from_dict(row) == breached_record()
    with pytest.raises(ValueError, match="unknown field"):
        DriftRecord.from_dict({**row, "colour": "red"})


def test_not_read_record() -> None:
    record = not_read_record(
        portfolio_id="core",
        account="zerodha_main",
        broker="zerodha",
        day=DAY,
        taken_at=TAKEN_AT,
        reason=NotReadReason.SESSION_EXPIRED,
        detail="access token expired",
    )
    assert record.status is WatchStatus.NOT_READ
    assert record.action is WatchAction.NOT_READ
    assert record.total_drift is None
    assert not record.breached
    assert DriftRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record


def test_naive_time_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        DriftRecord("core", "a", "paper", DAY, datetime(2026, 11, 25, 10), WatchStatus.READ)


def test_a_second_watch_the_same_day_keeps_what_the_first_did() -> None:
    first = breached_record()
    again = replace(first, alerted=False, action=WatchAction.TOO_SOON, action_reason="too soon")
    merged = merge_same_day(first, again)
    assert merged.alerted
    assert merged.action is WatchAction.TRIGGER
    assert merged.action_reason == first.action_reason
    # Back inside by the second reading: the episode ends, the alert stays recorded.
    inside = replace(first, outside_band=(), breach_since=None, alerted=False, action=None)
    merged = merge_same_day(replace(first, action=WatchAction.TOO_SOON), inside)
    assert merged.breach_since is None
    assert merged.alerted
    assert merged.action is None
    with pytest.raises(ValueError, match="merge_same_day"):
        merge_same_day(first, replace(first, day=date(2026, 11, 26)))


def test_breach_event_extra() -> None:
    inside = not_read_record(
        portfolio_id="core",
        account="angelone_main",
        broker="angelone",
        day=DAY,
        taken_at=datetime(2026, 11, 25, 4, 31, tzinfo=UTC),
        reason=NotReadReason.BROKER_ERROR,
        detail="timeout",
    )
    extra = breach_event_extra(
        portfolio_id="core",
        portfolio_name="Core Ten",
        day=DAY,
        records=[breached_record(), inside],
        reason="outside band: zerodha_main: INFY +2.38%",
    )
    assert json.loads(json.dumps(extra)) == extra
    assert extra["trigger"] == "drift"
    assert [a["account"] for a in extra["accounts"]] == ["zerodha_main"]
    symbols = extra["accounts"][0]["symbols"]
    assert [s["symbol"] for s in symbols] == ["TCS"]  # only the outside-band symbols
    assert symbols[0]["drift"] == pytest.approx(10_000 / 21_500 - 0.5)
    assert breach_asset_name("core") == "rebalance_core_drift"
    with pytest.raises(ValueError, match="nothing to trigger"):
        breach_event_extra(
            portfolio_id="core", portfolio_name="C", day=DAY, records=[inside], reason=""
        )
