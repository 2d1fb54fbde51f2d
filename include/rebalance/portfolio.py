"""A model portfolio: the YAML file a person writes, loaded into frozen, strict models.

A file looks like ``portfolios/example.yaml`` (annotated). Every error names the file and the
field, e.g. ``portfolios/core.yaml: invalid configuration - targets: weights sum to 90.0% ...``.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from datetime import time
from difflib import get_close_matches
from enum import StrEnum
from functools import cache
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Self

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from rebalance.accounts.modes import combined_refusals
from rebalance.drift.config import Trigger
from rebalance.errors import ConfigError, validation_problems
from rebalance.policy import NumbersAreNumbers, Policy, UnlistedHoldings, symbol_problem
from rebalance.portfolio_file import (  # noqa: F401 - re-exported
    portfolio_files,
    portfolio_id_from_path,
    read_portfolio_data,
)
from rebalance.schedule import Schedule
from rebalance.targets.config import ModelName, TargetsSection, UniverseConfig
from rebalance.targets.section import split_targets

log = logging.getLogger(__name__)


@cache
def _warn_missing_scrip_groups(portfolio_id: str, missing: tuple[str, ...]) -> None:
    """Once a process (each DAG parse validates every file again): the groups a BSE portfolio
    lacks."""
    log.warning(
        "portfolio %s trades on BSE but execution.bse_scrip_groups gives no group for "
        "%s: charged at group A's rate (X/Z groups pay 0.1%%, 27 times more)",
        portfolio_id,
        ", ".join(missing),
    )


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
    MANUAL_QUEUE = "manual_queue"  # a basket a person places by hand, then reconciled (13.4)


class OrderType(StrEnum):
    """How the pipeline prices an order (docs/brokers.md, "Order pricing")."""

    LIMIT = "limit"  # last price +/- limit_buffer_pct, on the tick, inside the circuit
    MARKET = "market"  # a market order with market_protection_pct (the broker's limit band)


class ApprovalMode(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"


class AccountsMode(StrEnum):
    """How a portfolio held in several accounts is rebalanced (docs/accounts.md)."""

    SEPARATE = "separate"  # each account pulled to the targets on its own (the notes' 10.A)
    COMBINED = "combined"  # one plan for the whole, its orders allocated to accounts (10.B)


def check_relative_path(value: str | None) -> str | None:
    """A file named in a portfolio stays inside the portfolio's folder: a relative path without
    ``..`` (``data/holdings.csv``, ``calendars/nse_2027.yaml``); never absolute, never ``~``."""
    if value is None:
        return None
    if not value.strip() or "\x00" in value:
        raise ValueError("must be a file name relative to the portfolio file")
    posix, windows = PurePosixPath(value), PureWindowsPath(value)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or value.startswith("~"):
        raise ValueError(
            f"{value!r} is outside the portfolio folder: give a path relative to the portfolio "
            "file (e.g. data/holdings.csv)"
        )
    if ".." in posix.parts or ".." in windows.parts:
        raise ValueError(
            f"{value!r} leaves the portfolio folder ('..'): files a portfolio names must be in "
            "its folder or a sub-folder"
        )
    return value


def policy_symbol_problems(policy: Policy, targets: Mapping[str, float]) -> list[str]:
    """no_buy / no_sell symbols that cannot mean what they say, with the closest target.

    A no_buy symbol must be a target (nothing else is ever bought). A no_sell symbol must be a
    target too, unless ``unlisted_holdings: sell`` (then a held symbol outside the targets may be
    protected; whether it is held is checked against the holdings at run time).
    """
    known = tuple(targets)
    problems = []
    for key in ("no_buy", "no_sell"):
        allowed_outside = key == "no_sell" and policy.unlisted_holdings is UnlistedHoldings.SELL
        for symbol in sorted(getattr(policy, key)):
            if symbol in targets or allowed_outside:
                continue
            close = get_close_matches(symbol, known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"policy.{key}: {symbol!r} is not one of the targets{hint}")
    return problems


class Account(NumbersAreNumbers):
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
    cash_inr: float | None = Field(
        None, ge=0, le=1e12, description="paper broker: available cash, rupees"
    )
    ledger: bool = Field(
        False,
        description="the account holds other portfolios too: this one keeps a ledger of its "
        "shares and cash inside it (docs/accounts.md)",
    )

    @field_validator("holdings_file")
    @classmethod
    def _inside_folder(cls, value: str | None) -> str | None:
        return check_relative_path(value)

    @model_validator(mode="after")
    def _needs_source(self) -> Self:
        if self.broker is BrokerName.PAPER and self.holdings_file is None:
            raise ValueError("a paper account needs holdings_file")
        if self.broker is not BrokerName.PAPER and self.connection_id is None:
            raise ValueError(f"a {self.broker} account needs connection_id (an Airflow connection)")
        if self.broker is BrokerName.PAPER and self.ledger:
            raise ValueError("ledger: a paper account is never shared (it is the portfolio's own)")
        return self


class Execution(NumbersAreNumbers):
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
    order_deadline_minutes: int = Field(
        10,
        ge=1,
        le=120,
        description="the fill deadline: poll fills this long per pricing round, then cancel "
        "what is still open (and re-price it, within max_reprice_rounds)",
    )
    order_type: OrderType = Field(
        OrderType.LIMIT, description="limit (default) or market with explicit protection"
    )
    limit_buffer_pct: float = Field(
        0.5, ge=0, le=20, description="limit orders: % above the last price (buys) / below (sells)"
    )
    market_protection_pct: float = Field(
        1.0,
        description="market orders: protection %, above 0 and at most 100, or -1 for the "
        "broker's automatic band; 0 (unprotected) is refused by the brokers since 1 April 2026",
    )
    max_reprice_rounds: int = Field(
        2,
        ge=0,
        le=10,
        description="remainders open at the fill deadline are cancelled and re-priced from a "
        "fresh quote at most this many times (0: cancel only)",
    )
    approvers: tuple[str, ...] = Field(
        (),
        max_length=100,
        description="Airflow user ids who may answer the approval; empty = anyone who may act "
        "on the DAG (simple auth manager: the user name; FAB: the numeric user id)",
    )

    bse_scrip_groups: dict[str, str] = Field(
        default_factory=dict,
        description="BSE orders: the scrip group of each symbol (A, B, X, Z, ...), which sets "
        "BSE's transaction charge; neither broker's instrument data carries it",
    )

    @field_validator("bse_scrip_groups")
    @classmethod
    def _scrip_groups(cls, value: dict[str, str]) -> dict[str, str]:
        from rebalance.costs import BSE_GROUP_RATES

        groups = {}
        for symbol, group in value.items():
            name = str(group).strip().upper()
            if name not in BSE_GROUP_RATES:
                raise ValueError(
                    f"{symbol}: {group!r} is not a BSE scrip group; known: "
                    f"{', '.join(sorted(BSE_GROUP_RATES))}"
                )
            groups[symbol] = name
        return groups

    @field_validator("market_protection_pct")
    @classmethod
    def _protection(cls, value: float) -> float:
        if value == -1 or 0 < value <= 100:
            return value
        raise ValueError(
            "must be -1 (the broker's automatic band) or a percentage above 0 and at most 100; "
            "0 means unprotected, which the brokers refuse since 1 April 2026"
        )

    @field_validator("approvers")
    @classmethod
    def _approver_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for user in value:
            if not user.strip() or len(user) > 256:
                raise ValueError(f"{user!r} is not a user id (1 to 256 characters)")
        if len(set(value)) != len(value):
            raise ValueError("an approver is listed twice")
        return value


class Portfolio(NumbersAreNumbers):
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
    trigger: Trigger = Field(
        default_factory=Trigger,
        description="what starts a rebalance: schedule (default), drift or schedule_and_drift",
    )
    accounts: tuple[Account, ...] = Field(description="one lane per account; at least one")
    accounts_mode: AccountsMode = Field(
        AccountsMode.SEPARATE,
        description="several accounts: separate (each on its own) or combined (one plan)",
    )
    execution: Execution = Field(default_factory=Execution)
    holiday_overrides: str | None = Field(
        None, description="YAML of dated holiday additions/removals, relative to this file"
    )
    universe: UniverseConfig | None = Field(
        None, description="the replacement universe (notes 6.2, docs/targets.md)"
    )
    target_model: TargetsSection | None = Field(
        None, exclude=True, description="the targets: section with its model (never in a file)"
    )

    @model_validator(mode="before")
    @classmethod
    def _targets_section(cls, data: Any) -> Any:
        return split_targets(data)

    @field_validator("targets", mode="before")
    @classmethod
    def _equal_weight_list(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not value:
                raise ValueError("at least one symbol is needed")
            seen: set[str] = set()
            for symbol in value:
                if problem := symbol_problem(symbol):
                    raise ValueError(problem)
                if symbol in seen:
                    raise ValueError(f"duplicate symbol {symbol!r}")
                seen.add(symbol)
            return {symbol: 100.0 / len(value) for symbol in value}
        if isinstance(value, dict):
            for symbol, weight in value.items():
                if problem := symbol_problem(symbol):
                    raise ValueError(problem)
                if isinstance(weight, bool) or not isinstance(weight, int | float):
                    raise ValueError(
                        f"{symbol}: a weight is a number of percent (e.g. 10 for 10%), "
                        f"got {weight!r}"
                    )
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
            if not math.isfinite(weight) or not 0 <= weight <= 100:
                raise ValueError(f"{symbol}: weight must be a percentage 0..100, got {weight}")
        return parsed

    @field_validator("accounts")
    @classmethod
    def _at_least_one_account(cls, value: tuple[Account, ...]) -> tuple[Account, ...]:
        # A check after the items (pydantic's min_length also fires when an item is invalid).
        if not value:
            raise ValueError("at least one account is needed")
        return value

    @field_validator("holiday_overrides")
    @classmethod
    def _overrides_inside_folder(cls, value: str | None) -> str | None:
        return check_relative_path(value)

    @field_validator("universe")
    @classmethod
    def _universe_inside_folder(cls, value: UniverseConfig | None) -> UniverseConfig | None:
        if value is not None:
            check_relative_path(value.watchlist)
            check_relative_path(value.scores)
        return value

    @field_validator("target_model")
    @classmethod
    def _scores_file_inside_folder(cls, value: TargetsSection | None) -> TargetsSection | None:
        if value is not None:
            check_relative_path(getattr(value.model, "file", None))
        return value

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
        if problems := policy_symbol_problems(self.policy, self.targets):
            raise ValueError("\n".join(problems))
        if stray := sorted(set(self.execution.bse_scrip_groups) - set(self.targets)):
            raise ValueError(
                f"execution.bse_scrip_groups: {', '.join(stray)} not among the targets"
            )
        if self.exchange == "BSE" and (missing := self.symbols_without_scrip_group()):
            _warn_missing_scrip_groups(self.id, tuple(missing))
        if self.accounts_mode is AccountsMode.COMBINED and len(self.accounts) < 2:
            raise ValueError("accounts_mode: combined needs at least two accounts")
        if self.accounts_mode is AccountsMode.COMBINED and (
            refused := combined_refusals(
                self.policy, self.accounts, computed_targets=self.needs_target_model
            )
        ):
            raise ValueError("\n".join(refused))
        if len(self.accounts) > 1 and "combined" in names:
            raise ValueError("accounts: 'combined' is the name of the accounts' combined tasks")
        return self

    def symbols_without_scrip_group(self) -> list[str]:
        """The targets of a BSE portfolio with no ``execution.bse_scrip_groups`` entry."""
        if self.exchange != "BSE":
            return []
        return sorted(set(self.targets) - set(self.execution.bse_scrip_groups))

    @property
    def dag_id(self) -> str:
        return f"rebalance_{self.id}"

    def target_fractions(self) -> dict[str, float]:
        """Target weights as fractions of portfolio value (0.1 = 10%)."""
        return {symbol: weight / 100.0 for symbol, weight in self.targets.items()}

    @property
    def targets_section(self) -> TargetsSection:
        """The ``targets:`` section; a plain weight map is the fixed model."""
        return self.target_model or TargetsSection.from_weights(self.targets)

    @property
    def needs_target_model(self) -> bool:
        """True when a run's targets are computed (a model other than fixed, or a universe)."""
        return self.targets_section.model.name != ModelName.FIXED or self.universe is not None

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


def resolve_inside(portfolio_file: Path | str, relative: str, field: str) -> Path:
    """``relative`` resolved against the portfolio file's folder, symlinks followed; ConfigError
    naming the portfolio file and ``field`` when the result is outside that folder."""
    folder = Path(portfolio_file).resolve().parent
    try:
        check_relative_path(relative)
        resolved = (folder / relative).resolve()
        resolved.relative_to(folder)
    except (ValueError, OSError, RuntimeError):
        raise ConfigError(
            str(portfolio_file),
            [f"{field}: {relative!r} is outside the portfolio folder {folder}"],
        ) from None
    return resolved
