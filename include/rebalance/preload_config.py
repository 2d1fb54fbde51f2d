"""The settings that preload the task modules in the executors' workers (Local and Celery).

Cheap to import (no pandas, no Great Expectations): the local Airflow (``rebalance airflow``),
the live-Airflow harness and the benchmarks read these, docker-compose.yaml repeats them, and
tests/unit/quality/test_worker_preload.py checks that Airflow resolves them as meant. What the
preload imports, and why, is ``rebalance.worker_preload``'s docstring and docs/quality.md.
"""

from __future__ import annotations

import json

#: The module the scheduler's fork server imports once (pandas, Pandera, Great Expectations).
PRELOAD_MODULE = "rebalance.worker_preload"

#: Airflow 3.3's ``[scheduler] mp_start_method`` and ``[scheduler] mp_forkserver_preload``: only
#: the scheduler (and so the LocalExecutor's workers) use them; the dag-processor, the triggerer
#: and the API server keep their default start method and never import the module.
SCHEDULER_PRELOAD_ENV = {
    "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
    "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": PRELOAD_MODULE,
}

#: The Celery provider's ``[celery] extra_celery_config`` (a JSON object merged into the Celery
#: app's configuration) with Celery's ``imports`` setting: ``airflow celery worker`` imports the
#: module once in its main process (``loader.init_worker``, before it starts its prefork pool), so
#: each pool process is forked with it, and each task process (forked by Airflow's supervisor from
#: a pool process) inherits it too. Set it on the workers only: ``celery flower`` imports the
#: ``imports`` modules as well; the scheduler and the API server never do.
CELERY_PRELOAD_ENV = {
    "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG": json.dumps({"imports": [PRELOAD_MODULE]}),
}
