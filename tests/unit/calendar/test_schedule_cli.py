"""``rebalance schedule``: next runs per portfolio, a warning when the calendar runs out."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rebalance.cli import EXIT_BAD_INPUT, _register_commands, app

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    _register_commands()
    return CliRunner()


def test_next_runs_of_a_portfolio_by_id(runner: CliRunner, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REBALANCE_PORTFOLIOS_DIR", str(ROOT / "portfolios"))
    result = runner.invoke(
        app, ["schedule", "--portfolio", "demo", "--after", "2026-06-01", "--next", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "monthly, last trading day, 15:10 IST" in result.output
    for day in ("Tue 30 Jun 2026 15:10", "Fri 31 Jul 2026 15:10", "Mon 31 Aug 2026 15:10"):
        assert day in result.output
    assert "Fri 29 May 2026 15:10 IST" in result.output  # last_rebalanced_at (scheduled)


def test_warns_when_the_calendar_runs_out(runner: CliRunner):
    result = runner.invoke(
        app,
        [
            "schedule",
            "--portfolio",
            str(ROOT / "portfolios" / "demo.yaml"),
            "--after",
            "2026-12-01",
            "--next",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Thu 31 Dec 2026 15:10" in result.output
    assert "warning" in result.output
    assert "only 1 of 3 runs known" in result.output
    assert "beyond the known trading calendar" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["--portfolio", "no_such_portfolio"],
        ["--portfolio", "missing.yaml"],
        ["--portfolio", "demo", "--after", "tomorrow"],
        ["--next", "0"],
    ],
)
def test_bad_input_exits_2(runner: CliRunner, monkeypatch: pytest.MonkeyPatch, args: list[str]):
    monkeypatch.setenv("REBALANCE_PORTFOLIOS_DIR", str(ROOT / "portfolios"))
    result = runner.invoke(app, ["schedule", *args])
    assert result.exit_code == EXIT_BAD_INPUT, result.output


def test_a_bad_portfolio_file_exits_2_but_the_others_print(runner: CliRunner, tmp_path: Path):
    demo = (ROOT / "portfolios" / "demo.yaml").read_text(encoding="utf-8")
    (tmp_path / "good.yaml").write_text(demo, encoding="utf-8")
    (tmp_path / "bad.yaml").write_text(
        demo.replace('time: "15:10"', 'time: "16:10"'), encoding="utf-8"
    )
    result = runner.invoke(app, ["schedule", "--folder", str(tmp_path), "--after", "2026-06-01"])
    assert result.exit_code == EXIT_BAD_INPUT
    assert "good: monthly, last trading day" in result.output
    assert "bad.yaml" in result.output
    assert "schedule: time: 16:10 is outside market hours" in result.output
