"""Hostile input to ``rebalance plan`` (issue 11, point 7): exit 2, a message naming the file, the
row (the file's line number, header = row 1) and the field, and nothing planned.

Every case runs the real command (typer's runner) on real files in a temporary folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rebalance.cli.plan  # noqa: F401 - registers the plan command
from rebalance.calendar import overrides_for_portfolio
from rebalance.cli import app
from rebalance.errors import ConfigError, InputDataError
from rebalance.holdings_file import MAX_HOLDINGS_FILE_BYTES, read_holdings_rows
from rebalance.portfolio import load_portfolio
from rebalance.portfolio_check import check_portfolio_file

pytestmark = pytest.mark.timeout(60)  # a hang (a one-share-at-a-time loop) fails, not blocks

PORTFOLIO = """\
name: Hostile
targets:
  RELIANCE: 50
  INFY: 50
policy:
  min_trade_value_inr: 0
  max_position_weight_pct: 100
accounts:
  - name: paper
    broker: paper
    holdings_file: holdings.csv
"""
HEADER = "symbol,exchange,quantity,last_price"
GOOD_ROWS = "RELIANCE,NSE,10,1300\nINFY,NSE,50,1800\n"
HOLDINGS = f"{HEADER}\n{GOOD_ROWS}"
runner = CliRunner()


def run_plan(
    folder: Path, portfolio: str = PORTFOLIO, holdings: str | bytes = HOLDINGS, *extra: str
) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``rebalance plan`` on these files."""
    (folder / "p.yaml").write_text(portfolio)
    target = folder / "holdings.csv"
    if isinstance(holdings, bytes):
        target.write_bytes(holdings)
    else:
        target.write_text(holdings, encoding="utf-8", newline="")
    result = runner.invoke(
        app,
        ["plan", "--portfolio", str(folder / "p.yaml"), "--holdings", str(target), *extra],
    )
    return result.exit_code, result.stdout, result.stderr


def assert_refused(code: int, stdout: str, stderr: str, *expected: str) -> None:
    assert code == 2, stderr
    assert stdout == "", "nothing may be planned or printed on bad input"
    for text in expected:
        assert text in stderr


def test_good_files_plan(tmp_path: Path) -> None:
    code, stdout, stderr = run_plan(
        tmp_path, PORTFOLIO, HOLDINGS, "--cash", "1000", "--format", "json"
    )
    assert code == 0, stderr
    assert '"orders"' in stdout


# --- the portfolio file ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("min_trade_value_inr: 0", "min_trade_value_inr: 0\n  no_sell: [reliance]"),
            ["p.yaml", "policy.no_sell", "did you mean 'RELIANCE'"],
        ),
        (
            ("min_trade_value_inr: 0", "min_trade_value_inr: 0\n  no_sell: [RELAINCE]"),
            ["p.yaml", "policy.no_sell: 'RELAINCE' is not one of the targets", "'RELIANCE'"],
        ),
        (
            ("min_trade_value_inr: 0", "min_trade_value_inr: 0\n  no_buy: [INFI]"),
            ["p.yaml", "policy.no_buy: 'INFI' is not one of the targets", "'INFY'"],
        ),
        (
            ("min_trade_value_inr: 0", "min_trade_value_inr: 0\n  no_buy: INFY"),
            ["p.yaml", "policy.no_buy: must be a list of symbols"],
        ),
        (("RELIANCE: 50", "RELIANCE: true"), ["p.yaml", "targets: RELIANCE: a weight is a number"]),
        (("RELIANCE: 50", 'RELIANCE: "50"'), ["p.yaml", "targets: RELIANCE: a weight is a number"]),
        (("RELIANCE: 50", "RELIANCE: .nan"), ["p.yaml", "RELIANCE: weight must be a percentage"]),
        (("RELIANCE: 50", "reliance: 50"), ["p.yaml", "did you mean 'RELIANCE'"]),
        (
            ("min_trade_value_inr: 0", "min_trade_value_inr: true"),
            ["p.yaml", "policy.min_trade_value_inr: must be a number, got True"],
        ),
        (
            ("min_trade_value_inr: 0", "min_trade_value_inr: '0'"),
            ["p.yaml", "policy.min_trade_value_inr: must be a number, got '0'"],
        ),
        (
            ("holdings_file: holdings.csv", "holdings_file: ../../etc/passwd"),
            ["p.yaml", "accounts.0.holdings_file", "leaves the portfolio folder"],
        ),
        (
            ("holdings_file: holdings.csv", "holdings_file: /etc/passwd"),
            ["p.yaml", "accounts.0.holdings_file", "outside the portfolio folder"],
        ),
        (
            ("holdings_file: holdings.csv", "holdings_file: ~/holdings.csv"),
            ["p.yaml", "accounts.0.holdings_file", "outside the portfolio folder"],
        ),
        (
            ("name: Hostile", "name: Hostile\nholiday_overrides: nope.yaml"),
            ["p.yaml", "holiday_overrides", "nope.yaml", "cannot read the file"],
        ),
        (
            ("name: Hostile", "name: Hostile\nholiday_overrides: ../calendars/x.yaml"),
            ["p.yaml", "holiday_overrides", "leaves the portfolio folder"],
        ),
        (("RELIANCE: 50\n  INFY: 50", "- [INFY]"), ["p.yaml", "targets"]),
        (("- name: paper", "- name: paper\n    cash_inr: yes"), ["p.yaml", "cash_inr"]),
    ],
    ids=lambda v: str(v)[:40],
)
def test_bad_portfolio_is_refused(
    tmp_path: Path, change: tuple[str, str], expected: list[str]
) -> None:
    assert change[0] in PORTFOLIO
    portfolio = PORTFOLIO.replace(change[0], change[1])
    assert_refused(*run_plan(tmp_path, portfolio), *expected)


