"""The manual queue's wait for a person (``execution.mode: manual_queue``, notes 13.4), without
holding a worker slot.

``place_orders`` exports the basket and then needs a person to place it by hand and run ``rebalance
mark-placed RUN``, which can take hours. Instead of sleeping in the task (a worker slot held all
that time), ``manual_queue.place_by_hand`` raises ``WaitForPerson`` when nobody has marked the
basket yet; the operator then defers to ``ManualQueueTrigger`` (Airflow's triggerer polls the
history database, no worker is used) and resumes ``place_orders`` when the basket is marked placed
or the approval's validity ends. The resumed task reconciles exactly as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from rebalance.manual_queue import WaitForPerson, wait_outcome


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ManualQueueTrigger(BaseTrigger):
    """Fires once run ``run_id``'s basket is marked placed or ``until`` (ISO time) has passed.

    Runs in the triggerer (or inline under ``dag.test()``): each poll is one short read of the
    history database in a thread, so the event loop is never blocked.
    """

    def __init__(self, run_id: int, until: str | None, poll_seconds: float) -> None:
        super().__init__()
        self.run_id = run_id
        self.until = until
        self.poll_seconds = poll_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"run_id": self.run_id, "until": self.until, "poll_seconds": self.poll_seconds},
        )

    def _check(self) -> str | None:
        from rebalance import wiring

        until = datetime.fromisoformat(self.until) if self.until else None
        return wait_outcome(wiring.open_store(), self.run_id, until, _utcnow)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while (why := await asyncio.to_thread(self._check)) is None:
            await asyncio.sleep(self.poll_seconds)
        yield TriggerEvent({"run": self.run_id, "why": why})


def defer_until_placed(step: Any, wait: WaitForPerson) -> None:
    """Defer ``step`` (the place_orders operator) to ``ManualQueueTrigger``; Airflow resumes it
    with ``resume_manual_queue``. Raises TaskDeferred."""
    until = wait.until.isoformat() if wait.until else None
    step.defer(
        trigger=ManualQueueTrigger(wait.run_id, until, wait.poll_seconds),
        method_name="resume_manual_queue",
    )
