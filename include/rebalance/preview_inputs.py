"""What the approval preview shows beside the plan (``preview.render_preview`` renders it).

The holdings the depository has not authorised for sale today, the authorisation a person gives
before approving, and in live mode the broker's own estimate of the plan's charges.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from rebalance.brokers.base import Broker
from rebalance.domain.formatting import inr
from rebalance.domain.market import Holding
from rebalance.history.records import RunRecord
from rebalance.portfolio import BrokerName, ExecutionMode

log = logging.getLogger(__name__)


def plan_preview(
    run: RunRecord,
    *,
    portfolio_name: str,
    account: str,
    mode: ExecutionMode,
    broker: BrokerName,
    tag_seed: str,
    open_broker: Callable[[], Broker],
) -> str:
    """The preview a person approves for ``run`` (``preview.render_preview``) with what goes
    beside the plan: the authorisation needed, live on a real account the broker's own charge
    estimate, in manual_queue mode where the basket will be written."""
    from rebalance.manual_queue import basket_folder
    from rebalance.preview import render_preview

    live = mode is ExecutionMode.LIVE and broker is not BrokerName.PAPER
    estimate = (
        broker_charge_estimate(
            run,
            broker_name=str(broker),
            tag_seed=tag_seed,
            account=account,
            open_broker=open_broker,
        )
        if live
        else None
    )
    folder = basket_folder(run.portfolio_id, run.id) if mode is ExecutionMode.MANUAL_QUEUE else None
    return render_preview(
        run.plan or {},
        portfolio_name=portfolio_name,
        account=account,
        mode=str(mode),
        plan_hash=run.plan_hash or "",
        authorisation=authorisation_for_preview(run, str(broker)),
        broker_estimate=estimate,
        basket_folder=None if folder is None else str(folder),
        target_source=(run.targets or {}).get("source"),
    )


def unauthorised_holdings(holdings: list[Holding]) -> list[dict[str, Any]]:
    """Holdings with sellable shares the depository has not authorised for sale today (no DDPI
    / POA, no CDSL TPIN yet): ``[{"symbol", "sellable", "authorised"}]``, for the preview."""
    return [
        {"symbol": h.symbol, "sellable": h.sellable_quantity, "authorised": h.authorised_quantity}
        for h in holdings
        if h.authorised_quantity is not None and h.authorised_quantity < h.sellable_quantity
    ]


def authorisation_for_preview(run: RunRecord, broker: str) -> list[dict[str, Any]]:
    """``brokers.validation.authorisation_needed`` for the symbols the plan sells or was kept
    from selling (``sellable_limited`` / ``not_sellable``) by a missing authorisation: what a
    person authorises (symbol, shares, where) before approving, so a re-plan can sell them."""
    from rebalance.brokers.validation import authorisation_needed

    unauthorised = (run.snapshot or {}).get("unauthorised") or []
    if not unauthorised or not run.plan:
        return []
    wanted = {o["symbol"] for o in run.plan["orders"] if o["side"] == "SELL"}
    for position in run.plan.get("positions", []):
        if "not_sellable" in position.get("skipped", []):
            wanted.add(position["symbol"])
    held = [
        Holding(
            symbol=u["symbol"],
            exchange="NSE",
            quantity=u["sellable"],
            sellable_quantity=u["sellable"],
            average_price=0.0,
            last_price=0.0,
            authorised_quantity=u["authorised"],
        )
        for u in unauthorised
        if u["symbol"] in wanted
    ]
    return authorisation_needed(held, {h.symbol: h.sellable_quantity for h in held}, broker)


def broker_charge_estimate(
    run: RunRecord,
    *,
    broker_name: str,
    tag_seed: str,
    account: str,
    open_broker: Callable[[], Broker],
) -> str | None:
    """The broker's own estimate of the plan's charges, one line beside ours (Kite's
    order-charges endpoint, SmartAPI's ``estimateCharges``); None when the plan has no orders or
    the broker (built by ``open_broker``) gives no estimates. The caller asks only in live mode
    on a real account.

    Never fails the lane: when the broker does not answer, the line says so.
    """
    from rebalance.brokers.base import OrderRequest, capabilities_of
    from rebalance.domain.market import Side
    from rebalance.execution import legs_of
    from rebalance.plan import TradePlan

    orders = (run.plan or {}).get("orders") or []
    if not orders:
        return None
    ours = sum(float(o.get("charges", 0.0)) for o in orders)
    try:
        broker = open_broker()
        if not capabilities_of(broker).charge_estimates:
            return None
        requests = [
            OrderRequest(
                symbol=leg["symbol"],
                exchange=leg["exchange"],
                side=Side(leg["side"]),
                quantity=leg["quantity"],
                tag=leg["tag"],
                price=leg["price"],
            )
            for leg in legs_of(TradePlan.from_dict(run.plan or {}), tag_seed, account)
        ]
        theirs = sum(e.total for e in broker.estimate_charges(requests))  # type: ignore[attr-defined]
    except Exception as exc:  # an estimate must never stop the lane
        log.warning("%s: the broker's charge estimate failed: %s", account, exc)
        why = type(exc).__name__
        return f"the broker's own charge estimate is unavailable ({why}); ours {inr(ours)}"
    return (
        f"{broker_name}'s own charge estimate {inr(theirs)} "
        f"(ours {inr(ours)}, at the planning prices)"
    )
