"""``rebalance tax`` end to end on the SYNTHETIC Zerodha sample, its exit codes, and the purity of
the tax package (no Airflow, broker client or database driver)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rebalance.cli import _register_commands, app

FIXTURES = Path(__file__).parent / "fixtures"
BASE = [
    "tax",
    "--tradebook",
    str(FIXTURES / "zerodha-tradebook-SYNTHETIC.csv"),
    "--account",
    "zerodha_main",
    "--fy",
    "2026-27",
    "--corporate-actions",
    str(FIXTURES / "corporate-actions-SYNTHETIC.csv"),
    "--fmv",
    str(FIXTURES / "fmv-2018-SYNTHETIC.csv"),
    "--holdings",
    str(FIXTURES / "holdings-SYNTHETIC.csv"),
]


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    _register_commands()
    return CliRunner()


def test_tax_json_by_term_with_exemption_and_no_tax_data(runner: CliRunner) -> None:
    result = runner.invoke(app, [*BASE, "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    summary = data["summary"]
    # INFY: ST 500, LT 9,000; TCS: LT -4,000 (held 401 days); HDFCBANK: LT 40 x (1700 - 935)
    # = 30,600 (grandfathered: FMV 1870 / the 2019 2-for-1 split); BHARTIARTL: ST 9,000
    assert (summary["short_term_gains"], summary["short_term_losses"]) == (9_500.0, 0.0)
    assert (summary["long_term_gains"], summary["long_term_losses"]) == (39_600.0, 4_000.0)
    assert summary["exemption_used"] == 35_600.0
    assert summary["exemption_left"] == 89_400.0
    assert summary["tax"] == 1_900.0  # 9,500 x 20%
    assert summary["total"] == 1_976.0  # + 4% cess
    assert [s["symbol"] for s in data["sells"]] == ["INFY", "TCS", "HDFCBANK", "BHARTIARTL"]
    hdfc = data["sells"][2]["lots"][0]
    assert (hdfc["grandfathered"], hdfc["cost_per_share"], hdfc["quantity"]) == (True, 935.0, 40)
    assert data["sells"][3]["estimated_tax"] == 1_872.0
    assert set(data["no_tax_data"]) == {"ITC"}
    assert "add up to 50 shares but the broker holds 60" in data["no_tax_data"]["ITC"]
    assert data["tax_not_modelled"]["GOLDBEES"].startswith("tax not modelled: gold ETF")
    assert any("RELIANCE (zerodha_main): 10 shares" in n for n in data["notes"])


def test_tax_declared_gains_cross_the_exemption(runner: CliRunner) -> None:
    result = runner.invoke(
        app, [*BASE, "--declared-gains", "ltcg=100000", "--surcharge-pct", "10", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["summary"]
    # LT 135,600 after set-off -> 10,600 above 1.25 lakh at 12.5% = 1,325; + ST 1,900 = 3,225;
    # surcharge 10% = 322.50; cess 4% of 3,547.50 = 141.90
    assert summary["long_term_taxable"] == 10_600.0
    assert summary["exemption_left"] == 0.0
    assert summary["tax"] == 3_225.0
    assert summary["surcharge"] == 322.5
    assert summary["total"] == pytest.approx(3_689.4)


def test_tax_table_output(runner: CliRunner) -> None:
    result = runner.invoke(app, BASE)
    assert result.exit_code == 0, result.output
    assert "FY 2026-27" in result.stdout
    assert "exemption used / left" in result.stdout
    assert "no tax data for ITC" in result.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fy", "2026-28"], "--fy: invalid configuration"),
        (["--declared-gains", "ltcg=lots"], "ltcg: not a number: 'lots'"),
        (["--not-modelled", "GOLD"], "'GOLD': expected SYMBOL=reason"),
        (["--fmv", "nowhere.csv"], "nowhere.csv: invalid data\n  - no such file"),
        (["--format", "xml"], "must be one of table, json"),
    ],
)
def test_tax_bad_input_exits_2(runner: CliRunner, extra: list[str], message: str) -> None:
    result = runner.invoke(app, [*BASE, *extra])
    assert result.exit_code == 2
    assert message in result.stderr


def test_tax_bad_tradebook_row_exits_2_naming_file_line_field(
    runner: CliRunner, tmp_path: Path
) -> None:
    lines = (FIXTURES / "zerodha-tradebook-SYNTHETIC.csv").read_text().splitlines()
    lines[3] = lines[3].replace("10.000000", "ten")
    bad = tmp_path / "tb.csv"
    bad.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["tax", "--tradebook", str(bad), "--fy", "2026-27"])
    assert result.exit_code == 2
    assert f"{bad}: invalid data" in result.stderr
    assert "line 4, field quantity: not a number: 'ten'" in result.stderr


def test_tax_package_is_pure() -> None:
    """Importing the whole tax package loads no Airflow, broker client, DB driver or pandas."""
    code = (
        "import sys, rebalance.tax.report, rebalance.tax.tradebook; "
        "bad = ('airflow', 'kiteconnect', 'SmartApi', 'sqlalchemy', 'psycopg', 'pandas', "
        "'rebalance.brokers', 'rebalance.history'); "
        "print([m for m in sys.modules if m.split('.')[0] in bad or m.startswith(bad)])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