def test_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text(HOLDINGS)
    folder = tmp_path / "portfolios"
    folder.mkdir()
    (folder / "link.csv").symlink_to(outside)
    portfolio = PORTFOLIO.replace("holdings_file: holdings.csv", "holdings_file: link.csv")
    assert_refused(
        *run_plan(folder, portfolio), "accounts.0.holdings_file", "outside the portfolio folder"
    )


def test_set_override_symbols_are_checked(tmp_path: Path) -> None:
    assert_refused(
        *run_plan(tmp_path, PORTFOLIO, HOLDINGS, "--set", "no_sell=[INFYY]"),
        "--set",
        "policy.no_sell: 'INFYY' is not one of the targets; did you mean 'INFY'?",
    )


def test_no_sell_neither_target_nor_held_is_refused(tmp_path: Path) -> None:
    portfolio = PORTFOLIO.replace(
        "min_trade_value_inr: 0",
        "min_trade_value_inr: 0\n  unlisted_holdings: sell\n  no_sell: [HDFCBAMK]",
    )
    holdings = HOLDINGS + "HDFCBANK,NSE,5,1600\n"
    assert_refused(
        *run_plan(tmp_path, portfolio, holdings),
        "holdings.csv",
        "policy.no_sell: 'HDFCBAMK' is neither one of the targets nor held",
        "did you mean 'HDFCBANK'?",
    )
    # Spelt right, the held symbol is protected from the unlisted-holdings sell.
    code, stdout, stderr = run_plan(
        tmp_path, portfolio.replace("HDFCBAMK", "HDFCBANK"), holdings, "--format", "json"
    )
    assert code == 0, stderr
    orders = json.loads(stdout)["orders"]
    assert not [o for o in orders if o["symbol"] == "HDFCBANK"]


def test_cli_and_dag_refuse_missing_overrides_alike(tmp_path: Path) -> None:
    """``rebalance plan`` runs the DAG's check: the same problems, word for word."""
    portfolio = PORTFOLIO.replace("name: Hostile", "name: Hostile\nholiday_overrides: nope.yaml")
    code, _, stderr = run_plan(tmp_path, portfolio)
    with pytest.raises(ConfigError) as dag_side:  # what timetable.build_timetable calls
        overrides_for_portfolio(load_portfolio(tmp_path / "p.yaml"), tmp_path / "p.yaml")
    with pytest.raises(ConfigError) as shared:
        check_portfolio_file(tmp_path / "p.yaml")
    assert code == 2
    assert shared.value.problems == dag_side.value.problems
    for problem in dag_side.value.problems:
        assert problem in stderr


# --- the holdings file -----------------------------------------------------------------------


