"""Several portfolios in one account, as a run does it (issue 16; docs/accounts.md, ledgers).

An account marked ``ledger: true`` in a portfolio file holds other portfolios too. Each keeps a
ledger of its shares and cash inside the account (``accounts.ledger``; stored append-only in
``ledger_entries``, migration 0008):

* seeded when the portfolio is added to the account (``seed``: ``rebalance ledger seed``);
* each run, after the account is read, the ledgers are reconciled against the broker's totals
  (``apply_ledger``). A difference (a manual trade, a corporate action) stops the lane, with the
  difference on the record, until a person resolves it (``rebalance ledger resolve``): it is
  never assigned to a portfolio by a rule. When clean, the run's snapshot becomes the
  portfolio's own part (its shares and cash, what it may sell today), and the plan is made on it;
* moved by the portfolio's own fills (``record_fills``), once per order tag.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rebalance.accounts.ledger import AccountLedger, Reconciliation, charges_tolerance
from rebalance.domain.market import Side
from rebalance.errors import InputDataError
from rebalance.history.combined import CombinedStore
from rebalance.history.status import RunStatus
from rebalance.portfolio import Account
from rebalance.snapshot import HoldingsSnapshot

if TYPE_CHECKING:
    from rebalance.history.store import HistoryStore

log = logging.getLogger(__name__)


class LedgerStop(RuntimeError):  # noqa: N818 - a stop, not an error
    """The lane stops: no ledger for this portfolio yet, or a difference to resolve first."""


def account_key(account: Account) -> str:
    """What names the real account: the broker and the Airflow connection (as the one-account
    check of the portfolio folder does)."""
    return f"{account.broker}/{account.connection_id}"


def ledger_of(store: HistoryStore, key: str) -> AccountLedger:
    return CombinedStore(store.engine).ledger(key)


def seed(
    store: HistoryStore,
    key: str,
    portfolio: str,
    shares: dict[str, int],
    cash: float,
    *,
    broker_holdings: dict[str, int],
    broker_cash: float,
    by: str,
    now: datetime | None = None,
) -> AccountLedger:
    """Add ``portfolio`` to the shared account ``key`` with ``shares`` and ``cash``.

    The first portfolio opens the ledger (what no portfolio owns goes to the outside ledger);
    a later one takes its part from the outside ledger, as an adjustment a person made. Either
    way a part above what is there is refused (InputDataError naming symbol and figures).
    """
    at = now or datetime.now(UTC)
    ledger = ledger_of(store, key)
    if portfolio in ledger.portfolios:
        raise InputDataError(f"ledger of {key}", [f"{portfolio} already has a ledger here"])
    if not ledger.entries:
        opened = AccountLedger.open(
            key, {portfolio: (shares, cash)}, broker_holdings, broker_cash, at=at, by=by
        )
        CombinedStore(store.engine).append_entries(key, opened.entries)
        return opened
    before = len(ledger.entries)
    ledger = ledger.add_portfolio(portfolio, shares, cash, at=at, by=by)
    CombinedStore(store.engine).append_entries(key, ledger.entries[before:])
    return ledger


def apply_ledger(store: HistoryStore, run_id: int, portfolio: str, key: str) -> Reconciliation:
    """Reconcile the run's snapshot (the whole account, as read) against the ledgers; when
    clean, make the snapshot the portfolio's part. Raises LedgerStop (after recording why, run
    ``invalid``) when the portfolio has no ledger yet or a difference is open."""
    run = store.run(run_id)
    records = dict(run.snapshot or {})
    snapshot = HoldingsSnapshot.from_records(records)
    ledger = ledger_of(store, key)
    if portfolio not in ledger.portfolios:
        why = (
            f"{portfolio} has no ledger in the shared account {key}: seed it first with "
            f"`rebalance ledger seed` (docs/accounts.md); nothing planned or ordered"
        )
        store.transition(run_id, RunStatus.INVALID, why)
        raise LedgerStop(why)
    rows = snapshot.positions.to_dict(orient="records")
    quantity = {r["symbol"]: int(r["quantity"]) for r in rows}
    sellable = {r["symbol"]: int(r["sellable_quantity"]) for r in rows}
    result = ledger.reconcile(quantity, snapshot.cash)
    ledger, result = settle_charges(store, run_id, key, ledger, result, quantity, snapshot.cash)
    whole = {"account_key": key, "broker_cash": snapshot.cash, "broker_quantity": quantity}
    if not result.clean:
        lines = result.lines()
        store.update_run(run_id, snapshot={**records, "ledger": {**whole, "differences": lines}})
        why = (
            "the ledgers of the shared account do not add up to the broker's totals: "
            + "; ".join(lines)
            + ". Resolve each with `rebalance ledger resolve` (docs/accounts.md); nothing "
            "planned or ordered"
        )
        store.transition(run_id, RunStatus.INVALID, why)
        raise LedgerStop(why)
    held = ledger.shares(portfolio)
    may_sell = ledger.sellable(portfolio, quantity, sellable)
    mine: list[dict[str, Any]] = []
    for row in records.get("positions", []):
        symbol = row["symbol"]
        if symbol not in held and quantity.get(symbol, 0) > 0 and symbol not in run.targets:
            continue  # another portfolio's symbol
        mine.append(
            {**row, "quantity": held.get(symbol, 0), "sellable_quantity": may_sell.get(symbol, 0)}
        )
    cash = ledger.cash(portfolio)
    if snapshot.cash is not None:
        cash = min(cash, snapshot.cash)
    store.update_run(
        run_id,
        snapshot={
            **records,
            "positions": mine,
            "cash": cash,
            "ledger": {**whole, "differences": []},
        },
        cash=cash,
    )
    return result


def settle_charges(
    store: HistoryStore,
    run_id: int,
    key: str,
    ledger: AccountLedger,
    result: Reconciliation,
    quantity: dict[str, int],
    broker_cash: float | None,
) -> tuple[AccountLedger, Reconciliation]:
    """A reconciliation whose only difference is the cash, within the charges tolerance of the
    fills since the cash was last settled (``accounts.ledger.charges_tolerance``): recorded as
    an automatic "charges difference" entry per portfolio (noted on the run) and reconciled
    again. Any share difference leaves everything to a person: a manual trade moves cash too."""
    if not result.differences or any(d.symbol is not None for d in result.differences):
        return ledger, result
    (gap,) = result.differences
    fills = ledger.unsettled_fills()
    charges = CombinedStore(store.engine).fill_charges(f.ref for f in fills if f.ref)
    estimated: dict[str, float] = {}
    for fill in fills:
        estimated[fill.portfolio] = estimated.get(fill.portfolio, 0.0) + charges.get(
            fill.ref or "", 0.0
        )
    if abs(gap.difference) > charges_tolerance(sum(estimated.values())) or not any(
        v > 0 for v in estimated.values()
    ):
        return ledger, result
    before = len(ledger.entries)
    ledger = ledger.settle_charges(gap, estimated, at=datetime.now(UTC))
    added = ledger.entries[before:]
    CombinedStore(store.engine).append_entries(key, added, run_id)
    for entry in added:
        store.note(run_id, f"ledger of {key}, {entry.portfolio}: {entry.note}")
    return ledger, ledger.reconcile(quantity, broker_cash)


def record_fills(store: HistoryStore, run_id: int, portfolio: str, key: str) -> int:
    """Move ``portfolio``'s ledger by its run's fills (once per order tag). Returns entries
    written. The fill's charges are the leg's estimate in proportion to the shares filled; the
    next reconciliation settles a cash gap within the charges tolerance (``settle_charges``)
    and shows a larger one as a difference to resolve."""
    ledger = ledger_of(store, key)
    if portfolio not in ledger.portfolios:
        return 0
    before = len(ledger.entries)
    for leg in store.orders(run_id):
        if leg.filled_quantity <= 0:
            continue
        price = leg.average_price or leg.price
        share = leg.filled_quantity / leg.quantity if leg.quantity else 1.0
        try:
            ledger = ledger.record_fill(
                portfolio,
                tag=leg.tag,
                symbol=leg.symbol,
                side=Side(leg.side),
                quantity=leg.filled_quantity,
                price=price,
                charges=round(leg.charges * share, 2),
                at=leg.updated_at,
            )
        except InputDataError as exc:  # left out: the next reconciliation shows the difference
            log.warning("run %d, leg %s: not moved into the ledger: %s", run_id, leg.tag, exc)
    return CombinedStore(store.engine).append_entries(key, ledger.entries[before:], run_id)
