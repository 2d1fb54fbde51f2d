"""``rebalance ledger``: the ledgers of an account shared by several portfolios (docs/accounts.md).

* ``show PORTFOLIO ACCOUNT``: every portfolio's shares and cash in the account, and the open
  differences against the broker's totals as last read;
* ``seed PORTFOLIO ACCOUNT --share SYMBOL=N --cash RUPEES --by NAME``: add the portfolio to the
  account (the broker's totals are those the portfolio's last run read);
* ``resolve PORTFOLIO ACCOUNT (--symbol SYMBOL | --cash-difference) --part PORTFOLIO=N --by NAME
  --reason TEXT``: a person's resolution of one difference; the parts must explain all of it.

Exit codes: 0 ok, 2 bad input (file, account, option, a split that does not add up), 1 other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rebalance.cli import EXIT_BAD_INPUT, EXIT_FAILURE, app
from rebalance.errors import ConfigError, RebalanceError
from rebalance.reports import wide_console

if TYPE_CHECKING:
    from rebalance.history.store import HistoryStore
    from rebalance.portfolio import Account, Portfolio

ledger_app = typer.Typer(help="Ledgers of an account shared by several portfolios.")
app.add_typer(ledger_app, name="ledger")

PortfolioArg = Annotated[Path, typer.Argument(help="the portfolio YAML file")]
AccountArg = Annotated[str, typer.Argument(help="the account's name in that file")]


@contextmanager
def _cli_errors(command: str) -> Iterator[None]:
    try:
        yield
    except RebalanceError as exc:
        typer.echo(f"ledger {command}: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except typer.Exit:
        raise
    except Exception as exc:  # the CLI's last line: a message, not a traceback
        typer.echo(f"ledger {command} failed: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(EXIT_FAILURE) from None


def _account(path: Path, name: str) -> tuple[Portfolio, Account]:
    from rebalance.portfolio import load_portfolio

    portfolio = load_portfolio(path)
    for account in portfolio.accounts:
        if account.name == name:
            if not account.ledger:
                raise ConfigError(
                    str(path), [f"accounts.{name}: no `ledger: true`, so it keeps no ledger"]
                )
            return portfolio, account
    raise ConfigError(str(path), [f"accounts: no account named {name!r}"])


def _store() -> HistoryStore:
    from rebalance.wiring import open_store

    return open_store()


def broker_totals(store: HistoryStore, portfolio: Portfolio, account: str) -> dict[str, Any]:
    """The broker's totals the portfolio's newest run of ``account`` read (the whole account):
    ``{"quantity": {symbol: shares}, "cash": rupees | None, "run": id}``."""
    for run in store.runs(portfolio.id, limit=50):
        if run.account != account or not run.snapshot:
            continue
        whole = run.snapshot.get("ledger")
        if whole:  # the snapshot became the portfolio's part: the totals are kept beside it
            return {"quantity": whole["broker_quantity"], "cash": whole["broker_cash"],
                    "run": run.id}  # fmt: skip
        quantity = {p["symbol"]: int(p["quantity"]) for p in run.snapshot.get("positions", [])}
        return {"quantity": quantity, "cash": run.snapshot.get("cash"), "run": run.id}
    raise ConfigError(
        f"account {account}",
        ["no run has read this account yet: trigger the portfolio's DAG once (its lane stops "
         "before planning, asking for the seed), then seed"],
    )  # fmt: skip


def _pairs(items: list[str] | None, option: str, kind: type = int) -> dict[str, Any]:
    values: dict[str, Any] = {}
    problems = []
    for item in items or []:
        key, sep, raw = item.partition("=")
        try:
            if not sep or not key.strip():
                raise ValueError
            values[key.strip()] = kind(raw)
        except ValueError:
            problems.append(f"{item!r}: expected NAME={kind.__name__}")
    if problems:
        raise ConfigError(option, problems)
    return values


@ledger_app.command("show")
def show(portfolio_file: PortfolioArg, account: AccountArg) -> None:
    """Every portfolio's shares and cash in the account, and the open differences."""
    from rich.table import Table

    from rebalance.ledgers import account_key, ledger_of

    with _cli_errors("show"):
        portfolio, config = _account(portfolio_file, account)
        store = _store()
        key = account_key(config)
        ledger = ledger_of(store, key)
        table = Table(title=f"Ledgers of {key}")
        for column in ("portfolio", "shares", "cash ₹"):
            table.add_column(column)
        for name in ledger.portfolios:
            held = ", ".join(f"{s} {q}" for s, q in ledger.shares(name).items())
            table.add_row(name, held or "-", f"{ledger.cash(name):,.2f}")
        console = wide_console()
        console.print(table if ledger.portfolios else f"no ledger yet for {key}")
        if ledger.portfolios:
            totals = broker_totals(store, portfolio, account)
            result = ledger.reconcile(totals["quantity"], totals["cash"])
            console.print(f"against the broker's totals read by run {totals['run']}:")
            for line in result.lines() or ["no differences"]:
                console.print(f"- {line}")


