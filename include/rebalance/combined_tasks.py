"""Airflow's side of the combined accounts mode (docs/accounts.md): the ``combined`` TaskGroup.

A DAG of a portfolio with two or more accounts carries both paths; each run picks one from its
``accounts_mode`` Param (the manual-run form) or the portfolio file's ``accounts_mode``:

* ``combined.plan_trades`` (after every lane's validate_snapshot): the whole's plan and its split
  (``combined.plan_combined``); each account's part is written to that account's run as its
  plan. In the separate mode it is skipped, and the lanes plan on their own as before.
* ``combined.approval``: ONE approval of the combined plan, the split per account in the
  preview; the decision is recorded on every part, so each lane's own approval only reads it.
* the lanes then place their parts (``place_orders``: the usual crash-safe execution, per
  account, with its own rate limits); one account failing does not undo the other's orders.
* ``combined.record_run`` (after every lane's record_run, in both modes): the combined outcome
  and what is left undone per account; it fails when a lane did (the DAG run's state follows it).

And for an account shared by several portfolios (``ledger: true``): ``apply_ledger`` after the
lane's fetch, ``record_ledger_fills`` after its record_run (``rebalance.ledgers``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, TaskGroup, TriggerRule, get_current_context

from rebalance.accounts.modes import combined_refusals
from rebalance.approval import Decision, approval_deadline, decide_automatically
from rebalance.approval_operator import PlanApprovalOperator, answer_note
from rebalance.drift.config import TriggerMode
from rebalance.portfolio import AccountsMode, Portfolio

if TYPE_CHECKING:  # the DAG files import this module: nothing heavy at parse time
    from airflow.sdk import DAG

    from rebalance.accounts.combine import AccountHoldings
    from rebalance.domain.market import Quote
    from rebalance.history.combined import CombinedStore
    from rebalance.history.store import HistoryStore
    from rebalance.lane import Lane

log = logging.getLogger(__name__)

GROUP = "combined"  # the TaskGroup id; no account may have this name
PARAM = "accounts_mode"  # the manual-run form's choice


def accounts_mode(portfolio: Portfolio, params: Mapping[str, Any]) -> AccountsMode:
    """The mode of this DAG run: the form's choice, else the portfolio file's."""
    chosen = params.get(PARAM)
    return AccountsMode(chosen) if chosen else portfolio.accounts_mode


def lanes_of(portfolio_file: str, template: Lane) -> list[Lane]:
    """Every selected account's lane of the DAG run ``template`` belongs to."""
    from rebalance.lane import Lane

    lanes = [
        Lane(
            portfolio_file,
            account.name,
            template.dag_id,
            template.airflow_run_id,
            template.initiator,
            template.params,
        )
        for account in template.portfolio.accounts
    ]
    return [lane for lane in lanes if not lane.deselected]


def combined_store(store: HistoryStore) -> CombinedStore:
    from rebalance.history.combined import CombinedStore

    return CombinedStore(store.engine)


