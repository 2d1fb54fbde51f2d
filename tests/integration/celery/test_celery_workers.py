"""The distributed path without Docker: Redis, Airflow's components and two Celery workers.

Debian's ``redis-server`` on a free port is Celery's broker; the scheduler, API server and
dag-processor run with the CeleryExecutor and Airflow's metadata on the session's PostgreSQL. Worker
``reads`` serves the default queue, worker ``orders`` only the ``orders`` queue, and the DAGs are
parsed with ``REBALANCE_ORDERS_QUEUE=orders``. A two-lane paper portfolio (auto approval) runs
once; the task instances (REST API: ``hostname``, ``queue``) show where each step ran. The
``hostname`` is the worker's own name (``rebalance.testing.live_airflow.worker_hostname``), as two
machines would report theirs.

The workers run with ``rebalance.preload_config.CELERY_PRELOAD_ENV`` as docker-compose.yaml's
workers do: each worker imports pandas, Pandera, Great Expectations and the task bodies once,
before it forks its pool, so every ``validate_snapshot`` logs under a second of CPU for its checks
(``dag_factory.VALIDATION_CPU_LOG``); a task process that imports them itself spends several.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rebalance.preload_config import CELERY_PRELOAD_ENV
from rebalance.testing.live_airflow import AirflowCluster, start_redis, stop_group

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
DAG_ID = "rebalance_celery_two"
CHECKS_CPU = re.compile(r"validation CPU: checks ([0-9.]+) s, task process ([0-9.]+) s")
# Issue 19's goal for a lane's Pandera + Great Expectations checks, per task process.
GOAL_CHECKS_CPU_S = 1.0


def two_lane_portfolio(folder: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copytree(ROOT / "portfolios" / "data", folder / "data")
    text = (ROOT / "portfolios" / "demo.yaml").read_text()
    one = (
        "  - name: paper\n    broker: paper\n    holdings_file: data/demo_holdings.csv\n"
        "    cash_inr: 50000\n"
    )
    assert one in text
    two = one.replace("name: paper", "name: paper_a") + one.replace("name: paper", "name: paper_b")
    (folder / "celery_two.yaml").write_text(text.replace(one, two))
    return folder


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    if shutil.which("redis-server") is None:
        reason = "redis-server is not installed (apt-get install -y redis-server; .ci/run does)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip(reason)
    process, url = start_redis(tmp_path / "redis")
    try:
        yield url
    finally:
        stop_group(process, grace=5)


@pytest.fixture
def databases(pg_server_url: str) -> Iterator[tuple[str, str]]:
    """An empty metadata database for Airflow and a migrated history database."""
    from sqlalchemy import create_engine, text

    from rebalance.history.migrate import upgrade

    names = [f"celery_meta_{uuid.uuid4().hex[:8]}", f"celery_hist_{uuid.uuid4().hex[:8]}"]
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f"CREATE DATABASE {name}"))
    urls = [pg_server_url.replace("/postgres?", f"/{name}?") for name in names]
    upgrade(urls[1])
    yield urls[0], urls[1]
    from rebalance.history.database import engine_for

    engine_for(urls[1]).dispose()
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def test_reads_on_either_worker_and_every_placement_on_the_orders_worker(
    tmp_path: Path, redis_url: str, databases: tuple[str, str]
) -> None:
    metadata_url, history_url = databases
    cluster = AirflowCluster(
        home=tmp_path / "airflow",
        metadata_url=metadata_url,
        history_url=history_url,
        portfolios=two_lane_portfolio(tmp_path / "portfolios"),
        executor="CeleryExecutor",
        redis_url=redis_url,
        extra_env={
            "REBALANCE_ORDERS_QUEUE": "orders",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",  # the task's "validation CPU" line
            **CELERY_PRELOAD_ENV,
        },
    )
    with cluster:
        cluster.start(workers={"reads": "default", "orders": "orders"}, expect_dags=[DAG_ID])
        run_id = cluster.trigger(DAG_ID)
        state = cluster.wait_finished(DAG_ID, run_id, timeout=150)
        tis = cluster.task_instances(DAG_ID, run_id)

    where = {t["task_id"]: (t["state"], t["queue"], t["hostname"]) for t in tis}
    for task_id, (ti_state, queue, host) in sorted(where.items()):
        print(f"{task_id:28} {ti_state:8} queue={queue:8} hostname={host}")  # shown with -s
    assert state == "success", where
    lanes = ("paper_a", "paper_b")
    placing = [where[f"{lane}.place_orders"] for lane in lanes]
    assert placing == [("success", "orders", "orders")] * 2, where
    others = {
        k: v
        for k, v in where.items()
        if k.startswith(tuple(f"{lane}." for lane in lanes)) and not k.endswith(".place_orders")
    }
    assert len(others) == 10, where  # five other steps per lane
    # The two-account portfolio's combined group (docs/accounts.md: separate by default, so its
    # plan and approval are skipped) never runs on the orders worker either.
    combined = {k: v for k, v in where.items() if k.startswith("combined.")}
    assert combined, where
    assert {v[2] for v in combined.values()} <= {"reads", ""}, where
    assert {v[0] for v in others.values()} == {"success"}, where
    assert {v[1] for v in others.values()} == {"default"}, where
    # the orders worker serves nothing but its queue
    assert {v[2] for v in others.values()} == {"reads"}, where

    # CPU, not wall time: the machine's load does not move it.
    for lane in lanes:
        checks, process = validation_cpu(cluster.home / "logs", run_id, f"{lane}.validate_snapshot")
        print(f"{lane}.validate_snapshot CPU: checks {checks:.2f} s, task process {process:.2f} s")
        assert checks <= GOAL_CHECKS_CPU_S, (lane, checks, process)

    from rebalance.history.database import engine_for
    from rebalance.history.store import HistoryStore, RunKey

    store = HistoryStore(engine_for(history_url))
    for lane in lanes:
        found = store.find_run(RunKey(DAG_ID, run_id, lane))
        assert found is not None, lane
        assert store.run(found).status == "completed", lane
        orders = store.orders(found)
        assert orders, lane
        assert {o.state for o in orders} == {"complete"}, lane


def validation_cpu(logs: Path, run_id: str, task_id: str) -> tuple[float, float]:
    """(checks CPU s, task process CPU s) that the task's log reports."""
    folder = logs / f"dag_id={DAG_ID}" / f"run_id={run_id}"
    for log in folder.glob(f"task_id={task_id}*/**/*.log"):
        if found := CHECKS_CPU.search(log.read_text(errors="replace")):
            return float(found[1]), float(found[2])
    raise AssertionError(f"no 'validation CPU' line in the logs of {task_id} under {folder}")
