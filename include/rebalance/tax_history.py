"""Tax lots from history for the pipeline, the page and ``rebalance tax --portfolio`` (issue 15).

The service between the tax core (pure) and its tables (``history/tax_store.py``): replay an
account's stored trades and corporate actions into lots, check them against the snapshot's
quantities (``TaxContext``: a symbol that does not add up is planned without tax data, with the
message), record the pipeline's own fills, and build a financial year's report.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import Engine

from rebalance.domain.market import IST
from rebalance.history.tax_store import TaxStore
from rebalance.policy import Policy, TaxMode
from rebalance.snapshot import HoldingsSnapshot
from rebalance.tax.planning import TaxContext, build_context
from rebalance.tax.report import TaxReport, build_report
from rebalance.tax.rules import FinancialYear
from rebalance.tax.tradebook import replay

log = logging.getLogger(__name__)


def context_for(
    engine: Engine, policy: Policy, account: str, snapshot: HoldingsSnapshot
) -> TaxContext | None:
    """The account's tax context on the snapshot's IST day, or None when the policy's tax is
    off. The realised gains of the year come from every account in history (the exemption is
    the person's), the declared ones from ``rebalance tax declare``."""
    if policy.tax is TaxMode.OFF:
        return None
    store = TaxStore(engine)
    today = snapshot.taken_at.astimezone(IST).date()
    fmv = store.fmv()
    ledger = replay(store.trades(), store.actions(), fmv)
    held = {
        str(r["symbol"]): int(r["quantity"])
        for r in snapshot.positions[["symbol", "quantity"]].to_dict(orient="records")
    }
    context = build_context(
        ledger,
        account,
        held,
        today,
        declared=store.declared(FinancialYear.of(today)),
        fmv_2018=fmv,
    )
    for symbol, why in sorted(context.no_tax_data.items()):
        log.info("%s: %s planned without tax data: %s", account, symbol, why)
    return context


def record_fills(engine: Engine, run_id: int) -> int:
    """Extend the lots with run ``run_id``'s fills (idempotent). A failure is logged, never
    raised: the run is already closed, and its fills can be imported from the tradebook."""
    try:
        added = TaxStore(engine).record_fills(run_id)
    except Exception:  # the lots are a record of the run, not part of placing it
        log.exception("run %d: its fills were not added to the tax lots", run_id)
        return 0
    if added:
        log.info("run %d: %d fills added to the tax lots", run_id, added)
    return added


def year_report(engine: Engine, accounts: Sequence[str], fy: FinancialYear) -> TaxReport:
    """The year's realised gains and estimated tax of ``accounts`` from history (their trades
    only; the gains declared for the year added)."""
    store = TaxStore(engine)
    fmv = store.fmv()
    ledger = replay(store.trades(accounts), store.actions(), fmv)
    return build_report(ledger, fy, declared=store.declared(fy))
