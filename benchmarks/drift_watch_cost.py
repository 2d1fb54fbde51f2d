"""The cost of a day's drift watch for 1, 10 and 100 portfolios (issue 13's cost bullet).

For each size it writes that many copies of the demo portfolio (paper broker, ``trigger: drift``;
every other one with bands wide enough to stay inside, so about half breach) into a temporary
folder, builds the watch DAG from it as the DAG file does, and runs one watch day through
Airflow's ``dag.test()`` with the history in a temporary embedded PostgreSQL (pgserver) and
Airflow's metadata in a temporary sqlite database. It prints, per size:

* the wall time of the watch run (``dag.test``: parsing the folder, the mapped read tasks, the
  decide task; in-process, so without the per-task process start a worker pays);
* the task instances (read batches + decide) and the DAG runs a day creates: the watch's one run
  plus one rebalance run per asset event (what the scheduler creates from them);
* the records written.

A worker starts each task instance in a process of its own and pays its imports again; that
figure is measured apart (docs/drift.md) and multiplies the task instances, not the portfolios.
Run it by hand (a few minutes):

    .venv/bin/python benchmarks/drift_watch_cost.py [--sizes 1 10 100]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WIDE = {"drift_band_abs_pct": 10, "drift_band_rel_pct": 100}


def folder_of(target: Path, count: int) -> None:
    target.mkdir(parents=True)
    shutil.copytree(ROOT / "portfolios" / "data", target / "data")
    demo = yaml.safe_load((ROOT / "portfolios" / "demo.yaml").read_text())
    for i in range(count):
        data = dict(demo, name=f"Watch {i:04d}", trigger="drift")
        data["policy"] = {**demo["policy"], **(WIDE if i % 2 else {})}
        (target / f"watch_{i:04d}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100])
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="drift-watch-bench-"))
    os.environ.update(
        AIRFLOW_HOME=str(root / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="ERROR",
        REBALANCE_DEADLINE_ALERTS="off",
        REBALANCE_STATE_DIR=str(root / "state"),
    )
    import pgserver

    server = pgserver.get_server(root / "pgdata", cleanup_mode="stop")
    try:
        url = f"postgresql+psycopg://postgres:@/postgres?host={root / 'pgdata'}"
        os.environ["REBALANCE_DB_URL"] = url
        airflow = Path(sys.executable).with_name("airflow")
        subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)
        from rebalance.history.migrate import upgrade

        upgrade(url)
        measure(root, 1, report=False)  # warm-up: imports and the first DAG sync, not a size
        print(f"{'portfolios':>10}  {'wall s':>7}  {'task inst.':>10}  {'DAG runs':>8}  records")
        for size in args.sizes:
            measure(root, size)
    finally:
        del server
        shutil.rmtree(root, ignore_errors=True)


def measure(root: Path, size: int, *, report: bool = True) -> None:
    from datetime import time as clock

    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import func, select, text

    from rebalance.drift_dag import build_watch_dags, watch_dag_id
    from rebalance.wiring import open_store

    folder = root / f"portfolios_{size}{'' if report else '_warmup'}"
    folder_of(folder, size)
    os.environ["REBALANCE_PORTFOLIOS_DIR"] = str(folder)
    store = open_store()
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM drift_snapshots"))
    with create_session() as session:
        events_before = session.scalar(select(func.count()).select_from(AssetEvent)) or 0
    dag = build_watch_dags(folder)[watch_dag_id(clock(10, 0))]
    started = time.perf_counter()
    dag_run = dag.test()
    wall = time.perf_counter() - started
    assert str(dag_run.state) == "success", dag_run.state
    with create_session() as session:
        events = (session.scalar(select(func.count()).select_from(AssetEvent)) or 0) - events_before
    tasks = len(dag_run.get_task_instances())
    records = len(store.drift_records())
    if report:
        print(f"{size:>10}  {wall:>7.1f}  {tasks:>10}  {1 + events:>8}  {records}")


if __name__ == "__main__":
    main()
