"""``rebalance schedule``: the next rebalance times of each portfolio (no Airflow, broker or DB).

Uses the same calendar code as the Airflow timetable, so what it prints is what the scheduler
will do. Warns when a portfolio's schedule runs past the known trading calendar.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rebalance.cli import EXIT_BAD_INPUT, app
from rebalance.reports import wide_console

if TYPE_CHECKING:
    from rebalance.calendar import RebalanceSchedule


def _id_of(path: Path) -> str | None:
    """A file's portfolio id, or None for a file name that gives none (e.g. ``!!!.yaml``)."""
    from rebalance.errors import ConfigError
    from rebalance.portfolio import portfolio_id_from_path

    try:
        return portfolio_id_from_path(path)
    except ConfigError:
        return None


def _resolve(portfolio: str | None, folder: Path) -> list[Path]:
    """Portfolio files: all of ``folder``, or one given as a file path or a portfolio id."""
    from rebalance.errors import ConfigError
    from rebalance.portfolio import portfolio_files

    if portfolio is None:
        files = portfolio_files(folder)
        if not files:
            raise ConfigError(str(folder), ["no portfolio files (*.yaml) in this folder"])
        return files
    path = Path(portfolio)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(str(path), ["no such portfolio file"])
        return [path]
    matches = [p for p in portfolio_files(folder) if _id_of(p) == portfolio]
    if not matches:
        raise ConfigError(
            str(folder), [f"--portfolio: no portfolio with id {portfolio!r} (nor such a file)"]
        )
    return matches


def _runs(
    schedule: RebalanceSchedule, after: dt.datetime, count: int
) -> tuple[list[dt.datetime], str | None]:
    """Up to ``count`` runs after ``after``, and why the list stops short (if it does)."""
    from rebalance.errors import CalendarError

    runs: list[dt.datetime] = []
    moment = after
    try:
        for _ in range(count):
            moment = schedule.next_run(moment)
            runs.append(moment)
    except CalendarError as exc:
        return runs, str(exc)
    return runs, None


@app.command("schedule")
def schedule_command(
    portfolio: Annotated[
        str | None,
        typer.Option(help="a portfolio file, or a portfolio id; default: every portfolio"),
    ] = None,
    next_runs: Annotated[
        int, typer.Option("--next", min=1, max=100, help="how many upcoming runs to show")
    ] = 5,
    folder: Annotated[
        Path | None,
        typer.Option(help="portfolio folder; default REBALANCE_PORTFOLIOS_DIR or ./portfolios"),
    ] = None,
    after: Annotated[
        str | None,
        typer.Option(help="list runs after this moment (ISO, IST if no offset); default now"),
    ] = None,
) -> None:
    """Print the next rebalance times of each portfolio, and the last scheduled one."""
    from rich.console import Console
    from rich.table import Table

    from rebalance.calendar import schedule_for
    from rebalance.domain.market import IST, IST_NAME
    from rebalance.errors import CalendarError, ConfigError, RebalanceError
    from rebalance.portfolio import load_portfolio
    from rebalance.schedule import describe_schedule
    from rebalance.settings import portfolios_dir

    out = wide_console()
    err = Console(stderr=True)
    try:
        files = _resolve(portfolio, folder or portfolios_dir())
        if after is None:
            start = dt.datetime.now(dt.UTC)
        else:
            try:
                start = dt.datetime.fromisoformat(after)
            except ValueError:
                raise ConfigError("--after", [f"not an ISO date/time: {after!r}"]) from None
            if start.tzinfo is None:
                start = start.replace(tzinfo=IST)
    except RebalanceError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None

    bad_input = False
    for path in files:
        try:
            model = load_portfolio(path)
            schedule = schedule_for(model, path)
        except ConfigError as exc:
            # One bad file does not hide the others' schedules.
            err.print(f"[red]{exc}[/red]", markup=True, highlight=False)
            bad_input = True
            continue
        runs, stop = _runs(schedule, start, next_runs)
        try:
            last = schedule.previous_run(start, inclusive=True)
        except CalendarError:
            last = None
        out.print(
            f"[bold]{model.id}[/bold]: {describe_schedule(model.schedule)}",
            markup=True,
            highlight=False,
        )
        last_text = f"{last.astimezone(IST):%a %d %b %Y %H:%M} IST" if last else "none"
        out.print(f"  last_rebalanced_at (scheduled): {last_text}", highlight=False)
        out.print(f"  trading calendar known until: {schedule.calendar.end}", highlight=False)
        table = Table()
        table.add_column("#", justify="right")
        table.add_column("next_rebalance_at (IST)")
        if model.schedule.timezone != IST_NAME:
            table.add_column(model.schedule.timezone)
        for number, run in enumerate(runs, start=1):
            cells = [str(number), f"{run.astimezone(IST):%a %d %b %Y %H:%M}"]
            if model.schedule.timezone != IST_NAME:
                cells.append(f"{run:%a %d %b %Y %H:%M}")
            table.add_row(*cells)
        out.print(table)
        if stop is not None:
            shown = f"only {len(runs)} of {next_runs} runs known" if runs else "no run known"
            err.print(
                f"[bold yellow]warning:[/bold yellow] {model.id} ({path}): {shown}: {stop}",
                markup=True,
                highlight=False,
            )
    if bad_input:
        raise typer.Exit(EXIT_BAD_INPUT)
