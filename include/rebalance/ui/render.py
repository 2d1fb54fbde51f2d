"""HTML and SVG of the Rebalance page: pure functions of history rows, no I/O.

Everything user-controlled goes through ``html.escape``. No external assets (there is no internet on
the machines that run this): the chart is server-rendered SVG. One small inline script,
``TOP_LINKS``, makes links into Airflow work inside Airflow's iframe (see there).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from rebalance.domain.formatting import drift_change, inr, money, outcome, pct, policy_summary
from rebalance.domain.market import IST
from rebalance.domain.solver import stored_solver
from rebalance.task_ids import approval_task_id
from rebalance.tax_preview import html as tax_html
from rebalance.ui.targets_view import targets_section

if TYPE_CHECKING:
    from rebalance.drift.record import DriftRecord
    from rebalance.history.records import EventRecord, LegRecord, RunRecord

STATUS_COLOURS = {
    "completed": "#1a7f37",
    "complete": "#1a7f37",
    "placed": "#1a7f37",
    "approved": "#0969da",
    "awaiting_approval": "#9a6700",
    "planned": "#6e7781",
    "started": "#6e7781",
    "placing": "#0969da",
    "partially_filled": "#bc4c00",
    "rejected": "#cf222e",
    "expired": "#cf222e",
    "invalid": "#cf222e",
    "failed": "#cf222e",
    "interrupted": "#bc4c00",  # approved legs never sent: resume finishes them
    "not_sent": "#bc4c00",
    "skipped": "#6e7781",  # refused before planning, with its reason (not a failure)
}

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;padding:16px 24px;
color:#1f2328;background:#fff;font-size:14px}
h1{font-size:22px;margin:0 0 12px}h2{font-size:17px;margin:24px 0 8px}
a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}
table{border-collapse:collapse;width:100%;margin:4px 0 12px}
th,td{border-bottom:1px solid #d0d7de;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #d0d7de;border-radius:8px;padding:12px 16px;min-width:260px}
.card h3{margin:0 0 6px;font-size:15px}.muted{color:#656d76}.warn{color:#9a6700}
.badge{display:inline-block;border-radius:10px;padding:1px 8px;color:#fff;font-size:12px}
.links a{margin-right:14px}.kv td:first-child{color:#656d76;width:180px}
nav.crumbs{margin-bottom:10px}
.card .links{margin-top:8px}.filters a{margin-right:10px}.filters{margin:6px 0}
@media (max-width:640px){body{padding:8px}.card{min-width:0;flex:1 1 100%}
table{font-size:12px}th,td{padding:4px}}
"""


TOP_LINKS = """
document.addEventListener('click', function (event) {
  var link = event.target.closest ? event.target.closest('a[data-airflow]') : null;
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey ||
      event.shiftKey || event.altKey || window.top === window) { return; }
  event.preventDefault();
  try {
    var doc = window.top.document, proxy = doc.createElement('a');
    proxy.href = link.href;
    proxy.style.display = 'none';
    doc.body.appendChild(proxy);
    proxy.click();
    proxy.remove();
  } catch (e) {
    window.location.href = link.href;
  }
});
"""
"""Opens a link into Airflow (``data-airflow``) in the whole window, also from inside Airflow.

Airflow 3.3 shows the page in an iframe sandboxed with ``allow-scripts allow-same-origin
allow-forms allow-downloads``: no ``allow-top-navigation`` (``target=_top`` does nothing) and no
``allow-popups`` (``target=_blank`` does nothing). The frame is same-origin, so the script clicks a
copy of the link in the top document instead: that navigation starts from Airflow's own,
unsandboxed page. Opened on its own (``/rebalance/``), the page needs no script: ``target=_top``.
If the top document is out of reach (a different origin), the link opens inside the frame.
"""


def airflow_link(href: str, text: str, element_id: str | None = None) -> str:
    """A link to a page of the Airflow UI that opens in the whole window (``TOP_LINKS``)."""
    attr_id = f" id='{element_id}'" if element_id else ""
    return f"<a{attr_id} href='{escape(href)}' target='_top' data-airflow>{text}</a>"


