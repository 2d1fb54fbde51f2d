"""The card's Preview: plan now from an account's holdings, with what-if parameters, and order
nothing (issue 20; docs/ui.md "Preview and Run now").

A preview creates no DAG run and no history run. Its snapshot is either a fresh read through the
same broker adapters as the pipeline's ``fetch_holdings`` (``wiring.broker_for``) validated with
the same Pandera schema as ``validate_snapshot`` (``snapshot_from_frame``), or the account's last
stored snapshot. Great Expectations stays in the pipeline: the api-server does not load it.

The snapshot is kept per (user, portfolio, account) for ``SNAPSHOT_TTL`` seconds in this process,
so changing a parameter only re-plans (``plan_rebalance`` + ``verify_plan``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from rebalance.policy import Policy, TaxMode, TradeFilter

if TYPE_CHECKING:
    from rebalance.history.store import HistoryStore
    from rebalance.plan import TradePlan
    from rebalance.portfolio import Account, Portfolio
    from rebalance.snapshot import HoldingsSnapshot
    from rebalance.tax.planning import TaxContext

SNAPSHOT_TTL = 300.0  # seconds a kept snapshot serves re-plans before it is read again
BROKER_CHOICES = ("zerodha", "angelone", "both")
# The optimiser's time cap in a preview (the pipeline's default is 0.75 s): a re-plan answers within
# 300 ms at p95. A plan the optimiser would improve given longer may differ slightly from the run's;
# the run's approval shows every difference from the preview.
PREVIEW_OPTIMISER_CAP_S = 0.2


class PreviewError(ValueError):
    """A parameter or a snapshot the preview cannot use; the message says which and why."""


@dataclass(frozen=True)
class WhatIf:
    """The form's parameters; ``conf()`` is exactly the DAG's Params a Run now sends."""

    budget_kind: str  # "pct" | "inr"
    budget: float
    drift_band_abs_pct: float
    drift_band_rel_pct: float
    max_trades: int
    min_trade_value_inr: float
    broker: str  # zerodha | angelone | both
    trade_filter: str  # both | buys_only | sells_only

    @classmethod
    def defaults(cls, portfolio: Portfolio) -> WhatIf:
        policy = portfolio.policy
        inr = policy.rebalance_budget_inr
        return cls(
            budget_kind="inr" if inr is not None else "pct",
            budget=float(inr if inr is not None else policy.rebalance_budget_pct),
            drift_band_abs_pct=policy.drift_band_abs_pct,
            drift_band_rel_pct=policy.drift_band_rel_pct,
            max_trades=policy.max_trades,
            min_trade_value_inr=policy.min_trade_value_inr,
            broker="both",
            trade_filter=str(policy.trade_filter),
        )

    @classmethod
    def parse(cls, portfolio: Portfolio, query: Mapping[str, str]) -> WhatIf:
        """The form's fields over the portfolio's policy; PreviewError names a bad field."""
        base = cls.defaults(portfolio)

        def number(name: str, default: float, low: float, high: float) -> float:
            raw = str(query.get(name, "")).strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise PreviewError(f"{name}: not a number ({raw[:30]!r})") from None
            if not math.isfinite(value) or not low <= value <= high:
                raise PreviewError(f"{name}: must be from {low:g} to {high:g}, got {raw[:30]}")
            return value

        kind = str(query.get("budget_kind") or base.budget_kind)
        if kind not in ("pct", "inr"):
            raise PreviewError(f"budget_kind: pct or inr, got {kind[:20]!r}")
        default_budget = base.budget if kind == base.budget_kind else 0.0
        budget = number("budget", default_budget, 0, 100 if kind == "pct" else 1e12)
        if kind == "inr" and budget <= 0:
            raise PreviewError("budget: a rupee budget must be more than 0")
        trades = number("max_trades", base.max_trades, 0, 10_000)
        if trades != int(trades):
            raise PreviewError(f"max_trades: a whole number, got {trades:g}")
        broker = str(query.get("broker") or base.broker)
        if broker not in BROKER_CHOICES:
            raise PreviewError(f"broker: one of {', '.join(BROKER_CHOICES)}")
        trade_filter = str(query.get("trade_filter") or base.trade_filter)
        if trade_filter not in {str(f) for f in TradeFilter}:
            raise PreviewError(f"trade_filter: one of {', '.join(str(f) for f in TradeFilter)}")
        return cls(
            budget_kind=kind,
            budget=budget,
            drift_band_abs_pct=number("drift_band_abs_pct", base.drift_band_abs_pct, 0, 100),
            drift_band_rel_pct=number("drift_band_rel_pct", base.drift_band_rel_pct, 0, 1000),
            max_trades=int(trades),
            min_trade_value_inr=number("min_trade_value_inr", base.min_trade_value_inr, 0, 1e12),
            broker=broker,
            trade_filter=trade_filter,
        )

    def policy_overrides(self, portfolio: Portfolio) -> dict[str, Any]:
        """The Policy fields these parameters set (the same keys as the DAG's Params). A rupee
        budget leaves the percentage as the portfolio has it: the planner uses the rupees."""
        pct = self.budget if self.budget_kind == "pct" else portfolio.policy.rebalance_budget_pct
        return {
            "rebalance_budget_pct": pct,
            "rebalance_budget_inr": self.budget if self.budget_kind == "inr" else None,
            "drift_band_abs_pct": self.drift_band_abs_pct,
            "drift_band_rel_pct": self.drift_band_rel_pct,
            "max_trades": self.max_trades,
            "min_trade_value_inr": self.min_trade_value_inr,
            "trade_filter": self.trade_filter,
        }

    def accounts(self, portfolio: Portfolio) -> list[Account]:
        """The portfolio's accounts this broker choice covers (paper accounts always)."""
        return [
            a
            for a in portfolio.accounts
            if self.broker == "both" or str(a.broker) in (self.broker, "paper")
        ]

    def conf(self, portfolio: Portfolio) -> dict[str, Any]:
        """The DAG run's conf: the Params of ``dag_factory._params`` with these values."""
        return {"accounts": [a.name for a in self.accounts(portfolio)]} | self.policy_overrides(
            portfolio
        )

    def query(self) -> dict[str, str]:
        """The form's fields, for links that keep these parameters."""
        return {
            "budget_kind": self.budget_kind,
            "budget": f"{self.budget:g}",
            "drift_band_abs_pct": f"{self.drift_band_abs_pct:g}",
            "drift_band_rel_pct": f"{self.drift_band_rel_pct:g}",
            "max_trades": str(self.max_trades),
            "min_trade_value_inr": f"{self.min_trade_value_inr:g}",
            "broker": self.broker,
            "trade_filter": self.trade_filter,
        }


@dataclass(frozen=True)
class PreviewTargets:
    """What a preview plans against, and where it came from (issue 17).

    ``origin``: ``file`` (the file's fixed weights), ``computed`` (the model run now on the
    history database's price cache, as the run's target_model task would) or ``stored`` (the
    targets the last completed run stored, when the model cannot run now). ``source`` is the
    model's record (``targets.describe``), None for the file's weights.
    """

    weights: dict[str, float]
    reasons: dict[str, str]  # symbol -> why the universe replaces it
    origin: str
    note: str  # one line for the page: which, with the as-of date
    source: dict[str, Any] | None = None


@dataclass(frozen=True)
class KeptSnapshot:
    snapshot: HoldingsSnapshot
    source: str  # "fresh" | "stored"
    kept_at: float  # time.monotonic()
    targets: PreviewTargets | None = None  # computed once per kept snapshot


@dataclass
class SnapshotCache:
    """Snapshots per (user, portfolio, account), each for ``ttl`` seconds, in this process."""

    ttl: float = SNAPSHOT_TTL
    clock: Callable[[], float] = time.monotonic
    _items: dict[tuple[str, str, str, str], KeptSnapshot] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: tuple[str, str, str, str]) -> KeptSnapshot | None:
        with self._lock:
            kept = self._items.get(key)
            if kept is not None and self.clock() - kept.kept_at > self.ttl:
                del self._items[key]
                return None
            return kept

    def put(
        self, key: tuple[str, str, str, str], snapshot: HoldingsSnapshot, source: str
    ) -> KeptSnapshot:
        with self._lock:
            now = self.clock()
            for old in [k for k, v in self._items.items() if now - v.kept_at > self.ttl]:
                del self._items[old]
            kept = self._items[key] = KeptSnapshot(snapshot, source, now)
            return kept

    def keep_targets(self, key: tuple[str, str, str, str], targets: PreviewTargets) -> None:
        """Keep the targets with the snapshot of ``key`` (gone with it when it expires)."""
        with self._lock:
            if (kept := self._items.get(key)) is not None:
                self._items[key] = replace(kept, targets=targets)


