"""Two portfolios in one Zerodha account (emulated Kite Connect, the real client), each with a
ledger: the folder accepts them only with ``ledger: true`` on both; a run before the seed stops
and asks for it; each portfolio then plans on its own part and its fills move its own ledger; a
trade made outside the pipeline stops the next run with the difference, until a person resolves
it with ``rebalance ledger resolve``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rebalance.accounts.ledger import OUTSIDE
from rebalance.cli import _register_commands, app
from rebalance.dag_factory import build_dag, folder_entries
from rebalance.history.status import RunStatus
from rebalance.ledgers import ledger_of
from rebalance.portfolio import load_portfolio
from rebalance.testing.emulators import KiteEmulator
from rebalance.testing.emulators._server import DEMO_HOLDINGS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
KEY = "zerodha/zerodha_test"


@pytest.fixture
def kite(monkeypatch: pytest.MonkeyPatch) -> Iterator[KiteEmulator]:
    with KiteEmulator(cash=100_000.0, holdings=list(DEMO_HOLDINGS)) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ZERODHA_TEST", emulator.airflow_connection())
        yield emulator


def write(folder: Path, name: str, targets: dict[str, int], ledger: bool = True) -> Path:
    account = {"name": "main", "broker": "zerodha", "connection_id": "zerodha_test"}
    data = {
        "name": name.upper(),
        "targets": targets,
        "policy": {"rebalance_budget_pct": 50, "max_position_weight_pct": 60},
        "accounts": [{**account, "ledger": ledger}],
        "execution": {"mode": "live", "approval": "auto"},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_two_portfolios_share_one_account_through_ledgers(
    airflow_db: Path,
    store,  # type: ignore[no-untyped-def]
    kite: KiteEmulator,
    demo_copy: Path,
) -> None:
    _register_commands()
    folder = demo_copy.parent
    demo_copy.unlink()
    a = write(folder, "a", {"INFY": 60, "TCS": 40})
    b = write(folder, "b", {"HDFCBANK": 50, "RELIANCE": 50}, ledger=False)
    (refused,) = [e for e in folder_entries(folder) if e.problems]
    assert refused.path == b
    assert "a.yaml" in refused.problems[0]
    assert "ledger: true" in refused.problems[0]
    b = write(folder, "b", {"HDFCBANK": 50, "RELIANCE": 50})
    assert all(not e.problems for e in folder_entries(folder))

    # before the seed: the lane stops, nothing planned or ordered
    assert str(build_dag(a, load_portfolio(a)).test().state) == "failed"
    (first,) = store.runs("a")
    assert first.run_status is RunStatus.INVALID
    assert "rebalance ledger seed" in (first.status_reason or "")
    assert kite.orders_received == 0

    cli("ledger", "seed", str(a), "main", "--share", "INFY=50", "--share", "TCS=10",
        "--cash", "40000", "--by", "asha")  # fmt: skip
    cli("ledger", "seed", str(b), "main", "--share", "HDFCBANK=60", "--share", "RELIANCE=120",
        "--cash", "40000", "--by", "asha")  # fmt: skip
    ledger = ledger_of(store, KEY)
    assert ledger.shares(OUTSIDE) == {"INFY": 45, "TCS": 10}
    assert ledger.cash(OUTSIDE) == pytest.approx(20_000.0)

    assert str(build_dag(a, load_portfolio(a)).test().state) == "success"
    run = next(r for r in store.runs("a") if r.id != first.id)
    assert run.run_status is RunStatus.COMPLETED, run.status_reason
    held = {p["symbol"]: p["quantity"] for p in (run.snapshot or {})["positions"]}
    assert held["INFY"] == 50  # its own part, not the account's 95
    assert held.get("HDFCBANK", 0) == 0  # b's shares are not a's
    assert (run.snapshot or {})["cash"] == pytest.approx(40_000.0)
    legs = store.orders(run.id)
    assert legs
    assert {leg.symbol for leg in legs} <= {"INFY", "TCS"}
    after = ledger_of(store, KEY)
    for leg in legs:
        sign = 1 if leg.side == "BUY" else -1
        before = {"INFY": 50, "TCS": 10}[leg.symbol]
        assert after.shares("a")[leg.symbol] == before + sign * leg.filled_quantity
    assert after.shares("b") == {"HDFCBANK": 60, "RELIANCE": 120}  # untouched

    # a trade outside the pipeline: the next run stops with the difference, never guesses
    kite.holdings["HDFCBANK"].quantity += 5
    assert str(build_dag(b, load_portfolio(b)).test().state) == "failed"
    (stopped,) = store.runs("b")
    assert stopped.run_status is RunStatus.INVALID
    assert "HDFCBANK" in (stopped.status_reason or "")
    assert "+5 unexplained" in (stopped.status_reason or "")
    assert "HDFCBANK" in cli("ledger", "show", str(b), "main")
    cli("ledger", "resolve", str(b), "main", "--symbol", "HDFCBANK", "--part", "b=5",
        "--by", "asha", "--reason", "bought by hand for b")  # fmt: skip
    assert ledger_of(store, KEY).shares("b")["HDFCBANK"] == 65
    # a's charges as estimated and as the broker debited them differ: a cash difference, shown
    # and resolved by a person like any other (here: the estimate's excess is a's)
    ledger = ledger_of(store, KEY)
    broker_cash = (stopped.snapshot or {})["ledger"]["broker_cash"]
    gap = broker_cash - sum(ledger.cash(p) for p in ledger.portfolios)
    if abs(gap) > 1.0:
        assert "cash:" in (stopped.status_reason or "")
        cli("ledger", "resolve", str(b), "main", "--cash-difference", "--part", f"a={gap:.2f}",
            "--by", "asha", "--reason", "a's charges as debited")  # fmt: skip
    assert "no differences" in cli("ledger", "show", str(b), "main")
    assert str(build_dag(b, load_portfolio(b)).test().state) == "success"
    latest = store.runs("b")[0]
    assert latest.run_status is RunStatus.COMPLETED, latest.status_reason
    assert {p["symbol"]: p["quantity"] for p in (latest.snapshot or {})["positions"]}[
        "HDFCBANK"
    ] == 65


def test_the_charges_difference_after_real_trades_is_settled_automatically(
    airflow_db: Path,
    store,  # type: ignore[no-untyped-def]
    kite: KiteEmulator,
    demo_copy: Path,
) -> None:
    """The broker debits other charges than the estimate (the emulator's contract-note charges):
    the next run's reconciliation settles the cash gap within the charges tolerance as an
    automatic "charges difference" entry with the amounts, and plans on; shares never."""
    from rebalance.accounts.ledger import CHARGES_BY, CHARGES_DIFFERENCE, charges_tolerance

    _register_commands()
    folder = demo_copy.parent
    demo_copy.unlink()
    a = write(folder, "a", {"INFY": 60, "TCS": 40})
    b = write(folder, "b", {"HDFCBANK": 50, "RELIANCE": 50})
    assert str(build_dag(a, load_portfolio(a)).test().state) == "failed"  # asks for the seed
    cli("ledger", "seed", str(a), "main", "--share", "INFY=50", "--share", "TCS=10",
        "--cash", "40000", "--by", "asha")  # fmt: skip
    cli("ledger", "seed", str(b), "main", "--share", "HDFCBANK=60", "--share", "RELIANCE=120",
        "--cash", "40000", "--by", "asha")  # fmt: skip
    assert str(build_dag(a, load_portfolio(a)).test().state) == "success"
    first = max(store.runs("a"), key=lambda r: r.id)
    assert first.run_status is RunStatus.COMPLETED, first.status_reason
    legs = [leg for leg in store.orders(first.id) if leg.filled_quantity]
    assert legs
    estimated = sum(leg.charges * leg.filled_quantity / leg.quantity for leg in legs)
    ledger = ledger_of(store, KEY)
    gap = kite.cash - sum(ledger.cash(p) for p in ledger.portfolios)
    assert 1.0 < abs(gap) <= charges_tolerance(estimated)  # the estimate missed the debit

    assert str(build_dag(b, load_portfolio(b)).test().state) == "success"

    (run,) = store.runs("b")  # b's first run: the seed came before it
    assert run.run_status is RunStatus.COMPLETED, run.status_reason
    settled = [e for e in ledger_of(store, KEY).entries if e.by == CHARGES_BY]
    assert [e.portfolio for e in settled] == ["a"]  # only a traded since the seed
    (entry,) = settled
    assert entry.cash == pytest.approx(gap, abs=0.01)
    assert entry.note.startswith(CHARGES_DIFFERENCE)
    assert f"₹{gap:+,.2f}" in entry.note
    assert (run.snapshot or {})["ledger"]["differences"] == []  # b planned on a clean ledger
