"""The rebalance policy: every knob of the notes' sections 4, 5, 7 and 12.

Percentages are percent numbers as a person reads them (10 means 10%); the planner converts them to
fractions. Defaults are the notes' section 12 starter values.
"""

from __future__ import annotations

import re
import types
import typing
from difflib import get_close_matches
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

SYMBOL_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9&_.\-]{0,29}$")


def _is_number_type(annotation: Any) -> bool:
    """``float``, ``int`` or an optional one (``float | None``), not ``bool``."""
    if annotation in (float, int):
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return len(args) == 1 and args[0] in (float, int)
    return False


def refuse_non_numbers(value: Any) -> Any:
    """A number field takes a number: ``true`` is not 1 and ``"10"`` is not 10 (pydantic's lax
    mode would take both). Used by every numeric field of the config models."""
    if isinstance(value, bool | str | bytes):
        raise ValueError(f"must be a number, got {value!r}")
    return value


def symbol_problem(symbol: Any, known: tuple[str, ...] = ()) -> str | None:
    """Why ``symbol`` is not a usable symbol (None when it is), with a suggestion: the upper-case
    spelling, or the closest of ``known`` (e.g. the targets)."""
    if not isinstance(symbol, str):
        return f"{symbol!r} is not a symbol (a text like INFY)"
    if SYMBOL_PATTERN.match(symbol):
        return None
    fixed = symbol.strip().upper()
    if SYMBOL_PATTERN.match(fixed):
        return f"{symbol!r} is not a valid symbol: symbols are upper case, did you mean {fixed!r}?"
    hint = get_close_matches(fixed, known, n=1)
    suggestion = f"; did you mean {hint[0]!r}?" if hint else " (upper case, e.g. INFY, M&M)"
    return f"{symbol!r} is not a valid symbol{suggestion}"


class TiltMode(StrEnum):
    NEUTRAL = "neutral"
    MEAN_REVERSION = "mean_reversion"
    MOMENTUM = "momentum"


class UnlistedHoldings(StrEnum):
    """What to do with symbols held in the account but absent from the targets."""

    IGNORE = "ignore"  # leave them alone; they are not part of the portfolio's value
    SELL = "sell"  # target 0: sell them out (subject to the same budget and guardrails)


class TradeFilter(StrEnum):
    BOTH = "both"
    BUYS_ONLY = "buys_only"
    SELLS_ONLY = "sells_only"


class BudgetMode(StrEnum):
    """How the budget of section 4.3 is measured against the trades."""

    MAX_SIDE = "max_side"  # scale = min(1, budget / max(total_buy, total_sell))
    TURNOVER = "turnover"  # scale = min(1, budget / (total_buy + total_sell))


class NumbersAreNumbers(BaseModel):
    """Base of the config models: every ``float``/``int`` field refuses booleans and text."""

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is not None and _is_number_type(field.annotation) and value is not None:
            return refuse_non_numbers(value)
        return value


class TaxMode(StrEnum):
    """What the planner does with capital-gains tax (issue 15; docs/tax.md)."""

    OFF = "off"  # no tax data read, none shown
    REPORT = "report"  # estimate and show it; the plan is the plain plan
    LIMIT = "limit"  # the caps (max_short_term_gains_inr, max_tax_inr) are hard constraints
    MINIMISE = "minimise"  # tax enters the objective with tax_weight


class RebalanceTo(StrEnum):
    """How far a symbol outside its band trades."""

    TARGET = "target"  # all the way to its target weight (the notes' 4.1)
    BAND_EDGE = "band_edge"  # only to the nearest edge of its band ("minimum transaction")


