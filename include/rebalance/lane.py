"""A lane: one account's tasks within one Airflow DAG run (docs/architecture.md, glossary).

``Lane`` carries which portfolio, which account, which DAG run and which parameters; the task
bodies (``tasks.py``) and the wiring (``wiring.py``) take it. ``LaneStopped`` is how a lane stops
on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import Any, NoReturn

from rebalance.approval import approval_valid_until
from rebalance.brokers.pricing import PricingKind, PricingPolicy
from rebalance.execution import ExecutionSettings
from rebalance.history.records import RunRecord
from rebalance.history.status import RunStatus
from rebalance.history.store import HistoryStore, RunKey
from rebalance.policy import Policy
from rebalance.portfolio import Account, ExecutionMode, Portfolio, load_portfolio


class LaneStopped(RuntimeError):  # noqa: N818 - a stop, not an error
    """The lane stops here on purpose (bad data, plan mismatch, a missing connection, an expired
    login): not retried, because retrying cannot heal it. The message says what to do."""


@dataclass(frozen=True)
class Lane:
    """One account lane of one Airflow DAG run."""

    portfolio_file: str
    account: str
    dag_id: str
    airflow_run_id: str
    initiator: str = "manual"  # scheduled | manual | drift (the drift watch's asset event)
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_context(cls, context: Mapping[str, Any], portfolio_file: str, account: str) -> Lane:
        """The lane of a running Airflow task, from its context."""
        dag_run = context["dag_run"]
        # The task SDK's DagRunType is a (str, Enum): str() gives "DagRunType.SCHEDULED", so
        # read its value (lower case: "scheduled", "asset_triggered", "manual").
        run_type = getattr(dag_run, "run_type", "manual")
        run_type = str(getattr(run_type, "value", run_type)).lower()
        return cls(
            portfolio_file=portfolio_file,
            account=account,
            dag_id=dag_run.dag_id,
            airflow_run_id=dag_run.run_id,
            initiator=_initiator(run_type),
            params=dict(context.get("params") or {}),
        )

    @cached_property
    def portfolio(self) -> Portfolio:
        return load_portfolio(self.portfolio_file)

    @cached_property
    def account_config(self) -> Account:
        for account in self.portfolio.accounts:
            if account.name == self.account:
                return account
        raise LookupError(f"{self.portfolio_file}: no account named {self.account!r}")

    @property
    def run_key(self) -> RunKey:
        """The key of this lane's run record (DAG id, Airflow run id, account)."""
        return RunKey(self.dag_id, self.airflow_run_id, self.account)

    def run_id(self, store: HistoryStore) -> int:
        """The id of this lane's run record, which fetch_holdings opened (LookupError if not)."""
        run_id = store.find_run(self.run_key)
        if run_id is None:
            raise LookupError(f"no run record for {self.run_key}: fetch_holdings has not run")
        return run_id

    @property
    def tag_seed(self) -> str:
        """The string order tags are derived from: stable across retries of this DAG run."""
        return f"{self.dag_id}/{self.airflow_run_id}"

    @cached_property
    def policy(self) -> Policy:
        """The portfolio's policy with the run's Params (a manual run's form) over it."""
        overrides = {
            k: v for k, v in self.params.items() if k in Policy.model_fields and v is not None
        }
        return self.portfolio.policy.with_overrides(overrides)

    @property
    def mode(self) -> ExecutionMode:
        chosen = self.params.get("mode")
        return ExecutionMode(chosen) if chosen else self.portfolio.execution.mode

    @property
    def deselected(self) -> bool:
        """A manual run that chose other accounts (its ``accounts`` Param)."""
        chosen = self.params.get("accounts")
        return chosen is not None and self.account not in chosen

    def execution_settings(self, override: ExecutionSettings | None = None) -> ExecutionSettings:
        """The lane's placement settings: the portfolio's fill deadline, pricing and re-pricing
        rounds (tests pass shorter timings as ``override``; the portfolio's pricing applies to
        them too)."""
        execution = self.portfolio.execution
        pricing = PricingPolicy(
            kind=PricingKind(str(execution.order_type)),
            limit_buffer_pct=execution.limit_buffer_pct,
            market_protection_pct=execution.market_protection_pct,
        )
        if override is not None:
            return replace(
                override, pricing=pricing, max_price_move_pct=self.policy.max_price_move_pct
            )
        return ExecutionSettings.for_deadline(
            execution.order_deadline_minutes,
            reprice_rounds=execution.max_reprice_rounds,
            pricing=pricing,
            max_price_move_pct=self.policy.max_price_move_pct,
        )

    def valid_until(self, run: RunRecord) -> datetime | None:
        """Until when the run's approval allows sending (``approval.approval_valid_until``)."""
        mode = ExecutionMode(run.mode or self.mode)
        asked = run.planned_at or run.created_at
        return approval_valid_until(mode, self.portfolio.execution, asked, run.approved_at)

    def run_fields(self) -> dict[str, Any]:
        """What the lane's run record is opened with (``HistoryStore.open_run``)."""
        portfolio = self.portfolio
        return {
            "portfolio_id": portfolio.id,
            "portfolio_name": portfolio.name,
            "broker": str(self.account_config.broker),
            "initiator": self.initiator,
            "broker_scope": ",".join(a.name for a in portfolio.accounts),
            "mode": str(self.mode),
            "policy": self.policy.model_dump(mode="json"),
            "targets": {
                "weights": portfolio.target_fractions(),
                "cash": portfolio.cash_target_fraction,
            },
        }


def stop_run(store: HistoryStore, run_id: int, status: RunStatus, reason: str) -> NoReturn:
    """Record why the lane stops (the run moves to ``status``), then stop it (``LaneStopped``)."""
    store.transition(run_id, status, reason)
    raise LaneStopped(reason)


def _initiator(run_type: str) -> str:
    """Airflow's run type in our words: an asset-triggered run was started by the drift watch."""
    if "scheduled" in run_type:
        return "scheduled"
    if "asset" in run_type:
        return "drift"
    return "manual"


class NotResumable(LookupError):  # noqa: N818
    """``rebalance resume``: the run has nothing to resume (or is not this portfolio's)."""


def lane_of_run(record: RunRecord, portfolio_file: str) -> Lane:
    """The lane a stored run belongs to, with its mode and policy as they were."""
    lane = Lane(
        portfolio_file=portfolio_file,
        account=record.account,
        dag_id=record.dag_id,
        airflow_run_id=record.airflow_run_id,
        initiator=record.initiator,
        params={**(record.policy or {}), "mode": record.mode},
    )
    if lane.portfolio.id != record.portfolio_id:
        raise NotResumable(
            f"run {record.id} belongs to portfolio {record.portfolio_id!r}, "
            f"not to {portfolio_file} ({lane.portfolio.id!r})"
        )
    return lane
