"""The drift watch DAGs: one per distinct ``trigger.watch_time`` of the portfolio folder.

Imported by ``dags/rebalance_drift_watch.py``. Built from the same folder scan as the rebalance
DAGs (``dag_factory.folder_entries``, cached per file), so a watch adds one DAG to the folder,
not one per portfolio, and reads nothing but the portfolio files at parse time (no database, no
network). Portfolio files that do not load are left out: they have their own failing DAG.

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
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, AssetAlias, BaseOperator

from rebalance.alerts import failure_notifiers
from rebalance.dag_factory import START_DATE, folder_entries
from rebalance.drift.config import WatchTarget, batches, breach_asset_name
from rebalance.portfolio import Portfolio
from rebalance.schedule import Frequency, Schedule
from rebalance.timetable import TradingCalendarTimetable

WATCH_DAG_PREFIX = "rebalance_drift_watch"
BREACH_ALIAS = "rebalance_drift_breaches"
# The read tasks are read-only and each account is tried on its own; one retry heals a worker lost
# mid-batch (an account read twice the same day is merged, never alerted twice).
READ_RETRIES = 1


def watch_dag_id(watch_time: dt.time) -> str:
    """``rebalance_drift_watch_1000`` for 10:00 IST."""
    return f"{WATCH_DAG_PREFIX}_{watch_time:%H%M}"


def breach_asset(portfolio_id: str) -> Asset:
    """The asset a ``trigger: drift`` portfolio's rebalance DAG is scheduled on."""
    return Asset(name=breach_asset_name(portfolio_id))


def watch_timetable(watch_time: dt.time) -> TradingCalendarTimetable:
    """Every trading day (NSE/BSE calendar) at ``watch_time`` IST."""
    schedule = Schedule(frequency=Frequency.CUSTOM_DAYS, every_n_trading_days=1, time=watch_time)
    return TradingCalendarTimetable(schedule, portfolio=WATCH_DAG_PREFIX)


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


def build_watch_dag(watch_time: dt.time, portfolios: list[tuple[Path, Portfolio]]) -> DAG:
    """The watch DAG of the portfolios whose watch is at ``watch_time``."""
    targets = [
        WatchTarget(str(path), p.id, a.name, str(a.broker))
        for path, p in portfolios
        for a in p.accounts
    ]
    mapped = batches(targets)
    names = ", ".join(p.id for _, p in portfolios)
    with DAG(
        dag_id=watch_dag_id(watch_time),
        description=f"Daily drift watch at {watch_time:%H:%M} IST (read-only): {names}",
        schedule=watch_timetable(watch_time),
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
    """One watch DAG per distinct watch time of the folder's valid portfolios."""
    by_time: dict[dt.time, list[tuple[Path, Portfolio]]] = defaultdict(list)
    for entry in folder_entries(folder):
        if entry.portfolio is not None and not entry.problems:
            by_time[entry.portfolio.trigger.watch_time].append(
                (entry.path.resolve(), entry.portfolio)
            )
    return {
        watch_dag_id(when): build_watch_dag(when, portfolios)
        for when, portfolios in sorted(by_time.items())
    }


def build_watch_file() -> dict[str, DAG]:
    """The DAGs of ``dags/rebalance_drift_watch.py``."""
    from rebalance.settings import portfolios_dir

    return build_watch_dags(portfolios_dir())
