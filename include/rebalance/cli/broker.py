"""``rebalance broker login zerodha``: turn the day's Kite request_token into an access token and
store it where the account's connection is read from.

Kite access tokens expire every morning (~06:00 IST). Each trading day, before the first run:

1. open ``https://kite.zerodha.com/connect/login?v=3&api_key=<api_key>`` and log in;
2. copy ``request_token`` from the URL Kite redirects to;
3. ``rebalance broker login zerodha --api-key <api_key> --request-token <token>``
   (the api_secret is read from ``KITE_API_SECRET`` or asked for, never echoed).

Where the token goes (``--store``):

* ``env-file`` (default): the ``AIRFLOW_CONN_<CONN_ID>`` line of ``--env-file`` (default ``.env``,
  the file docker compose hands to the Airflow containers) is written or updated, keeping the
  connection's other fields; file mode 0600. Recreate the containers to apply it
  (``docker compose up -d``).
* ``airflow``: the connection in Airflow's metadata DB is replaced through
  ``airflow connections import --overwrite`` (a 0600 temporary file, never the command line).
* ``print``: print ``export AIRFLOW_CONN_<CONN_ID>='...'`` for you to apply. This prints the
  access token (not the api_secret), so use it only in a terminal of your own.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from rebalance.cli import EXIT_BAD_INPUT, EXIT_FAILURE, app

broker_app = typer.Typer(help="Broker sessions: the daily Zerodha login.", no_args_is_help=True)
login_app = typer.Typer(help="Log in to a broker and store the session.", no_args_is_help=True)
broker_app.add_typer(login_app, name="login")
app.add_typer(broker_app, name="broker")


class Store(StrEnum):
    ENV_FILE = "env-file"
    AIRFLOW = "airflow"
    PRINT = "print"


def env_var_name(conn_id: str) -> str:
    return "AIRFLOW_CONN_" + re.sub(r"[^A-Za-z0-9]", "_", conn_id).upper()


def _read_env_conn(path: Path, var: str) -> dict[str, Any]:
    if not path.exists():
        return {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"{var}="):
            value = line.split("=", 1)[1].strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            try:
                parsed = json.loads(value)
            except ValueError:
                return {}  # a URI-style connection: replaced by the JSON form
            return parsed if isinstance(parsed, dict) else {}
    return {}


def write_env_conn(path: Path, var: str, conn: dict[str, Any]) -> None:
    """Set ``var='<json>'`` in the env file ``path``, atomically, mode 0600."""
    line = f"{var}='{json.dumps(conn, separators=(',', ':'))}'"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    replaced = False
    for i, old in enumerate(lines):
        if old.startswith(f"{var}="):
            lines[i] = line
            replaced = True
    if not replaced:
        lines.append(line)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".env-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _store_in_airflow(conn_id: str, conn: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "connection.json"
        path.touch(mode=0o600)
        payload = {
            conn_id: {
                "conn_type": conn["conn_type"],
                "login": conn["login"],
                "password": conn["password"],
                "extra_dejson": conn.get("extra") or {},
            }
        }
        path.write_text(json.dumps(payload), encoding="utf-8")
        result = subprocess.run(
            ["airflow", "connections", "import", str(path), "--overwrite"],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0 or "Imported connection" not in result.stdout:
        # Airflow's output names the connection, never its password.
        raise RuntimeError(f"airflow connections import failed: {result.stderr.strip()[-500:]}")


@login_app.command("zerodha")
def login_zerodha(
    api_key: Annotated[str, typer.Option(help="the Kite Connect app's api_key")],
    request_token: Annotated[str, typer.Option(help="request_token from Kite's login redirect")],
    conn_id: Annotated[str, typer.Option(help="Airflow connection id")] = "zerodha_main",
    store: Annotated[Store, typer.Option(help="where to store the access token")] = Store.ENV_FILE,
    env_file: Annotated[Path, typer.Option(help="env file for --store env-file")] = Path(".env"),
    root: Annotated[
        str | None, typer.Option(help="Kite API root (tests: an emulator)", hidden=True)
    ] = None,
) -> None:
    """Exchange a request_token for today's access token and store it for the connection."""
    from rebalance.brokers.base import BrokerError
    from rebalance.brokers.zerodha import translate

    api_secret = os.environ.get("KITE_API_SECRET") or typer.prompt(
        "Kite api_secret", hide_input=True
    )
    if not api_secret:
        typer.echo("error: no api_secret (set KITE_API_SECRET or type it)", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)

    from kiteconnect import KiteConnect

    kite = KiteConnect(api_key, root=root, debug=False)
    try:
        session = kite.generate_session(request_token, api_secret=api_secret)
    except Exception as exc:
        err = translate(exc, what="login", placing=False)
        message = err.message if isinstance(err, BrokerError) else type(exc).__name__
        if "token" in message.lower() or "checksum" in message.lower():
            message = (
                "Kite refused the login: the request_token is used up or older than a few "
                "minutes, or the api_key / api_secret do not match. Log in again and retry."
            )
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(EXIT_FAILURE) from None
    access_token = session.get("access_token") if isinstance(session, dict) else None
    if not access_token:
        typer.echo("error: Kite's reply carried no access_token", err=True)
        raise typer.Exit(EXIT_FAILURE)

    var = env_var_name(conn_id)
    existing = _read_env_conn(env_file, var) if store is Store.ENV_FILE else {}
    conn: dict[str, Any] = {
        "conn_type": existing.get("conn_type", "generic"),
        "login": api_key,
        "password": access_token,
    }
    extra = existing.get("extra") or {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra)
        except ValueError:
            extra = {}
    if root and "root" not in extra:
        extra = {**extra, "root": root}
    if extra:
        conn["extra"] = extra

    user = session.get("user_id", "?")
    if store is Store.ENV_FILE:
        write_env_conn(env_file, var, conn)
        typer.echo(
            f"Logged in as {user}. Stored today's access token in {env_file} ({var}). "
            "Recreate the Airflow containers to apply it: docker compose up -d"
        )
    elif store is Store.AIRFLOW:
        try:
            _store_in_airflow(conn_id, conn)
        except (OSError, RuntimeError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_FAILURE) from None
        typer.echo(f"Logged in as {user}. Updated the Airflow connection {conn_id}.")
    else:
        typer.echo(f"export {var}='{json.dumps(conn, separators=(',', ':'))}'")
        typer.echo(f"# logged in as {user}; the token above expires tomorrow ~06:00 IST", err=True)


__all__ = ["env_var_name", "write_env_conn"]
