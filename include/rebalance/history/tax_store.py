"""Tax lots in history (issue 15): the trades they are replayed from, corporate actions, the FMV
of 31 January 2018 and the gains declared from elsewhere, as the tax core's typed records
(``Trade``, ``CorporateAction``, ``DeclaredGains``). Tables in ``tables.py`` (migration 0007).

Writes are idempotent: a trade is keyed by (account, broker trade id or leg tag), an action by
(symbol, kind, date, account), so re-importing a tradebook or retrying ``record_run`` adds nothing
twice. Each method is one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from rebalance.domain.market import IST
from rebalance.history import tables
from rebalance.tax.gains import DeclaredGains
from rebalance.tax.lots import ActionKind, CorporateAction
from rebalance.tax.rules import FinancialYear
from rebalance.tax.tradebook import Trade, TradeType

ORIGIN_TRADEBOOK = "tradebook"
ORIGIN_FILL = "fill"


def _key(trade: Trade, origin: str) -> str:
    """A fill's key is its leg's tag; a tradebook row's the broker's trade id with its day and
    symbol (exchange trade ids are not unique across days), else its file and line."""
    if origin == ORIGIN_FILL:
        return trade.trade_id
    if trade.trade_id:
        return f"{trade.traded_on.isoformat()}:{trade.symbol}:{trade.trade_id}"[:128]
    return trade.source[:128]


class TaxStore:
    """The tax tables behind the history database's engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_trades(self, trades: Iterable[Trade], origin: str = ORIGIN_TRADEBOOK) -> int:
        """Insert ``trades``; those already stored (same account and key) are left alone.
        Returns how many were new. The key is the broker's trade id, else the source line."""
        rows = [
            {
                "account": t.account,
                "symbol": t.symbol,
                "side": str(t.trade_type),
                "traded_on": t.traded_on,
                "quantity": t.quantity,
                "price": t.price,
                "origin": origin,
                "trade_key": _key(t, origin),
                "isin": t.isin or None,
                "source": t.source,
            }
            for t in trades
        ]
        return self._insert_new(tables.tax_trades, rows, "uq_tax_trade")

    def _insert_new(self, table: Table, rows: list[dict[str, Any]], constraint: str) -> int:
        """Insert ``rows``, skipping those ``constraint`` says are stored; how many were new."""
        if not rows:
            return 0
        statement = (
            pg_insert(table)
            .values(rows)
            .on_conflict_do_nothing(constraint=constraint)
            .returning(table.c.id)
        )
        with self.engine.begin() as conn:
            return len(conn.execute(statement).all())

    def trades(self, accounts: Sequence[str] | None = None) -> list[Trade]:
        """Stored trades (all accounts, or ``accounts``), by date then insertion."""
        table = tables.tax_trades
        query = select(table).order_by(table.c.traded_on, table.c.id)
        if accounts is not None:
            query = query.where(table.c.account.in_(list(accounts)))
        with self.engine.connect() as conn:
            return [
                Trade(
                    account=r["account"],
                    symbol=r["symbol"],
                    trade_type=TradeType(r["side"]),
                    traded_on=r["traded_on"],
                    quantity=r["quantity"],
                    price=r["price"],
                    trade_id=r["trade_key"],
                    isin=r["isin"] or "",
                    source=r["source"] or "",
                )
                for r in conn.execute(query).mappings()
            ]

    def record_fills(self, run_id: int) -> int:
        """The filled legs of run ``run_id`` as trades of its account (origin fill, keyed by the
        leg's tag, dated by the IST day it was sent); returns how many were new."""
        runs, orders = tables.runs, tables.orders
        query = (
            select(
                runs.c.account,
                orders.c.tag,
                orders.c.symbol,
                orders.c.side,
                orders.c.filled_quantity,
                orders.c.average_price,
                orders.c.price,
                orders.c.sent_at,
                orders.c.updated_at,
            )
            .join(runs, runs.c.id == orders.c.run_id)
            .where(orders.c.run_id == run_id, orders.c.filled_quantity > 0)
        )
        with self.engine.connect() as conn:
            legs = list(conn.execute(query).mappings())
        trades = [
            Trade(
                account=leg["account"],
                symbol=leg["symbol"],
                trade_type=TradeType(str(leg["side"]).lower()),
                traded_on=(leg["sent_at"] or leg["updated_at"]).astimezone(IST).date(),
                quantity=int(leg["filled_quantity"]),
                price=float(leg["average_price"] or leg["price"]),
                trade_id=leg["tag"],
                source=f"run {run_id} leg {leg['tag']}",
            )
            for leg in legs
        ]
        return self.add_trades(trades, ORIGIN_FILL)

    def add_actions(self, actions: Iterable[CorporateAction]) -> int:
        """Insert splits and bonuses; one already stored (same symbol, kind, date, account) is
        left alone. Returns how many were new."""
        rows = [
            {
                "symbol": a.symbol,
                "kind": str(a.kind),
                "on_date": a.on,
                "new": a.new,
                "old": a.old,
                "account": a.account or "",
                "quantity": a.quantity,
                "source": a.source,
            }
            for a in actions
        ]
        return self._insert_new(tables.tax_corporate_actions, rows, "uq_tax_action")

    def actions(self) -> list[CorporateAction]:
        table = tables.tax_corporate_actions
        with self.engine.connect() as conn:
            rows = conn.execute(select(table).order_by(table.c.on_date, table.c.id)).mappings()
            return [
                CorporateAction(
                    symbol=r["symbol"],
                    kind=ActionKind(r["kind"]),
                    on=r["on_date"],
                    new=r["new"],
                    old=r["old"],
                    account=r["account"] or None,
                    quantity=r["quantity"],
                    source=r["source"] or "",
                )
                for r in rows
            ]

    def set_fmv(self, values: Mapping[str, float]) -> None:
        """Store (or replace) the FMV of 31 January 2018 per symbol, rupees per share."""
        if not values:
            return
        table = tables.tax_fmv_2018
        statement = pg_insert(table).values([{"symbol": s, "fmv": v} for s, v in values.items()])
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.symbol], set_={"fmv": statement.excluded.fmv}
        )
        with self.engine.begin() as conn:
            conn.execute(statement)

    def fmv(self) -> dict[str, float]:
        with self.engine.connect() as conn:
            return {r[0]: r[1] for r in conn.execute(select(tables.tax_fmv_2018))}

    def set_declared(self, fy: FinancialYear, declared: DeclaredGains) -> None:
        """The gains realised elsewhere in ``fy`` (replaces what was declared before)."""
        table = tables.tax_declared_gains
        values = {"short_term": declared.short_term, "long_term": declared.long_term}
        with self.engine.begin() as conn:
            inserted = conn.execute(
                pg_insert(table)
                .values(fy=fy.label, **values)
                .on_conflict_do_nothing()
                .returning(table.c.fy)
            ).first()
            if inserted is None:
                conn.execute(
                    update(table)
                    .where(table.c.fy == fy.label)
                    .values(**values, updated_at=datetime.now(UTC))
                )

    def declared(self, fy: FinancialYear) -> DeclaredGains:
        table = tables.tax_declared_gains
        with self.engine.connect() as conn:
            row = conn.execute(select(table).where(table.c.fy == fy.label)).mappings().first()
        if row is None:
            return DeclaredGains()
        return DeclaredGains(short_term=row["short_term"], long_term=row["long_term"])
