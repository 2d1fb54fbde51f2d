"""Portfolio files: the demo loads; bad files give errors naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from rebalance.errors import ConfigError
from rebalance.portfolio import load_portfolio, portfolio_files

PORTFOLIOS = Path(__file__).resolve().parents[2] / "portfolios"

GOOD = """
name: Test
targets: {INFY: 60, TCS: 40}
accounts:
  - {name: paper, broker: paper, holdings_file: h.csv}
"""


def write(tmp_path: Path, text: str, name: str = "core.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", portfolio_files(PORTFOLIOS), ids=lambda p: p.name)
def test_every_shipped_portfolio_loads(path: Path) -> None:
    portfolio = load_portfolio(path)
    assert portfolio.dag_id == f"rebalance_{path.stem}"
    assert (
        abs(sum(portfolio.target_fractions().values()) + (portfolio.cash_target_fraction or 0) - 1)
        < 1e-9
    )


def test_good_file_round_trip(tmp_path: Path) -> None:
    portfolio = load_portfolio(write(tmp_path, GOOD))
    assert portfolio.id == "core"
    assert portfolio.target_fractions() == {"INFY": 0.6, "TCS": 0.4}
    assert portfolio.policy.max_trades == 10  # the notes' section 12 default


def test_list_of_symbols_means_equal_weight(tmp_path: Path) -> None:
    text = GOOD.replace("targets: {INFY: 60, TCS: 40}", "targets: [INFY, TCS, ITC, LT]")
    portfolio = load_portfolio(write(tmp_path, text))
    assert portfolio.target_fractions() == {"INFY": 0.25, "TCS": 0.25, "ITC": 0.25, "LT": 0.25}


def test_cash_target_completes_the_sum(tmp_path: Path) -> None:
    text = GOOD.replace("{INFY: 60, TCS: 40}", "{INFY: 50, TCS: 40}\ncash_target_pct: 10")
    assert load_portfolio(write(tmp_path, text)).cash_target_fraction == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD + "colour: blue\n", "colour: unknown key"),
        (
            GOOD.replace("name: Test", "name: Test\npolicy: {max_trade: 3}"),
            "policy.max_trade: unknown key",
        ),
        (GOOD.replace("60, TCS: 40", "60, TCS: 30"), "weights sum to 90% (no cash target)"),
        (GOOD.replace("TCS: 40", "TCS: 50, INFY: -10"), "duplicate key 'INFY'"),
        (
            GOOD.replace("INFY: 60, TCS: 40", "INFY: 110, TCS: -10"),
            "INFY: weight must be a percentage 0..100",
        ),
        (
            GOOD.replace("INFY: 60, TCS: 40", "INFY: 110, TCS: -10").replace("110", "60"),
            "TCS: weight must be a percentage 0..100, got -10",
        ),
        (
            GOOD.replace("targets: {INFY: 60, TCS: 40}", "targets: [INFY, INFY]"),
            "duplicate symbol 'INFY'",
        ),
        (GOOD.replace("INFY: 60", "infy: 60"), "'infy' is not a valid symbol"),
        (GOOD.replace("{INFY: 60, TCS: 40}", "{INFY: 60, TCS: 40"), "malformed YAML"),
        (GOOD.replace("broker: paper", "broker: upstox"), "accounts.0.broker"),
        (
            GOOD.replace("broker: paper, holdings_file: h.csv", "broker: zerodha"),
            "needs connection_id",
        ),
        (GOOD.replace("name: Test", "name: Test\npolicy: {max_trades: -1}"), "policy.max_trades"),
        ("- just\n- a list\n", "expected a mapping"),
    ],
)
def test_bad_file_names_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_portfolio(path)
    message = str(caught.value)
    assert str(path) in message
    assert expected in message


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\ntargets: {INFY: 60\naccounts: []\n")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+"):
        load_portfolio(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_portfolio(tmp_path / "absent.yaml")
