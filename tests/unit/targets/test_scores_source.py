"""Scores files, watchlists and installed scoring functions (entry points)."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest

from rebalance.errors import InputDataError
from rebalance.targets.scores import (
    ENTRY_POINT_GROUP,
    check_scores_age,
    read_scores_csv,
    read_watchlist,
    scores_from_entry_point,
    watchlist_scores,
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_a_scores_file_reads_with_its_date(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "scores.csv",
        """
        symbol,score,as_of
        INFY,0.9,2026-11-27
        TCS,-0.25,2026-11-28
        """,
    )
    table = read_scores_csv(path)
    assert table.scores == {"INFY": 0.9, "TCS": -0.25}
    assert table.as_of == date(2026, 11, 28)
    check_scores_age(table, today=date(2026, 12, 2), max_age_days=7)
    with pytest.raises(InputDataError, match="older than 3 days"):
        check_scores_age(table, today=date(2026, 12, 2), max_age_days=3)


def test_every_bad_row_is_named_with_its_line_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "scores.csv",
        """
        symbol,score,as_of
        INFY,0.9,2026-11-27
        infy,0.5,2026-11-27
        TCS,abc,2026-11-27
        INFY,0.1,2026-11-27
        ITC,nan,2026-11-27
        SBIN,0.3,27/11/2026
        WIPRO,0.2
        """,
    )
    with pytest.raises(InputDataError) as caught:
        read_scores_csv(path)
    assert caught.value.problems == [
        "row 3, symbol: 'infy' is not a symbol (upper case, e.g. INFY)",
        "row 4, score: not a number ('abc')",
        "row 5, symbol: duplicate INFY (first on row 2)",
        "row 6, score: must be a finite number ('nan')",
        "row 7, as_of: not a date YYYY-MM-DD ('27/11/2026')",
        "row 8: 2 fields, the header has 3",
    ]
    assert str(caught.value).startswith(f"{path}: invalid data")


def test_a_wrong_header_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "scores.csv", "ticker,score,weight\nINFY,1,2\n")
    with pytest.raises(InputDataError) as caught:
        read_scores_csv(path)
    assert caught.value.problems == [
        "header: unknown column 'ticker' (expected symbol,score[,as_of])",
        "header: unknown column 'weight' (expected symbol,score[,as_of])",
        "header: missing column 'symbol'",
    ]


def test_watchlists_plain_and_csv(tmp_path: Path) -> None:
    plain = write(tmp_path, "w.txt", "# best first\nHCLTECH\nLT  # capital goods\n\nSBIN\n")
    assert read_watchlist(plain) == ("HCLTECH", "LT", "SBIN")
    table = write(tmp_path, "w.csv", "sector,symbol\nIT,HCLTECH\nBank,SBIN\nIT,HCLTECH\n")
    with pytest.raises(
        InputDataError, match=r"row 4, symbol: duplicate HCLTECH \(first on row 2\)"
    ):
        read_watchlist(table)
    assert watchlist_scores(["HCLTECH", "LT", "SBIN"]).scores == {
        "HCLTECH": 3.0,
        "LT": 2.0,
        "SBIN": 1.0,
    }


def install_scoring_package(root: Path, body: str) -> None:
    """A real installed distribution (dist-info with entry_points.txt) on sys.path."""
    (root / "my_signals.py").write_text(textwrap.dedent(body))
    info = root / "my_signals-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-signals\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nmomentum = my_signals:score\nbroken = my_signals:bad\n"
        "crash = my_signals:crash\n"
    )


def test_an_installed_scoring_function_is_called_with_the_date_and_candidates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_scoring_package(
        tmp_path,
        """
        def score(as_of, candidates):
            base = {"INFY": 2.0, "TCS": 1.0, "ITC": 0.5}
            wanted = base if candidates is None else candidates
            return {s: v + as_of.day for s, v in base.items() if s in wanted}

        def bad(as_of, candidates):
            return {"INFY": float("nan"), "tcs": 1.0}

        def crash(as_of, candidates):
            raise RuntimeError("no data for " + as_of.isoformat())
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "my_signals", raising=False)
    table = scores_from_entry_point("momentum", as_of=date(2026, 12, 1), candidates=["INFY", "TCS"])
    assert table.scores == {"INFY": 3.0, "TCS": 2.0}
    assert table.as_of == date(2026, 12, 1)
    assert table.source == "entry point rebalance.scores:momentum"
    with pytest.raises(InputDataError) as caught:
        scores_from_entry_point("broken", as_of=date(2026, 12, 1))
    assert caught.value.problems == [
        "INFY: score must be a finite number, got nan",
        "'tcs': not a symbol (upper case, e.g. INFY)",
    ]
    with pytest.raises(InputDataError) as crashed:
        scores_from_entry_point("crash", as_of=date(2026, 12, 1))
    assert crashed.value.problems == [
        "failed while scoring: RuntimeError('no data for 2026-12-01')"
    ]
    with pytest.raises(
        InputDataError, match=r"not installed \(installed: broken, crash, momentum\)"
    ):
        scores_from_entry_point("value", as_of=date(2026, 12, 1))
