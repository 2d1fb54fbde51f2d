"""Reading and writing rebalance runs. Each method is one transaction.

Status changes take the run's row lock (``SELECT ... FOR UPDATE``) and are checked by
``status.check_transition``, so two copies of a task cannot move a run along different paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from rebalance.history import tables
from rebalance.history.status import OrderState, RunStatus, check_transition


@dataclass(frozen=True)
class RunKey:
    """What identifies a run: one account lane of one Airflow DAG run."""

    dag_id: str
    airflow_run_id: str
    account: str


class RunNotFound(LookupError):
    pass


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

    def run(self, run_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(tables.runs).where(tables.runs.c.id == run_id)).mappings().first()
        if row is None:
            raise RunNotFound(f"no rebalance run {run_id}")
        return dict(row)

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
                    conn.execute(update(tables.runs).where(tables.runs.c.id == run_id).values(**fields))
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

    def status(self, run_id: int) -> RunStatus:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(tables.runs.c.status).where(tables.runs.c.id == run_id)
            ).scalar_one_or_none()
        if value is None:
            raise RunNotFound(f"no rebalance run {run_id}")
        return RunStatus(value)

    def runs(self, portfolio_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        query = select(tables.runs).order_by(tables.runs.c.created_at.desc(), tables.runs.c.id.desc())
        if portfolio_id:
            query = query.where(tables.runs.c.portfolio_id == portfolio_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.limit(limit)).mappings()]

    def events(self, run_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(tables.events)
                .where(tables.events.c.run_id == run_id)
                .order_by(tables.events.c.id)
            ).mappings()
            return [dict(r) for r in rows]

    # --- orders ---------------------------------------------------------------------------

    def write_orders_ahead(self, run_id: int, legs: Iterable[Mapping[str, Any]]) -> None:
        """Record every intended order as ``pending`` before anything is sent (idempotent)."""
        rows = [{"run_id": run_id, "state": str(OrderState.PENDING), **leg} for leg in legs]
        if not rows:
            return
        statement = pg_insert(tables.orders).values(rows).on_conflict_do_nothing()
        with self.engine.begin() as conn:
            conn.execute(statement)

    def orders(self, run_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(tables.orders).where(tables.orders.c.run_id == run_id).order_by(tables.orders.c.leg)
            ).mappings()
            return [dict(r) for r in rows]

    def update_order(self, run_id: int, leg: int, **fields: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(tables.orders)
                .where(tables.orders.c.run_id == run_id, tables.orders.c.leg == leg)
                .values(updated_at=_now(), **fields)
            )

    # --- internals ------------------------------------------------------------------------

    @staticmethod
    def _lock_status(conn: Connection, run_id: int) -> RunStatus:
        value = conn.execute(
            select(tables.runs.c.status).where(tables.runs.c.id == run_id).with_for_update()
        ).scalar_one_or_none()
        if value is None:
            raise RunNotFound(f"no rebalance run {run_id}")
        return RunStatus(value)

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


