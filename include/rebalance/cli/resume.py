"""``rebalance resume RUN [--settle-only]`` and ``rebalance settle RUN``: finish or close a
placement that stopped part-way (a crash, a lost worker, the history database down, an expired
login), in the same run.

``resume`` sends the legs of the approved plan that were never sent, with the same order tags
(so nothing already at the broker is sent again), after the price-move guard and only within the
approval's validity (live: the approval cut-off of that day; paper: the approval timeout). It is
never a second run: the run record, its legs and its tags stay the same. ``settle`` (or
``resume --settle-only``) sends nothing: it reads the broker's order book, records what it says
and closes the run for good.

The broker is built as the DAG's task would build it: the account's Airflow connection (or
``AIRFLOW_CONN_<ID>``). Exit codes: 0 done (the plan finished, or the run settled); 2 bad input
(no such run, nothing to resume, portfolio file not found, approval no longer valid, prices
moved); 1 other failure (database or broker unreachable; a resume that left legs never sent or
of unknown outcome).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rebalance.cli import EXIT_BAD_INPUT, EXIT_FAILURE, app

if TYPE_CHECKING:
    from rebalance.history.records import RunRecord
    from rebalance.history.store import HistoryStore


def _store() -> HistoryStore:
    from rebalance.wiring import open_store

    return open_store()


def _portfolio_file(record: RunRecord, given: Path | None) -> str:
    """The portfolio file of a run: ``--portfolio``, else the one in the portfolios folder
    whose id is the run's."""
    from rebalance.errors import ConfigError
    from rebalance.portfolio import load_portfolio, portfolio_files
    from rebalance.settings import portfolios_dir

    if given is not None:
        return str(given)
    folder = portfolios_dir()
    for path in portfolio_files(folder):
        try:
            if load_portfolio(path).id == record.portfolio_id:
                return str(path)
        except ConfigError:
            continue
    raise LookupError(
        f"no portfolio file with id {record.portfolio_id!r} in {folder}: pass --portfolio FILE"
    )


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _run(run: int, portfolio: Path | None, settle_only: bool) -> None:
    from rebalance.history.store import RunLocked, RunNotFound
    from rebalance.lane import LaneStopped, lane_of_run
    from rebalance.resume import resume_run
    from rebalance.wiring import broker_for

    command = "settle" if settle_only else "resume"
    try:
        store = _store()
        record = store.run(run)
    except RunNotFound:
        raise _fail(f"{command}: no rebalance run {run}", EXIT_BAD_INPUT) from None
    except Exception as exc:  # the database is unreachable or not migrated
        raise _fail(f"{command}: cannot read the history database: {exc}", EXIT_FAILURE) from None
    try:
        lane = lane_of_run(record, _portfolio_file(record, portfolio))
        broker = broker_for(lane)
        outcome = resume_run(lane, store, broker, settle_only=settle_only)
    except (LookupError, LaneStopped) as exc:
        # NotResumable, no portfolio file, a missing connection, approval lapsed, prices moved.
        raise _fail(f"{command} {run}: {exc}", EXIT_BAD_INPUT) from None
    except RunLocked as exc:
        raise _fail(f"{command} {run}: {exc}; try again later", EXIT_FAILURE) from None
    typer.echo(f"run {run}: {outcome['status']}: {outcome['reason']}")
    if outcome["unfinished"] and not settle_only:
        raise _fail(f"run {run}: {outcome['unfinished']}", EXIT_FAILURE)


PortfolioOption = Annotated[
    Path | None,
    typer.Option(
        "--portfolio",
        "-p",
        help="the run's portfolio file (default: found by id in the portfolios folder)",
        exists=True,
        dir_okay=False,
    ),
]


@app.command("resume")
def resume(
    run: Annotated[int, typer.Argument(help="the history run id (rebalance history)")],
    portfolio: PortfolioOption = None,
    settle_only: Annotated[
        bool,
        typer.Option("--settle-only", help="send nothing: settle from the book and close"),
    ] = False,
) -> None:
    """Finish an interrupted placement of RUN: send its never-sent legs (same run, same tags)."""
    _run(run, portfolio, settle_only)


@app.command("settle")
def settle(
    run: Annotated[int, typer.Argument(help="the history run id (rebalance history)")],
    portfolio: PortfolioOption = None,
) -> None:
    """Close RUN from the broker's order book (a run left placing or interrupted): send nothing."""
    _run(run, portfolio, settle_only=True)


@app.command("mark-placed")
def mark_placed(
    run: Annotated[int, typer.Argument(help="the history run id (rebalance history)")],
    by: Annotated[str, typer.Option("--by", help="who placed the basket")] = "cli",
) -> None:
    """Say the basket exported for RUN (execution.mode: manual_queue) is placed: the waiting
    place_orders then reconciles the account's holdings against the plan."""
    import getpass

    from rebalance.execution import mark_placed as mark
    from rebalance.history.status import IllegalTransition
    from rebalance.history.store import RunNotFound

    try:
        mark(_store(), run, by if by != "cli" else getpass.getuser())
    except RunNotFound:
        raise _fail(f"mark-placed: no rebalance run {run}", EXIT_BAD_INPUT) from None
    except IllegalTransition as exc:
        raise _fail(f"mark-placed {run}: {exc}", EXIT_BAD_INPUT) from None
    typer.echo(f"run {run}: basket marked placed; place_orders reconciles the holdings now")
