"""The watch's service on the paper broker and a real PostgreSQL, day by day (no Airflow).

At most one triggered run per N trading days; one alert per breach episode, not every day; an
expired session is "not read" with one "log in" notice a day; a retry of the day sends nothing
twice.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import yaml

from rebalance.brokers.base import AuthError, Broker
from rebalance.brokers.factory import make_broker
from rebalance.calendar import trading_calendar
from rebalance.drift.record import NotReadReason, WatchAction, WatchStatus
from rebalance.drift_watch import decide_portfolio, read_account
from rebalance.portfolio import Portfolio, load_portfolio

ROOT = Path(__file__).resolve().parents[2]
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def portfolio(tmp_path: Path, trigger: Any) -> tuple[Path, Portfolio]:
    data = yaml.safe_load((ROOT / "portfolios" / "demo.yaml").read_text())
    data["trigger"] = trigger
    shutil.copytree(ROOT / "portfolios" / "data", tmp_path / "data")
    path = tmp_path / "watched.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path, load_portfolio(path)


def at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(10, 0), IST)


class Watch:
    """One portfolio's watch, day after day, recording the notices it sends."""

    def __init__(self, store: Any, path: Path, p: Portfolio, tmp_path: Path) -> None:
        self.store, self.path, self.portfolio, self.tmp = store, path, p, tmp_path
        self.sent: list[str] = []
        self.expired = False

    def connect(self) -> Broker:
        if self.expired:
            raise AuthError("zerodha", "the access token has expired; log in again")
        account = self.portfolio.accounts[0]
        return make_broker(account, None, state_dir=self.tmp / "state", portfolio_file=self.path)

    def notify(self, text: str) -> bool:
        self.sent.append(text)
        return True

    def day(self, day: dt.date):  # type: ignore[no-untyped-def]
        record = read_account(self.portfolio, "paper", self.connect, now=at(day), store=self.store)
        return decide_portfolio(
            self.store,
            self.portfolio,
            [record],
            calendar=trading_calendar(),
            notify=self.notify,
        )


