"""The plan preview a person approves: Markdown, rendered in Airflow's Required Actions.

Pure: takes the stored plan (``TradePlan.to_dict()``) and returns text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rebalance.domain.formatting import frac, inr
from rebalance.targets.describe import source_markdown
from rebalance.tax_preview import markdown as tax_markdown
from rebalance.tax_preview import summary_line as tax_summary_line


def render_preview(
    plan: Mapping[str, Any],
    *,
    portfolio_name: str,
    account: str,
    mode: str,
    plan_hash: str,
    authorisation: Sequence[Mapping[str, Any]] = (),
    broker_estimate: str | None = None,
    basket_folder: str | None = None,
    target_source: Mapping[str, Any] | None = None,
) -> str:
    """Orders (qty, notional, charges, reasons), before/after weights and the summary.

    ``basket_folder``: manual_queue mode, where the basket CSVs are written once approved.
    ``broker_estimate``: live mode, the broker's own charge estimate beside ours (one line).
    ``authorisation``: shares the plan sells or would sell that the depository has not
    authorised today (``brokers.validation.authorisation_needed``): listed before the orders.
    ``target_source``: where a computed portfolio's targets came from (``targets.describe``).
    """
    summary = plan["summary"]
    lines = [
        f"## {portfolio_name}: account `{account}` ({mode})",
        "",
        f"Portfolio value **{inr(summary['portfolio_value'])}** · turnover "
        f"**{summary['turnover_pct']:.2f}%** · budget used {summary['budget_used_pct']:.1f}% · "
        f"max drift {frac(summary['max_drift_before'])} → {frac(summary['max_drift_after'])} · "
        f"est. charges {inr(summary['estimated_charges'])}",
        "",
    ]
    if tax_line := tax_summary_line(plan.get("tax")):  # issue 15: tax beside the charges
        lines += [tax_line, ""]
    if broker_estimate:
        lines += [f"Charges: {broker_estimate}.", ""]
    if basket_folder:
        lines += [
            f"Manual queue: once approved, the basket CSVs are written to `{basket_folder}`; "
            "place them by hand, then run `rebalance mark-placed RUN`.",
            "",
        ]
    if authorisation:
        lines += [
            "### Sell authorisation needed",
            "",
            "This account has no DDPI / POA: only shares authorised today (CDSL TPIN / eDIS) can "
            "be sold, and the plan sells no more than that. Authorise these, then re-run to "
            "sell them:",
            "",
            "| symbol | shares to authorise | authorised now | where |",
            "|---|---:|---:|---|",
        ]
        lines += [
            f"| {a['symbol']} | {a['shares']} | {a['authorised']} | {a['where']} |"
            for a in authorisation
        ]
        lines.append("")
    lines += source_markdown(target_source)
    lines += [
        "### Orders",
        "",
        "| side | symbol | qty | price | notional | charges | why |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for o in plan["orders"]:
        lines.append(
            f"| {o['side']} | {o['symbol']} | {o['quantity']} | {o['price']:,.2f} | "
            f"{o['notional']:,.2f} | {o.get('charges', 0.0):,.2f} | {', '.join(o['reasons'])} |"
        )
    if not plan["orders"]:
        lines.append("| - | no orders | | | | | |")
    lines += tax_markdown(plan.get("tax"))
    lines += [
        "",
        "### Weights",
        "",
        "| symbol | before | target | after | left alone because |",
        "|---|---:|---:|---:|---|",
    ]
    for p in plan["positions"]:
        lines.append(
            f"| {p['symbol']} | {frac(p['weight_before'])} | {frac(p['target_weight'])} | "
            f"{frac(p['weight_after'])} | {', '.join(p.get('skipped', [])) or ''} |"
        )
    for note in plan.get("notes", []):
        lines.append(f"\n> {note}")
    lines += ["", f"Plan hash `{plan_hash[:16]}`: only this plan can be placed."]
    return "\n".join(lines)
