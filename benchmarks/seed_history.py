"""Seed a history database at fleet size: 2,000 portfolios, weekly runs over two years.

Synthetic but shaped like what the pipeline writes (``tasks.py``): each run has a policy, targets,
a holdings snapshot (one position per symbol, 10 to 40 symbols), a validation result, a plan
(orders with reasons and charges, positions before/target/after, summary, notes) of the sizes a
real plan has (``rebalance plan --format json`` of the demo: about 4 KB for 10 symbols), its
orders (write-ahead legs with outcomes) and its status events. Statuses are mixed as a fleet's
would be: mostly completed paper/live runs, some dry runs, rejected, expired and failed ones.
Deterministic (``--seed``). Rows go in with COPY, 50 portfolios per round (runs, then their
orders and events), then the id sequences are moved past them and the tables analysed.

The database: ``--db-url``, else ``REBALANCE_DB_URL``, else a database ``rebalance_fleet`` on the
embedded PostgreSQL of this worktree (``.pgdata``), so the development history is left alone. It
is migrated to ``--revision`` (default head) first. A database that already holds runs is refused
unless ``--fresh`` (which empties the history tables first).

Daily drift snapshots (issue 19's "two years of daily drift snapshots") have no table yet: when
their migration lands, add a seeder to ``SEEDERS`` (a function that takes the ``Fleet`` and the
open COPY of its table) and its table to ``HISTORY_TABLES``; nothing else here changes.

    .venv/bin/python benchmarks/seed_history.py [--portfolios 2000] [--weeks 104] [--fresh]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

HISTORY_TABLES = ("rebalance_run_events", "rebalance_orders", "rebalance_runs")
FLEET_DATABASE = "rebalance_fleet"
REAL_SYMBOLS = [
    "RELIANCE",
    "HDFCBANK",
    "INFY",
    "TCS",
    "ICICIBANK",
    "ITC",
    "LT",
    "SBIN",
    "BHARTIARTL",
    "HINDUNILVR",
    "KOTAKBANK",
    "AXISBANK",
    "BAJFINANCE",
    "ASIANPAINT",
    "MARUTI",
    "SUNPHARMA",
    "TITAN",
    "ULTRACEMCO",
    "NESTLEIND",
    "WIPRO",
    "HCLTECH",
    "POWERGRID",
    "NTPC",
    "ONGC",
    "TATASTEEL",
    "JSWSTEEL",
    "ADANIPORTS",
    "COALINDIA",
    "GRASIM",
    "TECHM",
]
UNIVERSE = REAL_SYMBOLS + [f"NSESYM{i:03d}" for i in range(470)]
RUN_COLUMNS = [
    "id",
    "portfolio_id",
    "portfolio_name",
    "account",
    "broker",
    "dag_id",
    "airflow_run_id",
    "initiator",
    "broker_scope",
    "mode",
    "status",
    "status_reason",
    "created_at",
    "planned_at",
    "approved_at",
    "executed_at",
    "finished_at",
    "policy",
    "targets",
    "snapshot",
    "validation",
    "portfolio_value",
    "cash",
    "plan",
    "plan_hash",
    "approval_decision",
    "approved_by",
    "approval_note",
    "turnover_pct",
    "budget_used_pct",
    "max_drift_before",
    "max_drift_after",
    "trades",
    "estimated_charges",
    "placement",
]
ORDER_COLUMNS = [
    "id",
    "run_id",
    "leg",
    "tag",
    "symbol",
    "exchange",
    "side",
    "quantity",
    "price",
    "notional",
    "reasons",
    "charges",
    "state",
    "broker_order_id",
    "filled_quantity",
    "average_price",
    "error",
    "attempts",
    "sent_at",
    "plan_hash",
    "broker_orders",
    "created_at",
    "updated_at",
]
EVENT_COLUMNS = ["id", "run_id", "at", "from_status", "to_status", "message"]
# Outcome of a run and its share of the fleet's runs.
OUTCOMES = (
    ("completed", 0.82),
    ("dry_run", 0.06),
    ("rejected", 0.04),
    ("expired", 0.03),
    ("failed", 0.03),
    ("invalid", 0.02),
)
IST_1510_UTC = timedelta(hours=9, minutes=40)  # 15:10 IST


@dataclass
class Portfolio:
    number: int
    symbols: list[str]
    weights: dict[str, float]
    broker: str
    mode: str
    approval: str

    @property
    def id(self) -> str:
        return f"fleet_{self.number:04d}"

    @property
    def account(self) -> str:
        return f"acct_{self.number:04d}"


@dataclass
class Fleet:
    """Counters and the generated portfolios; ids are assigned here, not by the sequences."""

    portfolios: list[Portfolio]
    weeks: int
    end: datetime
    rng: random.Random
    run_id: int = 0
    order_id: int = 0
    event_id: int = 0


def make_portfolios(count: int, rng: random.Random) -> list[Portfolio]:
    found = []
    for number in range(count):
        symbols = rng.sample(UNIVERSE, rng.randint(10, 40))
        raw = [rng.uniform(0.5, 1.5) for _ in symbols]
        total = sum(raw)
        weights = {s: round(w / total, 4) for s, w in zip(symbols, raw, strict=True)}
        broker = rng.choice(("zerodha", "angelone", "paper"))
        mode = "paper" if broker == "paper" else rng.choice(("live", "live", "paper"))
        approval = rng.choice(("auto", "manual"))
        found.append(Portfolio(number, symbols, weights, broker, mode, approval))
    return found


def outcome(rng: random.Random) -> str:
    roll, total = rng.random(), 0.0
    for name, share in OUTCOMES:
        total += share
        if roll < total:
            return name
    return "completed"


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "))


def seed_runs(fleet: Fleet, runs: Any, orders: Any, events: Any) -> Iterator[int]:
    """Write every portfolio's weekly runs with their orders and events; yields per portfolio."""
    rng = fleet.rng
    for p in fleet.portfolios:
        prices = {s: rng.uniform(80, 4000) for s in p.symbols}
        quantities = {s: rng.randint(5, 400) for s in p.symbols}
        policy = {
            "rebalance_budget_pct": 10,
            "budget_mode": "max_side",
            "drift_band_abs_pct": 2,
            "drift_band_rel_pct": 15,
            "max_trades": 10,
            "min_trade_value_inr": 2000,
            "max_position_weight_pct": 20,
            "tilt_mode": "neutral",
            "unlisted_holdings": "ignore",
            "use_sell_proceeds": True,
            "cash_target_pct": 0,
            "approval": p.approval,
            "mode": p.mode,
        }
        targets = {"weights": p.weights, "cash": 0.0}
        for week in range(fleet.weeks):
            day = (fleet.end - timedelta(weeks=fleet.weeks - week)).date()
            created = datetime(day.year, day.month, day.day, tzinfo=UTC) + IST_1510_UTC
            for s in p.symbols:
                prices[s] = round(prices[s] * rng.uniform(0.96, 1.045), 2)
            fleet.run_id += 1
            write_run(fleet, p, created, prices, quantities, policy, targets, runs, orders, events)
        yield p.number


