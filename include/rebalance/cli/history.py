"""``rebalance history [--portfolio X] [--limit N]`` and ``rebalance history show RUN``.

Reads the history database (``REBALANCE_DB_URL`` or the embedded PostgreSQL); prints rich tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from rebalance.cli import EXIT_BAD_INPUT, EXIT_FAILURE, app
from rebalance.reports import wide_console

if TYPE_CHECKING:
    from rebalance.history.store import HistoryStore

history_app = typer.Typer(
    help="Past rebalance runs: the list, or one run's details.", invoke_without_command=True
)
app.add_typer(history_app, name="history")


def _store() -> HistoryStore:
    from rebalance.wiring import open_store

    return open_store()


@history_app.callback()
def list_runs(
    ctx: typer.Context,
    portfolio: Annotated[
        str | None, typer.Option("--portfolio", "-p", help="only this portfolio id")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="newest N runs")] = 20,
) -> None:
    """List runs, newest first: id, created, policy, turnover, drift before -> after, status."""
    if ctx.invoked_subcommand is not None:
        return

    from rebalance.reports import runs_table

    try:
        runs = _store().runs(portfolio, limit=limit)
    except Exception as exc:  # the database is unreachable or not migrated
        typer.echo(f"history: cannot read the history database: {exc}", err=True)
        raise typer.Exit(EXIT_FAILURE) from None
    console = wide_console()
    if not runs:
        console.print("no rebalance runs" + (f" for portfolio {portfolio!r}" if portfolio else ""))
        return
    console.print(runs_table(runs))
    _print_combined_runs(portfolio, limit)


def _print_combined_runs(portfolio: str | None, limit: int) -> None:
    """The combined runs (accounts_mode: combined), when there are any."""
    from rebalance.cli.combined import combined_runs_table
    from rebalance.history.combined import CombinedStore

    combined = CombinedStore(_store().engine).combined_runs(portfolio, limit=limit)
    if combined:
        wide_console().print(combined_runs_table(combined))


@history_app.command("combined")
def show_combined(
    combined_run: Annotated[int, typer.Argument(help="the combined run id")],
) -> None:
    """One combined run: the split per account and what each account did or left undone."""
    from rebalance.cli.combined import print_combined_run
    from rebalance.history.combined import CombinedStore

    try:
        record = CombinedStore(_store().engine).combined(combined_run)
    except LookupError:
        typer.echo(f"history combined: no combined run {combined_run}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    print_combined_run(record)


@history_app.command("show")
def show(run: Annotated[int, typer.Argument(help="the run id (first column of the list)")]) -> None:
    """One run: metadata, policy, holdings, plan positions, orders with outcomes, events."""

    from rebalance.history.store import RunNotFound
    from rebalance.reports import print_run_details

    store = _store()
    try:
        record = store.run(run)
    except RunNotFound:
        typer.echo(f"history show: no rebalance run {run}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    print_run_details(record, store.orders(run), store.events(run), wide_console())
    from rebalance.history.combined import CombinedStore

    if (combined := CombinedStore(store.engine).combined_of_run(run)) is not None:
        wide_console().print(
            f"part of combined run {combined}: `rebalance history combined {combined}`"
        )
