"""The drift watch's decisions, each a pure function that says why (issue 13, notes 3).

* ``decide_watch``: the day's decision for a portfolio from its accounts' readings: trigger a
  run (``trigger: drift``, at most once per N trading days), nothing to do, or wait for the
  schedule.
* ``gate_run``: whether a rebalance run's lane goes ahead (``schedule_and_drift`` on a
  scheduled day inside the bands: skipped, "inside bands, nothing to do").
* ``decide_alert``: notify once per breach episode, not every day.
* ``login_notice_due``: one "log in" notice a day per broker connection.

"Trading days" are the portfolio's calendar (``calendar.TradingCalendar``: exchange_calendars
XBOM merged with the holiday override file; special sessions are not counted).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from rebalance.drift.config import DriftAlerts, Trigger, TriggerMode
from rebalance.drift.measure import DriftMeasurement
from rebalance.drift.record import DriftRecord, NotReadReason, WatchAction
from rebalance.errors import CalendarError

_ONE_DAY = dt.timedelta(days=1)


class TradingDays(Protocol):
    """What the decisions need of ``calendar.TradingCalendar``."""

    def trading_days_between(self, first: dt.date, last: dt.date) -> list[dt.date]: ...

    def next_trading_day(self, day: dt.date) -> dt.date: ...


def trading_days_since(last: dt.date, today: dt.date, calendar: TradingDays) -> int:
    """Trading days after ``last`` up to and including ``today``: 1 when ``last`` is the
    previous trading day, 0 on the same day (or when ``last`` is later)."""
    if last >= today:
        return 0
    return len(calendar.trading_days_between(last + _ONE_DAY, today))


def nth_trading_day_after(day: dt.date, n: int, calendar: TradingDays) -> dt.date | None:
    """The ``n``-th trading day after ``day``; None beyond the known calendar."""
    try:
        for _ in range(n):
            day = calendar.next_trading_day(day)
    except CalendarError:
        return None
    return day


def last_rebalance_day(
    run_days: Iterable[dt.date], records: Iterable[DriftRecord]
) -> dt.date | None:
    """The latest day a rebalance ran or was triggered: ``run_days`` are the IST dates of the
    portfolio's runs that started (any initiator, any outcome: a rejected or failed run still
    counts, so a breach that a person turned down is not re-sent the next morning); a day the
    watch triggered counts even before its run has started."""
    days = [*run_days, *(r.day for r in records if r.triggered)]
    return max(days, default=None)


@dataclass(frozen=True)
class Reading:
    """One account of the portfolio on the watch: measured, or not read with why."""

    account: str
    measurement: DriftMeasurement | None = None
    not_read: NotReadReason | None = None

    def __post_init__(self) -> None:
        if (self.measurement is None) == (self.not_read is None):
            raise ValueError(f"{self.account}: a reading is measured or not read, not both")


@dataclass(frozen=True)
class WatchDecision:
    """The portfolio's decision of the day, with the reason a person reads."""

    action: WatchAction
    reason: str
    next_possible: dt.date | None = None  # too_soon: the first day a run may be triggered


def describe_breach(account: str, measurement: DriftMeasurement, limit: int = 5) -> str:
    """``acct: INFY +3.10% (band 2.00%), TCS -2.40% (band 2.00%)``, largest drift first."""
    parts = [f"{s.symbol} {s.drift:+.2%} (band {s.band:.2%})" for s in measurement.outside[:limit]]
    more = len(measurement.outside) - limit
    if more > 0:
        parts.append(f"and {more} more")
    return f"{account}: {', '.join(parts)}"


def _inside_summary(readings: Sequence[Reading]) -> str:
    parts = []
    for r in readings:
        if r.measurement is not None:
            m = r.measurement
            parts.append(
                f"{r.account} total drift {m.total_drift:.2%}, max {m.max_drift:.2%}"
                + (f" ({m.max_drift_symbol})" if m.max_drift_symbol else "")
            )
        else:
            parts.append(f"{r.account} not read ({r.not_read})")
    return "; ".join(parts)


def decide_watch(
    trigger: Trigger,
    readings: Sequence[Reading],
    *,
    today: dt.date,
    last_rebalance: dt.date | None,
    calendar: TradingDays,
) -> WatchDecision:
    """The day's decision for one portfolio from its accounts' readings.

    A breach in any read account counts for the portfolio (the triggered run has one lane per
    account; a lane inside its bands plans no trades). With ``trigger: drift`` a breach triggers
    unless ``last_rebalance`` (see ``last_rebalance_day``) is fewer than
    ``min_trading_days_between`` trading days before ``today``.
    """
    if not readings:
        raise ValueError("decide_watch: no account readings")
    breached = [r for r in readings if r.measurement is not None and r.measurement.breached]
    if not breached:
        if all(r.measurement is None for r in readings):
            return WatchDecision(
                WatchAction.NOT_READ, f"not read: {_inside_summary(readings)}; nothing decided"
            )
        return WatchDecision(
            WatchAction.INSIDE_BANDS,
            f"inside bands, nothing to do: {_inside_summary(readings)}",
        )
    what = "outside band: " + "; ".join(
        describe_breach(r.account, r.measurement) for r in breached if r.measurement
    )
    if trigger.mode is TriggerMode.SCHEDULE:
        return WatchDecision(
            WatchAction.WAIT_FOR_SCHEDULE,
            f"{what}; trigger: schedule, so the next scheduled run rebalances",
        )
    if trigger.mode is TriggerMode.SCHEDULE_AND_DRIFT:
        return WatchDecision(
            WatchAction.WAIT_FOR_SCHEDULE,
            f"{what}; trigger: schedule_and_drift, so the next scheduled run rebalances "
            "(if still outside then)",
        )
    n = trigger.min_trading_days_between
    if last_rebalance is not None:
        elapsed = trading_days_since(last_rebalance, today, calendar)
        if elapsed < n:
            after = nth_trading_day_after(last_rebalance, n, calendar)
            when = f"; the next triggered run can be on {after}" if after else ""
            return WatchDecision(
                WatchAction.TOO_SOON,
                f"{what}; the last rebalance was on {last_rebalance}, {elapsed} trading "
                f"day(s) ago, fewer than min_trading_days_between {n}{when}",
                next_possible=after,
            )
    return WatchDecision(WatchAction.TRIGGER, f"{what}; a rebalance run is triggered")


