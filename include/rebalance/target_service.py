"""What the model task does, without Airflow: price history (cache first), universe, model.

* ``load_price_history``: the last ``lookback_days + 1`` closes of each symbol up to the last
  final close, from the history database's ``price_history`` cache; a day missing from the cache
  or stale there is fetched from the lane's broker (``CandleSource.candles``), one request per
  symbol covering its missing days, and cached.
* ``compute_targets``: the replacement universe first (which members leave, which enter, why),
  then the portfolio's model over the members; the price history of a risk model passes the
  Great Expectations price suite (gaps, stale days, split-like jumps) or the lane stops.

Freshness rule: a cached close is final once fetched after its session's close (16:00 IST, the
close at 15:30 plus a margin for the broker's day candle) and is re-fetched when older than
``REFRESH_AFTER``, so a split the broker later adjusts in its history reaches the cache.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from rebalance.brokers.base import BrokerError, CandleSource
from rebalance.calendar import TradingCalendar
from rebalance.domain.market import IST, Instrument
from rebalance.errors import InputDataError
from rebalance.history.store import HistoryStore
from rebalance.history.target_history import cached_closes, save_candles
from rebalance.plan import TradePlan
from rebalance.portfolio import Portfolio, resolve_inside
from rebalance.quality import check_price_history_quality
from rebalance.targets.config import (
    InverseVolatilityModel,
    RiskParityModel,
    ScoresModel,
    TargetsSection,
    UniverseConfig,
)
from rebalance.targets.models import TargetResult, run_model
from rebalance.targets.scores import (
    ScoreTable,
    check_scores_age,
    read_scores_csv,
    read_watchlist,
    scores_from_entry_point,
    watchlist_scores,
)
from rebalance.targets.universe import Replacement, plan_replacements, replaced_weights

log = logging.getLogger(__name__)

REFRESH_AFTER = timedelta(days=7)
CLOSE_FINAL_AT = time(16, 0)  # IST: the session closes at 15:30; the day candle is final after


class PriceHistoryError(InputDataError):
    """The price history cannot be used (gaps, stale days, jumps, a broker that has none)."""


@dataclass(frozen=True)
class PriceWindow:
    """The closes a model reads, and where they came from."""

    frame: pd.DataFrame  # date index (the window's trading days), one column per symbol
    days: list[date]
    fetched: dict[str, int]  # symbol -> days fetched from the broker now
    cached: dict[str, int]  # symbol -> days read from the cache
    source: str

    def summary(self) -> dict[str, Any]:
        return {
            "first_day": self.days[0].isoformat(),
            "last_day": self.days[-1].isoformat(),
            "days": len(self.days),
            "source": self.source,
            "fetched_days": sum(self.fetched.values()),
            "cached_days": sum(self.cached.values()),
        }


@dataclass(frozen=True)
class ModelOutput:
    """A lane run's targets (fractions of portfolio value) and the record of what made them."""

    model: str
    as_of: date | None
    weights: dict[str, float]
    record: dict[str, Any]
    reasons: dict[str, str] = field(default_factory=dict)  # symbol -> why it leaves / enters


def last_close_day(now: datetime, calendar: TradingCalendar) -> date:
    """The last trading day whose close is final at ``now`` (today only after 16:00 IST)."""
    local = now.astimezone(IST)
    today = local.date()
    if calendar.is_trading_day(today) and local.time() >= CLOSE_FINAL_AT:
        return today
    return calendar.previous_trading_day(today)


def is_fresh(fetched_at: datetime, day: date, now: datetime) -> bool:
    """A cached close is usable: fetched after its session closed, and not too long ago."""
    final_from = datetime.combine(day, CLOSE_FINAL_AT, IST)
    return fetched_at >= final_from and now - fetched_at <= REFRESH_AFTER


def window_days(now: datetime, calendar: TradingCalendar, lookback_days: int) -> list[date]:
    """The ``lookback_days + 1`` trading days a risk model reads, up to the last final close."""
    last = last_close_day(now, calendar)
    # Calendar days that surely hold lookback_days + 1 trading days (about 250 a year).
    first_guess = last - timedelta(days=int((lookback_days + 1) * 1.6) + 30)
    return calendar.trading_days_between(first_guess, last)[-(lookback_days + 1) :]


