"""Wiring: the one place that builds the history store and a lane's broker.

Task bodies, the approval operator, alerts, the page and the CLI get their store from
``open_store()`` and a lane's broker from ``broker_for(lane)``; nothing else constructs them.
Airflow (connections, the secret masker) is imported lazily, inside the functions that need it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rebalance.brokers.base import AuthError, BadResponse, Broker, BrokerError
from rebalance.domain.market import Holding
from rebalance.history.status import RunStatus
from rebalance.history.store import HistoryStore
from rebalance.lane import Lane, LaneStopped
from rebalance.portfolio import BrokerName, ExecutionMode, Portfolio

if TYPE_CHECKING:
    from rebalance.snapshot import HoldingsSnapshot

log = logging.getLogger(__name__)

CONNECTIONS_DOC = "docs/brokers.md#connection-fields"
ANGELONE_DOC = "docs/brokers.md#angelone-smartapi"
ZERODHA_LOGIN = (
    "rebalance broker login zerodha --api-key <key> --request-token <token> --conn-id {conn}"
)


def open_store(url: str | None = None) -> HistoryStore:
    """The history store at ``url``, by default the configured history database."""
    from rebalance.history.database import engine_for, history_url

    return HistoryStore(engine_for(url or history_url()))


def broker_for(lane: Lane, store: HistoryStore | None = None) -> Broker:
    """The broker of the lane's account, as the run's mode wants it.

    live: the account's broker. paper: a paper account's file-backed broker, or for a real
    account its true holdings with simulated fills. dry_run: the real reads; placing is refused
    upstream (nothing reaches place_orders' sending code). A login or configuration that cannot
    work stops the lane (``LaneStopped``) with what to do.

    In live mode the account's order limits (10 orders a second, the brokers' per-minute, -hour
    and -day caps) are shared through the history database (``SharedOrderLimiter``) with every
    lane and portfolio placing orders in the same account at the same time, in any process.
    """
    from rebalance.brokers.factory import make_broker
    from rebalance.brokers.simulated import SimulatedExecution
    from rebalance.errors import ConfigError
    from rebalance.settings import state_dir

    account = lane.account_config
    lane_state = state_dir() / "paper" / lane.portfolio.id
    credentials = (
        None
        if account.connection_id is None
        else connection_credentials(account.connection_id, str(account.broker))
    )
    shared = lane.mode is ExecutionMode.LIVE and account.broker is not BrokerName.PAPER
    try:
        broker = make_broker(
            account,
            credentials,
            state_dir=lane_state,
            portfolio_file=Path(lane.portfolio_file),
            order_engine=(store or open_store()).engine if shared else None,
        )
    except (AuthError, ConfigError) as exc:
        raise LaneStopped(what_to_do(exc, lane)) from None
    if lane.mode is ExecutionMode.PAPER and account.broker is not BrokerName.PAPER:
        return SimulatedExecution(broker, account.name, lane_state)
    if lane.mode is ExecutionMode.LIVE and account.broker is BrokerName.PAPER:
        log.info("%s is a paper account: live mode still fills on paper", account.name)
    return broker


def open_failed_run(lane: Lane, store: HistoryStore) -> int:
    """A failed record for a lane that stopped before fetch_holdings could open one, saying why:
    the likely cause (a connection, a login) is found again by building the broker."""
    why = "fetch_holdings failed before opening the run; its log says why"
    try:
        broker_for(lane)
    except LaneStopped as exc:
        why = str(exc)
    except Exception as exc:
        why = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    try:
        run_id = store.open_run(lane.run_key, **lane.run_fields())
    except Exception as exc:  # the portfolio file itself no longer loads
        raise LaneStopped(
            f"stopped before fetch_holdings could open the run: {why}; {exc}"
        ) from exc
    store.transition(
        run_id, RunStatus.FAILED, f"stopped before fetch_holdings could open the run: {why}"
    )
    log.error("%s: run %d opened as failed: %s", lane.account, run_id, why)
    return run_id


def connection_credentials(conn_id: str, broker: str) -> dict[str, Any]:
    """An Airflow connection as the broker factory's plain dict, every secret masked in logs at
    every level (``brokers.connections.connection_credentials``).

    A connection that is not defined stops the lane (LaneStopped): no retry can create it.
    Airflow 3.3's task SDK raises ``airflow.sdk.exceptions.AirflowNotFoundException`` for it
    (``Connection.get`` -> ``_handle_connection_error``, also when no secrets backend has it).
    """
    from airflow.sdk.exceptions import AirflowNotFoundException

    from rebalance.brokers import connections

    try:
        return connections.connection_credentials(conn_id, broker)
    except AirflowNotFoundException:
        raise LaneStopped(
            f"connection {conn_id!r} is not defined: add it as {CONNECTIONS_DOC} says "
            f"(a {broker} connection; or AIRFLOW_CONN_{conn_id.upper()} in .env)"
        ) from None


def what_to_do(exc: Exception, lane: Lane) -> str:
    """One line for a failure that cannot heal by retrying: what failed and what to do."""
    account = lane.account_config
    conn = account.connection_id or "?"
    text = " ".join(str(exc).split())  # one line, whatever the broker said
    if isinstance(exc, AuthError):
        if account.broker is BrokerName.ZERODHA:
            if "rebalance broker login" in text:
                return f"{account.name}: {text}"
            return f"{account.name}: {text}; log in again with `{ZERODHA_LOGIN.format(conn=conn)}`"
        if account.broker is BrokerName.ANGELONE:
            return (
                f"{account.name}: {text}; fix the client code, PIN, api_key or TOTP secret of "
                f"connection {conn!r} as {ANGELONE_DOC} says"
            )
    return f"{account.name}: {text}"


def read_failure(exc: BrokerError, lane: Lane) -> tuple[RunStatus, str, str]:
    """What a failed read of the account (not a temporary error: that is retried) does to the
    run: its status, the reason recorded, and the lane's stop message. Data we cannot trust
    makes the run invalid; a login that cannot work fails it, saying what to do."""
    if isinstance(exc, BadResponse):
        return RunStatus.INVALID, f"the broker sent data we cannot trust: {exc}", str(exc)
    if isinstance(exc, AuthError):
        reason = what_to_do(exc, lane)
        return (
            RunStatus.FAILED,
            f"stopped at fetch_holdings, could not read the account: {reason}",
            reason,
        )
    return RunStatus.FAILED, f"could not read the account: {exc}", str(exc)


def read_account(
    broker: Broker, portfolio: Portfolio, account: str
) -> tuple[list[Holding], HoldingsSnapshot]:
    """The account's holdings, quotes and cash now, as the snapshot a plan is made on.

    A sell may use only what can be sold today: on a non-DDPI account, what the depository has
    authorised (``Holding.sellable_today``). The pipeline's fetch and the page's preview both read
    through here, so they plan on the same quantities. Broker errors propagate to the caller.
    """
    from dataclasses import replace
    from datetime import UTC, datetime

    from rebalance.domain.market import Instrument
    from rebalance.snapshot import raw_snapshot_from_broker

    holdings = broker.holdings()
    wanted = {h.symbol for h in holdings} | set(portfolio.targets)
    quotes = broker.quotes([Instrument(s, portfolio.exchange) for s in sorted(wanted)])
    cash = broker.funds().available_cash
    snapshot = raw_snapshot_from_broker(
        [replace(h, sellable_quantity=h.sellable_today) for h in holdings],
        quotes,
        cash=cash,
        taken_at=datetime.now(UTC),
        account=account,
        broker=broker.name,
        target_symbols=portfolio.targets,
        exchange=portfolio.exchange,
    )
    return holdings, snapshot
