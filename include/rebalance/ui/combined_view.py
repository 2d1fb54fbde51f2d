"""The Rebalance page's view of a combined run (accounts_mode: combined; docs/accounts.md).

On the page of an account's run that is a part of a combined run: the whole's plan, the split
per account, each account's outcome and what it left undone, with links to the other parts.
Everything user-controlled goes through ``html.escape``.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rebalance.history.combined import CombinedRunRecord
    from rebalance.history.store import HistoryStore


def combined_section(store: HistoryStore, run_id: int, base: str) -> str:
    """The section for run ``run_id`` ("" when the run is not a part of a combined run)."""
    from rebalance.history.combined import CombinedStore

    combined = CombinedStore(store.engine)
    found = combined.combined_of_run(run_id)
    if found is None:
        return ""
    return render_combined(combined.combined(found), base)


def render_combined(record: CombinedRunRecord, base: str) -> str:
    """The combined run as HTML: status, split per account (orders, money), outcome."""
    allocation: dict[str, Any] = dict(record.allocation or {})
    outcome = dict((record.outcome or {}).get("accounts") or {})
    rows = []
    for split in allocation.get("splits", []):
        account = str(split["account"])
        orders = ", ".join(
            f"{o['side']} {o['quantity']} {o['symbol']}"
            for o in allocation.get("orders", [])
            if o["account"] == account
        )
        result = outcome.get(account, {})
        undone = ", ".join(
            f"{u['side']} {u['quantity']} {u['symbol']}" for u in result.get("left_undone", [])
        )
        run = record.parts.get(account)
        link = f"<a href='{base}/runs/{run}'>run {run}</a>" if run is not None else "-"
        cash_after = split.get("cash_after")
        rows.append(
            "<tr>"
            f"<td>{escape(account)} ({escape(str(split['broker']))})</td><td>{link}</td>"
            f"<td>{escape(orders or 'none')}</td>"
            f"<td class='num'>₹{split['buy_value']:,.2f}</td>"
            f"<td class='num'>₹{split['sell_value']:,.2f}</td>"
            f"<td class='num'>₹{split['charges']:,.2f}</td>"
            f"<td class='num'>{'?' if cash_after is None else f'₹{cash_after:,.2f}'}</td>"
            f"<td>{escape(str(result.get('status', '-')))}</td>"
            f"<td>{escape(undone or 'nothing')}</td>"
            "</tr>"
        )
    whole = (record.plan or {}).get("summary", {})
    replanned = " · re-planned per account (the whole could not be funded)" * record.replanned
    return (
        f"<h2 id='combined'>Combined run {record.id}: {escape(record.status)}</h2>"
        f"<p>One plan for {escape(', '.join(record.parts))} together{replanned}: "
        f"{whole.get('trades', 0)} orders, turnover {whole.get('turnover_pct', 0.0):.2f}% of "
        f"the whole; approval {escape(str(record.approval_decision or '-'))} by "
        f"{escape(str(record.approved_by or '-'))}. "
        f"{escape(record.status_reason or '')}</p>"
        "<table id='combined-split'><tr><th>account</th><th>its run</th><th>orders</th>"
        "<th>buys</th><th>sells</th><th>charges</th><th>cash after</th><th>status</th>"
        "<th>left undone</th></tr>" + "".join(rows) + "</table>"
    )
