"""The LocalExecutor's workers inherit pandas, Pandera and GX from the scheduler's fork server.

Airflow resolves the scheduler settings of ``rebalance.preload_config`` (as docker-compose.yaml and
``rebalance airflow`` set them) to a ``forkserver`` start method that imports
``rebalance.worker_preload``; a process started the way the LocalExecutor starts its workers then
has the task modules without importing them, and so has a task process it forks (as Airflow's
supervisor does). The dag-processor's start method stays the default, so parsing never imports
them (tests/dags/test_dagbag.py checks the DAG files themselves).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from rebalance.preload_config import PRELOAD_MODULE, SCHEDULER_PRELOAD_ENV

ROOT = Path(__file__).resolve().parents[3]

# Runs with the scheduler's settings in its environment, as `airflow scheduler` would.
SCHEDULER = """
import json, multiprocessing, os, sys
from airflow.utils.process_utils import set_component_mp_start_method

def worker(queue, PRELOADED):
    # What a LocalExecutor worker has before it runs anything, and a task process it forks.
    have = [m for m in PRELOADED if m in sys.modules]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, json.dumps([m for m in PRELOADED if m in sys.modules]).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    queue.put({"worker": have, "task": json.loads(os.read(read, 65536))})

if __name__ == "__main__":
    PRELOADED = sys.argv[1].split(",")
    before = [m for m in PRELOADED if m in sys.modules]
    set_component_mp_start_method(sys.argv[2])
    method = multiprocessing.get_start_method()
    result = {"method": method, "scheduler_before": before}
    if method == "forkserver":
        queue = multiprocessing.SimpleQueue()
        process = multiprocessing.Process(target=worker, args=(queue, PRELOADED))
        process.start()
        result.update(queue.get())
        process.join()
    result["scheduler_after"] = [m for m in PRELOADED if m in sys.modules]
    print(json.dumps(result))
"""

PRELOADED = (
    "pandas",
    "pandera",
    "great_expectations",
    "great_expectations.render.renderer.site_builder",
    "rebalance.quality",
    "rebalance.tasks",
    "rebalance.planning",
)


def _run(tmp_path: Path, component: str) -> dict[str, object]:
    script = tmp_path / "scheduler.py"
    script.write_text(SCHEDULER)
    env = {**os.environ, **SCHEDULER_PRELOAD_ENV, "AIRFLOW_HOME": str(tmp_path / "airflow")}
    # The worker function must be importable by the fork server's child: run from the file.
    result = subprocess.run(
        [sys.executable, str(script), ",".join(PRELOADED), component],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_the_scheduler_settings_preload_the_task_modules_for_workers_and_tasks(
    tmp_path: Path,
) -> None:
    result = _run(tmp_path, "scheduler")

    assert result["method"] == "forkserver"
    assert result["worker"] == list(PRELOADED), "the worker did not inherit the preload"
    assert result["task"] == list(PRELOADED), "the forked task process did not inherit it"
    # The scheduler process itself stays light: only its fork server imported them.
    assert result["scheduler_before"] == result["scheduler_after"] == []


def test_the_dag_processor_keeps_its_start_method_and_imports_nothing(tmp_path: Path) -> None:
    result = _run(tmp_path, "dag_processor")

    assert result["method"] == "fork"
    assert result["scheduler_after"] == []


def test_the_deployments_set_the_same_settings() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    environment = compose["x-airflow-common"]["environment"]
    for name, value in SCHEDULER_PRELOAD_ENV.items():
        assert environment[name] == value, name
    assert SCHEDULER_PRELOAD_ENV["AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD"] == PRELOAD_MODULE
