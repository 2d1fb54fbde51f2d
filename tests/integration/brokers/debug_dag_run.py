"""Run one task that reads a broker connection, at DEBUG, with ``dag.test()`` (the in-process
supervisor); used by test_credentials_in_logs.py in a fresh process (Airflow reads its log level
at import). ``python debug_dag_run.py <new|plain> <dags folder>``."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

DAG_FILE = """
import os
from datetime import datetime

from airflow.sdk import dag, task


@dag(schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def reads_broker_connection():
    @task
    def read():
        if os.environ["LEAK_MODE"] == "new":
            from rebalance.brokers.connections import connection_credentials

            creds = connection_credentials("broker_under_test", "angelone")
        else:  # what the task layer did before: Airflow's own mask_secret
            from airflow.sdk import Connection
            from airflow.sdk.log import mask_secret

            conn = Connection.get("broker_under_test")
            creds = {"login": conn.login, "password": conn.password, "extra": conn.extra_dejson}
            for key in ("api_key", "totp_secret"):
                mask_secret(creds["extra"][key], name=key)
        from airflow.sdk._shared.secrets_masker import redact

        secrets = [creds["password"], creds["extra"]["api_key"], creds["extra"]["totp_secret"]]
        unmasked = [s for s in secrets if redact("x " + s) != "x ***"]
        if unmasked:
            raise RuntimeError(f"{len(unmasked)} credential(s) not registered with the masker")
        return "ok"

    read()


the_dag = reads_broker_connection()
"""


def main() -> None:
    mode, dags = sys.argv[1], Path(sys.argv[2])
    dags.mkdir(parents=True, exist_ok=True)
    (dags / "reads_broker_connection.py").write_text(DAG_FILE)
    os.environ["LEAK_MODE"] = mode
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)
    spec = importlib.util.spec_from_file_location("the_dag", dags / "reads_broker_connection.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = module.the_dag.test()
    print(f"DAG RUN STATE: {run.state}")


if __name__ == "__main__":
    main()
