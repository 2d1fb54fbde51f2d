"""The ``target_model`` task of a lane (issue 17), and the targets ``plan_trades`` plans against.

Only a portfolio whose targets are computed has the task (``Portfolio.needs_target_model``: a
model other than ``fixed``, or a replacement universe); it runs after ``validate_snapshot`` and
before ``plan_trades``. It reads the price history through the lane's broker (the history
database's cache first), runs the universe and the model (``target_service``), and stores the
targets with the inputs that produced them in ``target_models``. Bad price history or scores
mark the run invalid and stop the lane with the problems; nothing is planned or ordered.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from rebalance.brokers.base import Broker, CandleSource, TemporaryBrokerError
from rebalance.calendar import overrides_for_portfolio, trading_calendar
from rebalance.domain.market import IST, Instrument
from rebalance.errors import InputDataError
from rebalance.history.status import RunStatus
from rebalance.history.store import HistoryStore
from rebalance.history.target_history import (
    last_completed_targets,
    save_target_model,
    target_model_of,
)
from rebalance.lane import Lane, LaneStopped
from rebalance.target_service import cached_price_loader, compute_targets
from rebalance.targets.models import TargetModelError
from rebalance.wiring import broker_for

log = logging.getLogger(__name__)

STEP = "target_model"


def target_model(
    lane: Lane, store: HistoryStore, broker: Broker | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Compute and store this lane run's targets; stop the lane on unusable inputs."""
    run_id = lane.run_id(store)
    portfolio = lane.portfolio
    broker = broker if broker is not None else broker_for(lane, store)
    name = str(lane.account_config.broker)
    if not isinstance(broker, CandleSource):
        reason = f"target_model: the {name} broker serves no price history"
        store.transition(run_id, RunStatus.FAILED, reason)
        raise LaneStopped(reason)
    try:
        calendar = trading_calendar(overrides_for_portfolio(portfolio, lane.portfolio_file))
        now = now or datetime.now(UTC)
        loader = cached_price_loader(
            store, broker, portfolio.exchange, now=now, calendar=calendar, source_name=name
        )
        last = last_completed_targets(store, portfolio.id, lane.account)
        output = compute_targets(
            portfolio,
            lane.portfolio_file,
            today=now.astimezone(IST).date(),
            load_prices=loader,
            previous=last.record if last is not None else None,
        )
    except TemporaryBrokerError:
        raise  # a read: Airflow retries the task
    except (InputDataError, TargetModelError) as exc:
        reason = f"target_model stopped the lane, nothing planned or ordered: {exc}"
        store.transition(run_id, RunStatus.INVALID, reason)
        raise LaneStopped(reason) from None
    _quote_new_targets(lane, store, broker, run_id, output.weights)
    record = {**output.record, "reasons": output.reasons}
    save_target_model(
        store,
        run_id,
        portfolio_id=portfolio.id,
        account=lane.account,
        model=output.model,
        as_of=output.as_of,
        weights=output.weights,
        record=record,
    )
    store.update_run(
        run_id,
        targets={
            "weights": output.weights,
            "cash": portfolio.cash_target_fraction,
            "model": output.model,
            "as_of": output.as_of.isoformat() if output.as_of else None,
            "source": record,  # for the preview and the Rebalance page (targets.describe)
        },
    )
    as_of = f" as of {output.as_of}" if output.as_of else ""
    store.note(run_id, f"targets from the {output.model} model{as_of}")
    for symbol, why in sorted(output.reasons.items()):
        log.info("%s: %s", symbol, why)
    return {"run": run_id, "model": output.model, "as_of": output.as_of and str(output.as_of)}


def _quote_new_targets(
    lane: Lane, store: HistoryStore, broker: Broker, run_id: int, weights: dict[str, float]
) -> None:
    """Add a zero-quantity row with a fresh quote to the stored snapshot for each target the
    snapshot lacks (a replacement's entry, a scores model's pick): the planner prices them."""
    snapshot = dict(store.run(run_id).snapshot or {})
    positions = list(snapshot.get("positions") or [])
    have = {row["symbol"] for row in positions}
    new = sorted(s for s, w in weights.items() if s not in have and w > 0)
    if not new:
        return
    exchange = lane.portfolio.exchange
    quotes = broker.quotes([Instrument(s, exchange) for s in new])
    unquoted = [s for s in new if s not in quotes]
    if unquoted:
        reason = (
            f"target_model: the broker has no quote for the new target(s) {', '.join(unquoted)}"
        )
        store.transition(run_id, RunStatus.INVALID, reason)
        raise LaneStopped(reason)
    for symbol in new:
        quote = quotes[symbol]
        positions.append(
            {
                "symbol": symbol,
                "exchange": quote.exchange,
                "quantity": 0,
                "sellable_quantity": 0,
                "last_price": quote.last_price,
                "average_price": None,
                "previous_close": quote.previous_close,
                "acquired_on": None,
                "isin": None,
            }
        )
    store.update_run(run_id, snapshot={**snapshot, "positions": positions})


def plan_targets(lane: Lane, store: HistoryStore, run_id: int) -> tuple[dict[str, float], dict]:
    """(targets as fractions, symbol -> replacement reason) for ``plan_trades``.

    A computed portfolio plans against what its target_model task stored for this run; a
    portfolio of fixed weights against its file, as before.
    """
    portfolio = lane.portfolio
    if not portfolio.needs_target_model:
        return portfolio.target_fractions(), {}
    stored = target_model_of(store, run_id)
    if stored is None:
        reason = "no targets stored for this run: the target_model task has not run"
        store.transition(run_id, RunStatus.FAILED, reason)
        raise LaneStopped(reason)
    return stored.weights, dict(stored.record.get("reasons") or {})