def _rows(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


@pytest.mark.parametrize(
    ("holdings", "expected"),
    [
        (
            _rows(
                "RELIANCE,NSE,10,1300,,,2024-13-45",
                "INFY,NSE,50,1800,,,",
                header=HEADER + ",average_price,sellable_quantity,acquired_on",
            ),
            "row 2 (RELIANCE), acquired_on: '2024-13-45' is not a date",
        ),
        (_rows("RELIANCE,NSE,inf,1300", "INFY,NSE,50,1800"), "row 2 (RELIANCE), quantity"),
        (_rows("RELIANCE,NSE,nan,1300", "INFY,NSE,50,1800"), "row 2 (RELIANCE), quantity"),
        (_rows("RELIANCE,NSE,10,1300", "INFY,NSE,1e23,1800"), "row 3 (INFY), quantity"),
        (
            _rows("RELIANCE,NSE,10,1300", "INFY,NSE,9223372036854775807,1800"),
            "row 3 (INFY), quantity: 9223372036854775807 is above the 1,000,000,000 shares",
        ),
        (_rows("RELIANCE,NSE,10.5,1300", "INFY,NSE,50,1800"), "row 2 (RELIANCE), quantity"),
        (_rows("RELIANCE,NSE,-10,1300", "INFY,NSE,50,1800"), "quantity: must be >= 0"),
        (_rows("RELIANCE,NSE,10,1e300", "INFY,NSE,50,1800"), "row 2 (RELIANCE), last_price"),
        (_rows("RELIANCE,NSE,10,-5", "INFY,NSE,50,1800"), "row 2 (RELIANCE), last_price"),
        (_rows("RELIANCE,NSE,10,0", "INFY,NSE,50,1800"), "row 2 (RELIANCE), last_price"),
        (_rows("RELIANCE,NSE,10,inf", "INFY,NSE,50,1800"), "row 2 (RELIANCE), last_price"),
        (_rows("RELIANCE,NSE,10,", "INFY,NSE,50,1800"), "row 2 (RELIANCE), last_price: is empty"),
        (
            _rows("RELIANCE,NSE,10,99999999", "INFY,NSE,50,1800"),
            "last_price: must be between 0.01 and 10,000,000 rupees",
        ),
        (
            _rows("RELIANCE,NSE,1000000000,9000000", "INFY,NSE,50,1800"),
            "row 2 (RELIANCE), quantity: 1000000000 x last_price",
        ),
        (_rows("RELIANCE,NSE,10,1300", "RELIANCE,NSE,5,1300"), "row 3 (RELIANCE), symbol"),
        (_rows("RELIANCE,NSE,10,1300", "INFY,NYSE,50,1800"), "row 3 (INFY), exchange"),
        (_rows("RELIANCE,NSE,10,1300", "INFY,NSE,50"), "row 3: 3 fields, the header has 4"),
        (_rows("RELIANCE,NSE,10,1300", "'; DROP,NSE,50,1800"), "row 3 ('; DROP), symbol"),
        (
            _rows(
                "RELIANCE,NSE,10,1300,11",
                "INFY,NSE,50,1800,",
                header=HEADER + ",sellable_quantity",
            ),
            "row 2 (RELIANCE), sellable_quantity: 11 exceeds quantity 10",
        ),
        (
            _rows("RELIANCE,NSE,10,1300,XX1", "INFY,NSE,50,1800,", header=HEADER + ",isin"),
            "row 2 (RELIANCE), isin",
        ),
        (_rows("RELIANCE,NSE,10,1300,1", header=HEADER + ",colour"), "unknown column(s): 'colour'"),
        (_rows("RELIANCE,NSE,10,1300,1", header=HEADER + ",quantity"), "column(s) given twice"),
        ("symbol,exchange,quantity\nRELIANCE,NSE,10\n", "row 1: missing required column(s)"),
        ("", "row 1: no header line"),
        ("\n\n", "row 1: no header line"),
        (HEADER + "\n", "row 2: no holdings rows after the header"),
        (HEADER + '\n"RELIANCE\n",NSE,10,1300\n', "row 2: a quoted field spans several lines"),
        (f'{HEADER}\n"RELIANCE,NSE,10,1300\n', "row 2"),
        ("root:x:0:0:root:/root:/bin/bash\n", "row 1: missing required column(s)"),
    ],
    ids=lambda v: str(v)[:50],
)
def test_bad_holdings_are_refused(tmp_path: Path, holdings: str, expected: str) -> None:
    assert_refused(*run_plan(tmp_path, PORTFOLIO, holdings), "holdings.csv", expected)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (f"{HEADER}\nRELIANCE,NSE,10,1300\nCAF\xc9,NSE,5,10\n".encode("latin-1"), "row 3, byte 4"),
        (f"{HEADER}\nRELIANCE,NSE,10,1300\n".encode() + b"\x00\x01\xff\xfe", "binary data"),
        (bytes(range(256)) * 4, "binary data"),
        (b"\xff\xfe" + HOLDINGS.encode("utf-16-le"), "binary data"),
    ],
    ids=["latin-1", "nul", "binary", "utf-16"],
)
def test_undecodable_holdings_are_refused(tmp_path: Path, data: bytes, expected: str) -> None:
    assert_refused(*run_plan(tmp_path, PORTFOLIO, data), "holdings.csv", expected)