def when(value: Any) -> str:
    """A timestamp in IST, ``-`` for none."""
    if value is None:
        return "-"
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return escape(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return f"{value.astimezone(IST):%Y-%m-%d %H:%M} IST"


def badge(status: str) -> str:
    colour = STATUS_COLOURS.get(status.split(" ")[0], "#6e7781")
    return f'<span class="badge" style="background:{colour}">{escape(status)}</span>'


def dag_href(dag_id: str) -> str:
    """The DAG's page in the Airflow UI."""
    return f"/dags/{quote(dag_id, safe='')}"


def airflow_run_href(dag_id: str, airflow_run_id: str) -> str:
    """The run's page in the Airflow UI."""
    return f"/dags/{quote(dag_id, safe='')}/runs/{quote(airflow_run_id, safe=':+')}"


def approval_href(dag_id: str, airflow_run_id: str, account: str) -> str:
    """The lane's approval task in Airflow's Required Actions."""
    task_id = quote(approval_task_id(account), safe="")
    return f"{airflow_run_href(dag_id, airflow_run_id)}/tasks/{task_id}/required_actions"


def page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{CSS}</style><script>{TOP_LINKS}</script></head>"
        f"<body>{body}</body></html>"
    )


def login_page(login_url: str) -> str:
    return page(
        "Rebalance: sign in",
        "<h1>Rebalance</h1><p>This page is served under Airflow's authentication. "
        f"{airflow_link(login_url, 'Sign in to Airflow')}, then come back.</p>",
    )


def portfolio_cards(portfolios: Sequence[Mapping[str, Any]], base: str) -> str:
    """Per portfolio: next and last rebalance, the last run's status (notes 8 and 11.1)."""
    if not portfolios:
        return "<p class='muted'>No portfolio files.</p>"
    cards = []
    for p in portfolios:
        if p.get("error"):
            cards.append(
                f"<div class='card' data-portfolio='{escape(p['id'])}'><h3>{escape(p['id'])}</h3>"
                f"<div class='warn'>invalid portfolio file: {escape(p['error'])}</div></div>"
            )
            continue
        last_run = p.get("last_run")
        if last_run:
            status = badge(outcome(last_run.status, last_run.placement))
            last = (
                f"{when(last_run.created_at)} {status} "
                f"<a href='{base}/runs/{last_run.id}'>run {last_run.id}</a>"
            )
        else:
            last = "<span class='muted'>never</span>"
        warning = f"<div class='warn'>{escape(p['warning'])}</div>" if p.get("warning") else ""
        cards.append(
            f"<div class='card' data-portfolio='{escape(p['id'])}'>"
            f"<h3><a href='{base}/?portfolio={quote(p['id'])}'>{escape(p['name'])}</a></h3>"
            f"<div class='muted'>{escape(p['id'])} · {escape(p['schedule'])} · DAG "
            f"{airflow_link(dag_href(p['dag_id']), escape(p['dag_id']))}</div>"
            f"<table class='kv'>{next_row(p)}"
            f"<tr><td>Last run</td><td>{last}</td></tr></table>{warning}"
            f"{p.get('actions_html', '')}</div>"
        )
    return f"<div class='cards'>{''.join(cards)}</div>"


def next_row(p: Mapping[str, Any]) -> str:
    """The card's "Next" rows: the next rebalance (``schedule_and_drift``: only if outside
    bands) and the last scheduled slot, or for ``trigger: drift`` the next drift watch."""
    note = p.get("next_note")
    shown = when(p.get("next")) + (
        f" <span class='muted next-note'>{escape(note)}</span>" if note else ""
    )
    label = escape(p.get("next_label") or "Next rebalance")
    rows = f"<tr class='next'><td>{label}</td><td>{shown}</td></tr>"
    if not p.get("next_label"):  # a timetable: its last slot too
        rows += f"<tr><td>Last scheduled slot</td><td>{when(p.get('last_scheduled'))}</td></tr>"
    return rows


