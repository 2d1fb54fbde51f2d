"""``rebalance resume RUN`` and ``rebalance settle RUN``: finish or close a stopped placement.

The CLI (``cli/resume.py``) builds the run's lane (``lane.lane_of_run``) and broker, then calls
``resume_run``, which reuses the lane's own task bodies (the price-move stop and
``place_orders``), so a resumed placement follows exactly the rules of the DAG's task.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rebalance.brokers.base import Broker
from rebalance.execution import ExecutionSettings, settle_interrupted, unfinished_legs
from rebalance.history.status import RunStatus
from rebalance.history.store import HistoryStore
from rebalance.lane import Lane, NotResumable
from rebalance.tasks import Clock, check_prices_unchanged, place_orders


def resume_run(
    lane: Lane,
    store: HistoryStore,
    broker: Broker,
    *,
    settle_only: bool = False,
    settings: ExecutionSettings | None = None,
    now: Clock | None = None,
) -> dict[str, Any]:
    """Finish an interrupted placement, or (``settle_only``) settle it from the book.

    Resume: a run ``interrupted`` (or left ``placing`` with no placer alive) sends its legs not
    yet sent, in the same run with the same tags, after the price-move rule and only within the
    approval's validity; then the run is closed. ``settle_only`` (``rebalance settle``): settle
    from the book, send nothing, close the run for good.
    """
    run_id = lane.run_id(store)
    record = store.run(run_id)
    status = record.run_status
    if status not in (RunStatus.INTERRUPTED, RunStatus.PLACING):
        raise NotResumable(
            f"run {run_id} is {status}: only an interrupted placement (status interrupted or "
            "placing) can be resumed or settled"
        )
    if not settle_only and "manual_queue" in (record.placement or {}):
        raise NotResumable(
            f"run {run_id} waits for a person to place its basket by hand: place it, then "
            f"`rebalance mark-placed {run_id}` (the run reconciles the account's holdings then)"
        )
    if settle_only:
        settle_interrupted(
            store,
            run_id,
            broker,
            settings=lane.execution_settings(settings),
            now=now or (lambda: datetime.now(UTC)),
            why="settled by `rebalance settle`",
            resumable=False,
            close=True,
        )
    else:
        check_prices_unchanged(lane, store, broker, settings)
        place_orders(
            lane, store, broker, record.plan_hash or "", settings=settings, now=now, resume=True
        )
        if store.status(run_id) in (RunStatus.PLACED, RunStatus.PARTIALLY_FILLED):
            store.transition(run_id, RunStatus.COMPLETED, None)
    record = store.run(run_id)
    return {
        "run": run_id,
        "status": record.status,
        "reason": record.status_reason,
        "unfinished": unfinished_legs(record.placement),
    }
