"""The daily drift watch as a service: read each account, measure, decide, record (issue 13).

Read-only: it reads holdings, quotes and cash through the same broker adapters and the same
schema validation as a rebalance, measures drift (``drift.measure``), and never plans or orders.
Airflow's side (the watch DAG, its mapped read task and the asset events) is in
``drift_dag.py``; this module has no Airflow in it, so the CLI, the tests and the benchmark run
it as they are.

* ``read_account``: one account, inside its own ``try``: whatever goes wrong becomes that
  account's "not read" record (an expired session, a broker error, bad data), never an
  exception, so one account never stops the others of its batch.
* ``decide_portfolio``: one portfolio's records of the day: the watch decision (trigger, inside
  bands, wait for the schedule, too soon), one alert per breach episode, one "log in" notice a
  day per broker connection, the records stored; returns the asset event's extra when the
  portfolio triggers a run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rebalance.brokers.base import AuthError, Broker, BrokerError
from rebalance.domain.market import IST, Instrument, Side
from rebalance.drift.config import TriggerMode
from rebalance.drift.measure import DriftMeasurement, measure_drift
from rebalance.drift.record import (
    DriftRecord,
    NotReadReason,
    WatchAction,
    breach_event_extra,
    not_read_record,
    read_record,
)
from rebalance.drift.since_last import Fill, since_last_rebalance
from rebalance.drift.trigger import (
    Reading,
    RunKind,
    TradingDays,
    WatchDecision,
    breach_alert_text,
    decide_alert,
    decide_watch,
    gate_run,
    last_rebalance_day,
    login_notice_due,
    login_notice_text,
)
from rebalance.errors import RebalanceError
from rebalance.history.status import RunStatus
from rebalance.history.store import HistoryStore, RunKey
from rebalance.history.target_history import last_completed_targets
from rebalance.policy import Policy
from rebalance.portfolio import Portfolio
from rebalance.snapshot import HoldingsSnapshot, raw_snapshot_from_broker, snapshot_from_frame

log = logging.getLogger(__name__)


def ist_day(moment: datetime) -> date:
    """The IST exchange date of a timezone-aware moment."""
    return moment.astimezone(IST).date()


def _since_last(
    store: HistoryStore | None, portfolio_id: str, account: str, today: HoldingsSnapshot
) -> dict[str, Any] | None:
    """The 13.6 figures against the account's last completed run, when there is one."""
    if store is None:
        return None
    for run in store.runs(portfolio_id, limit=200):
        if run.account != account or run.status != RunStatus.COMPLETED or not run.snapshot:
            continue
        fills = [
            Fill(leg.symbol, Side(leg.side), leg.filled_quantity, leg.average_price)
            for leg in store.orders(run.id)
            if leg.filled_quantity > 0
        ]
        baseline = HoldingsSnapshot.from_records(run.snapshot)
        return since_last_rebalance(baseline, fills, today, run_id=run.id).to_dict()
    return None


def watch_targets(
    store: HistoryStore | None, portfolio: Portfolio, account: str
) -> tuple[dict[str, float], int | None]:
    """(targets as fractions, the run they were stored by) the watch measures against.

    A portfolio whose targets a model computes (issue 17) is measured against the targets its
    account's last completed run planned on; before any such run, against the file's nominal
    weights (run None). A portfolio of fixed weights: the file's weights.
    """
    if store is not None and portfolio.needs_target_model:
        last = last_completed_targets(store, portfolio.id, account)
        if last is not None:
            return dict(last.weights), last.run_id
    return portfolio.target_fractions(), None