def test_at_most_one_triggered_run_per_n_trading_days(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, p = portfolio(tmp_path, {"mode": "drift", "min_trading_days_between": 3})
    watch = Watch(store, path, p, tmp_path)
    # Mon 16 .. Fri 20 November 2026, then Mon 23: all trading days.
    days = [dt.date(2026, 11, d) for d in (16, 17, 18, 19, 20, 23)]
    actions = [watch.day(d) for d in days]

    assert [o.decision.action for o in actions] == [
        WatchAction.TRIGGER,
        WatchAction.TOO_SOON,
        WatchAction.TOO_SOON,
        WatchAction.TRIGGER,
        WatchAction.TOO_SOON,
        WatchAction.TOO_SOON,
    ]
    assert [o.event_extra is not None for o in actions] == [True, False, False, True, False, False]
    assert "the next triggered run can be on 2026-11-19" in actions[1].decision.reason
    # One breach episode: one alert, on its first day.
    assert len(watch.sent) == 1
    assert "Drift breach in Demo Nifty Ten" in watch.sent[0]
    assert "a rebalance run has been triggered" in watch.sent[0]
    records = store.drift_records(p.id)
    assert [r.alerted for r in records] == [True, False, False, False, False, False]
    assert {r.breach_since for r in records} == {days[0]}


def test_a_retry_the_same_day_sends_and_triggers_nothing_twice(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, p = portfolio(tmp_path, "drift")
    watch = Watch(store, path, p, tmp_path)
    first = watch.day(dt.date(2026, 11, 16))
    again = watch.day(dt.date(2026, 11, 16))

    assert first.event_extra is not None
    assert again.event_extra is None
    assert len(watch.sent) == 1
    (record,) = store.drift_records(p.id)
    assert record.action is WatchAction.TRIGGER
    assert record.alerted


def test_an_expired_session_is_not_read_with_one_login_notice_a_day(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, p = portfolio(tmp_path, "schedule")
    watch = Watch(store, path, p, tmp_path)
    watch.expired = True
    day = dt.date(2026, 11, 16)
    outcome = watch.day(day)
    watch.day(day)  # a retry of the watch
    watch.day(dt.date(2026, 11, 17))

    assert outcome.decision.action is WatchAction.NOT_READ
    (first, second) = store.drift_records(p.id)
    assert first.status is WatchStatus.NOT_READ
    assert first.not_read_reason is NotReadReason.SESSION_EXPIRED
    assert first.login_notice_sent
    assert second.login_notice_sent
    assert len(watch.sent) == 2  # one a day, not one per retry
    assert "session expired for account paper" in watch.sent[0]


def test_schedule_mode_alerts_and_waits_for_the_schedule(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, p = portfolio(tmp_path, "schedule")
    watch = Watch(store, path, p, tmp_path)
    outcome = watch.day(dt.date(2026, 11, 16))

    assert outcome.decision.action is WatchAction.WAIT_FOR_SCHEDULE
    assert outcome.event_extra is None
    (text,) = watch.sent
    assert "waiting for the next scheduled run" in text
    assert "ITC" in text


def test_rebalance_drift_prints_the_history(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from rebalance.cli import _register_commands, app

    path, p = portfolio(tmp_path, "drift")
    today = dt.datetime.now(IST).date()
    Watch(store, path, p, tmp_path).day(today)
    _register_commands()

    result = CliRunner().invoke(app, ["drift", "--portfolio", p.id, "--days", "3"])

    assert result.exit_code == 0, result.output
    assert f"{today}  paper" in result.output
    assert "trigger (alerted)" in result.output
    assert f"{p.id} / paper" in result.output
    empty = CliRunner().invoke(app, ["drift", "--portfolio", "nobody"])
    assert empty.exit_code == 0
    assert "no drift records for portfolio 'nobody'" in empty.output


def test_through_the_kite_emulator_an_expired_token_is_not_read(tmp_path: Path) -> None:
    """The real kiteconnect client against the Kite emulator: read, then the morning's expired
    token ("TokenException") is "not read (session_expired)", not an exception."""
    from rebalance.brokers.ratelimit import UNLIMITED
    from rebalance.brokers.retry import RetryPolicy
    from rebalance.brokers.zerodha import ZerodhaBroker
    from rebalance.testing.emulators import KiteEmulator
    from rebalance.testing.emulators._server import fake_credential

    data = yaml.safe_load((ROOT / "portfolios" / "demo.yaml").read_text())
    data["accounts"] = [{"name": "kite", "broker": "zerodha", "connection_id": "kite"}]
    data["targets"] = ["RELIANCE", "HDFCBANK", "INFY", "TCS"]  # what the emulator holds
    path = tmp_path / "kite.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    p = load_portfolio(path)
    key, token = fake_credential("kite-key"), fake_credential("kite-token")
    with KiteEmulator(
        api_key=key,
        access_token=token,
        api_secret=fake_credential("kite-secret"),
        request_token=fake_credential("kite-request"),
    ) as kite:

        def connect() -> Broker:
            return ZerodhaBroker(
                key,
                token,
                root=kite.url,
                timeout=0.5,
                limits=UNLIMITED,
                retry=RetryPolicy(attempts=2, base_delay=0.0, max_delay=0.0),
                sleep=lambda _s: None,
            )

        now = at(dt.date(2026, 11, 16))
        read = read_account(p, "kite", connect, now=now)
        kite.faults.expired_token = True
        expired = read_account(p, "kite", connect, now=now)

    assert read.status is WatchStatus.READ, read.detail
    assert read.total_drift is not None
    assert read.positions
    assert expired.status is WatchStatus.NOT_READ
    assert expired.not_read_reason is NotReadReason.SESSION_EXPIRED
    assert token not in (expired.detail or "")
