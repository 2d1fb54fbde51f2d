"""The page's writes: Run now and answering an approval, done through Airflow's REST API as the
signed-in user (docs/ui.md "How writes are protected").

* The user's own token (the ``Authorization: Bearer`` JWT, else the UI's ``_token`` cookie) is
  forwarded, so Airflow's API decides with its own permissions; we never hold a token of ours.
* The buttons are shown only to a user the auth manager lets trigger the DAG (DAG runs, ``POST``);
  the handlers ask again before calling Airflow.
* CSRF: every write is a ``POST`` that must carry (1) an ``Origin`` (or, without one, a
  ``Referer``) of this very host, and (2) a form token bound to the user's session: the HMAC of
  their JWT under a server key. A page of another site can neither read that token nor send our
  origin, so a forged request is refused (403) before Airflow is called.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from fastapi import HTTPException, Request

API_URL_ENV = "REBALANCE_AIRFLOW_API_URL"
_PROCESS_KEY = secrets.token_bytes(32)


def user_token(request: Request) -> str:
    """The signed-in user's JWT, as Airflow's ``get_user`` read it."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get("_token", "")


def _key() -> bytes:
    """The CSRF key: Airflow's ``[api] secret_key`` (shared by api-server workers), else one per
    process."""
    try:
        from airflow.configuration import conf

        secret = conf.get("api", "secret_key", fallback="")
    except Exception:  # no Airflow configuration (unit tests)
        secret = ""
    return secret.encode() if secret else _PROCESS_KEY


def csrf_token(request: Request) -> str:
    """The form token of this user's session (their JWT, HMAC'd)."""
    return hmac.new(_key(), user_token(request).encode(), hashlib.sha256).hexdigest()


def check_write(request: Request, form_token: str) -> None:
    """Refuse (403) a write that does not come from our own page in this session."""
    origin = request.headers.get("origin") or request.headers.get("referer") or ""
    host = request.headers.get("host", "")
    if not origin or urlsplit(origin).netloc != host:
        raise HTTPException(403, "refused: the request does not come from this site (Origin)")
    if not user_token(request) or not hmac.compare_digest(form_token, csrf_token(request)):
        raise HTTPException(403, "refused: the form token is missing or not this session's")


def can_trigger(request: Request, dag_id: str) -> bool:
    """Whether Airflow's auth manager lets the signed-in user trigger ``dag_id``."""
    override: Callable[[str], bool] | None = getattr(request.app.state, "can_trigger", None)
    if override is not None:
        return override(dag_id)
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        DagAccessEntity,
        DagDetails,
    )

    user = getattr(request.state, "airflow_user", None)
    if user is None:
        return False
    details = DagDetails(id=dag_id)
    manager = get_auth_manager()
    return bool(
        manager.is_authorized_dag(
            method="POST", access_entity=DagAccessEntity.RUN, details=details, user=user
        )
    )


@dataclass(frozen=True)
class AirflowAnswer:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def detail(self) -> str:
        if isinstance(self.body, dict) and "detail" in self.body:
            return str(self.body["detail"])[:300]
        return str(self.body)[:300]


def airflow_client(request: Request) -> httpx.Client:
    """A client of Airflow's REST API carrying the user's token (tests set a transport)."""
    factory: Callable[[], httpx.Client] | None = getattr(request.app.state, "airflow_client", None)
    headers = {"Authorization": f"Bearer {user_token(request)}"}
    if factory is not None:
        client = factory()
        client.headers.update(headers)
        return client
    base = os.environ.get(API_URL_ENV) or f"{request.url.scheme}://{request.url.netloc}"
    return httpx.Client(base_url=base, headers=headers, timeout=30)


def _answer(response: httpx.Response) -> AirflowAnswer:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return AirflowAnswer(response.status_code, body)


def trigger(client: httpx.Client, dag_id: str, run_id: str, conf: dict[str, Any]) -> AirflowAnswer:
    """``POST /api/v2/dags/{dag_id}/dagRuns`` with ``conf`` = the Params."""
    body = {"dag_run_id": run_id, "logical_date": None, "conf": conf}
    with client:
        return _answer(client.post(f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns", json=body))


def hitl_path(dag_id: str, run_id: str, task_id: str) -> str:
    return (
        f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
        f"{quote(task_id, safe='')}/-1/hitlDetails"
    )


def answer_approval(
    client: httpx.Client, dag_id: str, run_id: str, task_id: str, approve: bool
) -> AirflowAnswer:
    """Answer the approval task's Human-in-the-loop request, as ``rebalance approve`` does."""
    body = {"chosen_options": ["Approve" if approve else "Reject"], "params_input": {}}
    with client:
        return _answer(client.patch(hitl_path(dag_id, run_id, task_id), json=body))
