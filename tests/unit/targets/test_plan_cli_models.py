"""``rebalance plan`` runs the portfolio's target model: a risk model reads ``--prices``."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from rebalance.brokers.synthetic_history import synthetic_candles
from rebalance.cli import app
from rebalance.cli import plan as _plan_command  # noqa: F401 - registers `plan` on app
from rebalance.history.store import HistoryStore
from rebalance.testing.model_runs import completed_model_run

ROOT = Path(__file__).resolve().parents[3]
START, END = dt.date(2025, 9, 1), dt.date(2026, 11, 27)
SYMBOLS = ["RELIANCE", "HDFCBANK", "INFY", "TCS", "ICICIBANK"]
SYMBOLS += ["ITC", "LT", "SBIN", "BHARTIARTL", "HINDUNILVR"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "portfolios", tmp_path / "portfolios")
    closes = {
        s: {
            c.day: c.close for c in synthetic_candles(s, dt.date(2025, 9, 1), dt.date(2026, 11, 27))
        }
        for s in SYMBOLS
    }
    frame = pd.DataFrame(closes)
    frame.index.name = "date"
    frame.to_csv(tmp_path / "closes.csv")
    return tmp_path


def _plan(folder: Path, *extra: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(
        app,
        [
            "plan",
            "--portfolio",
            str(folder / "portfolios" / "demo_risk_parity.yaml"),
            "--holdings",
            str(folder / "portfolios" / "data" / "demo_holdings.csv"),
            "--format",
            "json",
            *extra,
        ],
    )


def test_the_plan_targets_the_risk_parity_weights(folder: Path) -> None:
    result = _plan(folder, "--prices", str(folder / "closes.csv"))
    assert result.exit_code == 0, result.output
    positions = json.loads(result.stdout)["positions"]
    targets = {p["symbol"]: p["target_weight"] for p in positions}
    assert set(targets) == set(SYMBOLS)
    assert sum(targets.values()) == pytest.approx(1.0)
    assert len({round(w, 4) for w in targets.values()}) > 1  # not the nominal 10% each
    assert all(0.04 - 1e-6 <= w <= 0.20 + 1e-6 for w in targets.values())


def test_a_risk_model_without_prices_is_bad_input(folder: Path) -> None:
    result = _plan(folder)
    assert result.exit_code == 2
    assert "--prices" in result.output
    assert "model risk_parity needs daily closes" in result.output


def test_a_gap_in_the_prices_file_is_named(folder: Path) -> None:
    frame = pd.read_csv(folder / "closes.csv", index_col="date")
    frame.loc[frame.index[-3], "INFY"] = None
    frame.to_csv(folder / "closes.csv")
    result = _plan(folder, "--prices", str(folder / "closes.csv"))
    assert result.exit_code == 2
    assert "INFY: no close on 1 trading day(s)" in result.output


def test_without_prices_the_message_names_both_flags(folder: Path) -> None:
    result = _plan(folder)
    assert result.exit_code == 2
    assert "give --prices CLOSES.csv" in result.output
    assert "or --targets-from-history" in result.output


def test_targets_from_history_plans_on_the_last_completed_runs_targets(
    folder: Path, store: HistoryStore
) -> None:
    weights = dict.fromkeys(SYMBOLS, 0.05) | {"INFY": 0.3, "TCS": 0.1}
    weights = {s: w / sum(weights.values()) for s, w in weights.items()}
    run = completed_model_run(store, weights)
    completed_model_run(
        store, dict.fromkeys(SYMBOLS, 0.1), account="other"
    )  # later, not its account
    result = _plan(folder, "--targets-from-history")
    assert result.exit_code == 0, result.output
    assert f"targets of run {run} (paper_rp): the risk_parity model as of 2026-11-27" in (
        result.stderr
    )
    positions = json.loads(result.stdout)["positions"]
    targets = {p["symbol"]: p["target_weight"] for p in positions}
    assert targets == pytest.approx(weights)


def test_targets_from_history_without_a_completed_run_is_bad_input(
    folder: Path, store: HistoryStore
) -> None:
    result = _plan(folder, "--targets-from-history")
    assert result.exit_code == 2
    assert "no completed run of demo_risk_parity of account paper_rp has stored targets" in (
        result.output
    )
    assert _plan(folder, "--targets-from-history", "--prices", "x.csv").exit_code == 2
