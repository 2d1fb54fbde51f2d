"""Airflow DAGs: the daily drift watch, one DAG per distinct ``trigger.watch_time``.

Every trading day at its watch time (IST) it reads each portfolio's accounts (read-only, mapped
over batches of accounts), records each account's drift in history, alerts once per breach, and
starts the rebalance of each ``trigger: drift`` portfolio that breaches through its asset
(docs/drift.md). Broken portfolio files are left out: they have their own failing DAG.
"""

from rebalance.drift_dag import build_watch_file

globals().update(build_watch_file())
