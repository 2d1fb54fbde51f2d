"""The target models as pure functions: prices or scores in, weights and the record of why out.

Every function returns a ``TargetResult``: weights as fractions of the invested value summing to 1
(cash, when the portfolio keeps some, is set aside by the caller), each within the model's min/max
weight, plus what produced them (as-of date, lookback, per-symbol volatility, risk contribution or
score, the parameters, the library and its version) for the history and the preview.

Prices are a frame of daily closes: one row per trading day (a date index, oldest first), one
column per symbol, in rupees. Check them with ``rebalance.targets.prices.check_price_history``
first: the models refuse missing closes rather than guess. Risk parity uses skfolio, imported
inside the function so that importing this module stays cheap (DAG parse time).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from importlib.metadata import version
from typing import Any

import numpy as np
import pandas as pd

from rebalance.errors import RebalanceError
from rebalance.targets.config import (
    TRADING_DAYS_PER_YEAR,
    CovarianceEstimator,
    EqualModel,
    FixedModel,
    InverseVolatilityModel,
    ModelName,
    RiskParityModel,
    ScoresModel,
    ScoreWeighting,
    TargetsSection,
)

_TOLERANCE = 1e-9


class TargetModelError(RebalanceError, ValueError):
    """The model cannot produce weights from these inputs (the message says what to change)."""


@dataclass(frozen=True)
class TargetResult:
    """Target weights and the inputs that produced them.

    ``inputs`` maps each symbol to the numbers the model used for it: ``volatility`` (annualised,
    fraction), ``risk_contribution`` (fraction of the portfolio's variance), ``score``.
    """

    model: ModelName
    weights: dict[str, float]
    as_of: date | None = None
    lookback_days: int | None = None
    inputs: dict[str, dict[str, float]] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    library: str | None = None
    library_version: str | None = None
    notes: tuple[str, ...] = ()

    def to_record(self) -> dict[str, Any]:
        """JSON-ready form for the history row and the preview (weights as fractions)."""
        return {
            "model": str(self.model),
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "lookback_days": self.lookback_days,
            "weights": dict(self.weights),
            "inputs": {symbol: dict(values) for symbol, values in self.inputs.items()},
            "parameters": dict(self.parameters),
            "library": self.library,
            "library_version": self.library_version,
            "notes": list(self.notes),
        }


def bounded_weights(
    base: Mapping[str, float], *, min_weight: float = 0.0, max_weight: float = 1.0
) -> dict[str, float]:
    """Weights proportional to ``base`` (>= 0), each within [min_weight, max_weight], summing to 1.

    The answer is ``w_i = clip(lam * base_i, min_weight, max_weight)`` with the one ``lam`` that
    makes the sum 1 (water-filling): a capped symbol's excess goes to the others in proportion to
    their base, and a symbol with base 0 gets ``min_weight`` (or, when every other symbol is at
    ``max_weight``, an equal share of what is left).
    """
    symbols = list(base)
    values = np.array([base[s] for s in symbols], dtype=float)
    if not symbols:
        raise TargetModelError("no symbols to weight")
    bad = [s for s, v in zip(symbols, values, strict=True) if not math.isfinite(v) or v < 0]
    if bad:
        raise TargetModelError(f"weights need a base >= 0; got {base[bad[0]]!r} for {bad[0]}")
    _check_feasible(len(symbols), min_weight, max_weight)
    # Scaled to a largest base of 1, and a base under 1e-12 of the largest counts as 0: lam then
    # stays within 1e12 (a finite bisection, no overflow).
    values = values / values.max() if values.max() > 0 else np.ones_like(values)
    values[values < 1e-12] = 0.0

    def total(lam: float) -> float:
        return float(np.clip(lam * values, min_weight, max_weight).sum())

    positive = values > 0
    n_positive, n_zero = int(positive.sum()), int((~positive).sum())
    if n_positive * max_weight + n_zero * min_weight < 1.0 - _TOLERANCE:
        # Every symbol with a base is at the cap and the zero-base ones at the floor still leave
        # some weight: the zero-base symbols share it equally (within bounds, as N x max >= 1).
        rest = (1.0 - n_positive * max_weight) / n_zero
        weights = np.where(positive, max_weight, rest)
        return dict(zip(symbols, (float(w) for w in weights), strict=True))
    low, high = 0.0, 1.0
    while total(high) < 1.0 - _TOLERANCE:
        high *= 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if total(middle) < 1.0:
            low = middle
        else:
            high = middle
    weights = np.clip(high * values, min_weight, max_weight)
    return dict(zip(symbols, (float(w) for w in weights), strict=True))


def fixed_weights(weights_pct: Mapping[str, float]) -> TargetResult:
    """The file's weights (percent) as fractions, normalised to sum to 1."""
    total = sum(weights_pct.values())
    if total <= 0:
        raise TargetModelError("fixed weights sum to 0%")
    weights = {symbol: pct / total for symbol, pct in weights_pct.items()}
    return TargetResult(ModelName.FIXED, weights, parameters={"weights_pct": dict(weights_pct)})


def equal_weights(symbols: Iterable[str]) -> TargetResult:
    """1/N for each symbol."""
    members = list(dict.fromkeys(symbols))
    if not members:
        raise TargetModelError("no symbols to weight")
    weights = {symbol: 1.0 / len(members) for symbol in members}
    return TargetResult(ModelName.EQUAL, weights)


def daily_returns(prices: pd.DataFrame, lookback_days: int) -> pd.DataFrame:
    """Simple daily returns of the last ``lookback_days`` days (needs ``lookback_days + 1`` closes).

    Raises ``TargetModelError`` on a short or incomplete history: run the price check first.
    """
    if prices.shape[1] == 0:
        raise TargetModelError("the price history has no symbols")
    if len(prices) < lookback_days + 1:
        raise TargetModelError(
            f"the price history has {len(prices)} daily closes; lookback_days {lookback_days} "
            f"needs {lookback_days + 1}"
        )
    window = prices.sort_index().iloc[-(lookback_days + 1) :].astype(float)
    bad = window.columns[(window.isna() | (window <= 0)).any()].tolist()
    if bad:
        raise TargetModelError(
            f"missing or non-positive closes for {', '.join(map(str, bad))} in the lookback; "
            "check the history with check_price_history"
        )
    return (window / window.shift(1) - 1.0).iloc[1:]


def _as_of(prices: pd.DataFrame) -> date | None:
    last = prices.sort_index().index[-1] if len(prices) else None
    if isinstance(last, datetime | pd.Timestamp):
        return last.date()
    return last if isinstance(last, date) else None


def _check_feasible(n: int, min_weight: float, max_weight: float) -> None:
    if min_weight > max_weight or n * min_weight > 1 + _TOLERANCE:
        raise TargetModelError(
            f"{n} symbols x min_weight {min_weight:.2%} is over 100%: lower min_weight_pct"
        )
    if n * max_weight < 1 - _TOLERANCE:
        raise TargetModelError(
            f"{n} symbols x max_weight {max_weight:.2%} is under 100%: raise max_weight_pct "
            "or add symbols"
        )


def inverse_volatility_weights(
    prices: pd.DataFrame,
    *,
    lookback_days: int = 252,
    min_weight: float = 0.0,
    max_weight: float = 1.0,
) -> TargetResult:
    """Weights proportional to 1/sigma of daily returns over ``lookback_days``, within the caps.

    ``inputs[symbol]["volatility"]`` is annualised (daily standard deviation x sqrt(252)).
    """
    returns = daily_returns(prices, lookback_days)
    volatility = returns.std(ddof=1) * math.sqrt(TRADING_DAYS_PER_YEAR)
    flat = volatility.index[volatility <= 0].tolist()
    if flat:
        raise TargetModelError(
            f"{', '.join(map(str, flat))}: no price movement in {lookback_days} days "
            "(volatility 0): a suspended or stale symbol cannot be weighted by 1/volatility"
        )
    base = {str(s): 1.0 / float(v) for s, v in volatility.items()}
    weights = bounded_weights(base, min_weight=min_weight, max_weight=max_weight)
    return TargetResult(
        ModelName.INVERSE_VOLATILITY,
        weights,
        as_of=_as_of(prices),
        lookback_days=lookback_days,
        inputs={str(s): {"volatility": float(v)} for s, v in volatility.items()},
        parameters={"min_weight": min_weight, "max_weight": max_weight},
        library="numpy",
        library_version=np.__version__,
    )


def risk_contributions(weights: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """Each symbol's share of the portfolio variance: ``w_i (S w)_i / w'S w`` (sums to 1)."""
    marginal = covariance @ weights
    variance = float(weights @ marginal)
    return np.asarray(weights * marginal / variance)


def risk_parity_weights(
    prices: pd.DataFrame,
    *,
    lookback_days: int = 252,
    covariance: CovarianceEstimator = CovarianceEstimator.LEDOIT_WOLF,
    min_weight: float = 0.0,
    max_weight: float = 1.0,
) -> TargetResult:
    """Equal risk contribution (risk parity) of daily returns over ``lookback_days``.

    skfolio's ``RiskBudgeting`` with equal budgets and variance as the risk measure, the
    covariance from ``covariance`` (sample, Ledoit-Wolf or OAS shrinkage) and the weight bounds
    as constraints of the optimisation. Unbounded, every risk contribution is 1/N; when a bound
    binds they are no longer equal, and a note in the result names the symbols at a bound.
    """
    returns = daily_returns(prices, lookback_days)
    symbols = [str(s) for s in returns.columns]
    _check_feasible(len(symbols), min_weight, max_weight)
    # Imported here: skfolio pulls in scikit-learn and cvxpy (seconds), never at DAG parse time.
    from skfolio import RiskMeasure
    from skfolio.moments import OAS, EmpiricalCovariance, LedoitWolf
    from skfolio.optimization import RiskBudgeting
    from skfolio.prior import EmpiricalPrior

    estimators = {
        CovarianceEstimator.SAMPLE: EmpiricalCovariance,
        CovarianceEstimator.LEDOIT_WOLF: LedoitWolf,
        CovarianceEstimator.OAS: OAS,
    }
    if len(symbols) == 1:
        weights_array = np.ones(1)
        cov = np.atleast_2d(returns.cov(ddof=1).to_numpy())
    else:
        optimiser = RiskBudgeting(
            risk_measure=RiskMeasure.VARIANCE,
            prior_estimator=EmpiricalPrior(covariance_estimator=estimators[covariance]()),
            min_weights=min_weight,
            max_weights=max_weight,
        )
        try:
            optimiser.fit(returns.to_numpy())
        except Exception as exc:  # the solver's own error types vary by version
            raise TargetModelError(
                f"risk parity did not solve for {len(symbols)} symbols ({exc}); check the price "
                "history, widen min/max_weight_pct or try covariance: ledoit_wolf"
            ) from exc
        weights_array = np.asarray(optimiser.weights_, dtype=float)
        cov = np.asarray(optimiser.prior_estimator_.return_distribution_.covariance, dtype=float)
    contributions = risk_contributions(weights_array, cov)
    at_bound = [
        s
        for s, w in zip(symbols, weights_array, strict=True)
        if (max_weight < 1.0 and w >= max_weight - 1e-6)
        or (min_weight > 0 and w <= min_weight + 1e-6)
    ]
    notes = (
        (
            f"min/max weight binds for {', '.join(at_bound)}: the risk contributions are no longer "
            "equal (see inputs); skfolio solves risk budgeting with the bounds as constraints",
        )
        if at_bound and len(symbols) > 1
        else ()
    )
    volatility = np.sqrt(np.diag(cov) * TRADING_DAYS_PER_YEAR)
    weights = dict(zip(symbols, (float(w) for w in weights_array), strict=True))
    return TargetResult(
        ModelName.RISK_PARITY,
        weights,
        as_of=_as_of(prices),
        lookback_days=lookback_days,
        inputs={
            s: {"volatility": float(v), "risk_contribution": float(c)}
            for s, v, c in zip(symbols, volatility, contributions, strict=True)
        },
        parameters={
            "covariance": str(covariance),
            "min_weight": min_weight,
            "max_weight": max_weight,
        },
        library="skfolio",
        library_version=version("skfolio"),
        notes=notes,
    )


def score_weights(
    scores: Mapping[str, float],
    *,
    top_n: int,
    weighting: ScoreWeighting = ScoreWeighting.EQUAL,
    min_weight: float = 0.0,
    max_weight: float = 1.0,
    min_score: float | None = None,
    candidates: Iterable[str] | None = None,
    as_of: date | None = None,
) -> TargetResult:
    """The ``top_n`` best scores (ties broken by symbol), weighted equally or by score, capped.

    ``candidates`` limits the symbols considered; ``min_score`` drops lower scores. Fewer than
    ``top_n`` qualifying symbols is allowed while the caps can still sum to 100% (a note says so).
    """
    allowed = set(candidates) if candidates is not None else None
    eligible = [
        (symbol, float(score))
        for symbol, score in scores.items()
        if (allowed is None or symbol in allowed) and (min_score is None or score >= min_score)
    ]
    eligible.sort(key=lambda item: (-item[1], item[0]))
    chosen = eligible[:top_n]
    if not chosen:
        raise TargetModelError(
            f"no symbol qualifies for the scores model ({len(scores)} scored"
            + (f", min_score {min_score:g}" if min_score is not None else "")
            + ")"
        )
    notes: list[str] = []
    if len(chosen) < top_n:
        notes.append(f"only {len(chosen)} symbols qualify for top_n {top_n}")
    _check_feasible(len(chosen), min_weight, max_weight)
    if weighting is ScoreWeighting.SCORE:
        non_positive = [(s, v) for s, v in chosen if v <= 0]
        if non_positive:
            symbol, value = non_positive[0]
            raise TargetModelError(
                f"{symbol}: score {value:g} <= 0 cannot be a weight (weighting: score); "
                "use weighting: equal or min_score above 0"
            )
        base = dict(chosen)
    else:
        base = {symbol: 1.0 for symbol, _ in chosen}
    weights = bounded_weights(base, min_weight=min_weight, max_weight=max_weight)
    return TargetResult(
        ModelName.SCORES,
        weights,
        as_of=as_of,
        inputs={
            symbol: {"score": value, "rank": float(rank)}
            for rank, (symbol, value) in enumerate(chosen, start=1)
        },
        parameters={
            "top_n": top_n,
            "weighting": str(weighting),
            "min_weight": min_weight,
            "max_weight": max_weight,
            "min_score": min_score,
        },
        notes=tuple(notes),
    )


def run_model(
    section: TargetsSection,
    *,
    prices: pd.DataFrame | None = None,
    scores: Mapping[str, float] | None = None,
    scores_as_of: date | None = None,
) -> TargetResult:
    """Run the section's model: the one entry point the DAG task will call.

    ``prices`` (daily closes of ``section.symbols``) for inverse_volatility and risk_parity,
    ``scores`` for the scores model; the model block's parameters are added to the record.
    """
    model = section.model
    low, high = section.bounds()
    result: TargetResult
    if isinstance(model, FixedModel):
        assert section.weights is not None  # the section's validator guarantees it
        return fixed_weights(section.weights)
    if isinstance(model, EqualModel):
        assert section.symbols is not None
        return equal_weights(section.symbols)
    if isinstance(model, InverseVolatilityModel | RiskParityModel):
        assert section.symbols is not None
        if prices is None:
            raise TargetModelError(f"model {model.name} needs a price history")
        missing = [s for s in section.symbols if s not in prices.columns]
        if missing:
            raise TargetModelError(f"no price history for {', '.join(missing)}")
        frame = prices[list(section.symbols)]
        if isinstance(model, RiskParityModel):
            result = risk_parity_weights(
                frame,
                lookback_days=model.lookback_days,
                covariance=model.covariance,
                min_weight=low,
                max_weight=high,
            )
        else:
            result = inverse_volatility_weights(
                frame, lookback_days=model.lookback_days, min_weight=low, max_weight=high
            )
    elif isinstance(model, ScoresModel):
        if scores is None:
            raise TargetModelError("model scores needs scores (its file or entry point)")
        result = score_weights(
            scores,
            top_n=model.top_n,
            weighting=model.weighting,
            min_weight=low,
            max_weight=high,
            min_score=model.min_score,
            candidates=section.symbols,
            as_of=scores_as_of,
        )
    else:  # pragma: no cover - the discriminated union has no other member
        raise TargetModelError(f"unknown model {model!r}")
    return replace(result, parameters={**result.parameters, **model.model_dump(mode="json")})
