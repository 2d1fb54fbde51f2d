"""No credential in the logs of a task run at DEBUG (AIRFLOW__LOGGING__LOGGING_LEVEL=DEBUG).

Airflow 3.3's in-process supervisor logs every message a task sends it, and ``mask_secret`` sends
each secret as ``MaskSecret(value=...)``: the plain approach leaks every credential field at
DEBUG (the control), ``rebalance.brokers.connections.connection_credentials`` leaks none while
still registering each one with the secrets masker (the task checks that and fails otherwise).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rebalance.testing.emulators._server import fake_credential, fake_digits, fake_totp_secret

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
RUNNER = Path(__file__).with_name("debug_dag_run.py")


def run_at_debug(mode: str, tmp_path: Path) -> tuple[str, list[str]]:
    # 12 digits: a 6-digit PIN could match a timestamp's microseconds by chance in a DEBUG log.
    secrets = [fake_digits(12), fake_credential("angel-key"), fake_totp_secret()]
    pin, api_key, totp = secrets
    conn = {
        "conn_type": "generic",
        "login": "Z" + fake_digits(7),
        "password": pin,
        "extra": {"api_key": api_key, "totp_secret": totp},
    }
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG",
        "AIRFLOW_CONN_BROKER_UNDER_TEST": json.dumps(conn),
    }
    done = subprocess.run(
        [sys.executable, str(RUNNER), mode, str(tmp_path / "dags")],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    logs = done.stdout + done.stderr
    for folder in (tmp_path / "airflow" / "logs",):  # task log files, if any were written
        if folder.exists():
            logs += "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())
    assert "DAG RUN STATE: success" in done.stdout, logs[-3000:]
    return logs, secrets


def test_connection_credentials_leak_nothing_at_debug(tmp_path: Path) -> None:
    logs, secrets = run_at_debug("new", tmp_path)
    assert "Sending request" in logs  # the run did log at DEBUG
    leaked = [s for s in secrets if s in logs]
    assert leaked == []


def test_control_plain_mask_secret_leaks_at_debug(tmp_path: Path) -> None:
    logs, secrets = run_at_debug("plain", tmp_path)
    assert "MaskSecret(value=" in logs
    assert all(s in logs for s in secrets)  # every field: PIN, API key, TOTP secret
