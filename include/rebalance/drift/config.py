"""The ``trigger:`` section of a portfolio file: what starts a rebalance (issue 13, notes 3).

```yaml
trigger:
  mode: drift                  # schedule | drift | schedule_and_drift (default schedule)
  watch_time: "10:00"          # IST, when the daily drift watch reads the accounts
  min_trading_days_between: 5  # drift only: at most one triggered run per 5 trading days
  alerts: {breach: true, recovery: false, login_notice: true}
```

``trigger: drift`` (a bare mode) is short for ``trigger: {mode: drift}``. A file without the
section keeps today's behaviour (``schedule``). Unknown keys are errors; messages name the field.
``Portfolio.trigger`` is this model (default: ``schedule``). The module also holds the light
pieces the DAG files need at parse time (``breach_asset_name``, the watch's account batches).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from rebalance.domain.market import MARKET_CLOSE, MARKET_OPEN
from rebalance.policy import NumbersAreNumbers
from rebalance.schedule import Frequency, Schedule

DEFAULT_WATCH_TIME = dt.time(10, 0)  # IST: after the open's first 45 minutes settle
DEFAULT_MIN_TRADING_DAYS_BETWEEN = 5  # one trading week


class TriggerMode(StrEnum):
    """What starts a rebalance run of the portfolio."""

    SCHEDULE = "schedule"  # the trading-calendar timetable alone (today's behaviour)
    DRIFT = "drift"  # the watch's breach asset alone, at most once per N trading days
    SCHEDULE_AND_DRIFT = "schedule_and_drift"  # on the schedule, only when outside a band


class DriftAlerts(NumbersAreNumbers):
    """Which drift notices go to the existing alert channels (webhook / e-mail)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    breach: bool = Field(
        True, description="notify once when a breach episode starts (first symbol out of band)"
    )
    recovery: bool = Field(
        False, description="notify when every symbol is back inside its band (episode ends)"
    )
    login_notice: bool = Field(
        True, description="one 'log in' notice a day when the broker session has expired"
    )


class Trigger(NumbersAreNumbers):
    """The portfolio's trigger policy and its daily drift watch. Every default is documented."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: TriggerMode = Field(TriggerMode.SCHEDULE, description="default schedule")
    watch_time: dt.time = Field(
        DEFAULT_WATCH_TIME,
        description="IST time of the daily drift watch, HH:MM, within market hours; default 10:00",
    )
    min_trading_days_between: int = Field(
        DEFAULT_MIN_TRADING_DAYS_BETWEEN,
        ge=1,
        le=250,
        description="drift only: no triggered run if a rebalance ran fewer than N trading "
        "days ago; default 5",
    )
    alerts: DriftAlerts = Field(default_factory=DriftAlerts)

    @model_validator(mode="before")
    @classmethod
    def _bare_mode(cls, value: Any) -> Any:
        # ``trigger: drift`` reads as ``trigger: {mode: drift}``.
        if isinstance(value, str):
            return {"mode": value}
        return value

    @field_validator("watch_time", mode="before")
    @classmethod
    def _yaml_sexagesimal(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted 10:00 as the base-60 integer 600; take it as HH:MM.
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            return dt.time(value // 60, value % 60)
        return value

    @field_validator("watch_time")
    @classmethod
    def _market_hours(cls, value: dt.time) -> dt.time:
        if value.tzinfo is not None:
            raise ValueError("write the time without an offset; the watch runs on IST")
        if not MARKET_OPEN <= value <= MARKET_CLOSE:
            raise ValueError(
                f"{value:%H:%M} IST is outside market hours "
                f"{MARKET_OPEN:%H:%M}-{MARKET_CLOSE:%H:%M}: quotes outside them are stale"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.mode is not TriggerMode.DRIFT and "min_trading_days_between" in (
            self.model_fields_set
        ):
            raise ValueError(
                f"min_trading_days_between: only used with mode drift (mode is {self.mode}: "
                "the schedule decides when runs happen)"
            )
        return self


def watch_schedule(watch_time: dt.time) -> Schedule:
    """The watch's schedule: every trading day and every special session (the market is open:
    Muhurat trading, a Saturday session) at ``watch_time`` IST, on the portfolio's calendar."""
    return Schedule(
        frequency=Frequency.CUSTOM_DAYS,
        every_n_trading_days=1,
        time=watch_time,
        include_special_sessions=True,
    )


def breach_asset_name(portfolio_id: str) -> str:
    """The Airflow asset a portfolio's breach updates; ``trigger: drift`` DAGs schedule on it.
    (Here rather than in ``record``: the DAG files import it at parse time, and this module is
    light.)"""
    return f"rebalance_{portfolio_id}_drift"


BATCH_SIZE = 25  # accounts per mapped read task of the watch (docs/drift.md)


@dataclass(frozen=True)
class WatchTarget:
    """One account the watch reads: which portfolio file, which account, of which broker."""

    portfolio_file: str
    portfolio_id: str
    account: str
    broker: str

    def to_dict(self) -> dict[str, str]:
        return {
            "portfolio_file": self.portfolio_file,
            "portfolio_id": self.portfolio_id,
            "account": self.account,
            "broker": self.broker,
        }


def batches(targets: Iterable[WatchTarget], size: int = BATCH_SIZE) -> list[list[dict[str, str]]]:
    """The watch's read-task map: accounts grouped by broker (one broker's outage and rate
    limits stay in its own batches), at most ``size`` a batch, in a stable order."""
    by_broker: dict[str, list[WatchTarget]] = {}
    for target in sorted(targets, key=lambda t: (t.broker, t.portfolio_id, t.account)):
        by_broker.setdefault(target.broker, []).append(target)
    out: list[list[dict[str, str]]] = []
    for group in by_broker.values():
        for start in range(0, len(group), size):
            out.append([t.to_dict() for t in group[start : start + size]])
    return out
