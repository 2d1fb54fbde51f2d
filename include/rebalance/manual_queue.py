"""``execution.mode: manual_queue`` (notes 13.4): a person places the approved plan by hand.

The approved plan is exported as basket CSVs in the state dir (paths in
``placement.manual_queue.baskets``); the run then waits until a person marks it placed
(``rebalance mark-placed RUN``, ``execution.mark_placed``) or the approval's validity ends, and
the account's holdings are reconciled against the plan, each leg's fill recorded
(``execution.reconcile_manual_queue``). Nothing is sent by us. While nobody has marked it,
``place_by_hand`` raises ``WaitForPerson``: the task defers (``manual_queue_wait``) instead of
holding a worker, and runs again when the basket is marked or the validity ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import NoReturn

from rebalance.brokers.base import Broker
from rebalance.domain.market import IST, Instrument
from rebalance.execution import ExecutionSettings, legs_of, reconcile_manual_queue, valid_until_of
from rebalance.history.records import RunRecord
from rebalance.history.status import RunStatus
from rebalance.history.store import HistoryStore
from rebalance.plan import TradePlan

log = logging.getLogger(__name__)


class WaitForPerson(Exception):  # noqa: N818 - a signal to defer, not an error
    """Nobody has marked the run's basket placed yet: wait (the operator defers, holding no
    worker: ``manual_queue_wait``) and run the task again."""

    def __init__(self, run_id: int, until: datetime | None, poll_seconds: float) -> None:
        when = f" (until {until.astimezone(IST):%H:%M IST})" if until else ""
        super().__init__(
            f"run {run_id}: waiting for a person to place the basket and run "
            f"`rebalance mark-placed {run_id}`{when}"
        )
        self.run_id = run_id
        self.until = until
        self.poll_seconds = poll_seconds


def wait_outcome(
    store: HistoryStore, run_id: int, until: datetime | None, clock: Callable[[], datetime]
) -> str | None:
    """Why the wait for run ``run_id``'s basket is over, or None while it goes on."""
    queue = (store.run(run_id).placement or {}).get("manual_queue") or {}
    if queue.get("marked_placed_by"):
        return f"basket marked placed by {queue['marked_placed_by']}"
    if until is not None and clock() >= until:
        return f"nobody marked the basket placed by {until.astimezone(IST):%H:%M IST}"
    return None


class ManualQueueStopped(RuntimeError):  # noqa: N818 - a stop, recorded on the run
    """The basket could not be exported; the run is failed with this reason."""


def basket_folder(portfolio_id: str, run_id: int) -> Path:
    """Where the manual queue writes a run's basket CSVs (the state dir)."""
    from rebalance.settings import state_dir

    return state_dir() / "baskets" / portfolio_id / str(run_id)


def place_by_hand(
    store: HistoryStore,
    broker: Broker,
    record: RunRecord,
    approved_hash: str,
    *,
    portfolio_id: str,
    account: str,
    broker_name: str,
    tag_seed: str,
    settings: ExecutionSettings,
    valid_until: datetime | None,
    clock: Callable[[], datetime],
) -> tuple[int, str]:
    """Export the basket (run ``approved``), then, once the person has marked it placed (else
    ``WaitForPerson``), reconcile (run ``placing`` with a basket): the legs placed and the run's
    status. A run in any other state
    is left as it is. Raises ``ManualQueueStopped`` after failing the run when the stored plan
    is not the approved one or the basket cannot be exported."""
    from rebalance.brokers.basket import BasketError, export_baskets

    run_id = record.id
    status = record.run_status
    placement = dict(record.placement or {})
    if status is RunStatus.APPROVED:
        if not record.plan or record.plan_hash != approved_hash:
            _stop(store, run_id, "the stored plan is not the approved plan")
        plan = TradePlan.from_dict(record.plan)
        if not plan.orders:
            store.transition(run_id, RunStatus.COMPLETED, "nothing to order")
            return 0, "completed"
        name = broker_name
        instruments = [Instrument(o.symbol, o.exchange) for o in plan.orders]
        quotes = broker.quotes(instruments)
        tokens = getattr(broker, "symbol_tokens", None)  # AngelOne: the basket needs tokens
        try:
            files = export_baskets(
                record.plan,
                name,
                policy=settings.pricing,
                quotes=quotes,
                tokens=tokens(instruments) if tokens else None,
            )
        except BasketError as exc:
            _stop(store, run_id, f"could not export the basket: {exc}")
        folder = basket_folder(portfolio_id, run_id)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for number, text in enumerate(files, start=1):
            path = folder / f"{name}_{number}.csv"
            path.write_text(text)
            paths.append(str(path))
        placement["manual_queue"] = {"baskets": paths}
        if valid_until is not None:
            placement["valid_until"] = valid_until.isoformat()
        store.transition(
            run_id,
            RunStatus.PLACING,
            f"basket exported to {folder}: place it by hand, then `rebalance mark-placed {run_id}`",
            executed_at=clock(),
            placement=placement,
        )
        store.write_orders_ahead(run_id, legs_of(plan, tag_seed, account), approved_hash)
        log.info("%s: run %d basket written: %s", account, run_id, ", ".join(paths))
    elif status is not RunStatus.PLACING or "manual_queue" not in placement:
        return 0, str(status)
    until = valid_until_of(store.run(run_id))
    why = wait_outcome(store, run_id, until, clock)
    if why is None:
        raise WaitForPerson(run_id, until, settings.poll_seconds)
    result = reconcile_manual_queue(store, run_id, broker.holdings(), why)
    log.info("%s: run %d %s: %s", account, run_id, result.status, result.reason)
    return result.placed, str(result.status)


def _stop(store: HistoryStore, run_id: int, reason: str) -> NoReturn:
    store.transition(run_id, RunStatus.FAILED, reason)
    raise ManualQueueStopped(reason)
