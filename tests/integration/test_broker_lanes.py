"""A portfolio held at both brokers: one lane per account, through Airflow, against the emulated
Kite Connect and SmartAPI REST APIs with the real client libraries. One account failing does not
stop the other; credentials come from Airflow connections and never reach the record or the logs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from rebalance.approval_operator import request_approval
from rebalance.dag_factory import build_dag
from rebalance.history.status import OrderState, RunStatus
from rebalance.lane import Lane
from rebalance.portfolio import load_portfolio
from rebalance.testing.emulators import Holding, KiteEmulator, SmartApiEmulator

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def demo_account(csv: Path) -> list[Holding]:
    """The demo holdings file as an emulated account (same symbols, quantities and prices)."""
    frame = pd.read_csv(csv)
    return [
        Holding(
            symbol=row.symbol,
            quantity=int(row.quantity),
            average_price=float(row.average_price),
            last_price=float(row.last_price),
            isin=row.isin,
            previous_close=float(row.previous_close),
            token=str(1000 + i),
        )
        for i, row in enumerate(frame.itertuples())
    ]


@pytest.fixture
def emulators(
    demo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[KiteEmulator, SmartApiEmulator]]:
    account = demo_account(demo_copy.parent / "data" / "demo_holdings.csv")
    with KiteEmulator(holdings=account) as kite, SmartApiEmulator(holdings=account) as angel:
        # No default protection: an unpriced order fails loudly, so every send is priced.
        unprotected = {"default_market_protection": "none"}
        monkeypatch.setenv("AIRFLOW_CONN_ZERODHA_TEST", kite.airflow_connection(**unprotected))
        monkeypatch.setenv("AIRFLOW_CONN_ANGELONE_TEST", angel.airflow_connection(**unprotected))
        yield kite, angel


@pytest.fixture
def two_broker_portfolio(demo_copy: Path) -> Path:
    data = yaml.safe_load(demo_copy.read_text())
    data["accounts"] = [
        {"name": "zerodha_main", "broker": "zerodha", "connection_id": "zerodha_test"},
        {"name": "angelone_main", "broker": "angelone", "connection_id": "angelone_test"},
    ]
    data["execution"] = {"mode": "live", "approval": "auto"}
    path = demo_copy.with_name("both.yaml")
    path.write_text(yaml.safe_dump(data))
    return path


def test_one_failing_account_does_not_stop_the_other(
    airflow_db: Path,
    store,  # type: ignore[no-untyped-def]
    emulators: tuple[KiteEmulator, SmartApiEmulator],
    two_broker_portfolio: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kite, angel = emulators
    angel.faults.expired_token = True  # AngelOne's session is refused: that lane must fail alone

    portfolio = load_portfolio(two_broker_portfolio)
    dag_run = build_dag(two_broker_portfolio, portfolio).test()

    assert str(dag_run.state) == "failed"  # someone must look at the AngelOne account
    runs = {r.account: r for r in store.runs("both")}
    zerodha, angelone = runs["zerodha_main"], runs["angelone_main"]

    assert zerodha.status == RunStatus.COMPLETED
    assert zerodha.broker == "zerodha"
    orders = store.orders(zerodha.id)
    assert len(orders) == zerodha.trades > 0
    assert all(o.state == OrderState.COMPLETE for o in orders)
    for order in orders:  # exactly one order per leg reached the emulated broker
        assert kite.orders_for_tag(order.tag) == 1

    assert angelone.status == RunStatus.FAILED
    assert "could not read the account" in angelone.status_reason
    assert store.orders(angelone.id) == []
    assert angel.orders_received == 0

    secrets = [kite.access_token, kite.api_key, angel.pin, angel.totp_secret, angel.api_key]
    recorded = json.dumps([zerodha, angelone], default=str) + caplog.text
    for secret in secrets:
        assert secret not in recorded


def _first_live_run(lane, store, broker) -> dict:  # type: ignore[no-untyped-def]
    from rebalance import tasks
    from rebalance.approval import Decision

    tasks.fetch_holdings(lane, store, broker)
    tasks.validate_snapshot(lane, store)
    planned = tasks.plan_trades(lane, store)
    tasks.record_decision(lane, store, Decision.APPROVED, by="asha")
    tasks.place_orders(lane, store, broker, planned["plan_hash"])
    return planned


def test_a_second_live_run_the_same_day_plans_on_true_quantities_at_zerodha(
    store,  # type: ignore[no-untyped-def]
    emulators: tuple[KiteEmulator, SmartApiEmulator],
    two_broker_portfolio: Path,
) -> None:
    """Zerodha's same-day quantities are read once (positions merged with holdings): a second
    live run the same day is allowed and does not buy the first run's buys again."""
    from rebalance import tasks
    from rebalance.wiring import broker_for

    kite, _ = emulators
    first = Lane(str(two_broker_portfolio), "zerodha_main", "rebalance_both", "manual__1")
    planned = _first_live_run(first, store, broker_for(first, store))
    assert kite.orders_received == planned["trades"] > 0
    before = store.run(planned["run"]).holdings_snapshot().positions.set_index("symbol")["quantity"]
    moved = {
        o.symbol: o.filled_quantity * (1 if o.side == "BUY" else -1)
        for o in store.orders(planned["run"])
    }

    second = Lane(str(two_broker_portfolio), "zerodha_main", "rebalance_both", "manual__2")
    tasks.fetch_holdings(second, store, broker_for(second, store))
    tasks.validate_snapshot(second, store)
    again = tasks.plan_trades(second, store)
    run = store.run(store.find_run(second.run_key))
    assert run.run_status is RunStatus.PLANNED
    after = run.holdings_snapshot().positions.set_index("symbol")["quantity"]
    for symbol, shares in moved.items():  # today's buys counted once, sells gone
        assert after.get(symbol, 0) == before.get(symbol, 0) + shares, symbol
    assert again["trades"] < planned["trades"]


