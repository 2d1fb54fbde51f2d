"""DAG parse cost: our DAG folder with N portfolio files against a trivial DAG file.

Each sample parses the folder in a fresh process, the way Airflow's DAG processor does (a DagBag
of the folder), and reports wall time. Goal (issue 7): ours <= 2x the trivial DAG.

    .venv/bin/python benchmarks/dag_parse.py [--portfolios 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

TRIVIAL_DAG = """
import pendulum
from airflow.sdk import DAG, task

with DAG("trivial", schedule="@daily", start_date=pendulum.datetime(2026, 1, 1), catchup=False):
    @task
    def noop() -> None:
        pass

    noop()
"""

PARSE = """
import sys, time
started = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(sys.argv[1])
assert not bag.import_errors, bag.import_errors
print(len(bag.dags), time.perf_counter() - started)
"""


def portfolio_folder(target: Path, count: int) -> None:
    """``count`` copies of the demo portfolio (with its data), each a DAG of its own."""
    source = ROOT / "portfolios"
    shutil.copytree(source / "data", target / "data")
    demo = yaml.safe_load((source / "demo.yaml").read_text())
    for i in range(count):
        (target / f"bench_{i:03d}.yaml").write_text(yaml.safe_dump({**demo, "name": f"Bench {i}"}))


def sample(dag_folder: Path, env: dict[str, str]) -> tuple[int, float]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", PARSE, str(dag_folder)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    dags = int(result.stdout.split()[-2])
    return dags, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--portfolios", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        trivial = work / "trivial_dags"
        trivial.mkdir()
        (trivial / "trivial.py").write_text(TRIVIAL_DAG)
        portfolios = work / "portfolios"
        portfolios.mkdir()
        portfolio_folder(portfolios, args.portfolios)
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(work / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
            "REBALANCE_PORTFOLIOS_DIR": str(portfolios),
        }
        results: dict[str, list[float]] = {"trivial": [], "rebalance": []}
        counts: dict[str, int] = {}
        for _ in range(args.repeat):
            for name, folder in (("trivial", trivial), ("rebalance", ROOT / "dags")):
                counts[name], wall = sample(folder, env)
                results[name].append(wall)

    print(f"fresh-process parse of the DAG folder, {args.repeat} samples each (wall seconds)")
    for name, walls in results.items():
        print(
            f"  {name:<10} {counts[name]:>4} DAGs  median {statistics.median(walls):6.2f}  "
            f"min {min(walls):6.2f}  max {max(walls):6.2f}"
        )
    ratio = statistics.median(results["rebalance"]) / statistics.median(results["trivial"])
    print(f"  ratio (median rebalance / median trivial): {ratio:.2f}  (goal <= 2.00)")


if __name__ == "__main__":
    main()
