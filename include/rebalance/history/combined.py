"""The history of combined runs and of ledgers (migration 0008; docs/accounts.md).

A *combined run* is one DAG run's plan for the whole of a portfolio held in several accounts
(``accounts_mode: combined``): the combined snapshot, the plan, its split per account, the one
approval and the outcome per account. Each account's part is an ordinary run
(``rebalance_runs``), placed by its own lane; ``combined_run_parts`` links the two.

The ledger of a shared account (several portfolios in one account) is append-only
(``ledger_entries``); ``AccountLedger`` (``rebalance.accounts.ledger``) is its pure form.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from rebalance.accounts.ledger import AccountLedger, Entry, EntryKind
from rebalance.history import tables


@dataclass(frozen=True)
class CombinedRunRecord:
    """A row of ``combined_runs`` with its parts (account -> run id of the account's part)."""

    id: int
    portfolio_id: str
    dag_id: str
    airflow_run_id: str
    mode: str
    status: str
    status_reason: str | None
    created_at: datetime
    snapshot: Mapping[str, Any] | None
    plan: Mapping[str, Any] | None
    plan_hash: str | None
    allocation: Mapping[str, Any] | None
    allocation_hash: str | None
    replanned: bool
    approval_decision: str | None
    approved_by: str | None
    approved_at: datetime | None
    outcome: Mapping[str, Any] | None
    finished_at: datetime | None
    parts: Mapping[str, int]


class CombinedStore:
    """Combined runs and ledgers, on the history database's engine (``HistoryStore.engine``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def open_combined(self, portfolio_id: str, dag_id: str, airflow_run_id: str, mode: str) -> int:
        """The combined run of one DAG run, created once (a retry gets the same id)."""
        table = tables.combined_runs
        with self.engine.begin() as conn:
            conn.execute(
                pg_insert(table)
                .values(
                    portfolio_id=portfolio_id,
                    dag_id=dag_id,
                    airflow_run_id=airflow_run_id,
                    mode=mode,
                    status="started",
                )
                .on_conflict_do_nothing(constraint="uq_combined_run")
            )
            found = conn.execute(
                select(table.c.id).where(
                    table.c.dag_id == dag_id, table.c.airflow_run_id == airflow_run_id
                )
            ).scalar_one()
        return int(found)

    def find_combined(self, dag_id: str, airflow_run_id: str) -> int | None:
        table = tables.combined_runs
        with self.engine.connect() as conn:
            found = conn.execute(
                select(table.c.id).where(
                    table.c.dag_id == dag_id, table.c.airflow_run_id == airflow_run_id
                )
            ).scalar_one_or_none()
        return None if found is None else int(found)

    def update_combined(self, combined_id: int, **fields: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(tables.combined_runs)
                .where(tables.combined_runs.c.id == combined_id)
                .values(**fields)
            )

    def link_part(self, combined_id: int, account: str, run_id: int) -> None:
        """Record that ``run_id`` is ``account``'s part of the combined run (idempotent)."""
        with self.engine.begin() as conn:
            conn.execute(
                pg_insert(tables.combined_run_parts)
                .values(combined_run_id=combined_id, account=account, run_id=run_id)
                .on_conflict_do_nothing()
            )

    def combined(self, combined_id: int) -> CombinedRunRecord:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    select(tables.combined_runs).where(tables.combined_runs.c.id == combined_id)
                )
                .mappings()
                .first()
            )
            if row is None:
                raise LookupError(f"no combined run {combined_id}")
            parts = conn.execute(
                select(tables.combined_run_parts).where(
                    tables.combined_run_parts.c.combined_run_id == combined_id
                )
            ).mappings()
            linked = {str(p["account"]): int(p["run_id"]) for p in parts}
        return CombinedRunRecord(**dict(row), parts=linked)

    def combined_of_run(self, run_id: int) -> int | None:
        """The combined run an account's run is a part of (None: a separate run)."""
        parts = tables.combined_run_parts
        with self.engine.connect() as conn:
            found = conn.execute(
                select(parts.c.combined_run_id).where(parts.c.run_id == run_id)
            ).scalar_one_or_none()
        return None if found is None else int(found)

    def combined_runs(
        self, portfolio_id: str | None = None, limit: int = 50
    ) -> list[CombinedRunRecord]:
        table = tables.combined_runs
        query = select(table.c.id).order_by(table.c.id.desc()).limit(limit)
        if portfolio_id is not None:
            query = query.where(table.c.portfolio_id == portfolio_id)
        with self.engine.connect() as conn:
            ids = [int(i) for i in conn.execute(query).scalars()]
        return [self.combined(i) for i in ids]

    # -- ledgers --------------------------------------------------------------------------------

    def ledger(self, account_key: str) -> AccountLedger:
        """Every entry of the shared account ``account_key`` (broker/connection), in order."""
        table = tables.ledger_entries
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(table).where(table.c.account_key == account_key).order_by(table.c.id)
            ).mappings()
            entries = tuple(
                Entry(
                    portfolio=r["portfolio"],
                    kind=EntryKind(r["kind"]),
                    at=r["at"],
                    symbol=r["symbol"],
                    shares=int(r["shares"]),
                    cash=float(r["cash"]),
                    ref=r["ref"],
                    by=r["by"],
                    note=r["note"],
                )
                for r in rows
            )
        return AccountLedger(account_key, entries)

    def fill_charges(self, tags: Iterable[str]) -> dict[str, float]:
        """The estimated charges of the orders ``tags`` in proportion to their shares filled, as
        ``ledgers.record_fills`` moved them into the ledgers (tag -> rupees)."""
        table = tables.orders
        wanted = sorted(set(tags))
        if not wanted:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    table.c.tag, table.c.charges, table.c.quantity, table.c.filled_quantity
                ).where(table.c.tag.in_(wanted))
            ).all()
        return {
            tag: round(charges * filled / quantity, 2) if quantity else charges
            for tag, charges, quantity, filled in rows
        }

    def append_entries(
        self, account_key: str, entries: Iterable[Entry], run_id: int | None = None
    ) -> int:
        """Append ``entries`` (the new tail of an ``AccountLedger``); a fill whose tag is
        already recorded is skipped (the ledger counts each fill once). Returns rows written."""
        rows = [
            {
                "account_key": account_key,
                "portfolio": e.portfolio,
                "kind": str(e.kind),
                "at": e.at if e.at.tzinfo else e.at.replace(tzinfo=UTC),
                "symbol": e.symbol,
                "shares": e.shares,
                "cash": e.cash,
                "ref": e.ref,
                "by": e.by,
                "note": e.note,
                "run_id": run_id,
            }
            for e in entries
        ]
        if not rows:
            return 0
        written = 0
        with self.engine.begin() as conn:
            for row in rows:
                if row["ref"] is None:
                    conn.execute(insert(tables.ledger_entries).values(**row))
                    written += 1
                    continue
                result = conn.execute(
                    pg_insert(tables.ledger_entries)
                    .values(**row)
                    .on_conflict_do_nothing(
                        index_elements=["account_key", "ref"],
                        index_where=tables.ledger_entries.c.ref.isnot(None),
                    )
                )
                written += result.rowcount
        return written
