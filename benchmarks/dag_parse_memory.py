"""What each portfolio's DAG holds after a parse: tracemalloc, per source line, per portfolio.

Parses the DAG folder (a DagBag, as ``dag_parse.py`` does) with ``--low`` and then ``--high``
portfolio files, each in a fresh process under ``tracemalloc``, and prints the memory still held
after the parse per extra portfolio file, by the line that allocated it: what is constant (imports,
caches) cancels out. Traced Python memory, so it reads below ``dag_parse.py``'s peak RSS per
portfolio (allocator overhead, transient garbage). A line whose figure rivals "all" is a one-off
(an import landing inside one run's trace only, seen once at dataclasses.py): run it again. Slow
under tracemalloc (the import timeout is off here):

    .venv/bin/python benchmarks/dag_parse_memory.py [--low 50] [--high 250] [--top 20]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import tracemalloc
from pathlib import Path

from dag_parse import ROOT, portfolio_folder

SITE = sysconfig.get_paths()["purelib"] + "/"


def held(count: int) -> dict[str, int]:
    """Bytes held after a DagBag of the DAG folder with ``count`` files, by allocating line."""
    from airflow.dag_processing.dagbag import DagBag

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        portfolio_folder(work / "portfolios", count)
        os.environ.update(
            AIRFLOW_HOME=str(work / "airflow"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="0",
            AIRFLOW__LOGGING__LOGGING_LEVEL="ERROR",
            REBALANCE_DEADLINE_ALERTS="on",
            REBALANCE_PORTFOLIOS_DIR=str(work / "portfolios"),
        )
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        bag = DagBag(str(ROOT / "dags"))
        assert not bag.import_errors, bag.import_errors
        gc.collect()
        after = tracemalloc.take_snapshot()
    lines = {"total": sum(s.size_diff for s in after.compare_to(before, "filename"))}
    for stat in after.compare_to(before, "lineno"):
        frame = stat.traceback[0]
        lines[f"{frame.filename.replace(SITE, '')}:{frame.lineno}"] = stat.size_diff
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--low", type=int, default=50)
    parser.add_argument("--high", type=int, default=250)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child process's size
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(held(args.one)))
        return
    low, high = (
        json.loads(
            subprocess.run(
                [sys.executable, __file__, "--one", str(n)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.splitlines()[-1]
        )
        for n in (args.low, args.high)
    )
    extra = args.high - args.low
    per = {k: (high.get(k, 0) - low.get(k, 0)) / extra / 1024 for k in {*low, *high}}
    print(f"held after the parse, per portfolio file ({args.low} -> {args.high} files), KiB")
    print(f"  {per.pop('total'):7.2f}  all")
    for line, kib in sorted(per.items(), key=lambda item: -item[1])[: args.top]:
        print(f"  {kib:7.2f}  {line}")


if __name__ == "__main__":
    main()