def test_a_second_live_rebalance_the_same_day_is_skipped_at_angelone(
    store,  # type: ignore[no-untyped-def]
    emulators: tuple[KiteEmulator, SmartApiEmulator],
    two_broker_portfolio: Path,
) -> None:
    """AngelOne's same-day quantities are not proven: a second live plan on the same day could
    buy the first run's buys again, so the run is skipped before planning, with its reason."""
    from airflow.sdk.exceptions import AirflowSkipException

    from rebalance import tasks
    from rebalance.wiring import broker_for

    _, angel = emulators
    first = Lane(str(two_broker_portfolio), "angelone_main", "rebalance_both", "manual__1")
    planned = _first_live_run(first, store, broker_for(first, store))
    assert angel.orders_received == planned["trades"] > 0

    second = Lane(str(two_broker_portfolio), "angelone_main", "rebalance_both", "manual__2")
    tasks.fetch_holdings(second, store, broker_for(second, store))
    tasks.validate_snapshot(second, store)
    with pytest.raises(AirflowSkipException, match="already traded in rebalance run"):
        tasks.plan_trades(second, store)
    run = store.run(store.find_run(second.run_key))
    assert run.run_status is RunStatus.SKIPPED
    assert "already traded in rebalance run" in (run.status_reason or "")
    assert run.plan is None
    assert angel.orders_received == planned["trades"]  # nothing more reached the broker
    assert tasks.record_run(second, store)["status"] == "skipped"  # closed, not failed


