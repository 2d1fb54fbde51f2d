"""The targets section's model block and the universe block: strict, messages naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from rebalance.errors import validation_problems
from rebalance.targets.config import (
    CovarianceEstimator,
    FixedModel,
    ModelName,
    RiskParityModel,
    TargetsSection,
    UniverseConfig,
)


def problems(cls: Any, data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        cls.model_validate(data)
    return validation_problems(caught.value)


def test_a_model_name_alone_takes_every_default() -> None:
    section = TargetsSection.model_validate({"symbols": ["INFY", "TCS"], "model": "risk_parity"})
    assert isinstance(section.model, RiskParityModel)
    assert section.model.lookback_days == 252
    assert section.model.covariance is CovarianceEstimator.LEDOIT_WOLF
    assert section.bounds() == (0.0, 1.0)


def test_todays_weights_are_the_fixed_model() -> None:
    section = TargetsSection.from_weights({"INFY": 60, "TCS": 40})
    assert isinstance(section.model, FixedModel)
    assert section.model.name == ModelName.FIXED


def test_model_parameters_are_checked_and_named() -> None:
    data = {
        "symbols": ["INFY", "TCS"],
        "model": {"name": "risk_parity", "lookback": 100, "lookback_days": 5},
    }
    assert problems(TargetsSection, data) == [
        "model.risk_parity.lookback_days: Input should be greater than or equal to 20",
        "model.risk_parity.lookback: unknown key",
    ]
    assert problems(TargetsSection, {"symbols": ["INFY"], "model": "black_litterman"})[
        0
    ].startswith(
        "model: Input tag 'black_litterman' found using 'name' does not match any of the expected "
        "tags: 'fixed', 'equal', 'inverse_volatility', 'risk_parity', 'scores'"
    )
    assert problems(
        TargetsSection, {"symbols": ["INFY"], "model": {"name": "equal", "max_weight_pct": 50}}
    ) == ["model.equal.max_weight_pct: unknown key"]


def test_members_and_caps_must_fit_the_model() -> None:
    assert problems(TargetsSection, {"model": "equal"}) == [
        "(top level): model equal needs symbols (the members it weights)"
    ]
    assert problems(TargetsSection, {"model": "fixed", "symbols": ["INFY"]}) == [
        "(top level): model fixed needs weights (symbol -> %)"
    ]
    assert problems(
        TargetsSection,
        {
            "symbols": ["INFY", "TCS", "ITC"],
            "model": {"name": "inverse_volatility", "max_weight_pct": 30},
        },
    ) == ["(top level): 3 symbols cannot sum to 100% with min_weight_pct 0 and max_weight_pct 30"]
    assert problems(TargetsSection, {"symbols": ["INFY", "infy"], "model": "equal"}) == [
        "symbols: 'infy' is not a valid symbol (upper case, e.g. INFY)"
    ]


def test_the_scores_model_needs_one_source_and_a_feasible_top_n() -> None:
    both = {"model": {"name": "scores", "file": "s.csv", "entry_point": "momentum", "top_n": 5}}
    assert problems(TargetsSection, both) == [
        "model.scores: give exactly one of file (a scores CSV) or entry_point"
    ]
    code_path = {"model": {"name": "scores", "entry_point": "my.module:func", "top_n": 5}}
    assert problems(TargetsSection, code_path)[0].startswith("model.scores.entry_point: String ")
    capped = {"model": {"name": "scores", "file": "s.csv", "top_n": 3, "max_weight_pct": 20}}
    assert problems(TargetsSection, capped) == [
        "model.scores: top_n 3 x max_weight_pct 20% is under 100%: the weights could not sum to "
        "100%"
    ]
    ok = TargetsSection.model_validate(
        {
            "model": {
                "name": "scores",
                "file": "s.csv",
                "top_n": 10,
                "weighting": "score",
                "max_weight_pct": 15,
            }
        }
    )
    assert ok.bounds() == (0.0, 0.15)


def test_the_universe_block() -> None:
    universe = UniverseConfig.model_validate(
        {"scores": "scores.csv", "watchlist": "w.txt", "replace_when": {"leaves_top": 20}}
    )
    assert universe.pick.max_entries is None
    assert problems(UniverseConfig, {"watchlist": "w.txt", "replace_when": {"score_below": 0}}) == [
        "(top level): replace_when.score_below needs scores (a scores file or entry_point); a "
        "watchlist alone ranks by its order: use leaves_top"
    ]
    assert problems(UniverseConfig, {"scores": "s.csv", "replace_when": {}}) == [
        "replace_when: give leaves_top (M) and/or score_below"
    ]


def test_sample_covariance_needs_more_days_than_symbols() -> None:
    symbols = [f"S{i:02d}" for i in range(30)]
    data = {
        "symbols": symbols,
        "model": {"name": "risk_parity", "lookback_days": 30, "covariance": "sample"},
    }
    assert problems(TargetsSection, data) == [
        "(top level): model.covariance sample: 30 symbols need more than 30 days of returns "
        "(lookback_days 30), else the covariance is singular; use ledoit_wolf or oas, or a longer "
        "lookback"
    ]
    shrunk = {"symbols": symbols, "model": {"name": "risk_parity", "lookback_days": 30}}
    assert TargetsSection.model_validate(shrunk).model.name == "risk_parity"