def load_price_history(
    store: HistoryStore,
    source: CandleSource,
    symbols: list[str],
    exchange: str,
    *,
    lookback_days: int,
    now: datetime,
    calendar: TradingCalendar,
    source_name: str,
) -> PriceWindow:
    """The window's closes per symbol: cached where fresh, fetched (and cached) where not."""
    days = window_days(now, calendar, lookback_days)
    last = days[-1]
    cache = cached_closes(store, symbols, exchange, days[0], last)
    fetched: dict[str, int] = {}
    cached: dict[str, int] = {}
    closes: dict[str, dict[date, float]] = {}
    for symbol in symbols:
        have = {d: c.close for d, c in cache[symbol].items() if is_fresh(c.fetched_at, d, now)}
        missing = [d for d in days if d not in have]
        if missing:
            try:
                candles = source.candles(Instrument(symbol, exchange), missing[0], missing[-1])
            except BrokerError as exc:
                raise PriceHistoryError(
                    f"price history of {symbol}", [f"the broker could not serve it: {exc}"]
                ) from exc
            candles = [c for c in candles if missing[0] <= c.day <= missing[-1]]
            save_candles(store, symbol, exchange, candles, source=source_name, fetched_at=now)
            have.update({c.day: c.close for c in candles})
        fetched[symbol] = len(missing)
        cached[symbol] = len(days) - len(missing)
        closes[symbol] = {d: have[d] for d in days if d in have}
    frame = pd.DataFrame(closes, index=pd.Index(days), dtype=float)
    log.info(
        "price history %s..%s: %d symbols, %d days fetched, %d cached",
        days[0],
        days[-1],
        len(symbols),
        sum(fetched.values()),
        sum(cached.values()),
    )
    return PriceWindow(frame, days, fetched, cached, source_name)


def _universe_scores(
    universe: UniverseConfig, portfolio_file: Path, today: date
) -> tuple[ScoreTable, tuple[str, ...] | None]:
    """The universe's scores and, when a watchlist limits a scored universe, its candidates."""
    watchlist = (
        read_watchlist(resolve_inside(portfolio_file, universe.watchlist, "universe.watchlist"))
        if universe.watchlist
        else None
    )
    if universe.scores:
        path = resolve_inside(portfolio_file, universe.scores, "universe.scores")
        return read_scores_csv(path), watchlist
    if universe.entry_point:
        return scores_from_entry_point(universe.entry_point, as_of=today), watchlist
    assert watchlist is not None  # the config requires one source
    return watchlist_scores(watchlist, source=str(universe.watchlist)), None


def members_of(section: TargetsSection) -> list[str]:
    """The symbols the file names: the fixed weights' keys or the model's symbols."""
    if section.weights is not None:
        return list(section.weights)
    return list(section.symbols or ())


def replacement_record(replacement: Replacement) -> dict[str, Any]:
    return {
        "exits": [
            {
                "symbol": e.symbol,
                "score": e.score,
                "rank": e.rank,
                "replaced_by": e.replaced_by,
                "reason": e.detail,
            }
            for e in replacement.exits
        ],
        "entries": [
            {
                "symbol": e.symbol,
                "score": e.score,
                "rank": e.rank,
                "replaces": e.replaces,
                "reason": e.detail,
            }
            for e in replacement.entries
        ],
        "notes": list(replacement.notes),
    }


PriceLoader = Callable[[list[str], int], PriceWindow]  # (symbols, lookback_days) -> closes


def cached_price_loader(
    store: HistoryStore,
    source: CandleSource,
    exchange: str,
    *,
    now: datetime,
    calendar: TradingCalendar,
    source_name: str,
) -> PriceLoader:
    """The pipeline's loader: the history database's cache, then the lane's broker."""

    def load(symbols: list[str], lookback_days: int) -> PriceWindow:
        return load_price_history(
            store,
            source,
            symbols,
            exchange,
            lookback_days=lookback_days,
            now=now,
            calendar=calendar,
            source_name=source_name,
        )

    return load


CACHE_SOURCE = "the price history cache"


def cache_only_price_loader(
    store: HistoryStore, exchange: str, *, now: datetime, calendar: TradingCalendar
) -> PriceLoader:
    """The Rebalance page's loader: the history database's cache alone, never a broker (a
    preview orders nothing and reads no history). A window the cache does not hold fresh
    (``is_fresh``) raises ``PriceHistoryError`` naming the symbols short of closes."""

    def load(symbols: list[str], lookback_days: int) -> PriceWindow:
        days = window_days(now, calendar, lookback_days)
        cache = cached_closes(store, symbols, exchange, days[0], days[-1])
        closes: dict[str, dict[date, float]] = {}
        short = []
        for symbol in symbols:
            have = {d: c.close for d, c in cache[symbol].items() if is_fresh(c.fetched_at, d, now)}
            closes[symbol] = {d: have[d] for d in days if d in have}
            if missing := len(days) - len(closes[symbol]):
                short.append(f"{symbol}: {missing} of {len(days)} closes missing or stale")
        if short:
            raise PriceHistoryError(
                f"{CACHE_SOURCE} ({days[0]}..{days[-1]}) is not fresh", short[:5]
            )
        frame = pd.DataFrame(closes, index=pd.Index(days), dtype=float)
        cached = {symbol: len(days) for symbol in symbols}
        return PriceWindow(frame, days, {}, cached, CACHE_SOURCE)

    return load