@dataclass(frozen=True)
class AccountPreview:
    """One account's preview: the plan, or why there is none."""

    account: str
    broker: str
    source: str  # fresh | stored
    taken_at: datetime | None
    plan: TradePlan | None = None
    problem: str | None = None
    targets: PreviewTargets | None = None

    def age_seconds(self, now: datetime | None = None) -> float | None:
        if self.taken_at is None:
            return None
        return ((now or datetime.now(UTC)) - self.taken_at).total_seconds()


def read_fresh_snapshot(
    portfolio: Portfolio, portfolio_file: str, account: Account
) -> HoldingsSnapshot:
    """The account's holdings, quotes and cash now, read as ``tasks.fetch_holdings`` reads them
    (``wiring.read_account``: sells only up to what can be sold today),
    validated with the pipeline's Pandera schema. Raises PreviewError saying what failed."""
    from rebalance.brokers.base import BrokerError
    from rebalance.errors import RebalanceError
    from rebalance.lane import Lane, LaneStopped
    from rebalance.wiring import broker_for, read_account

    lane = Lane(portfolio_file, account.name, portfolio.dag_id, "preview", "manual", {})
    try:
        _, raw = read_account(broker_for(lane), portfolio, account.name)
    except (LaneStopped, BrokerError, RebalanceError) as exc:
        raise PreviewError(f"could not read {account.name}: {exc}") from None
    except Exception as exc:  # e.g. no Airflow connection in this process
        raise PreviewError(f"could not read {account.name}: {type(exc).__name__}: {exc}") from None
    return validated(raw, f"{account.name} snapshot")


