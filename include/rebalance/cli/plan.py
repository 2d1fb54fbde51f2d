"""``rebalance plan``: the plan for a portfolio file and a holdings CSV (no Airflow, broker or DB;
``--targets-from-history`` reads a computed portfolio's stored targets from the history DB).

Exit codes: 0 ok, 2 bad input (portfolio file, holdings file, ``--set`` override, ``--format``),
1 any other failure.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rebalance.cli import EXIT_BAD_INPUT, EXIT_FAILURE, app
from rebalance.reports import wide_console

if TYPE_CHECKING:
    from rebalance.plan import TradePlan
    from rebalance.policy import Policy
    from rebalance.portfolio import Portfolio

FORMATS = ("table", "json")


@app.command()
def plan(
    portfolio: Annotated[Path, typer.Option(help="portfolio YAML file")],
    holdings: Annotated[
        Path | None,
        typer.Option(help="holdings CSV: symbol,exchange,quantity,last_price[,...]"),
    ] = None,
    cash: Annotated[float | None, typer.Option(help="available cash, rupees")] = None,
    accounts_mode: Annotated[
        str,
        typer.Option(
            "--accounts-mode",
            help="separate (one holdings file) | combined (--account-holdings per account)",
        ),
    ] = "separate",
    account_holdings: Annotated[
        list[str] | None,
        typer.Option(
            "--account-holdings",
            help="combined: ACCOUNT=CSV, one per account of the portfolio (repeatable)",
        ),
    ] = None,
    account_cash: Annotated[
        list[str] | None,
        typer.Option("--account-cash", help="combined: ACCOUNT=RUPEES (repeatable)"),
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="policy override key=value (repeatable), e.g. max_trades=5"),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
    prices: Annotated[
        Path | None,
        typer.Option(
            help="daily closes CSV (date,SYMBOL,...) for a risk model (inverse_volatility, "
            "risk_parity); the targets are then the model's, as in a run"
        ),
    ] = None,
    targets_from_history: Annotated[
        bool,
        typer.Option(
            "--targets-from-history",
            help="a computed portfolio: plan on the targets its last completed run stored in "
            "the history database (REBALANCE_DB_URL or the embedded one)",
        ),
    ] = False,
) -> None:
    """Print the trades that rebalance PORTFOLIO from HOLDINGS."""
    from rebalance.errors import ConfigError, RebalanceError
    from rebalance.holdings_file import check_cash, read_holdings_rows
    from rebalance.portfolio import policy_symbol_problems
    from rebalance.portfolio_check import check_portfolio_file

    try:
        if fmt not in FORMATS:
            raise ConfigError("--format", [f"must be one of {', '.join(FORMATS)}, got {fmt!r}"])
        model = check_portfolio_file(portfolio).portfolio  # the DAG's own check of the file
        policy = apply_overrides(model.policy, overrides or [])
        if problems := policy_symbol_problems(policy, model.targets):
            raise ConfigError("--set", problems)
        if accounts_mode != "separate":
            from rebalance.cli.combined import plan_accounts

            plan_accounts(model, policy, accounts_mode, account_holdings, account_cash, fmt)
            return
        if holdings is None:
            raise ConfigError("--holdings", ["a holdings CSV is needed (separate mode)"])
        check_cash(cash)
        rows, _ = read_holdings_rows(holdings)
        # Every input is checked by now; only the planner needs pandas.
        from rebalance.planning import plan_rebalance
        from rebalance.snapshot import check_no_sell_symbols, snapshot_from_rows

        snapshot = snapshot_from_rows(
            rows, source=str(holdings), cash=cash, taken_at=datetime.now(UTC)
        )
        check_no_sell_symbols(snapshot, model.targets, policy.no_sell, str(holdings))
        if targets_from_history and prices is not None:
            raise ConfigError("--targets-from-history", ["give it or --prices, not both"])
        if targets_from_history and model.needs_target_model:
            targets, reasons = stored_targets(model)
        else:
            targets, reasons = cli_targets(model, portfolio, prices)
        result = plan_rebalance(
            snapshot,
            targets,
            policy,
            cash_target=model.cash_target_fraction,
            broker=str(model.accounts[0].broker),
        )
        if reasons:
            from rebalance.target_service import with_target_reasons

            result = with_target_reasons(result, reasons)
    except RebalanceError as exc:
        # Row numbers in every message are the holdings file's line numbers (header = row 1).
        typer.echo(f"{holdings}: {exc}" if _about_holdings(exc) else str(exc), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except Exception as exc:  # the CLI's last line: a message and exit 1, not a traceback
        typer.echo(f"rebalance plan failed: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(EXIT_FAILURE) from None
    if fmt == "json":
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        print_table(result)


def cli_targets(
    portfolio: Portfolio, path: Path, prices: Path | None
) -> tuple[dict[str, float], dict[str, str]]:
    """(targets, replacement reasons): the file's weights, or the model's as a run computes them
    (a risk model reads ``--prices``; without it the lane's broker would, so it is required)."""
    if not portfolio.needs_target_model:
        return portfolio.target_fractions(), {}
    from rebalance.calendar import overrides_for_portfolio, trading_calendar
    from rebalance.errors import ConfigError
    from rebalance.target_service import PriceWindow, compute_targets, file_price_loader

    calendar = trading_calendar(overrides_for_portfolio(portfolio, path))
    if prices is not None:
        loader = file_price_loader(prices, calendar)
    else:

        def loader(symbols: list[str], lookback_days: int) -> PriceWindow:
            raise ConfigError(
                "--prices",
                [
                    f"model {portfolio.targets_section.model.name} needs daily closes: give "
                    "--prices CLOSES.csv (date,SYMBOL,...), or --targets-from-history to plan "
                    "on the targets the last completed run stored"
                ],
            )

    output = compute_targets(portfolio, path, today=datetime.now(UTC).date(), load_prices=loader)
    return output.weights, output.reasons


def stored_targets(portfolio: Portfolio) -> tuple[dict[str, float], dict[str, str]]:
    """(targets, replacement reasons) the portfolio's last completed run stored; the account's
    when the portfolio has one, else any account's. Says on stderr which run and as of when."""
    from rebalance.domain.market import IST
    from rebalance.errors import ConfigError
    from rebalance.history.database import history_url, redacted
    from rebalance.history.target_history import last_completed_targets
    from rebalance.wiring import open_store

    account = portfolio.accounts[0].name if len(portfolio.accounts) == 1 else None
    url = history_url()
    try:
        last = last_completed_targets(open_store(url), portfolio.id, account)
    except Exception as exc:  # unreachable or not migrated: `rebalance db upgrade`
        raise ConfigError(
            "--targets-from-history",
            [f"cannot read the history database {redacted(url)}: {type(exc).__name__}: {exc}"],
        ) from None
    if last is None:
        of = f" of account {account}" if account else ""
        raise ConfigError(
            "--targets-from-history",
            [
                f"no completed run of {portfolio.id}{of} has stored targets in "
                f"{redacted(url)}; give --prices CLOSES.csv instead"
            ],
        )
    as_of = last.as_of or last.created_at.astimezone(IST).date()
    typer.echo(
        f"targets of run {last.run_id} ({last.account}): the {last.model} model as of {as_of}",
        err=True,
    )
    return dict(last.weights), dict(last.record.get("reasons") or {})


def _about_holdings(exc: Exception) -> bool:
    """Planner input errors name the snapshot; on the CLI the snapshot is the holdings file.

    Before the planner is imported (bad input is refused first) no error can be the planner's.
    """
    import sys

    book = sys.modules.get("rebalance.planning.book")
    return book is not None and str(exc).startswith(book.SNAPSHOT_SOURCE)


def apply_overrides(policy: Policy, items: list[str]) -> Policy:
    """``key=value`` strings over ``policy``; values are YAML scalars or lists (``no_buy=[A, B]``).
    Raises ConfigError naming the override (unknown key, bad value)."""
    import yaml
    from pydantic import ValidationError

    from rebalance.errors import ConfigError, validation_problems
    from rebalance.policy import Policy

    values: dict[str, Any] = {}
    problems = []
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"{item!r}: expected key=value")
        elif key not in Policy.model_fields:
            problems.append(f"{key}: unknown policy key")
        else:
            try:
                values[key] = yaml.safe_load(raw) if raw.strip() else None
            except yaml.YAMLError:
                problems.append(f"{key}: cannot read value {raw!r}")
    if not problems:
        try:
            return policy.with_overrides(values)
        except ValidationError as exc:
            problems += validation_problems(exc)
    raise ConfigError("--set", problems)


