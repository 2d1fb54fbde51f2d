"""Readable tables of runs and orders (rich), shared by the CLI commands."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

from rebalance.domain.formatting import frac, inr, ist_minutes, outcome, pct, policy_summary
from rebalance.domain.market import IST
from rebalance.domain.solver import stored_solver

if TYPE_CHECKING:
    from rebalance.history.records import EventRecord, LegRecord, RunRecord


def run_panel(run: RunRecord) -> Panel:
    """A run's summary: status, value, turnover, drift before -> after, trades, approval."""
    drift = "-"
    if run.max_drift_before is not None and run.max_drift_after is not None:
        drift = f"{100 * run.max_drift_before:.2f}% -> {100 * run.max_drift_after:.2f}%"
    lines = [
        f"[bold]Run {run.id}[/]  {run.portfolio_name} · account {run.account} "
        f"({run.broker}) · mode {run.mode} · {run.initiator}",
        f"status [bold]{run.status}[/]" + (f" — {run.status_reason}" if run.status_reason else ""),
        f"portfolio value {inr(run.portfolio_value)} · cash {inr(run.cash)}",
        f"turnover {pct(run.turnover_pct)} · "
        f"budget used {pct(run.budget_used_pct)} · "
        f"max drift {drift} · trades {run.trades} · "
        f"est. charges {inr(run.estimated_charges)}",
        f"approval {run.approval_decision or '-'} by {run.approved_by or '-'} · "
        f"airflow run {run.airflow_run_id}",
    ]
    return Panel(Group(*lines), title=run.dag_id, expand=False)


def orders_table(orders: Iterable[LegRecord]) -> Table:
    """The orders of a run with their outcomes."""
    table = Table(title="Orders", show_lines=False)
    for column in (
        "leg",
        "tag",
        "side",
        "symbol",
        "qty",
        "price",
        "notional",
        "charges",
        "state",
        "filled",
        "avg price",
        "broker id",
        "sends",
        "reasons",
    ):
        table.add_column(
            column,
            justify="right"
            if column in {"qty", "price", "notional", "charges", "filled", "avg price"}
            else "left",
        )
    for o in orders:
        table.add_row(
            str(o.leg),
            o.tag,
            o.side,
            o.symbol,
            str(o.quantity),
            f"{o.price:,.2f}",
            f"{o.notional:,.2f}",
            f"{o.charges:,.2f}",
            o.state + (f" ({o.error})" if o.error else ""),
            str(o.filled_quantity),
            "-" if o.average_price is None else f"{o.average_price:,.2f}",
            (o.broker_order_id or "-")
            + (f" (+{o.broker_orders - 1} DUPLICATE)" if o.broker_orders > 1 else ""),
            str(o.attempts),
            ", ".join(o.reasons),
        )
    return table


