"""Preview re-plan speed through the app (FastAPI TestClient), 50 symbols: goal p95 <= 300 ms.

Run by hand (not a test):  .venv/bin/python benchmarks/preview_speed.py [--symbols 50] [--repeat 40]

A temporary portfolios folder holds one portfolio of N symbols with a paper account. The first
``GET /preview/bench`` reads the holdings (and keeps the snapshot); each timed request then changes
one parameter (budget, bands, max trades, buys only), as a person does in the form, so it re-plans
from the kept snapshot. The viewer and the trigger permission are fixed (as in the unit tests):
what is timed is the page's own work, not Airflow's login.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path


def write_portfolio(folder: Path, symbols: int) -> None:
    rng = random.Random(7)
    names = [f"SYM{i:03d}" for i in range(symbols)]
    weights = [100 / symbols] * symbols
    targets = "\n".join(f"  {n}: {w:.6f}" for n, w in zip(names, weights, strict=True))
    (folder / "data").mkdir()
    rows = ["symbol,exchange,quantity,last_price"]
    for n in names:
        price = rng.uniform(100, 4000)
        rows.append(f"{n},NSE,{rng.randint(1, 60)},{price:.2f}")
    (folder / "data" / "bench.csv").write_text("\n".join(rows) + "\n")
    (folder / "bench.yaml").write_text(
        f"name: Bench\nexchange: NSE\ntargets:\n{targets}\n"
        "schedule:\n  frequency: monthly\n  day_rule: last_trading_day\n  time: '15:10'\n"
        "policy:\n  rebalance_budget_pct: 10\n  max_trades: 50\n"
        "accounts:\n  - name: paper\n    broker: paper\n    holdings_file: data/bench.csv\n"
        "    cash_inr: 50000\nexecution:\n  mode: paper\n  approval: auto\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_portfolio(folder, args.symbols)
        os.environ["REBALANCE_PORTFOLIOS_DIR"] = str(folder)
        os.environ["REBALANCE_STATE_DIR"] = str(folder / "state")
        from fastapi.testclient import TestClient

        from rebalance.ui.app import Viewer, create_app, viewer

        app = create_app()
        app.dependency_overrides[viewer] = lambda: Viewer("bench", lambda ids: set(ids))
        app.state.can_trigger = lambda dag_id: True
        with TestClient(app) as client:
            first = time.perf_counter()
            assert client.get("/preview/bench").status_code == 200
            read_ms = 1000 * (time.perf_counter() - first)
            variants = [
                {"budget": str(b), "max_trades": str(t), "drift_band_abs_pct": str(d)}
                | ({"trade_filter": "buys_only"} if b % 2 else {})
                for b in range(1, 21)
                for t, d in ((10, 2), (50, 0.5))
            ]
            times = []
            for i in range(args.repeat):
                start = time.perf_counter()
                page = client.get("/preview/bench", params=variants[i % len(variants)])
                times.append(1000 * (time.perf_counter() - start))
                assert page.status_code == 200, page.text
                assert "id='problem'" not in page.text, page.text
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * len(times)) - 1)]
    print(f"{args.symbols} symbols: first preview (read + plan) {read_ms:.0f} ms")
    print(
        f"re-plan from the kept snapshot, {len(times)} requests: median "
        f"{statistics.median(times):.0f} ms, p95 {p95:.0f} ms, max {times[-1]:.0f} ms "
        f"(goal p95 <= 300 ms); load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
