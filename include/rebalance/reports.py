"""Readable tables of runs and orders (rich), shared by the CLI commands."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table


def _pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}%"


def _inr(value: float | None) -> str:
    return "-" if value is None else f"₹{value:,.2f}"


def run_panel(run: Mapping[str, Any]) -> Panel:
    """A run's summary: status, value, turnover, drift before -> after, trades, approval."""
    drift = "-"
    if run.get("max_drift_before") is not None and run.get("max_drift_after") is not None:
        drift = f"{100 * run['max_drift_before']:.2f}% -> {100 * run['max_drift_after']:.2f}%"
    lines = [
        f"[bold]Run {run['id']}[/]  {run['portfolio_name']} · account {run['account']} "
        f"({run['broker']}) · mode {run['mode']} · {run['initiator']}",
        f"status [bold]{run['status']}[/]" + (f" — {run['status_reason']}" if run.get("status_reason") else ""),
        f"portfolio value {_inr(run.get('portfolio_value'))} · cash {_inr(run.get('cash'))}",
        f"turnover {_pct(run.get('turnover_pct'))} · budget used {_pct(run.get('budget_used_pct'))} · "
        f"max drift {drift} · trades {run.get('trades', '-')} · "
        f"est. charges {_inr(run.get('estimated_charges'))}",
        f"approval {run.get('approval_decision') or '-'} by {run.get('approved_by') or '-'} · "
        f"airflow run {run['airflow_run_id']}",
    ]
    return Panel(Group(*lines), title=run["dag_id"], expand=False)


def orders_table(orders: Iterable[Mapping[str, Any]]) -> Table:
    """The orders of a run with their outcomes."""
    table = Table(title="Orders", show_lines=False)
    for column in ("leg", "side", "symbol", "qty", "price", "notional", "charges", "state",
                   "filled", "avg price", "broker id", "reasons"):
        table.add_column(column, justify="right" if column in {"qty", "price", "notional", "charges",
                                                                "filled", "avg price"} else "left")
    for o in orders:
        table.add_row(
            str(o["leg"]),
            o["side"],
            o["symbol"],
            str(o["quantity"]),
            f"{o['price']:,.2f}",
            f"{o['notional']:,.2f}",
            f"{o['charges']:,.2f}",
            o["state"] + (f" ({o['error']})" if o.get("error") else ""),
            str(o["filled_quantity"]),
            "-" if o.get("average_price") is None else f"{o['average_price']:,.2f}",
            o.get("broker_order_id") or "-",
            ", ".join(o["reasons"]),
        )
    return table


def print_run(run: Mapping[str, Any], orders: Iterable[Mapping[str, Any]], console: Console | None = None) -> None:
    console = console or Console()
    console.print(run_panel(run))
    console.print(orders_table(orders))
