"""Bad input is refused with a message naming the file / row / field; the CLI exits 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from planner_support import snapshot
from typer.testing import CliRunner

import rebalance.cli.plan  # noqa: F401 - registers the plan command
from rebalance.cli import app
from rebalance.errors import ConfigError, InputDataError
from rebalance.planning import plan_rebalance
from rebalance.policy import Policy

GOOD_ROWS: list[dict[str, Any]] = [
    {"symbol": "AAA", "quantity": 10, "last_price": 100.0},
    {"symbol": "BBB", "quantity": 5, "last_price": 300.0},
]
TARGETS = {"AAA": 0.5, "BBB": 0.5}
PORTFOLIO = """\
name: Test
targets:
  AAA: {a}
  BBB: {b}
policy:
  min_trade_value_inr: 0
  max_position_weight_pct: 100
accounts:
  - name: paper
    broker: paper
    holdings_file: holdings.csv
"""
HOLDINGS = "symbol,exchange,quantity,last_price\nAAA,NSE,10,100\nBBB,NSE,50,300\n"
runner = CliRunner()


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("last_price", float("nan"), "last_price"),
        ("last_price", 0.0, "last_price"),
        ("last_price", -5.0, "last_price"),
        ("quantity", -1, "quantity"),
    ],
)
def test_planner_refuses_bad_rows(field: str, value: Any, expected: str) -> None:
    rows = [{**GOOD_ROWS[0], field: value}, GOOD_ROWS[1]]
    with pytest.raises(InputDataError) as caught:
        plan_rebalance(snapshot(rows), TARGETS, Policy())
    assert "row 0 (AAA)" in str(caught.value)
    assert expected in str(caught.value)


def test_planner_refuses_duplicate_symbol() -> None:
    with pytest.raises(InputDataError, match="duplicate symbol AAA"):
        plan_rebalance(snapshot([*GOOD_ROWS, GOOD_ROWS[0]]), TARGETS, Policy())


def test_planner_refuses_sellable_above_quantity() -> None:
    rows = [{**GOOD_ROWS[0], "sellable_quantity": 11}, GOOD_ROWS[1]]
    with pytest.raises(InputDataError, match="sellable_quantity"):
        plan_rebalance(snapshot(rows), TARGETS, Policy())


def test_planner_refuses_target_without_a_price() -> None:
    with pytest.raises(InputDataError, match="CCC: in the targets but not in the holdings"):
        plan_rebalance(snapshot(GOOD_ROWS), {**TARGETS, "CCC": 0.0}, Policy())


@pytest.mark.parametrize(
    ("targets", "cash_target"),
    [({"AAA": 0.5, "BBB": 0.4}, None), ({"AAA": 0.5, "BBB": 0.5}, 0.1)],
)
def test_planner_refuses_weights_not_summing_to_one(
    targets: dict[str, float], cash_target: float | None
) -> None:
    with pytest.raises(ConfigError, match="targets: weights sum to"):
        plan_rebalance(snapshot(GOOD_ROWS), targets, Policy(), cash_target=cash_target)


def test_planner_refuses_negative_weight_and_unknown_broker() -> None:
    with pytest.raises(ConfigError, match=r"targets\.AAA"):
        plan_rebalance(snapshot(GOOD_ROWS), {"AAA": -0.5, "BBB": 1.5}, Policy())
    with pytest.raises(ConfigError, match="no charges table for broker 'kite'"):
        plan_rebalance(snapshot(GOOD_ROWS), TARGETS, Policy(), broker="kite")


def test_planner_refuses_a_portfolio_worth_nothing() -> None:
    rows = [{**row, "quantity": 0} for row in GOOD_ROWS]
    with pytest.raises(InputDataError, match="portfolio value is 0"):
        plan_rebalance(snapshot(rows, 0.0), TARGETS, Policy())


def test_policy_refuses_unknown_key() -> None:
    with pytest.raises(ValueError, match="drift_band"):
        Policy.model_validate({"drift_band": 2})


def _files(tmp_path: Path, holdings: str = HOLDINGS, a: float = 50, b: float = 50) -> list[str]:
    (tmp_path / "test.yaml").write_text(PORTFOLIO.format(a=a, b=b))
    (tmp_path / "holdings.csv").write_text(holdings)
    return [
        "plan",
        "--portfolio",
        str(tmp_path / "test.yaml"),
        "--holdings",
        str(tmp_path / "holdings.csv"),
    ]


def test_cli_prints_json_plan(tmp_path: Path) -> None:
    result = runner.invoke(app, [*_files(tmp_path), "--cash", "1000", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [o["symbol"] for o in data["orders"]] == ["BBB", "AAA"]
    assert data["summary"]["trades"] == 2


def test_cli_prints_table_with_reasons_and_summary(tmp_path: Path) -> None:
    result = runner.invoke(app, [*_files(tmp_path), "--cash", "1000"])
    assert result.exit_code == 0, result.output
    for text in ("Orders", "Positions", "Summary", "drift", "estimated charges"):
        assert text in result.stdout


def test_cli_set_overrides_policy(tmp_path: Path) -> None:
    result = runner.invoke(
        app, [*_files(tmp_path), "--set", "trade_filter=sells_only", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert [o["side"] for o in json.loads(result.stdout)["orders"]] == ["SELL"]


@pytest.mark.parametrize(
    ("holdings", "message"),
    [
        ("symbol,exchange,quantity,last_price\nAAA,NSE,10,\nBBB,NSE,5,300\n", "row 2"),
        (
            "symbol,exchange,quantity,last_price\nAAA,NSE,10,0\nBBB,NSE,5,300\n",
            "row 2 (AAA), last_price",
        ),
        (
            "symbol,exchange,quantity,last_price\nAAA,NSE,10,-3\nBBB,NSE,5,300\n",
            "row 2 (AAA), last_price",
        ),
        (
            "symbol,exchange,quantity,last_price\nAAA,NSE,-10,100\nBBB,NSE,5,300\n",
            "row 2 (AAA), quantity",
        ),
        ("symbol,exchange,quantity,last_price\nAAA,NSE,10,100\nAAA,NSE,5,300\n", "symbol"),
        ("symbol,exchange,quantity,last_price\nAAA,NSE,10,100\n", "BBB: in the targets"),
    ],
)
def test_cli_bad_holdings_exit_2_naming_file_and_row(
    tmp_path: Path, holdings: str, message: str
) -> None:
    result = runner.invoke(app, _files(tmp_path, holdings))
    assert result.exit_code == 2
    assert "holdings.csv" in result.stderr
    assert message in result.stderr


def test_cli_unknown_policy_key_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, [*_files(tmp_path), "--set", "max_tardes=5"])
    assert result.exit_code == 2
    assert "max_tardes: unknown policy key" in result.stderr


def test_cli_bad_policy_value_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, [*_files(tmp_path), "--set", "max_trades=-1"])
    assert result.exit_code == 2
    assert "max_trades" in result.stderr


def test_cli_weights_not_summing_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, _files(tmp_path, a=50, b=40))
    assert result.exit_code == 2
    assert "test.yaml" in result.stderr
    assert "targets: weights sum to 90%" in result.stderr


def test_cli_unknown_format_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, [*_files(tmp_path), "--format", "xml"])
    assert result.exit_code == 2
    assert "--format" in result.stderr