def validated(snapshot: HoldingsSnapshot, source: str) -> HoldingsSnapshot:
    """The pipeline's Pandera check (``validate_snapshot``'s first half)."""
    from rebalance.errors import InputDataError
    from rebalance.snapshot import HoldingsSnapshot, snapshot_from_frame

    try:
        checked = snapshot_from_frame(
            snapshot.positions, source=source, cash=snapshot.cash, taken_at=snapshot.taken_at
        )
    except InputDataError as exc:
        raise PreviewError("; ".join(exc.problems[:5])) from None
    return HoldingsSnapshot(
        checked.positions, checked.cash, snapshot.taken_at, snapshot.account, snapshot.broker
    )


def stored_snapshot(store: HistoryStore, portfolio_id: str, account: str) -> HoldingsSnapshot:
    """The account's last snapshot in the history (any run of the portfolio that read one)."""
    from rebalance.snapshot import HoldingsSnapshot

    for run in store.runs(portfolio_id, limit=200):
        if run.account == account and run.snapshot:
            return validated(HoldingsSnapshot.from_records(run.snapshot), f"run {run.id} snapshot")
    raise PreviewError(f"no stored snapshot of {account} yet: preview with a fresh read")


def plan_preview(
    portfolio: Portfolio,
    snapshot: HoldingsSnapshot,
    whatif: WhatIf,
    broker: str,
    tax_lots: Callable[[Policy], TaxContext | None] | None = None,
    targets: PreviewTargets | None = None,
) -> TradePlan:
    """Plan as ``tasks.plan_trades`` does, with the what-if policy; PreviewError if refused.
    ``tax_lots`` gives the account's tax lots for the policy (issue 15; None: tax off).
    ``targets``: a computed portfolio's (``preview_targets``); None: the file's weights."""
    from rebalance.errors import RebalanceError
    from rebalance.planning import plan_rebalance, verify_plan
    from rebalance.snapshot import check_no_sell_symbols

    try:
        overrides = whatif.policy_overrides(portfolio)
        cap = min(portfolio.policy.optimiser_time_cap_s, PREVIEW_OPTIMISER_CAP_S)
        policy = portfolio.policy.with_overrides(overrides | {"optimiser_time_cap_s": cap})
    except ValueError as exc:
        raise PreviewError(f"parameters: {exc}") from None
    goal = targets.weights if targets is not None else portfolio.target_fractions()
    inputs: dict[str, Any] = {"cash_target": portfolio.cash_target_fraction, "broker": broker}
    inputs["tax"] = tax_lots(policy) if tax_lots is not None else None
    try:
        check_no_sell_symbols(snapshot, goal, policy.no_sell, f"{snapshot.account} snapshot")
        plan = plan_rebalance(snapshot, goal, policy, **inputs)
    except RebalanceError as exc:
        raise PreviewError(f"the planner refused the inputs: {exc}") from None
    problems = verify_plan(plan, snapshot, goal, policy, **inputs)
    if problems:
        raise PreviewError("the plan breaks a hard limit: " + "; ".join(problems))
    if targets is not None and targets.reasons:
        from rebalance.target_service import with_target_reasons

        plan = with_target_reasons(plan, targets.reasons)
    return plan


