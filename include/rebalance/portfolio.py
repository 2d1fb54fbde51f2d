"""A model portfolio: the YAML file a person writes, loaded into frozen, strict models.

A file looks like ``portfolios/example.yaml`` (annotated). Every error names the file and the
field, e.g. ``portfolios/core.yaml: invalid configuration - targets: weights sum to 90.0% ...``.
"""

from __future__ import annotations

import math
import re
from datetime import time
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rebalance.errors import ConfigError, validation_problems
from rebalance.policy import Policy
from rebalance.portfolio_file import (  # noqa: F401 - re-exported
    portfolio_files,
    portfolio_id_from_path,
    read_portfolio_data,
)
from rebalance.schedule import Schedule

WEIGHT_SUM_TOLERANCE_PCT = 0.01
_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9&_.\-]{0,29}$")


class BrokerName(StrEnum):
    ZERODHA = "zerodha"
    ANGELONE = "angelone"
    PAPER = "paper"


class ExecutionMode(StrEnum):
    DRY_RUN = "dry_run"  # plan and record, order nothing
    PAPER = "paper"  # orders go to the paper broker
    LIVE = "live"  # orders go to the account's broker


class ApprovalMode(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"


class Account(BaseModel):
    """One broker account a portfolio is held in: one lane of the DAG (notes section 10.A)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_]{0,31}$", description="lane id, e.g. zerodha_main"
    )
    broker: BrokerName
    connection_id: str | None = Field(
        None, description="Airflow connection holding the credentials (never the secrets here)"
    )
    holdings_file: str | None = Field(
        None, description="paper broker: CSV of holdings, relative to the portfolio file"
    )
    cash_inr: float | None = Field(None, ge=0, description="paper broker: available cash")

    @model_validator(mode="after")
    def _needs_source(self) -> Self:
        if self.broker is BrokerName.PAPER and self.holdings_file is None:
            raise ValueError("a paper account needs holdings_file")
        if self.broker is not BrokerName.PAPER and self.connection_id is None:
            raise ValueError(f"a {self.broker} account needs connection_id (an Airflow connection)")
        return self


class Execution(BaseModel):
    """How approved plans turn into orders."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: ExecutionMode = ExecutionMode.PAPER
    approval: ApprovalMode = ApprovalMode.MANUAL
    auto_approve_max_turnover_pct: float | None = Field(
        None, gt=0, le=200, description="auto approval only while turnover stays under this %"
    )
    approval_cutoff: time = Field(
        time(15, 25), description="live runs: no answer by then (IST) = expired"
    )
    approval_timeout_minutes: int = Field(
        120, ge=1, le=7 * 24 * 60, description="paper runs: no answer within this = expired"
    )
    snapshot_max_age_minutes: int = Field(
        30, ge=1, le=24 * 60, description="holdings older than this are not planned on"
    )
    order_deadline_minutes: int = Field(10, ge=1, le=120, description="poll fills this long")


class Portfolio(BaseModel):
    """A model portfolio: targets, policy, schedule, accounts and execution settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="from the file name; the DAG id is rebalance_<id>")
    name: str
    description: str = ""
    owner: str = "rebalance"
    tags: tuple[str, ...] = ()
    exchange: str = Field("NSE", pattern=r"^(NSE|BSE)$")
    targets: dict[str, float] = Field(
        description="symbol -> target weight in %; a list of symbols means equal weight"
    )
    cash_target_pct: float | None = Field(
        None, ge=0, lt=100, description="cash as a position; null = fully invested"
    )
    policy: Policy = Field(default_factory=Policy)
    schedule: Schedule = Field(default_factory=Schedule)
    accounts: tuple[Account, ...] = Field(min_length=1)
    execution: Execution = Field(default_factory=Execution)
    holiday_overrides: str | None = Field(
        None, description="YAML of dated holiday additions/removals, relative to this file"
    )

    @field_validator("targets", mode="before")
    @classmethod
    def _equal_weight_list(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not value:
                raise ValueError("at least one symbol is needed")
            seen: set[str] = set()
            for symbol in value:
                if symbol in seen:
                    raise ValueError(f"duplicate symbol {symbol!r}")
                seen.add(symbol)
            return {symbol: 100.0 / len(value) for symbol in value}
        return value

    @field_validator("targets", mode="wrap")
    @classmethod
    def _targets(cls, value: Any, handler: Any) -> dict[str, float]:
        parsed: dict[str, float] = handler(value)
        if not parsed:
            raise ValueError("at least one symbol is needed")
        for symbol, weight in parsed.items():
            if not _SYMBOL.match(symbol):
                raise ValueError(f"{symbol!r} is not a valid symbol (upper case, e.g. INFY)")
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"{symbol}: weight must be a number >= 0, got {weight}")
        return parsed

    @model_validator(mode="after")
    def _weights_sum(self) -> Self:
        cash = self.cash_target_pct or 0.0
        total = sum(self.targets.values()) + cash
        if abs(total - 100.0) > WEIGHT_SUM_TOLERANCE_PCT:
            cash_note = f" + cash {cash}%" if self.cash_target_pct else " (no cash target)"
            raise ValueError(
                f"targets: weights sum to {sum(self.targets.values()):g}%{cash_note} = {total:g}%, "
                "expected 100%"
            )
        names = [a.name for a in self.accounts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"accounts: duplicate account name(s) {', '.join(dupes)}")
        return self

    @property
    def dag_id(self) -> str:
        return f"rebalance_{self.id}"

    def target_fractions(self) -> dict[str, float]:
        """Target weights as fractions of portfolio value (0.1 = 10%)."""
        return {symbol: weight / 100.0 for symbol, weight in self.targets.items()}

    @property
    def cash_target_fraction(self) -> float | None:
        return None if self.cash_target_pct is None else self.cash_target_pct / 100.0


def parse_portfolio(data: Any, source: str, portfolio_id: str) -> Portfolio:
    """Validate already-parsed YAML. ``source`` names the file in error messages."""
    if not isinstance(data, dict):
        raise ConfigError(source, ["(top level): expected a mapping of keys to values"])
    if "id" in data:
        raise ConfigError(source, ["id: unknown key (the id comes from the file name)"])
    try:
        return Portfolio.model_validate({**data, "id": portfolio_id})
    except ValidationError as exc:
        raise ConfigError(source, validation_problems(exc)) from None


def load_portfolio(path: Path | str) -> Portfolio:
    """Read and validate one portfolio file; any failure is a ConfigError naming the file."""
    path = Path(path)
    return portfolio_from_data(read_portfolio_data(path), path)


def portfolio_from_data(data: Any, path: Path) -> Portfolio:
    """Validate what ``read_portfolio_data`` read from ``path``.

    Whatever a validator raises (not only a ValidationError) becomes a ConfigError naming the
    file, so a caller that loads a folder can keep every other file.
    """
    try:
        return parse_portfolio(data, str(path), portfolio_id_from_path(path))
    except ConfigError:
        raise
    except RecursionError:
        raise ConfigError(str(path), ["the file is nested too deeply to validate"]) from None
    except Exception as exc:
        raise ConfigError(
            str(path), [f"cannot be validated: {type(exc).__name__}: {exc}"]
        ) from None


def resolve_relative(portfolio_file: Path | str, relative: str) -> Path:
    """A path written in a portfolio file is relative to that file."""
    candidate = Path(relative)
    return candidate if candidate.is_absolute() else Path(portfolio_file).parent / candidate
