"""The bounded reader reads a good file as plain YAML does, and names the file for a bad one."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from rebalance import portfolio_file
from rebalance.errors import ConfigError
from rebalance.portfolio import load_portfolio
from rebalance.portfolio_file import read_portfolio_data

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["demo.yaml", "example.yaml"])
def test_a_good_file_reads_as_plain_yaml_does(name: str) -> None:
    path = ROOT / "portfolios" / name
    assert read_portfolio_data(path) == yaml.safe_load(path.read_text(encoding="utf-8"))


def test_scalars_resolve_as_in_yaml_1_1(tmp_path: Path) -> None:
    text = (
        "a: 15:10\nb: 2026-01-02\nc: yes\nd: ~\ne: 1.5e3\nf: '007'\ng: 0x1f\nh: .inf\n"
        "i: [1, two, {j: null}]\n"
    )
    path = tmp_path / "scalars.yaml"
    path.write_text(text, encoding="utf-8")
    data = read_portfolio_data(path)
    assert data == yaml.safe_load(text)
    assert data["a"] == 910  # base 60, which the schedule reads back as 15:10
    assert data["b"] == dt.date(2026, 1, 2)


def test_libyaml_is_used_when_pyyaml_has_it() -> None:
    if yaml.__with_libyaml__:
        assert portfolio_file._Loader is yaml.CSafeLoader


def test_a_byte_order_mark_is_harmless(tmp_path: Path) -> None:
    demo = (ROOT / "portfolios" / "demo.yaml").read_bytes()
    (tmp_path / "data").symlink_to(ROOT / "portfolios" / "data")
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + demo)
    assert load_portfolio(path).name == "Demo Nifty Ten"


def test_load_portfolio_names_the_file_for_any_failure(tmp_path: Path) -> None:
    # ``rebalance plan`` and the task bodies load through here: the same bounds, the same names.
    path = tmp_path / "core.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_portfolio(path)
    assert str(info.value).startswith(f"{path}: invalid configuration")
    assert "0xe9" in str(info.value)
