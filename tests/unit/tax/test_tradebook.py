"""Tradebook importers on the committed SYNTHETIC samples, and their errors (file, line, field)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from rebalance.errors import InputDataError
from rebalance.tax.tradebook import (
    TradeType,
    detect_broker,
    read_corporate_actions,
    read_symbol_map,
    read_symbol_values,
    read_tradebook,
    read_xlsx_rows,
)

FIXTURES = Path(__file__).parent / "fixtures"
ZERODHA = FIXTURES / "zerodha-tradebook-SYNTHETIC.csv"
ANGEL_XLSX = FIXTURES / "angelone-trades-history-SYNTHETIC.xlsx"
ANGEL_CSV = FIXTURES / "angelone-trades-history-SYNTHETIC.csv"
HEADER = ZERODHA.read_text().splitlines()[0]


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_zerodha_sample_reads_every_fill() -> None:
    result = read_tradebook(ZERODHA, "zerodha_main")
    assert len(result.trades) == 16
    first = result.trades[0]
    assert (first.symbol, first.trade_type, first.traded_on) == (
        "HDFCBANK",
        TradeType.BUY,
        dt.date(2017, 6, 15),
    )
    assert (first.quantity, first.price, first.isin) == (20, 800.0, "INE040A01034")
    assert first.source == "zerodha-tradebook-SYNTHETIC.csv:2"
    assert detect_broker(ZERODHA) == "zerodha"


def test_zerodha_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "tb.csv",
        [
            HEADER,
            "INFY,INE009A01021,2024-01-10,NSE,EQ,EQ,buy,false,10.000000,1400.0,1,1,x",
            "INFY,INE009A01021,2024-01-11,NSE,EQ,EQ,buy,false,2.500000,1400.0,2,2,x",
            "INFY,INE009A01021,10/01/2024,NSE,EQ,EQ,hold,false,1,-5,3,3,x",
        ],
    )
    with pytest.raises(InputDataError) as caught:
        read_tradebook(path, "z")
    message = str(caught.value)
    assert message.startswith(f"{path}: invalid data")
    assert "line 3, field quantity: not a whole number of shares: '2.500000'" in message
    assert "line 4, field trade_type: expected buy or sell, got 'hold'" in message
    assert "line 4, field trade_date: not a date in the form YYYY-MM-DD: '10/01/2024'" in message
    assert "line 4, field price: must be a positive price, got '-5'" in message


def test_zerodha_missing_column_and_other_segments(tmp_path: Path) -> None:
    path = write(tmp_path, "tb.csv", ["symbol,trade_date,trade_type,quantity", "INFY,x,buy,1"])
    with pytest.raises(InputDataError, match=r"line 1: missing column\(s\) segment, price"):
        read_tradebook(path, "z", "zerodha")
    fo = write(
        tmp_path,
        "fo.csv",
        [HEADER, "NIFTY26JANFUT,,2026-01-05,NFO,FO,,buy,false,75,24000,1,1,x"],
    )
    result = read_tradebook(fo, "z")
    assert result.trades == []
    assert result.skipped == [f"{fo}: line 2: segment FO is not equity"]


@pytest.mark.parametrize("sample", [ANGEL_XLSX, ANGEL_CSV])
def test_angelone_sample_reads_equity_fills_only(sample: Path) -> None:
    result = read_tradebook(sample, "angel_main")
    assert [(t.symbol, t.trade_type, t.traded_on, t.quantity, t.price) for t in result.trades] == [
        ("SBIN", TradeType.BUY, dt.date(2025, 4, 15), 40, 780.0),
        ("SBIN", TradeType.SELL, dt.date(2026, 5, 20), 15, 820.0),
    ]
    assert [t.source for t in result.trades] == [f"{sample.name}:9", f"{sample.name}:12"]
    # the per-order brokerage line (quantity 0, no Trade ID) is not a fill; F&O is skipped
    assert result.skipped == [f"{sample}: line 11: segment FUTURES is not equity"]
    assert detect_broker(sample) == "angelone"


def test_angelone_symbol_map(tmp_path: Path) -> None:
    mapping = write(tmp_path, "map.csv", ["scrip,symbol", "SBIN,sbin-eq"])
    result = read_tradebook(ANGEL_CSV, "a", symbol_map=read_symbol_map(mapping))
    assert {t.symbol for t in result.trades} == {"SBIN-EQ"}


def test_angelone_errors_name_row_and_field(tmp_path: Path) -> None:
    lines = ANGEL_CSV.read_text().splitlines()
    lines[8] = lines[8].replace("780.0", "abc").replace("2025-04-15", "04/15/2025")
    path = write(tmp_path, "angel.csv", lines)
    with pytest.raises(InputDataError) as caught:
        read_tradebook(path, "a")
    message = str(caught.value)
    assert "line 9, field Buy Price: not a number: 'abc'" in message
    assert "line 9, field Date: not a date in the form YYYY-MM-DD: '04/15/2025' (day/month" in (
        message
    )


def test_angelone_without_its_header_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "x.csv", ["Something,Else", "1,2"])
    with pytest.raises(InputDataError, match="not a Zerodha Console tradebook"):
        read_tradebook(path, "a")
    with pytest.raises(InputDataError, match="no header row starting with 'Scrip/Contract'"):
        read_tradebook(path, "a", "angelone")


def test_xlsx_reader_reads_shared_strings_and_serial_dates() -> None:
    rows = dict(read_xlsx_rows(ANGEL_XLSX, "TradesAndCharges"))
    assert rows[1] == ["SYNTHETIC SAMPLE - not a real account (tests of rebalance.tax)"]
    assert rows[8][0] == "Scrip/Contract"
    assert rows[9][-1] == float((dt.date(2025, 4, 15) - dt.date(1899, 12, 30)).days)


def test_a_broken_xlsx_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    shutil.copy(ZERODHA, path)
    with pytest.raises(InputDataError, match=r"not a readable \.xlsx workbook"):
        read_tradebook(path, "a")


def test_corporate_actions_and_value_tables(tmp_path: Path) -> None:
    (split,) = read_corporate_actions(FIXTURES / "corporate-actions-SYNTHETIC.csv")
    assert (split.symbol, split.kind, split.on, split.new, split.old) == (
        "HDFCBANK",
        "split",
        dt.date(2019, 9, 19),
        2,
        1,
    )
    assert read_symbol_values(FIXTURES / "fmv-2018-SYNTHETIC.csv", "fmv") == {"HDFCBANK": 1870.0}
    bad = write(
        tmp_path,
        "ca.csv",
        ["symbol,action,date,new,old", "INFY,merger,2020-01-01,1,1", "INFY,bonus,2020-01-01,0,1"],
    )
    with pytest.raises(InputDataError) as caught:
        read_corporate_actions(bad)
    assert "line 2, field action: expected split or bonus, got 'merger'" in str(caught.value)
    assert "line 3, field new: must be positive" in str(caught.value)
    twice = write(tmp_path, "fmv.csv", ["symbol,fmv", "INFY,1", "infy,2"])
    with pytest.raises(InputDataError, match="line 3, field symbol: INFY appears twice"):
        read_symbol_values(twice, "fmv")
