"""A completed run of a computed portfolio with its stored targets, for tests of what reads them
(the Rebalance page's preview, ``rebalance plan --targets-from-history``)."""

from __future__ import annotations

from datetime import date

from rebalance.history.status import RunStatus
from rebalance.history.store import HistoryStore, RunKey
from rebalance.history.target_history import save_target_model


def completed_model_run(
    store: HistoryStore,
    weights: dict[str, float],
    *,
    portfolio_id: str = "demo_risk_parity",
    account: str = "paper_rp",
    model: str = "risk_parity",
    as_of: date = date(2026, 11, 27),
) -> int:
    """A run of ``account`` that stored ``weights`` as its model's targets and completed."""
    run = store.open_run(
        RunKey(f"rebalance_{portfolio_id}", f"scheduled__{as_of}_{account}", account),
        portfolio_id=portfolio_id,
        portfolio_name=portfolio_id,
        broker="paper",
        initiator="scheduled",
        broker_scope="paper",
        mode="paper",
        policy={},
        targets={"weights": weights, "cash": 0.0},
    )
    save_target_model(
        store,
        run,
        portfolio_id=portfolio_id,
        account=account,
        model=model,
        as_of=as_of,
        weights=weights,
        record={"model": model, "as_of": as_of.isoformat(), "targets": weights, "reasons": {}},
    )
    store.transition(run, RunStatus.PLANNED, "planned")
    store.transition(run, RunStatus.COMPLETED, "done")
    return run
