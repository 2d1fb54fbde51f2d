"""The ``targets:`` section with its ``model:`` block, and the ``universe:`` block (strict).

A portfolio file names where its target weights come from::

    targets:
      symbols: [INFY, TCS, HDFCBANK, ITC]
      model:
        name: risk_parity   # fixed (default) | equal | inverse_volatility | risk_parity | scores
        lookback_days: 252
        covariance: ledoit_wolf
        min_weight_pct: 5
        max_weight_pct: 40

``model: risk_parity`` alone is short for ``model: {name: risk_parity}`` with every default. Weights
are percent numbers as a person writes them (10 means 10%); the model functions take fractions
(``TargetsSection.bounds()``). Unknown keys are errors, and every message names the field, e.g.
``model.risk_parity.lookback_days: Input should be greater than or equal to 20``.

Today's portfolio files (``targets: {INFY: 60, TCS: 40}`` or a list) stay valid: they are the
``fixed`` model (``TargetsSection.from_weights``).
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9&_.\-]{0,29}$")
# An entry point's name as importlib.metadata stores it; never a module path (no code in YAML).
ENTRY_POINT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
TRADING_DAYS_PER_YEAR = 252


class ModelName(StrEnum):
    FIXED = "fixed"  # the weights written in the file (today's behaviour, the default)
    EQUAL = "equal"  # 1/N of the symbols
    INVERSE_VOLATILITY = "inverse_volatility"  # 1/sigma, normalised
    RISK_PARITY = "risk_parity"  # equal risk contribution under a covariance estimate
    SCORES = "scores"  # top N by score, weighted equally or by score


class CovarianceEstimator(StrEnum):
    SAMPLE = "sample"  # the plain sample covariance of daily returns
    LEDOIT_WOLF = "ledoit_wolf"  # shrunk towards a scaled identity (Ledoit & Wolf 2004)
    OAS = "oas"  # Oracle Approximating Shrinkage (Chen et al. 2010)


class ScoreWeighting(StrEnum):
    EQUAL = "equal"  # each of the top N gets 1/N (before caps)
    SCORE = "score"  # proportional to the score (scores must be > 0)


def _check_symbol(symbol: str) -> str:
    if not SYMBOL.match(symbol):
        raise ValueError(f"{symbol!r} is not a valid symbol (upper case, e.g. INFY)")
    return symbol


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Bounded(_Strict):
    """Per-symbol weight limits, in percent of the invested value."""

    min_weight_pct: float = Field(0.0, ge=0, lt=100, description="each symbol at least this %")
    max_weight_pct: float = Field(100.0, gt=0, le=100, description="each symbol at most this %")

    @model_validator(mode="after")
    def _min_below_max(self) -> Self:
        if self.min_weight_pct > self.max_weight_pct:
            raise ValueError(
                f"min_weight_pct {self.min_weight_pct:g} is above max_weight_pct "
                f"{self.max_weight_pct:g}"
            )
        return self


class _PriceModel(_Bounded):
    """A model that reads a daily close history; the price checks stop the lane on bad history."""

    lookback_days: int = Field(
        252, ge=20, le=2520, description="trading days of daily returns (252 = about a year)"
    )
    max_stale_days: int = Field(
        3, ge=1, le=30, description="a close repeated on more consecutive days is stale"
    )
    max_missing_days: int = Field(
        0, ge=0, le=30, description="trading days a symbol may lack a close in the lookback"
    )
    split_jump_pct: float = Field(
        30.0, gt=0, le=95, description="a one-day move of at least this % looks like a split"
    )


class FixedModel(_Strict):
    """The weights written under ``targets.weights`` (default)."""

    name: Literal["fixed"] = "fixed"


class EqualModel(_Strict):
    """1/N for each of ``targets.symbols``."""

    name: Literal["equal"]


class InverseVolatilityModel(_PriceModel):
    """Weight proportional to 1/sigma of daily returns over ``lookback_days``, within the caps."""

    name: Literal["inverse_volatility"]


class RiskParityModel(_PriceModel):
    """Equal risk contribution under ``covariance``, within the caps (skfolio RiskBudgeting)."""

    name: Literal["risk_parity"]
    covariance: CovarianceEstimator = CovarianceEstimator.LEDOIT_WOLF


class ScoresModel(_Bounded):
    """Top ``top_n`` symbols by score from a scores file or an installed scoring function."""

    name: Literal["scores"]
    file: str | None = Field(
        None, description="CSV symbol,score[,as_of], relative to the portfolio file"
    )
    entry_point: str | None = Field(
        None,
        pattern=ENTRY_POINT_NAME,
        description="name of an installed `rebalance.scores` entry point (never a module path)",
    )
    top_n: int = Field(ge=1, le=500, description="how many of the best-scoring symbols to hold")
    weighting: ScoreWeighting = ScoreWeighting.EQUAL
    min_score: float | None = Field(None, description="symbols scoring below this are never held")
    max_age_days: int | None = Field(
        None, ge=0, le=366, description="scores with an as_of older than this are refused"
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.file is None) == (self.entry_point is None):
            raise ValueError("give exactly one of file (a scores CSV) or entry_point")
        if self.top_n * self.min_weight_pct > 100 + 1e-9:
            raise ValueError(
                f"top_n {self.top_n} x min_weight_pct {self.min_weight_pct:g}% is over 100%"
            )
        if self.top_n * self.max_weight_pct < 100 - 1e-9:
            raise ValueError(
                f"top_n {self.top_n} x max_weight_pct {self.max_weight_pct:g}% is under 100%: "
                "the weights could not sum to 100%"
            )
        return self


TargetModel = Annotated[
    FixedModel | EqualModel | InverseVolatilityModel | RiskParityModel | ScoresModel,
    Field(discriminator="name"),
]


class TargetsSection(_Strict):
    """A portfolio's ``targets:`` section: its members and the model that weights them."""

    model: TargetModel = Field(default_factory=FixedModel)
    weights: dict[str, float] | None = Field(None, description="fixed model: symbol -> weight in %")
    symbols: tuple[str, ...] | None = Field(
        None,
        description="the members for equal / inverse_volatility / risk_parity; for scores "
        "an optional list the candidates are limited to",
    )

    @field_validator("model", mode="before")
    @classmethod
    def _name_alone(cls, value: Any) -> Any:
        # `model: risk_parity` is short for `model: {name: risk_parity}`.
        return {"name": value} if isinstance(value, str) else value

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("at least one symbol is needed")
        for symbol, weight in value.items():
            _check_symbol(symbol)
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"{symbol}: weight must be a number >= 0, got {weight}")
        return value

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("at least one symbol is needed")
        seen: set[str] = set()
        for symbol in value:
            _check_symbol(symbol)
            if symbol in seen:
                raise ValueError(f"duplicate symbol {symbol!r}")
            seen.add(symbol)
        return value

    @model_validator(mode="after")
    def _members(self) -> Self:
        name = self.model.name
        if name == ModelName.FIXED:
            if self.weights is None:
                raise ValueError("model fixed needs weights (symbol -> %)")
            if self.symbols is not None:
                raise ValueError("model fixed takes weights, not symbols")
            return self
        if self.weights is not None:
            raise ValueError(f"model {name} computes the weights: give symbols, not weights")
        if name == ModelName.SCORES:
            return self
        if self.symbols is None:
            raise ValueError(f"model {name} needs symbols (the members it weights)")
        model = self.model
        if (
            isinstance(model, RiskParityModel)
            and model.covariance == CovarianceEstimator.SAMPLE
            and len(self.symbols) >= model.lookback_days
        ):
            raise ValueError(
                f"model.covariance sample: {len(self.symbols)} symbols need more than "
                f"{len(self.symbols)} days of returns (lookback_days {model.lookback_days}), else "
                "the covariance is singular; use ledoit_wolf or oas, or a longer lookback"
            )
        if isinstance(model, _Bounded):
            low, high = self.bounds()
            n = len(self.symbols)
            if n * low > 1 + 1e-9 or n * high < 1 - 1e-9:
                raise ValueError(
                    f"{n} symbols cannot sum to 100% with min_weight_pct "
                    f"{model.min_weight_pct:g} and max_weight_pct {model.max_weight_pct:g}"
                )
        return self

    @classmethod
    def from_weights(cls, weights: dict[str, float]) -> TargetsSection:
        """Today's ``targets: {SYMBOL: pct}`` as the fixed model."""
        return cls(weights=weights)

    def bounds(self) -> tuple[float, float]:
        """(min, max) weight per symbol as fractions; (0, 1) for models without caps."""
        if isinstance(self.model, _Bounded):
            return self.model.min_weight_pct / 100.0, self.model.max_weight_pct / 100.0
        return 0.0, 1.0