class RunKind(StrEnum):
    """How a rebalance DAG run started (Airflow's run type, in our words)."""

    SCHEDULED = "scheduled"  # the trading-calendar timetable
    ASSET = "asset"  # the drift watch's breach asset event
    MANUAL = "manual"  # a person's Trigger


@dataclass(frozen=True)
class Gate:
    """Whether a lane of a rebalance run goes ahead to planning, and why."""

    proceed: bool
    reason: str


def gate_run(trigger: Trigger, kind: RunKind, measurement: DriftMeasurement) -> Gate:
    """The gate of one lane, on the run's own (fresh) snapshot measured with ``measure_drift``.

    Only a scheduled run of ``schedule_and_drift`` is gated on the bands; a triggered run goes
    ahead (the planner's bands decide its trades) and so does a person's manual run.
    """
    if kind is RunKind.MANUAL:
        return Gate(True, "manual run")
    if kind is RunKind.ASSET:
        return Gate(True, "triggered by the drift watch's breach")
    if trigger.mode is TriggerMode.SCHEDULE:
        return Gate(True, "scheduled run (trigger: schedule)")
    if trigger.mode is TriggerMode.DRIFT:
        return Gate(False, "trigger: drift: runs start from the drift watch, not a schedule")
    if not measurement.breached:
        return Gate(
            False,
            f"inside bands, nothing to do (total drift {measurement.total_drift:.2%}, "
            f"max {measurement.max_drift:.2%})",
        )
    return Gate(True, describe_breach("scheduled run, outside band", measurement))


@dataclass(frozen=True)
class AlertDecision:
    """Whether to notify today, and the breach episode today's record belongs to."""

    notify: bool
    kind: str | None  # "breach" | "recovery" | None
    breach_since: dt.date | None  # the episode's first day; None when inside the bands
    reason: str


def decide_alert(
    measurement: DriftMeasurement | None,
    *,
    today: dt.date,
    previous: DriftRecord | None,
    alerts: DriftAlerts,
) -> AlertDecision:
    """Alert once per breach episode of one account.

    An episode starts on the first reading with a symbol outside its band and ends on the first
    reading with every symbol inside. ``previous`` is the account's latest record before this
    one (yesterday's, or today's when the watch runs again). A not-read day (``measurement``
    None) neither starts nor ends an episode: the previous episode carries over.
    """
    since = previous.breach_since if previous is not None else None
    if measurement is None:
        return AlertDecision(False, None, since, "not read: the breach state carries over")
    if measurement.breached:
        if since is not None:
            return AlertDecision(
                False, None, since, f"still outside band since {since}: already notified"
            )
        return AlertDecision(
            alerts.breach,
            "breach",
            today,
            "a breach starts today" + ("" if alerts.breach else " (breach alerts are off)"),
        )
    if since is not None:
        return AlertDecision(
            alerts.recovery,
            "recovery",
            None,
            f"back inside every band (outside since {since})"
            + ("" if alerts.recovery else "; recovery alerts are off"),
        )
    return AlertDecision(False, None, None, "inside bands")


def login_notice_due(
    connection_id: str,
    today: dt.date,
    sent: Iterable[tuple[str, dt.date]],
    *,
    alerts: DriftAlerts,
) -> bool:
    """One "log in" notice a day per broker connection: ``sent`` are the (connection, IST day)
    pairs of notices already sent (by any portfolio's watch or run)."""
    return alerts.login_notice and (connection_id, today) not in set(sent)


def login_notice_text(broker: str, account: str, connection_id: str) -> str:
    """The notice a person gets when a session has expired, with the command that fixes it."""
    if broker == "zerodha":
        how = (
            "log in at Kite, then run `rebalance broker login zerodha --api-key <api_key> "
            "--request-token <request_token>` (the request token is in the redirect URL)"
        )
    else:
        how = f"check the credentials of the Airflow connection {connection_id!r}"
    return (
        f"{broker} session expired for account {account} (connection {connection_id}): "
        f"today's drift watch could not read it and records 'not read'. To fix: {how}."
    )


def breach_alert_text(
    portfolio_name: str, account: str, measurement: DriftMeasurement, decision: WatchDecision
) -> str:
    """The breach notice: which portfolio, account, symbols and drift, and what happens next."""
    next_step = {
        WatchAction.TRIGGER: "a rebalance run has been triggered",
        WatchAction.WAIT_FOR_SCHEDULE: "waiting for the next scheduled run",
        WatchAction.TOO_SOON: (
            f"no run yet: the last rebalance is too recent (next possible "
            f"{decision.next_possible or 'when the calendar is known'})"
        ),
    }.get(decision.action, str(decision.action))
    return (
        f"Drift breach in {portfolio_name}: {describe_breach(account, measurement)}; "
        f"total drift {measurement.total_drift:.2%}. Next: {next_step}."
    )
