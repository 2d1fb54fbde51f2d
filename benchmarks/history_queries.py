"""History at fleet size: the product's own history reads, timed against a seeded database.

Seed first (``benchmarks/seed_history.py``: 2,000 portfolios, weekly runs over two years). Then
this times, warm, the median and worst of ``--repeat`` calls of exactly what the product runs:

* ``rebalance history`` and ``rebalance history --portfolio ID`` (the CLI in-process: its
  ``HistoryStore.runs`` query and the table it prints), and ``rebalance history show RUN``;
* the Rebalance page (``rebalance.ui.app``) through FastAPI's TestClient with the viewer
  overridden as ``tests/unit/ui`` does: its list (``GET /``), one portfolio's page
  (``GET /?portfolio=ID``) and one run's detail (``GET /runs/ID``);
* the history reads each lane makes (``store.runs(portfolio, 50)`` of the one-live-run-a-day
  check, ``store.stale_placing_runs`` of placement).

The Rebalance page lists the portfolio *files* too, so ``--portfolio-files`` (default: as many as
the seeded portfolios) writes that many portfolio files matching the seeded ids into a temporary
``REBALANCE_PORTFOLIOS_DIR``; ``0`` keeps the project's folder. For each call it also counts the
SQL statements and their time (SQLAlchemy's cursor events), so the database's share is visible;
``--explain`` prints EXPLAIN (ANALYZE, BUFFERS) of the slowest statement of each call.

Goal (issue 19): each call under 300 ms. The database: ``--db-url``, else ``REBALANCE_DB_URL``,
else ``rebalance_fleet`` on this worktree's embedded PostgreSQL (where seed_history.py puts it).
``--upgrade`` first applies the migrations (to measure before and after a new index on the same
data: seed with ``--revision 0003``, run this, then run it again with ``--upgrade``).

    .venv/bin/python benchmarks/history_queries.py [--repeat 5] [--explain] [--upgrade]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GOAL_MS = 300.0
WEEKLY = (
    "  frequency: monthly\n  day_rule: last_trading_day\n",
    "  frequency: weekly\n  weekday: friday\n",
)
ACCOUNT = (
    "  - name: paper\n    broker: paper\n    holdings_file: data/demo_holdings.csv\n"
    "    cash_inr: 50000\n"
)


class StatementLog:
    """SQL statements run on an engine while ``active``: text, parameters and seconds each."""

    def __init__(self) -> None:
        from sqlalchemy import Engine, event

        engine = Engine  # every engine: the CLI and the page open their own
        self.active = False
        self.statements: list[tuple[str, Any, float]] = []
        self._started: list[float] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        self._started.append(time.perf_counter())

    def _after(self, conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        took = time.perf_counter() - self._started.pop()
        if self.active:
            self.statements.append((statement, params, took))

    @contextmanager
    def capture(self) -> Any:
        self.statements = []
        self.active = True
        try:
            yield self
        finally:
            self.active = False


def portfolio_files(target: Path, ids: list[str]) -> None:
    """One portfolio file per seeded portfolio id (the demo's targets; its own paper account)."""
    target.mkdir(parents=True)
    shutil.copytree(ROOT / "portfolios" / "data", target / "data")
    shutil.copytree(ROOT / "portfolios" / "calendars", target / "calendars")
    text = (ROOT / "portfolios" / "demo.yaml").read_text()
    assert ACCOUNT in text, "the demo portfolio's account block changed: update this benchmark"
    assert WEEKLY[0] in text, "the demo portfolio's schedule changed: update this benchmark"
    for pid in ids:
        body = text.replace(ACCOUNT, ACCOUNT.replace("name: paper", f"name: {pid}"))
        body = body.replace(WEEKLY[0], WEEKLY[1])
        (target / f"{pid}.yaml").write_text(body.replace("Demo Nifty Ten", f"Fleet {pid}"))


def timed(name: str, call: Callable[[], Any], log: StatementLog, repeat: int) -> dict[str, Any]:
    call()  # warm: imports, connection pool, caches
    samples, statements = [], []
    for _ in range(repeat):
        with log.capture():
            started = time.perf_counter()
            call()
            samples.append(time.perf_counter() - started)
        statements = list(log.statements)
    return {
        "name": name,
        "median_ms": statistics.median(samples) * 1000,
        "max_ms": max(samples) * 1000,
        "statements": len(statements),
        "sql_ms": sum(s[2] for s in statements) * 1000,
        "slowest": max(statements, key=lambda s: s[2]) if statements else None,
    }


def explain(engine: Any, statement: str, params: Any) -> str:
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
            lines = [str(row[0]) for row in cursor.fetchall()]
        raw.rollback()
    return "\n".join("      " + line for line in lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", help="default: REBALANCE_DB_URL, else embedded rebalance_fleet")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--portfolio-files", type=int, default=None)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--upgrade", action="store_true", help="apply the migrations first")
    args = parser.parse_args()

    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from sqlalchemy import text

    from rebalance.history.database import engine_for
    from rebalance.history.migrate import current_revision, upgrade
    from rebalance.history.store import HistoryStore
    from seed_history import database_url

    url = database_url(args.db_url)
    if args.upgrade:
        upgrade(url)
    os.environ["REBALANCE_DB_URL"] = url
    engine = engine_for(url)
    store = HistoryStore(engine)
    with engine.connect() as conn:
        counts = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM rebalance_runs), "
                "(SELECT count(*) FROM rebalance_orders), "
                "(SELECT count(DISTINCT portfolio_id) FROM rebalance_runs)"
            )
        ).one()
        ids = sorted(
            str(p)
            for p in conn.execute(
                text("SELECT DISTINCT portfolio_id FROM rebalance_runs")
            ).scalars()
        )
    runs, orders, portfolios = counts
    if not runs:
        print("history_queries: no runs: seed first (benchmarks/seed_history.py)", file=sys.stderr)
        return 2
    middle = ids[len(ids) // 2]
    sample = store.runs(middle, limit=1)[0]
    run_id = sample.id
    files = len(ids) if args.portfolio_files is None else args.portfolio_files
    folder = Path(tempfile.mkdtemp(prefix="history-queries-"))
    if files:
        portfolio_files(folder / "portfolios", ids[:files])
        os.environ["REBALANCE_PORTFOLIOS_DIR"] = str(folder / "portfolios")
    print(
        f"{runs:,} runs, {orders:,} orders, {portfolios:,} portfolios; revision "
        f"{current_revision(url)}; {files or 'the project'} portfolio files; "
        f"portfolio {middle}, run {run_id}"
    )

    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from rebalance.cli import app as cli
    from rebalance.cli import history as _registers_the_history_command  # noqa: F401
    from rebalance.ui.app import Viewer, create_app, viewer

    page = create_app()
    page.dependency_overrides[viewer] = lambda: Viewer(name="bench", can_read=lambda d: set(d))
    client = TestClient(page)
    runner = CliRunner()

    def ok(response: Any) -> None:
        assert response.status_code == 200, (response.status_code, response.text[:300])

    def cli_ok(*argv: str) -> None:
        result = runner.invoke(cli, list(argv))
        assert result.exit_code == 0, result.output[-500:]

    log = StatementLog()
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("rebalance history", lambda: cli_ok("history")),
        ("rebalance history --portfolio", lambda: cli_ok("history", "--portfolio", middle)),
        ("rebalance history show RUN", lambda: cli_ok("history", "show", str(run_id))),
        ("page: list  GET /", lambda: ok(client.get("/"))),
        ("page: portfolio  GET /?portfolio=", lambda: ok(client.get(f"/?portfolio={middle}"))),
        ("page: run  GET /runs/ID", lambda: ok(client.get(f"/runs/{run_id}"))),
        ("lane: store.runs(portfolio, 50)", lambda: store.runs(middle, limit=50)),
        (
            "lane: store.stale_placing_runs",
            lambda: store.stale_placing_runs(sample.account, sample.broker, sample.created_at),
        ),
    ]
    try:
        results = [timed(name, call, log, args.repeat) for name, call in calls]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{'call':36} {'median ms':>10} {'max ms':>8} {'SQL':>6} {'SQL ms':>8}  goal")
    for r in results:
        verdict = "ok" if r["median_ms"] < GOAL_MS else "OVER"
        print(
            f"{r['name']:36} {r['median_ms']:>10.1f} {r['max_ms']:>8.1f} {r['statements']:>6} "
            f"{r['sql_ms']:>8.1f}  {verdict}"
        )
        if args.explain and r["slowest"] is not None:
            statement, params, took = r["slowest"]
            print(f"    slowest statement ({took * 1000:.1f} ms): {' '.join(statement.split())}")
            print(explain(engine, statement, params))
    worst = max(results, key=lambda r: r["median_ms"])
    print(f"SLOWEST: {worst['name']} {worst['median_ms']:.0f} ms (goal < {GOAL_MS:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
