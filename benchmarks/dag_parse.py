"""DAG parse cost: our DAG folder with N portfolio files against a trivial DAG file.

Each sample parses a DAG folder in a fresh process, the way Airflow's DAG processor does (a DagBag
of the folder), and reports the process's wall time and peak memory. For each N in ``--sizes``
(default 1, 100, 1,000 and 2,000 portfolio files) it prints the median of ``--repeat`` samples,
the ratio to the median of the trivial DAG file, and the cost of one more portfolio (time and
memory above the one-portfolio folder, per extra file). Then each shard file of the largest folder
alone, as the dag-processor parses it: the slowest one's fresh process (wall, CPU, peak) and the
longest one's own import (what ``dagbag_import_timeout`` bounds). ``dag_floor.py`` gives
Airflow's own cost for the same DAG shape.

Goals: 1,000 files within 2x the trivial DAG file (issue 11); about 3 ms and 20 KiB per portfolio
and 1,000 files within 1.5x (issue 19, the direction). Run it by hand on a quiet machine:

    .venv/bin/python benchmarks/dag_parse.py [--sizes 1 100 1000 2000] [--repeat 5]
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
import resource, sys, time
started = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(sys.argv[1])
assert not bag.import_errors, bag.import_errors
invalid = sum("invalid" in dag.tags for dag in bag.dags.values())
assert not invalid, f"{invalid} portfolio files did not load"
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime
slowest = max(stat.duration.total_seconds() for stat in bag.dagbag_stats)
print(len(bag.dags), usage.ru_maxrss, cpu, time.perf_counter() - started, slowest)
"""


def portfolio_folder(target: Path, count: int) -> None:
    """``count`` variants of the demo portfolio, each with its own paper account (and DAG)."""
    target.mkdir()
    source = ROOT / "portfolios"
    shutil.copytree(source / "data", target / "data")
    demo = yaml.safe_load((source / "demo.yaml").read_text())
    (account,) = demo["accounts"]
    for i in range(count):
        portfolio = {
            **demo,
            "name": f"Bench {i}",
            "policy": {**demo["policy"], "max_trades": 5 + i % 10},
            # Two portfolios may not share an account: each gets its own holdings file.
            "accounts": [{**account, "holdings_file": f"data/bench_{i:04d}.csv"}],
        }
        (target / f"bench_{i:04d}.yaml").write_text(yaml.safe_dump(portfolio))


