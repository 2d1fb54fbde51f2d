"""The watch's decisions: inside bands, breach -> trigger once, at most once per N trading days,
the schedule_and_drift gate, one alert per breach episode, one login notice a day."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest
from drift_support import WeekdayCalendar, snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalance.drift.config import DriftAlerts, Trigger, TriggerMode
from rebalance.drift.measure import DriftMeasurement, measure_drift
from rebalance.drift.record import DriftRecord, NotReadReason, WatchAction, WatchStatus
from rebalance.drift.trigger import (
    Reading,
    RunKind,
    breach_alert_text,
    decide_alert,
    decide_watch,
    gate_run,
    last_rebalance_day,
    login_notice_due,
    login_notice_text,
    nth_trading_day_after,
    trading_days_since,
)
from rebalance.policy import Policy

CAL = WeekdayCalendar(holidays=[date(2026, 11, 24)])  # a Tuesday holiday in the test week
DRIFT = Trigger(mode=TriggerMode.DRIFT, min_trading_days_between=5)
ALERTS = DriftAlerts()
TARGETS = {"INFY": 0.5, "TCS": 0.5}


def measured(infy_quantity: int) -> DriftMeasurement:
    """INFY and TCS at 100 each, 100 TCS held: 100 INFY is on target, 110 is +2.4% (breach)."""
    rows = [
        {"symbol": "INFY", "quantity": infy_quantity, "last_price": 100.0},
        {"symbol": "TCS", "quantity": 100, "last_price": 100.0},
    ]
    return measure_drift(snapshot(rows), TARGETS, Policy())


INSIDE = measured(100)
BREACH = measured(110)


def reading(m: DriftMeasurement, account: str = "zerodha_main") -> Reading:
    return Reading(account, measurement=m)


def test_fixtures_are_what_they_say() -> None:
    assert not INSIDE.breached
    assert BREACH.breached
    assert [s.symbol for s in BREACH.outside] == ["INFY", "TCS"]


@pytest.mark.parametrize("mode", list(TriggerMode))
def test_inside_bands_nothing_to_do(mode: TriggerMode) -> None:
    decision = decide_watch(
        Trigger(mode=mode),
        [reading(INSIDE)],
        today=date(2026, 11, 25),
        last_rebalance=None,
        calendar=CAL,
    )
    assert decision.action is WatchAction.INSIDE_BANDS
    assert decision.reason.startswith("inside bands, nothing to do: zerodha_main total drift")


def test_a_breach_triggers_once_then_waits_n_trading_days() -> None:
    days = CAL.trading_days_between(date(2026, 11, 16), date(2026, 12, 4))
    triggered: list[date] = []
    for day in days:  # out of band every day: nothing brings it back
        decision = decide_watch(
            DRIFT,
            [reading(BREACH)],
            today=day,
            last_rebalance=max(triggered, default=None),
            calendar=CAL,
        )
        if decision.action is WatchAction.TRIGGER:
            triggered.append(day)
        else:
            assert decision.action is WatchAction.TOO_SOON
            assert "fewer than min_trading_days_between 5" in decision.reason
    # Mon 16 Nov triggers; its 5th trading day after is Mon 23 Nov; then 25, 26, 27, 30 Nov
    # and 1 Dec (Tue 24 Nov is a holiday): 1 Dec.
    assert triggered == [date(2026, 11, 16), date(2026, 11, 23), date(2026, 12, 1)]
    first = decide_watch(
        DRIFT, [reading(BREACH)], today=date(2026, 11, 16), last_rebalance=None, calendar=CAL
    )
    assert "INFY +2.38% (band 2.00%)" in first.reason
    assert first.reason.endswith("a rebalance run is triggered")


def test_too_soon_names_the_next_possible_day() -> None:
    decision = decide_watch(
        DRIFT,
        [reading(BREACH)],
        today=date(2026, 11, 23),
        last_rebalance=date(2026, 11, 20),  # a Friday: Mon 23 is 1 trading day later
        calendar=CAL,
    )
    assert decision.action is WatchAction.TOO_SOON
    assert decision.next_possible == date(2026, 11, 30)  # Tue 24 is a holiday
    assert "1 trading day(s) ago" in decision.reason
    assert "the next triggered run can be on 2026-11-30" in decision.reason


@pytest.mark.parametrize("mode", [TriggerMode.SCHEDULE, TriggerMode.SCHEDULE_AND_DRIFT])
def test_schedule_modes_never_trigger_from_the_watch(mode: TriggerMode) -> None:
    decision = decide_watch(
        Trigger(mode=mode),
        [reading(BREACH)],
        today=date(2026, 11, 25),
        last_rebalance=None,
        calendar=CAL,
    )
    assert decision.action is WatchAction.WAIT_FOR_SCHEDULE
    assert f"trigger: {mode}, so the next scheduled run rebalances" in decision.reason


def test_accounts_not_read() -> None:
    expired = Reading("zerodha_main", not_read=NotReadReason.SESSION_EXPIRED)
    only = decide_watch(
        DRIFT, [expired], today=date(2026, 11, 25), last_rebalance=None, calendar=CAL
    )
    assert only.action is WatchAction.NOT_READ
    assert "zerodha_main not read (session_expired)" in only.reason
    mixed = decide_watch(
        DRIFT,
        [expired, reading(INSIDE, "angelone_main")],
        today=date(2026, 11, 25),
        last_rebalance=None,
        calendar=CAL,
    )
    assert mixed.action is WatchAction.INSIDE_BANDS
    assert "not read" in mixed.reason
    breach = decide_watch(
        DRIFT,
        [expired, reading(BREACH, "angelone_main")],
        today=date(2026, 11, 25),
        last_rebalance=None,
        calendar=CAL,
    )
    assert breach.action is WatchAction.TRIGGER
    assert "angelone_main: INFY" in breach.reason
    with pytest.raises(ValueError, match="measured or not read"):
        Reading("x")


@st.composite
def watch_histories(draw: st.DrawFn) -> tuple[int, list[tuple[date, bool]], set[date]]:
    """N, the watch's days (a random subset of trading days) with breach flags, and the days
    a run started for another reason (a scheduled or manual run)."""
    n = draw(st.integers(1, 12))
    days = CAL.trading_days_between(date(2026, 1, 1), date(2026, 6, 30))
    start = draw(st.integers(0, len(days) - 80))
    window = days[start : start + 80]
    watched = [d for d in window if draw(st.booleans()) or draw(st.booleans())]
    flags = [(d, draw(st.floats(0, 1)) < 0.7) for d in watched]
    runs = {d for d in window if draw(st.floats(0, 1)) < 0.05}
    return n, flags, runs


@settings(max_examples=300, deadline=None)
@given(watch_histories())
def test_at_most_one_trigger_per_n_trading_days(
    history: tuple[int, list[tuple[date, bool]], set[date]],
) -> None:
    n, flags, runs = history
    trigger = Trigger(mode=TriggerMode.DRIFT, min_trading_days_between=n)
    records: list[DriftRecord] = []
    for day, breached in flags:
        started = [d for d in runs if d < day]  # runs of earlier days are in the history
        last = last_rebalance_day(started, records)
        decision = decide_watch(
            trigger,
            [reading(BREACH if breached else INSIDE)],
            today=day,
            last_rebalance=last,
            calendar=CAL,
        )
        # The rule itself: a breach triggers exactly when nothing ran in the last N - 1 days.
        due = last is None or trading_days_since(last, day, CAL) >= n
        assert (decision.action is WatchAction.TRIGGER) == (breached and due)
        records.append(_record(day, decision.action))
    triggers = [r.day for r in records if r.triggered]
    for earlier, later in itertools.pairwise(triggers):
        assert trading_days_since(earlier, later, CAL) >= n
    for run in runs:  # no trigger within N - 1 trading days after another run
        assert all(not (run < t and trading_days_since(run, t, CAL) < n) for t in triggers)


def _record(day: date, action: WatchAction, breach_since: date | None = None) -> DriftRecord:
    from datetime import UTC, datetime

    return DriftRecord(
        portfolio_id="core",
        account="zerodha_main",
        broker="zerodha",
        day=day,
        taken_at=datetime(day.year, day.month, day.day, 4, 30, tzinfo=UTC),
        status=WatchStatus.READ,
        action=action,
        breach_since=breach_since,
    )


def test_gate_of_a_scheduled_run() -> None:
    both = Trigger(mode=TriggerMode.SCHEDULE_AND_DRIFT)
    inside = gate_run(both, RunKind.SCHEDULED, INSIDE)
    assert not inside.proceed
    assert inside.reason.startswith("inside bands, nothing to do (total drift 0.00%")
    outside = gate_run(both, RunKind.SCHEDULED, BREACH)
    assert outside.proceed
    assert "INFY +2.38%" in outside.reason
    assert gate_run(Trigger(), RunKind.SCHEDULED, INSIDE).proceed  # schedule: as today
    assert gate_run(both, RunKind.MANUAL, INSIDE).proceed
    assert gate_run(DRIFT, RunKind.ASSET, INSIDE).proceed  # the planner's bands decide
    assert not gate_run(DRIFT, RunKind.SCHEDULED, BREACH).proceed


def test_one_alert_per_breach_episode() -> None:
    # inside, breach, breach, not read, breach, inside, breach
    states: list[DriftMeasurement | None] = [INSIDE, BREACH, BREACH, None, BREACH, INSIDE, BREACH]
    day = date(2026, 11, 16)
    previous: DriftRecord | None = None
    notified: list[tuple[int, str | None]] = []
    alerts = DriftAlerts(recovery=True)
    for index, state in enumerate(states):
        decision = decide_alert(state, today=day, previous=previous, alerts=alerts)
        if decision.notify:
            notified.append((index, decision.kind))
        previous = _record(day, WatchAction.INSIDE_BANDS, decision.breach_since)
        if index == 3:
            assert decision.breach_since == date(2026, 11, 17)  # carried over the unread day
            assert "carries over" in decision.reason
        day = CAL.next_trading_day(day)
    assert notified == [(1, "breach"), (5, "recovery"), (6, "breach")]


@given(st.lists(st.sampled_from(["in", "out", "unread"]), max_size=40))
def test_notifications_equal_breach_episodes(states: list[str]) -> None:
    m = {"in": INSIDE, "out": BREACH, "unread": None}
    previous: DriftRecord | None = None
    day = date(2026, 3, 2)
    sent = 0
    for state in states:
        decision = decide_alert(m[state], today=day, previous=previous, alerts=ALERTS)
        sent += decision.notify
        previous = _record(day, WatchAction.INSIDE_BANDS, decision.breach_since)
        day += timedelta(days=1)
    read = [s for s in states if s != "unread"]
    episodes = sum(1 for i, s in enumerate(read) if s == "out" and (i == 0 or read[i - 1] == "in"))
    assert sent == episodes


def test_alerts_switched_off_still_track_the_episode() -> None:
    off = DriftAlerts(breach=False)
    decision = decide_alert(BREACH, today=date(2026, 11, 25), previous=None, alerts=off)
    assert not decision.notify
    assert decision.breach_since == date(2026, 11, 25)
    assert "breach alerts are off" in decision.reason


def test_one_login_notice_a_day_per_connection() -> None:
    sent: list[tuple[str, date]] = []
    today = date(2026, 11, 25)
    assert login_notice_due("kite_main", today, sent, alerts=ALERTS)
    sent.append(("kite_main", today))
    # A second portfolio (or a retry) on the same connection the same day: no second notice.
    assert not login_notice_due("kite_main", today, sent, alerts=ALERTS)
    assert login_notice_due("kite_other", today, sent, alerts=ALERTS)
    assert login_notice_due("kite_main", today + timedelta(days=1), sent, alerts=ALERTS)
    assert not login_notice_due("kite_main", today, [], alerts=DriftAlerts(login_notice=False))
    text = login_notice_text("zerodha", "zerodha_main", "kite_main")
    assert "rebalance broker login zerodha --api-key" in text
    assert "'not read'" in text


def test_breach_alert_says_what_happens_next() -> None:
    decision = decide_watch(
        DRIFT, [reading(BREACH)], today=date(2026, 11, 25), last_rebalance=None, calendar=CAL
    )
    text = breach_alert_text("Core Ten", "zerodha_main", BREACH, decision)
    assert text.startswith("Drift breach in Core Ten: zerodha_main: INFY +2.38% (band 2.00%)")
    assert text.endswith("Next: a rebalance run has been triggered.")
    wait = decide_watch(
        Trigger(mode=TriggerMode.SCHEDULE_AND_DRIFT),
        [reading(BREACH)],
        today=date(2026, 11, 25),
        last_rebalance=None,
        calendar=CAL,
    )
    assert "waiting for the next scheduled run" in breach_alert_text("C", "a", BREACH, wait)


def test_last_rebalance_day_counts_runs_and_triggers() -> None:
    records = [
        _record(date(2026, 11, 20), WatchAction.TRIGGER),
        _record(date(2026, 11, 23), WatchAction.TOO_SOON),
    ]
    assert last_rebalance_day([date(2026, 11, 18)], records) == date(2026, 11, 20)
    assert last_rebalance_day([date(2026, 11, 23)], records) == date(2026, 11, 23)
    assert last_rebalance_day([], []) is None


def test_trading_days_on_the_real_calendar() -> None:
    from rebalance.calendar import trading_calendar

    real = trading_calendar()
    # Republic Day, Monday 26 January 2026, is an NSE/BSE holiday.
    assert trading_days_since(date(2026, 1, 23), date(2026, 1, 27), real) == 1
    assert trading_days_since(date(2026, 1, 27), date(2026, 1, 27), real) == 0
    assert nth_trading_day_after(date(2026, 1, 23), 1, real) == date(2026, 1, 27)
    # Beyond the known calendar there is no answer, not a guess.
    assert nth_trading_day_after(real.end - timedelta(days=3), 10, real) is None
