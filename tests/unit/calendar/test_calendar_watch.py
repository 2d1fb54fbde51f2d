"""The calendar does not run out silently: ``rebalance calendar check`` and the daily
``rebalance_maintenance`` DAG warn a set number of trading days before it ends, through the
alert channels (a real local webhook receiver; the DAG run by Airflow's ``dag.test()``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

import rebalance.cli.calendar  # noqa: F401 - registers the calendar commands
from rebalance.calendar_watch import HorizonStatus, alert_text, check_calendars
from rebalance.cli import app
from rebalance.domain.market import IST

ROOT = Path(__file__).resolve().parents[3]
runner = CliRunner()

# The last trading days of 2026 (XBOM): Dec 25 is Christmas.
# 2026-12-15 (Tue) leaves Dec 16-18, 21-24, 28-31 = 11 trading days after it.


def at(day: str) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(8, 0), IST)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The shipped demo and example portfolios in a private folder."""
    target = tmp_path / "portfolios"
    target.mkdir()
    for name in ("demo.yaml", "example.yaml"):
        shutil.copy(ROOT / "portfolios" / name, target / name)
    return target


def test_ok_while_the_calendar_reaches_far(folder: Path) -> None:
    horizons = check_calendars(folder, at("2026-11-02"), warn_days=10)
    assert {h.status for h in horizons} == {HorizonStatus.OK}
    assert all(h.calendar_end == dt.date(2026, 12, 31) for h in horizons)
    assert alert_text(horizons) == ""


def test_warns_when_n_trading_days_are_left(folder: Path) -> None:
    eleven = check_calendars(folder, at("2026-12-15"), warn_days=10)
    assert [h.trading_days_left for h in eleven] == [11, 11]
    assert {h.status for h in eleven} == {HorizonStatus.OK}
    ten = check_calendars(folder, at("2026-12-16"), warn_days=10)
    assert [h.trading_days_left for h in ten] == [10, 10]
    assert {h.status for h in ten} == {HorizonStatus.WARNING}
    text = alert_text(ten)
    assert "demo (demo.yaml): the trading calendar ends 2026-12-31, 10 trading day(s)" in text
    assert "rebalance calendar update --from LIST" in text


def test_expired_when_the_next_run_is_past_the_calendar(folder: Path) -> None:
    horizons = check_calendars(folder, at("2026-12-31").replace(hour=16), warn_days=10)
    assert {h.status for h in horizons} == {HorizonStatus.EXPIRED}
    assert "the next run is past the known trading calendar" in alert_text(horizons)


def test_an_override_file_extends_the_horizon(folder: Path) -> None:
    (folder / "calendars").mkdir()
    (folder / "calendars" / "nse.yaml").write_text(
        "covers_until: 2027-12-31\nholidays:\n  - {date: 2027-01-26, note: Republic Day}\n"
    )
    demo = folder / "demo.yaml"
    demo.write_text(demo.read_text() + "\nholiday_overrides: calendars/nse.yaml\n")
    by_id = {h.portfolio: h for h in check_calendars(folder, at("2026-12-16"), warn_days=10)}
    assert by_id["demo"].status is HorizonStatus.OK
    assert by_id["demo"].calendar_end == dt.date(2027, 12, 31)
    assert by_id["example"].status is HorizonStatus.WARNING


def test_invalid_portfolio_is_reported_not_fatal(folder: Path) -> None:
    (folder / "broken.yaml").write_text("name: x\n")
    by_id = {h.portfolio: h for h in check_calendars(folder, at("2026-11-02"), warn_days=10)}
    assert by_id["broken"].status is HorizonStatus.INVALID
    assert by_id["demo"].status is HorizonStatus.OK


def test_cli_check_prints_and_exits_1_on_warning(folder: Path) -> None:
    ok = runner.invoke(
        app, ["calendar", "check", "--portfolios", str(folder), "--today", "2026-11-02"]
    )
    assert ok.exit_code == 0, ok.output
    assert "2026-12-31" in ok.stdout
    late = runner.invoke(
        app,
        ["calendar", "check", "--portfolios", str(folder), "--today", "2026-12-16", "--days", "10"],
    )
    assert late.exit_code == 1
    assert "WARNING: demo (demo.yaml)" in late.stderr
    bad = runner.invoke(app, ["calendar", "check", "--portfolios", str(folder), "--today", "x"])
    assert bad.exit_code == 2


def test_warning_window_comes_from_the_environment(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REBALANCE_CALENDAR_WARN_TRADING_DAYS", "20")
    horizons = check_calendars(folder, at("2026-12-02"))
    assert {h.status for h in horizons} == {HorizonStatus.WARNING}
    monkeypatch.setenv("REBALANCE_CALENDAR_WARN_TRADING_DAYS", "ten")
    with pytest.raises(ValueError, match="REBALANCE_CALENDAR_WARN_TRADING_DAYS"):
        check_calendars(folder, at("2026-12-02"))


# --- the maintenance DAG ---------------------------------------------------------------------


class Receiver(BaseHTTPRequestHandler):
    """A webhook endpoint (Slack-compatible JSON ``text``) that keeps what it got."""

    received: ClassVar[list[str]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.received.append(json.loads(self.rfile.read(length))["text"])
        self.send_response(200)
        self.end_headers()


@pytest.fixture
def webhook() -> Iterator[str]:
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def maintenance_dag(folder: Path, webhook: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("REBALANCE_PORTFOLIOS_DIR", str(folder))
    monkeypatch.setenv("REBALANCE_ALERT_WEBHOOK_URL", webhook)  # read when the file is parsed
    bag = DagBag(str(ROOT / "dags" / "rebalance_maintenance.py"))
    assert bag.import_errors == {}
    return bag.dags["rebalance_maintenance"]


@pytest.mark.slow
def test_maintenance_dag_alerts_through_the_webhook(
    airflow_db: Path, folder: Path, webhook: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dag = maintenance_dag(folder, webhook, monkeypatch)
    quiet = dag.test(logical_date=at("2026-11-02"))
    assert str(quiet.state) == "success"
    assert Receiver.received == []
    late = dag.test(logical_date=at("2026-12-16"))
    assert str(late.state) == "failed"
    assert len(Receiver.received) == 1
    message = Receiver.received[0]
    assert "rebalance_maintenance" in message
    assert "Trading calendar running out" in message
    assert "demo (demo.yaml): the trading calendar ends 2026-12-31" in message


def test_maintenance_dag_file_imports_nothing_heavy() -> None:
    code = (
        "import runpy, sys; runpy.run_path(sys.argv[1]);"
        "heavy = [m for m in ('pandas', 'exchange_calendars', 'psycopg', 'kiteconnect',"
        " 'rebalance.calendar_watch', 'rebalance.calendar') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "include")}
    result = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "dags" / "rebalance_maintenance.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == ""