def write_run(
    fleet: Fleet,
    p: Portfolio,
    created: datetime,
    prices: dict[str, float],
    quantities: dict[str, int],
    policy: dict[str, Any],
    targets: dict[str, Any],
    runs: Any,
    orders: Any,
    events: Any,
) -> None:
    rng, run_id = fleet.rng, fleet.run_id
    kind = outcome(rng)
    mode = "dry_run" if kind == "dry_run" else p.mode
    values = {s: quantities[s] * prices[s] for s in p.symbols}
    total = sum(values.values())
    cash = round(rng.uniform(0, 0.03) * total, 2)
    value = total + cash
    positions = [
        {
            "symbol": s,
            "exchange": "NSE",
            "quantity": quantities[s],
            "last_price": prices[s],
            "average_price": round(prices[s] * rng.uniform(0.7, 1.1), 2),
            "sellable_quantity": quantities[s],
            "previous_close": round(prices[s] * rng.uniform(0.98, 1.02), 2),
            "acquired_on": None,
            "isin": f"INE{p.number:04d}{i:02d}01{i % 10}",
        }
        for i, s in enumerate(p.symbols)
    ]
    snapshot = {
        "account": p.account,
        "broker": p.broker,
        "taken_at": (created + timedelta(seconds=4)).isoformat(),
        "cash": cash,
        "positions": positions,
    }
    invalid = kind == "invalid"
    validation = {
        "success": not invalid,
        "problems": ["RELIANCE: last price is 3 days old"] if invalid else [],
        "results": [
            {"expectation": name, "success": not (invalid and i == 1), "unexpected_count": 0}
            for i, name in enumerate(
                (
                    "expect_column_values_to_not_be_null",
                    "expect_column_values_to_be_between",
                    "expect_column_values_to_be_unique",
                    "expect_target_symbols_quoted",
                    "expect_snapshot_fresh",
                    "expect_prices_not_stale",
                )
            )
        ],
        "docs_path": f"/opt/airflow/state/data_docs/{p.id}/run_{run_id}/index.html",
    }
    drift = {s: values[s] / value - p.weights[s] for s in p.symbols}
    movers = sorted(p.symbols, key=lambda s: -abs(drift[s]))[: rng.randint(0, 10)]
    legs = []
    for s in movers:
        side = "SELL" if drift[s] > 0 else "BUY"
        qty = max(1, int(abs(drift[s]) * value / prices[s] * 0.7))
        notional = round(qty * prices[s], 2)
        legs.append(
            {
                "symbol": s,
                "exchange": "NSE",
                "side": side,
                "quantity": qty,
                "price": prices[s],
                "notional": notional,
                "reasons": ["drift", "budget_scaled"] + (["reconciled"] if qty % 3 == 0 else []),
                "charges": round(notional * 0.00125, 2),
            }
        )
    legs.sort(key=lambda leg: leg["side"] != "SELL")  # sells first, as the planner orders them
    turnover = sum(leg["notional"] for leg in legs) / value * 100
    max_before = max(abs(d) for d in drift.values())
    max_after = max_before * rng.uniform(0.2, 0.6)
    charges = round(sum(leg["charges"] for leg in legs), 2)
    plan = {
        "orders": legs,
        "positions": [
            {
                "symbol": s,
                "weight_before": values[s] / value,
                "target_weight": p.weights[s],
                "weight_after": p.weights[s] + drift[s] * rng.uniform(0.2, 0.6),
                "quantity_before": quantities[s],
                "quantity_after": quantities[s],
                "skipped": [] if s in movers else ["inside_band"],
            }
            for s in p.symbols
        ],
        "summary": {
            "portfolio_value": value,
            "turnover_pct": turnover,
            "budget_used_pct": rng.uniform(40, 100),
            "max_drift_before": max_before,
            "max_drift_after": max_after,
            "trades": len(legs),
            "estimated_charges": charges,
            "budget_inr": value * 0.1,
            "scale": rng.uniform(0.3, 1.0),
            "charges_breakdown": {"stt": charges * 0.75, "stamp_duty": charges * 0.06},
        },
        "notes": [
            f"portfolio value ₹{value:,.2f} (holdings + cash ₹{cash:,.2f}); cash target 0.00%",
            f"budget ₹{value * 0.1:,.2f} measured as max_side",
        ],
    }
    plan_hash = hashlib.sha256(f"{p.id}/{run_id}".encode()).hexdigest()
    initiator = "scheduled" if fleet.rng.random() < 0.9 else "manual"
    stamp = created.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    at = [created + timedelta(seconds=s) for s in (0, 8, 25, 31, 40, 95, 110)]
    status, reason, decision, placed = {
        "completed": ("completed", f"{len(legs)} orders: {len(legs)} complete", "auto", True),
        "dry_run": ("completed", "dry run: nothing ordered", "auto", False),
        "rejected": ("rejected", "rejected by asha", "rejected", False),
        "expired": ("expired", "no answer by the cut-off 15:25 IST", "expired", False),
        "failed": ("failed", "0 of 3 legs filled: all rejected by the broker", "auto", True),
        "invalid": ("invalid", "stopped at validate_snapshot: stale prices", None, False),
    }[kind]
    if kind == "completed" and p.approval == "manual":
        decision = "approved"
    planned = not invalid
    runs.write_row(
        (
            run_id,
            p.id,
            f"Fleet portfolio {p.number:04d}",
            p.account,
            p.broker,
            f"rebalance_{p.id}",
            f"{initiator}__{stamp}",
            initiator,
            p.account,
            mode,
            status,
            reason,
            at[0],
            at[2] if planned else None,
            at[3] if decision in ("auto", "approved") else None,
            at[4] if placed else None,
            at[6],
            dumps(policy),
            dumps(targets),
            dumps(snapshot),
            dumps(validation),
            value,
            cash,
            dumps(plan) if planned else None,
            plan_hash if planned else None,
            decision,
            "asha" if decision in ("approved", "rejected") else None,
            None,
            turnover if planned else None,
            plan["summary"]["budget_used_pct"] if planned else None,
            max_before if planned else None,
            max_after if planned else None,
            len(legs) if planned else None,
            charges if planned else None,
            dumps({"sent": len(legs), "not_sent": 0, "unknown": 0}) if placed else None,
        )
    )
    if placed:
        for number, leg in enumerate(legs):
            fleet.order_id += 1
            filled = leg["quantity"] if kind == "completed" else 0
            orders.write_row(
                (
                    fleet.order_id,
                    run_id,
                    number,
                    f"F{run_id:012d}{number:03d}",
                    leg["symbol"],
                    "NSE",
                    leg["side"],
                    leg["quantity"],
                    leg["price"],
                    leg["notional"],
                    dumps(leg["reasons"]),
                    leg["charges"],
                    "complete" if filled else "rejected",
                    f"2{run_id:09d}{number:05d}",
                    filled,
                    leg["price"] if filled else None,
                    None if filled else "RMS: margin exceeds",
                    1,
                    at[4],
                    plan_hash,
                    1,
                    at[4],
                    at[5],
                )
            )
    path = {
        "completed": ["started", "planned", "approved", "placing", "placed", "completed"],
        "dry_run": ["started", "planned", "completed"],
        "rejected": ["started", "planned", "awaiting_approval", "rejected"],
        "expired": ["started", "planned", "awaiting_approval", "expired"],
        "failed": ["started", "planned", "approved", "placing", "failed"],
        "invalid": ["started", "invalid"],
    }[kind]
    if kind == "completed" and p.approval == "manual":
        path.insert(2, "awaiting_approval")
    previous = None
    for i, new in enumerate(path):
        fleet.event_id += 1
        message = "run opened" if previous is None else (reason if i == len(path) - 1 else None)
        events.write_row((fleet.event_id, run_id, at[i], previous, new, message))
        previous = new