def plan(template: Lane, store: HistoryStore) -> dict[str, Any] | None:
    """``combined.plan_trades``: None (the task is skipped) in the separate mode or with fewer
    than two selected accounts; otherwise the combined plan, each part written to its account's
    run (status planned). Every account must have a validated snapshot: one that does not fails
    the combined run, and every part is failed with the reason (nothing is planned or ordered).
    """
    from rebalance import tasks
    from rebalance.combined import account_holdings, plan_combined
    from rebalance.errors import RebalanceError
    from rebalance.history.status import RunStatus

    portfolio = template.portfolio
    lanes = lanes_of(template.portfolio_file, template)
    if accounts_mode(portfolio, template.params) is AccountsMode.SEPARATE or len(lanes) < 2:
        return None
    combined = combined_store(store)
    combined_id = combined.open_combined(
        portfolio.id, template.dag_id, template.airflow_run_id, str(template.mode)
    )
    record = combined.combined(combined_id)
    if record.plan_hash is not None:  # a retry: the plan and its parts are written
        return {"combined_run": combined_id, "plan_hash": record.plan_hash}
    runs = {}
    problems = []
    accounts = [lane.account_config for lane in lanes]
    problems += combined_refusals(
        template.policy, accounts, computed_targets=portfolio.needs_target_model
    )
    for lane in lanes:
        run_id = store.find_run(lane.run_key)
        run = store.run(run_id) if run_id is not None else None
        if run is None or run.run_status is not RunStatus.STARTED or not run.validation:
            state = "no run" if run is None else f"{run.status}: {run.status_reason or ''}"
            problems.append(f"{lane.account} has no validated snapshot ({state.strip()})")
            continue
        if refused := tasks.second_live_run_refusal(lane, store, run.id):
            problems.append(refused)
            continue
        runs[lane.account] = run
        combined.link_part(combined_id, lane.account, run.id)
    if problems:
        _fail(store, combined, combined_id, runs, "; ".join(problems))
    holdings: list[AccountHoldings] = []
    quotes: dict[str, Quote] = {}
    for run in runs.values():
        read, seen = account_holdings(run)
        holdings.append(read)
        quotes = {**seen, **quotes}  # the first account's price wins, as combine_accounts'
    taken_at = min(datetime.fromisoformat((r.snapshot or {})["taken_at"]) for r in runs.values())
    try:
        _gate_whole(template, store, combined_id, runs, holdings, quotes, taken_at)
        result = plan_combined(
            holdings,
            quotes,
            portfolio.target_fractions(),
            template.policy,
            taken_at=taken_at,
            cash_target=portfolio.cash_target_fraction,
            taxes=_tax_contexts(template, store, runs),
        )
    except RebalanceError as exc:
        _fail(store, combined, combined_id, runs, f"the planner refused the inputs: {exc}")
    whole = result.plan
    combined.update_combined(
        combined_id,
        status="planned",
        status_reason=f"{len(result.allocation.orders)} orders across {len(runs)} accounts",
        snapshot=result.snapshot_record(),
        plan=whole.to_dict(),
        plan_hash=whole.plan_hash,
        allocation=result.allocation.to_dict(),
        allocation_hash=result.allocation_hash,
        replanned=result.replanned,
    )
    for account, run in runs.items():
        part = result.part(account)
        why = f"{part.summary.trades} orders: {account}'s part of combined run {combined_id}"
        store.record_plan(run.id, part, planned_at=datetime.now(UTC), reason=why)
    log.info("combined run %d: %d orders, split %s", combined_id, whole.summary.trades,
             {a: len(result.allocation.for_account(a)) for a in runs})  # fmt: skip
    return {"combined_run": combined_id, "plan_hash": whole.plan_hash}


def _tax_contexts(template: Lane, store: HistoryStore, runs: Mapping[str, Any]) -> dict[str, Any]:
    """Each account's tax context on its own snapshot (``tax: report``; none when tax is off):
    each part's estimate is of its own FIFO lots."""
    from rebalance.snapshot import HoldingsSnapshot
    from rebalance.tax_history import context_for

    contexts = {}
    for account, run in runs.items():
        snapshot = HoldingsSnapshot.from_records(run.snapshot or {})
        if (context := context_for(store.engine, template.policy, account, snapshot)) is not None:
            contexts[account] = context
    return contexts


def gated_as_whole(lane: Lane) -> bool:
    """True when ``lane`` belongs to a combined run of ``trigger: schedule_and_drift``: it is
    not gated on its own account's drift; ``combined.plan_trades`` gates the whole."""
    if lane.deselected or lane.portfolio.trigger.mode is not TriggerMode.SCHEDULE_AND_DRIFT:
        return False
    if accounts_mode(lane.portfolio, lane.params) is AccountsMode.SEPARATE:
        return False
    return len(lanes_of(lane.portfolio_file, lane)) > 1


def _gate_whole(
    template: Lane,
    store: HistoryStore,
    combined_id: int,
    runs: Mapping[str, Any],
    holdings: list[AccountHoldings],
    quotes: Mapping[str, Quote],
    taken_at: datetime,
) -> None:
    """``trigger: schedule_and_drift`` in the combined mode: the whole's drift decides. Inside
    the bands on a scheduled run, the combined run and every part end skipped with the reason
    (AirflowSkipException; nothing planned or ordered); otherwise each part notes the gate."""
    from airflow.sdk.exceptions import AirflowSkipException

    from rebalance.combined import gate_whole
    from rebalance.drift.trigger import RunKind
    from rebalance.history.status import RunStatus

    portfolio = template.portfolio
    if portfolio.trigger.mode is not TriggerMode.SCHEDULE_AND_DRIFT:
        return
    kind = {"scheduled": RunKind.SCHEDULED, "drift": RunKind.ASSET}.get(
        template.initiator, RunKind.MANUAL
    )
    gate = gate_whole(holdings, quotes, portfolio, template.policy, kind, taken_at=taken_at)
    reason = f"combined drift gate: {gate.reason}"
    if gate.proceed:
        for run in runs.values():
            store.note(run.id, reason)
        return
    combined_store(store).update_combined(
        combined_id, status="skipped", status_reason=reason, finished_at=datetime.now(UTC)
    )
    for run in runs.values():
        store.transition(run.id, RunStatus.SKIPPED, reason)
    raise AirflowSkipException(reason)


