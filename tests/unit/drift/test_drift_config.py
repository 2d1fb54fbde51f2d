"""The ``trigger:`` section: defaults, the bare-mode shorthand, and errors naming the field."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rebalance.drift.config import DriftAlerts, Trigger, TriggerMode
from rebalance.errors import validation_problems


class _File(BaseModel):
    """How Portfolio is to include the section (the later step): errors then read trigger.x."""

    model_config = ConfigDict(extra="forbid")
    trigger: Trigger = Field(default_factory=Trigger)


def problems(text: str) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        _File.model_validate(yaml.safe_load(text))
    return validation_problems(caught.value)


def load(text: str) -> Trigger:
    data: Any = yaml.safe_load(text) or {}
    return _File.model_validate(data).trigger


def test_no_section_keeps_todays_behaviour() -> None:
    trigger = load("")
    assert trigger.mode is TriggerMode.SCHEDULE
    assert trigger.watch_time == dt.time(10, 0)
    assert trigger.min_trading_days_between == 5
    assert trigger.alerts == DriftAlerts(breach=True, recovery=False, login_notice=True)


def test_bare_mode_is_short_for_the_mapping() -> None:
    assert load("trigger: drift") == load("trigger: {mode: drift}")
    assert load("trigger: schedule_and_drift").mode is TriggerMode.SCHEDULE_AND_DRIFT


def test_unquoted_yaml_time_is_read_as_hours_and_minutes() -> None:
    # YAML 1.1 reads 10:30 as the base-60 integer 630.
    assert load("trigger: {mode: drift, watch_time: 10:30}").watch_time == dt.time(10, 30)
    assert load("trigger: {mode: drift, watch_time: '11:15'}").watch_time == dt.time(11, 15)


def test_full_section() -> None:
    trigger = load(
        """
trigger:
  mode: drift
  watch_time: "09:45"
  min_trading_days_between: 10
  alerts: {breach: false, recovery: true, login_notice: false}
"""
    )
    assert trigger.min_trading_days_between == 10
    assert trigger.alerts.recovery
    assert not trigger.alerts.breach


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("trigger: daily", "trigger.mode: Input should be 'schedule', 'drift'"),
        ("trigger: {mode: drift, when: '10:00'}", "trigger.when: unknown key"),
        ("trigger: {alerts: {email: true}}", "trigger.alerts.email: unknown key"),
        ("trigger: {watch_time: '08:00'}", "trigger.watch_time: 08:00 IST is outside market"),
        ("trigger: {watch_time: '16:00'}", "trigger.watch_time: 16:00 IST is outside market"),
        ("trigger: {mode: drift, min_trading_days_between: 0}", "trigger.min_trading_days_betw"),
        ("trigger: {mode: drift, min_trading_days_between: true}", "must be a number"),
        ("trigger: {mode: drift, min_trading_days_between: '5'}", "must be a number"),
        ("trigger: {min_trading_days_between: 5}", "only used with mode drift (mode is schedule"),
        (
            "trigger: {mode: schedule_and_drift, min_trading_days_between: 3}",
            "only used with mode drift",
        ),
    ],
)
def test_bad_sections_name_the_field(text: str, expected: str) -> None:
    found = problems(text)
    assert any(expected in p for p in found), found


def test_the_section_is_frozen() -> None:
    trigger = load("trigger: drift")
    with pytest.raises(ValidationError):
        trigger.mode = TriggerMode.SCHEDULE  # type: ignore[misc]