def sample(dag_folder: Path, env: dict[str, str]) -> tuple[int, int, float, float, float]:
    """(DAGs, peak KiB, CPU seconds, wall seconds, the slowest DAG file's own parse in seconds)
    of one fresh process parsing ``dag_folder``. The last is Airflow's ``FileLoadStat.duration``:
    importing that file, what ``dagbag_import_timeout`` bounds (Airflow's own import, before it,
    is not; the dag-processor's forked parse process has it already)."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", PARSE, str(dag_folder)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    dags, peak_kib, cpu, _, slowest = result.stdout.split()[-5:]
    return int(dags), int(peak_kib), float(cpu), wall, float(slowest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 100, 1000, 2000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        trivial = work / "trivial_dags"
        trivial.mkdir()
        (trivial / "trivial.py").write_text(TRIVIAL_DAG)
        base_env = {
            **os.environ,
            "AIRFLOW_HOME": str(work / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
            "REBALANCE_DEADLINE_ALERTS": "on",
        }
        runs: dict[str, tuple[Path, dict[str, str]]] = {"trivial": (trivial, base_env)}
        for size in args.sizes:
            folder = work / f"portfolios_{size}"
            portfolio_folder(folder, size)
            env = {**base_env, "REBALANCE_PORTFOLIOS_DIR": str(folder)}
            runs[str(size)] = (ROOT / "dags", env)
        walls: dict[str, list[float]] = {name: [] for name in runs}
        peaks: dict[str, list[int]] = {name: [] for name in runs}
        cpus: dict[str, list[float]] = {name: [] for name in runs}
        counts: dict[str, int] = {}
        for _ in range(args.repeat):  # interleaved, so a busy spell hits every size alike
            for name, (folder, env) in runs.items():
                counts[name], peak_kib, cpu_s, wall_s, _ = sample(folder, env)
                walls[name].append(wall_s)
                cpus[name].append(cpu_s)
                peaks[name].append(peak_kib)

        # Each shard file alone, as the dag-processor parses it (one process and timeout each):
        # the median of ``--repeat`` samples of each.
        shard_walls: dict[str, tuple[int, float, float, int, float]] = {}
        folder, env = runs[str(max(args.sizes))]
        for shard_file in sorted(folder.glob("rebalance_portfolios_*.py")):
            samples = [sample(shard_file, env) for _ in range(args.repeat)]
            shard_walls[shard_file.name] = (
                samples[0][0],
                statistics.median(s[3] for s in samples),
                statistics.median(s[2] for s in samples),
                statistics.median(s[1] for s in samples),
                statistics.median(s[4] for s in samples),
            )

    median = {name: statistics.median(values) for name, values in walls.items()}
    peak = {name: statistics.median(values) for name, values in peaks.items()}
    cpu = {name: statistics.median(values) for name, values in cpus.items()}
    print(f"fresh-process DagBag of the DAG folder, median of {args.repeat} samples")
    header = ("folder", "DAGs", "wall s", "min", "max", "ratio", "CPU s", "ratio", "MiB")
    print("  {:<22} {:>5} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}".format(*header))
    for name in runs:
        label = "trivial DAG file" if name == "trivial" else f"{name} portfolio files"
        print(
            f"  {label:<22} {counts[name]:>5} {median[name]:>7.2f} {min(walls[name]):>6.2f} "
            f"{max(walls[name]):>6.2f} {median[name] / median['trivial']:>6.2f} "
            f"{cpu[name]:>6.2f} {cpu[name] / cpu['trivial']:>6.2f} {peak[name] / 1024:>6.0f}"
        )
    sizes = sorted(args.sizes)
    if len(sizes) > 1:
        low, high = str(sizes[0]), str(sizes[-1])
        extra = sizes[-1] - sizes[0]
        per_ms = (median[high] - median[low]) / extra * 1000
        per_cpu_ms = (cpu[high] - cpu[low]) / extra * 1000
        per_kib = (peak[high] - peak[low]) / extra
        print(
            f"  one more portfolio: {per_ms:.1f} ms wall, {per_cpu_ms:.1f} ms CPU, "
            f"{per_kib:.0f} KiB peak memory (goal ~3 ms, ~20 KiB)"
        )
    if shard_walls:
        worst = max(shard_walls, key=lambda k: shard_walls[k][1])
        shard_dags, wall_s, cpu_s, peak_kib, _ = shard_walls[worst]
        print(
            f"  slowest shard file at {sizes[-1]:,} files: {worst} ({shard_dags} DAGs) "
            f"{wall_s:.2f} s wall, {cpu_s:.2f} s CPU, {peak_kib / 1024:.0f} MiB peak in a "
            f"fresh process ({len(shard_walls)} shard files)"
        )
        longest = max(shard_walls, key=lambda k: shard_walls[k][4])
        print(
            f"  longest shard file import at {sizes[-1]:,} files: {longest} "
            f"{shard_walls[longest][4]:.2f} s, against dagbag_import_timeout 30 s"
        )
    if "1000" in median:
        ratio = median["1000"] / median["trivial"]
        cpu_ratio = cpu["1000"] / cpu["trivial"]
        print(
            f"  1,000 files / trivial DAG file: {ratio:.2f} wall, {cpu_ratio:.2f} CPU "
            "(goal <= 2.00; issue 19: <= 1.50)"
        )


if __name__ == "__main__":
    main()
