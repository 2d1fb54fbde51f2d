"""Routes of the card's Preview, Run now, following a run, and the history's CSV export.

- ``GET  /preview/{portfolio}``            plan now with the form's what-if parameters
- ``POST /preview/{portfolio}/run``        Run now: trigger the DAG with exactly those Params
- ``GET  /follow/{dag_id}/{run_id}``       the triggered run: approval, orders, outcome
- ``POST /follow/{dag_id}/{run_id}/answer`` approve or reject the lane's approval
- ``GET  /history.csv?kind=runs|orders``   the history table (with its filters) as CSV

Writes go through ``actions`` (the user's token, Airflow's permission, the CSRF checks).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from rebalance.ui import actions, preview_page
from rebalance.ui.app import _PORTFOLIO_ID, ViewerDep, _base, _store
from rebalance.ui.whatif import PreviewError, SnapshotCache, WhatIf, preview_accounts

if TYPE_CHECKING:
    from rebalance.history.records import RunRecord
    from rebalance.portfolio import Portfolio

RUN_COLUMNS = (
    "id",
    "created_at",
    "portfolio_id",
    "account",
    "broker",
    "mode",
    "initiator",
    "status",
    "turnover_pct",
    "max_drift_before",
    "max_drift_after",
    "trades",
    "estimated_charges",
    "dag_id",
    "airflow_run_id",
    "policy",
)
ORDER_COLUMNS = (
    "run_id",
    "leg",
    "symbol",
    "exchange",
    "side",
    "quantity",
    "price",
    "notional",
    "charges",
    "state",
    "filled_quantity",
    "average_price",
    "broker_order_id",
    "error",
)


async def form_fields(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as a dict (the last value of a name)."""
    body = (await request.body()).decode("utf-8", "replace")
    return dict(parse_qsl(body, keep_blank_values=True))


FormDep = Annotated[dict[str, str], Depends(form_fields)]


def find_portfolio(portfolio_id: str) -> tuple[Portfolio, Path]:
    """The portfolio file of that id, loaded; 404 if there is none or it does not load."""
    from rebalance.portfolio import load_portfolio, portfolio_files, portfolio_id_from_path
    from rebalance.settings import portfolios_dir

    if not _PORTFOLIO_ID.match(portfolio_id):
        raise HTTPException(404, f"no portfolio {portfolio_id[:70]!r}")
    for path in portfolio_files(portfolios_dir()):
        try:
            if portfolio_id_from_path(path) == portfolio_id:
                return load_portfolio(path), path
        except Exception as exc:
            raise HTTPException(404, f"portfolio {portfolio_id!r} does not load: {exc}") from None
    raise HTTPException(404, f"no portfolio {portfolio_id!r}")


def _readable_portfolio(portfolio_id: str, who: Any) -> tuple[Portfolio, Path]:
    portfolio, path = find_portfolio(portfolio_id)
    if portfolio.dag_id not in who.can_read({portfolio.dag_id}):
        raise HTTPException(404, f"no portfolio {portfolio_id!r}")
    return portfolio, path


def filter_runs(
    runs: list[RunRecord],
    *,
    status: str | None,
    account: str | None,
    since: dt.date | None,
    until: dt.date | None,
) -> list[RunRecord]:
    """The history's filters: status, account, created from ``since`` to ``until`` (IST days)."""
    from rebalance.domain.market import IST

    kept = []
    for r in runs:
        day = r.created_at.astimezone(IST).date() if r.created_at else None
        if status and str(r.status) != status:
            continue
        if account and r.account != account:
            continue
        if since and (day is None or day < since):
            continue
        if until and (day is None or day > until):
            continue
        kept.append(r)
    return kept