def read_account(
    portfolio: Portfolio,
    account: str,
    connect: Callable[[], Broker],
    *,
    now: datetime,
    store: HistoryStore | None = None,
) -> DriftRecord:
    """One account's record of the day, before the decisions; never raises for the account.

    ``connect`` builds the account's broker (raising ``AuthError`` when the login has expired).
    The snapshot passes the same schema validation as a rebalance's; a snapshot that fails it,
    or targets the planner would refuse, is "not read (invalid_data)" with the problems.
    """
    config = next(a for a in portfolio.accounts if a.name == account)
    common: dict[str, Any] = {
        "portfolio_id": portfolio.id,
        "account": account,
        "broker": str(config.broker),
        "day": ist_day(now),
        "taken_at": now,
    }
    try:
        targets, targets_run_id = watch_targets(store, portfolio, account)
        broker = connect()
        holdings = broker.holdings()
        wanted = {h.symbol for h in holdings} | set(portfolio.targets) | set(targets)
        quotes = broker.quotes([Instrument(s, portfolio.exchange) for s in sorted(wanted)])
        cash = broker.funds().available_cash
        raw = raw_snapshot_from_broker(
            holdings,
            quotes,
            cash=cash,
            taken_at=now,
            account=account,
            broker=str(config.broker),
            target_symbols=list(dict.fromkeys([*portfolio.targets, *targets])),
            exchange=portfolio.exchange,
        )
        snapshot = snapshot_from_frame(
            raw.positions, source=f"{account} snapshot", cash=cash, taken_at=now
        )
        measurement = measure_drift(
            snapshot,
            targets,
            portfolio.policy,
            cash_target=portfolio.cash_target_fraction,
        )
        since = _since_last(store, portfolio.id, account, snapshot)
    except AuthError as exc:
        return not_read_record(**common, reason=NotReadReason.SESSION_EXPIRED, detail=str(exc))
    except BrokerError as exc:
        return not_read_record(**common, reason=NotReadReason.BROKER_ERROR, detail=str(exc))
    except RebalanceError as exc:
        return not_read_record(**common, reason=NotReadReason.INVALID_DATA, detail=str(exc))
    except Exception as exc:  # one account's surprise stays with it; the message is logged
        log.exception("%s/%s: the watch could not read the account", portfolio.id, account)
        detail = f"{type(exc).__name__}: {exc}"
        return not_read_record(**common, reason=NotReadReason.BROKER_ERROR, detail=detail)
    return read_record(
        **common,
        measurement=measurement,
        policy=portfolio.policy,
        since_last=since,
        targets_run_id=targets_run_id,
    )


def measurement_of(record: DriftRecord) -> DriftMeasurement | None:
    """The measurement a read record was made from (None for a not-read day)."""
    if not record.read or record.portfolio_value is None:
        return None
    return DriftMeasurement(
        portfolio_value=record.portfolio_value,
        cash=record.cash,
        cash_weight=record.cash_weight,
        cash_target=record.cash_target or 0.0,
        symbols=record.positions,
        ignored=(),
    )


@dataclass(frozen=True)
class PortfolioOutcome:
    """What the watch did for one portfolio today."""

    portfolio_id: str
    decision: WatchDecision
    records: tuple[DriftRecord, ...]  # as stored
    event_extra: dict[str, Any] | None  # set when a rebalance run is to be triggered
    notices: tuple[str, ...]  # the alerts and login notices sent


def _lookback(portfolio: Portfolio) -> timedelta:
    """Calendar days that surely hold ``min_trading_days_between`` trading days."""
    return timedelta(days=2 * portfolio.trigger.min_trading_days_between + 30)


