"""``rebalance plan --accounts-mode combined``: one plan for a portfolio's accounts together.

One holdings file per account (``--account-holdings ACCOUNT=CSV``, every account of the
portfolio once) and optionally each account's cash (``--account-cash ACCOUNT=RUPEES``): the
accounts are joined by ISIN (``accounts.combine``), planned as one portfolio and the plan split
per account (``combined.plan_combined``, as the DAG's ``combined.plan_trades`` does).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from rebalance.errors import ConfigError
from rebalance.reports import wide_console

if TYPE_CHECKING:
    from rebalance.combined import CombinedPlan
    from rebalance.history.combined import CombinedRunRecord
    from rebalance.policy import Policy
    from rebalance.portfolio import Portfolio


def _pairs(items: list[str] | None, option: str) -> dict[str, str]:
    """``NAME=VALUE`` strings as a dict; ConfigError naming the option for a malformed one."""
    found: dict[str, str] = {}
    problems = []
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            problems.append(f"{item!r}: expected ACCOUNT=VALUE")
        elif name.strip() in found:
            problems.append(f"{name.strip()}: given twice")
        else:
            found[name.strip()] = value.strip()
    if problems:
        raise ConfigError(option, problems)
    return found


def plan_accounts(
    model: Portfolio,
    policy: Policy,
    mode: str,
    account_holdings: list[str] | None,
    account_cash: list[str] | None,
    fmt: str,
) -> None:
    """Plan ``model``'s accounts together and print the plan and its split."""
    from rebalance.accounts.combine import AccountHoldings
    from rebalance.combined import plan_combined
    from rebalance.domain.market import Holding, Quote
    from rebalance.holdings_file import check_cash, read_holdings_rows

    if mode != "combined":
        raise ConfigError("--accounts-mode", [f"must be separate or combined, got {mode!r}"])
    files = _pairs(account_holdings, "--account-holdings")
    cash = _pairs(account_cash, "--account-cash")
    names = [a.name for a in model.accounts]
    problems = [
        f"{n}: no holdings file (--account-holdings {n}=CSV)" for n in names if n not in files
    ]
    problems += [f"{n}: not an account of the portfolio ({', '.join(names)})" for n in files
                 if n not in names]  # fmt: skip
    problems += [f"{n}: not an account of the portfolio" for n in cash if n not in names]
    if len(names) < 2:
        problems.append("combined needs a portfolio with two or more accounts")
    if problems:
        raise ConfigError("--account-holdings", problems)
    accounts: list[AccountHoldings] = []
    quotes: dict[str, Quote] = {}
    for account in model.accounts:
        money: float | None = None
        if account.name in cash:
            try:
                money = float(cash[account.name])
            except ValueError:
                raise ConfigError(
                    "--account-cash", [f"{account.name}: {cash[account.name]!r} is not a number"]
                ) from None
            check_cash(money, f"--account-cash {account.name}")
        rows, _ = read_holdings_rows(Path(files[account.name]))
        held = []
        for row in rows:
            price = float(row["last_price"])
            quotes.setdefault(row["symbol"], Quote(row["symbol"], row["exchange"], price))
            held.append(
                Holding(
                    symbol=row["symbol"],
                    exchange=row["exchange"],
                    quantity=int(row["quantity"]),
                    sellable_quantity=int(row.get("sellable_quantity") or row["quantity"]),
                    average_price=float(row.get("average_price") or 0.0),
                    last_price=price,
                    isin=row.get("isin") or None,
                    acquired_on=row.get("acquired_on"),
                )
            )
        accounts.append(AccountHoldings(account.name, str(account.broker), tuple(held), money))
    result = plan_combined(
        accounts,
        quotes,
        model.target_fractions(),
        policy,
        taken_at=datetime.now(UTC),
        cash_target=model.cash_target_fraction,
    )
    if fmt == "json":
        typer.echo(json.dumps(combined_json(result), indent=2, default=str))
        return
    print_combined(result)


def combined_json(result: CombinedPlan) -> dict[str, Any]:
    """The JSON of ``rebalance plan --accounts-mode combined --format json``."""
    return {
        "accounts_mode": "combined",
        "plan": result.plan.to_dict(),
        "plan_hash": result.plan.plan_hash,
        "allocation": result.allocation.to_dict(),
        "replanned": result.replanned,
        "notes": list(result.notes),
    }


def print_combined(result: CombinedPlan) -> None:
    """The whole's plan (the usual tables), then the split per account."""
    from rich.markdown import Markdown

    from rebalance.cli.plan import print_table
    from rebalance.combined import split_markdown

    print_table(result.plan)
    console = wide_console()
    console.print(Markdown(split_markdown(result.allocation.to_dict(), result.replanned)))
    for note in result.notes:
        console.print(f"- {note}")


def combined_runs_table(records: list[CombinedRunRecord]) -> Any:
    """Combined runs, newest first: id, created, status, the whole's orders, split, reason."""
    from rich.table import Table

    table = Table(title="Combined runs (accounts_mode: combined)")
    for column in ("id", "created", "portfolio", "status", "orders", "split", "parts", "why"):
        table.add_column(column)
    for r in records:
        orders = (r.allocation or {}).get("orders", [])
        split: dict[str, int] = {}
        for o in orders:
            split[o["account"]] = split.get(o["account"], 0) + 1
        table.add_row(
            str(r.id),
            f"{r.created_at:%Y-%m-%d %H:%M}",
            r.portfolio_id,
            r.status + (" (re-planned per account)" if r.replanned else ""),
            str(len((r.plan or {}).get("orders", []))),
            ", ".join(f"{a} {n}" for a, n in split.items()) or "-",
            ", ".join(f"{a}: run {run}" for a, run in r.parts.items()),
            r.status_reason or "",
        )
    return table


def print_combined_run(record: CombinedRunRecord) -> None:
    """One combined run: the split per account and what each account's lane did."""
    from rich.markdown import Markdown

    from rebalance.combined import split_markdown

    console = wide_console()
    console.print(
        f"[bold]combined run {record.id}[/bold] of {record.portfolio_id} ({record.mode}): "
        f"{record.status}; approval {record.approval_decision or '-'} by "
        f"{record.approved_by or '-'}"
    )
    console.print(Markdown(split_markdown(record.allocation or {}, record.replanned)))
    for account, result in ((record.outcome or {}).get("accounts") or {}).items():
        undone = ", ".join(
            f"{u['side']} {u['quantity']} {u['symbol']}" for u in result["left_undone"]
        )
        console.print(
            f"- {account} (run {result['run_id']}): {result['status']}, "
            f"{result['filled_shares']} shares filled; left undone: {undone or 'nothing'}"
        )
