"""The drift core is pure: importing it loads no Airflow, broker client or database driver."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("airflow", "kiteconnect", "SmartApi", "sqlalchemy", "psycopg", "pgserver", "requests")


def test_importing_the_drift_core_loads_nothing_heavy_or_impure() -> None:
    code = (
        "import json, sys\n"
        "import rebalance.drift.config, rebalance.drift.measure, rebalance.drift.record\n"
        "import rebalance.drift.render, rebalance.drift.since_last, rebalance.drift.trigger\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = set(json.loads(done.stdout))
    assert "rebalance" in loaded
    assert loaded.isdisjoint(FORBIDDEN), sorted(loaded & set(FORBIDDEN))
