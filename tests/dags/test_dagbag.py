"""DAG integrity: every portfolio file gives a DAG of six tasks per account lane, in order."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from rebalance.dag_factory import (
    INVALID_TASK_ID,
    PLACE_RETRIES,
    RECORD_RETRIES,
    SHARDS,
    shard_of,
)
from rebalance.portfolio import load_portfolio, portfolio_files
from rebalance.task_ids import TASK_ORDER

ROOT = Path(__file__).resolve().parents[2]
PORTFOLIOS = ROOT / "portfolios"


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(str(ROOT / "dags"))


def test_no_import_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}


def test_one_dag_per_portfolio_file(dagbag: DagBag) -> None:
    expected = {f"rebalance_{p.stem}" for p in portfolio_files(PORTFOLIOS)}
    assert expected <= set(dagbag.dag_ids)
    assert "rebalance_demo" in dagbag.dag_ids


def test_each_portfolio_is_built_by_one_shard_file(dagbag: DagBag) -> None:
    shard_files = sorted(p.name for p in (ROOT / "dags").glob("rebalance_portfolios_*.py"))
    assert shard_files == [f"rebalance_portfolios_{k}.py" for k in range(SHARDS)]
    for path in portfolio_files(PORTFOLIOS):
        dag = dagbag.dags[load_portfolio(path).dag_id]
        assert Path(dag.fileloc).name == f"rebalance_portfolios_{shard_of(path)}.py"


@pytest.mark.parametrize("path", portfolio_files(PORTFOLIOS), ids=lambda p: p.stem)
def test_each_lane_has_the_six_tasks_in_order(dagbag: DagBag, path: Path) -> None:
    portfolio = load_portfolio(path)
    dag = dagbag.dags[portfolio.dag_id]
    for account in portfolio.accounts:
        chain = [dag.get_task(f"{account.name}.{name}") for name in TASK_ORDER]
        for upstream, downstream in itertools.pairwise(chain):
            assert downstream.task_id in upstream.downstream_task_ids, (upstream, downstream)
    modelled = portfolio.needs_target_model  # one more task per lane: target_model (issue 17)
    for account in portfolio.accounts if modelled else ():
        model = dag.get_task(f"{account.name}.target_model")
        assert model.upstream_task_ids == {f"{account.name}.validate_snapshot"}
        assert model.downstream_task_ids == {f"{account.name}.plan_trades"}
    combined = 3 if len(portfolio.accounts) > 1 else 0  # plan_trades, approval, record_run
    assert len(dag.tasks) == (len(TASK_ORDER) + modelled) * len(portfolio.accounts) + combined


@pytest.mark.parametrize("path", portfolio_files(PORTFOLIOS), ids=lambda p: p.stem)
def test_owner_tags_retries_and_catchup(dagbag: DagBag, path: Path) -> None:
    portfolio = load_portfolio(path)
    dag = dagbag.dags[portfolio.dag_id]
    assert "rebalance" in dag.tags
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    for task in dag.tasks:
        assert task.owner == portfolio.owner
        if task.task_id.endswith((".fetch_holdings", ".approval", ".target_model")):
            assert task.retries > 0  # a read, or a decision re-read: safe to retry
        elif task.task_id.endswith(".place_orders"):
            assert task.retries == PLACE_RETRIES  # idempotent: reconciled by tag first
        elif task.task_id.endswith(".record_run"):
            assert task.retries == RECORD_RETRIES  # a brief history outage heals; stops do not
        else:
            assert task.retries == 0  # placement and state changes settle by reconciliation
    assert dag.get_task(f"{portfolio.accounts[0].name}.record_run").trigger_rule == "all_done"


def test_a_bad_portfolio_is_its_own_dag_and_the_others_still_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "portfolios"
    shutil.copytree(PORTFOLIOS, folder)
    (folder / "broken.yaml").write_text(
        "name: Broken\ntargets: {INFY: 50}\n"
        "accounts: [{name: p, broker: paper, holdings_file: h.csv}]\n"
    )
    (folder / "typo.yaml").write_text("name: Typo\ntarget: {INFY: 100}\n")
    monkeypatch.setenv("REBALANCE_PORTFOLIOS_DIR", str(folder))

    bag = DagBag(str(ROOT / "dags"))

    assert bag.import_errors == {}
    assert "rebalance_demo" in bag.dag_ids
    for name, problem in (("broken", "weights sum to 50%"), ("typo", "target: unknown key")):
        dag = bag.dags[f"rebalance_{name}"]
        assert "invalid" in dag.tags
        assert [t.task_id for t in dag.tasks] == [INVALID_TASK_ID]
        assert str(folder / f"{name}.yaml") in (dag.doc_md or "")
        assert problem in (dag.doc_md or "")


HEAVY = (
    "pandas",
    "great_expectations",
    "kiteconnect",
    "SmartApi",
    "pandera",
    "psycopg",
    "numpy",
    "rebalance.history",
    "rebalance.brokers",
    "rebalance.planning",
    "exchange_calendars",
    # What only the executor's workers preload (rebalance.preload_config), never a parse.
    "rebalance.worker_preload",
    "rebalance.tasks",
)

TRIVIAL_DAG = """
import pendulum
from airflow.sdk import DAG, task
with DAG("trivial", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
    task(lambda: None, task_id="noop")()
"""


def _heavy_modules_after(script: str) -> set[str]:
    import subprocess
    import sys

    code = f"import sys\n{script}\nprint(','.join(m for m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = set(result.stdout.strip().splitlines()[-1].split(","))
    return {
        m
        for m in loaded
        if m.split(".")[0] in {h.split(".")[0] for h in HEAVY}
        and any(m == h or m.startswith(h + ".") for h in HEAVY)
    }


def test_dag_file_imports_nothing_heavy_beyond_airflow_itself() -> None:
    baseline = _heavy_modules_after(TRIVIAL_DAG)
    ours = _heavy_modules_after("import runpy; runpy.run_path('dags/rebalance_portfolios_0.py')")
    assert ours - baseline == set()


def test_no_dag_file_imports_pandas_or_great_expectations() -> None:
    # Every DAG file of the folder, as the dag-processor parses them (one after the other here).
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "dags").glob("*.py"))
    script = "import runpy\n" + "".join(f"runpy.run_path({f!r})\n" for f in files)
    baseline = _heavy_modules_after(TRIVIAL_DAG)
    assert _heavy_modules_after(script) - baseline == set()
