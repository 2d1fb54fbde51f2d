"""A live Airflow of separate components on free ports, for the fleet benchmark, the Celery test
and the browser tests (``tests/browser/conftest.py``).

``AirflowCluster`` starts what a deployment runs, each as its own process (``airflow api-server``,
``scheduler``, ``dag-processor``, optionally ``triggerer`` and ``celery worker``s), in a temporary
AIRFLOW_HOME with Airflow's metadata in PostgreSQL (the CeleryExecutor refuses SQLite, and a
fleet's scheduler should not measure SQLite's locking either). Every port is a free one: the
API server's and each component's log servers (``[logging] worker_log_server_port``, 8793 by
default, and the triggerer's).

Celery workers on one machine share its host name, so each worker process gets its own name in
``REBALANCE_WORKER_NAME`` and Airflow's ``[core] hostname_callable`` reads it (``worker_hostname``):
the task instance's ``hostname`` then says which worker ran it, as distinct machines would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

PROJECT_ROOT = Path(__file__).resolve().parents[3]
USER, PASSWORD = "admin", "fleet-test-pw"
SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)
WORKER_NAME_ENV = "REBALANCE_WORKER_NAME"


def worker_hostname() -> str:
    """Airflow's ``hostname_callable``: this worker's given name, else the machine's."""
    return os.environ.get(WORKER_NAME_ENV) or socket.getfqdn()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def psycopg2_url(url: str) -> str:
    """The same database through psycopg2 (the driver Airflow's metadata database and Celery's
    result backend are tested with)."""
    return url.replace("postgresql+psycopg://", "postgresql+psycopg2://", 1)


def stop_group(process: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    """SIGTERM the process's group, then SIGKILL what is left after ``grace`` seconds."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        process.poll()
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.3)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


@dataclass
class AirflowCluster:
    """Airflow's components as processes. Use as a context manager; ``start()`` returns when the
    API answers, every component is healthy and ``expect_dags`` are parsed."""

    home: Path
    metadata_url: str  # a SQLAlchemy URL of an empty PostgreSQL database
    history_url: str
    portfolios: Path
    executor: str = "LocalExecutor"
    redis_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    # the simple auth manager's users: name -> (role, password); the first one is the API's user
    users: dict[str, tuple[str, str]] = field(default_factory=lambda: {USER: ("admin", PASSWORD)})
    port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _token: tuple[str, float] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def logs(self) -> Path:
        return self.home / "component-logs"

    def env(self) -> dict[str, str]:
        metadata = psycopg2_url(self.metadata_url)
        passwords = self.home / "passwords.json"
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTOR": self.executor,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname",
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
                f"{name}:{role}" for name, (role, _) in self.users.items()
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API_AUTH__JWT_SECRET": "fleet-test-jwt-secret-not-for-production",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            "REBALANCE_PORTFOLIOS_DIR": str(self.portfolios),
            "REBALANCE_STATE_DIR": str(self.home / "state"),
            "REBALANCE_DB_URL": self.history_url,
            "REBALANCE_DEADLINE_ALERTS": "off",
            "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        }
        if self.redis_url:
            env["AIRFLOW__CELERY__BROKER_URL"] = self.redis_url
            env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + metadata
        env.pop(WORKER_NAME_ENV, None)
        env.update(self.extra_env)
        return env

    def _airflow(self, *args: str) -> list[str]:
        return [str(Path(sys.executable).with_name("airflow")), *args]

    def spawn(self, name: str, args: Iterable[str], **env: str) -> None:
        """Start one component; its log servers (task and trigger logs) get free ports."""
        self.logs.mkdir(parents=True, exist_ok=True)
        ports = {
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        }
        with (self.logs / f"{name}.log").open("wb") as out:
            self.processes[name] = subprocess.Popen(
                self._airflow(*args),
                env={**self.env(), **ports, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start(
        self,
        *,
        triggerer: bool = False,
        workers: dict[str, str] | None = None,
        expect_dags: Iterable[str] = (),
        timeout: float = 180.0,
    ) -> AirflowCluster:
        """Migrate, then start the components. ``workers``: Celery worker name -> its queues."""
        self.home.mkdir(parents=True, exist_ok=True)
        passwords = {name: password for name, (_, password) in self.users.items()}
        (self.home / "passwords.json").write_text(json.dumps(passwords))
        subprocess.run(
            self._airflow("db", "migrate"),
            env=self.env(),
            check=True,
            capture_output=True,
            timeout=300,
        )
        self.spawn("api-server", ["api-server", "--port", str(self.port)])
        self.spawn("scheduler", ["scheduler"])
        self.spawn("dag-processor", ["dag-processor"])
        if triggerer:
            self.spawn("triggerer", ["triggerer"])
        for name, queues in (workers or {}).items():
            self.spawn(
                f"worker-{name}",
                [
                    "celery",
                    "worker",
                    "--queues",
                    queues,
                    "--concurrency",
                    "2",
                    "--celery-hostname",
                    f"{name}@%h",
                    "--without-mingle",
                    "--without-gossip",
                ],
                **{WORKER_NAME_ENV: name},
            )
        self.wait_ready(set(expect_dags), timeout)
        return self

    def wait_ready(self, dags: set[str], timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        problem = "not started"
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited {process.returncode}; see {self.logs}")
            try:
                health = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=3).json()
                unhealthy = [
                    k
                    for k in ("metadatabase", "scheduler", "dag_processor")
                    if health.get(k, {}).get("status") != "healthy"
                ]
                missing = {d for d in dags if self.request("GET", f"/api/v2/dags/{d}").is_error}
                if not unhealthy and not missing:
                    return
                problem = f"unhealthy {unhealthy}, DAGs not parsed yet: {sorted(missing)[:5]}"
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                problem = repr(exc)
            time.sleep(1)
        raise RuntimeError(f"Airflow not ready after {timeout:.0f}s ({problem}); see {self.logs}")

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            stop_group(process)
        self.processes.clear()

    def __enter__(self) -> AirflowCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the REST API -----------------------------------------------------------------------

    def token(self) -> str:
        import httpx

        if self._token is None or self._token[1] < time.monotonic():
            user, (_, password) = next(iter(self.users.items()))
            response = httpx.post(
                f"{self.url}/auth/token", json={"username": user, "password": password}, timeout=10
            )
            response.raise_for_status()
            self._token = (str(response.json()["access_token"]), time.monotonic() + 600)
        return self._token[0]

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {self.token()}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        body = {"logical_date": None, "conf": conf or {}}
        return str(self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        run = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")
        return str(run["state"])

    def wait_finished(self, dag_id: str, run_id: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in ("success", "failed"):
                return state
            time.sleep(1)
        raise AssertionError(f"{dag_id} {run_id} not finished after {timeout}s; see {self.logs}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances"
        return list(self.api("GET", path, params={"limit": 100})["task_instances"])


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Debian's ``redis-server`` on a free port, no persistence; returns it and its URL."""
    import shutil

    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not installed (apt-get install -y redis-server)")
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=folder,
        stdout=(folder / "redis.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return process, f"redis://127.0.0.1:{port}/0"
        if process.poll() is not None:
            break
        time.sleep(0.2)
    stop_group(process)
    raise RuntimeError(f"redis-server did not answer on port {port}; see {folder / 'redis.log'}")
