"""The portfolio's order pricing policy (``execution:``): a safe default, bad values refused with
the file and the field named (issue 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rebalance.errors import ConfigError
from rebalance.portfolio import OrderType, load_portfolio

GOOD = """
name: Test
targets: {INFY: 60, TCS: 40}
accounts:
  - {name: paper, broker: paper, holdings_file: h.csv}
"""


def write(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "core.yaml"
    path.write_text(GOOD + extra)
    return path


def test_the_default_is_a_limit_with_a_small_buffer(tmp_path: Path) -> None:
    execution = load_portfolio(write(tmp_path)).execution
    assert execution.order_type is OrderType.LIMIT
    assert execution.limit_buffer_pct == 0.5
    assert execution.max_reprice_rounds == 2


def test_market_orders_with_protection_and_manual_queue(tmp_path: Path) -> None:
    text = "execution: {mode: manual_queue, order_type: market, market_protection_pct: -1}\n"
    execution = load_portfolio(write(tmp_path, text)).execution
    assert execution.order_type is OrderType.MARKET
    assert execution.market_protection_pct == -1
    assert str(execution.mode) == "manual_queue"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("execution: {market_protection_pct: 0}\n", "market_protection_pct"),
        ("execution: {market_protection_pct: 101}\n", "market_protection_pct"),
        ("execution: {limit_buffer_pct: -1}\n", "limit_buffer_pct"),
        ("execution: {max_reprice_rounds: 11}\n", "max_reprice_rounds"),
        ("execution: {order_type: stop}\n", "order_type"),
    ],
)
def test_bad_pricing_names_the_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_portfolio(write(tmp_path, text))
    assert "core.yaml" in str(raised.value)
    assert field in str(raised.value)
