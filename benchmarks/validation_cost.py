"""Validation cost: CPU seconds of ``validate_snapshot`` per task process, as Airflow runs it.

Starts Airflow's components as a deployment runs them (``airflow api-server``, ``scheduler``,
``dag-processor``; LocalExecutor; ``rebalance.testing.live_airflow``) with ``--portfolios`` copies
of the demo portfolio (paper broker, automatic approval) and triggers them ``--waves`` times, one
wave after the other, so that later waves run on workers that already ran tasks (steady state).
Each ``validate_snapshot`` task logs the CPU of its Pandera + Great Expectations checks (imports
included) and of its whole task process so far (``dag_factory.VALIDATION_CPU_LOG``); this script
reads those lines from the task logs and prints them against the goal of issue 19: at most 1 s of
CPU for a lane's checks at steady state.

``--preload on`` runs the scheduler as docs/deploy.md configures it (a fork server that imports
``rebalance.worker_preload``, so the executor's workers and their task processes inherit pandas,
Pandera and GX); ``off`` is Airflow's default (every task process imports them itself); ``both``
(the default) measures off, then on, back to back. Run it by hand; it takes a few minutes:

    .venv/bin/python benchmarks/validation_cost.py [--portfolios 4] [--waves 3] [--preload both]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet_throughput import databases, portfolio_folder, wait_all
from rebalance.preload_config import SCHEDULER_PRELOAD_ENV

GOAL_CPU_S = 1.0
LINE = re.compile(r"validation CPU: checks ([0-9.]+) s, task process ([0-9.]+) s")


def measure(
    preload: bool, portfolios: int, waves: int, timeout: float
) -> list[tuple[float, float]]:
    """(checks CPU s, task process CPU s) of every validate_snapshot, in the order they started."""
    from rebalance.testing.live_airflow import AirflowCluster

    root = Path(tempfile.mkdtemp(prefix="validation-cost-"))
    server, metadata_url, history_url = databases(root)
    dag_ids = portfolio_folder(root / "portfolios", portfolios, 1)
    cluster = AirflowCluster(
        home=root / "airflow",
        metadata_url=metadata_url,
        history_url=history_url,
        portfolios=root / "portfolios",
        extra_env={
            **(SCHEDULER_PRELOAD_ENV if preload else {}),
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",  # the task's "validation CPU" line
        },
    )
    samples: list[tuple[str, float, float]] = []
    try:
        with cluster:
            cluster.start(expect_dags=dag_ids, timeout=600)
            for wave in range(waves):
                runs = {dag_id: cluster.trigger(dag_id) for dag_id in dag_ids}
                states = wait_all(cluster, runs, time.monotonic() + timeout)
                if len(states) < len(runs) or set(states.values()) != {"success"}:
                    raise RuntimeError(f"wave {wave}: runs {states}; see {cluster.logs}")
                for dag_id, run_id in runs.items():
                    samples.append(task_sample(cluster, dag_id, run_id))
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)
    return [(checks, process) for _, checks, process in sorted(samples)]


def task_sample(cluster: Any, dag_id: str, run_id: str) -> tuple[str, float, float]:
    """(start date, checks CPU, process CPU) of the run's validate_snapshot, from its log."""
    (ti,) = [
        t
        for t in cluster.task_instances(dag_id, run_id)
        if t["task_id"].endswith(".validate_snapshot")
    ]
    logs = cluster.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
    for log in logs.glob(f"task_id={ti['task_id']}*/**/*.log"):
        if found := LINE.search(log.read_text(errors="replace")):
            return str(ti["start_date"]), float(found[1]), float(found[2])
    raise RuntimeError(f"no 'validation CPU' line in the logs of {dag_id} {run_id} ({logs})")


def report(label: str, samples: list[tuple[float, float]], skip: int) -> float:
    """Print the samples; returns the steady-state median of the checks' CPU."""
    steady = samples[skip:] or samples
    checks = statistics.median(c for c, _ in steady)
    process = statistics.median(p for _, p in steady)
    print(f"{label}: {len(samples)} validate_snapshot tasks")
    print("  checks CPU s:       " + " ".join(f"{c:.2f}" for c, _ in samples))
    print("  task process CPU s: " + " ".join(f"{p:.2f}" for _, p in samples))
    print(
        f"  steady state (all but the first {skip}): median checks {checks:.2f} s, task "
        f"process {process:.2f} s; goal <= {GOAL_CPU_S:.1f} s for the checks: "
        f"{'met' if checks <= GOAL_CPU_S else 'NOT met'}"
    )
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--portfolios", type=int, default=4)
    parser.add_argument("--waves", type=int, default=3)
    parser.add_argument("--preload", choices=("on", "off", "both"), default="both")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for a wave")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    print(
        f"LocalExecutor, [core] parallelism 2, {os.cpu_count()} CPU, load {os.getloadavg()[0]:.1f}"
    )
    for preload in {"on": [True], "off": [False], "both": [False, True]}[args.preload]:
        samples = measure(preload, args.portfolios, args.waves, args.timeout)
        label = "preload on (forkserver)" if preload else "preload off (Airflow's default)"
        report(label, samples, skip=2)


if __name__ == "__main__":
    main()
