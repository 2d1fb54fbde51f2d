"""``rebalance drift [--portfolio X] [--days N]``: the drift watch's history as a table.

Reads the ``drift_snapshots`` table (``REBALANCE_DB_URL`` or the embedded PostgreSQL) and prints
it with ``drift.render.render_drift``: per day and account the status, total and max drift, the
symbols outside their band, what the watch did, and per account sparklines of total and max
drift against the band with the days a run was triggered (docs/drift.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from rebalance.cli import EXIT_FAILURE, app


@app.command("drift")
def drift(
    portfolio: Annotated[
        str | None, typer.Option("--portfolio", "-p", help="only this portfolio id")
    ] = None,
    days: Annotated[
        int, typer.Option("--days", "-d", min=1, help="the last N calendar days (IST)")
    ] = 30,
) -> None:
    """Drift history from the daily watch: total and max drift, breaches, triggered runs."""
    from rebalance.domain.market import IST
    from rebalance.drift.render import render_drift
    from rebalance.wiring import open_store

    since = dt.datetime.now(IST).date() - dt.timedelta(days=days - 1)
    try:
        records = open_store().drift_records(portfolio, since=since)
    except Exception as exc:  # the database is unreachable or not migrated
        typer.echo(f"drift: cannot read the history database: {exc}", err=True)
        raise typer.Exit(EXIT_FAILURE) from None
    if not records:
        which = f" for portfolio {portfolio!r}" if portfolio else ""
        typer.echo(f"no drift records{which} since {since} (the watch runs every trading day)")
        return
    typer.echo(render_drift(records))