def test_big_holdings_file_is_refused_unread(tmp_path: Path) -> None:
    row = "RELIANCE,NSE,10,1300\n"
    data = (HEADER + "\n" + row * (10 * 1024 * 1024 // len(row))).encode()
    assert len(data) > MAX_HOLDINGS_FILE_BYTES
    assert_refused(*run_plan(tmp_path, PORTFOLIO, data), "holdings.csv", "a holdings file is at")


def test_directory_and_pipe_are_refused_without_blocking(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PORTFOLIO)
    for name in ("dir.csv", "pipe.csv"):
        path = tmp_path / name
        path.mkdir() if name == "dir.csv" else os.mkfifo(path)
        result = runner.invoke(
            app, ["plan", "--portfolio", str(tmp_path / "p.yaml"), "--holdings", str(path)]
        )
        assert_refused(result.exit_code, result.stdout, result.stderr, name, "not a regular file")


def test_missing_holdings_file(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PORTFOLIO)
    result = runner.invoke(
        app, ["plan", "--portfolio", str(tmp_path / "p.yaml"), "--holdings", "nope.csv"]
    )
    assert_refused(result.exit_code, result.stdout, result.stderr, "nope.csv", "cannot read")


@pytest.mark.parametrize("cash", ["inf", "nan", "-1", "1e300"])
def test_bad_cash_is_refused(tmp_path: Path, cash: str) -> None:
    assert_refused(*run_plan(tmp_path, PORTFOLIO, HOLDINGS, "--cash", cash), "cash")


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbf" + HOLDINGS.encode(),  # a UTF-8 BOM (Excel's "CSV UTF-8")
        HOLDINGS.replace("\n", "\r\n").encode(),  # CRLF lines
        (
            f"  {HEADER.replace(',', ' , ')}\n\nRELIANCE , nse , 10 , 1300\n\nINFY,NSE,50,1800\n\n"
        ).encode(),
    ],
    ids=["bom", "crlf", "spaces-blank-lines"],
)
def test_harmless_variants_plan(tmp_path: Path, data: bytes) -> None:
    code, stdout, stderr = run_plan(tmp_path, PORTFOLIO, data, "--format", "json")
    assert code == 0, stderr
    assert '"orders"' in stdout


def test_row_numbers_are_file_lines_across_blank_lines(tmp_path: Path) -> None:
    """One numbering: the file's line number, also after blank lines and with a BOM."""
    path = tmp_path / "h.csv"
    path.write_bytes(
        b"\xef\xbb\xbf" + f"{HEADER}\n\nRELIANCE,NSE,10,1300\n\nINFY,NSE,x,1\n".encode()
    )
    with pytest.raises(InputDataError) as caught:
        read_holdings_rows(path)
    assert "row 5 (INFY), quantity" in str(caught.value)
    path.write_text(f"{HEADER}\n\nRELIANCE,NSE,10,1300\n\nINFY,NSE,5,1\n")
    rows, lines = read_holdings_rows(path)
    assert lines == [3, 5]
    assert [row["symbol"] for row in rows] == ["RELIANCE", "INFY"]


def test_every_problem_of_the_file_is_listed(tmp_path: Path) -> None:
    holdings = _rows("RELIANCE,NSE,inf,1300", "INFY,NSE,50,1e300", "TCS,NSE,1e23,5")
    code, stdout, stderr = run_plan(tmp_path, PORTFOLIO, holdings)
    assert_refused(
        code,
        stdout,
        stderr,
        "row 2 (RELIANCE), quantity",
        "row 3 (INFY), last_price",
        "row 4 (TCS), quantity",
    )
