"""``rebalance approve RUN --yes`` works as the README shows: no --user/--password needed against
the Airflow of ``make airflow`` (env REBALANCE_AIRFLOW_USER/_PASSWORD, else admin/admin).

Real parts: the history store on PostgreSQL, the CLI's real HTTP client; a small local HTTP server
answers the three calls of Airflow's REST API the command makes (token, read, answer).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

import rebalance.cli.approve  # noqa: F401 - registers the approve command
from rebalance.cli import app
from rebalance.cli.local_airflow import DEFAULT_PASSWORD, DEFAULT_USER
from rebalance.history.status import RunStatus
from rebalance.history.store import HistoryStore, RunKey

runner = CliRunner()


class FakeAirflowApi(BaseHTTPRequestHandler):
    """Airflow 3's simple-auth token endpoint and the HITL detail of one task."""

    users: ClassVar[dict[str, str]] = {}
    logins: ClassVar[list[tuple[str, str]]] = []
    answers: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        loaded: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
        return loaded

    def do_POST(self) -> None:
        body = self._body()
        self.logins.append((body["username"], body["password"]))
        if self.users.get(body["username"]) != body["password"]:
            self._reply(401, {"detail": "Invalid credentials"})
        else:
            self._reply(201, {"access_token": f"token-of-{body['username']}"})

    def do_GET(self) -> None:
        if not self.headers.get("Authorization", "").startswith("Bearer token-of-"):
            self._reply(401, {"detail": "Not authenticated"})
        else:
            self._reply(200, {"response_received": False, "options": ["Approve", "Reject"]})

    def do_PATCH(self) -> None:
        body = self._body()
        self.answers.append(body)
        user = self.headers["Authorization"].removeprefix("Bearer token-of-")
        self._reply(200, {"responded_by": {"name": user}, "chosen_options": body["chosen_options"]})


@pytest.fixture
def api() -> Iterator[str]:
    FakeAirflowApi.logins = []
    FakeAirflowApi.answers = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeAirflowApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def waiting_run(store: HistoryStore) -> int:
    run_id = store.open_run(
        RunKey("rebalance_demo", "manual__approve", "main"),
        portfolio_id="demo",
        portfolio_name="Demo",
        broker="paper",
        initiator="manual",
        broker_scope="main",
        mode="paper",
        policy={},
        targets={"weights": {"INFY": 1.0}, "cash": 0.0},
    )
    store.transition(run_id, RunStatus.PLANNED)
    store.transition(run_id, RunStatus.AWAITING_APPROVAL)
    return run_id


def test_defaults_are_make_airflows_user(
    store: HistoryStore, api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REBALANCE_AIRFLOW_USER", raising=False)
    monkeypatch.delenv("REBALANCE_AIRFLOW_PASSWORD", raising=False)
    monkeypatch.delenv("AIRFLOW_API_TOKEN", raising=False)
    FakeAirflowApi.users = {DEFAULT_USER: DEFAULT_PASSWORD}
    run_id = waiting_run(store)
    result = runner.invoke(app, ["approve", str(run_id), "--yes", "--api-url", api])
    assert result.exit_code == 0, result.stderr
    assert FakeAirflowApi.logins == [("admin", "admin")]
    assert FakeAirflowApi.answers == [{"chosen_options": ["Approve"], "params_input": {}}]
    assert f"run {run_id}: approved as admin" in result.stdout


def test_env_gives_the_user_as_make_airflow_reads_it(
    store: HistoryStore, api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REBALANCE_AIRFLOW_USER", "ops")
    monkeypatch.setenv("REBALANCE_AIRFLOW_PASSWORD", "s3cret-for-test")
    monkeypatch.delenv("AIRFLOW_API_TOKEN", raising=False)
    FakeAirflowApi.users = {"ops": "s3cret-for-test"}
    run_id = waiting_run(store)
    result = runner.invoke(app, ["approve", str(run_id), "--no", "--api-url", api])
    assert result.exit_code == 0, result.stderr
    assert FakeAirflowApi.logins == [("ops", "s3cret-for-test")]
    assert FakeAirflowApi.answers[0]["chosen_options"] == ["Reject"]


def test_wrong_password_says_how_to_give_one(
    store: HistoryStore, api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REBALANCE_AIRFLOW_USER", raising=False)
    monkeypatch.delenv("REBALANCE_AIRFLOW_PASSWORD", raising=False)
    monkeypatch.delenv("AIRFLOW_API_TOKEN", raising=False)
    FakeAirflowApi.users = {"admin": "changed"}
    run_id = waiting_run(store)
    result = runner.invoke(app, ["approve", str(run_id), "--yes", "--api-url", api])
    assert result.exit_code == 2
    assert "REBALANCE_AIRFLOW_PASSWORD" in result.stderr
    assert FakeAirflowApi.answers == []