def _fail(
    store: HistoryStore,
    combined: CombinedStore,
    combined_id: int,
    runs: Mapping[str, Any],
    reason: str,
) -> Any:
    """Fail the combined run and every part with ``reason``; nothing is planned or ordered."""
    from rebalance.history.status import RunStatus
    from rebalance.lane import LaneStopped

    why = f"combined plan not made, nothing ordered: {reason}"
    combined.update_combined(
        combined_id, status="failed", status_reason=why, finished_at=datetime.now(UTC)
    )
    for run in runs.values():
        store.transition(run.id, RunStatus.FAILED, why)
    raise LaneStopped(why)


def lane_part(lane: Lane, store: HistoryStore) -> dict[str, Any] | None:
    """A lane's plan_trades in a combined run: its part is already written (None: this run is
    not combined, the lane plans on its own)."""
    run_id = store.find_run(lane.run_key)
    if run_id is None or combined_store(store).combined_of_run(run_id) is None:
        return None
    from rebalance.history.status import RunStatus

    run = store.run(run_id)
    if run.run_status is RunStatus.SKIPPED:  # the whole was inside its bands (_gate_whole)
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(run.status_reason or "skipped with the combined run")
    return {"run": run_id, "plan_hash": run.plan_hash, "trades": run.trades or 0, "combined": True}


def await_decision(store: HistoryStore, combined_id: int) -> None:
    """The combined run and every part wait for a person's one decision."""
    from rebalance.history.status import RunStatus

    combined = combined_store(store)
    combined.update_combined(combined_id, status="awaiting_approval")
    for run_id in combined.combined(combined_id).parts.values():
        if store.status(run_id) is RunStatus.PLANNED:  # a retry finds them waiting already
            store.transition(run_id, RunStatus.AWAITING_APPROVAL, "waiting for the combined plan")


def record_decision(
    template: Lane, store: HistoryStore, decision: Decision, by: str | None
) -> dict[str, Any]:
    """Record the one decision on the combined run and on every part (each lane's approval
    then reads it)."""
    from rebalance import tasks

    combined = combined_store(store)
    combined_id = combined.find_combined(template.dag_id, template.airflow_run_id)
    assert combined_id is not None
    record = combined.combined(combined_id)
    status = {
        Decision.REJECTED: "rejected",
        Decision.EXPIRED: "expired",
    }.get(decision, "approved")
    combined.update_combined(
        combined_id,
        status=status,
        approval_decision=str(decision),
        approved_by=by,
        approved_at=datetime.now(UTC),
    )
    for lane in lanes_of(template.portfolio_file, template):
        if lane.account in record.parts:
            tasks.record_decision(lane, store, decision, by)
    return {"combined_run": combined_id, "plan_hash": record.plan_hash, "decision": str(decision)}


def close(template: Lane, store: HistoryStore) -> dict[str, Any]:
    """``combined.record_run``, the DAG run's last task: Airflow gives a DAG run the state of its
    last tasks, so it fails whenever a lane ended failed, invalid, interrupted or with legs not
    finished (the lane's record_run already said why). In a combined run it first records the
    outcome of every part on the combined record."""
    from rebalance.execution import unfinished_legs
    from rebalance.history.status import RunStatus
    from rebalance.lane import LaneStopped

    stopped = []
    for lane in lanes_of(template.portfolio_file, template):
        run_id = store.find_run(lane.run_key)
        run = store.run(run_id) if run_id is not None else None
        if run is None:
            stopped.append(f"{lane.account}: no run recorded")
        elif run.run_status in (RunStatus.FAILED, RunStatus.INVALID, RunStatus.INTERRUPTED):
            stopped.append(f"{lane.account}: run {run.id} {run.status}")
        elif unfinished := unfinished_legs(run.placement):
            stopped.append(f"{lane.account}: run {run.id} with {unfinished}")
    closed = _close_combined(template, store) or {"status": "separate"}
    if stopped:
        raise LaneStopped(f"{closed['status']}: " + "; ".join(stopped))
    return closed


