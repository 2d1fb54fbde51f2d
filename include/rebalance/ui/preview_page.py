"""HTML of the card's Preview and of following a triggered run (issue 20).

Plain GET forms and POST forms, no JavaScript needed: the sandboxed iframe of Airflow's UI allows
forms but blocks top navigation, popups and ``confirm()``, so Run now and Approve are buttons of
small forms, and the follow page reloads itself (``<meta http-equiv=refresh>``) until the run ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from rebalance.domain.formatting import drift_change, inr, outcome, pct
from rebalance.domain.solver import solver_words
from rebalance.tax_preview import html as tax_html
from rebalance.ui.render import (
    airflow_link,
    airflow_run_href,
    approval_href,
    badge,
    orders_table,
    page,
    weights_svg,
    when,
)
from rebalance.ui.targets_view import targets_section

if TYPE_CHECKING:
    from rebalance.history.records import LegRecord, RunRecord
    from rebalance.plan import TradePlan
    from rebalance.portfolio import Portfolio
    from rebalance.ui.whatif import AccountPreview, PreviewTargets, WhatIf

PREVIEW_CSS = """
.preview{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.preview form.params{flex:0 0 260px;border:1px solid #d0d7de;border-radius:8px;padding:12px}
.preview .plan{flex:1 1 480px;min-width:0;overflow-x:auto}
form.params label{display:block;margin:6px 0 2px;color:#656d76}
form.params input,form.params select{width:100%;box-sizing:border-box;padding:4px}
button{padding:6px 14px;border-radius:6px;border:1px solid #1f883d;background:#1f883d;color:#fff;
cursor:pointer;font-size:14px;margin:8px 8px 0 0}button.secondary{background:#f6f8fa;color:#1f2328;
border-color:#d0d7de}button.danger{background:#cf222e;border-color:#cf222e}
.filters a.on{font-weight:600;text-decoration:underline}
.diff{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:8px 12px}
svg{max-width:100%;height:auto}
@media (max-width:640px){.preview form.params{flex:1 1 100%}}
"""


def _page(title: str, body: str, refresh: int | None = None) -> str:
    html = page(title, f"<style>{PREVIEW_CSS}</style>{body}")
    if refresh:
        html = html.replace("<head>", f"<head><meta http-equiv='refresh' content='{refresh}'>", 1)
    return html


def _field(label: str, name: str, value: str, step: str = "any") -> str:
    return (
        f"<label for='{name}'>{label}</label>"
        f"<input id='{name}' name='{name}' type='number' step='{step}' min='0' "
        f"value='{escape(value)}'>"
    )


def _select(label: str, name: str, value: str, choices: Sequence[tuple[str, str]]) -> str:
    options = "".join(
        f"<option value='{v}'{' selected' if v == value else ''}>{escape(t)}</option>"
        for v, t in choices
    )
    select = f"<select id='{name}' name='{name}'>{options}</select>"
    return f"<label for='{name}'>{label}</label>{select}"


def params_form(base: str, portfolio: Portfolio, whatif: WhatIf, source: str) -> str:
    """The what-if parameters (notes 11.2) as a GET form: submitting re-plans."""
    q = whatif.query()
    return (
        f"<form class='params' id='params' method='get' action='{base}/preview/{portfolio.id}'>"
        + _select(
            "Budget in", "budget_kind", whatif.budget_kind, [("pct", "% of value"), ("inr", "₹")]
        )
        + _field("Budget", "budget", q["budget"])
        + _field("Drift band, absolute (pp)", "drift_band_abs_pct", q["drift_band_abs_pct"])
        + _field("Drift band, relative (%)", "drift_band_rel_pct", q["drift_band_rel_pct"])
        + _field("Max trades", "max_trades", q["max_trades"], step="1")
        + _field("Min trade value (₹)", "min_trade_value_inr", q["min_trade_value_inr"])
        + _select(
            "Broker",
            "broker",
            whatif.broker,
            [("both", "Both"), ("zerodha", "Zerodha"), ("angelone", "AngelOne")],
        )
        + _select(
            "Trades",
            "trade_filter",
            whatif.trade_filter,
            [("both", "Buys and sells"), ("buys_only", "Buys only"), ("sells_only", "Sells only")],
        )
        + _select(
            "Holdings",
            "source",
            source,
            [("fresh", "Latest (read from the broker)"), ("stored", "Last stored snapshot")],
        )
        + "<button type='submit' id='replan'>Preview</button>"
        "<button type='submit' class='secondary' name='refresh' value='1' id='reread'>"
        "Read holdings again</button></form>"
    )


def filter_links(base: str, portfolio: Portfolio, whatif: WhatIf, source: str) -> str:
    """Buys only / sells only as links that keep every other parameter."""
    links = []
    for value, text in (("both", "All"), ("buys_only", "Buys only"), ("sells_only", "Sells only")):
        query = whatif.query() | {"trade_filter": value, "source": source}
        on = " class='on'" if whatif.trade_filter == value else ""
        links.append(
            f"<a{on} id='filter-{value}' href='{base}/preview/{portfolio.id}?"
            f"{escape(urlencode(query))}'>{text}</a>"
        )
    return f"<div class='filters'>{''.join(links)}</div>"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f} s old"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min old"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h old"
    return f"{seconds / 86400:.0f} days old"


def plan_section(preview: AccountPreview, now: datetime | None = None) -> str:
    """One account's plan: summary, orders, chart, what is left alone and why."""
    head = (
        f"<h2 id='account-{escape(preview.account)}'>{escape(preview.account)} "
        f"({escape(preview.broker)})</h2><div class='muted'>holdings: "
        f"{'read now from the broker' if preview.source == 'fresh' else 'last stored snapshot'}"
        f", taken {when(preview.taken_at)} ({_age(preview.age_seconds(now))})</div>"
    )
    head += targets_origin(preview.targets)
    if preview.plan is None:
        return f"{head}<p class='warn' id='problem'>{escape(str(preview.problem))}</p>"
    plan = preview.plan
    return (
        head
        + summary_table(plan)
        + plan_orders(plan)
        + tax_html(plan.tax)
        + left_alone(plan)
        + weights_svg([p.to_dict() for p in plan.positions])
    )


def targets_origin(targets: PreviewTargets | None) -> str:
    """A computed portfolio's targets: computed now or the last run's, and what made them."""
    if targets is None or targets.source is None:
        return ""
    return (
        f"<p class='muted' id='targets-origin' data-origin='{targets.origin}'>"
        f"{escape(targets.note)}</p>" + targets_section({"source": targets.source})
    )


def summary_table(plan: TradePlan) -> str:
    s = plan.summary
    rows = [
        ("Portfolio value", inr(s.portfolio_value)),
        ("Budget", inr(s.budget_inr)),
        ("Buys / sells", f"{inr(s.buy_value)} / {inr(s.sell_value)}"),
        ("Turnover", pct(s.turnover_pct)),
        ("Budget used", pct(s.budget_used_pct)),
        ("Max drift", drift_change(s.max_drift_before, s.max_drift_after)),
        ("Orders", f"<span id='trade-count'>{s.trades}</span>"),
        ("Estimated charges", inr(s.estimated_charges)),
        ("Cash before → after", f"{inr(s.cash_before)} → {inr(s.cash_after)}"),
        ("Plan made by", f"<span id='plan-solver'>{escape(solver_words(s.solver))}</span>"),
    ]
    notes = "".join(f"<li>{escape(n)}</li>" for n in plan.notes)
    body = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
    return f"<table class='kv summary'>{body}</table>" + (f"<ul>{notes}</ul>" if notes else "")


def plan_orders(plan: TradePlan) -> str:
    if not plan.orders:
        return "<p class='muted' id='no-orders'>No orders: nothing to trade with these.</p>"
    weights = {p.symbol: p for p in plan.positions}
    rows = []
    for o in plan.orders:
        p = weights.get(o.symbol)
        w = (
            f"{100 * p.weight_before:.2f}% / {100 * p.target_weight:.2f}% / "
            f"{100 * p.weight_after:.2f}%"
            if p
            else "-"
        )
        rows.append(
            f"<tr data-side='{o.side}'><td>{escape(str(o.side))}</td><td>{escape(o.symbol)}</td>"
            f"<td class='num'>{o.quantity}</td><td class='num'>{o.price:,.2f}</td>"
            f"<td class='num'>{o.notional:,.2f}</td><td class='num'>{o.charges:,.2f}</td>"
            f"<td class='num'>{w}</td><td>{escape(', '.join(o.reasons))}</td></tr>"
        )
    head = (
        "<tr><th>side</th><th>symbol</th><th class='num'>qty</th><th class='num'>price</th>"
        "<th class='num'>notional</th><th class='num'>charges</th>"
        "<th class='num'>weight before / target / after</th><th>why</th></tr>"
    )
    return f"<table id='preview-orders'>{head}{''.join(rows)}</table>"


def left_alone(plan: TradePlan) -> str:
    traded = {o.symbol for o in plan.orders}
    rows = [
        f"<tr><td>{escape(p.symbol)}</td><td class='num'>{100 * p.weight_before:.2f}% / "
        f"{100 * p.target_weight:.2f}%</td><td>{escape(', '.join(p.skipped) or 'on target')}</td>"
        "</tr>"
        for p in plan.positions
        if p.symbol not in traded
    ]
    if not rows:
        return ""
    return (
        "<h3>Left alone</h3><table id='left-alone'><tr><th>symbol</th>"
        f"<th class='num'>weight / target</th><th>why</th></tr>{''.join(rows)}</table>"
    )


def run_now_form(base: str, portfolio: Portfolio, whatif: WhatIf, csrf: str) -> str:
    """Run now: a POST form carrying exactly the previewed parameters and the session token."""
    hidden = "".join(
        f"<input type='hidden' name='{k}' value='{escape(v)}'>" for k, v in whatif.query().items()
    )
    return (
        f"<form method='post' action='{base}/preview/{portfolio.id}/run' id='run-now-form'>"
        f"{hidden}<input type='hidden' name='csrf' value='{csrf}'>"
        "<button type='submit' id='run-now'>Run now with these parameters</button></form>"
    )


def preview_page(
    *,
    base: str,
    portfolio: Portfolio,
    whatif: WhatIf,
    source: str,
    previews: Sequence[AccountPreview],
    may_trigger: bool,
    csrf: str,
    problem: str | None = None,
) -> str:
    sections = "".join(plan_section(p) for p in previews) or (
        "<p class='muted'>No account of this portfolio is at that broker.</p>"
    )
    run_now = (
        run_now_form(base, portfolio, whatif, csrf)
        if may_trigger and previews and not problem
        else ""
    )
    body = (
        f"<nav class='crumbs'><a href='{base}/'>Rebalance</a> › preview {escape(portfolio.id)}"
        f"</nav><h1>Preview: {escape(portfolio.name)}</h1><div class='muted'>nothing is ordered "
        "and no run is recorded until you press Run now; the run reads the holdings again and "
        "its approval shows any difference</div>"
        + (f"<p class='warn' id='problem'>{escape(problem)}</p>" if problem else "")
        + "<div class='preview'>"
        + params_form(base, portfolio, whatif, source)
        + "<div class='plan'>"
        + filter_links(base, portfolio, whatif, source)
        + run_now
        + sections
        + "</div></div>"
    )
    return _page(f"Preview {portfolio.id}", body)


def follow_page(
    *,
    base: str,
    dag_id: str,
    airflow_run_id: str,
    state: str | None,
    lanes: Sequence[tuple[RunRecord, Sequence[LegRecord], list[str]]],
    may_answer: bool,
    csrf: str,
    message: str | None = None,
) -> str:
    """A triggered run as it goes: each lane's status, approval (with the difference from the
    preview and Approve / Reject), orders and outcome. Reloads every 3 s until it ends."""
    parts = []
    finished = state in ("success", "failed")
    for run, legs, differences in lanes:
        status = outcome(run.status, run.placement)
        section = (
            f"<h2 data-lane='{escape(run.account)}'>{escape(run.account)} "
            f"<span id='lane-status-{escape(run.account)}'>{badge(status)}</span></h2>"
            f"<div class='muted'>run <a href='{base}/runs/{run.id}'>{run.id}</a> · "
            f"{escape(str(run.status_reason or ''))}</div>"
        )
        if str(run.status) == "awaiting_approval":
            diff = "".join(f"<li>{escape(d)}</li>" for d in differences)
            section += (
                "<div class='diff' id='plan-difference'><b>The run's plan against the preview"
                f"</b> (it read the holdings again):<ul>{diff}</ul></div>"
            )
            if may_answer:
                section += answer_forms(base, dag_id, airflow_run_id, run.account, csrf)
            section += airflow_link(
                approval_href(dag_id, airflow_run_id, run.account), "Required Actions ↗"
            )
        if run.plan:
            from rebalance.plan import TradePlan

            section += plan_orders(TradePlan.from_dict(run.plan)) if not legs else ""
        section += orders_table(legs) if legs else ""
        parts.append(section)
    if not parts:
        parts.append("<p class='muted' id='waiting'>Waiting for the run to start…</p>")
        finished = False
    body = (
        f"<nav class='crumbs'><a href='{base}/'>Rebalance</a> › run {escape(airflow_run_id)}</nav>"
        f"<h1>Run now: {escape(dag_id)}</h1>"
        + (f"<p class='warn' id='message'>{escape(message)}</p>" if message else "")
        + f"<div>Airflow state: <span id='dag-state'>{badge(state or 'queued')}</span> · "
        + airflow_link(airflow_run_href(dag_id, airflow_run_id), "Airflow run ↗")
        + "</div>"
        + "".join(parts)
    )
    return _page(f"Run {airflow_run_id}", body, refresh=None if finished else 3)


def answer_forms(base: str, dag_id: str, airflow_run_id: str, account: str, csrf: str) -> str:
    action = f"{base}/follow/{quote(dag_id, safe='')}/{quote(airflow_run_id, safe='')}/answer"
    return "".join(
        f"<form method='post' action='{escape(action)}' style='display:inline'>"
        f"<input type='hidden' name='account' value='{escape(account)}'>"
        f"<input type='hidden' name='csrf' value='{csrf}'>"
        f"<button type='submit' name='decision' value='{value}' id='{value}-{escape(account)}'"
        f"{' class=danger' if value == 'reject' else ''}>{text}</button></form>"
        for value, text in (("approve", "Approve"), ("reject", "Reject"))
    )


def card_actions(base: str, portfolio_id: str, may_trigger: bool) -> str:
    """The card's buttons (notes 11.1): Preview rebalance (Run now is on the preview), History."""
    history = f"<a href='{base}/?portfolio={quote(portfolio_id)}'>History</a>"
    if not may_trigger:
        return f"<div class='links'>{history}</div>"
    return (
        f"<div class='links'><a class='preview-link' id='preview-{escape(portfolio_id)}' "
        f"href='{base}/preview/{quote(portfolio_id)}'>Preview rebalance</a>{history}</div>"
    )


def csv_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _cell(row.get(c)) for c in columns})
    return out.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, (dict, list, tuple)):
        import json

        return json.dumps(value, default=str)
    text = "" if value is None else str(value)
    # a cell a spreadsheet would run as a formula is quoted as text
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def history_filters(base: str, portfolio: str | None, filters: Mapping[str, Any]) -> str:
    """The history's filters (a GET form) and its CSV export links, keeping the filters."""
    values = {k: "" if v is None else str(v) for k, v in filters.items()}
    kept = {k: v for k, v in values.items() if v} | ({"portfolio": portfolio} if portfolio else {})
    statuses = ["", "completed", "placed", "partially_filled", "awaiting_approval", "rejected"]
    statuses += ["expired", "invalid", "failed", "planned", "started", "approved", "placing"]
    options = "".join(
        f"<option value='{s}'{' selected' if s == values['status'] else ''}>{s or 'any'}</option>"
        for s in statuses
    )
    hidden = ""
    if portfolio:
        hidden = f"<input type='hidden' name='portfolio' value='{escape(portfolio)}'>"
    csv_runs = escape(urlencode(kept | {"kind": "runs"}))
    csv_orders = escape(urlencode(kept | {"kind": "orders"}))
    return (
        f"<form method='get' action='{base}/' id='history-filters' class='filters'>{hidden}"
        f"status <select name='status'>{options}</select> "
        f"account <input name='account' size='10' value='{escape(values['account'])}'> "
        f"from <input type='date' name='since' value='{escape(values['since'])}'> "
        f"to <input type='date' name='until' value='{escape(values['until'])}'> "
        "<button type='submit' class='secondary'>Filter</button> "
        f"<a id='csv-runs' href='{base}/history.csv?{csv_runs}'>Runs CSV</a>"
        f"<a id='csv-orders' href='{base}/history.csv?{csv_orders}'>Orders CSV</a></form>"
    )


def card_pager(base: str, shown: int, pages: int, query: Mapping[str, str]) -> str:
    """Links to the other pages of portfolio cards (``?page=N``), keeping the other filters."""
    if pages <= 1:
        return ""
    links = []
    for n in range(1, pages + 1):
        if n == shown:
            links.append(f"<b>{n}</b>")
        else:
            href = escape(urlencode(dict(query) | {"page": str(n)}))
            links.append(f"<a href='{base}/?{href}'>{n}</a>")
    return f"<div class='filters' id='card-pages'>portfolio pages: {' '.join(links)}</div>"
