"""Reading and writing rebalance runs. Each method is one transaction.

Status changes take the run's row lock (``SELECT ... FOR UPDATE``) and are checked by
``status.check_transition``, so two copies of a task cannot move a run along different paths.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ARRAY, Connection, Engine, String, cast, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError

from rebalance.drift.record import DriftRecord, merge_same_day
from rebalance.history import tables
from rebalance.history.records import EventRecord, LegRecord, RunRecord
from rebalance.history.status import (
    OrderState,
    RunStatus,
    check_order_transition,
    check_transition,
)

# Namespace of our advisory locks (the high 32 bits of the key), so they cannot collide with
# another application's locks on a shared server. "RBAL" in ASCII.
LOCK_NAMESPACE = 0x5242414C


if TYPE_CHECKING:
    from rebalance.plan import TradePlan


@dataclass(frozen=True)
class RunKey:
    """What identifies a run: one account lane of one Airflow DAG run."""

    dag_id: str
    airflow_run_id: str
    account: str


class RunNotFound(LookupError):  # noqa: N818
    pass


class RunLocked(RuntimeError):  # noqa: N818
    """Another process holds the run's placement lock (a second copy of place_orders)."""


class LegsMismatch(RuntimeError):  # noqa: N818
    """Legs already written ahead for this run belong to another plan: nothing may be sent."""


def lock_key(run_id: int) -> int:
    """The bigint advisory-lock key of a run: our namespace, then the run id's low 32 bits."""
    return (LOCK_NAMESPACE << 32) | (run_id & 0xFFFFFFFF)


def _now() -> datetime:
    return datetime.now(UTC)