def add_routes(app: FastAPI) -> None:
    app.state.snapshots = SnapshotCache()
    app.state.previewed = {}  # (dag_id, airflow_run_id) -> {account: plan dict}

    @app.get("/preview/{portfolio_id}", response_class=HTMLResponse)
    def preview(request: Request, portfolio_id: str, who: ViewerDep) -> HTMLResponse:
        portfolio, path = _readable_portfolio(portfolio_id, who)
        if not actions.can_trigger(request, portfolio.dag_id):
            raise HTTPException(403, f"you may not run {portfolio.dag_id}, so no preview either")
        query = dict(request.query_params)
        source = query.get("source", "fresh")
        if source not in ("fresh", "stored"):
            raise HTTPException(400, "source: fresh or stored")
        problem: str | None = None
        try:
            whatif = WhatIf.parse(portfolio, query)
        except PreviewError as exc:
            whatif, problem = WhatIf.defaults(portfolio), str(exc)
        previews = preview_accounts(
            user=who.name,
            portfolio=portfolio,
            portfolio_file=str(path),
            whatif=whatif,
            source=source,
            refresh=query.get("refresh") == "1",
            cache=request.app.state.snapshots,
            store=_store,
        )
        html = preview_page.preview_page(
            base=_base(request),
            portfolio=portfolio,
            whatif=whatif,
            source=source,
            previews=previews,
            may_trigger=True,
            csrf=actions.csrf_token(request),
            problem=problem,
        )
        return HTMLResponse(html, status_code=400 if problem else 200)

    @app.post("/preview/{portfolio_id}/run")
    def run_now(request: Request, portfolio_id: str, who: ViewerDep, form: FormDep) -> Response:
        actions.check_write(request, form.get("csrf", ""))
        portfolio, path = _readable_portfolio(portfolio_id, who)
        if not actions.can_trigger(request, portfolio.dag_id):
            raise HTTPException(403, f"you may not trigger {portfolio.dag_id}")
        try:
            whatif = WhatIf.parse(portfolio, form)
        except PreviewError as exc:
            raise HTTPException(400, str(exc)) from None
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
        airflow_run_id = f"preview__{stamp}+00:00"
        answer = actions.trigger(
            actions.airflow_client(request),
            portfolio.dag_id,
            airflow_run_id,
            whatif.conf(portfolio),
        )
        if not answer.ok:
            raise HTTPException(
                answer.status if answer.status in (400, 401, 403, 404, 409) else 502,
                f"Airflow refused the run: {answer.detail()}",
            )
        previews = preview_accounts(
            user=who.name,
            portfolio=portfolio,
            portfolio_file=str(path),
            whatif=whatif,
            source="fresh",
            refresh=False,
            cache=request.app.state.snapshots,
            store=_store,
        )
        request.app.state.previewed[(portfolio.dag_id, airflow_run_id)] = {
            p.account: p.plan.to_dict() for p in previews if p.plan is not None
        }
        return RedirectResponse(_follow_url(request, portfolio.dag_id, airflow_run_id), 303)

    @app.get("/follow/{dag_id}/{airflow_run_id}", response_class=HTMLResponse)
    def follow(request: Request, dag_id: str, airflow_run_id: str, who: ViewerDep) -> str:
        if dag_id not in who.can_read({dag_id}):
            raise HTTPException(404, f"no DAG {dag_id[:80]!r}")
        from rebalance.ui.whatif import plan_differences

        state = _dag_run_state(request, dag_id, airflow_run_id)
        store = _store()
        previewed = request.app.state.previewed.get((dag_id, airflow_run_id), {})
        lanes = []
        for run in _lanes(store, dag_id, airflow_run_id):
            differences = plan_differences(previewed.get(run.account), run.plan or {})
            lanes.append((run, store.orders(run.id), differences))
        return preview_page.follow_page(
            base=_base(request),
            dag_id=dag_id,
            airflow_run_id=airflow_run_id,
            state=state,
            lanes=lanes,
            may_answer=actions.can_trigger(request, dag_id),
            csrf=actions.csrf_token(request),
            message=request.query_params.get("message"),
        )

    @app.post("/follow/{dag_id}/{airflow_run_id}/answer")
    def answer(
        request: Request, dag_id: str, airflow_run_id: str, who: ViewerDep, form: FormDep
    ) -> Response:
        actions.check_write(request, form.get("csrf", ""))
        if dag_id not in who.can_read({dag_id}) or not actions.can_trigger(request, dag_id):
            raise HTTPException(403, f"you may not answer approvals of {dag_id[:80]}")
        decision = form.get("decision")
        if decision not in ("approve", "reject"):
            raise HTTPException(400, "decision: approve or reject")
        from rebalance.task_ids import approval_task_id

        account = form.get("account", "")
        reply = actions.answer_approval(
            actions.airflow_client(request),
            dag_id,
            airflow_run_id,
            approval_task_id(account),
            approve=decision == "approve",
        )
        message = f"{decision}d" if reply.ok else f"Airflow refused: {reply.detail()}"
        return RedirectResponse(
            _follow_url(request, dag_id, airflow_run_id) + "?" + urlencode({"message": message}),
            303,
        )

    @app.get("/history.csv")
    def history_csv(
        who: ViewerDep,
        kind: str = "runs",
        portfolio: str | None = None,
        status: str | None = None,
        account: str | None = None,
        since: dt.date | None = None,
        until: dt.date | None = None,
    ) -> Response:
        if kind not in ("runs", "orders"):
            raise HTTPException(400, "kind: runs or orders")
        store = _store()
        runs = history_runs(store, who, portfolio, status, account, since, until)
        if kind == "runs":
            rows = [{c: getattr(r, c, None) for c in RUN_COLUMNS} for r in runs]
            text = preview_page.csv_text(rows, RUN_COLUMNS)
        else:
            legs = [
                {"run_id": r.id} | {c: getattr(o, c, None) for c in ORDER_COLUMNS[1:]}
                for r in runs
                for o in store.orders(r.id)
            ]
            text = preview_page.csv_text(legs, ORDER_COLUMNS)
        return Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f"attachment; filename=rebalance-{kind}.csv"},
        )


def history_runs(
    store: Any,
    who: Any,
    portfolio: str | None,
    status: str | None,
    account: str | None,
    since: dt.date | None,
    until: dt.date | None,
    limit: int = 1000,
) -> list[RunRecord]:
    runs = store.runs(portfolio, limit=limit)
    readable = who.can_read({r.dag_id for r in runs})
    runs = [r for r in runs if r.dag_id in readable]
    return filter_runs(runs, status=status, account=account, since=since, until=until)


def _follow_url(request: Request, dag_id: str, airflow_run_id: str) -> str:
    return f"{_base(request)}/follow/{quote(dag_id, safe='')}/{quote(airflow_run_id, safe='')}"


def _lanes(store: Any, dag_id: str, airflow_run_id: str) -> list[RunRecord]:
    from sqlalchemy import select

    from rebalance.history import tables

    query = (
        select(tables.runs.c.id)
        .where(tables.runs.c.dag_id == dag_id, tables.runs.c.airflow_run_id == airflow_run_id)
        .order_by(tables.runs.c.account)
    )
    with store.engine.connect() as conn:
        ids = list(conn.execute(query).scalars())
    return [store.run(int(i)) for i in ids]


def _dag_run_state(request: Request, dag_id: str, airflow_run_id: str) -> str | None:
    """The DAG run's state from Airflow's API, as the user; None if it cannot be read."""
    client = actions.airflow_client(request)
    path = f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(airflow_run_id, safe='')}"
    try:
        with client:
            response = client.get(path)
    except Exception:  # the page still shows what the history knows
        return None
    if response.status_code != 200:
        return None
    return str(response.json().get("state"))
