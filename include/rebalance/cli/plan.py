"""``rebalance plan``: print the plan for a portfolio file and a holdings CSV (no Airflow, broker or DB)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from rebalance.cli import EXIT_BAD_INPUT, app


@app.command()
def plan(
    portfolio: Annotated[Path, typer.Option(help="portfolio YAML file")],
    holdings: Annotated[Path, typer.Option(help="holdings CSV: symbol,exchange,quantity,last_price,...")],
    cash: Annotated[float | None, typer.Option(help="available cash, rupees")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Print the trades that rebalance PORTFOLIO from HOLDINGS."""
    from rebalance.errors import RebalanceError
    from rebalance.planning import plan_rebalance
    from rebalance.portfolio import load_portfolio
    from rebalance.snapshot import read_holdings_csv

    try:
        model = load_portfolio(portfolio)
        snapshot = read_holdings_csv(holdings, cash=cash, taken_at=datetime.now(UTC))
    except RebalanceError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    result = plan_rebalance(
        snapshot, model.target_fractions(), model.policy, cash_target=model.cash_target_fraction
    )
    if fmt == "json":
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        for order in result.orders:
            typer.echo(f"{order.side:4} {order.quantity:>6} {order.symbol:<12} {order.notional:>12,.2f}")
