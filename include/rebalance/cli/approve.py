"""``rebalance approve RUN --yes | --no``: answer a run's approval through Airflow's REST API.

RUN is the history run id (``rebalance history`` and the Rebalance page show it). The run record
names its DAG, its Airflow run and its account; the approval task of that lane is
``<account>.approval``. The answer is the same one the Required Actions page gives:

1. ``POST {api}/auth/token`` with the user and password (the simple auth manager) -> a JWT, or a
   ready token from ``--token`` / env ``AIRFLOW_API_TOKEN`` (any auth manager). The user and
   password default to those of ``make airflow`` (``rebalance airflow``): env
   ``REBALANCE_AIRFLOW_USER`` / ``REBALANCE_AIRFLOW_PASSWORD``, else admin / admin, so
   ``rebalance approve RUN --yes`` works as the README shows against the local Airflow;
2. ``GET  {api}/api/v2/dags/{dag}/dagRuns/{run}/taskInstances/{task}/-1/hitlDetails``: the request
   exists and has no answer yet;
3. ``PATCH`` the same path with ``{"chosen_options": ["Approve" | "Reject"], "params_input": {}}``.

Exit codes: 0 answered; 2 bad input (no such run, run not awaiting approval, already answered,
wrong credentials, not allowed); 1 other failure (API unreachable, unexpected answer).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from rebalance.cli import EXIT_BAD_INPUT, EXIT_FAILURE, app
from rebalance.cli.local_airflow import DEFAULT_PASSWORD, DEFAULT_USER
from rebalance.task_ids import approval_task_id

APPROVE = "Approve"
REJECT = "Reject"
TIMEOUT_SECONDS = 15.0


class ApproveError(Exception):
    """A failure with the exit code it maps to."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def hitl_path(dag_id: str, dag_run_id: str, task_id: str, map_index: int = -1) -> str:
    q = lambda s: quote(s, safe="")  # noqa: E731 - run ids contain ':' and '+'
    return (
        f"/api/v2/dags/{q(dag_id)}/dagRuns/{q(dag_run_id)}/taskInstances/"
        f"{q(task_id)}/{map_index}/hitlDetails"
    )


