"""place_orders runs on the queue of REBALANCE_ORDERS_QUEUE (CeleryExecutor, registered IP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rebalance.dag_factory import build_dag
from rebalance.portfolio import load_portfolio

EXAMPLE = Path(__file__).resolve().parents[2] / "portfolios" / "example.yaml"


def queues(monkeypatch: pytest.MonkeyPatch, value: str | None) -> dict[str, str]:
    if value is None:
        monkeypatch.delenv("REBALANCE_ORDERS_QUEUE", raising=False)
    else:
        monkeypatch.setenv("REBALANCE_ORDERS_QUEUE", value)
    dag = build_dag(EXAMPLE, load_portfolio(EXAMPLE))
    return {task.task_id: task.queue for task in dag.tasks}


def test_place_orders_goes_to_the_orders_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    found = queues(monkeypatch, "orders")
    placing = {t: q for t, q in found.items() if t.endswith(".place_orders")}
    assert len(placing) == 2  # one per account lane of the example
    assert set(placing.values()) == {"orders"}
    others = {q for t, q in found.items() if t not in placing}
    assert others == {"default"}


@pytest.mark.parametrize("value", [None, "", "  "])
def test_unset_means_the_default_queue_everywhere(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    assert set(queues(monkeypatch, value).values()) == {"default"}
