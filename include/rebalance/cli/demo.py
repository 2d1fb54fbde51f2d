"""``rebalance demo``: the demo portfolios through the whole pipeline, through Airflow.

Embedded default: no Docker, no accounts. Starts the embedded PostgreSQL (or uses
REBALANCE_DB_URL), migrates the history database, migrates Airflow's metadata database under a
project-local AIRFLOW_HOME, runs each demo DAG with ``dag.test()`` on the paper broker with
automatic approval, then prints the recorded run and its orders read back from Postgres. By
default both demos run, one after the other on the same setup: ``demo`` (the file's fixed weights)
and ``demo_risk_parity`` (targets from the risk_parity model over the paper broker's emulated
daily history); ``--portfolio`` picks one (or more).

The embedded PostgreSQL that the demo starts is stopped when it exits, also on an error, Ctrl-C or
SIGTERM; a server that was already running (``make airflow``, another shell) is left running.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from rebalance.cli import EXIT_FAILURE, app


def airflow_environment() -> dict[str, str]:
    """Project-local Airflow settings (kept if the caller already set them)."""
    from rebalance.settings import PROJECT_ROOT

    defaults = {
        "AIRFLOW_HOME": str(PROJECT_ROOT / ".airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        # dag.test() of Airflow 3.3.2 cannot finish a run of a DAG with a deadline alert.
        "REBALANCE_DEADLINE_ALERTS": "off",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    return {k: os.environ[k] for k in defaults}


def migrate_airflow_db() -> None:
    """``airflow db migrate`` (idempotent) for the project-local metadata database."""
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run(
        [str(airflow), "db", "migrate"], capture_output=True, text=True, env=os.environ.copy()
    )
    if result.returncode != 0:
        typer.echo(result.stdout[-3000:] + result.stderr[-3000:], err=True)
        raise typer.Exit(EXIT_FAILURE)


EMBEDDED_STOP_TIMEOUT_SECONDS = 30.0


def embedded_pgdata() -> Path:
    """The embedded server's data folder, as ``history.database.start_embedded`` finds it."""
    from rebalance.history.database import DEFAULT_PGDATA

    return Path(os.environ.get("REBALANCE_PGDATA") or DEFAULT_PGDATA).expanduser().resolve()


def embedded_server_pid(pgdata: Path) -> int | None:
    """The postmaster's pid when a server of ``pgdata`` is running (from postmaster.pid)."""
    import psutil

    try:
        first_line = (pgdata / "postmaster.pid").read_text().split("\n", 1)[0]
        pid = int(first_line)
    except (OSError, ValueError):
        return None
    try:
        process = psutil.Process(pid)
        running = process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return None
    return pid if running and "postgres" in process.name() else None


def stop_embedded_server(pgdata: Path, timeout: float = EMBEDDED_STOP_TIMEOUT_SECONDS) -> bool:
    """Stop the embedded PostgreSQL of ``pgdata``: SIGINT to the postmaster is PostgreSQL's
    "fast shutdown" (clients disconnected, a clean checkpoint). True when it is stopped."""
    import psutil

    pid = embedded_server_pid(pgdata)
    if pid is None:
        return True
    try:
        process = psutil.Process(pid)
        process.send_signal(signal.SIGINT)
        process.wait(timeout)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return False
    return True


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def embedded_server_stopped_on_exit() -> Iterator[None]:
    """Around a command that may start the embedded PostgreSQL: stop it on the way out (normal
    exit, error, Ctrl-C, SIGTERM) unless it was running before or ``REBALANCE_DB_URL`` is set."""
    if os.environ.get("REBALANCE_DB_URL"):
        yield
        return
    pgdata = embedded_pgdata()
    was_running = embedded_server_pid(pgdata) is not None
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if not was_running:
            started = time.monotonic()
            if stop_embedded_server(pgdata):
                typer.echo(
                    f"stopped the embedded PostgreSQL ({pgdata}) in "
                    f"{time.monotonic() - started:.1f} s",
                    err=True,
                )
            else:
                typer.echo(f"the embedded PostgreSQL ({pgdata}) did not stop", err=True)


DEMO_PORTFOLIOS = ("demo", "demo_risk_parity")


@app.command()
def demo(
    portfolio: Annotated[
        list[str] | None,
        typer.Option(
            help="portfolio id (file name without .yaml), repeatable; default: "
            + " and ".join(DEMO_PORTFOLIOS)
        ),
    ] = None,
    fresh: Annotated[
        bool, typer.Option(help="reset the paper account to its holdings file")
    ] = True,
    verbose: Annotated[bool, typer.Option(help="show Airflow's task logs")] = False,
) -> None:
    """Run the demo portfolios' DAGs end to end and print each recorded run and its orders."""
    with embedded_server_stopped_on_exit():
        run_demo(list(portfolio or DEMO_PORTFOLIOS), fresh=fresh, verbose=verbose)


def run_demo(portfolios: list[str], *, fresh: bool, verbose: bool) -> None:
    """The demo itself (see ``demo``); the caller decides the embedded server's lifetime."""
    if not verbose:
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
        # Airflow's dag.test imports FastAPI's test client, which warns about its own httpx use.
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    airflow_environment()
    from rebalance.history.database import history_url, redacted
    from rebalance.history.migrate import upgrade
    from rebalance.reports import print_run
    from rebalance.settings import portfolios_dir, state_dir
    from rebalance.wiring import open_store

    url = history_url()
    upgrade(url)
    typer.echo(f"history database: {redacted(url)}")
    os.environ["REBALANCE_DB_URL"] = url
    migrate_airflow_db()

    from rebalance.dag_factory import build_dags

    dags = build_dags(portfolios_dir())
    unknown = [p for p in portfolios if f"rebalance_{p}" not in dags]
    if unknown:
        typer.echo(f"no portfolio {', '.join(map(repr, unknown))} in {portfolios_dir()}", err=True)
        raise typer.Exit(EXIT_FAILURE)
    store = open_store(url)
    ran = []
    for portfolio in portfolios:
        if fresh:
            shutil.rmtree(state_dir() / "paper" / portfolio, ignore_errors=True)
        started = time.monotonic()
        dag_run = dags[f"rebalance_{portfolio}"].test()
        runs = [r for r in store.runs(portfolio) if r.airflow_run_id == dag_run.run_id]
        for run in runs:
            print_run(run, store.orders(run.id))
        state = str(dag_run.state) if runs else f"{dag_run.state}, recorded nothing"
        targets = targets_words(runs[0].targets if runs else None)
        line = f"{portfolio}: {targets}; DAG run {dag_run.run_id}: {state}"
        typer.echo(f"{line} ({time.monotonic() - started:.0f} s)")
        ran.append((portfolio, str(dag_run.state) == "success" and bool(runs)))
    for other in (p for p in DEMO_PORTFOLIOS if p not in portfolios):
        typer.echo(f"the other demo: rebalance demo --portfolio {other}")
    if not all(ok for _, ok in ran):
        failed = ", ".join(p for p, ok in ran if not ok)
        typer.echo(f"the demo of {failed} did not succeed", err=True)
        raise typer.Exit(EXIT_FAILURE)


def targets_words(targets: Mapping[str, Any] | None) -> str:
    """What a demo run planned against: the file's weights, or the model's with its as-of."""
    from rebalance.targets.describe import headline

    source = (targets or {}).get("source")
    return f"targets from the {headline(source)}" if source else "the file's fixed target weights"
