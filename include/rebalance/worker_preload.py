"""What an executor's worker imports once, before it forks task processes: importing this module.

Airflow 3 starts every task in a process of its own, forked (``os.fork``) from a long-lived
worker (the LocalExecutor's worker processes; a Celery worker's pool processes). A task process
that imports the task bodies, pandas, Pandera and Great Expectations itself pays 10 s or more of
CPU for it: GX about 8 s in ``validate_snapshot``, the planner's libraries (through the history
store) in every task. Imported here, in the process the workers are forked from, the modules are
inherited copy-on-write and a task pays only its own work.

How it is wired (``rebalance.preload_config``; docs/quality.md, "Where Great Expectations runs"):
with the LocalExecutor, ``[scheduler] mp_start_method = forkserver`` and ``[scheduler]
mp_forkserver_preload = rebalance.worker_preload`` (Airflow 3.3's settings). The scheduler starts
a fork server that imports this module; the executor's workers are forked from it, and each task
process from a worker. The scheduler itself, the dag-processor and the API server never import it.
With the CeleryExecutor, Celery's ``imports`` setting names it on the workers (``[celery]
extra_celery_config``; ``preload_config.CELERY_PRELOAD_ENV``): ``airflow celery worker`` imports it
before it forks its prefork pool, and Airflow's supervisor forks each task process from a pool
process.

Importing it also runs one small validation (the Pandera schema and the GX suite, Data Docs into a
temporary folder), which loads what Pandera and GX import lazily on first use (Pandera's pandas
backends, GX's Data Docs site builder). Nothing else imports this module: DAG files and task bodies
import ``rebalance.quality`` lazily as before (tests/dags/test_dagbag.py checks that parsing a DAG
file imports neither pandas nor Great Expectations).
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

# What the tasks import: GX, pandas and Pandera for validate_snapshot; the task bodies, the history
# store and the planner (its solver libraries) for every task.
import great_expectations
import great_expectations.core.run_identifier
import great_expectations.data_context.types.base
import great_expectations.expectations.row_conditions  # noqa: F401 (preloaded)
import pandas as pd
import pandera  # noqa: F401 (preloaded)

import rebalance.tasks
import rebalance.wiring  # noqa: F401 (preloaded)
from rebalance import quality, snapshot


def warm_up() -> None:
    """One validation of a two-row snapshot, its Data Docs into a folder removed afterwards."""
    now = datetime.now(UTC)
    positions = pd.DataFrame(
        {
            "symbol": ["AAA", "BBB"],
            "exchange": ["NSE", "NSE"],
            "quantity": [1, 0],
            "sellable_quantity": [1, 0],
            "last_price": [100.0, 50.0],
        }
    )
    checked = snapshot.snapshot_from_frame(
        positions, source="worker preload", cash=0.0, taken_at=now
    )
    with tempfile.TemporaryDirectory(prefix="rebalance-preload-") as docs:
        quality.check_snapshot(
            checked,
            target_symbols=["AAA", "BBB"],
            now=now,
            max_age=timedelta(minutes=5),
            docs_dir=Path(docs),
        )


warm_up()