@ledger_app.command("seed")
def seed(
    portfolio_file: PortfolioArg,
    account: AccountArg,
    by: Annotated[str, typer.Option(help="who seeds it (recorded)")],
    share: Annotated[
        list[str] | None, typer.Option("--share", help="SYMBOL=SHARES this portfolio owns")
    ] = None,
    cash: Annotated[float, typer.Option(help="rupees of the account's cash it owns")] = 0.0,
) -> None:
    """Add the portfolio to the shared account with the shares and cash it owns there."""
    from rebalance.ledgers import account_key, ledger_of
    from rebalance.ledgers import seed as seed_ledger

    with _cli_errors("seed"):
        portfolio, config = _account(portfolio_file, account)
        store = _store()
        # the first portfolio opens the ledger from the broker's totals; a later one takes its
        # part from what no portfolio owns yet
        opening = not ledger_of(store, account_key(config)).entries
        totals = broker_totals(store, portfolio, account) if opening else {"quantity": {}}
        ledger = seed_ledger(
            store,
            account_key(config),
            portfolio.id,
            _pairs(share, "--share"),
            cash,
            broker_holdings=totals["quantity"],
            broker_cash=totals.get("cash") or 0.0,
            by=by,
        )
        typer.echo(
            f"{portfolio.id}: seeded in {ledger.account} with "
            f"{ledger.shares(portfolio.id) or 'no shares'} and ₹{ledger.cash(portfolio.id):,.2f}"
        )


@ledger_app.command("resolve")
def resolve(
    portfolio_file: PortfolioArg,
    account: AccountArg,
    by: Annotated[str, typer.Option(help="who decides (recorded)")],
    reason: Annotated[str, typer.Option(help="why: a manual trade, a bonus issue, ...")],
    part: Annotated[
        list[str], typer.Option("--part", help="PORTFOLIO=SHARES (or rupees) of the difference")
    ],
    symbol: Annotated[str | None, typer.Option(help="the symbol whose shares differ")] = None,
    cash_difference: Annotated[
        bool, typer.Option("--cash-difference", help="resolve the cash difference instead")
    ] = False,
) -> None:
    """Record how one difference splits between the portfolios (and the outside ledger)."""
    from rebalance.ledgers import account_key, ledger_of

    with _cli_errors("resolve"):
        if (symbol is None) == (not cash_difference):
            raise ConfigError("--symbol", ["give either --symbol SYMBOL or --cash-difference"])
        portfolio, config = _account(portfolio_file, account)
        store = _store()
        key = account_key(config)
        ledger = ledger_of(store, key)
        totals = broker_totals(store, portfolio, account)
        result = ledger.reconcile(totals["quantity"], totals["cash"])
        wanted = None if cash_difference else symbol
        found = [d for d in result.differences if d.symbol == wanted]
        if not found:
            raise ConfigError("--symbol", [f"no open difference for {wanted or 'cash'}"])
        split = _pairs(part, "--part", int if wanted else float)
        before = len(ledger.entries)
        ledger = ledger.resolve(found[0], split, by=by, reason=reason, at=datetime.now(UTC))
        from rebalance.history.combined import CombinedStore

        CombinedStore(store.engine).append_entries(key, ledger.entries[before:])
        typer.echo(f"resolved: {found[0].describe()} as {split} ({reason}, by {by})")