def _close_combined(template: Lane, store: HistoryStore) -> dict[str, Any] | None:
    """The outcome of every part on the combined record (None: the run was not combined)."""
    from rebalance.combined import combined_outcome

    combined = combined_store(store)
    combined_id = combined.find_combined(template.dag_id, template.airflow_run_id)
    if combined_id is None:
        return None
    record = combined.combined(combined_id)
    parts = {
        account: (store.run(run_id), store.orders(run_id))
        for account, run_id in record.parts.items()
    }
    outcome = combined_outcome(parts)
    if record.status in ("failed", "rejected", "expired", "skipped"):
        status = record.status
    else:
        status = outcome["status"]
    reason = "; ".join(
        f"{a}: {o['status']}" + (f" ({o['reason']})" if o["reason"] else "")
        for a, o in outcome["accounts"].items()
    )
    combined.update_combined(
        combined_id,
        status=status,
        status_reason=record.status_reason
        if status in ("rejected", "expired", "skipped")
        else reason,
        outcome=outcome,
        finished_at=datetime.now(UTC),
    )
    return {"combined_run": combined_id, "status": f"combined run {combined_id} {status}"}


class CombinedApprovalOperator(PlanApprovalOperator):
    """``combined.approval``: auto-approve the combined plan where the rules allow, or ask a
    person once, with the whole's plan and its split per account."""

    def execute(self, context: Any) -> Any:
        from airflow.sdk.exceptions import AirflowSkipException

        from rebalance import wiring
        from rebalance.combined import split_markdown
        from rebalance.lane import Lane
        from rebalance.preview import render_preview

        template = Lane.from_context(context, self.portfolio_file, self.account)
        store = wiring.open_store()
        combined = combined_store(store)
        combined_id = combined.find_combined(template.dag_id, template.airflow_run_id)
        if combined_id is None:
            raise AirflowSkipException("not a combined run: each account approves its own plan")
        record = combined.combined(combined_id)
        if record.approval_decision is not None:  # a retry after the decision was recorded
            if record.status in ("rejected", "expired"):
                raise AirflowSkipException(f"combined plan {record.status}")
            return {"combined_run": combined_id, "plan_hash": record.plan_hash}
        execution = template.portfolio.execution
        summary = (record.plan or {}).get("summary", {})
        turnover, trades = summary.get("turnover_pct", 0.0), summary.get("trades", 0)
        automatic = decide_automatically(execution, template.mode, turnover, trades)
        if automatic is not None:
            return record_decision(template, store, automatic, by="rebalance")
        await_decision(store, combined_id)
        deadline = approval_deadline(datetime.now(UTC), execution, template.mode)
        remaining = deadline - datetime.now(deadline.tzinfo)
        if remaining.total_seconds() <= 0:
            record_decision(template, store, Decision.EXPIRED, by=None)
            raise AirflowSkipException("approval deadline already passed: plan expired")
        if context["ti"].try_number > 1 and (answer := self._earlier_answer(context)) is not None:
            return self.execute_complete(context, answer)
        preview = render_preview(
            record.plan or {},
            portfolio_name=template.portfolio.name,
            account="all accounts, combined",
            mode=str(template.mode),
            plan_hash=record.plan_hash or "",
        )
        self.subject = (
            f"Approve combined rebalance of {template.portfolio.name} "
            f"({', '.join(record.parts)}): {trades} orders, turnover {turnover:.2f}%"
        )
        taxes = {a: (store.run(r).plan or {}).get("tax") for a, r in record.parts.items()}
        split = split_markdown(record.allocation or {}, bool(record.replanned), taxes)
        approvers = execution.approvers
        self.body = f"{preview}\n\n{split}" + answer_note(deadline, approvers, template.dag_id)
        self.response_timeout = remaining
        return super(PlanApprovalOperator, self).execute(context)

    def record(self, context: Any, decision: Decision, by: str | None) -> dict[str, Any]:
        """The decision on the combined run and on every part."""
        from rebalance import wiring
        from rebalance.lane import Lane

        template = Lane.from_context(context, self.portfolio_file, self.account)
        return record_decision(template, wiring.open_store(), decision, by)