def _detail(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return str(body)[:300]


def get_token(client: Any, user: str, password: str) -> str:
    """A JWT from the simple auth manager's ``POST /auth/token``."""
    response = client.post("/auth/token", json={"username": user, "password": password})
    if response.status_code in (400, 401, 403):
        raise ApproveError(
            f"Airflow refused the credentials of user {user!r}: {_detail(response)} (give the "
            "user and password of your Airflow with --user/--password or env "
            "REBALANCE_AIRFLOW_USER/REBALANCE_AIRFLOW_PASSWORD, or --token)",
            EXIT_BAD_INPUT,
        )
    if response.status_code >= 300:
        raise ApproveError(
            f"POST /auth/token answered {response.status_code}: {_detail(response)}", EXIT_FAILURE
        )
    return str(response.json()["access_token"])


def answer_approval(
    client: Any, dag_id: str, dag_run_id: str, task_id: str, approve: bool
) -> dict[str, Any]:
    """Check the HITL request is open, then answer it. Returns Airflow's response body."""
    path = hitl_path(dag_id, dag_run_id, task_id)
    where = f"task {task_id} of DAG run {dag_run_id} ({dag_id})"
    current = client.get(path)
    if current.status_code == 404:
        raise ApproveError(
            f"{where} is not awaiting approval: no approval request exists ({_detail(current)})",
            EXIT_BAD_INPUT,
        )
    if current.status_code in (401, 403):
        raise ApproveError(
            f"not allowed to read the approval of {where}: {_detail(current)}", EXIT_BAD_INPUT
        )
    if current.status_code >= 300:
        raise ApproveError(
            f"GET {path} answered {current.status_code}: {_detail(current)}", EXIT_FAILURE
        )
    detail = current.json()
    if detail.get("response_received"):
        by = (detail.get("responded_by_user") or {}).get("name") or "someone"
        raise ApproveError(
            f"{where} is not awaiting approval: already answered "
            f"{detail.get('chosen_options')} by {by} at {detail.get('responded_at')}",
            EXIT_BAD_INPUT,
        )
    choice = APPROVE if approve else REJECT
    options = detail.get("options") or [APPROVE, REJECT]
    if choice not in options:
        raise ApproveError(f"{where} offers {options}, not {choice!r}", EXIT_BAD_INPUT)
    response = client.patch(path, json={"chosen_options": [choice], "params_input": {}})
    if response.status_code == 409:
        raise ApproveError(
            f"{where} is not awaiting approval: answered meanwhile ({_detail(response)})",
            EXIT_BAD_INPUT,
        )
    if response.status_code in (400, 401, 403):
        raise ApproveError(
            f"Airflow refused the answer for {where}: {_detail(response)}", EXIT_BAD_INPUT
        )
    if response.status_code >= 300:
        raise ApproveError(
            f"PATCH {path} answered {response.status_code}: {_detail(response)}", EXIT_FAILURE
        )
    result: dict[str, Any] = response.json()
    return result


def approve_run(
    run_id: int,
    approve: bool,
    api_url: str,
    user: str | None,
    password: str | None,
    token: str | None,
) -> dict[str, Any]:
    """Look the run up in history and answer its approval. Raises ApproveError."""
    import httpx

    from rebalance.history.status import RunStatus
    from rebalance.history.store import RunNotFound
    from rebalance.wiring import open_store

    try:
        run = open_store().run(run_id)
    except RunNotFound as exc:
        raise ApproveError(f"no rebalance run {run_id} in the history database", 2) from exc
    status = str(run.status)
    if status != RunStatus.AWAITING_APPROVAL:
        raise ApproveError(
            f"run {run_id} ({run.portfolio_id}, account {run.account}) is not awaiting "
            f"approval: its status is {status}"
            + (f" ({run.status_reason})" if run.status_reason else ""),
            EXIT_BAD_INPUT,
        )
    if not token and not (user and password):
        raise ApproveError(
            "give --user and --password (or env REBALANCE_AIRFLOW_USER / "
            "REBALANCE_AIRFLOW_PASSWORD), or --token (env AIRFLOW_API_TOKEN)",
            EXIT_BAD_INPUT,
        )
    base = api_url.rstrip("/")
    try:
        with httpx.Client(base_url=base, timeout=TIMEOUT_SECONDS) as client:
            if not token:
                assert user is not None
                assert password is not None
                token = get_token(client, user, password)
            client.headers["Authorization"] = f"Bearer {token}"
            return answer_approval(
                client,
                str(run.dag_id),
                str(run.airflow_run_id),
                approval_task_id(str(run.account)),
                approve,
            )
    except httpx.TransportError as exc:
        raise ApproveError(f"Airflow's API at {base} is unreachable: {exc}", EXIT_FAILURE) from exc


@app.command()
def approve(
    run: Annotated[int, typer.Argument(help="history run id (see `rebalance history`)")],
    decision: Annotated[
        bool | None,
        typer.Option("--yes/--no", help="--yes approves the plan, --no rejects it"),
    ] = None,
    api_url: Annotated[
        str, typer.Option(envvar="REBALANCE_AIRFLOW_API_URL", help="Airflow's API server")
    ] = "http://localhost:8080",
    user: Annotated[
        str,
        typer.Option(
            envvar="REBALANCE_AIRFLOW_USER", help="Airflow user (the one `make airflow` made)"
        ),
    ] = DEFAULT_USER,
    password: Annotated[
        str,
        typer.Option(
            envvar="REBALANCE_AIRFLOW_PASSWORD",
            help="Airflow password (the one `make airflow` set)",
            show_default=False,
        ),
    ] = DEFAULT_PASSWORD,
    token: Annotated[
        str | None,
        typer.Option(envvar="AIRFLOW_API_TOKEN", help="a JWT instead of user and password"),
    ] = None,
) -> None:
    """Approve (--yes) or reject (--no) a run waiting in Required Actions."""
    if decision is None:
        typer.echo("say --yes (approve) or --no (reject)", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        answer = approve_run(run, decision, api_url, user, password, token)
    except ApproveError as exc:
        typer.echo(f"rebalance approve: {exc}", err=True)
        raise typer.Exit(exc.code) from exc
    by = (answer.get("responded_by") or {}).get("name", "?")
    verdict = "approved" if decision else "rejected"
    typer.echo(f"run {run}: {verdict} as {by} ({answer.get('chosen_options')})")
