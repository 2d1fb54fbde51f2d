"""Each target model against a small example checked by hand."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from target_support import prices_from_returns, uncorrelated_prices

from rebalance.targets.config import CovarianceEstimator, ModelName, ScoreWeighting, TargetsSection
from rebalance.targets.models import (
    TargetModelError,
    bounded_weights,
    equal_weights,
    fixed_weights,
    inverse_volatility_weights,
    risk_contributions,
    risk_parity_weights,
    run_model,
    score_weights,
)

# Daily sigma 1%, 2%, 4%: 1/sigma = 100, 50, 25 -> weights 4/7, 2/7, 1/7.
VOLS = [0.01, 0.02, 0.04]
INVERSE_VOL = {"A": 4 / 7, "B": 2 / 7, "C": 1 / 7}
SOLVER = 1e-3  # the conic solver's precision on weights and risk shares


def approx(expected: dict[str, float], rel: float = 1e-9) -> object:
    return pytest.approx(expected, rel=rel, abs=rel)


def test_fixed_is_the_file_weights_as_fractions() -> None:
    result = fixed_weights({"INFY": 60.0, "TCS": 40.0})
    assert result.weights == approx({"INFY": 0.6, "TCS": 0.4})
    assert result.model is ModelName.FIXED


def test_equal_is_one_over_n() -> None:
    assert equal_weights(["INFY", "TCS", "ITC", "HDFCBANK"]).weights == approx(
        {"INFY": 0.25, "TCS": 0.25, "ITC": 0.25, "HDFCBANK": 0.25}
    )


def test_inverse_volatility_is_one_over_sigma_normalised() -> None:
    prices = uncorrelated_prices(VOLS)
    result = inverse_volatility_weights(prices, lookback_days=40)
    assert result.weights == approx(INVERSE_VOL)
    # The record: the annualised sample volatility (ddof 1 of +/- sigma over 40 days).
    assert result.inputs["B"]["volatility"] == pytest.approx(0.02 * math.sqrt(40 / 39 * 252))
    assert result.as_of == prices.index[-1]
    assert result.lookback_days == 40


def test_inverse_volatility_uses_only_the_lookback() -> None:
    # 40 calm days, then 40 where A is four times as volatile: a 40-day lookback sees only those.
    calm = np.tile(np.array([[1, 1], [-1, 1], [1, -1], [-1, -1]], dtype=float), (10, 1)) * 0.01
    wild = calm * np.array([4.0, 1.0])
    prices = prices_from_returns(np.vstack([calm, wild]), ["A", "B"])
    assert inverse_volatility_weights(prices, lookback_days=40).weights == approx(
        {"A": 0.2, "B": 0.8}
    )


def test_inverse_volatility_respects_the_max_cap() -> None:
    # A capped at 50%; B and C share the rest 2:1 -> 1/3, 1/6.
    result = inverse_volatility_weights(uncorrelated_prices(VOLS), lookback_days=40, max_weight=0.5)
    assert result.weights == approx({"A": 0.5, "B": 1 / 3, "C": 1 / 6})


def test_inverse_volatility_respects_the_min_floor() -> None:
    # C raised to 20%; A and B share 80% 2:1.
    result = inverse_volatility_weights(uncorrelated_prices(VOLS), lookback_days=40, min_weight=0.2)
    assert result.weights == approx({"A": 0.8 * 2 / 3, "B": 0.8 / 3, "C": 0.2})


def test_risk_parity_with_a_diagonal_covariance_is_inverse_volatility() -> None:
    result = risk_parity_weights(
        uncorrelated_prices(VOLS), lookback_days=40, covariance=CovarianceEstimator.SAMPLE
    )
    assert result.weights == approx(INVERSE_VOL, rel=SOLVER)
    assert sum(result.weights.values()) == pytest.approx(1.0)
    for symbol in "ABC":
        assert result.inputs[symbol]["risk_contribution"] == pytest.approx(1 / 3, abs=SOLVER)
    assert result.library == "skfolio"
    assert result.library_version
    assert result.notes == ()


def test_risk_parity_with_correlation_equalises_risk_contributions() -> None:
    # A and B move together (correlation 0.8), C on its own: ERC gives the pair less weight than
    # inverse volatility does.
    rng = np.random.default_rng(3)
    vols = np.array([0.01, 0.01, 0.01])
    correlation = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 1.0]])
    covariance = correlation * np.outer(vols, vols)
    returns = rng.multivariate_normal(np.zeros(3), covariance, size=500)
    prices = prices_from_returns(returns, ["A", "B", "C"])
    result = risk_parity_weights(prices, lookback_days=500, covariance=CovarianceEstimator.SAMPLE)

    weights = np.array([result.weights[s] for s in "ABC"])
    sample = np.cov(np.diff(prices.to_numpy(), axis=0).T / prices.to_numpy()[:-1].T)
    shares = risk_contributions(weights, sample)
    assert shares == pytest.approx([1 / 3, 1 / 3, 1 / 3], abs=SOLVER)
    assert result.weights["C"] > inverse_volatility_weights(prices, lookback_days=500).weights["C"]
    assert result.weights["C"] > 0.4  # near the exact-covariance answer 1/(1 + 2/sqrt(1.8)) = 0.40


def test_risk_parity_respects_the_caps() -> None:
    result = risk_parity_weights(
        uncorrelated_prices(VOLS),
        lookback_days=40,
        covariance=CovarianceEstimator.LEDOIT_WOLF,
        min_weight=0.2,
        max_weight=0.5,
    )
    assert sum(result.weights.values()) == pytest.approx(1.0)
    assert all(0.2 - SOLVER <= w <= 0.5 + SOLVER for w in result.weights.values())
    assert result.weights["A"] == pytest.approx(0.5, abs=SOLVER)
    assert result.parameters["covariance"] == "ledoit_wolf"
    assert result.notes[0].startswith("min/max weight binds for A, C: the risk contributions")


def test_risk_parity_refuses_impossible_caps_before_solving() -> None:
    with pytest.raises(TargetModelError, match=r"3 symbols x max_weight 30.00% is under 100%"):
        risk_parity_weights(uncorrelated_prices(VOLS), lookback_days=40, max_weight=0.3)


def test_a_short_or_holey_history_is_refused_by_the_models() -> None:
    prices = uncorrelated_prices(VOLS)
    with pytest.raises(TargetModelError, match="lookback_days 60 needs 61"):
        inverse_volatility_weights(prices, lookback_days=60)
    prices.iloc[5, 1] = np.nan
    with pytest.raises(TargetModelError, match="missing or non-positive closes for B"):
        inverse_volatility_weights(prices, lookback_days=40)


SCORES = {"INFY": 0.9, "TCS": 0.6, "ITC": 0.3, "WIPRO": 0.2, "SBIN": -0.1}


def test_scores_top_n_equal() -> None:
    result = score_weights(SCORES, top_n=3)
    assert result.weights == approx({"INFY": 1 / 3, "TCS": 1 / 3, "ITC": 1 / 3})
    assert result.inputs["TCS"] == {"score": 0.6, "rank": 2.0}


def test_scores_top_n_by_score_with_a_cap() -> None:
    # 0.9 : 0.6 : 0.3 -> 1/2, 1/3, 1/6; INFY capped at 40%, the 10% over goes 2:1 to TCS and ITC.
    uncapped = score_weights(SCORES, top_n=3, weighting=ScoreWeighting.SCORE)
    assert uncapped.weights == approx({"INFY": 0.5, "TCS": 1 / 3, "ITC": 1 / 6})
    capped = score_weights(SCORES, top_n=3, weighting=ScoreWeighting.SCORE, max_weight=0.4)
    assert capped.weights == approx({"INFY": 0.4, "TCS": 0.4, "ITC": 0.2})


def test_scores_candidates_min_score_and_ties() -> None:
    result = score_weights(
        {**SCORES, "AAA": 0.6}, top_n=2, candidates=["TCS", "AAA", "ITC", "SBIN"], min_score=0.0
    )
    assert result.weights == approx({"AAA": 0.5, "TCS": 0.5})  # tie at 0.6 broken by symbol
    few = score_weights(SCORES, top_n=10, min_score=0.25)
    assert set(few.weights) == {"INFY", "TCS", "ITC"}
    assert few.notes == ("only 3 symbols qualify for top_n 10",)


def test_scores_by_score_refuses_a_negative_score() -> None:
    with pytest.raises(TargetModelError, match=r"SBIN: score -0.1 <= 0"):
        score_weights(SCORES, top_n=5, weighting=ScoreWeighting.SCORE)


def test_bounded_weights_feasibility_and_exactness() -> None:
    with pytest.raises(TargetModelError, match=r"min_weight 40\.00% is over 100%"):
        bounded_weights({"A": 1, "B": 1, "C": 1}, min_weight=0.4)
    weights = bounded_weights({"A": 0, "B": 1, "C": 3}, min_weight=0.1, max_weight=0.6)
    assert weights == approx({"A": 0.1, "B": 0.3, "C": 0.6})
    # Only a zero base is left to take what the cap leaves over.
    assert bounded_weights({"A": 0, "B": 1}, max_weight=0.5) == approx({"A": 0.5, "B": 0.5})


def test_run_model_dispatches_and_records_the_model_block() -> None:
    section = TargetsSection.model_validate(
        {
            "symbols": ["A", "B", "C"],
            "model": {"name": "inverse_volatility", "lookback_days": 40, "max_weight_pct": 50},
        }
    )
    result = run_model(section, prices=uncorrelated_prices(VOLS))
    assert result.weights == approx({"A": 0.5, "B": 1 / 3, "C": 1 / 6})
    record = result.to_record()
    assert json.loads(json.dumps(record)) == record  # JSON-ready for history and XCom
    assert record["model"] == "inverse_volatility"
    assert record["parameters"]["max_weight_pct"] == 50
    assert record["as_of"] == str(uncorrelated_prices(VOLS).index[-1])
    fixed = run_model(TargetsSection.from_weights({"INFY": 70, "TCS": 30}))
    assert fixed.weights == approx({"INFY": 0.7, "TCS": 0.3})
    with pytest.raises(TargetModelError, match="no price history for C"):
        run_model(section, prices=uncorrelated_prices(VOLS[:2]))


def test_importing_the_package_does_not_load_the_optimisation_library() -> None:
    code = (
        "import sys, rebalance.targets.config, rebalance.targets.models\n"
        "import rebalance.targets.universe, rebalance.targets.scores, rebalance.targets.prices\n"
        "heavy = [m for m in ('skfolio', 'sklearn', 'cvxpy') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    light = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, rebalance.targets.config; print('pandas' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert light.stdout.strip() == "False"