def runs_table(runs: Iterable[RunRecord], base: str) -> str:
    """The history table of notes 11.3."""
    rows = []
    for r in runs:
        rows.append(
            f"<tr data-run='{r.id}'><td><a href='{base}/runs/{r.id}'>{r.id}</a></td>"
            f"<td>{when(r.created_at)}</td>"
            f"<td>{escape(r.portfolio_name)}<div class='muted'>{escape(r.account)} "
            f"({escape(r.broker)}) · {escape(r.mode)} · {escape(r.initiator)}</div></td>"
            f"<td>{escape(policy_summary(r.policy))}</td>"
            f"<td class='num'>{pct(r.turnover_pct)}</td>"
            f"<td class='num'>{drift_change(r.max_drift_before, r.max_drift_after)}</td>"
            f"<td class='num'>{'-' if r.trades is None else r.trades}</td>"
            f"<td>{badge(outcome(r.status, r.placement))}</td>"
            f"<td><a href='{base}/runs/{r.id}'>View details</a> · "
            f"{airflow_link(airflow_run_href(r.dag_id, r.airflow_run_id), 'Airflow run')}"
            "</td></tr>"
        )
    if not rows:
        return "<p class='muted'>No runs recorded yet.</p>"
    head = (
        "<tr><th>run id</th><th>created</th><th>portfolio</th><th>policy</th>"
        "<th class='num'>turnover</th><th class='num'>drift reduced</th>"
        "<th class='num'>trades</th><th>status</th><th></th></tr>"
    )
    return f"<table id='runs'>{head}{''.join(rows)}</table>"


def orders_table(orders: Sequence[LegRecord]) -> str:
    """Every leg with what happened to it."""
    if not orders:
        return "<p class='muted'>No orders (nothing to trade, or the run stopped before).</p>"
    rows = []
    for o in orders:
        reasons = ", ".join(str(x) for x in (o.reasons or []))
        filled = f"{o.filled_quantity or 0}/{o.quantity}"
        rows.append(
            f"<tr><td class='num'>{o.leg}</td><td>{escape(o.side)}</td>"
            f"<td>{escape(o.symbol)}</td><td class='num'>{o.quantity}</td>"
            f"<td class='num'>{o.price:,.2f}</td><td class='num'>{o.notional:,.2f}</td>"
            f"<td class='num'>{(o.charges or 0):,.2f}</td><td>{escape(reasons)}</td>"
            f"<td>{badge(str(o.state))}</td><td class='num'>{filled}</td>"
            f"<td class='num'>{money(o.average_price)}</td>"
            f"<td>{escape(str(o.broker_order_id or '-'))}</td>"
            f"<td>{escape(str(o.error or ''))}</td></tr>"
        )
    head = (
        "<tr><th class='num'>leg</th><th>side</th><th>symbol</th><th class='num'>qty</th>"
        "<th class='num'>price</th><th class='num'>notional</th><th class='num'>charges</th>"
        "<th>why</th><th>outcome</th><th class='num'>filled</th><th class='num'>avg price</th>"
        "<th>broker order</th><th>error</th></tr>"
    )
    return f"<table id='orders'>{head}{''.join(rows)}</table>"


def events_table(events: Sequence[EventRecord]) -> str:
    rows = "".join(
        f"<tr><td>{when(e.at)}</td><td>{escape(str(e.from_status or ''))} → "
        f"{escape(str(e.to_status))}</td><td>{escape(str(e.message or ''))}</td></tr>"
        for e in events
    )
    return f"<table><tr><th>at</th><th>status</th><th>message</th></tr>{rows}</table>"