def _template(portfolio_file: str) -> Lane:
    """The DAG run as a lane without an account: its portfolio, mode, Params and ids."""
    from rebalance.lane import Lane

    return Lane.from_context(get_current_context(), portfolio_file, GROUP)


# step -> (body, why it is skipped when the body returns None: a separate-mode run)
_STEPS = {
    "plan_trades": (lambda t, s: plan(t, s), "separate accounts mode: each account plans alone"),
    "record_run": (lambda t, s: close(t, s), "not reached: close always answers"),
}


def _run_step(step: str, portfolio_file: str) -> dict[str, Any]:
    """Run a combined step: a LaneStopped fails it without retry; None skips it."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from rebalance import wiring
    from rebalance.lane import LaneStopped

    body, skipped = _STEPS[step]
    try:
        result = body(_template(portfolio_file), wiring.open_store())
    except LaneStopped as exc:
        raise AirflowFailException(str(exc)) from exc
    if result is None:
        raise AirflowSkipException(skipped)
    return result


class CombinedStepOperator(BaseOperator):
    """``combined.plan_trades`` or ``combined.record_run`` (see the module's docstring)."""

    def __init__(self, *, step: str, portfolio_file: str, **kwargs: Any) -> None:
        super().__init__(task_id=step, **kwargs)
        self.step = step
        self.portfolio_file = portfolio_file

    def execute(self, context: Any) -> dict[str, Any]:
        return _run_step(self.step, self.portfolio_file)


def build_group(
    dag: DAG,
    portfolio_file: str,
    accounts: list[str],
    *,
    record_retries: int = 0,
    record_retry_delay: timedelta = timedelta(seconds=30),
) -> None:
    """The ``combined`` TaskGroup of a DAG of two or more accounts, wired between the lanes:
    every lane's validate_snapshot >> combined.plan_trades >> combined.approval >> every lane's
    plan_trades (which runs unless something upstream failed: in the separate mode the combined
    tasks are skipped), and every lane's record_run >> combined.record_run."""
    with TaskGroup(group_id=GROUP, tooltip="one plan for the accounts together", dag=dag):
        planned = CombinedStepOperator(
            step="plan_trades",
            portfolio_file=portfolio_file,
            # runs whatever the lanes' validation did: it skips (separate) or says which failed
            trigger_rule=TriggerRule.ALL_DONE,
            doc_md="The combined plan of the accounts and its split (docs/accounts.md).",
        )
        approval = CombinedApprovalOperator(
            task_id="approval",
            portfolio_file=portfolio_file,
            account=GROUP,
            retries=2,
            retry_delay=timedelta(seconds=5),
            doc_md="One approval of the combined plan, the split per account in the preview.",
        )
        recorded = CombinedStepOperator(
            step="record_run",
            portfolio_file=portfolio_file,
            trigger_rule=TriggerRule.ALL_DONE,
            # closing is idempotent: a brief outage of the history database heals on a retry
            retries=record_retries,
            retry_delay=record_retry_delay,
            doc_md="The combined outcome: what each account did and what is left undone.",
        )
    planned >> approval
    for account in accounts:
        dag.get_task(f"{account}.validate_snapshot") >> planned
        lane_plan = dag.get_task(f"{account}.plan_trades")
        lane_plan.trigger_rule = TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
        approval >> lane_plan
        dag.get_task(f"{account}.record_run") >> recorded


def apply_ledger(lane: Lane, store: HistoryStore, run_id: int) -> None:
    """A ledgered account's fetch: reconcile, then plan on the portfolio's own part (raises
    LaneStopped, run invalid, when the ledger is missing or a difference is open)."""
    from rebalance.lane import LaneStopped
    from rebalance.ledgers import LedgerStop, account_key
    from rebalance.ledgers import apply_ledger as reconcile

    if not lane.account_config.ledger:
        return
    try:
        reconcile(store, run_id, lane.portfolio.id, account_key(lane.account_config))
    except LedgerStop as exc:
        raise LaneStopped(str(exc)) from None


def record_ledger_fills(lane: Lane, store: HistoryStore) -> None:
    """A ledgered account's record_run: the run's fills move the portfolio's ledger."""
    from rebalance.ledgers import account_key, record_fills

    if lane.deselected or not lane.account_config.ledger:
        return
    if (run_id := store.find_run(lane.run_key)) is not None:
        record_fills(store, run_id, lane.portfolio.id, account_key(lane.account_config))