def preview_targets(
    portfolio: Portfolio,
    portfolio_file: str,
    account: str,
    store: Callable[[], HistoryStore],
    now: datetime | None = None,
) -> PreviewTargets:
    """The targets a run would plan against now, without a broker: the file's weights; or the
    model run on the history database's price cache when it holds the window fresh; or else the
    targets the account's last completed run stored. PreviewError when none of these exists."""
    if not portfolio.needs_target_model:
        return PreviewTargets(portfolio.target_fractions(), {}, "file", "")
    from rebalance.calendar import overrides_for_portfolio, trading_calendar
    from rebalance.domain.market import IST
    from rebalance.errors import InputDataError
    from rebalance.history.target_history import last_completed_targets
    from rebalance.target_service import (
        PriceHistoryError,
        cache_only_price_loader,
        compute_targets,
    )
    from rebalance.targets.describe import headline
    from rebalance.targets.models import TargetModelError

    now = now or datetime.now(UTC)
    model = str(portfolio.targets_section.model.name)
    try:
        history = store()
        last = last_completed_targets(history, portfolio.id, account)
        calendar = trading_calendar(overrides_for_portfolio(portfolio, portfolio_file))
        loader = cache_only_price_loader(history, portfolio.exchange, now=now, calendar=calendar)
    except Exception as exc:  # the history database is unreachable or not migrated
        raise PreviewError(
            f"targets of {account}: cannot read the history database: {exc}"
        ) from None
    try:
        output = compute_targets(
            portfolio,
            portfolio_file,
            today=now.astimezone(IST).date(),
            load_prices=loader,
            previous=last.record if last is not None else None,
        )
    except PriceHistoryError as exc:
        why = f"{exc.source}: {'; '.join(exc.problems[:3])}"
        if last is None:
            raise PreviewError(
                f"targets: the {model} model cannot run now ({why}) and no completed run of "
                f"{account} has stored targets yet; Run now computes them from the broker's "
                "history"
            ) from None
        as_of = last.as_of or last.created_at.astimezone(IST).date()
        note = (
            f"Targets of the last completed run (run {last.run_id}, {last.model} model as of "
            f"{as_of}), not computed now: {why}."
        )
        reasons = dict(last.record.get("reasons") or {})
        return PreviewTargets(dict(last.weights), reasons, "stored", note, dict(last.record))
    except (InputDataError, TargetModelError) as exc:
        raise PreviewError(f"targets: the {model} model refused its inputs: {exc}") from None
    source = {**output.record, "reasons": output.reasons}
    note = f"Targets computed now: the {headline(source)}."
    return PreviewTargets(output.weights, output.reasons, "computed", note, source)


