"""``rebalance airflow``: the full local Airflow (api-server, scheduler, dag-processor, triggerer).

What it wires, in this order:

1. the project-local Airflow settings of ``rebalance demo`` (AIRFLOW_HOME=.airflow, dags/ and
   plugins/ of this project, no example DAGs), each kept if the caller already set it;
2. the history database: ``REBALANCE_DB_URL`` if set, else the embedded PostgreSQL (started here,
   before Airflow), migrated, and its URL exported as ``REBALANCE_DB_URL`` for every component;
3. LocalExecutor, the simple auth manager with one admin user whose password is known
   (``--user``/``--password``, env ``REBALANCE_AIRFLOW_USER``/``REBALANCE_AIRFLOW_PASSWORD``,
   default admin/admin), written to ``$AIRFLOW_HOME/simple_auth_manager_passwords.json``;
4. the API server's port and the Execution API URL that task processes call back on;
5. Airflow's metadata database: SQLite under AIRFLOW_HOME (``airflow standalone`` migrates it).

Then the process becomes ``airflow standalone`` (exec), so Ctrl-C stops every component.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from rebalance.cli import EXIT_FAILURE, app
from rebalance.preload_config import SCHEDULER_PRELOAD_ENV

DEFAULT_USER = "admin"
DEFAULT_PASSWORD = "admin"  # a local development Airflow; documented in docs/ui.md
EXTRA_USERS_ENV = "REBALANCE_AIRFLOW_EXTRA_USERS"
SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)


def write_passwords_file(path: Path, user: str, password: str) -> None:
    """Set ``user``'s password in the simple auth manager's JSON file (other users kept)."""
    passwords: dict[str, str] = {}
    if path.exists():
        try:
            loaded = json.loads(path.read_text() or "{}")
            if isinstance(loaded, dict):
                passwords = {str(k): str(v) for k, v in loaded.items()}
        except json.JSONDecodeError:
            passwords = {}
    passwords[user] = password
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(passwords) + "\n")
    path.chmod(0o600)


def local_airflow_environment(
    port: int, user: str, password: str, history_db_url: str, host: str = "127.0.0.1"
) -> dict[str, str]:
    """The environment of ``airflow standalone`` for this project (returned, also set here)."""
    from rebalance.cli.demo import airflow_environment

    airflow_environment()
    home = Path(os.environ["AIRFLOW_HOME"])
    passwords_file = home / "simple_auth_manager_passwords.json"
    write_passwords_file(passwords_file, user, password)
    bin_dir = str(Path(sys.executable).parent)
    settings = {
        "REBALANCE_DB_URL": history_db_url,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        # more users (name:role) after the admin, e.g. a read-only "reader:viewer" for tests
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
            [f"{user}:admin", *filter(None, os.environ.get(EXTRA_USERS_ENV, "").split(","))]
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
        "AIRFLOW__API__HOST": host,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        # The LocalExecutor's workers inherit pandas and Great Expectations (docs/quality.md).
        **SCHEDULER_PRELOAD_ENV,
        # `airflow standalone` starts its components as `airflow ...` from PATH: this venv's.
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
    }
    os.environ.update(settings)
    return {**{k: os.environ[k] for k in ("AIRFLOW_HOME",)}, **settings}


@app.command("airflow")
def airflow_command(
    port: Annotated[int, typer.Option(help="the API server's (and UI's) port")] = 8080,
    host: Annotated[
        str, typer.Option(help="the address to listen on (0.0.0.0: every interface)")
    ] = "127.0.0.1",
    user: Annotated[
        str, typer.Option(envvar="REBALANCE_AIRFLOW_USER", help="the admin user's name")
    ] = DEFAULT_USER,
    password: Annotated[
        str,
        typer.Option(
            envvar="REBALANCE_AIRFLOW_PASSWORD", help="the admin user's password", show_default=True
        ),
    ] = DEFAULT_PASSWORD,
) -> None:
    """Start the full local Airflow on http://localhost:PORT with the history database."""
    from rebalance.history.database import history_url, redacted
    from rebalance.history.migrate import upgrade

    try:
        url = history_url()
        upgrade(url)
    except Exception as exc:  # any failure to reach the database is reported
        typer.echo(f"history database unavailable: {exc}", err=True)
        raise typer.Exit(EXIT_FAILURE) from exc
    env = local_airflow_environment(port, user, password, url, host)
    airflow = Path(sys.executable).with_name("airflow")
    typer.echo(f"AIRFLOW_HOME      {env['AIRFLOW_HOME']}")
    typer.echo(f"history database  {redacted(url)}")
    typer.echo(f"Airflow UI        http://localhost:{port}/")
    typer.echo(f"login             user {user!r}, password {password!r}")
    typer.echo(f"Rebalance page    http://localhost:{port}/rebalance/")
    typer.echo("starting `airflow standalone` (Ctrl-C stops every component)", err=False)
    sys.stdout.flush()
    os.execve(str(airflow), [str(airflow), "standalone"], os.environ.copy())