class Policy(NumbersAreNumbers):
    """Parameters that decide a rebalance. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    rebalance_budget_pct: float = Field(10.0, ge=0, le=100, description="budget, % of value")
    rebalance_budget_inr: float | None = Field(
        None, gt=0, description="fixed budget in rupees; overrides rebalance_budget_pct"
    )
    budget_mode: BudgetMode = BudgetMode.MAX_SIDE
    drift_band_abs_pct: float = Field(2.0, ge=0, le=100, description="absolute drift band, %")
    drift_band_rel_pct: float = Field(
        15.0, ge=0, le=1000, description="relative drift band, % of the target weight"
    )
    max_trades: int = Field(10, ge=0, description="most orders in one rebalance")
    min_trade_value_inr: float = Field(2000.0, ge=0, description="smallest order, rupees")
    max_position_weight_pct: float = Field(
        15.0, gt=0, le=100, description="never buy above; holdings above are trimmed"
    )
    no_buy: frozenset[str] = Field(default_factory=frozenset, description="never buy these")
    no_sell: frozenset[str] = Field(default_factory=frozenset, description="never sell these")
    trade_filter: TradeFilter = TradeFilter.BOTH
    unlisted_holdings: UnlistedHoldings = UnlistedHoldings.IGNORE
    use_sell_proceeds: bool = Field(True, description="buys may be funded by this run's sells")
    fill_to_target: bool = Field(
        True,
        description="after rounding, spend the budget left on steps toward the targets, even past "
        "the proportional plan (false: stop at the proportional plan)",
    )
    tilt_mode: TiltMode = TiltMode.NEUTRAL
    tilt_strength_pct: float = Field(
        25.0, ge=0, le=100, description="how much a tilt scales the tilted trades, %"
    )
    profit_take_threshold_pct: float | None = Field(
        None, description="P&L % at which a winner over target gets a stronger sell (off: null)"
    )
    profit_take_boost_pct: float = Field(20.0, ge=0, le=100)
    today_winners_bias: bool = Field(False, description="use today's winners% as a macro bias")
    today_winners_high_pct: float = Field(70.0, ge=0, le=100)
    today_winners_low_pct: float = Field(30.0, ge=0, le=100)
    today_bias_pct: float = Field(10.0, ge=0, le=100)
    min_holding_days: int | None = Field(
        None, ge=0, description="don't sell lots held fewer than N days (e.g. 365 for LTCG)"
    )
    max_price_move_pct: float = Field(
        2.0, gt=0, description="stop placing if prices moved more than this since planning"
    )

    @field_validator("no_buy", "no_sell", mode="before")
    @classmethod
    def _symbol_lists(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError(f"must be a list of symbols, e.g. [{value}]")
        if isinstance(value, list | tuple | set | frozenset):
            problems = [p for p in (symbol_problem(s) for s in value) if p]
            if problems:
                raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _check_bias_thresholds(self) -> Self:
        if self.today_winners_low_pct > self.today_winners_high_pct:
            raise ValueError("today_winners_low_pct must not exceed today_winners_high_pct")
        return self

    def with_overrides(self, overrides: dict[str, Any]) -> Policy:
        """A copy with some keys replaced (from the CLI's --set or the Airflow Params form)."""
        merged = self.model_dump()
        merged.update(overrides)
        return Policy.model_validate(merged)

    # The optimiser (docs/planner.md, "The objective and the optimiser"); defaults keep the
    # behaviour of a plain rebalance to target.
    rebalance_to: RebalanceTo = Field(
        RebalanceTo.TARGET,
        description="trade a symbol outside its band to its target, or only to its band's edge",
    )
    max_order_charges_pct: float | None = Field(
        None,
        gt=0,
        le=100,
        description="drop orders whose estimated charges exceed this % of their notional "
        "(off: null)",
    )
    optimiser_time_cap_s: float = Field(
        0.75,
        ge=0,
        le=60,
        description="seconds the exact optimiser may take; past them the best plan it found, or "
        "the fast plan, is used (0: the fast plan only). 0.75 keeps a 500-symbol plan under 1 s "
        "(HiGHS overran its limit by up to 0.15 s)",
    )

    # Capital-gains tax (issue 15, docs/tax.md): read from the account's lots in history.
    tax: TaxMode = Field(TaxMode.OFF, description="off | report | limit | minimise")
    max_short_term_gains_inr: float | None = Field(
        None, ge=0, description="tax: limit: most short-term gains one run may realise, rupees"
    )
    max_tax_inr: float | None = Field(
        None, ge=0, description="tax: limit: most estimated tax one run may add, rupees"
    )
    tax_weight: float = Field(
        0.0,
        ge=0,
        description="tax: minimise: rupees of drift (sum of |value - target|) one rupee of tax "
        "must remove to be worth paying (0: the report plan)",
    )
    tax_loss_harvesting: bool = Field(
        False, description="tax: minimise: a loss realised counts as tax saved (sells losing lots)"
    )

    @model_validator(mode="after")
    def _check_tax(self) -> Self:
        if self.tax is TaxMode.LIMIT and (
            self.max_short_term_gains_inr is None and self.max_tax_inr is None
        ):
            raise ValueError(
                "tax: limit needs max_short_term_gains_inr or max_tax_inr (or both), rupees"
            )
        # the caps and the weight are ignored in the other modes (an override of ``tax`` from
        # the Params form must not make the portfolio file invalid)
        return self