class ReplaceWhen(_Strict):
    """When a held symbol is replaced; either condition is enough."""

    leaves_top: int | None = Field(
        None, ge=1, le=1000, description="it ranks below the top M of the universe by score"
    )
    score_below: float | None = Field(None, description="its score falls below this")

    @model_validator(mode="after")
    def _some_rule(self) -> Self:
        if self.leaves_top is None and self.score_below is None:
            raise ValueError("give leaves_top (M) and/or score_below")
        return self


class Pick(_Strict):
    """How replacements are chosen: the best-scoring symbols not held."""

    by: Literal["best_score"] = "best_score"
    max_entries: int | None = Field(
        None, ge=0, le=100, description="at most this many entries per run; null = one per exit"
    )


class UniverseConfig(_Strict):
    """The replacement universe (notes 6.2): where new names come from and when they replace.

    ``watchlist`` alone ranks by its order (first = best); with ``scores`` or ``entry_point`` the
    scores rank and a watchlist limits the candidates.
    """

    watchlist: str | None = Field(
        None, description="symbols, one a line or a CSV with a symbol column, best first"
    )
    scores: str | None = Field(None, description="CSV symbol,score[,as_of]")
    entry_point: str | None = Field(
        None, pattern=ENTRY_POINT_NAME, description="an installed `rebalance.scores` entry point"
    )
    replace_when: ReplaceWhen
    pick: Pick = Field(default_factory=Pick)

    @model_validator(mode="after")
    def _source(self) -> Self:
        if self.scores is not None and self.entry_point is not None:
            raise ValueError("give scores (a file) or entry_point, not both")
        if self.watchlist is None and self.scores is None and self.entry_point is None:
            raise ValueError("give watchlist, scores or entry_point")
        ranked_only = self.scores is None and self.entry_point is None
        if ranked_only and self.replace_when.score_below is not None:
            raise ValueError(
                "replace_when.score_below needs scores (a scores file or entry_point); "
                "a watchlist alone ranks by its order: use leaves_top"
            )
        return self
