"""``rebalance demo``: the demo portfolio through the whole pipeline, through Airflow.

Embedded default: no Docker, no accounts. Starts the embedded PostgreSQL (or uses
REBALANCE_DB_URL), migrates the history database, migrates Airflow's metadata database under a
project-local AIRFLOW_HOME, runs the demo DAG with ``dag.test()`` on the paper broker with
automatic approval, then prints the recorded run and its orders read back from Postgres.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Annotated

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


@app.command()
def demo(
    portfolio: Annotated[str, typer.Option(help="portfolio id (file name without .yaml)")] = "demo",
    fresh: Annotated[
        bool, typer.Option(help="reset the paper account to its holdings file")
    ] = True,
    verbose: Annotated[bool, typer.Option(help="show Airflow's task logs")] = False,
) -> None:
    """Run the demo portfolio's DAG end to end and print the recorded run and its orders."""
    if not verbose:
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
        # Airflow's dag.test imports FastAPI's test client, which warns about its own httpx use.
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    airflow_environment()
    from rebalance.history.database import engine_for, history_url, redacted
    from rebalance.history.migrate import upgrade
    from rebalance.history.store import HistoryStore
    from rebalance.reports import print_run
    from rebalance.settings import portfolios_dir, state_dir

    url = history_url()
    upgrade(url)
    typer.echo(f"history database: {redacted(url)}")
    os.environ["REBALANCE_DB_URL"] = url
    migrate_airflow_db()
    if fresh:
        shutil.rmtree(state_dir() / "paper" / portfolio, ignore_errors=True)

    from rebalance.dag_factory import build_dags

    dags = build_dags(portfolios_dir())
    dag_id = f"rebalance_{portfolio}"
    if dag_id not in dags:
        typer.echo(f"no portfolio {portfolio!r} in {portfolios_dir()}", err=True)
        raise typer.Exit(EXIT_FAILURE)
    dag_run = dags[dag_id].test()
    store = HistoryStore(engine_for(url))
    runs = [r for r in store.runs(portfolio) if r["airflow_run_id"] == dag_run.run_id]
    if not runs:
        typer.echo(f"DAG run {dag_run.run_id} ended {dag_run.state} and recorded nothing", err=True)
        raise typer.Exit(EXIT_FAILURE)
    for run in runs:
        print_run(run, store.orders(run["id"]))
    typer.echo(f"DAG run {dag_run.run_id}: {dag_run.state}")
    if str(dag_run.state) != "success":
        raise typer.Exit(EXIT_FAILURE)
