"""One portfolio at both brokers, through Airflow (``dag.test``), against the emulated Kite
Connect and SmartAPI with the real client libraries: the separate mode trades INFY both ways
across the accounts, the combined mode does not; one account's lane failing after the combined
approval leaves a clear record of what the other did.

The Zerodha account holds 95 INFY (62% of it), the AngelOne account none; the whole is near
target except a new ITC weight of 3%, which neither account's ₹10,000 can fund alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from rebalance.approval_operator import request_approval
from rebalance.dag_factory import build_dag
from rebalance.history.combined import CombinedStore
from rebalance.history.status import RunStatus
from rebalance.portfolio import load_portfolio
from rebalance.testing.emulators import KiteEmulator, SmartApiEmulator
from rebalance.testing.emulators._server import DEMO_HOLDINGS, Holding

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

TARGETS = {"INFY": 34, "TCS": 19, "HDFCBANK": 20, "RELIANCE": 24, "ITC": 3}


def demo(symbol: str, quantity: int) -> Holding:
    found = next(h for h in DEMO_HOLDINGS if h.symbol == symbol)
    return Holding(**{**found.__dict__, "quantity": quantity})


@pytest.fixture
def emulators(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[KiteEmulator, SmartApiEmulator]]:
    kite_holdings = [demo("INFY", 95), demo("TCS", 20), demo("HDFCBANK", 10)]
    angel_holdings = [demo("RELIANCE", 100), demo("HDFCBANK", 50), demo("TCS", 5)]
    with (
        KiteEmulator(cash=10_000.0, holdings=kite_holdings) as kite,
        SmartApiEmulator(cash=10_000.0, holdings=angel_holdings) as angel,
    ):
        for h in DEMO_HOLDINGS:  # each broker quotes every symbol, held there or not
            kite.prices.setdefault(h.symbol, h.last_price)
            if h.symbol not in {held.symbol for held in angel_holdings}:
                angel.extra[h.symbol] = (h.last_price, h.previous_close, h.isin, h.token)
        monkeypatch.setenv("AIRFLOW_CONN_ZERODHA_TEST", kite.airflow_connection())
        monkeypatch.setenv("AIRFLOW_CONN_ANGELONE_TEST", angel.airflow_connection())
        yield kite, angel


def household(demo_copy: Path, mode: str) -> Path:
    """A portfolio held in both accounts, live, auto-approved, in ``mode``."""
    data = yaml.safe_load(demo_copy.read_text())
    data["targets"] = TARGETS
    data["policy"] = {"rebalance_budget_pct": 50, "max_position_weight_pct": 40}
    data["accounts"] = [
        {"name": "zerodha_main", "broker": "zerodha", "connection_id": "zerodha_test"},
        {"name": "angelone_main", "broker": "angelone", "connection_id": "angelone_test"},
    ]
    data["accounts_mode"] = mode
    data["execution"] = {"mode": "live", "approval": "auto"}
    path = demo_copy.with_name("household.yaml")
    path.write_text(yaml.safe_dump(data))
    demo_copy.unlink()  # the DAG folder holds this portfolio only
    return path


def sides(orders: list[dict], symbol_key: str, side_key: str) -> set[tuple[str, str]]:
    return {(o[symbol_key].removesuffix("-EQ"), str(o[side_key]).upper()) for o in orders}


def test_separate_mode_trades_infy_both_ways_across_the_accounts(
    airflow_db: Path,
    store,  # type: ignore[no-untyped-def]
    emulators: tuple[KiteEmulator, SmartApiEmulator],
    demo_copy: Path,
) -> None:
    kite, angel = emulators
    path = household(demo_copy, "separate")
    dag = build_dag(path, load_portfolio(path))
    assert {"combined.plan_trades", "combined.approval", "combined.record_run"} <= set(dag.task_ids)

    dag_run = dag.test()

    assert str(dag_run.state) == "success"
    assert ("INFY", "SELL") in sides(kite.orders, "tradingsymbol", "transaction_type")
    assert ("INFY", "BUY") in sides(angel.orders, "tradingsymbol", "transactiontype")
    runs = store.runs("household")
    assert {r.run_status for r in runs} == {RunStatus.COMPLETED}
    assert CombinedStore(store.engine).combined_runs("household") == []


def test_combined_mode_does_not_trade_infy_and_records_the_split(
    airflow_db: Path,
    store,  # type: ignore[no-untyped-def]
    emulators: tuple[KiteEmulator, SmartApiEmulator],
    demo_copy: Path,
) -> None:
    kite, angel = emulators
    path = household(demo_copy, "combined")

    dag_run = build_dag(path, load_portfolio(path)).test()

    assert str(dag_run.state) == "success"
    placed = sides(kite.orders, "tradingsymbol", "transaction_type") | sides(
        angel.orders, "tradingsymbol", "transactiontype"
    )
    assert placed == {("ITC", "BUY")}  # no INFY either way: the whole is near its target
    (combined,) = CombinedStore(store.engine).combined_runs("household")
    assert combined.status == "completed", combined.status_reason
    assert combined.approval_decision == "auto"
    assert set(combined.parts) == {"zerodha_main", "angelone_main"}
    allocation = combined.allocation or {}
    (whole,) = (combined.plan or {})["orders"]
    assert whole["symbol"] == "ITC"
    assert sum(o["quantity"] for o in allocation["orders"]) == whole["quantity"]
    for account, run_id in combined.parts.items():
        run = store.run(run_id)
        assert run.run_status is RunStatus.COMPLETED, run.status_reason
        mine = [o for o in allocation["orders"] if o["account"] == account]
        legs = store.orders(run_id)
        assert sorted((leg.symbol, leg.quantity) for leg in legs) == sorted(
            (o["symbol"], o["quantity"]) for o in mine
        )
        assert all(leg.filled_quantity == leg.quantity for leg in legs)
        assert f"combined run {combined.id}" in (run.status_reason or "") or run.plan
    for split in allocation["splits"]:  # each buy funded inside its own account
        assert split["cash_after"] >= 0


def test_one_account_failing_after_approval_leaves_a_record_of_the_other(
    airflow_db: Path,
    store,  # type: ignore[no-untyped-def]
    emulators: tuple[KiteEmulator, SmartApiEmulator],
    demo_copy: Path,
) -> None:
    kite, angel = emulators
    angel.faults.reject_next_order = "RMS: margin exceeds"  # AngelOne refuses its part
    path = household(demo_copy, "combined")

    dag_run = build_dag(path, load_portfolio(path)).test()

    assert str(dag_run.state) == "failed"  # someone must look at the AngelOne account
    (combined,) = CombinedStore(store.engine).combined_runs("household")
    assert combined.status == "partial", combined.status_reason
    outcome = combined.outcome or {}
    zerodha, angelone = (outcome["accounts"][a] for a in ("zerodha_main", "angelone_main"))
    assert zerodha["status"] == "completed"
    assert zerodha["filled_shares"] > 0
    assert zerodha["left_undone"] == []
    assert angelone["filled_shares"] == 0
    (undone,) = angelone["left_undone"]
    assert (undone["symbol"], undone["side"]) == ("ITC", "BUY")
    assert undone["quantity"] > 0
    assert "angelone_main" in (combined.status_reason or "")
    # the Zerodha part stands: its ITC was bought and is not undone
    assert ("ITC", "BUY") in sides(kite.orders, "tradingsymbol", "transaction_type")

    from typer.testing import CliRunner

    from rebalance.cli import _register_commands, app

    _register_commands()
    listed = CliRunner().invoke(app, ["history", "--portfolio", "household"])
    assert listed.exit_code == 0, listed.output
    assert "Combined runs" in listed.output
    assert "partial" in listed.output
    shown = CliRunner().invoke(app, ["history", "combined", str(combined.id)])
    assert shown.exit_code == 0, shown.output
    assert "Split per account" in shown.output
    assert "left undone: BUY" in shown.output
    assert "left undone: nothing" in shown.output  # the Zerodha part

    from fastapi.testclient import TestClient

    from rebalance.ui.app import Viewer, create_app, viewer

    page_app = create_app()
    page_app.dependency_overrides[viewer] = lambda: Viewer(
        name="asha", can_read=lambda ids: set(ids)
    )
    with TestClient(page_app) as client:
        page = client.get(f"/runs/{combined.parts['zerodha_main']}")
    assert page.status_code == 200, page.text
    assert f"Combined run {combined.id}: partial" in page.text
    assert "id='combined-split'" in page.text
    assert f"/runs/{combined.parts['angelone_main']}'" in page.text  # the other part, linked


def test_one_rejection_of_the_combined_plan_stops_every_part(
    store,  # type: ignore[no-untyped-def]
    emulators: tuple[KiteEmulator, SmartApiEmulator],
    demo_copy: Path,
) -> None:
    """The task bodies without Airflow: each lane reads and validates, the combined plan is made
    once, a person rejects it once: every part is rejected, nothing reaches either broker."""
    from rebalance import combined_tasks, tasks
    from rebalance.approval import Decision
    from rebalance.combined import split_markdown
    from rebalance.lane import Lane
    from rebalance.wiring import broker_for

    kite, angel = emulators
    path = household(demo_copy, "combined")
    lanes = [
        Lane(str(path), account, "rebalance_household", "manual__1")
        for account in ("zerodha_main", "angelone_main")
    ]
    for lane in lanes:
        tasks.fetch_holdings(lane, store, broker_for(lane, store))
        tasks.validate_snapshot(lane, store)
    template = Lane(str(path), combined_tasks.GROUP, "rebalance_household", "manual__1")
    planned = combined_tasks.plan(template, store)
    assert planned is not None
    record = combined_tasks.combined_store(store).combined(planned["combined_run"])
    preview = split_markdown(record.allocation or {}, record.replanned)
    assert "`zerodha_main` (zerodha)" in preview
    assert "`angelone_main` (angelone)" in preview
    for lane in lanes:  # each part planned as its lane's plan, waiting for the one decision
        part = combined_tasks.lane_part(lane, store)
        assert part is not None
        assert store.run(part["run"]).run_status is RunStatus.PLANNED

    combined_tasks.await_decision(store, planned["combined_run"])  # one request, for the whole
    combined_tasks.record_decision(template, store, Decision.REJECTED, by="asha")

    for lane in lanes:
        run = store.run(store.find_run(lane.run_key))
        assert run.run_status is RunStatus.REJECTED
        assert run.approved_by == "asha"
        assert request_approval(lane, store).refused is not None  # the lane's approval
        assert tasks.record_run(lane, store)["status"] == "rejected"
    assert combined_tasks.close(template, store) == {
        "combined_run": planned["combined_run"],
        "status": f"combined run {planned['combined_run']} rejected",
    }
    assert kite.orders_received == angel.orders_received == 0


def _scheduled(dag, day: tuple[int, int]):  # type: ignore[no-untyped-def]
    """``dag.test()`` recorded as the scheduler's run on ``day`` ((month, day)) 2026, 15:10 IST
    (the demo schedule's last trading day of a month): the drift gate acts on scheduled runs.
    Each test its own day: the tests share one Airflow database."""
    from unittest import mock

    import pendulum
    from airflow.models import dagrun
    from airflow.utils.types import DagRunType

    original = dagrun.get_or_create_dagrun

    def as_scheduled(*args, **kwargs):  # type: ignore[no-untyped-def]
        run = original(*args, **kwargs)
        run.run_type = DagRunType.SCHEDULED
        kwargs["session"].commit()
        return run

    with mock.patch.object(dagrun, "get_or_create_dagrun", as_scheduled):
        return dag.test(run_after=pendulum.datetime(2026, *day, 15, 10, tz="Asia/Kolkata"))


def gated_household(demo_copy: Path, **bands: float) -> Path:
    """The combined household with ``trigger: schedule_and_drift`` and ``bands``."""
    path = household(demo_copy, "combined")
    data = yaml.safe_load(path.read_text())
    data["trigger"] = "schedule_and_drift"
    data["policy"].update(bands)
    path.write_text(yaml.safe_dump(data))
    return path


def test_combined_schedule_and_drift_inside_the_whole_bands_skips_every_part(
    airflow_db: Path,
    store,  # type: ignore[no-untyped-def]
    emulators: tuple[KiteEmulator, SmartApiEmulator],
    demo_copy: Path,
) -> None:
    """Each account alone is far off the targets (Zerodha 62% INFY for 34%, AngelOne mostly
    RELIANCE), the whole is inside its bands (ITC 3% short of a 4.5% band): the run ends with
    every part skipped "inside bands", no failure and no order."""
    kite, angel = emulators
    path = gated_household(demo_copy, drift_band_abs_pct=10, drift_band_rel_pct=150)

    dag_run = _scheduled(build_dag(path, load_portfolio(path)), (11, 30))

    assert str(dag_run.state) == "success"
    (combined,) = CombinedStore(store.engine).combined_runs("household")
    assert combined.status == "skipped"
    assert (combined.status_reason or "").startswith("combined drift gate: inside bands")
    assert combined.plan is None
    for run_id in combined.parts.values():
        run = store.run(run_id)
        assert run.run_status is RunStatus.SKIPPED
        assert run.status_reason == combined.status_reason
        assert store.orders(run_id) == []
    assert kite.orders_received == angel.orders_received == 0


def test_combined_schedule_and_drift_outside_the_whole_bands_plans_the_whole(
    airflow_db: Path,
    store,  # type: ignore[no-untyped-def]
    emulators: tuple[KiteEmulator, SmartApiEmulator],
    demo_copy: Path,
) -> None:
    """The whole is outside its bands (ITC 3% short of a band of 2%): the lanes are not gated on
    their own accounts, the whole is planned and split as usual (ITC bought, no INFY)."""
    kite, angel = emulators
    path = gated_household(demo_copy, drift_band_abs_pct=2, drift_band_rel_pct=15)

    dag_run = _scheduled(build_dag(path, load_portfolio(path)), (10, 30))

    assert str(dag_run.state) == "success"
    (combined,) = CombinedStore(store.engine).combined_runs("household")
    assert combined.status == "completed", combined.status_reason
    placed = sides(kite.orders, "tradingsymbol", "transaction_type") | sides(
        angel.orders, "tradingsymbol", "transactiontype"
    )
    assert placed == {("ITC", "BUY")}
    for run_id in combined.parts.values():
        run = store.run(run_id)
        assert run.run_status is RunStatus.COMPLETED, run.status_reason
        assert run.initiator == "scheduled"


def _plan_combined_run(path: Path, store, run: str):  # type: ignore[no-untyped-def]
    """The task bodies without Airflow up to the combined plan: each lane reads and validates,
    then ``combined.plan_trades``. Returns (the combined template lane, the lanes, its result)."""
    from rebalance import combined_tasks, tasks
    from rebalance.wiring import broker_for

    lanes = [
        tasks.Lane(str(path), account, "rebalance_household", run)
        for account in ("zerodha_main", "angelone_main")
    ]
    for lane in lanes:
        tasks.fetch_holdings(lane, store, broker_for(lane, store))
        tasks.validate_snapshot(lane, store)
    template = tasks.Lane(str(path), combined_tasks.GROUP, "rebalance_household", run)
    return template, lanes, combined_tasks.plan(template, store)


def test_tax_report_in_the_combined_mode_estimates_each_part_from_its_own_lots(
    store,  # type: ignore[no-untyped-def]
    emulators: tuple[KiteEmulator, SmartApiEmulator],
    demo_copy: Path,
) -> None:
    """INFY overweight in the whole (only Zerodha holds it): Zerodha's part sells it, and its
    tax estimate comes from Zerodha's FIFO lots (bought in two lots, short-term and long-term);
    AngelOne's part (no sells) carries its own estimate of nothing; the split preview shows both."""
    import datetime as dt

    from rebalance.combined import split_markdown
    from rebalance.history.tax_store import TaxStore
    from rebalance.tax.tradebook import Trade, TradeType

    path = household(demo_copy, "combined")
    data = yaml.safe_load(path.read_text())
    data["targets"] = {**TARGETS, "INFY": 24, "RELIANCE": 34}
    data["policy"]["tax"] = "report"
    path.write_text(yaml.safe_dump(data))
    infy = demo("INFY", 95)
    TaxStore(store.engine).add_trades(
        Trade(
            "zerodha_main",
            "INFY",
            TradeType.BUY,
            day,
            quantity,
            infy.average_price,
            trade_id=f"T-INFY-{quantity}",
            source="test",
        )
        for day, quantity in ((dt.date(2023, 5, 2), 60), (dt.date(2026, 9, 1), 35))
    )

    _, _, planned = _plan_combined_run(path, store, "manual__tax")

    assert planned is not None
    record = CombinedStore(store.engine).combined(planned["combined_run"])
    taxes = {}
    for account, run_id in record.parts.items():
        run = store.run(run_id)
        assert run.run_status is RunStatus.PLANNED, run.status_reason
        taxes[account] = (run.plan or {})["tax"]
        assert taxes[account]["mode"] == "report"
        assert taxes[account]["account"] == account
    zerodha = taxes["zerodha_main"]
    (sold,) = zerodha["orders"]
    assert sold["symbol"] == "INFY"
    assert sold["quantity"] > 0
    assert sold["lots"][0]["acquired_on"] == "2023-05-02"  # FIFO: the oldest lot first
    assert "INFY" not in zerodha["no_tax_data"]
    assert taxes["angelone_main"]["orders"] == []
    preview = split_markdown(record.allocation or {}, record.replanned, taxes)
    assert "tax of `zerodha_main`'s part (its own FIFO lots): Est. tax ₹" in preview
    assert "tax of `angelone_main`'s part" in preview


@pytest.mark.parametrize(
    ("override", "refusal"),
    [
        ({"policy": {"tax": "limit", "max_tax_inr": 1000}}, "policy.tax: limit needs"),
        ({"policy": {"tax": "minimise"}}, "policy.tax: minimise needs"),
        ({"ledger": True}, "zerodha_main has ledger: true, which needs accounts_mode: separate"),
    ],
)
def test_what_the_combined_mode_cannot_do_is_refused_at_load_and_at_run_time(
    store,  # type: ignore[no-untyped-def]
    emulators: tuple[KiteEmulator, SmartApiEmulator],
    demo_copy: Path,
    override: dict,
    refusal: str,
) -> None:
    """``tax: limit | minimise`` and ``ledger: true`` with ``accounts_mode: combined``: the file
    is refused naming the field; a separate file whose manual run picks "Both combined" fails
    before anything is planned or ordered, every part failed with the same reason."""
    from rebalance.errors import ConfigError
    from rebalance.lane import LaneStopped

    kite, angel = emulators
    path = household(demo_copy, "combined")
    data = yaml.safe_load(path.read_text())
    data["policy"].update(override.get("policy", {}))
    if "ledger" in override:
        data["accounts"][0]["ledger"] = True
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as refused:
        load_portfolio(path)
    assert refusal in str(refused.value)

    data["accounts_mode"] = "separate"  # loads; the run's form then picks the combined mode
    path.write_text(yaml.safe_dump(data))
    load_portfolio(path)
    from rebalance import combined_tasks, tasks

    run = "manual__refused"
    params = {"accounts_mode": "combined"}
    lanes = [
        tasks.Lane(str(path), account, "rebalance_household", run, "manual", params)
        for account in ("zerodha_main", "angelone_main")
    ]
    template = tasks.Lane(str(path), combined_tasks.GROUP, "rebalance_household", run, "manual",
                          params)  # fmt: skip
    if "ledger" not in override:  # a ledgered account stops at its fetch without a seed
        from rebalance.wiring import broker_for

        for lane in lanes:
            tasks.fetch_holdings(lane, store, broker_for(lane, store))
            tasks.validate_snapshot(lane, store)
    with pytest.raises(LaneStopped, match=refusal.replace(".", r"\.")):
        combined_tasks.plan(template, store)
    (combined,) = CombinedStore(store.engine).combined_runs("household")
    assert combined.status == "failed"
    assert refusal in (combined.status_reason or "")
    assert kite.orders_received == angel.orders_received == 0


def test_a_lane_of_a_combined_run_is_not_gated_on_its_own_account(demo_copy: Path) -> None:
    """The lane's own gate stands aside exactly when combined.plan_trades gates the whole: a
    combined run of two selected accounts with ``schedule_and_drift``; not in the separate mode,
    not with one account chosen, not with another trigger."""
    from rebalance.combined_tasks import gated_as_whole
    from rebalance.lane import Lane

    path = gated_household(demo_copy)

    def lane(account: str = "zerodha_main", **params: object) -> Lane:
        return Lane(str(path), account, "rebalance_household", "scheduled__1", "scheduled", params)

    assert gated_as_whole(lane())
    assert gated_as_whole(lane("angelone_main"))
    assert not gated_as_whole(lane(accounts_mode="separate"))
    assert not gated_as_whole(lane(accounts=["zerodha_main"]))  # one account: its own gate
    data = yaml.safe_load(path.read_text())
    data["trigger"] = "schedule"
    path.write_text(yaml.safe_dump(data))
    assert not gated_as_whole(lane())
