"""In a live Airflow (the dag-processor, not a DagBag): bad portfolio files hide no other DAG.

Airflow 3.3.2's dag-processor marks every DAG of a DAG file stale when the file has an import
error, and every portfolio comes from one DAG file. Here the hostile inputs of issue 11 are
dropped into the running deployment's portfolio folder (the session's one live Airflow), then a
good portfolio file is broken in place. Through Airflow's REST API (/api/v2/dags): every good DAG
stays active (not stale) with a next run, each bad file is a DAG of its own tagged ``invalid``,
the broken-in-place file keeps its dag_id and its schedule, there is no import error, and a run
of a broken DAG fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rebalance.portfolio_file import fallback_portfolio_id

pytestmark = pytest.mark.slow

# A parse cycle of the dag-processor is up to min_file_process_interval (30 s) plus the parse.
SETTLE_TIMEOUT = 240.0
LONG_NAME = "b" * 70 + ".yaml"


def _sparse(path: Path) -> None:
    with path.open("wb") as f:
        f.truncate(50 * 1024 * 1024)


def _hostile(demo: str) -> dict[str, Callable[[Path], Any]]:
    """Issue 11 point 1's inputs (and a few more), by file name."""
    return {
        "weights_108.yaml": lambda p: p.write_text(demo.replace("RELIANCE: 12", "RELIANCE: 20")),
        "latin1.yaml": lambda p: p.write_bytes(b"name: caf\xe9\n"),
        "binary.yaml": lambda p: p.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00"),
        "deep_5000.yaml": lambda p: p.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n"),
        "list_key.yaml": lambda p: p.write_text("? [a, b]\n: 1\n"),
        "targets_list.yaml": lambda p: p.write_text(
            "name: X\ntargets: [[INFY]]\n"
            "accounts: [{name: p, broker: paper, holdings_file: data/x.csv}]\n"
        ),
        "huge_50mb.yaml": _sparse,
        "named_pipe.yaml": lambda p: os.mkfifo(p),
        "a_directory.yaml": lambda p: p.mkdir(),
        "!!!.yaml": lambda p: p.write_text(demo),
        LONG_NAME: lambda p: p.write_text(demo),
    }


def _dag_id(name: str) -> str:
    if name in ("!!!.yaml", LONG_NAME):
        return f"rebalance_{fallback_portfolio_id(Path(name))}"
    return f"rebalance_{Path(name).stem}"


def _dags(airflow: Any) -> dict[str, dict[str, Any]]:
    # Stale DAGs are left out of the list by default: ask for them too, to see any.
    params = {"limit": 200, "dag_id_pattern": "rebalance", "exclude_stale": False}
    body = airflow.api("GET", "/api/v2/dags", params=params)
    return {dag["dag_id"]: dag for dag in body["dags"]}


def _tags(dag: dict[str, Any]) -> set[str]:
    return {tag["name"] for tag in dag["tags"]}


def _wait_for(
    airflow: Any, done: Callable[[dict[str, dict[str, Any]]], bool], what: str
) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + SETTLE_TIMEOUT
    dags: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        dags = _dags(airflow)
        if done(dags):
            return dags
        time.sleep(3)
    summary = {d: (sorted(_tags(v)), v["is_stale"]) for d, v in dags.items()}
    raise AssertionError(f"{what} not seen after {SETTLE_TIMEOUT}s: {summary}; see {airflow.log}")


@pytest.fixture
def hostile_folder(live_airflow: Any) -> Iterator[Path]:
    """The live deployment's portfolio folder with the hostile files; removed afterwards."""
    folder = Path(live_airflow.env["REBALANCE_PORTFOLIOS_DIR"])
    demo = (folder / "demo.yaml").read_text()
    added = list(_hostile(demo))
    for name, make in _hostile(demo).items():
        make(folder / name)
    # A good portfolio of its own (own paper account), broken in place later in the test.
    good = demo.replace("name: Demo Nifty Ten", "name: Turns Bad").replace(
        "data/demo_holdings.csv", "data/turns_bad.csv"
    )
    shutil.copy(folder / "data" / "demo_holdings.csv", folder / "data" / "turns_bad.csv")
    (folder / "turns_bad.yaml").write_text(good)
    added.append("turns_bad.yaml")
    try:
        yield folder
    finally:
        for name in added:
            path = folder / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


def test_bad_portfolio_files_hide_no_dag_in_the_dag_processor(
    live_airflow: Any, hostile_folder: Path
) -> None:
    airflow = live_airflow
    bad = {_dag_id(name) for name in _hostile("")}
    good = {"rebalance_demo", "rebalance_demo_cli", "rebalance_turns_bad"}

    def settled(dags: dict[str, dict[str, Any]]) -> bool:
        return (bad | good) <= dags.keys() and all("invalid" in _tags(dags[d]) for d in bad)

    dags = _wait_for(airflow, settled, "every bad file as its own DAG")
    for dag_id in good:
        dag = dags[dag_id]
        assert not dag["is_stale"], dag_id
        assert "invalid" not in _tags(dag), dag_id
        assert dag["next_dagrun_run_after"] is not None, dag_id
    for dag_id in bad:
        dag = dags[dag_id]
        assert not dag["is_stale"], dag_id
        assert {"rebalance", "invalid"} <= _tags(dag), dag_id
        assert dag["next_dagrun_run_after"] is not None, dag_id  # it runs, and fails loudly
    errors = airflow.api("GET", "/api/v2/importErrors")
    assert errors["total_entries"] == 0, errors

    # A good file broken in place keeps its dag_id and its schedule, and hides nothing.
    schedule = dags["rebalance_turns_bad"]["timetable_summary"]
    path = hostile_folder / "turns_bad.yaml"
    path.write_text(path.read_text().replace("RELIANCE: 12", "RELIANCE: 20"))

    def broken(dags: dict[str, dict[str, Any]]) -> bool:
        return "invalid" in _tags(dags.get("rebalance_turns_bad", {"tags": []}))

    dags = _wait_for(airflow, broken, "rebalance_turns_bad broken in place")
    turned = dags["rebalance_turns_bad"]
    assert not turned["is_stale"]
    assert turned["timetable_summary"] == schedule
    assert turned["next_dagrun_run_after"] is not None
    for dag_id in ("rebalance_demo", "rebalance_demo_cli"):
        assert not dags[dag_id]["is_stale"], dag_id
        assert "invalid" not in _tags(dags[dag_id]), dag_id

    # Its run fails at once, at the one task that names the file and the problem.
    run_id = airflow.trigger("rebalance_turns_bad", {})
    assert airflow.wait_run_finished("rebalance_turns_bad", run_id, timeout=180) == "failed"
    from urllib.parse import quote

    tis = airflow.api(
        "GET", f"/api/v2/dags/rebalance_turns_bad/dagRuns/{quote(run_id, safe='')}/taskInstances"
    )
    states = {ti["task_id"]: (ti["state"], ti["try_number"]) for ti in tis["task_instances"]}
    assert states == {"portfolio_file_invalid": ("failed", 1)}
