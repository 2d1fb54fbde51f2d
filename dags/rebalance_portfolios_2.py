"""Airflow DAGs: one rebalance DAG per portfolio file of shard 2 of the portfolio folder.

Each portfolio file's DAG is built by one of the files ``rebalance_portfolios_<k>.py``, picked by
a stable hash of its file name (``rebalance.dag_factory.shard_of``), so that no single parse
carries every portfolio. A DAG runs, per broker account: fetch_holdings -> validate_snapshot ->
plan_trades -> approval -> place_orders -> record_run. A portfolio file that fails to load is a DAG
of its own whose one task fails, naming the file and every error (docs/dags.md).
"""

from rebalance.dag_factory import build_shard

globals().update(build_shard(__file__))