def decide_portfolio(
    store: HistoryStore,
    portfolio: Portfolio,
    records: Sequence[DriftRecord],
    *,
    calendar: TradingDays,
    notify: Callable[[str], bool],
) -> PortfolioOutcome:
    """Decide, alert and record one portfolio's day from its accounts' fresh records.

    Retry-safe: today's stored records say what an earlier watch of the day already did; a
    second run never alerts, notices or triggers again (``merge_same_day`` keeps it done).
    """
    if not records:
        raise ValueError(f"{portfolio.id}: no records to decide on")
    today = records[0].day
    trigger = portfolio.trigger
    stored_today = {r.account: r for r in store.drift_records(portfolio.id, since=today)}
    runs_since = datetime.combine(today - _lookback(portfolio), datetime.min.time(), UTC)
    run_days = [ist_day(at) for at in store.run_days(portfolio.id, runs_since)]
    recent = store.drift_records(portfolio.id, since=today - _lookback(portfolio))
    readings = [
        Reading(r.account, measurement=m)
        if (m := measurement_of(r)) is not None
        else Reading(r.account, not_read=r.not_read_reason or NotReadReason.BROKER_ERROR)
        for r in records
    ]
    decision = decide_watch(
        trigger,
        readings,
        today=today,
        last_rebalance=last_rebalance_day(run_days, recent),
        calendar=calendar,
    )
    connections = {a.name: str(a.connection_id or a.name) for a in portfolio.accounts}
    notices: list[str] = []
    stored: list[DriftRecord] = []
    for record in records:
        earlier = stored_today.get(record.account)
        previous = store.latest_drift_record(portfolio.id, record.account, before=today)
        measurement = measurement_of(record)
        alert = decide_alert(measurement, today=today, previous=previous, alerts=trigger.alerts)
        alerted = False
        if alert.notify and measurement is not None and not (earlier and earlier.alerted):
            if alert.kind == "breach":
                text = breach_alert_text(portfolio.name, record.account, measurement, decision)
            else:
                text = (
                    f"Drift recovered in {portfolio.name}: {record.account} is back inside "
                    f"every band ({alert.reason})."
                )
            alerted = notify(text)
            notices.append(text)
        notice_sent = False
        if record.not_read_reason is NotReadReason.SESSION_EXPIRED:
            sent = [(connections[record.account], today)]
            if earlier is None or not earlier.login_notice_sent:
                sent = []
            if login_notice_due(connections[record.account], today, sent, alerts=trigger.alerts):
                text = login_notice_text(record.broker, record.account, connections[record.account])
                notice_sent = notify(text)
                notices.append(text)
        final = replace(
            record,
            breach_since=alert.breach_since,
            action=record.action if not record.read else decision.action,
            action_reason=decision.reason if record.read else record.detail,
            alerted=alerted,
            login_notice_sent=notice_sent,
        )
        stored.append(store.save_drift_record(final))
    extra = None
    if decision.action is WatchAction.TRIGGER and trigger.mode is TriggerMode.DRIFT:
        extra = breach_event_extra(
            portfolio_id=portfolio.id,
            portfolio_name=portfolio.name,
            day=today,
            records=stored,
            reason=decision.reason,
        )
    return PortfolioOutcome(portfolio.id, decision, tuple(stored), extra, tuple(notices))


def gate_lane(
    store: HistoryStore, key: RunKey, portfolio: Portfolio, policy: Policy, initiator: str
) -> str | None:
    """The ``schedule_and_drift`` gate of one lane on its own fresh, validated snapshot.

    Inside the bands on a scheduled run: the run is recorded ``skipped`` with "inside bands,
    nothing to do (...)" and the reason is returned (the lane ends there, nothing planned or
    ordered). Otherwise None: the lane goes on (a manual or triggered run always does).
    """
    run_id = store.find_run(key)
    if run_id is None or store.status(run_id) is not RunStatus.STARTED:
        return None
    run = store.run(run_id)
    if run.snapshot is None:
        return None
    kind = {"scheduled": RunKind.SCHEDULED, "drift": RunKind.ASSET}.get(initiator, RunKind.MANUAL)
    try:
        measurement = measure_drift(
            HoldingsSnapshot.from_records(run.snapshot),
            watch_targets(store, portfolio, key.account)[0],
            policy,
            cash_target=portfolio.cash_target_fraction,
        )
    except RebalanceError:
        return None  # the planner refuses the same inputs next, and says why
    gate = gate_run(portfolio.trigger, kind, measurement)
    if gate.proceed:
        store.note(run_id, f"drift gate: {gate.reason}")
        return None
    store.transition(run_id, RunStatus.SKIPPED, gate.reason)
    return gate.reason