def print_table(result: TradePlan) -> None:
    """The plan as rich tables: orders, positions (with why a symbol was left alone), summary."""
    from rich.table import Table

    console = wide_console()
    orders = Table(title="Orders", show_lines=False)
    for column in ("side", "symbol", "qty", "price ₹", "notional ₹", "charges ₹", "reasons"):
        orders.add_column(column, justify="right" if "₹" in column or column == "qty" else "left")
    for o in result.orders:
        orders.add_row(
            str(o.side),
            o.symbol,
            str(o.quantity),
            f"{o.price:,.2f}",
            f"{o.notional:,.2f}",
            f"{o.charges:,.2f}",
            ", ".join(o.reasons),
        )
    positions = Table(title="Positions")
    for column in ("symbol", "before", "target", "after", "qty before", "qty after", "left alone"):
        positions.add_column(
            column, justify="left" if column in ("symbol", "left alone") else "right"
        )
    for p in result.positions:
        positions.add_row(
            p.symbol,
            f"{p.weight_before:.2%}",
            f"{p.target_weight:.2%}",
            f"{p.weight_after:.2%}",
            str(p.quantity_before),
            str(p.quantity_after),
            ", ".join(p.skipped),
        )
    console.print(orders if result.orders else "[bold]No orders.[/bold]")
    console.print(positions)
    console.print(_summary_table(result))
    for note in result.notes:
        console.print(f"- {note}")


def _summary_table(result: TradePlan) -> Any:
    from rich.table import Table

    from rebalance.domain.solver import solver_words

    s = result.summary
    table = Table(title="Summary", show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("portfolio value", f"₹{s.portfolio_value:,.2f}"),
        ("budget", f"₹{s.budget_inr:,.2f}"),
        ("buys / sells", f"₹{s.buy_value:,.2f} / ₹{s.sell_value:,.2f}"),
        ("turnover", f"{s.turnover_pct:.2f}%"),
        ("budget used", f"{s.budget_used_pct:.2f}%"),
        ("max drift before → after", f"{s.max_drift_before:.2%} → {s.max_drift_after:.2%}"),
        ("total drift before → after", f"{s.total_drift_before:.2%} → {s.total_drift_after:.2%}"),
        ("trades", str(s.trades)),
        ("estimated charges", f"₹{s.estimated_charges:,.2f}"),
    ]
    if s.cash_before is not None and s.cash_after is not None:
        rows.append(("cash before → after", f"₹{s.cash_before:,.2f} → ₹{s.cash_after:,.2f}"))
    rows.append(("plan made by", solver_words(s.solver)))
    for metric, value in rows:
        table.add_row(metric, value)
    return table