def wide_console() -> Console:
    """A console for tables: the terminal's width, or 200 columns when writing to a pipe or a
    file (rich would assume 80 and squeeze the order tables into unreadable stubs)."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


def print_run(run: RunRecord, orders: Iterable[LegRecord], console: Console | None = None) -> None:
    console = console or wide_console()
    console.print(run_panel(run))
    console.print(orders_table(orders))


# --- history: the list of runs and one run's details ------------------------------------------


def runs_table(runs: Iterable[RunRecord]) -> Table:
    """The history list: id, created, portfolio and policy, turnover, drift, status."""
    table = Table(title="Rebalance runs")
    for column in (
        "id",
        "created (IST)",
        "portfolio",
        "account",
        "policy",
        "turnover",
        "drift before -> after",
        "trades",
        "status",
    ):
        table.add_column(
            column, justify="right" if column in {"id", "turnover", "trades"} else "left"
        )
    for run in runs:
        drift = "-"
        if run.max_drift_before is not None:
            drift = f"{frac(run.max_drift_before)} -> {frac(run.max_drift_after)}"
        table.add_row(
            str(run.id),
            ist_minutes(run.created_at),
            f"{run.portfolio_name} ({run.portfolio_id})",
            f"{run.account} ({run.broker})",
            policy_summary(run.policy),
            pct(run.turnover_pct),
            drift,
            "-" if run.trades is None else str(run.trades),
            outcome(run.status, run.placement),
        )
    return table


def metadata_table(run: RunRecord) -> Table:
    table = Table(title=f"Run {run.id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = [
        ("portfolio", f"{run.portfolio_name} ({run.portfolio_id})"),
        ("account", f"{run.account} at {run.broker} · scope {run.broker_scope}"),
        ("airflow", f"{run.dag_id} / {run.airflow_run_id}"),
        ("initiator · mode", f"{run.initiator} · {run.mode}"),
        (
            "status",
            outcome(run.status, run.placement)
            + (f" — {run.status_reason}" if run.status_reason else ""),
        ),
        ("created", ist_minutes(run.created_at)),
        ("planned", ist_minutes(run.planned_at)),
        ("approved", ist_minutes(run.approved_at)),
        ("executed", ist_minutes(run.executed_at)),
        ("finished", ist_minutes(run.finished_at)),
        ("portfolio value · cash", f"{inr(run.portfolio_value)} · {inr(run.cash)}"),
        (
            "turnover · budget used",
            f"{pct(run.turnover_pct)} · {pct(run.budget_used_pct)}",
        ),
        (
            "max drift",
            f"{frac(run.max_drift_before)} -> {frac(run.max_drift_after)}",
        ),
        (
            "trades · est. charges",
            f"{run.trades} · {inr(run.estimated_charges)}",
        ),
        (
            "approval",
            f"{run.approval_decision or '-'} by {run.approved_by or '-'}"
            + (f" ({run.approval_note})" if run.approval_note else ""),
        ),
        ("plan hash", run.plan_hash or "-"),
        ("plan made by", stored_solver(run.plan)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def policy_table(policy: Mapping[str, Any] | None) -> Table:
    table = Table(title="Policy snapshot")
    table.add_column("setting")
    table.add_column("value")
    for key, value in sorted((policy or {}).items()):
        table.add_row(key, "-" if value is None else str(value))
    return table


def holdings_table(snapshot: Mapping[str, Any] | None) -> Table:
    """The inputs snapshot: qty, price, value, weight, P&L per symbol."""
    snapshot = snapshot or {}
    title = "Holdings snapshot"
    if snapshot.get("taken_at"):
        title += f" (taken {snapshot['taken_at']}, cash {inr(snapshot.get('cash'))})"
    table = Table(title=title)
    columns = ("symbol", "qty", "price", "value", "weight", "P&L")
    for column in columns:
        table.add_column(column, justify="left" if column == "symbol" else "right")
    positions = list(snapshot.get("positions") or [])
    total = sum(float(p.get("quantity") or 0) * float(p.get("last_price") or 0) for p in positions)
    for p in positions:
        qty = int(p.get("quantity") or 0)
        price = float(p.get("last_price") or 0)
        value = qty * price
        avg = p.get("average_price")
        pnl = "-" if avg is None else inr((price - float(avg)) * qty)
        table.add_row(
            str(p.get("symbol")),
            str(qty),
            f"{price:,.2f}",
            inr(value),
            frac(value / total) if total else "-",
            pnl,
        )
    return table


def positions_table(plan: Mapping[str, Any] | None) -> Table:
    """Each symbol's weight before, target and after the plan (and why it was left alone)."""
    table = Table(title="Plan positions")
    for column in ("symbol", "before", "target", "after", "qty before -> after", "skipped"):
        table.add_column(column, justify="left" if column in {"symbol", "skipped"} else "right")
    for p in (plan or {}).get("positions", []):
        table.add_row(
            str(p["symbol"]),
            frac(p.get("weight_before")),
            frac(p.get("target_weight")),
            frac(p.get("weight_after")),
            f"{p.get('quantity_before', 0)} -> {p.get('quantity_after', 0)}",
            ", ".join(p.get("skipped") or []),
        )
    return table


def events_table(events: Iterable[EventRecord]) -> Table:
    table = Table(title="Events")
    for column in ("at (IST)", "from", "to", "message"):
        table.add_column(column)
    for e in events:
        table.add_row(
            e.at.astimezone(IST).strftime("%Y-%m-%d %H:%M:%S"),
            e.from_status or "-",
            e.to_status,
            e.message or "",
        )
    return table


def print_run_details(
    run: RunRecord,
    orders: Iterable[LegRecord],
    events: Iterable[EventRecord],
    console: Console | None = None,
) -> None:
    """Everything of one run: metadata, policy, holdings, plan positions, orders, events."""
    console = console or wide_console()
    console.print(metadata_table(run))
    console.print(policy_table(run.policy))
    console.print(holdings_table(run.snapshot))
    console.print(positions_table(run.plan))
    console.print(orders_table(orders))
    console.print(events_table(events))
