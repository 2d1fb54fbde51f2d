"""``rebalance calendar update`` / ``rebalance calendar check``: keep the trading calendar ahead.

* ``update --from LIST``: the exchange's holiday list (NSE's holiday master JSON, or a circular's
  table as CSV) into the holiday override file, checked against exchange_calendars' XBOM;
* ``check``: how many trading days each portfolio's calendar has left (the maintenance DAG runs
  the same check daily and alerts).

Exit codes: 0 ok; 1 ``check`` found a calendar running out (or run out), or another failure;
2 bad input (the message names the file, row and field).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from rebalance.cli import EXIT_BAD_INPUT, EXIT_FAILURE, app

calendar_app = typer.Typer(
    help="The trading calendar: add the exchange's holiday list, check how far it reaches.",
    no_args_is_help=True,
)
app.add_typer(calendar_app, name="calendar")

DEFAULT_OUTPUT = "calendars/nse_holidays.yaml"  # relative to the portfolios folder


@calendar_app.command("update")
def update(
    from_file: Annotated[
        Path,
        typer.Option(
            "--from", help="NSE holiday master JSON, or a circular's CSV (date, description)"
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(help=f"override file to write (default: <portfolios>/{DEFAULT_OUTPUT})"),
    ] = None,
    year: Annotated[
        int | None, typer.Option(help="the list's year (default: from the list)")
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="the circular's number and date, kept in the file")
    ] = None,
    accept_removals: Annotated[
        bool,
        typer.Option(
            help="also reopen weekdays exchange_calendars marks closed that the list leaves out"
        ),
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="print the comparison, write nothing")] = False,
) -> None:
    """Turn the exchange's holiday list into the holiday override file."""
    from rebalance.calendar import load_overrides
    from rebalance.calendar_update import (
        compare_with_library,
        merged_overrides,
        overrides_yaml,
        read_holiday_list,
    )
    from rebalance.errors import ConfigError
    from rebalance.settings import portfolios_dir

    target = output or portfolios_dir() / DEFAULT_OUTPUT
    try:
        listed = read_holiday_list(from_file)
        result = compare_with_library(listed, str(from_file), year)
        existing = load_overrides(target) if target.exists() else None
        note = source or f"{from_file.name} (read {dt.date.today()})"
        merged = merged_overrides(
            result, existing, source_note=note, accept_removals=accept_removals
        )
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    for line in result.report():
        typer.echo(line)
    if result.removals and not accept_removals:
        typer.echo(
            f"  ! {len(result.removals)} day(s) stay closed as exchange_calendars has them (a "
            "later circular may have added them); --accept-removals reopens them"
        )
    header = (
        "Holiday override file written by `rebalance calendar update` (docs/schedule.md).\n"
        f"Last update: {note}. Edit by hand only with the exchange's circular at hand."
    )
    if dry_run:
        typer.echo(f"(dry run) {target} would cover until {merged.covers_until}")
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(overrides_yaml(merged, header), encoding="utf-8")
    typer.echo(f"wrote {target}: known until {merged.covers_until}")
    typer.echo(
        f"point each portfolio at it: holiday_overrides: {_relative_hint(target)} "
        "(then: rebalance calendar check)"
    )


def _relative_hint(target: Path) -> str:
    from rebalance.settings import portfolios_dir

    try:
        return str(target.resolve().relative_to(portfolios_dir().resolve()))
    except ValueError:
        return str(target)


@calendar_app.command("check")
def check(
    days: Annotated[
        int | None,
        typer.Option(
            help="warn this many trading days ahead (default: env "
            "REBALANCE_CALENDAR_WARN_TRADING_DAYS, else 10)",
            min=1,
            max=250,
        ),
    ] = None,
    today: Annotated[
        str | None, typer.Option(help="check as of this date, YYYY-MM-DD (default: today)")
    ] = None,
    folder: Annotated[
        Path | None, typer.Option("--portfolios", help="portfolio folder (default: portfolios/)")
    ] = None,
) -> None:
    """How far each portfolio's trading calendar reaches; exit 1 when one runs out soon."""
    from rich.table import Table

    from rebalance.calendar_watch import HorizonStatus, check_calendars
    from rebalance.domain.market import IST
    from rebalance.errors import ConfigError
    from rebalance.reports import wide_console
    from rebalance.settings import portfolios_dir

    try:
        now = (
            dt.datetime.combine(dt.date.fromisoformat(today), dt.time(8, 0), IST)
            if today
            else dt.datetime.now(dt.UTC)
        )
    except ValueError:
        typer.echo(f"--today: {today!r} is not a date (YYYY-MM-DD)", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    try:
        horizons = check_calendars(folder or portfolios_dir(), now, days)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    table = Table(title=f"Trading calendar as of {now.astimezone(IST):%Y-%m-%d}")
    for column in ("portfolio", "status", "known until", "trading days left", "next run (IST)"):
        table.add_column(column)
    for h in horizons:
        table.add_row(
            h.portfolio,
            str(h.status),
            str(h.calendar_end or "-"),
            "-" if h.trading_days_left is None else str(h.trading_days_left),
            f"{h.next_run.astimezone(IST):%a %d %b %Y %H:%M}" if h.next_run else "-",
        )
    console = wide_console()
    console.print(table)
    for h in horizons:
        if h.needs_action:
            typer.echo(f"{h.status.upper()}: {h.message}", err=True)
    if any(h.status in (HorizonStatus.WARNING, HorizonStatus.EXPIRED) for h in horizons):
        raise typer.Exit(EXIT_FAILURE)
