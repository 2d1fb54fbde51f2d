"""The typed history records match the tables column for column (no database needed)."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, asdict, fields
from datetime import UTC, datetime

import pytest

from rebalance.history import tables
from rebalance.history.records import EventRecord, LegRecord, RunRecord
from rebalance.history.status import RunStatus


@pytest.mark.parametrize(
    ("record", "table"),
    [(RunRecord, tables.runs), (LegRecord, tables.orders), (EventRecord, tables.events)],
)
def test_a_record_has_exactly_the_columns_of_its_table(record: type, table: object) -> None:
    """A migration that adds a column must add the field too (from_row refuses unknown ones)."""
    assert [f.name for f in fields(record)] == [c.name for c in table.columns]  # type: ignore[attr-defined]


def test_a_record_is_frozen_typed_and_read_by_attribute_only() -> None:
    at = datetime(2026, 1, 5, 9, 40, tzinfo=UTC)
    event = EventRecord.from_row(
        {"id": 1, "run_id": 7, "at": at, "from_status": None, "to_status": "started"}
        | {"message": "x"}
    )
    assert event.to_status == "started"
    assert event.run_id == 7
    assert asdict(event)["at"] == at
    with pytest.raises(FrozenInstanceError):
        event.message = "y"  # type: ignore[misc]
    with pytest.raises(TypeError):
        event["at"]  # type: ignore[index]  # no mapping access: attributes only
    with pytest.raises(TypeError):
        EventRecord.from_row({**asdict(event), "extra": 1})


def test_run_status_is_the_enum() -> None:
    names = [f.name for f in fields(RunRecord)]
    row = dict.fromkeys(names)
    row.update(status="placing", id=3)
    assert RunRecord.from_row(row).run_status is RunStatus.PLACING