def preview_accounts(
    *,
    user: str,
    portfolio: Portfolio,
    portfolio_file: str,
    whatif: WhatIf,
    source: str,
    refresh: bool,
    cache: SnapshotCache,
    store: Callable[[], HistoryStore],
) -> list[AccountPreview]:
    """Every chosen account's preview, re-using kept snapshots unless ``refresh``."""
    previews = []
    for account in whatif.accounts(portfolio):
        key = (user, portfolio.id, account.name, source)
        kept = None if refresh else cache.get(key)
        try:
            if kept is None:
                if source == "stored":
                    snap = stored_snapshot(store(), portfolio.id, account.name)
                else:
                    snap = read_fresh_snapshot(portfolio, portfolio_file, account)
                kept = cache.put(key, snap, source)
            if kept.targets is None:
                targets = preview_targets(portfolio, portfolio_file, account.name, store)
                cache.keep_targets(key, targets)
                kept = replace(kept, targets=targets)
            lots = partial(_tax_lots, store, account.name, kept.snapshot)
            plan = plan_preview(
                portfolio, kept.snapshot, whatif, str(account.broker), lots, kept.targets
            )
            previews.append(
                AccountPreview(
                    account.name,
                    str(account.broker),
                    source,
                    kept.snapshot.taken_at,
                    plan,
                    targets=kept.targets,
                )
            )
        except PreviewError as exc:
            taken = kept.snapshot.taken_at if kept else None
            previews.append(
                AccountPreview(
                    account.name,
                    str(account.broker),
                    source,
                    taken,
                    problem=str(exc),
                    targets=kept.targets if kept else None,
                )
            )
    return previews


def _tax_lots(
    store: Callable[[], HistoryStore], account: str, snapshot: HoldingsSnapshot, policy: Policy
) -> TaxContext | None:
    """The account's tax lots from history for ``policy`` (None when its tax is off)."""
    from rebalance.tax_history import context_for

    if policy.tax is TaxMode.OFF:  # no database read for a portfolio without tax
        return None
    try:
        return context_for(store().engine, policy, account, snapshot)
    except Exception as exc:  # the history database is unreachable or not migrated
        raise PreviewError(
            f"tax lots of {account}: cannot read the history database: {exc}"
        ) from None


def plan_differences(preview: Mapping[str, Any] | None, run_plan: Mapping[str, Any]) -> list[str]:
    """How a run's plan differs from the previewed one, a line per changed order."""
    if not preview:
        return ["no preview of this run kept in this process: nothing to compare"]

    def orders(plan: Mapping[str, Any]) -> dict[tuple[str, str], int]:
        return {(o["symbol"], str(o["side"])): int(o["quantity"]) for o in plan.get("orders", [])}

    before, after = orders(preview), orders(run_plan)
    lines = []
    for key in sorted(before.keys() | after.keys()):
        symbol, side = key
        was, now = before.get(key), after.get(key)
        if was == now:
            continue
        if was is None:
            lines.append(f"{side} {now} {symbol}: new (not in the preview)")
        elif now is None:
            lines.append(f"{side} {was} {symbol}: in the preview, not in the run's plan")
        else:
            lines.append(f"{side} {symbol}: {was} in the preview, {now} now")
    return lines or ["the same orders as the preview"]
