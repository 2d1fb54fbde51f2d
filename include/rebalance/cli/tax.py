"""``rebalance tax``: realised gains by term, the exemption used and the estimated tax of a
financial year, from broker tradebooks (no Airflow, broker or database) or, with ``--portfolio``,
from the lots in history; ``rebalance tax import`` stores a tradebook's trades (and corporate
actions, FMVs) as an account's lots, ``rebalance tax declare`` the gains realised elsewhere.

Exit codes: 0 ok, 2 bad input (the message names the file, line and field), 1 other failure.
An estimate from the trades given, not tax advice: docs/tax.md says what it does not do.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rebalance.cli import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, app
from rebalance.reports import wide_console

if TYPE_CHECKING:
    from rebalance.portfolio import Portfolio
    from rebalance.tax.gains import DeclaredGains
    from rebalance.tax.report import TaxReport
    from rebalance.tax.rules import FinancialYear, TaxSettings

FORMATS = ("table", "json")

BrokerOption = Annotated[
    str | None, typer.Option(help="zerodha | angelone; default: detected from the file")
]
ActionsOption = Annotated[
    Path | None,
    typer.Option(help="CSV of splits and bonuses: symbol,action,date,new,old[,quantity]"),
]
FmvOption = Annotated[
    Path | None,
    typer.Option(help="CSV symbol,fmv: the FMV of 31 January 2018 per share (pre-2018 lots)"),
]
SymbolMapOption = Annotated[
    Path | None,
    typer.Option(help="CSV scrip,symbol: AngelOne Scrip/Contract text -> trading symbol"),
]

tax_app = typer.Typer(
    help="Capital-gains tax: a year's realised gains and estimated tax; lots in history.",
    pretty_exceptions_enable=False,
)
app.add_typer(tax_app, name="tax")


@tax_app.callback(invoke_without_command=True)
def tax_command(
    ctx: typer.Context,
    tradebook: Annotated[
        list[Path] | None,
        typer.Option(help="tradebook file (Zerodha Console CSV, AngelOne .xlsx/.csv); repeatable"),
    ] = None,
    portfolio: Annotated[
        str | None,
        typer.Option(help="portfolio file or id: the year of its accounts from history"),
    ] = None,
    fy: Annotated[
        str | None, typer.Option(help="financial year, e.g. 2026-27; default the current one")
    ] = None,
    account: Annotated[
        str, typer.Option(help="the demat account the tradebooks belong to (FIFO is per account)")
    ] = "main",
    broker: BrokerOption = None,
    declared_gains: Annotated[
        str | None,
        typer.Option(
            help="gains realised elsewhere this year, rupees, signed: stcg=50000,ltcg=-2000"
        ),
    ] = None,
    corporate_actions: ActionsOption = None,
    fmv: FmvOption = None,
    holdings: Annotated[
        Path | None,
        typer.Option(help="holdings CSV (symbol, quantity): the lots are checked against it"),
    ] = None,
    symbol_map: SymbolMapOption = None,
    surcharge_pct: Annotated[
        float, typer.Option(help="your surcharge rate in percent (capped at 15 for these gains)")
    ] = 0.0,
    not_modelled: Annotated[
        list[str] | None,
        typer.Option(help="SYMBOL=reason: a non-equity unit whose tax is not estimated"),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Print the realised gains by term, the exemption used and the estimated tax of a year."""
    if ctx.invoked_subcommand is not None:
        return
    if portfolio is not None:
        _from_history(portfolio, fy, fmt)
        return
    from rebalance.errors import ConfigError, RebalanceError
    from rebalance.tax.report import build_report
    from rebalance.tax.rules import FIRST_MODELLED_SALE
    from rebalance.tax.tradebook import (
        read_corporate_actions,
        read_symbol_map,
        read_symbol_values,
        read_tradebook,
        replay,
    )

    try:
        if fmt not in FORMATS:
            raise ConfigError("--format", [f"must be one of {', '.join(FORMATS)}, got {fmt!r}"])
        if not tradebook:
            raise ConfigError("rebalance tax", ["give --tradebook FILE or --portfolio X"])
        year = _financial_year(fy)
        if year.first_day < FIRST_MODELLED_SALE:
            raise ConfigError("--fy", [f"years before {FIRST_MODELLED_SALE.year}-19 not modelled"])
        declared = _declared(declared_gains)
        settings = _settings(surcharge_pct, not_modelled or [])
        mapping = read_symbol_map(_existing(symbol_map)) if symbol_map else None
        trades = []
        skipped: list[str] = []
        for path in tradebook:
            result = read_tradebook(path, account, broker, mapping)
            trades += result.trades
            skipped += result.skipped
        actions = read_corporate_actions(_existing(corporate_actions)) if corporate_actions else []
        fmv_values = read_symbol_values(_existing(fmv), "fmv") if fmv else {}
        broker_quantities = None
        if holdings:
            held = read_symbol_values(_existing(holdings), "quantity", integer=True)
            broker_quantities = {(account, s): int(q) for s, q in held.items()}
        ledger = replay(trades, actions, fmv_values)
        result_report = build_report(ledger, year, settings, declared, broker_quantities)
    except RebalanceError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except Exception as exc:  # the CLI's last line: a message and exit 1, not a traceback
        typer.echo(f"rebalance tax failed: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(EXIT_FAILURE) from None
    if fmt == "json":
        data = result_report.to_dict()
        data["skipped_rows"] = skipped
        typer.echo(json.dumps(data, indent=2))
    else:
        _print(result_report, skipped)


def _existing(path: Path | None) -> Path:
    from rebalance.errors import InputDataError

    assert path is not None
    if not path.is_file():
        raise InputDataError(str(path), ["no such file"])
    return path


def _financial_year(text: str | None) -> FinancialYear:
    from rebalance.domain.market import IST
    from rebalance.errors import ConfigError
    from rebalance.tax.rules import FinancialYear

    if text is None:
        return FinancialYear.of(dt.datetime.now(IST).date())
    try:
        return FinancialYear.parse(text)
    except ValueError as exc:
        raise ConfigError("--fy", [str(exc)]) from None


def _declared(text: str | None) -> DeclaredGains | None:
    """``stcg=50000,ltcg=-2000`` -> DeclaredGains; ConfigError naming the bad part."""
    from rebalance.errors import ConfigError
    from rebalance.tax.gains import DeclaredGains

    if not text:
        return None
    values = {"stcg": 0.0, "ltcg": 0.0}
    problems = []
    for part in text.split(","):
        key, sep, raw = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in values:
            problems.append(f"{part.strip()!r}: expected stcg=RUPEES or ltcg=RUPEES")
            continue
        try:
            values[key] = float(raw.replace("_", "").strip())
        except ValueError:
            problems.append(f"{key}: not a number: {raw.strip()!r}")
    if problems:
        raise ConfigError("--declared-gains", problems)
    return DeclaredGains(short_term=values["stcg"], long_term=values["ltcg"])


def _settings(surcharge_pct: float, extra: list[str]) -> TaxSettings:
    from rebalance.errors import ConfigError
    from rebalance.tax.rules import NOT_MODELLED_DEFAULT, TaxSettings

    listed = dict(NOT_MODELLED_DEFAULT)
    problems = []
    for item in extra:
        symbol, sep, reason = item.partition("=")
        if not sep or not symbol.strip() or not reason.strip():
            problems.append(f"{item!r}: expected SYMBOL=reason")
        else:
            listed[symbol.strip().upper()] = reason.strip()
    if not 0 <= surcharge_pct <= 100:
        problems.append(f"--surcharge-pct: must be between 0 and 100, got {surcharge_pct}")
    if problems:
        raise ConfigError("--not-modelled / --surcharge-pct", problems)
    return TaxSettings(surcharge_pct=surcharge_pct, not_modelled=tuple(listed.items()))


def _print(report: TaxReport, skipped: list[str]) -> None:
    from rich.table import Table

    from rebalance.tax.rules import Term

    console = wide_console()
    sells = Table(title=f"Sells in FY {report.fy.label} (FIFO per account)")
    for column in ("date", "account", "symbol", "qty", "price ₹", "short-term ₹", "long-term ₹"):
        sells.add_column(column, justify="right" if "₹" in column or column == "qty" else "left")
    sells.add_column("est. tax ₹", justify="right")
    sells.add_column("lots consumed")
    for sell, tax in report.sells:
        lots = "; ".join(
            f"{p.quantity} from {p.acquired_on.isoformat()} ({p.holding_days} d, {p.term}"
            + (", grandfathered" if p.grandfathered else "")
            + ")"
            for p in sell.pieces
        )
        sells.add_row(
            sell.sold_on.isoformat(),
            sell.account,
            sell.symbol,
            str(sell.quantity),
            f"{sell.price:,.2f}",
            f"{sell.gain_by_term(Term.SHORT):,.2f}",
            f"{sell.gain_by_term(Term.LONG):,.2f}",
            f"{tax:,.2f}",
            lots,
        )
    console.print(sells if report.sells else "[bold]No taxable sells this year.[/bold]")
    y = report.year
    summary = Table(title=f"FY {report.fy.label}", show_header=False)
    summary.add_column("item")
    summary.add_column("₹", justify="right")
    for item, value in (
        ("short-term gains / losses", f"{y.short_term_gains:,.2f} / {y.short_term_losses:,.2f}"),
        ("long-term gains / losses", f"{y.long_term_gains:,.2f} / {y.long_term_losses:,.2f}"),
        ("short-term taxable", f"{y.short_term_taxable:,.2f}"),
        ("long-term after set-off", f"{y.long_term_after_set_off:,.2f}"),
        ("exemption used / left", f"{y.exemption_used:,.2f} / {y.exemption_left:,.2f}"),
        ("long-term taxable", f"{y.long_term_taxable:,.2f}"),
        ("tax + surcharge + cess", f"{y.tax:,.2f} + {y.surcharge:,.2f} + {y.cess:,.2f}"),
        ("estimated tax", f"{y.total:,.2f}"),
    ):
        summary.add_row(item, value)
    console.print(summary)
    for symbol, why in sorted(report.no_tax_data.items()):
        console.print(f"- no tax data for {symbol}: {why}")
    for symbol, why in sorted(report.not_modelled.items()):
        console.print(f"- {symbol}: {why}")
    for note in [*report.notes, *skipped]:
        console.print(f"- {note}")


def _from_history(portfolio: str, fy: str | None, fmt: str) -> None:
    """``rebalance tax --portfolio X``: the year of the portfolio's accounts, from history."""
    from rebalance.errors import ConfigError, RebalanceError
    from rebalance.tax.rules import FIRST_MODELLED_SALE
    from rebalance.tax_history import year_report
    from rebalance.wiring import open_store

    try:
        if fmt not in FORMATS:
            raise ConfigError("--format", [f"must be one of {', '.join(FORMATS)}, got {fmt!r}"])
        year = _financial_year(fy)
        if year.first_day < FIRST_MODELLED_SALE:
            raise ConfigError("--fy", [f"years before {FIRST_MODELLED_SALE.year}-19 not modelled"])
        accounts = [a.name for a in _portfolio(portfolio).accounts]
    except RebalanceError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    try:
        report = year_report(open_store().engine, accounts, year)
    except Exception as exc:  # the database is unreachable or not migrated
        typer.echo(f"rebalance tax: cannot read the history database: {exc}", err=True)
        raise typer.Exit(EXIT_FAILURE) from None
    if fmt == "json":
        data = report.to_dict()
        data["accounts"] = accounts
        data["per_run"] = _per_run(report)
        typer.echo(json.dumps(data, indent=2))
    else:
        _print(report, [f"accounts: {', '.join(accounts)}"])


def _per_run(report: TaxReport) -> dict[str, float]:
    """Estimated tax added per pipeline run (its fills' sources name the run), rupees."""
    out: dict[str, float] = {}
    for sell, tax in report.sells:
        runs = sorted({part.split(" leg ")[0] for part in sell.source.split(", ")})
        label = ", ".join(r for r in runs if r.startswith("run ")) or "imported"
        out[label] = round(out.get(label, 0.0) + tax, 2)
    return out


def _portfolio(text: str) -> Portfolio:
    """A portfolio file, or the portfolio of that id in the portfolios folder."""
    from rebalance.errors import ConfigError
    from rebalance.portfolio import load_portfolio, portfolio_files
    from rebalance.settings import portfolios_dir

    if Path(text).is_file():
        return load_portfolio(text)
    for path in portfolio_files(portfolios_dir()):
        try:
            found = load_portfolio(path)
        except ConfigError:
            continue
        if found.id == text:
            return found
    raise ConfigError("--portfolio", [f"{text!r}: no such file, nor a portfolio of that id"])


@tax_app.command("import")
def import_command(
    tradebook: Annotated[
        list[Path], typer.Argument(help="tradebook file(s): Zerodha Console CSV, AngelOne xlsx/csv")
    ],
    account: Annotated[str, typer.Option(help="the portfolio's account these trades belong to")],
    broker: BrokerOption = None,
    symbol_map: SymbolMapOption = None,
    corporate_actions: ActionsOption = None,
    fmv: FmvOption = None,
) -> None:
    """Store a tradebook's trades as the account's lots (re-importing adds nothing twice)."""
    from rebalance.errors import RebalanceError
    from rebalance.history.tax_store import TaxStore
    from rebalance.tax.tradebook import (
        read_corporate_actions,
        read_symbol_map,
        read_symbol_values,
        read_tradebook,
    )
    from rebalance.wiring import open_store

    try:
        mapping = read_symbol_map(_existing(symbol_map)) if symbol_map else None
        results = [read_tradebook(path, account, broker, mapping) for path in tradebook]
        actions = read_corporate_actions(_existing(corporate_actions)) if corporate_actions else []
        fmv_values = read_symbol_values(_existing(fmv), "fmv") if fmv else {}
    except RebalanceError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    trades = [t for r in results for t in r.trades]
    try:
        store = TaxStore(open_store().engine)
        added = store.add_trades(trades)
        added_actions = store.add_actions(actions)
        store.set_fmv(fmv_values)
    except Exception as exc:  # the database is unreachable or not migrated
        typer.echo(f"rebalance tax import: cannot write the history database: {exc}", err=True)
        raise typer.Exit(EXIT_FAILURE) from None
    typer.echo(
        f"account {account}: {added} new trades of {len(trades)} read "
        f"({len(trades) - added} already stored); {added_actions} corporate actions; "
        f"{len(fmv_values)} FMVs"
    )
    for note in (n for r in results for n in r.skipped):
        typer.echo(f"- {note}")
    raise typer.Exit(EXIT_OK)


@tax_app.command("declare")
def declare_command(
    fy: Annotated[str, typer.Option(help="financial year, e.g. 2026-27")],
    stcg: Annotated[
        float, typer.Option(help="net short-term gains elsewhere, rupees (signed)")
    ] = 0,
    ltcg: Annotated[float, typer.Option(help="net long-term gains elsewhere, rupees (signed)")] = 0,
) -> None:
    """Record the gains realised elsewhere in a year (other brokers, mutual funds); replaces
    what was declared for that year. The planner counts them against the exemption."""
    from rebalance.errors import ConfigError
    from rebalance.history.tax_store import TaxStore
    from rebalance.tax.gains import DeclaredGains
    from rebalance.wiring import open_store

    try:
        year = _financial_year(fy)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    try:
        TaxStore(open_store().engine).set_declared(year, DeclaredGains(stcg, ltcg))
    except Exception as exc:  # the database is unreachable or not migrated
        typer.echo(f"rebalance tax declare: cannot write the history database: {exc}", err=True)
        raise typer.Exit(EXIT_FAILURE) from None
    typer.echo(f"FY {year.label}: declared short-term ₹{stcg:,.2f}, long-term ₹{ltcg:,.2f}")
