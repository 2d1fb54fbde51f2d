"""A live Airflow for the browser tests: ``testing.live_airflow.AirflowCluster`` (the one live
Airflow of the test suite: its components as separate processes, metadata on PostgreSQL, with a
triggerer for the deferred approval), started once per session and shared by every browser test.

Its portfolios folder holds copies of the demo portfolio set to ``approval: manual`` (``demo``
for the browser test, approved by its one approver ``admin``; ``demo_cli`` for the ``rebalance
approve`` test: separate paper accounts, so one test's placed orders do not change the other's
plan; ``demo_guarded``, whose only approver is not ``admin``), with its own history database on
the session's embedded PostgreSQL. Alerts go to a local webhook (``LiveAirflow.webhook``).
The components' logs go to ``artifacts/browser/airflow/component-logs``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rebalance.history.records import RunRecord
from rebalance.testing.live_airflow import AirflowCluster

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT_ROOT / "artifacts" / "browser"
USER, PASSWORD = "admin", "browser-test-pw"
READER, READER_PASSWORD = "reader", "reader-test-pw"  # the simple auth manager's viewer role
START_TIMEOUT = 150.0


def chromium_executable() -> str | None:
    for candidate in (shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium: missing in CI (env CI=true) fails the test, locally it skips."""
    path = chromium_executable()
    problem = None
    if path is None:
        problem = (
            "Debian's chromium is not installed (apt-get install -y chromium): "
            "the browser test needs /usr/bin/chromium"
        )
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is missing: install requirements.txt"
    if problem:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(problem)
        pytest.skip(problem)
    assert path is not None
    return path


@dataclass
class LiveAirflow:
    url: str
    env: dict[str, str]
    history_url: str
    artifacts: Path
    log: Path
    webhook: list[dict[str, Any]]
    user: str = USER
    password: str = PASSWORD
    reader: str = READER  # may read every DAG, trigger none (the viewer role)
    reader_password: str = READER_PASSWORD

    def token(self) -> str:
        import httpx

        response = httpx.post(
            f"{self.url}/auth/token", json={"username": USER, "password": PASSWORD}, timeout=10
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """An API request as the admin user; the response as it is."""
        import httpx

        headers = {"Authorization": f"Bearer {self.token()}"}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=15, **kwargs)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        body = {"logical_date": None, "conf": conf}
        return str(self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)["dag_run_id"])

    def dag_run_state(self, dag_id: str, run_id: str) -> str:
        from urllib.parse import quote

        run = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")
        return str(run["state"])

    def wait_run_finished(self, dag_id: str, run_id: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.dag_run_state(dag_id, run_id)
            if state in ("success", "failed"):
                return state
            time.sleep(1)
        raise AssertionError(f"{dag_id} {run_id} not finished after {timeout}s; see {self.log}")

    def history_run(
        self, dag_id: str, run_id: str, timeout: float = 90, status: str = ""
    ) -> RunRecord:
        """The history record of the run's ``paper`` lane, once it exists (and has ``status``)."""
        from rebalance.history.store import RunKey
        from rebalance.wiring import open_store

        store = open_store(self.history_url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = store.find_run(RunKey(dag_id, run_id, "paper"))
            if found is not None:
                record = store.run(found)
                if not status or record.status == status:
                    return record
            time.sleep(1)
        raise AssertionError(f"no history run {dag_id} {run_id} {status}; see {self.log}")


def _portfolios(folder: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copytree(PROJECT_ROOT / "portfolios" / "data", folder / "data")
    text = (PROJECT_ROOT / "portfolios" / "demo.yaml").read_text()
    assert "approval: auto" in text
    manual = text.replace("approval: auto", "approval: manual")
    (folder / "demo.yaml").write_text(manual.replace("approval: manual", APPROVERS % USER))
    (folder / "demo_cli.yaml").write_text(manual.replace("name: Demo Nifty Ten", "name: Demo CLI"))
    guarded = manual.replace("name: Demo Nifty Ten", "name: Demo Guarded")
    guarded = guarded.replace("approval: manual", APPROVERS % "asha")
    (folder / "demo_guarded.yaml").write_text(guarded)
    # the page's Preview / Run now test: its own paper account (state is per portfolio id)
    preview = manual.replace("name: Demo Nifty Ten", "name: Demo Preview")
    (folder / "demo_preview.yaml").write_text(preview.replace("approval: manual", APPROVERS % USER))
    return folder


APPROVERS = "approval: manual\n  approvers: [%s]"


@contextlib.contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local webhook on 127.0.0.1 (a free port) collecting the JSON bodies it is sent."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")  # one started Airflow for every live test of the session
def live_airflow(
    chromium: str, pg_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveAirflow]:
    from sqlalchemy import create_engine, text

    from rebalance.history.database import engine_for
    from rebalance.history.migrate import upgrade

    root = tmp_path_factory.mktemp("live-airflow")
    suffix = uuid.uuid4().hex[:10]
    names = [f"browser_meta_{suffix}", f"browser_{suffix}"]
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f"CREATE DATABASE {name}"))
    metadata_url, history_url = (pg_server_url.replace("/postgres?", f"/{n}?") for n in names)
    upgrade(history_url)  # as `rebalance airflow` does before starting
    home = ARTIFACTS / "airflow"  # the components' logs are the CI artifacts
    shutil.rmtree(home, ignore_errors=True)
    hook = contextlib.ExitStack()
    hook_url, received = hook.enter_context(webhook_receiver())
    cluster = AirflowCluster(
        home=home,
        metadata_url=metadata_url,
        history_url=history_url,
        portfolios=_portfolios(root / "portfolios"),
        users={USER: ("admin", PASSWORD), READER: ("viewer", READER_PASSWORD)},
        extra_env={
            "REBALANCE_DEADLINE_ALERTS": "on",  # a real scheduler: the production setting
            "REBALANCE_ALERT_WEBHOOK_URL": hook_url,
            "REBALANCE_AIRFLOW_USER": USER,  # what `rebalance approve` logs in with
            "REBALANCE_AIRFLOW_PASSWORD": PASSWORD,
        },
    )
    try:
        cluster.start(
            triggerer=True,  # the approval task defers until a person answers
            expect_dags=(
                "rebalance_demo",
                "rebalance_demo_cli",
                "rebalance_demo_guarded",
                "rebalance_demo_preview",
            ),
            timeout=START_TIMEOUT,
        )
        yield LiveAirflow(
            cluster.url, cluster.env(), history_url, ARTIFACTS, cluster.logs, received
        )
    finally:
        cluster.stop()
        hook.close()
        engine_for(history_url).dispose()
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
