"""Airflow DAGs: one rebalance DAG per portfolio file in ``portfolios/``, broken files included.

Each DAG runs, per broker account: fetch_holdings -> validate_snapshot -> plan_trades ->
approval -> place_orders -> record_run. All logic lives in the ``rebalance`` package.
"""

from rebalance.dag_factory import build_dags
from rebalance.settings import portfolios_dir

globals().update(build_dags(portfolios_dir()))
