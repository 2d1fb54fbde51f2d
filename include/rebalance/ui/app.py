"""The Rebalance page: a FastAPI app mounted by the plugin under ``/rebalance``.

Routes (relative to the mount):

- ``GET /``                      portfolios (next / last rebalance, last status) and run history
                                 (``?portfolio=ID`` narrows it to one portfolio)
- ``GET /runs/{id}``             one run: summary, links to Airflow, weights chart, orders, events
- ``GET /runs/{id}/weights.svg`` the before/after weights chart as a picture
- Preview, Run now, following a run and CSV export: ``preview_routes.py``

Authentication: Airflow mounts plugin apps as they are, without its own checks, so every route
depends on ``viewer``: it resolves the caller with Airflow's own ``get_user`` (the JWT in the
``Authorization: Bearer`` header, else the UI's ``_token`` cookie, validated by the configured auth
manager), then asks the auth manager which of the portfolios' DAGs this user may read (DAG runs,
``GET``). Runs of other DAGs are neither listed nor shown (404). No token: 401 with a sign-in
link. The history database is opened inside the handlers only.

Bad requests get a clear 4xx page, never a 500: a run id that is not a whole number from 1 to
2^63-1 or names no readable run, an unknown portfolio (404); odd portfolio files (a name that
gives no id, not a regular file, too big, not loading) become a card with the problem.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response

from rebalance.domain.market import IST
from rebalance.drift.config import Trigger, TriggerMode
from rebalance.ui import render

if TYPE_CHECKING:
    from rebalance.history.records import RunRecord
    from rebalance.history.store import HistoryStore

MAX_RUN_ID = 2**63 - 1  # the history's run ids are PostgreSQL bigints
CARDS_PER_PAGE = 50  # portfolio cards per page of the overview (`?page=N`)
DRIFT_DAYS = 90  # the portfolio view's drift chart covers this many calendar days
MAX_PORTFOLIO_FILE_BYTES = 1_000_000  # a portfolio file is a few kB; a bigger one is not read
_PORTFOLIO_ID = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")


@dataclass
class Viewer:
    """Who is looking, and which DAG ids they may read."""

    name: str
    can_read: Callable[[set[str]], set[str]] = field(repr=False)


async def viewer(request: Request) -> Viewer:
    """The signed-in Airflow user (Airflow's ``get_user``) and their readable DAGs."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.security import HTTPBearer

    credentials = await HTTPBearer(auto_error=False)(request)
    user = await get_user(request, None, credentials)
    request.state.airflow_user = user  # for the write checks (actions.can_trigger)

    from airflow.api_fastapi.app import get_auth_manager

    manager = get_auth_manager()

    def can_read(dag_ids: set[str]) -> set[str]:
        allowed = manager.filter_authorized_dag_ids(dag_ids=dag_ids, user=user, method="GET")
        return {
            d
            for d in allowed
            if manager.is_authorized_dag(
                method="GET", access_entity=DagAccessEntity.RUN, details=_dag(d), user=user
            )
        }

    return Viewer(name=str(user.get_name()), can_read=can_read)


def _dag(dag_id: str) -> Any:
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    return DagDetails(id=dag_id)


ViewerDep = Annotated[Viewer, Depends(viewer)]


def _base(request: Request) -> str:
    """The mount prefix (``/rebalance`` inside Airflow, empty in a bare test client)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _store() -> HistoryStore:
    from rebalance.wiring import open_store

    return open_store()


def portfolio_rows() -> list[dict[str, Any]]:
    """Every portfolio file: id, name, dag_id, schedule and timetable, or its problem. The
    files come from dag_factory's (path, stat) cache: parsed once per change, not per request."""
    from rebalance.dag_factory import loaded_portfolio
    from rebalance.portfolio import portfolio_files, portfolio_id_from_path
    from rebalance.settings import portfolios_dir

    rows: list[dict[str, Any]] = []
    for path in portfolio_files(portfolios_dir()):
        try:
            pid = portfolio_id_from_path(path)
        except Exception as exc:  # no id, so no DAG: shown by its file name
            rows.append({"id": path.name, "dag_id": None, "error": str(exc)[:500]})
            continue
        problem = _unreadable(path)
        if problem:
            rows.append({"id": pid, "dag_id": f"rebalance_{pid}", "error": f"{path}: {problem}"})
            continue
        portfolio, timetable, problems = loaded_portfolio(path)
        if portfolio is None or timetable is None:
            error = f"{path}: {'; '.join(problems) or 'cannot be loaded'}"
            rows.append({"id": pid, "dag_id": f"rebalance_{pid}", "error": error[:500]})
            continue
        rows.append(
            {
                "id": portfolio.id,
                "name": portfolio.name,
                "dag_id": portfolio.dag_id,
                "schedule": _trigger_summary(portfolio.trigger, timetable.summary),
                "timetable": timetable,
                "trigger": portfolio.trigger,
            }
        )
    return rows


def _trigger_summary(trigger: Trigger, schedule: str) -> str:
    """The card's one line on what starts a rebalance (docs/drift.md, the three triggers)."""
    if trigger.mode is TriggerMode.DRIFT:
        return (
            f"on drift (watch {trigger.watch_time:%H:%M} IST, at most once per "
            f"{trigger.min_trading_days_between} trading days)"
        )
    if trigger.mode is TriggerMode.SCHEDULE_AND_DRIFT:
        return f"{schedule}, only if outside bands"
    return schedule


def add_times(rows: list[dict[str, Any]], now: dt.datetime | None = None) -> None:
    """The next and last scheduled rebalance of the cards shown (the trading calendar's work).

    ``trigger: drift`` has no timetable rebalance: its card's "Next" is the next drift watch
    (on the portfolio's calendar), which rebalances only when a band is breached;
    ``schedule_and_drift`` shows the next scheduled date, which trades only if outside bands.
    """
    from rebalance.drift.config import watch_schedule
    from rebalance.timetable import TradingCalendarTimetable, rebalance_times

    for row in rows:
        if row.get("error"):
            continue
        trigger: Trigger | None = row.get("trigger")
        mode = trigger.mode if trigger is not None else TriggerMode.SCHEDULE
        try:
            if trigger is not None and mode is TriggerMode.DRIFT:
                watch = TradingCalendarTimetable(
                    watch_schedule(trigger.watch_time), row["timetable"].overrides
                )
                _, row["next"], row["warning"] = rebalance_times(watch, now)
                row["last_scheduled"] = None
                row["next_label"] = "Next drift watch"
                row["next_note"] = "rebalances when a band is breached"
            else:
                row["last_scheduled"], row["next"], row["warning"] = rebalance_times(
                    row["timetable"], now
                )
                if mode is TriggerMode.SCHEDULE_AND_DRIFT:
                    row["next_note"] = "only if outside bands"
        except Exception as exc:  # a bad file is shown, not fatal to the page
            row["error"] = str(exc)[:500]


def _unreadable(path: Path) -> str | None:
    """Why the page does not read a portfolio file (a FIFO would block it, a huge one stall it)."""
    try:
        if not path.is_file():
            return "not a regular file"
        size = path.stat().st_size
    except OSError as exc:
        return f"cannot read the file: {exc.strerror}"
    if size > MAX_PORTFOLIO_FILE_BYTES:
        return f"{size:,} bytes: larger than {MAX_PORTFOLIO_FILE_BYTES:,}, not read"
    return None


def run_number(text: str) -> int:
    """The history run id in a URL, or 404: a whole number from 1 to 2^63-1."""
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_RUN_ID:
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise HTTPException(
            404, f"no rebalance run {shown!r}: a run id is a whole number from 1 to {MAX_RUN_ID}"
        )
    return int(text)


def create_app() -> FastAPI:
    app = FastAPI(
        title="Rebalance",
        description="Rebalance runs: history, preview and Run now.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code in (401, 403) and "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(render.login_page(_login_url(request)), status_code=exc.status_code)
        return _problem(exc.status_code, str(exc.detail))

    from sqlalchemy.exc import OperationalError

    @app.exception_handler(OperationalError)
    async def _history_down(request: Request, exc: OperationalError) -> Response:
        return _problem(503, "the history database is unavailable; try again shortly")

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        fields = ", ".join(".".join(str(x) for x in e.get("loc", ())) for e in exc.errors())
        return _problem(400, f"bad request: {fields or 'invalid parameters'}")

    @app.get("/", response_class=HTMLResponse)
    def overview(
        request: Request,
        who: ViewerDep,
        portfolio: str | None = None,
        status: str | None = None,
        account: str | None = None,
        since: dt.date | None = None,
        until: dt.date | None = None,
        page: int = 1,
    ) -> str:
        from rebalance.ui import actions, preview_page, preview_routes

        if portfolio is not None and not _PORTFOLIO_ID.match(portfolio):
            raise HTTPException(404, f"no portfolio {portfolio[:70]!r}")
        portfolios = portfolio_rows()
        dag_ids = {p["dag_id"] for p in portfolios if p["dag_id"]}
        readable = who.can_read(dag_ids | _run_dag_ids())
        # a file without an id has no DAG to ask about: its problem is shown to every viewer
        portfolios = [p for p in portfolios if p["dag_id"] is None or p["dag_id"] in readable]
        store = _store()
        pages = max(1, -(-len(portfolios) // CARDS_PER_PAGE))
        shown = min(max(page, 1), pages)
        portfolios = portfolios[(shown - 1) * CARDS_PER_PAGE : shown * CARDS_PER_PAGE]
        add_times(portfolios)
        last_runs = store.last_runs(p["id"] for p in portfolios if not p.get("error"))
        for p in portfolios:
            if not p.get("error"):
                p["last_run"] = last_runs.get(p["id"])
                may = actions.can_trigger(request, p["dag_id"])
                p["actions_html"] = preview_page.card_actions(_base(request), p["id"], may)
        runs = [r for r in store.runs(portfolio, limit=100) if r.dag_id in readable]
        if portfolio is not None and not runs and all(p["id"] != portfolio for p in portfolios):
            raise HTTPException(404, f"no portfolio {portfolio!r}")
        filters: dict[str, Any] = {
            "status": status,
            "account": account,
            "since": since,
            "until": until,
        }
        if any(filters.values()):
            runs = preview_routes.history_runs(
                store, who, portfolio, status, account, since, until
            )[:100]
        tools = preview_page.history_filters(_base(request), portfolio, filters)
        pager = preview_page.card_pager(_base(request), shown, pages, dict(request.query_params))
        drift = ""
        # One portfolio the viewer may read: its drift history (issue 13).
        if portfolio is not None and any(p["id"] == portfolio for p in portfolios):
            drift_since = dt.datetime.now(IST).date() - dt.timedelta(days=DRIFT_DAYS)
            drift = render.drift_section(store.drift_records(portfolio, since=drift_since), runs)
        return render.overview(
            portfolios, runs, _base(request), who.name, portfolio, tools, pager, drift
        )

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_detail(request: Request, run_id: str, who: ViewerDep) -> str:
        number = run_number(run_id)
        store = _store()
        run = _readable_run(store, number, who)
        from rebalance.ui.combined_view import combined_section

        return render.run_detail(
            run,
            store.orders(number),
            store.events(number),
            _base(request),
            combined_section(store, number, _base(request)),
        )

    @app.get("/runs/{run_id}/weights.svg")
    def weights_chart(run_id: str, who: ViewerDep) -> Response:
        run = _readable_run(_store(), run_number(run_id), who)
        positions = (run.plan or {}).get("positions") or []
        return Response(render.weights_svg(positions), media_type="image/svg+xml")

    from rebalance.ui.preview_routes import add_routes

    add_routes(app)
    return app


def _problem(status: int, detail: str) -> HTMLResponse:
    from html import escape

    return HTMLResponse(
        render.page("Rebalance", f"<h1>Rebalance</h1><p>{status}: {escape(detail)}</p>"),
        status_code=status,
    )


def _run_dag_ids() -> set[str]:
    from sqlalchemy import select

    from rebalance.history import tables

    with _store().engine.connect() as conn:
        return {str(d) for d in conn.execute(select(tables.runs.c.dag_id).distinct()).scalars()}


def _readable_run(store: HistoryStore, run_id: int, who: Viewer) -> RunRecord:
    from rebalance.history.store import RunNotFound

    try:
        run = store.run(run_id)
    except RunNotFound as exc:
        raise HTTPException(404, f"no rebalance run {run_id}") from exc
    if run.dag_id not in who.can_read({run.dag_id}):
        raise HTTPException(404, f"no rebalance run {run_id}")
    return run


def _login_url(request: Request) -> str:
    try:
        from airflow.api_fastapi.app import get_auth_manager

        return str(get_auth_manager().get_url_login(next_url=str(request.url)))
    except Exception:  # no auth manager (tests): Airflow's default login path
        return "/auth/login"
