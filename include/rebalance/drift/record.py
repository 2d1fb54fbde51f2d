"""The drift record: what the watch stores per portfolio, account and day, and the breach's asset
event.

``DriftRecord.to_dict`` gives exactly the columns of the history table the later migration
creates (``COLUMNS``; types in docs/drift.md); ``from_dict`` reads a row back. One row per
(portfolio_id, account, day): a second watch the same day replaces the row through
``merge_same_day``, which keeps what the first one already did (an alert sent, a login notice
sent, a run triggered, the episode's start).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from rebalance.drift.config import breach_asset_name  # noqa: F401 - re-exported
from rebalance.drift.measure import DriftMeasurement, SymbolDrift
from rebalance.policy import Policy


class WatchStatus(StrEnum):
    READ = "read"  # holdings and quotes read and measured
    NOT_READ = "not_read"  # the account could not be read today (see NotReadReason)


class NotReadReason(StrEnum):
    SESSION_EXPIRED = "session_expired"  # broker login needed (Kite's token expires daily)
    BROKER_ERROR = "broker_error"  # the broker did not answer usably after the read retries
    INVALID_DATA = "invalid_data"  # the snapshot failed validation (stale / missing prices)


class WatchAction(StrEnum):
    """What the watch decided for the portfolio that day (the same on each account's row)."""

    TRIGGER = "trigger"  # breach: the asset event starts a rebalance run
    INSIDE_BANDS = "inside_bands"  # every symbol inside its band: nothing to do
    WAIT_FOR_SCHEDULE = "wait_for_schedule"  # breach; the schedule decides (schedule modes)
    TOO_SOON = "too_soon"  # breach, but a rebalance ran fewer than N trading days ago
    NOT_READ = "not_read"  # no account could be read


# The table's columns besides ``id`` and ``created_at``, in the order ``to_dict`` gives them.
COLUMNS = (
    "portfolio_id",
    "account",
    "broker",
    "day",
    "taken_at",
    "status",
    "not_read_reason",
    "detail",
    "portfolio_value",
    "cash",
    "cash_weight",
    "cash_target",
    "total_drift",
    "max_drift",
    "max_drift_symbol",
    "outside_band",
    "positions",
    "band_abs_pct",
    "band_rel_pct",
    "targets_run_id",
    "since_last",
    "breach_since",
    "action",
    "action_reason",
    "alerted",
    "login_notice_sent",
)


def _symbol_to_dict(s: SymbolDrift) -> dict[str, Any]:
    return {
        "symbol": s.symbol,
        "quantity": s.quantity,
        "price": s.price,
        "value": s.value,
        "weight": s.weight,
        "target": s.target,
        "drift": s.drift,
        "band": s.band,
        "outside_band": s.outside_band,
        "listed": s.listed,
    }


def _symbol_from_dict(data: Mapping[str, Any]) -> SymbolDrift:
    return SymbolDrift(
        symbol=str(data["symbol"]),
        quantity=int(data["quantity"]),
        price=float(data["price"]),
        value=float(data["value"]),
        weight=float(data["weight"]),
        target=float(data["target"]),
        drift=float(data["drift"]),
        band=float(data["band"]),
        outside_band=bool(data["outside_band"]),
        listed=bool(data.get("listed", True)),
    )


def _date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    return date.fromisoformat(str(value))


@dataclass(frozen=True)
class DriftRecord:
    """One account of one portfolio on one exchange day (IST), as the watch saw it.

    Weights and drifts are fractions, money rupees, ``day`` the IST trading date, ``taken_at``
    timezone-aware. Figures are None on a ``not_read`` day. ``breach_since`` is the first day
    of the breach episode this day belongs to (carried through not-read days; None when inside
    the bands). ``targets_run_id`` names the run whose stored targets were used (model
    portfolios); None = the portfolio file's targets.
    """

    portfolio_id: str
    account: str
    broker: str
    day: date
    taken_at: datetime
    status: WatchStatus
    not_read_reason: NotReadReason | None = None
    detail: str | None = None
    portfolio_value: float | None = None
    cash: float | None = None
    cash_weight: float | None = None
    cash_target: float | None = None
    total_drift: float | None = None
    max_drift: float | None = None
    max_drift_symbol: str | None = None
    outside_band: tuple[str, ...] = ()
    positions: tuple[SymbolDrift, ...] = ()
    band_abs_pct: float | None = None
    band_rel_pct: float | None = None
    targets_run_id: int | None = None
    since_last: Mapping[str, Any] | None = None
    breach_since: date | None = None
    action: WatchAction | None = None
    action_reason: str | None = None
    alerted: bool = False
    login_notice_sent: bool = False

    def __post_init__(self) -> None:
        if self.taken_at.tzinfo is None:
            raise ValueError("taken_at must be timezone-aware")

    @property
    def read(self) -> bool:
        return self.status is WatchStatus.READ

    @property
    def breached(self) -> bool:
        return bool(self.outside_band)

    @property
    def triggered(self) -> bool:
        return self.action is WatchAction.TRIGGER

    def to_dict(self) -> dict[str, Any]:
        """JSON-able row: dates and times as ISO text, enums as their values."""
        return {
            "portfolio_id": self.portfolio_id,
            "account": self.account,
            "broker": self.broker,
            "day": self.day.isoformat(),
            "taken_at": self.taken_at.isoformat(),
            "status": str(self.status),
            "not_read_reason": None if self.not_read_reason is None else str(self.not_read_reason),
            "detail": self.detail,
            "portfolio_value": self.portfolio_value,
            "cash": self.cash,
            "cash_weight": self.cash_weight,
            "cash_target": self.cash_target,
            "total_drift": self.total_drift,
            "max_drift": self.max_drift,
            "max_drift_symbol": self.max_drift_symbol,
            "outside_band": list(self.outside_band),
            "positions": [_symbol_to_dict(s) for s in self.positions],
            "band_abs_pct": self.band_abs_pct,
            "band_rel_pct": self.band_rel_pct,
            "targets_run_id": self.targets_run_id,
            "since_last": None if self.since_last is None else dict(self.since_last),
            "breach_since": None if self.breach_since is None else self.breach_since.isoformat(),
            "action": None if self.action is None else str(self.action),
            "action_reason": self.action_reason,
            "alerted": self.alerted,
            "login_notice_sent": self.login_notice_sent,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftRecord:
        """Read a row back (ISO text or date/datetime objects, as the driver returns them)."""
        unknown = sorted(set(data) - set(COLUMNS) - {"id", "created_at"})
        if unknown:
            raise ValueError(f"drift record: unknown field(s) {', '.join(unknown)}")
        taken_at = data["taken_at"]
        reason = data.get("not_read_reason")
        action = data.get("action")
        return cls(
            portfolio_id=str(data["portfolio_id"]),
            account=str(data["account"]),
            broker=str(data["broker"]),
            day=_date(data["day"]),
            taken_at=(
                taken_at if isinstance(taken_at, datetime) else datetime.fromisoformat(taken_at)
            ),
            status=WatchStatus(data["status"]),
            not_read_reason=None if reason is None else NotReadReason(reason),
            detail=data.get("detail"),
            portfolio_value=data.get("portfolio_value"),
            cash=data.get("cash"),
            cash_weight=data.get("cash_weight"),
            cash_target=data.get("cash_target"),
            total_drift=data.get("total_drift"),
            max_drift=data.get("max_drift"),
            max_drift_symbol=data.get("max_drift_symbol"),
            outside_band=tuple(data.get("outside_band") or ()),
            positions=tuple(_symbol_from_dict(p) for p in data.get("positions") or ()),
            band_abs_pct=data.get("band_abs_pct"),
            band_rel_pct=data.get("band_rel_pct"),
            targets_run_id=data.get("targets_run_id"),
            since_last=data.get("since_last"),
            breach_since=None if data.get("breach_since") is None else _date(data["breach_since"]),
            action=None if action is None else WatchAction(action),
            action_reason=data.get("action_reason"),
            alerted=bool(data.get("alerted", False)),
            login_notice_sent=bool(data.get("login_notice_sent", False)),
        )


def read_record(
    *,
    portfolio_id: str,
    account: str,
    broker: str,
    day: date,
    taken_at: datetime,
    measurement: DriftMeasurement,
    policy: Policy,
    targets_run_id: int | None = None,
    since_last: Mapping[str, Any] | None = None,
) -> DriftRecord:
    """The record of a read account, before the day's decisions (``decide_alert`` and the
    portfolio's watch decision fill ``breach_since``, ``action``, ``alerted`` with ``replace``)."""
    return DriftRecord(
        portfolio_id=portfolio_id,
        account=account,
        broker=broker,
        day=day,
        taken_at=taken_at,
        status=WatchStatus.READ,
        portfolio_value=measurement.portfolio_value,
        cash=measurement.cash,
        cash_weight=measurement.cash_weight,
        cash_target=measurement.cash_target,
        total_drift=measurement.total_drift,
        max_drift=measurement.max_drift,
        max_drift_symbol=measurement.max_drift_symbol,
        outside_band=tuple(s.symbol for s in measurement.outside),
        positions=measurement.symbols,
        band_abs_pct=policy.drift_band_abs_pct,
        band_rel_pct=policy.drift_band_rel_pct,
        targets_run_id=targets_run_id,
        since_last=since_last,
    )


def not_read_record(
    *,
    portfolio_id: str,
    account: str,
    broker: str,
    day: date,
    taken_at: datetime,
    reason: NotReadReason,
    detail: str,
) -> DriftRecord:
    """The record of an account the watch could not read. ``detail`` is shown to a person: it
    must never carry a credential (pass the error's message, not the request)."""
    return DriftRecord(
        portfolio_id=portfolio_id,
        account=account,
        broker=broker,
        day=day,
        taken_at=taken_at,
        status=WatchStatus.NOT_READ,
        not_read_reason=reason,
        detail=detail,
        action=WatchAction.NOT_READ,
    )


def merge_same_day(old: DriftRecord, new: DriftRecord) -> DriftRecord:
    """``new`` replacing ``old`` (same portfolio, account and day): what ``old`` already did
    stays done, so a retried watch never sends a second alert, notice or trigger that day."""
    key = (old.portfolio_id, old.account, old.day)
    if key != (new.portfolio_id, new.account, new.day):
        raise ValueError(f"merge_same_day: {key} and {new.portfolio_id, new.account, new.day}")
    starts = [d for d in (old.breach_since, new.breach_since) if d is not None]
    keep_old_action = old.triggered and not new.triggered
    return replace(
        new,
        alerted=old.alerted or new.alerted,
        login_notice_sent=old.login_notice_sent or new.login_notice_sent,
        breach_since=min(starts) if new.breach_since is not None and starts else None,
        action=old.action if keep_old_action else new.action,
        action_reason=old.action_reason if keep_old_action else new.action_reason,
    )


def breach_event_extra(
    *,
    portfolio_id: str,
    portfolio_name: str,
    day: date,
    records: Sequence[DriftRecord],
    reason: str,
) -> dict[str, Any]:
    """The asset event's ``extra`` for a triggered run: small JSON the run stores and the UI
    shows as the run's reason (breached accounts with their outside-band symbols only)."""
    accounts = []
    for record in records:
        if not record.breached:
            continue
        outside = [p for p in record.positions if p.outside_band]
        accounts.append(
            {
                "account": record.account,
                "broker": record.broker,
                "total_drift": record.total_drift,
                "max_drift": record.max_drift,
                "symbols": [
                    {
                        "symbol": p.symbol,
                        "weight": p.weight,
                        "target": p.target,
                        "drift": p.drift,
                        "band": p.band,
                    }
                    for p in sorted(outside, key=lambda p: (-abs(p.drift), p.symbol))
                ],
            }
        )
    if not accounts:
        raise ValueError(f"{portfolio_id}: no breached account on {day}: nothing to trigger")
    return {
        "trigger": "drift",
        "portfolio_id": portfolio_id,
        "portfolio_name": portfolio_name,
        "day": day.isoformat(),
        "reason": reason,
        "accounts": accounts,
    }