class HistoryStore:
    """The history database behind a SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- runs -----------------------------------------------------------------------------

    def open_run(self, key: RunKey, **fields: Any) -> int:
        """Create the run record for ``key`` once; later calls (task retries) return the same id."""
        values = {
            "dag_id": key.dag_id,
            "airflow_run_id": key.airflow_run_id,
            "account": key.account,
            "status": str(RunStatus.STARTED),
            **fields,
        }
        statement = (
            pg_insert(tables.runs)
            .values(**values)
            .on_conflict_do_nothing(constraint="uq_run_lane")
            .returning(tables.runs.c.id)
        )
        with self.engine.begin() as conn:
            inserted = conn.execute(statement).scalar_one_or_none()
            if inserted is not None:
                self._event(conn, inserted, None, RunStatus.STARTED, "run opened")
                return int(inserted)
            existing = conn.execute(
                select(tables.runs.c.id).where(
                    tables.runs.c.dag_id == key.dag_id,
                    tables.runs.c.airflow_run_id == key.airflow_run_id,
                    tables.runs.c.account == key.account,
                )
            ).scalar_one()
            return int(existing)

    def find_run(self, key: RunKey) -> int | None:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(tables.runs.c.id).where(
                    tables.runs.c.dag_id == key.dag_id,
                    tables.runs.c.airflow_run_id == key.airflow_run_id,
                    tables.runs.c.account == key.account,
                )
            ).scalar_one_or_none()
        return None if found is None else int(found)

    def run(self, run_id: int) -> RunRecord:
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(tables.runs).where(tables.runs.c.id == run_id))
                .mappings()
                .first()
            )
        if row is None:
            raise RunNotFound(f"no rebalance run {run_id}")
        return RunRecord.from_row(row)

    def update_run(self, run_id: int, **fields: Any) -> None:
        """Set fields that are not the status (snapshot, plan, validation, metrics...)."""
        if "status" in fields:
            raise ValueError("use transition() to change a run's status")
        with self.engine.begin() as conn:
            conn.execute(update(tables.runs).where(tables.runs.c.id == run_id).values(**fields))

    def transition(
        self, run_id: int, new: RunStatus, reason: str | None = None, **fields: Any
    ) -> RunStatus:
        """Move the run to ``new`` (checked), setting ``fields`` in the same transaction.

        Returns the previous status. Moving to the status it already has is a no-op (retries).
        """
        with self.engine.begin() as conn:
            current = self._lock_status(conn, run_id)
            if current == new:
                if fields:
                    conn.execute(
                        update(tables.runs).where(tables.runs.c.id == run_id).values(**fields)
                    )
                return current
            check_transition(current, new)
            values: dict[str, Any] = {"status": str(new), **fields}
            if reason is not None:
                values["status_reason"] = reason
            if new.is_final:
                values.setdefault("finished_at", _now())
            conn.execute(update(tables.runs).where(tables.runs.c.id == run_id).values(**values))
            self._event(conn, run_id, current, new, reason)
            return current

    def record_plan(
        self, run_id: int, plan: TradePlan, planned_at: datetime, reason: str | None = None
    ) -> None:
        """The run is ``planned``: its plan, the plan's hash and its summary's columns
        (``reason`` by default "N orders planned")."""
        summary = plan.summary
        self.transition(
            run_id,
            RunStatus.PLANNED,
            reason or f"{summary.trades} orders planned",
            plan=plan.to_dict(),
            plan_hash=plan.plan_hash,
            planned_at=planned_at,
            portfolio_value=summary.portfolio_value,
            turnover_pct=summary.turnover_pct,
            budget_used_pct=summary.budget_used_pct,
            max_drift_before=summary.max_drift_before,
            max_drift_after=summary.max_drift_after,
            trades=summary.trades,
            estimated_charges=summary.estimated_charges,
        )

    def status(self, run_id: int) -> RunStatus:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(tables.runs.c.status).where(tables.runs.c.id == run_id)
            ).scalar_one_or_none()
        if value is None:
            raise RunNotFound(f"no rebalance run {run_id}")
        return RunStatus(value)

    def runs(self, portfolio_id: str | None = None, limit: int = 50) -> list[RunRecord]:
        query = select(tables.runs).order_by(
            tables.runs.c.created_at.desc(), tables.runs.c.id.desc()
        )
        if portfolio_id:
            query = query.where(tables.runs.c.portfolio_id == portfolio_id)
        with self.engine.connect() as conn:
            return [RunRecord.from_row(r) for r in conn.execute(query.limit(limit)).mappings()]

    def last_runs(self, portfolio_ids: Iterable[str]) -> dict[str, RunRecord]:
        """The newest run of each portfolio, in one query: a LATERAL index scan of
        ``ix_runs_portfolio_created`` per id (the Rebalance page's cards)."""
        ids = sorted(set(portfolio_ids))
        if not ids:
            return {}
        array = cast(ids, ARRAY(String))
        wanted = select(func.unnest(array).label("pid")).subquery("wanted")
        newest = (
            select(tables.runs)
            .where(tables.runs.c.portfolio_id == wanted.c.pid)
            .order_by(tables.runs.c.created_at.desc(), tables.runs.c.id.desc())
            .limit(1)
            .lateral("newest")
        )
        query = select(newest).select_from(wanted.join(newest, text("true")))
        with self.engine.connect() as conn:
            records = [RunRecord.from_row(r) for r in conn.execute(query).mappings()]
        return {r.portfolio_id: r for r in records}

    def stale_placing_runs(
        self,
        account: str,
        broker: str,
        started_before: datetime,
        modes: Iterable[str] = ("live", "paper"),
    ) -> list[int]:
        """Runs of this account (name and broker) left ``placing`` since before ``started_before``,
        in one of ``modes`` (the runs whose orders went to the same book).

        Their placement died or their record_run could not reach the database; whoever touches
        the account next settles them from the book (a live placer still holds the run's lock).
        """
        started = func.coalesce(tables.runs.c.executed_at, tables.runs.c.created_at)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(tables.runs.c.id)
                .where(
                    tables.runs.c.account == account,
                    tables.runs.c.broker == broker,
                    tables.runs.c.status == str(RunStatus.PLACING),
                    tables.runs.c.mode.in_(list(modes)),
                    started < started_before,
                )
                .order_by(tables.runs.c.id)
            ).scalars()
            return [int(r) for r in rows]

    def events(self, run_id: int) -> list[EventRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(tables.events)
                .where(tables.events.c.run_id == run_id)
                .order_by(tables.events.c.id)
            ).mappings()
            return [EventRecord.from_row(r) for r in rows]

    # --- orders ---------------------------------------------------------------------------

    def write_orders_ahead(
        self, run_id: int, legs: Iterable[Mapping[str, Any]], plan_hash: str | None = None
    ) -> None:
        """Record every intended order as ``pending`` before anything is sent (idempotent).

        With ``plan_hash``, every leg is stamped with it, and legs an earlier attempt wrote for a
        different plan (or with a different tag, symbol, side or quantity) raise LegsMismatch.
        """
        rows = [
            {"run_id": run_id, "state": str(OrderState.PENDING), "plan_hash": plan_hash, **leg}
            for leg in legs
        ]
        if not rows:
            return
        statement = pg_insert(tables.orders).values(rows).on_conflict_do_nothing()
        with self.engine.begin() as conn:
            conn.execute(statement)
            stored = {
                r["leg"]: r
                for r in conn.execute(
                    select(tables.orders).where(tables.orders.c.run_id == run_id)
                ).mappings()
            }
        wanted = {row["leg"]: row for row in rows}
        for number, row in stored.items():
            want = wanted.get(number)
            same = want is not None and all(
                row[k] == want[k] for k in ("tag", "symbol", "side", "quantity")
            )
            if not same or (plan_hash is not None and row["plan_hash"] != plan_hash):
                raise LegsMismatch(
                    f"run {run_id} leg {number} ({row['side']} {row['quantity']} {row['symbol']}, "
                    f"plan {str(row['plan_hash'])[:12]}) is not a leg of the approved plan "
                    f"{str(plan_hash)[:12]}"
                )

    def orders(self, run_id: int) -> list[LegRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(tables.orders)
                .where(tables.orders.c.run_id == run_id)
                .order_by(tables.orders.c.leg)
            ).mappings()
            return [LegRecord.from_row(r) for r in rows]

    def filled_shares(self, run_id: int) -> int:
        """The shares the run's legs filled, in all."""
        return sum(leg.filled_quantity for leg in self.orders(run_id))

    def update_order(self, run_id: int, leg: int, **fields: Any) -> None:
        """Update one leg; a ``state`` change is checked by ``status.check_order_transition``."""
        with self.engine.begin() as conn:
            if "state" in fields:
                current = conn.execute(
                    select(tables.orders.c.state)
                    .where(tables.orders.c.run_id == run_id, tables.orders.c.leg == leg)
                    .with_for_update()
                ).scalar_one()
                check_order_transition(OrderState(current), OrderState(str(fields["state"])))
                fields["state"] = str(fields["state"])
            conn.execute(
                update(tables.orders)
                .where(tables.orders.c.run_id == run_id, tables.orders.c.leg == leg)
                .values(updated_at=_now(), **fields)
            )

    def note(self, run_id: int, message: str) -> None:
        """An event that is not a status change (a resend, a lock wait, a duplicate found)."""
        with self.engine.begin() as conn:
            current = self._lock_status(conn, run_id)
            self._event(conn, run_id, current, current, message)

    # --- the placement lock ---------------------------------------------------------------

    @contextmanager
    def run_lock(
        self, run_id: int, *, wait_seconds: float = 0.0, poll_seconds: float = 0.2
    ) -> Iterator[float]:
        """Hold the run's Postgres advisory lock (session level) for the ``with`` block.

        Waits up to ``wait_seconds`` for another holder to finish, then raises RunLocked. Yields
        the seconds waited. The lock lives on its own connection: if this process dies, Postgres
        drops the connection and the lock with it, so a crash never leaves a run locked.
        """
        key = lock_key(run_id)
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            started = time.monotonic()
            while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                waited = time.monotonic() - started
                if waited >= wait_seconds:
                    raise RunLocked(
                        f"run {run_id}: another process is placing its orders "
                        f"(advisory lock {key} held; waited {waited:.1f}s)"
                    )
                time.sleep(min(poll_seconds, max(0.01, wait_seconds - waited)))
            try:
                yield time.monotonic() - started
            finally:
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                except DBAPIError:
                    conn.invalidate()  # the connection is gone, and the lock with it
        finally:
            conn.close()

    # --- internals ------------------------------------------------------------------------

    @staticmethod
    def _lock_status(conn: Connection, run_id: int) -> RunStatus:
        value = conn.execute(
            select(tables.runs.c.status).where(tables.runs.c.id == run_id).with_for_update()
        ).scalar_one_or_none()
        if value is None:
            raise RunNotFound(f"no rebalance run {run_id}")
        return RunStatus(value)

    # --- drift watch (issue 13) -------------------------------------------------------------

    def save_drift_record(self, record: DriftRecord) -> DriftRecord:
        """Insert the day's record of an account, or replace it keeping what the first watch of
        the day already did (``merge_same_day``: an alert, a notice, a trigger). Returns what was
        stored. The row is locked while it is merged, so two watches cannot both alert."""
        table = tables.drift_snapshots
        where = (
            (table.c.portfolio_id == record.portfolio_id)
            & (table.c.account == record.account)
            & (table.c.day == record.day)
        )
        with self.engine.begin() as conn:
            statement = (
                pg_insert(table)
                .values(**record.to_dict())
                .on_conflict_do_nothing(constraint="uq_drift_day")
            )
            if conn.execute(statement.returning(table.c.id)).scalar_one_or_none() is not None:
                return record
            old = conn.execute(select(table).where(where).with_for_update()).mappings().one()
            merged = merge_same_day(DriftRecord.from_dict(dict(old)), record)
            conn.execute(update(table).where(where).values(**merged.to_dict()))
            return merged

    def drift_records(
        self,
        portfolio_id: str | None = None,
        *,
        since: date | None = None,
        account: str | None = None,
    ) -> list[DriftRecord]:
        """Drift records oldest day first (then portfolio, account), optionally filtered."""
        table = tables.drift_snapshots
        query = select(table).order_by(table.c.day, table.c.portfolio_id, table.c.account)
        if portfolio_id:
            query = query.where(table.c.portfolio_id == portfolio_id)
        if since is not None:
            query = query.where(table.c.day >= since)
        if account:
            query = query.where(table.c.account == account)
        with self.engine.connect() as conn:
            return [DriftRecord.from_dict(dict(r)) for r in conn.execute(query).mappings()]

    def latest_drift_record(
        self, portfolio_id: str, account: str, before: date
    ) -> DriftRecord | None:
        """The account's latest record of a day before ``before`` (the episode carried in)."""
        table = tables.drift_snapshots
        query = (
            select(table)
            .where(
                table.c.portfolio_id == portfolio_id,
                table.c.account == account,
                table.c.day < before,
            )
            .order_by(table.c.day.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else DriftRecord.from_dict(dict(row))

    def run_days(self, portfolio_id: str, since: datetime) -> list[datetime]:
        """When each run of the portfolio started (any initiator and outcome), since ``since``."""
        query = select(tables.runs.c.created_at).where(
            tables.runs.c.portfolio_id == portfolio_id, tables.runs.c.created_at >= since
        )
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(query)]

    def login_notices_sent(self, day: date) -> list[tuple[str, str]]:
        """(broker, account) pairs whose watch sent a "log in" notice on ``day``."""
        table = tables.drift_snapshots
        query = select(table.c.broker, table.c.account).where(
            table.c.day == day, table.c.login_notice_sent.is_(True)
        )
        with self.engine.connect() as conn:
            return [(r[0], r[1]) for r in conn.execute(query)]

    @staticmethod
    def _event(
        conn: Connection,
        run_id: int,
        old: RunStatus | None,
        new: RunStatus,
        message: str | None,
    ) -> None:
        conn.execute(
            insert(tables.events).values(
                run_id=run_id,
                from_status=None if old is None else str(old),
                to_status=str(new),
                message=message,
            )
        )