def file_price_loader(path: Path, calendar: TradingCalendar) -> PriceLoader:
    """``rebalance plan --prices CSV``: daily closes, a ``date`` column then one per symbol; the
    window is judged against the exchange's trading days, so a missing day is a gap."""

    def load(symbols: list[str], lookback_days: int) -> PriceWindow:
        try:
            frame = pd.read_csv(path, index_col="date", parse_dates=["date"])
        except (OSError, ValueError) as exc:
            raise PriceHistoryError(str(path), [f"cannot read daily closes: {exc}"]) from None
        missing = [s for s in symbols if s not in frame.columns]
        if missing:
            raise PriceHistoryError(str(path), [f"no column for {', '.join(missing)}"])
        frame.index = pd.Index([d.date() for d in frame.index])
        last = max(frame.index)
        days = calendar.trading_days_between(min(frame.index), last)[-(lookback_days + 1) :]
        return PriceWindow(frame[symbols].reindex(days), days, {}, {}, str(path))

    return load


def compute_targets(
    portfolio: Portfolio,
    portfolio_file: Path | str,
    *,
    today: date,
    load_prices: PriceLoader,
    previous: Mapping[str, Any] | None = None,
) -> ModelOutput:
    """The targets of a run on ``today``: the universe's replacements, then the model over the
    members (``load_prices`` gives a risk model its closes). ``previous``: the record of the
    account's last completed run; with a universe, its members are where this run starts.

    Raises ``InputDataError`` (bad scores, unusable price history) or ``TargetModelError``.
    """
    section = portfolio.targets_section
    file_members = members_of(section)
    members = list(file_members)
    if (
        portfolio.universe is not None
        and previous is not None
        and previous.get("file_members") == file_members
        and len(previous.get("members") or ()) == len(file_members)
    ):
        # The members the last completed run left, each in its file member's place: what a
        # replacement made lasts until the universe replaces it (or the file changes).
        members = list(previous["members"])
    replacement = Replacement((), (), ())
    if portfolio.universe is not None:
        universe = portfolio.universe
        table, candidates = _universe_scores(universe, Path(portfolio_file), today)
        replacement = plan_replacements(
            members,
            table.scores,
            leaves_top=universe.replace_when.leaves_top,
            score_below=universe.replace_when.score_below,
            max_entries=universe.pick.max_entries,
            candidates=candidates,
            never_buy=portfolio.policy.no_buy,
            never_sell=portfolio.policy.no_sell,
        )
    members_before = list(members)
    members = replacement.members(members)
    model = section.model
    window: PriceWindow | None = None
    result: TargetResult
    if section.weights is not None:
        placed = dict(zip(members_before, section.weights.values(), strict=True))
        swapped = replaced_weights(placed, replacement)
        result = run_model(TargetsSection.from_weights(swapped))
    elif isinstance(model, InverseVolatilityModel | RiskParityModel):
        window = load_prices(members, model.lookback_days)
        report = check_price_history_quality(
            window.frame,
            lookback_days=model.lookback_days,
            trading_days=window.days,
            max_stale_days=model.max_stale_days,
            max_missing_days=model.max_missing_days,
            split_jump_pct=model.split_jump_pct,
        )
        if not report.success:
            raise PriceHistoryError(
                f"price history of {portfolio.id} ({window.source}, {window.days[0]}.."
                f"{window.days[-1]})",
                report.problems,
            )
        result = run_model(
            section.model_copy(update={"symbols": tuple(members)}), prices=window.frame
        )
    elif isinstance(model, ScoresModel):
        assert model.file is not None or model.entry_point is not None
        if model.file is not None:
            table = read_scores_csv(
                resolve_inside(portfolio_file, model.file, "targets.model.file")
            )
        else:
            table = scores_from_entry_point(model.entry_point or "", as_of=today)
        if model.max_age_days is not None:
            check_scores_age(table, today=today, max_age_days=model.max_age_days)
        result = run_model(
            section.model_copy(update={"symbols": tuple(members)}),
            scores=table.scores,
            scores_as_of=table.as_of,
        )
    else:
        result = run_model(section.model_copy(update={"symbols": tuple(members)}))
    invested = 1.0 - (portfolio.cash_target_fraction or 0.0)
    weights = {symbol: weight * invested for symbol, weight in result.weights.items()}
    reasons: dict[str, str] = {}
    for leaving in replacement.exits:
        weights[leaving.symbol] = 0.0  # a target of 0: the planner sells it, within its rules
        reasons[leaving.symbol] = f"{leaving.tag} ({leaving.detail.removeprefix('replacement: ')})"
    for entry in replacement.entries:
        reasons[entry.symbol] = f"{entry.tag} ({entry.detail.removeprefix('replacement: ')})"
    record = {
        **result.to_record(),
        "targets": weights,
        "cash": portfolio.cash_target_fraction,
        "replacement": replacement_record(replacement),
        "file_members": file_members,
        "members": members,
        "price_history": window.summary() if window is not None else None,
    }
    return ModelOutput(str(result.model), result.as_of, weights, record, reasons)


def with_target_reasons(plan: TradePlan, reasons: dict[str, str]) -> TradePlan:
    """The plan with each exit's and entry's replacement reason added to its order's reasons."""
    if not reasons:
        return plan
    orders = tuple(
        replace(o, reasons=(*o.reasons, reasons[o.symbol])) if o.symbol in reasons else o
        for o in plan.orders
    )
    return replace(plan, orders=orders)