class Rows:
    """Rows of one table, written by COPY once a batch of portfolios is complete."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def write_row(self, row: tuple[Any, ...]) -> None:
        self.rows.append(row)


BATCH = 50  # portfolios per COPY round (and per commit)
TABLES = ("rebalance_runs", "rebalance_orders", "rebalance_run_events")
COLUMNS = (RUN_COLUMNS, ORDER_COLUMNS, EVENT_COLUMNS)


# Seeders beyond the runs: (table, columns, function(fleet, copy)). Daily drift snapshots go here.
SEEDERS: list[tuple[str, list[str], Callable[[Fleet, Any], None]]] = []


def database_url(explicit: str | None) -> str:
    import os

    from rebalance.history.database import normalise_url, start_embedded

    if explicit or os.environ.get("REBALANCE_DB_URL"):
        return normalise_url(str(explicit or os.environ["REBALANCE_DB_URL"]))
    embedded = start_embedded()
    from sqlalchemy import create_engine, text

    admin = create_engine(embedded, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": FLEET_DATABASE}
        ).scalar()
        if not exists:
            conn.execute(text(f"CREATE DATABASE {FLEET_DATABASE}"))
    admin.dispose()
    return embedded.replace("/rebalance?", f"/{FLEET_DATABASE}?")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--portfolios", type=int, default=2000)
    parser.add_argument("--weeks", type=int, default=104, help="weekly runs per portfolio")
    parser.add_argument("--db-url", help="default: REBALANCE_DB_URL, else embedded rebalance_fleet")
    parser.add_argument("--revision", default="head", help="migrate to this revision first")
    parser.add_argument("--fresh", action="store_true", help="empty the history tables first")
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()

    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    from sqlalchemy import create_engine, text

    from rebalance.history.database import redacted
    from rebalance.history.migrate import current_revision, upgrade

    url = database_url(args.db_url)
    upgrade(url, args.revision)
    engine = create_engine(url)
    with engine.begin() as conn:
        present = conn.execute(text("SELECT count(*) FROM rebalance_runs")).scalar_one()
        if present and not args.fresh:
            print(
                f"seed_history: {redacted(url)} already holds {present:,} runs: "
                "use --fresh to empty it, or another --db-url",
                file=sys.stderr,
            )
            return 2
        if args.fresh:
            conn.execute(text(f"TRUNCATE {', '.join(HISTORY_TABLES)} RESTART IDENTITY"))
    rng = random.Random(args.seed)
    fleet = Fleet(
        make_portfolios(args.portfolios, rng),
        args.weeks,
        datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0),
        rng,
    )
    print(f"seeding {redacted(url)} (revision {current_revision(url)})")
    started = time.perf_counter()
    connection = engine.raw_connection()
    try:
        cursor = connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("SET synchronous_commit = off")
        buffers = (Rows(), Rows(), Rows())
        for number in seed_runs(fleet, *buffers):
            if (number + 1) % BATCH == 0 or number + 1 == len(fleet.portfolios):
                # runs before the orders and events that reference them (foreign keys)
                for buffer, table, columns in zip(buffers, TABLES, COLUMNS, strict=True):
                    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                        for row in buffer.rows:
                            copy.write_row(row)
                    buffer.rows.clear()
                connection.commit()
                print(
                    f"  {number + 1:>5} portfolios, {fleet.run_id:,} runs, "
                    f"{time.perf_counter() - started:.0f}s"
                )
        for table, columns, seeder in SEEDERS:
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                seeder(fleet, copy)
        connection.commit()
    finally:
        connection.close()
    loaded = time.perf_counter() - started
    with engine.begin() as conn:
        for table, last in (
            ("rebalance_runs", fleet.run_id),
            ("rebalance_orders", fleet.order_id),
            ("rebalance_run_events", fleet.event_id),
        ):
            conn.execute(
                text("SELECT setval(pg_get_serial_sequence(:t, 'id'), :v)"),
                {"t": table, "v": max(last, 1)},
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
        size = conn.execute(text("SELECT pg_size_pretty(pg_database_size(current_database()))"))
        pretty = size.scalar_one()
    print(
        f"SEEDED: {len(fleet.portfolios):,} portfolios, {fleet.run_id:,} runs, "
        f"{fleet.order_id:,} orders, {fleet.event_id:,} events in {loaded:.0f}s "
        f"(+ analyse {time.perf_counter() - started - loaded:.0f}s); database {pretty}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
