"""The price history cache and the stored model outputs (migration 0009), on the history store.

Kept beside ``store.py`` rather than in it: these are the target models' tables only
(``price_history``, ``target_models``), read and written by the model task, the planner's
inputs, the preview and the drift watch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from rebalance.brokers.base import Candle
from rebalance.history import tables
from rebalance.history.status import RunStatus
from rebalance.history.store import HistoryStore


@dataclass(frozen=True)
class CachedClose:
    close: float
    source: str
    fetched_at: datetime


@dataclass(frozen=True)
class TargetModelRecord:
    """A row of ``target_models``: one lane run's targets and what produced them."""

    run_id: int
    portfolio_id: str
    account: str
    model: str
    as_of: date | None
    weights: dict[str, float]  # fractions of portfolio value
    record: dict[str, Any]  # TargetResult.to_record() plus "replacement" and "price_history"
    created_at: datetime


def cached_closes(
    store: HistoryStore, symbols: Iterable[str], exchange: str, first: date, last: date
) -> dict[str, dict[date, CachedClose]]:
    """The cached closes of ``symbols`` on ``[first, last]``: symbol -> day -> close."""
    wanted = sorted(set(symbols))
    out: dict[str, dict[date, CachedClose]] = {s: {} for s in wanted}
    if not wanted:
        return out
    t = tables.price_history
    query = select(t.c.symbol, t.c.day, t.c.close, t.c.source, t.c.fetched_at).where(
        and_(
            t.c.symbol.in_(wanted),
            t.c.exchange == exchange,
            t.c.day >= first,
            t.c.day <= last,
        )
    )
    with store.engine.connect() as conn:
        for row in conn.execute(query):
            out[row.symbol][row.day] = CachedClose(row.close, row.source, row.fetched_at)
    return out


def save_candles(
    store: HistoryStore,
    symbol: str,
    exchange: str,
    candles: Sequence[Candle],
    *,
    source: str,
    fetched_at: datetime,
) -> None:
    """Insert or refresh the cached candles of one symbol (a re-fetched day replaces the old)."""
    if not candles:
        return
    t = tables.price_history
    rows = [
        {
            "symbol": symbol,
            "exchange": exchange,
            "day": c.day,
            "open": c.open,
            "high": c.high,
            "low": c.low,
            "close": c.close,
            "volume": c.volume,
            "source": source,
            "fetched_at": fetched_at,
        }
        for c in candles
    ]
    statement = pg_insert(t).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=[t.c.symbol, t.c.exchange, t.c.day],
        set_={
            name: statement.excluded[name]
            for name in ("open", "high", "low", "close", "volume", "source", "fetched_at")
        },
    )
    with store.engine.begin() as conn:
        conn.execute(statement)


def save_target_model(
    store: HistoryStore,
    run_id: int,
    *,
    portfolio_id: str,
    account: str,
    model: str,
    as_of: date | None,
    weights: dict[str, float],
    record: dict[str, Any],
) -> None:
    """Store a run's model output once; a task retry replaces it (same run, newer inputs)."""
    t = tables.target_models
    values = {
        "run_id": run_id,
        "portfolio_id": portfolio_id,
        "account": account,
        "model": model,
        "as_of": as_of,
        "weights": weights,
        "record": record,
    }
    statement = pg_insert(t).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=[t.c.run_id],
        set_={k: statement.excluded[k] for k in values if k != "run_id"},
    )
    with store.engine.begin() as conn:
        conn.execute(statement)


def _record(row: Any) -> TargetModelRecord:
    return TargetModelRecord(
        run_id=row.run_id,
        portfolio_id=row.portfolio_id,
        account=row.account,
        model=row.model,
        as_of=row.as_of,
        weights={str(k): float(v) for k, v in row.weights.items()},
        record=dict(row.record),
        created_at=row.created_at,
    )


def target_model_of(store: HistoryStore, run_id: int) -> TargetModelRecord | None:
    """The model output stored for ``run_id`` (None when the run had no model task)."""
    t = tables.target_models
    with store.engine.connect() as conn:
        row = conn.execute(select(t).where(t.c.run_id == run_id)).first()
    return None if row is None else _record(row)


def last_completed_targets(
    store: HistoryStore, portfolio_id: str, account: str | None = None
) -> TargetModelRecord | None:
    """The model output of the portfolio's latest completed run (of ``account``, if given)."""
    t, runs = tables.target_models, tables.runs
    query = (
        select(t)
        .join(runs, runs.c.id == t.c.run_id)
        .where(runs.c.portfolio_id == portfolio_id, runs.c.status == str(RunStatus.COMPLETED))
        .order_by(runs.c.created_at.desc(), runs.c.id.desc())
        .limit(1)
    )
    if account is not None:
        query = query.where(runs.c.account == account)
    with store.engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else _record(row)
