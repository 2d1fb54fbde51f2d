"""The tax estimate of a plan (``plan["tax"]``, planning/taxes.py ``tax_section``) as text: the
Markdown of the approval preview and the HTML of the Rebalance page and the run page. Pure: takes
the plan's JSON and returns text; nothing when the plan carries no tax estimate (tax: off).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

NOT_ADVICE = "an estimate from the lots in history, not tax advice (docs/tax.md)"


def _lots(order: Mapping[str, Any]) -> str:
    return "; ".join(
        f"{lot['quantity']} from {lot['acquired_on']} ({lot['holding_days']} d, {lot['term']}"
        + (", grandfathered" if lot.get("grandfathered") else "")
        + ")"
        for lot in order["lots"]
    )


def summary_line(tax: Mapping[str, Any] | None) -> str | None:
    """One line: estimated tax, charges, the after-tax cost; None without an estimate."""
    if not tax:
        return None
    return (
        f"Est. tax ₹{tax['estimated_tax']:,.2f} (FY {tax['fy']}, tax: {tax['mode']}) + charges "
        f"₹{tax['charges']:,.2f} = after-tax cost of the rebalance "
        f"**₹{tax['after_tax_cost']:,.2f}**"
        f" · exemption left after ₹{tax['exemption_left_after']:,.2f}"
    )


def markdown(tax: Mapping[str, Any] | None) -> list[str]:
    """The "Tax" section of the approval preview: per sell, the tax and the lots it takes."""
    if not tax:
        return []
    lines = [
        "",
        f"### Tax ({NOT_ADVICE})",
        "",
        "| symbol | qty sold | short-term gain | long-term gain | est. tax | FIFO lots taken |",
        "|---|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {o['symbol']} | {o['quantity']} | {o['short_term_gain']:,.2f} | "
        f"{o['long_term_gain']:,.2f} | {o['estimated_tax']:,.2f} | {_lots(o)} |"
        for o in tax["orders"]
    ]
    if not tax["orders"]:
        lines.append("| - | no sells with tax data | | | | |")
    lines.append(f"| **total** | | | | **{tax['estimated_tax']:,.2f}** | all sells together |")
    lines += _caps(tax)
    lines += [f"\n> no tax data for {s}: {why}" for s, why in tax.get("no_tax_data", {}).items()]
    return lines


def _caps(tax: Mapping[str, Any]) -> list[str]:
    caps = tax.get("caps")
    if not caps:
        return []
    parts = [f"{name} ₹{value:,.2f}" for name, value in caps.items() if value is not None]
    return ["", "Caps (tax: limit): " + ", ".join(parts)]


def html(tax: Mapping[str, Any] | None) -> str:
    """The page's tax block: the summary line and the per-sell table (empty without data)."""
    if not tax:
        return ""
    rows = "".join(
        f"<tr><td>{escape(o['symbol'])}</td><td class='num'>{o['quantity']}</td>"
        f"<td class='num'>{o['short_term_gain']:,.2f}</td>"
        f"<td class='num'>{o['long_term_gain']:,.2f}</td>"
        f"<td class='num'>{o['estimated_tax']:,.2f}</td><td>{escape(_lots(o))}</td></tr>"
        for o in tax["orders"]
    )
    head = (
        "<tr><th>symbol</th><th class='num'>qty sold</th><th class='num'>short-term gain</th>"
        "<th class='num'>long-term gain</th><th class='num'>est. tax</th>"
        "<th>FIFO lots taken</th></tr>"
    )
    total = (
        f"<tr><td><b>total</b></td><td></td><td></td><td></td>"
        f"<td class='num' id='tax-total'><b>{tax['estimated_tax']:,.2f}</b></td>"
        "<td>all sells together</td></tr>"
    )
    line = escape(str(summary_line(tax))).replace("**", "")
    caps = escape(" ".join(_caps(tax)).strip())
    missing = "".join(
        f"<li>no tax data for {escape(s)}: {escape(why)}</li>"
        for s, why in tax.get("no_tax_data", {}).items()
    )
    return (
        f"<h3>Tax ({escape(NOT_ADVICE)})</h3><p id='tax-summary'>{line}</p>"
        f"<table id='tax-orders'>{head}{rows}{total}</table>"
        + (f"<p>{caps}</p>" if caps else "")
        + (f"<ul class='muted'>{missing}</ul>" if missing else "")
    )
