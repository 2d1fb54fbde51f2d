"""Session-wide test setup: a private AIRFLOW_HOME and a real embedded PostgreSQL.

Airflow reads its configuration when first imported, so the environment is set here, before any
test module imports it. Tests never touch the developer's .airflow/, .pgdata/ or .state/.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="rebalance-tests-"))

os.environ["AIRFLOW_HOME"] = str(_SESSION_DIR / "airflow")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(PROJECT_ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(PROJECT_ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
os.environ["REBALANCE_STATE_DIR"] = str(_SESSION_DIR / "state")
os.environ["REBALANCE_PGDATA"] = str(_SESSION_DIR / "pgdata")
os.environ.pop("REBALANCE_DB_URL", None)
# dag.test() of Airflow 3.3.2 cannot finish a successful run of a DAG with a deadline alert (its
# update_state looks the in-memory alerts up as database ids); the live-Airflow tests turn it on.
os.environ["REBALANCE_DEADLINE_ALERTS"] = "off"


@pytest.fixture(scope="session")
def session_dir() -> Path:
    return _SESSION_DIR


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A real PostgreSQL (pgserver) for the whole session; yields a URL to its admin database."""
    import pgserver

    server = pgserver.get_server(_SESSION_DIR / "pgdata", cleanup_mode="stop")
    yield f"postgresql+psycopg://postgres:@/postgres?host={_SESSION_DIR / 'pgdata'}"
    del server


@pytest.fixture
def history_db(pg_server_url: str) -> Iterator[str]:
    """A fresh, migrated history database for one test; its URL is in REBALANCE_DB_URL."""
    from sqlalchemy import create_engine, text

    from rebalance.history.migrate import upgrade

    name = f"history_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = f"postgresql+psycopg://postgres:@/{name}?host={_SESSION_DIR / 'pgdata'}"
    upgrade(url)
    previous = os.environ.get("REBALANCE_DB_URL")
    os.environ["REBALANCE_DB_URL"] = url
    yield url
    if previous is None:
        os.environ.pop("REBALANCE_DB_URL", None)
    else:
        os.environ["REBALANCE_DB_URL"] = previous
    from rebalance.history.database import engine_for

    engine_for(url).dispose()
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def store(history_db: str):  # type: ignore[no-untyped-def]
    from rebalance.history.database import engine_for
    from rebalance.history.store import HistoryStore

    return HistoryStore(engine_for(history_db))


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata database (sqlite under the session's AIRFLOW_HOME), migrated once."""
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)
    return Path(os.environ["AIRFLOW_HOME"])
