"""Where the targets came from, as the approval preview and the Rebalance page show it."""

from __future__ import annotations

from typing import Any

from rebalance.preview import render_preview
from rebalance.targets.describe import headline, source_markdown
from rebalance.ui.targets_view import targets_section

SOURCE: dict[str, Any] = {
    "model": "risk_parity",
    "as_of": "2026-11-27",
    "lookback_days": 252,
    "library": "skfolio",
    "library_version": "0.7.0",
    "parameters": {"covariance": "ledoit_wolf", "min_weight": 0.04, "name": "risk_parity"},
    "targets": {"INFY": 0.6, "TCS": 0.4, "ITC": 0.0},
    "inputs": {
        "INFY": {"volatility": 0.2, "risk_contribution": 0.5},
        "TCS": {"volatility": 0.3, "risk_contribution": 0.5},
    },
    "price_history": {
        "first_day": "2025-11-20",
        "last_day": "2026-11-27",
        "days": 253,
        "source": "zerodha",
        "fetched_days": 1,
        "cached_days": 505,
    },
    "replacement": {
        "exits": [{"symbol": "ITC", "reason": "replacement: ITC ranks 9 of 9; replaced by TCS"}],
        "entries": [{"symbol": "TCS", "reason": "replacement: TCS is the best-scoring"}],
        "notes": ["HDFCBANK: held but not scored by the universe; kept"],
    },
    "notes": [],
}
PLAN: dict[str, Any] = {
    "orders": [],
    "positions": [],
    "summary": {
        "portfolio_value": 100.0,
        "turnover_pct": 0.0,
        "budget_used_pct": 0.0,
        "max_drift_before": 0.0,
        "max_drift_after": 0.0,
        "estimated_charges": 0.0,
    },
}


def test_the_headline_names_model_as_of_library_and_window() -> None:
    assert headline(SOURCE) == (
        "risk_parity model as of 2026-11-27 (skfolio 0.7.0; covariance ledoit_wolf; 252 days "
        "of returns; closes 2025-11-20..2026-11-27 from zerodha)"
    )


def test_the_preview_shows_the_source_with_inputs_and_replacement_reasons() -> None:
    text = render_preview(
        PLAN,
        portfolio_name="RP",
        account="zerodha_main",
        mode="live",
        plan_hash="ab" * 32,
        target_source=SOURCE,
    )
    assert "### Where the targets came from" in text
    assert "Targets from the risk_parity model as of 2026-11-27" in text
    assert "Parameters: covariance=ledoit_wolf, min_weight=0.04." in text
    assert "| INFY | 60.00% | 20.00% | 50.00% |  |" in text
    assert "> exit ITC: replacement: ITC ranks 9 of 9; replaced by TCS" in text
    assert "> entry TCS: replacement: TCS is the best-scoring" in text
    assert text.index("Where the targets came from") < text.index("### Orders")


def test_fixed_weights_add_nothing() -> None:
    assert source_markdown(None) == []
    assert targets_section({"weights": {"INFY": 1.0}, "cash": None}) == ""
    plain = render_preview(PLAN, portfolio_name="P", account="a", mode="paper", plan_hash="0" * 64)
    assert "Where the targets came from" not in plain


def test_the_page_section_escapes_and_lists_every_symbol() -> None:
    html = targets_section({"weights": {}, "source": {**SOURCE, "notes": ["<b>x</b>"]}})
    assert "<p id='target-source'>Targets from the risk_parity model as of 2026-11-27" in html
    assert html.count("<tr><td>") == 3  # INFY, TCS, and ITC leaving at 0%
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert "exit ITC: replacement: ITC ranks 9 of 9" in html


def test_the_demo_says_what_each_run_planned_against() -> None:
    from rebalance.cli.demo import targets_words

    assert targets_words({"weights": {"INFY": 1.0}, "cash": 0.0}) == (
        "the file's fixed target weights"
    )
    assert targets_words({"source": SOURCE}).startswith(
        "targets from the risk_parity model as of 2026-11-27 (skfolio 0.7.0;"
    )