def test_a_live_dag_run_prices_every_leg_and_completes_by_repricing(
    airflow_db: Path,
    store,  # type: ignore[no-untyped-def]
    emulators: tuple[KiteEmulator, SmartApiEmulator],
    two_broker_portfolio: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both emulators in strict 2026 mode, test connections without a default protection (an
    unpriced order would be refused). The market trades 0.6% above every quote, so each buy's
    0.5% limit rests open to the fill deadline, is cancelled, and fills as a round-1 child."""
    from rebalance.brokers.tags import split_tag
    from rebalance.execution import ExecutionSettings

    fast = ExecutionSettings.for_deadline

    def short(minutes: float, **kw: object) -> ExecutionSettings:  # seconds, not minutes
        settings = fast(minutes, **kw)  # type: ignore[arg-type]
        return ExecutionSettings(
            **{**settings.__dict__, "deadline_seconds": 1.0, "poll_seconds": 0.1}
        )

    monkeypatch.setattr(ExecutionSettings, "for_deadline", staticmethod(short))
    kite, angel = emulators
    portfolio = load_portfolio(two_broker_portfolio)
    for emulator in emulators:
        emulator.faults.market_moves = dict.fromkeys(portfolio.targets, 0.6)

    dag_run = build_dag(two_broker_portfolio, portfolio).test()

    assert str(dag_run.state) == "success"
    runs = {r.account: r for r in store.runs("both")}
    kite_orders = [(o["tag"], o["order_type"], o["price"]) for o in kite.orders]
    angel_orders = [(o["ordertag"], o["ordertype"], o["price"]) for o in angel.orders]
    for account, orders in (("zerodha_main", kite_orders), ("angelone_main", angel_orders)):
        run = runs[account]
        assert run.run_status is RunStatus.COMPLETED, run.status_reason
        legs = store.orders(run.id)
        assert legs
        assert all(kind == "LIMIT" and price > 0 for _, kind, price in orders), orders
        per_leg: dict[str, int] = {}
        for tag, _, _ in orders:
            leg_tag, round_number = split_tag(tag)
            per_leg[leg_tag] = per_leg.get(leg_tag, 0) + 1
            assert round_number <= 1
        assert sorted(tag for tag, _, _ in orders) == sorted({t for t, _, _ in orders})
        for leg in legs:
            assert leg.order_state is OrderState.COMPLETE, leg
            assert leg.filled_quantity == leg.quantity
            assert leg.reprice_round == (1 if leg.side == "BUY" else 0), leg
            assert per_leg[leg.tag] == 1 + leg.reprice_round


def test_a_non_ddpi_account_names_what_to_authorise_and_sells_only_that(
    store,  # type: ignore[no-untyped-def]
    emulators: tuple[KiteEmulator, SmartApiEmulator],
    two_broker_portfolio: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No DDPI: the preview lists the unauthorised shares the plan wants to sell (symbol,
    shares, where) before approval; the plan sells at most what is authorised today, and no
    sell above that reaches the broker (the emulator would answer HTTP 428)."""
    from rebalance import tasks
    from rebalance.approval import Decision
    from rebalance.wiring import broker_for

    kite, _ = emulators
    kite.ddpi = False  # sells need today's CDSL TPIN authorisation
    connection = {
        "conn_type": "generic",
        "login": kite.api_key,
        "password": kite.access_token,
        "extra": {
            "root": kite.url,
            "default_market_protection": "none",
            "demat_authorisation": "tpin",
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_ZERODHA_TEST", json.dumps(connection))
    data = yaml.safe_load(two_broker_portfolio.read_text())
    data["execution"]["approval"] = "manual"
    two_broker_portfolio.write_text(yaml.safe_dump(data))

    def plan_and_preview(run_id: str) -> tuple[Lane, str, dict]:  # type: ignore[type-arg]
        lane = Lane(str(two_broker_portfolio), "zerodha_main", "rebalance_both", run_id)
        tasks.fetch_holdings(lane, store, broker_for(lane, store))
        tasks.validate_snapshot(lane, store)
        planned = tasks.plan_trades(lane, store)
        request = request_approval(lane, store)
        assert request.preview is not None
        return lane, request.preview, planned

    _, preview, planned = plan_and_preview("manual__1")
    assert "### Sell authorisation needed" in preview
    assert "zerodha's own charge estimate ₹" in preview  # Kite's /charges/orders, beside ours
    assert "Kite > Holdings > Authorisation (CDSL TPIN)" in preview
    run = store.run(planned["run"])
    assert not [o for o in run.plan["orders"] if o["side"] == "SELL"]  # nothing authorised
    rows = preview.split("### Sell authorisation needed")[1].split("### Orders")[0]
    cells = [line.split("|") for line in rows.splitlines() if line.startswith("| ")]
    listed = {c[1].strip(): int(c[2]) for c in cells if c[2].strip().isdigit()}
    assert listed, preview
    symbol, unauthorised = max(listed.items(), key=lambda item: item[1])
    authorised = max(1, unauthorised // 2)

    kite.authorise(symbol, authorised)  # the person authorises part of it
    lane, preview, planned = plan_and_preview("manual__2")
    run = store.run(planned["run"])
    sells = [o for o in run.plan["orders"] if o["side"] == "SELL"]
    assert [o["symbol"] for o in sells] == [symbol]
    assert 0 < sells[0]["quantity"] <= authorised
    tasks.record_decision(lane, store, Decision.APPROVED, by="asha")
    tasks.place_orders(lane, store, broker_for(lane, store), planned["plan_hash"])
    sent = [o for o in kite.orders if o["transaction_type"] == "SELL"]
    assert [(o["tradingsymbol"], o["quantity"]) for o in sent] == [(symbol, sells[0]["quantity"])]
    assert all(o["status"] != "REJECTED" for o in kite.orders), kite.orders


def _manual_queue_portfolio(path: Path, accounts: list[str], approval: str) -> None:
    data = yaml.safe_load(path.read_text())
    data["execution"]["mode"] = "manual_queue"
    data["execution"]["approval"] = approval
    data["accounts"] = [a for a in data["accounts"] if a["name"] in accounts]
    path.write_text(yaml.safe_dump(data))


def _planned_manual_queue(store, path: Path, account: str):  # type: ignore[no-untyped-def]
    """A manual-queue lane of ``account`` alone (approval manual): read, validated, planned."""
    from rebalance import tasks
    from rebalance.wiring import broker_for

    _manual_queue_portfolio(path, [account], "manual")
    lane = Lane(str(path), account, "rebalance_both", "manual__1")
    broker = broker_for(lane, store)
    tasks.fetch_holdings(lane, store, broker)
    tasks.validate_snapshot(lane, store)
    return lane, broker, tasks.plan_trades(lane, store)


def _place_by_hand(broker, baskets: list[str]) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    """What the person does: every row of the Kite baskets placed (here through the API)."""
    import csv

    from rebalance.brokers.base import OrderRequest
    from rebalance.domain.market import Side

    rows = [row for path in baskets for row in csv.DictReader(Path(path).read_text().splitlines())]
    for row in rows:
        broker.place_order(
            OrderRequest(
                symbol=row["tradingsymbol"],
                exchange=row["exchange"],
                side=Side(row["transaction_type"]),
                quantity=int(row["quantity"]),
                tag="BYHAND",
                price=float(row["price"]),
            )
        )
    return rows


def test_manual_queue_exports_the_basket_waits_and_reconciles(
    store,  # type: ignore[no-untyped-def]
    emulators: tuple[KiteEmulator, SmartApiEmulator],
    two_broker_portfolio: Path,
) -> None:
    """execution.mode: manual_queue: the approved plan becomes a Kite basket CSV in the state dir;
    place_orders says it waits for a person (WaitForPerson: the operator defers, no worker is
    held) until the basket is marked placed, then reads the holdings and records each leg's
    fill. The pipeline itself sends nothing."""
    from rebalance import tasks
    from rebalance.approval import Decision
    from rebalance.execution import mark_placed
    from rebalance.lane import NotResumable
    from rebalance.manual_queue import WaitForPerson
    from rebalance.resume import resume_run

    kite, _ = emulators
    lane, broker, planned = _planned_manual_queue(store, two_broker_portfolio, "zerodha_main")
    preview = request_approval(lane, store).preview or ""
    run_id = planned["run"]
    folder = f"baskets/{lane.portfolio.id}/{run_id}"
    assert "Manual queue: once approved, the basket CSVs are written to" in preview
    assert folder in preview
    tasks.record_decision(lane, store, Decision.APPROVED, by="asha")

    with pytest.raises(WaitForPerson, match=f"rebalance mark-placed {run_id}"):
        tasks.place_orders(lane, store, broker, planned["plan_hash"])
    baskets = store.run(run_id).placement["manual_queue"]["baskets"]
    assert all(folder in path for path in baskets)
    assert kite.orders_received == 0  # the pipeline sends nothing itself
    with pytest.raises(WaitForPerson):  # asked again before anyone marked it: still waiting
        tasks.place_orders(lane, store, broker, planned["plan_hash"])
    assert store.status(run_id) is RunStatus.PLACING
    with pytest.raises(NotResumable, match=f"rebalance mark-placed {run_id}"):
        resume_run(lane, store, broker)  # `rebalance resume` says what to do instead

    rows = _place_by_hand(broker, baskets)
    assert len(rows) == planned["trades"] > 0
    mark_placed(store, run_id, "asha")
    outcome = tasks.place_orders(lane, store, broker, planned["plan_hash"])
    assert outcome["status"] == "placed"
    legs = store.orders(run_id)
    assert all(leg.order_state is OrderState.COMPLETE for leg in legs), legs
    assert all(leg.filled_quantity == leg.quantity for leg in legs)
    assert kite.orders_received == len(rows)  # only the person's orders
    assert tasks.record_run(lane, store, broker)["status"] == "completed"


def test_manual_queue_dag_run_waits_deferred_not_on_a_worker(
    airflow_db: Path,
    store,  # type: ignore[no-untyped-def]
    emulators: tuple[KiteEmulator, SmartApiEmulator],
    two_broker_portfolio: Path,
) -> None:
    """The same through Airflow (dag.test runs the trigger in line, as the triggerer would):
    while nobody has marked the basket, place_orders has deferred (ManualQueueTrigger polls the
    history database; no worker slot is held): Airflow's thread is in the trigger, not in the
    task; once marked, the task resumes and reconciles."""
    import sys
    import threading
    import time
    import traceback

    from rebalance.execution import mark_placed
    from rebalance.wiring import open_store

    kite, _ = emulators
    _manual_queue_portfolio(two_broker_portfolio, ["zerodha_main"], "auto")
    seen: dict = {}  # type: ignore[type-arg]

    def person() -> None:  # waits for the basket, sees the task deferred, places, marks
        from rebalance.wiring import broker_for

        history = open_store()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            runs = history.runs("both")
            placement = (history.run(runs[0].id).placement or {}) if runs else {}
            if placement.get("manual_queue"):
                break
            time.sleep(0.2)
        else:
            return
        run_id = runs[0].id
        main = threading.main_thread().ident
        while time.monotonic() < deadline:  # what Airflow's main thread is doing meanwhile
            frame = sys._current_frames().get(main or 0)
            stack = {f.f_code.co_name for f, _ in traceback.walk_stack(frame)} if frame else set()
            if "run_trigger_in_process" in stack:
                seen["stack"] = stack
                break
            time.sleep(0.2)
        seen["run"] = run_id
        seen["sent_while_waiting"] = kite.orders_received
        lane = Lane(str(two_broker_portfolio), "zerodha_main", "rebalance_both", "x")
        seen["rows"] = _place_by_hand(
            broker_for(lane, history), placement["manual_queue"]["baskets"]
        )
        mark_placed(history, run_id, "asha")

    helper = threading.Thread(target=person, daemon=True)
    helper.start()
    dag_run = build_dag(two_broker_portfolio, load_portfolio(two_broker_portfolio)).test()
    helper.join(30)

    assert str(dag_run.state) == "success"
    # While waiting, the task had returned (deferred) and only the trigger ran: no task code
    # (LaneStepOperator.execute, place_orders) was on the stack.
    assert "_run_inline_trigger" in seen["stack"], seen  # the trigger, as a triggerer runs it
    assert not {"execute", "place_orders", "_place_or_defer"} & seen["stack"], seen
    assert seen["sent_while_waiting"] == 0
    run = store.run(seen["run"])
    assert run.run_status is RunStatus.COMPLETED, run.status_reason
    legs = store.orders(run.id)
    assert len(legs) == len(seen["rows"]) > 0
    assert all(leg.order_state is OrderState.COMPLETE for leg in legs), legs


def test_angelone_manual_queue_basket_carries_symbol_tokens(
    store,  # type: ignore[no-untyped-def]
    emulators: tuple[KiteEmulator, SmartApiEmulator],
    two_broker_portfolio: Path,
) -> None:
    """AngelOne's basket rows carry the SmartAPI symbol token of each symbol, from the
    instrument master the adapter loads (the emulator serves one)."""
    import csv

    from rebalance import tasks
    from rebalance.approval import Decision
    from rebalance.manual_queue import WaitForPerson

    _, angel = emulators
    tokens = {row["symbol"]: row["token"] for row in angel.instrument_master()}
    lane, broker, planned = _planned_manual_queue(store, two_broker_portfolio, "angelone_main")
    tasks.record_decision(lane, store, Decision.APPROVED, by="asha")
    with pytest.raises(WaitForPerson):
        tasks.place_orders(lane, store, broker, planned["plan_hash"])
    baskets = store.run(planned["run"]).placement["manual_queue"]["baskets"]
    rows = [row for path in baskets for row in csv.DictReader(Path(path).read_text().splitlines())]
    assert len(rows) == planned["trades"] > 0
    for row in rows:
        assert row["symboltoken"] == tokens[row["tradingsymbol"]], row
    assert angel.orders_received == 0


def test_a_failing_broker_estimate_is_said_not_fatal(
    store,  # type: ignore[no-untyped-def]
    emulators: tuple[KiteEmulator, SmartApiEmulator],
    two_broker_portfolio: Path,
) -> None:
    from rebalance import tasks
    from rebalance.wiring import broker_for

    kite, _ = emulators
    data = yaml.safe_load(two_broker_portfolio.read_text())
    data["execution"]["approval"] = "manual"
    two_broker_portfolio.write_text(yaml.safe_dump(data))
    lane = Lane(str(two_broker_portfolio), "zerodha_main", "rebalance_both", "manual__1")
    tasks.fetch_holdings(lane, store, broker_for(lane, store))
    tasks.validate_snapshot(lane, store)
    tasks.plan_trades(lane, store)
    kite.faults.expired_token = True  # the estimate call is refused
    request = request_approval(lane, store)
    assert request.preview is not None
    assert "the broker's own charge estimate is unavailable (AuthError); ours ₹" in request.preview