def weights_svg(positions: Sequence[Mapping[str, Any]]) -> str:
    """Before / target / after weight per symbol as horizontal bars (a standalone SVG)."""
    rows = sorted(positions, key=lambda p: str(p["symbol"]))
    label_w, bar_w, right = 120, 460, 220
    row_h, top = 34, 40
    width = label_w + bar_w + right
    height = top + row_h * max(len(rows), 1) + 20
    keys = ("weight_before", "target_weight", "weight_after")
    values = [float(p.get(k) or 0) for p in rows for k in keys]
    scale_max = max([0.01, *values]) * 1.1
    x = lambda w: label_w + bar_w * (float(w) / scale_max)  # noqa: E731
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' font-family='system-ui,sans-serif' font-size='12' "
        "role='img' aria-labelledby='t'><title id='t'>Weights before and after, per symbol"
        "</title><rect width='100%' height='100%' fill='#fff'/>",
        "<rect x='120' y='10' width='14' height='10' fill='#afb8c1'/>"
        "<text x='138' y='19'>before</text>"
        "<rect x='200' y='10' width='14' height='10' fill='#0969da'/>"
        "<text x='218' y='19'>after</text>"
        "<line x1='270' y1='8' x2='270' y2='22' stroke='#cf222e' stroke-width='2'/>"
        "<text x='276' y='19'>target</text>",
    ]
    for i, p in enumerate(rows):
        y = top + i * row_h
        before = float(p.get("weight_before") or 0)
        after = float(p.get("weight_after") or 0)
        target = float(p.get("target_weight") or 0)
        parts.append(
            f"<text x='{label_w - 8}' y='{y + 17}' text-anchor='end'>{escape(str(p['symbol']))}"
            "</text>"
            f"<rect x='{label_w}' y='{y + 3}' width='{x(before) - label_w:.1f}' height='11' "
            f"fill='#afb8c1'><title>before {100 * before:.2f}%</title></rect>"
            f"<rect x='{label_w}' y='{y + 15}' width='{x(after) - label_w:.1f}' height='11' "
            f"fill='#0969da'><title>after {100 * after:.2f}%</title></rect>"
            f"<line x1='{x(target):.1f}' y1='{y + 1}' x2='{x(target):.1f}' y2='{y + 28}' "
            f"stroke='#cf222e' stroke-width='2'><title>target {100 * target:.2f}%</title></line>"
            f"<text x='{label_w + bar_w + 8}' y='{y + 17}' fill='#1f2328'>"
            f"{100 * before:.2f}% → {100 * after:.2f}% "
            f"<tspan fill='#656d76'>(t {100 * target:.1f}%)</tspan></text>"
        )
    if not rows:
        parts.append(f"<text x='{label_w}' y='{top + 16}' fill='#656d76'>no plan</text>")
    parts.append("</svg>")
    return "".join(parts)


def run_detail(
    run: RunRecord,
    orders: Sequence[LegRecord],
    events: Sequence[EventRecord],
    base: str,
    combined: str = "",
) -> str:
    """One run: summary, links to Airflow, weights chart, orders with outcomes, events.

    ``combined``: the combined run this run is a part of, as HTML (``ui/combined_view.py``)."""
    dag_id, airflow_run_id = str(run.dag_id), str(run.airflow_run_id)
    plan = run.plan or {}
    kv = [
        ("Portfolio", f"{escape(run.portfolio_name)} ({escape(run.portfolio_id)})"),
        ("Account", f"{escape(run.account)} ({escape(run.broker)})"),
        ("Mode / initiator", f"{escape(run.mode)} / {escape(run.initiator)}"),
        (
            "Status",
            badge(outcome(run.status, run.placement)) + f" {escape(str(run.status_reason or ''))}",
        ),
        ("Created", when(run.created_at)),
        (
            "Approved",
            f"{when(run.approved_at)} "
            f"{escape(str(run.approval_decision or ''))} "
            f"{escape(str(run.approved_by or ''))}",
        ),
        ("Finished", when(run.finished_at)),
        ("Policy", escape(policy_summary(run.policy))),
        ("Portfolio value", inr(run.portfolio_value)),
        ("Turnover", pct(run.turnover_pct)),
        ("Budget used", pct(run.budget_used_pct)),
        ("Max drift", drift_change(run.max_drift_before, run.max_drift_after)),
        ("Trades", str(run.trades if run.trades is not None else "-")),
        ("Estimated charges", inr(run.estimated_charges)),
        ("Plan made by", escape(stored_solver(run.plan))),
        ("Airflow run", f"{escape(dag_id)} / {escape(airflow_run_id)}"),
    ]
    rows = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in kv)
    links = (
        "<div class='links'>"
        + airflow_link(airflow_run_href(dag_id, airflow_run_id), "Airflow run ↗", "airflow-run")
        + airflow_link(
            approval_href(dag_id, airflow_run_id, str(run.account)),
            "Approval (Required Actions) ↗",
            "approval",
        )
        + f"<a href='{base}/?portfolio={quote(str(run.portfolio_id))}'>All runs of this "
        "portfolio</a></div>"
    )
    chart = (
        f"<img id='weights-chart' src='{base}/runs/{run.id}/weights.svg' "
        "alt='Weights before and after, per symbol'>"
        if plan.get("positions")
        else "<p class='muted'>No plan: no weights to show.</p>"
    )
    body = (
        f"<nav class='crumbs'><a href='{base}/'>Rebalance</a> › run {run.id}</nav>"
        f"<h1>Run {run.id}: {escape(run.portfolio_name)} · {escape(run.account)}</h1>"
        f"{links}<table class='kv'>{rows}</table>"
        f"{breach_section(run.trigger_event)}"
        f"{combined}"
        f"{targets_section(run.targets)}"
        f"<h2>Weights before and after</h2>{chart}"
        f"<h2>Orders and outcomes</h2>{orders_table(orders)}"
        f"{tax_html(plan.get('tax'))}"
        f"<h2>Events</h2>{events_table(events)}"
    )
    return page(f"Rebalance run {run.id}", body)


