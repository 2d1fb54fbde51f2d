"""The drift watch DAGs: one per distinct ``trigger.watch_time`` (and holiday override file).

Imported by ``dags/rebalance_drift_watch.py``. Built from the same folder scan as the rebalance
DAGs (``dag_factory.folder_entries``, cached per file), so a watch adds one DAG to the folder,
not one per portfolio, and reads nothing but the portfolio files at parse time (no database, no
network). Portfolio files that do not load are left out: they have their own failing DAG.

The watch runs on the portfolios' own trading calendar, as their rebalance timetable does: the
holiday override file's content is embedded in the watch's timetable (no watch on a holiday it
declares), and special sessions are watch days (the market is open: Muhurat trading, a Saturday
session), the watch moving inside a session that has hours (``RebalanceSchedule.run_time``).
Portfolios with different override files get one watch DAG each per watch time
(``watch_dag_id``); in practice every portfolio names the same yearly file, so one DAG.

Each watch DAG, on every trading day at its watch time (IST):

* ``read_accounts``: mapped over batches of accounts (``drift_watch.batches``: by broker, at
  most 25 a batch). Each account is read in its own ``try`` (``drift_watch.read_account``): a
  failure is that account's "not read" record, not a failed task;
* ``decide``: records each portfolio's day, alerts once per breach, sends one "log in" notice a
  day per expired connection, and for each ``trigger: drift`` portfolio that breaches adds an
  event for its asset ``rebalance_<id>_drift`` through the alias ``rebalance_drift_breaches``
  (its only outlet), with the breach as the event's extra. A task's declared outlet assets are
  all updated when it succeeds, so the alias is what lets one task trigger only some DAGs.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, AssetAlias, BaseOperator

from rebalance.alerts import failure_notifiers
from rebalance.calendar import HolidayOverrides
from rebalance.dag_factory import START_DATE, PortfolioFacts, folder_entries
from rebalance.drift.config import WatchTarget, batches, breach_asset_name, watch_schedule
from rebalance.portfolio import Portfolio, resolve_relative
from rebalance.timetable import TradingCalendarTimetable

WATCH_DAG_PREFIX = "rebalance_drift_watch"
BREACH_ALIAS = "rebalance_drift_breaches"
# The read tasks are read-only and each account is tried on its own; one retry heals a worker lost
# mid-batch (an account read twice the same day is merged, never alerted twice).
READ_RETRIES = 1


def watch_dag_id(watch_time: dt.time, overrides_file: Path | None = None) -> str:
    """``rebalance_drift_watch_1000`` for 10:00 IST; with a holiday override file,
    ``rebalance_drift_watch_1000_<file stem>`` (e.g. ``..._1000_nse_holidays_2027``)."""
    dag_id = f"{WATCH_DAG_PREFIX}_{watch_time:%H%M}"
    if overrides_file is not None:
        dag_id += "_" + (re.sub(r"[^A-Za-z0-9_]+", "_", overrides_file.stem).strip("_") or "cal")
    return dag_id


def breach_asset(portfolio_id: str) -> Asset:
    """The asset a ``trigger: drift`` portfolio's rebalance DAG is scheduled on."""
    return Asset(name=breach_asset_name(portfolio_id))


def watch_timetable(
    watch_time: dt.time, overrides: HolidayOverrides | None = None
) -> TradingCalendarTimetable:
    """Every trading day and special session (NSE/BSE calendar with ``overrides``, the
    portfolios' holiday override file) at ``watch_time`` IST."""
    return TradingCalendarTimetable(
        watch_schedule(watch_time), overrides, portfolio=WATCH_DAG_PREFIX
    )


