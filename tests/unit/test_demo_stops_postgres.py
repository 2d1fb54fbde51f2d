"""``make demo`` leaves no PostgreSQL behind (issue 11, point 8).

Real parts: the embedded PostgreSQL (pgserver) in a private data folder, started and stopped by
real subprocesses; the last test runs the whole ``rebalance demo`` (slow).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from rebalance.cli.demo import embedded_server_pid, stop_embedded_server

PROJECT_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)

# A command that starts the embedded server inside the demo's guard, then fails / waits.
SCRIPT = """
import sys, time
from rebalance.cli.demo import embedded_server_stopped_on_exit
from rebalance.history.database import history_url
with embedded_server_stopped_on_exit():
    history_url()
    print("ready", flush=True)
    if sys.argv[1] == "fail":
        raise RuntimeError("the demo failed half way")
    time.sleep(120)
"""


@pytest.fixture
def pgdata() -> Iterator[Path]:
    """A private data folder outside pytest's tmp_path: the server runs as the ``pgserver`` user
    when tests run as root, and concurrent pytest sessions reset /tmp/pytest-of-<user> to 0700."""
    folder = Path(tempfile.mkdtemp(prefix="rebalance-demo-test-"))
    yield folder / "pgdata"
    stop_embedded_server(folder / "pgdata")
    shutil.rmtree(folder, ignore_errors=True)


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    """Running processes whose command line names ``pgdata`` (the postmaster names it)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        alive = process.info["status"] != psutil.STATUS_ZOMBIE
        if alive and str(pgdata) in cmdline and "postgres" in cmdline and "python" not in cmdline:
            found.append(process)
    return found


def environment(pgdata: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "REBALANCE_DB_URL"}
    env["REBALANCE_PGDATA"] = str(pgdata)
    return env


def start_guarded(pgdata: Path, mode: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, mode],
        env=environment(pgdata),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        process.kill()
        _, stderr = process.communicate()
        pytest.fail(f"the guarded command did not start: {stderr[-3000:]}")
    assert embedded_server_pid(pgdata) is not None, "the embedded server should be running"
    return process


def test_server_is_stopped_when_the_command_fails(pgdata: Path) -> None:
    process = start_guarded(pgdata, "fail")
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "the demo failed half way" in stderr
    assert "stopped the embedded PostgreSQL" in stderr
    assert embedded_server_pid(pgdata) is None
    assert postgres_processes(pgdata) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_server_is_stopped_on_ctrl_c_and_sigterm(pgdata: Path, signum: int) -> None:
    process = start_guarded(pgdata, "wait")
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "stopped the embedded PostgreSQL" in stderr
    assert embedded_server_pid(pgdata) is None
    assert postgres_processes(pgdata) == []


def test_a_server_running_before_is_left_running(pgdata: Path) -> None:
    first = start_guarded(pgdata, "wait")  # a server that outlives this one
    try:
        pid = embedded_server_pid(pgdata)
        second = start_guarded(pgdata, "fail")
        second.communicate(timeout=120)
        assert embedded_server_pid(pgdata) == pid
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert embedded_server_pid(pgdata) is None


def test_stop_is_a_no_op_without_a_server(tmp_path: Path) -> None:
    assert stop_embedded_server(tmp_path) is True


@pytest.mark.slow
def test_make_demo_leaves_no_postgres_behind(tmp_path: Path, pgdata: Path) -> None:
    """The whole ``rebalance demo`` (what ``make demo`` runs) in private folders."""
    env = environment(pgdata)
    env.update(
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        REBALANCE_STATE_DIR=str(tmp_path / "state"),
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
    )
    started = time.monotonic()
    result = subprocess.run(
        [str(Path(sys.executable).with_name("rebalance")), "demo"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert ": success" in result.stdout
    assert "stopped the embedded PostgreSQL" in result.stderr
    assert embedded_server_pid(pgdata) is None
    assert postgres_processes(pgdata) == [], f"after {time.monotonic() - started:.0f} s"
