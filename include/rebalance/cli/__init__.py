"""The ``rebalance`` command. Each sub-module registers its commands on ``app``.

Heavy imports (pandas, brokers, SQLAlchemy) happen inside the commands, so ``rebalance --help`` is
quick. Exit codes: 0 ok, 2 bad input (the message names the file, row and field), 1 other failure.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="rebalance",
    help="Plan, schedule, approve and review portfolio rebalances.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Plan, schedule, approve and review portfolio rebalances."""


EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


def main() -> None:
    """Entry point of the ``rebalance`` console script."""
    _register_commands()
    app()


def _register_commands() -> None:
    # Importing a command module registers its commands on ``app``.
    from rebalance.cli import (  # noqa: F401
        approve,
        broker,
        calendar,
        db,
        demo,
        drift,
        history,
        ledger,
        local_airflow,
        plan,
        resume,
        schedule,
        tax,
    )


__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILURE", "EXIT_OK", "app", "main"]
