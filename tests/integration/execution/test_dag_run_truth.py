"""The DAG run's state is the truth (through Airflow: dag.test, real Postgres).

A lane that cannot start because its connection is missing fails at once, without retry, leaves
a failed history record naming the connection, and makes the DAG run failed; a deselected lane
stays skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rebalance.dag_factory import build_dag
from rebalance.history.status import RunStatus
from rebalance.portfolio import load_portfolio

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_missing_connection_fails_the_dag_run_with_a_record(
    airflow_db: Path,
    store,  # type: ignore[no-untyped-def]
    demo_copy: Path,
) -> None:
    portfolio = yaml.safe_load(demo_copy.read_text())
    portfolio["accounts"].append(
        {"name": "zerodha_main", "broker": "zerodha", "connection_id": "kite_nowhere"}
    )
    demo_copy.write_text(yaml.safe_dump(portfolio))

    dag = build_dag(demo_copy, load_portfolio(demo_copy))
    dag_run = dag.test(run_conf={"accounts": ["zerodha_main"]})

    assert str(dag_run.state) == "failed"
    states = {ti.task_id: (str(ti.state), ti.try_number) for ti in dag_run.get_task_instances()}
    assert states["zerodha_main.fetch_holdings"] == ("failed", 1)  # no retry
    assert states["zerodha_main.record_run"][0] == "failed"  # after recording it
    assert states["paper.fetch_holdings"][0] == "skipped"  # deselected
    assert states["paper.record_run"][0] == "skipped"
    (run,) = store.runs("demo")
    assert run.account == "zerodha_main"
    assert run.status == RunStatus.FAILED
    assert "connection 'kite_nowhere' is not defined" in run.status_reason
    assert "docs/brokers.md#connection-fields" in run.status_reason
