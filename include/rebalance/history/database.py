"""Where the history database is, and how to reach it.

Resolution order: ``REBALANCE_DB_URL`` (any SQLAlchemy Postgres URL; a production server), else the
embedded PostgreSQL of development (pgserver: a real PostgreSQL shipped in a wheel) with its data
under ``REBALANCE_PGDATA`` (default ``<project>/.pgdata``).
"""

from __future__ import annotations

import os
import warnings
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from rebalance.settings import PROJECT_ROOT

DEFAULT_PGDATA = PROJECT_ROOT / ".pgdata"
EMBEDDED_DATABASE = "rebalance"


def normalise_url(url: str) -> str:
    """Make any Postgres URL (``postgres://``, ``postgresql://``) use the psycopg 3 driver."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername in ("postgresql", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def start_embedded(pgdata: Path | None = None) -> str:
    """Start (or attach to) the embedded PostgreSQL and return the history database's URL.

    The server keeps running after this process exits, so Airflow's task processes share it.
    """
    # platformdirs (used by pgserver) warns on machines without a login session; harmless here.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    import pgserver

    pgdata = Path(pgdata or os.environ.get("REBALANCE_PGDATA") or DEFAULT_PGDATA)
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE}';")
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {EMBEDDED_DATABASE};")
    return f"postgresql+psycopg://postgres:@/{EMBEDDED_DATABASE}?host={pgdata}"


def history_url() -> str:
    """The history database URL: ``REBALANCE_DB_URL`` or the embedded default."""
    configured = os.environ.get("REBALANCE_DB_URL")
    return normalise_url(configured) if configured else start_embedded()


@cache
def engine_for(url: str) -> Engine:
    """One pooled engine per URL and process."""
    return create_engine(url, pool_pre_ping=True, future=True)


def redacted(url: str) -> str:
    """The URL with its password hidden, for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)
