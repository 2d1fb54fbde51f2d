"""What Airflow itself charges for a portfolio's DAG shape: the floor under ``dag_parse.py``.

Builds ``--count`` DAGs in one process, each the bare shape of a one-account portfolio (a DAG, one
TaskGroup, six chained ``EmptyOperator`` tasks; no Params, docs, callbacks or timetable of ours),
and prints the CPU time per DAG and the Python memory still held per DAG (tracemalloc, traced in a
second pass so the timing is not slowed by it). Whatever a portfolio costs above this is ours:

    .venv/bin/python benchmarks/dag_floor.py [--count 500]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import resource
import time
import tracemalloc
from typing import Any

import pendulum

from rebalance.task_ids import TASK_ORDER as TASKS  # a plain tuple: nothing else of ours loads


def build(count: int, offset: int) -> list[Any]:
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG, TaskGroup

    dags = []
    for i in range(offset, offset + count):
        with (
            DAG(
                dag_id=f"floor_{i}",
                schedule=None,
                start_date=pendulum.datetime(2026, 1, 1),
                catchup=False,
            ) as dag,
            TaskGroup(group_id="paper"),
        ):
            tasks = [EmptyOperator(task_id=task_id) for task_id in TASKS]
            for upstream, downstream in itertools.pairwise(tasks):
                upstream >> downstream
        dags.append(dag)
    return dags


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    args = parser.parse_args()

    kept = build(20, 0)  # imports and first-use caches, outside both measures
    started, wall = cpu(), time.perf_counter()
    kept += build(args.count, 20)
    per_cpu = (cpu() - started) / args.count * 1000
    per_wall = (time.perf_counter() - wall) / args.count * 1000

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    kept += build(args.count, 20 + args.count)
    gc.collect()
    after = tracemalloc.take_snapshot()
    held = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    print(
        f"a DAG of one TaskGroup of six chained EmptyOperators ({args.count} DAGs): "
        f"{per_cpu:.2f} ms CPU, {per_wall:.2f} ms wall, "
        f"{held / args.count / 1024:.1f} KiB held per DAG"
    )


if __name__ == "__main__":
    main()
