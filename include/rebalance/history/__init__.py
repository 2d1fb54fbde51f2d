"""Rebalance history in its own Postgres database (never Airflow's metadata DB).

``tables`` defines the schema (SQLAlchemy Core), ``migrations/`` evolves it (Alembic), ``status``
owns the run and order state machines, ``store`` reads and writes runs, ``database`` finds the
database (a server from ``REBALANCE_DB_URL`` or the embedded PostgreSQL of development).
"""
