"""Fleet throughput: completed lanes per hour on this machine with the LocalExecutor (paper broker).

Starts Airflow's components as a deployment runs them (``airflow api-server``, ``scheduler``,
``dag-processor``; LocalExecutor) on free ports in a temporary AIRFLOW_HOME, with Airflow's
metadata and the rebalance history in a temporary embedded PostgreSQL (pgserver), and
``--portfolios`` copies of the demo portfolio (paper broker, automatic approval, ``--lanes`` paper
accounts each) in a temporary folder. Once every DAG is parsed it triggers every portfolio at once
through the REST API, waits for every DAG run to finish and prints:

* completed lanes per hour (lanes whose ``record_run`` succeeded / wall time from the first
  trigger to the last finished run): the figure of issue 19;
* the median and 90th percentile of each step's duration (task instances, REST API);
* the machine's CPU count and load.

Set ``--parallelism`` to try Airflow's ``[core] parallelism`` (task processes at once). The
scheduler preloads the task modules as a deployment's does (``rebalance.preload_config``;
docs/quality.md); ``--no-preload`` measures Airflow's default, where each task process imports them.
Run it by hand (it takes the machine for a few minutes):

    .venv/bin/python benchmarks/fleet_throughput.py [--portfolios 24] [--lanes 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = (
    "  - name: paper\n    broker: paper\n    holdings_file: data/demo_holdings.csv\n"
    "    cash_inr: 50000\n"
)


def portfolio_folder(target: Path, count: int, lanes: int) -> list[str]:
    """``count`` demo portfolios, each with ``lanes`` paper accounts of its own; their DAG ids."""
    target.mkdir(parents=True)
    shutil.copytree(ROOT / "portfolios" / "data", target / "data")
    text = (ROOT / "portfolios" / "demo.yaml").read_text()
    assert ACCOUNT in text, "the demo portfolio's account block changed: update this benchmark"
    dag_ids = []
    for i in range(count):
        accounts = "".join(
            ACCOUNT.replace("name: paper", f"name: p{i:04d}_{k}") for k in range(lanes)
        )
        body = text.replace(ACCOUNT, accounts).replace("Demo Nifty Ten", f"Fleet {i:04d}")
        (target / f"fleet_{i:04d}.yaml").write_text(body)
        dag_ids.append(f"rebalance_fleet_{i:04d}")
    return dag_ids


def databases(root: Path) -> tuple[Any, str, str]:
    """An embedded PostgreSQL under ``root`` with two empty databases, Airflow's metadata and the
    history (migrated): the server (``cleanup()`` it) and the two SQLAlchemy URLs."""
    import pgserver
    from sqlalchemy import create_engine, text

    from rebalance.history.migrate import upgrade

    server = pgserver.get_server(root / "pgdata", cleanup_mode="stop")
    base = f"postgresql+psycopg://postgres:@/postgres?host={root / 'pgdata'}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE airflow_meta"))
        conn.execute(text("CREATE DATABASE history"))
    admin.dispose()
    history_url = base.replace("/postgres?", "/history?")
    upgrade(history_url)
    return server, base.replace("/postgres?", "/airflow_meta?"), history_url


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--portfolios", type=int, default=24)
    parser.add_argument("--lanes", type=int, default=1, help="paper accounts per portfolio")
    parser.add_argument("--parallelism", type=int, default=None, help="[core] parallelism")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the runs")
    parser.add_argument("--no-preload", action="store_true", help="each task imports its modules")
    args = parser.parse_args()

    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    from rebalance.preload_config import SCHEDULER_PRELOAD_ENV
    from rebalance.testing.live_airflow import AirflowCluster

    root = Path(tempfile.mkdtemp(prefix="fleet-throughput-"))
    server, metadata_url, history_url = databases(root)

    dag_ids = portfolio_folder(root / "portfolios", args.portfolios, args.lanes)
    extra = {} if args.no_preload else dict(SCHEDULER_PRELOAD_ENV)
    if args.parallelism is not None:
        extra["AIRFLOW__CORE__PARALLELISM"] = str(args.parallelism)
    cluster = AirflowCluster(
        home=root / "airflow",
        metadata_url=metadata_url,
        history_url=history_url,
        portfolios=root / "portfolios",
        extra_env=extra,
    )
    preload = "off" if args.no_preload else "on"
    print(
        f"{args.portfolios} portfolios x {args.lanes} lanes, LocalExecutor, {os.cpu_count()} CPU, "
        f"preload {preload}"
    )
    try:
        with cluster:
            started = time.monotonic()
            cluster.start(expect_dags=dag_ids, timeout=600)
            print(f"components up, {len(dag_ids)} DAGs parsed in {time.monotonic() - started:.0f}s")
            first = time.monotonic()
            runs = {dag_id: cluster.trigger(dag_id) for dag_id in dag_ids}
            states = wait_all(cluster, runs, first + args.timeout)
            elapsed = time.monotonic() - first
            load = os.getloadavg()
            tis = [ti for d, r in runs.items() for ti in cluster.task_instances(d, r)]
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)
    report(states, tis, elapsed, load)


def wait_all(cluster: Any, runs: dict[str, str], deadline: float) -> dict[str, str]:
    states: dict[str, str] = {}
    while len(states) < len(runs) and time.monotonic() < deadline:
        for dag_id, run_id in runs.items():
            if dag_id not in states:
                state = cluster.run_state(dag_id, run_id)
                if state in ("success", "failed"):
                    states[dag_id] = state
        time.sleep(2)
    return states


def report(states: dict[str, str], tis: list[dict[str, Any]], elapsed: float, load: Any) -> None:
    recorded = [t for t in tis if t["task_id"].endswith(".record_run") and t["state"] == "success"]
    lanes = sum(t["task_id"].endswith(".record_run") for t in tis)
    print(f"DAG runs finished: {len(states)} ({sum(s == 'success' for s in states.values())} ok)")
    print(f"lanes completed: {len(recorded)} of {lanes}")
    print(f"wall time from the first trigger to the last run: {elapsed:.0f} s")
    print(f"load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    steps: dict[str, list[float]] = defaultdict(list)
    for t in tis:
        if t.get("duration") is not None:
            steps[t["task_id"].split(".")[-1]].append(float(t["duration"]))
    print(f"{'step':20} {'n':>4} {'median s':>9} {'p90 s':>7}")
    for step, values in steps.items():
        median = statistics.median(values)
        print(f"{step:20} {len(values):>4} {median:>9.1f} {percentile(values, 0.9):>7.1f}")
    print(f"THROUGHPUT: {len(recorded) / elapsed * 3600:.0f} completed lanes per hour")


if __name__ == "__main__":
    main()