def overview(
    portfolios: Sequence[Mapping[str, Any]],
    runs: Sequence[RunRecord],
    base: str,
    user: str,
    portfolio_filter: str | None,
    history_tools: str = "",
    cards_pager: str = "",
    drift: str = "",
) -> str:
    """The page: portfolio cards, then (one portfolio) its drift section, then the runs."""
    heading = "History" + (f" of {escape(portfolio_filter)}" if portfolio_filter else "")
    clear = f" · <a href='{base}/'>all portfolios</a>" if portfolio_filter else ""
    body = (
        f"<h1>Rebalance</h1><div class='muted'>signed in as {escape(user)} · "
        "times in IST</div><h2>Portfolios</h2>"
        f"{portfolio_cards(portfolios, base)}{cards_pager}{drift}<h2>{heading}</h2>"
        f"<div class='muted'>newest first{clear}</div>{history_tools}{runs_table(runs, base)}"
    )
    return page("Rebalance", body)


def drift_svg(records: Sequence[DriftRecord], rebalance_days: Iterable[dt.date] = ()) -> str:
    """Total and max drift of one portfolio over time (one line each per account), the absolute
    band as a dashed line, and the days a rebalance ran or was triggered marked (standalone
    SVG, server-rendered like ``weights_svg``)."""
    read = [r for r in records if r.total_drift is not None]
    days = sorted({r.day for r in records} | set(rebalance_days))
    left, plot_w, right, top, plot_h = 56, 560, 150, 30, 200
    width, height = left + plot_w + right, top + plot_h + 50
    bands = [r.band_abs_pct / 100.0 for r in read if r.band_abs_pct is not None]
    band = bands[-1] if bands else None
    peak = max([0.01, *(r.total_drift or 0.0 for r in read), *([band] if band else [])]) * 1.1
    if len(days) > 1:
        span = (days[-1] - days[0]).days or 1
        x = lambda d: left + plot_w * (d - days[0]).days / span  # noqa: E731
    else:
        x = lambda d: left + plot_w / 2  # noqa: E731
    y = lambda v: top + plot_h * (1 - v / peak)  # noqa: E731
    parts = [
        f"<svg id='drift-chart' xmlns='http://www.w3.org/2000/svg' width='{width}' "
        f"height='{height}' viewBox='0 0 {width} {height}' font-family='system-ui,sans-serif' "
        "font-size='12' role='img' aria-labelledby='dt'><title id='dt'>Total and max drift over "
        "time, with the band and the rebalances</title><rect width='100%' height='100%' "
        "fill='#fff'/>",
        f"<line x1='{left}' y1='{top + plot_h}' x2='{left + plot_w}' y2='{top + plot_h}' "
        "stroke='#d0d7de'/>",
        f"<text x='{left - 6}' y='{top + 4}' text-anchor='end'>{peak:.1%}</text>"
        f"<text x='{left - 6}' y='{top + plot_h + 4}' text-anchor='end'>0%</text>",
    ]
    if band is not None:
        parts.append(
            f"<line x1='{left}' y1='{y(band):.1f}' x2='{left + plot_w}' y2='{y(band):.1f}' "
            "stroke='#cf222e' stroke-dasharray='5 4'><title>abs band</title></line>"
            f"<text x='{left + plot_w + 6}' y='{y(band) + 4:.1f}' fill='#cf222e'>"
            f"band {band:.2%}</text>"
        )
    for day in sorted(set(rebalance_days)):
        parts.append(
            f"<line class='rebalance' x1='{x(day):.1f}' y1='{top}' x2='{x(day):.1f}' "
            f"y2='{top + plot_h}' stroke='#8250df' stroke-width='2'>"
            f"<title>rebalance {day}</title></line>"
        )
    for account in sorted({r.account for r in read}):
        series = sorted((r for r in read if r.account == account), key=lambda r: r.day)
        for key, colour in (("total_drift", "#0969da"), ("max_drift", "#bf8700")):
            points = " ".join(f"{x(r.day):.1f},{y(getattr(r, key) or 0.0):.1f}" for r in series)
            parts.append(
                f"<polyline class='{key}' points='{points}' fill='none' stroke='{colour}' "
                f"stroke-width='2'><title>{escape(account)} {key.replace('_', ' ')}</title>"
                "</polyline>"
            )
            parts += [
                f"<circle cx='{x(r.day):.1f}' cy='{y(getattr(r, key) or 0.0):.1f}' r='3' "
                f"fill='{colour}'><title>{r.day} {escape(account)} {key.replace('_', ' ')} "
                f"{getattr(r, key) or 0.0:.2%}</title></circle>"
                for r in series
            ]
    legend_y = top + plot_h + 30
    parts.append(
        f"<rect x='{left}' y='{legend_y - 9}' width='14' height='4' fill='#0969da'/>"
        f"<text x='{left + 18}' y='{legend_y}'>total drift</text>"
        f"<rect x='{left + 100}' y='{legend_y - 9}' width='14' height='4' fill='#bf8700'/>"
        f"<text x='{left + 118}' y='{legend_y}'>max drift</text>"
        f"<rect x='{left + 200}' y='{legend_y - 12}' width='3' height='12' fill='#8250df'/>"
        f"<text x='{left + 208}' y='{legend_y}'>rebalance</text>"
    )
    if days:
        parts.append(
            f"<text x='{left}' y='{top + plot_h + 14}'>{days[0]}</text>"
            f"<text x='{left + plot_w}' y='{top + plot_h + 14}' text-anchor='end'>{days[-1]}"
            "</text>"
        )
    else:
        parts.append(f"<text x='{left + 8}' y='{top + 20}' fill='#656d76'>no drift records</text>")
    parts.append("</svg>")
    return "".join(parts)


