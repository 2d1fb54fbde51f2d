"""A Celery worker imports the task modules once, before its pool; task processes inherit them.

``rebalance.preload_config.CELERY_PRELOAD_ENV`` (as docker-compose.yaml's two workers set it) puts
``rebalance.worker_preload`` in Celery's ``imports`` through the provider's ``[celery]
extra_celery_config``. Airflow's own Celery app, built in a fresh process with that environment,
must list the module among what its loader imports, and its worker start-up
(``loader.init_worker``, what ``airflow celery worker`` runs before it starts the prefork pool)
must import pandas, Pandera and GX, so that a pool process forked after it, and a task process
forked from that (as Airflow's supervisor does), have them without importing anything. No Redis:
nothing here talks to the broker (test_celery_workers.py runs the real workers).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from rebalance.preload_config import CELERY_PRELOAD_ENV, PRELOAD_MODULE

ROOT = Path(__file__).resolve().parents[3]
PRELOADED = ("pandas", "pandera", "great_expectations", "rebalance.quality", "rebalance.tasks")

WORKER = """
import json, os, sys
from airflow.providers.celery.executors.celery_executor import app

PRELOADED = sys.argv[1].split(",")
result = {
    "default_modules": list(app.loader.default_modules),
    "before": [m for m in PRELOADED if m in sys.modules],
}
app.loader.init_worker()  # what the worker runs before it starts its pool
read, write = os.pipe()
if os.fork() == 0:  # a pool process ...
    if os.fork() == 0:  # ... and the task process Airflow's supervisor forks from it
        os.write(write, json.dumps([m for m in PRELOADED if m in sys.modules]).encode())
        os._exit(0)
    os.wait()
    os._exit(0)
os.wait()
result["task"] = json.loads(os.read(read, 65536))
print(json.dumps(result))
"""


def test_the_worker_preloads_the_task_modules_for_its_task_processes(tmp_path: Path) -> None:
    env = {**os.environ, **CELERY_PRELOAD_ENV, "AIRFLOW_HOME": str(tmp_path / "airflow")}
    result = subprocess.run(
        [sys.executable, "-c", WORKER, ",".join(PRELOADED)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    found = json.loads(result.stdout.strip().splitlines()[-1])

    assert PRELOAD_MODULE in found["default_modules"]
    assert found["before"] == [], "building the Celery app must not import them"
    assert found["task"] == list(PRELOADED), "the task process did not inherit the preload"


def test_docker_compose_preloads_on_the_workers_only() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())["services"]
    for worker in ("airflow-worker", "airflow-worker-orders"):
        environment = services[worker]["environment"]
        for name, value in CELERY_PRELOAD_ENV.items():
            assert json.loads(environment[name]) == json.loads(value), (worker, name)
    # flower's `celery flower` imports Celery's `imports` too: it must not pay for GX.
    for other in ("flower", "airflow-scheduler", "airflow-dag-processor", "airflow-apiserver"):
        assert set(CELERY_PRELOAD_ENV).isdisjoint(services[other].get("environment") or {})
