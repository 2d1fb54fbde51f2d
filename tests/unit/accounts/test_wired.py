"""The combined mode as wired: the portfolio file's ``accounts_mode``, the DAG carrying both
paths, ``rebalance plan --accounts-mode combined`` with one holdings file per account, and the
per-account parts a combined plan writes to each account's run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rebalance.cli import EXIT_BAD_INPUT, _register_commands, app
from rebalance.errors import ConfigError
from rebalance.portfolio import AccountsMode, load_portfolio

TARGETS = {"INFY": 34, "TCS": 19, "HDFCBANK": 20, "RELIANCE": 24, "ITC": 3}
HEADER = "symbol,exchange,quantity,last_price,isin\n"
KITE = HEADER + (
    "INFY,NSE,95,1890.15,INE009A01021\nTCS,NSE,20,4102.30,INE467B01029\n"
    "HDFCBANK,NSE,10,1742.55,INE040A01034\nITC,NSE,0,430.10,INE154A01025\n"
    "RELIANCE,NSE,0,1285.40,INE002A01018\n"
)
ANGEL = HEADER + (
    "RELIANCE,NSE,100,1285.40,INE002A01018\nHDFCBANK,NSE,50,1742.55,INE040A01034\n"
    "TCS,NSE,5,4102.30,INE467B01029\n"
)


def write_portfolio(folder: Path, **extra: object) -> Path:
    data = {
        "name": "Household",
        "targets": TARGETS,
        "policy": {"rebalance_budget_pct": 50, "max_position_weight_pct": 40},
        "accounts": [
            {"name": "kite", "broker": "zerodha", "connection_id": "kite"},
            {"name": "angel", "broker": "angelone", "connection_id": "angel"},
        ],
        **extra,
    }
    path = folder / "household.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_accounts_mode_defaults_to_separate_and_combined_needs_two_accounts(
    tmp_path: Path,
) -> None:
    assert load_portfolio(write_portfolio(tmp_path)).accounts_mode is AccountsMode.SEPARATE
    path = write_portfolio(tmp_path, accounts_mode="combined")
    assert load_portfolio(path).accounts_mode is AccountsMode.COMBINED
    data = yaml.safe_load(path.read_text())
    data["accounts"] = data["accounts"][:1]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="combined needs at least two accounts"):
        load_portfolio(path)
    path = write_portfolio(tmp_path, accounts_mode="together")
    with pytest.raises(ConfigError, match="accounts_mode"):
        load_portfolio(path)


def test_the_combined_mode_refuses_targets_from_a_model(tmp_path: Path) -> None:
    """The combined planner reads the file's fixed weights: a computed model would be ignored."""
    model = {"symbols": list(TARGETS), "model": "equal"}
    path = write_portfolio(tmp_path, accounts_mode="combined", targets=model)
    with pytest.raises(ConfigError, match="combined plans on fixed target weights only"):
        load_portfolio(path)
    assert load_portfolio(write_portfolio(tmp_path, targets=model)).needs_target_model


def test_the_dag_of_two_accounts_carries_both_paths_and_the_form_offers_them(
    tmp_path: Path,
) -> None:
    from airflow.sdk import TriggerRule

    from rebalance.dag_factory import build_dag

    path = write_portfolio(tmp_path)
    dag = build_dag(path, load_portfolio(path))
    planned = dag.get_task("combined.plan_trades")
    assert {t.task_id for t in planned.upstream_list} == {
        "kite.validate_snapshot",
        "angel.validate_snapshot",
    }
    approval = dag.get_task("combined.approval")
    for account in ("kite", "angel"):
        lane_plan = dag.get_task(f"{account}.plan_trades")
        assert approval in lane_plan.upstream_list
        assert lane_plan.trigger_rule == TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
        assert (
            dag.get_task(f"{account}.record_run")
            in dag.get_task("combined.record_run").upstream_list
        )
    param = dag.params.get_param("accounts_mode")
    assert param.value == "separate"
    assert param.schema["enum"] == ["separate", "combined"]
    assert param.schema["values_display"]["combined"] == "Both combined"


def test_a_one_account_dag_has_no_combined_path(tmp_path: Path) -> None:
    from rebalance.dag_factory import build_dag

    path = write_portfolio(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["accounts"] = data["accounts"][:1]
    path.write_text(yaml.safe_dump(data))
    dag = build_dag(path, load_portfolio(path))
    assert not [t for t in dag.task_ids if t.startswith("combined.")]
    assert "accounts_mode" not in dag.params


def test_cli_plans_the_accounts_combined_from_one_file_each(tmp_path: Path) -> None:
    _register_commands()
    path = write_portfolio(tmp_path)
    (tmp_path / "kite.csv").write_text(KITE)
    (tmp_path / "angel.csv").write_text(ANGEL)
    args = ["plan", "--portfolio", str(path), "--accounts-mode", "combined", "--format", "json"]
    files = ["--account-holdings", f"kite={tmp_path / 'kite.csv'}"]
    files += ["--account-holdings", f"angel={tmp_path / 'angel.csv'}"]
    money = ["--account-cash", "kite=10000", "--account-cash", "angel=10000"]
    result = CliRunner().invoke(app, args + files + money)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert {(o["symbol"], o["side"]) for o in out["plan"]["orders"]} == {("ITC", "BUY")}
    parts = out["allocation"]["orders"]
    assert {o["account"] for o in parts} <= {"kite", "angel"}
    assert sum(o["quantity"] for o in parts) == out["plan"]["orders"][0]["quantity"]
    assert not out["replanned"]

    table = CliRunner().invoke(app, [*args[:-2], *files, *money])
    assert table.exit_code == 0, table.output
    assert "Split per account" in table.output

    missing = CliRunner().invoke(app, args + files[:2])
    assert missing.exit_code == EXIT_BAD_INPUT
    assert "angel: no holdings file" in missing.output