class ReadAccountsOperator(BaseOperator):
    """Reads one batch of accounts (read-only) and returns their drift records as JSON."""

    def __init__(self, *, batch: list[dict[str, str]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch = batch

    def execute(self, context: Any) -> list[dict[str, Any]]:
        from rebalance import wiring
        from rebalance.drift_watch import read_account
        from rebalance.portfolio import load_portfolio

        store = wiring.open_store()
        now = dt.datetime.now(dt.UTC)
        portfolios: dict[str, Portfolio] = {}
        records = []
        for target in self.batch:
            path = target["portfolio_file"]
            if path not in portfolios:
                portfolios[path] = load_portfolio(path)
            portfolio = portfolios[path]
            record = read_account(
                portfolio,
                target["account"],
                partial(_watch_broker, target, context),
                now=now,
                store=store,
            )
            self.log.info(
                "%s/%s: %s %s",
                record.portfolio_id,
                record.account,
                record.status,
                record.not_read_reason or f"total drift {record.total_drift:.2%}",
            )
            records.append(record.to_dict())
        return records


def _watch_broker(target: dict[str, str], context: Any) -> Any:
    """The account's broker for reading only (a dry-run lane: no order can follow from it). A
    login that cannot work (expired Kite token, wrong AngelOne credentials) is an AuthError, so
    the account is "not read (session_expired)"."""
    from rebalance import wiring
    from rebalance.brokers.base import AuthError
    from rebalance.lane import Lane, LaneStopped

    lane = Lane(
        portfolio_file=target["portfolio_file"],
        account=target["account"],
        dag_id=context["dag_run"].dag_id,
        airflow_run_id=context["dag_run"].run_id,
        params={"mode": "dry_run"},
    )
    try:
        return wiring.broker_for(lane)
    except LaneStopped as exc:
        raise AuthError(target["broker"], str(exc)) from None


class DecideOperator(BaseOperator):
    """Records, decides and alerts for every portfolio; adds the breach asset events."""

    def __init__(
        self,
        *,
        read_task_id: str,
        batch_count: int,
        portfolio_files: dict[str, str],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.read_task_id = read_task_id
        self.batch_count = batch_count
        self.portfolio_files = portfolio_files  # portfolio id -> its file

    def execute(self, context: Any) -> dict[str, str]:
        from rebalance import wiring
        from rebalance.alerts import send_drift_notice
        from rebalance.calendar import overrides_for_portfolio, trading_calendar
        from rebalance.drift.record import DriftRecord
        from rebalance.drift_watch import decide_portfolio
        from rebalance.portfolio import load_portfolio

        # Explicit map indexes: a list back even for one batch (one index alone gives its value).
        batches_out = context["ti"].xcom_pull(
            task_ids=self.read_task_id, map_indexes=range(self.batch_count)
        )
        by_file: dict[str, list[DriftRecord]] = defaultdict(list)
        files = self.portfolio_files
        for batch in batches_out:
            for row in batch or []:
                record = DriftRecord.from_dict(row)
                by_file[files[record.portfolio_id]].append(record)
        store = wiring.open_store()
        summary: dict[str, str] = {}
        events = context["outlet_events"][AssetAlias(BREACH_ALIAS)]
        for path, records in sorted(by_file.items()):
            portfolio = load_portfolio(path)
            calendar = trading_calendar(overrides_for_portfolio(portfolio, path))
            outcome = decide_portfolio(
                store,
                portfolio,
                records,
                calendar=calendar,
                notify=lambda text: send_drift_notice(text, context),
            )
            summary[portfolio.id] = str(outcome.decision.action)
            self.log.info("%s: %s", portfolio.id, outcome.decision.reason)
            if outcome.event_extra is not None:
                events.add(breach_asset(portfolio.id), extra=outcome.event_extra)
        return summary


def build_watch_dag(
    watch_time: dt.time,
    portfolios: list[tuple[Path, PortfolioFacts]],
    overrides: HolidayOverrides | None = None,
    dag_id: str | None = None,
) -> DAG:
    """The watch DAG of the portfolios whose watch is at ``watch_time`` on the calendar of
    ``overrides`` (the holiday override file they share); ``portfolios``: their files and what
    the load cache keeps of them (``dag_factory.PortfolioFacts``)."""
    targets = [
        WatchTarget(str(path), p.id, a.name, a.broker) for path, p in portfolios for a in p.accounts
    ]
    mapped = batches(targets)
    names = ", ".join(p.id for _, p in portfolios)
    with DAG(
        dag_id=dag_id or watch_dag_id(watch_time),
        description=f"Daily drift watch at {watch_time:%H:%M} IST (read-only): {names}",
        schedule=watch_timetable(watch_time, overrides),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=["rebalance", "drift"],
        default_args={"owner": "rebalance", "on_failure_callback": failure_notifiers()},
        doc_md=(
            f"### Drift watch, {watch_time:%H:%M} IST\n\nReads {len(targets)} account(s) of "
            f"{len(portfolios)} portfolio(s) in {len(mapped)} batch(es), read-only, and records "
            "each account's drift; a `trigger: drift` portfolio that breaches gets a rebalance "
            "run through its asset (docs/drift.md).\n"
        ),
    ) as dag:
        read = ReadAccountsOperator.partial(task_id="read_accounts", retries=READ_RETRIES).expand(
            batch=mapped
        )
        decide = DecideOperator(
            task_id="decide",
            read_task_id="read_accounts",
            batch_count=len(mapped),
            portfolio_files={p.id: str(path) for path, p in portfolios},
            outlets=[AssetAlias(BREACH_ALIAS)],
        )
        read >> decide
    return dag


def build_watch_dags(folder: Path) -> dict[str, DAG]:
    """One watch DAG per distinct watch time and holiday override file of the folder's valid
    portfolios (the overrides as the portfolio's rebalance timetable embeds them).

    The portfolios of the most common calendar at a watch time get the plain id
    (``rebalance_drift_watch_1000``), so the usual single yearly file never renames the DAG;
    any other calendar at that time adds a DAG named after its file (``watch_dag_id``).
    """
    groups: dict[tuple[dt.time, str], list[tuple[Path, PortfolioFacts]]] = defaultdict(list)
    calendars: dict[tuple[dt.time, str], tuple[Path | None, HolidayOverrides | None]] = {}
    for entry in folder_entries(folder):
        if entry.facts is None or entry.problems:
            continue
        path, facts = entry.path.resolve(), entry.facts
        overrides_file = None
        if facts.holiday_overrides is not None:
            overrides_file = resolve_relative(path, facts.holiday_overrides).resolve()
        key = (facts.watch_time, str(overrides_file or ""))
        groups[key].append((path, facts))
        overrides = entry.timetable.overrides if entry.timetable is not None else None
        calendars[key] = (overrides_file, overrides)
    # largest group of each watch time first: it gets the plain id
    order = sorted(groups, key=lambda k: (k[0], -len(groups[k]), k[1]))
    dags: dict[str, DAG] = {}
    for key in order:
        overrides_file, overrides = calendars[key]
        dag_id = base = watch_dag_id(key[0])
        if dag_id in dags:
            dag_id = base = watch_dag_id(key[0], overrides_file)
        number = 1
        while dag_id in dags:  # two override files of one name in different folders
            number += 1
            dag_id = f"{base}_{number}"
        dags[dag_id] = build_watch_dag(key[0], groups[key], overrides, dag_id)
    return dags


def build_watch_file() -> dict[str, DAG]:
    """The DAGs of ``dags/rebalance_drift_watch.py``."""
    from rebalance.settings import portfolios_dir

    return build_watch_dags(portfolios_dir())