def drift_section(records: Sequence[DriftRecord], runs: Sequence[RunRecord]) -> str:
    """The portfolio view's drift history: the chart, or why there is none."""
    if not records:
        return (
            "<h2>Drift</h2><p class='muted'>No drift records yet: the drift watch records each "
            "account every trading day (docs/drift.md).</p>"
        )
    rebalances = {r.created_at.astimezone(IST).date() for r in runs}
    rebalances |= {r.day for r in records if r.triggered}
    return f"<h2>Drift</h2>{drift_svg(records, sorted(rebalances))}"


def breach_section(event: Mapping[str, Any] | None) -> str:
    """The run detail's "started by a drift breach" section, from the stored asset extra."""
    if not event:
        return ""
    items = []
    for account in event.get("accounts") or []:
        symbols = ", ".join(
            f"{escape(str(s.get('symbol')))} {float(s.get('drift') or 0):+.2%} "
            f"(band {float(s.get('band') or 0):.2%})"
            for s in account.get("symbols") or []
        )
        items.append(
            f"<li>{escape(str(account.get('account')))}: {symbols}; total drift "
            f"{float(account.get('total_drift') or 0):.2%}</li>"
        )
    return (
        "<h2>Started by a drift breach</h2>"
        f"<p id='breach'>The drift watch of {escape(str(event.get('day')))} found:</p>"
        f"<ul>{''.join(items)}</ul>"
    )
