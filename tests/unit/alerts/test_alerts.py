"""Failure and deadline alerts: what the message says and that it reaches a webhook."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace
from typing import Any

import pytest

from rebalance import alerts


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local webhook receiver on 127.0.0.1 collecting the JSON bodies it is sent."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()
    server.server_close()


def context(task_id: str = "zerodha_main.place_orders") -> dict[str, Any]:
    ti = SimpleNamespace(task_id=task_id, dag_id="rebalance_demo")
    dag_run = SimpleNamespace(run_id="scheduled__2026-11-30T15:10+05:30")
    return {"ti": ti, "dag_run": dag_run, "exception": RuntimeError("broker said no")}


def test_alerts_are_off_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(alerts.WEBHOOK_ENV, raising=False)
    monkeypatch.delenv(alerts.EMAIL_ENV, raising=False)
    assert alerts.failure_notifiers() == []
    monkeypatch.setenv(alerts.EMAIL_ENV, "ops@example.com, me@example.com")
    (notifier,) = alerts.failure_notifiers()
    assert isinstance(notifier, alerts.RebalanceFailureNotifier)
    assert notifier.email == ["ops@example.com", "me@example.com"]


def test_every_dag_shares_one_notifier_per_channel_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(alerts.WEBHOOK_ENV, "http://127.0.0.1:9/hook")
    monkeypatch.setenv(alerts.EMAIL_ENV, "ops@example.com")
    (first,) = alerts.failure_notifiers()
    (second,) = alerts.failure_notifiers()
    assert first is second  # a fleet's thousands of DAGs hold one object, not one each
    assert alerts.configured_channels()["webhook"] is alerts.configured_channels()["webhook"]

    monkeypatch.setenv(alerts.EMAIL_ENV, "risk@example.com")
    (changed,) = alerts.failure_notifiers()
    assert changed is not first
    assert changed.email == ["risk@example.com"]
    assert changed.webhook == "http://127.0.0.1:9/hook"


def test_failure_message_names_portfolio_account_task_error_and_orders(history_db: str) -> None:
    text = alerts.failure_message(context())
    assert "rebalance_demo / account zerodha_main / place_orders" in text
    assert "broker said no" in text
    assert "no run record: nothing was ordered" in text


def test_a_failure_reaches_the_webhook(
    webhook: tuple[str, list[dict[str, Any]]], history_db: str
) -> None:
    url, received = webhook
    alerts.RebalanceFailureNotifier(webhook=url).notify(context())
    (body,) = received
    assert body["text"].startswith("Rebalance task failed: rebalance_demo / account zerodha_main")


def test_an_unreachable_webhook_does_not_hide_the_failure(history_db: str) -> None:
    notifier = alerts.RebalanceFailureNotifier(webhook="http://127.0.0.1:9/hook")
    notifier.notify(context())  # logs the webhook error, never raises over the task's failure


def test_the_deadline_alert_reaches_the_webhook(webhook: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = webhook
    asyncio.run(
        alerts.notify_deadline_missed(
            portfolio="Demo Nifty Ten", dag_id="rebalance_demo", webhook=url
        )
    )
    (body,) = received
    assert "Demo Nifty Ten is not finished by market close" in body["text"]


def test_the_deadline_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(alerts.DEADLINE_ENV, "off")
    assert alerts.deadline_alerts_enabled() is False
    monkeypatch.setenv(alerts.DEADLINE_ENV, "on")
    assert alerts.deadline_alerts_enabled() is True


def test_the_production_dag_carries_the_alerts(monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from rebalance.dag_factory import build_dag
    from rebalance.portfolio import load_portfolio

    demo = Path(__file__).resolve().parents[3] / "portfolios" / "demo.yaml"
    monkeypatch.setenv(alerts.DEADLINE_ENV, "on")
    monkeypatch.setenv(alerts.WEBHOOK_ENV, "http://127.0.0.1:9/hook")
    dag = build_dag(demo, load_portfolio(demo))

    (deadline,) = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline]
    assert deadline.interval.total_seconds() == 20 * 60  # 15:10 run, 15:30 market close
    task = dag.get_task("paper.place_orders")
    (notifier,) = task.on_failure_callback
    assert isinstance(notifier, alerts.RebalanceFailureNotifier)

    monkeypatch.delenv(alerts.WEBHOOK_ENV)
    monkeypatch.delenv(alerts.EMAIL_ENV, raising=False)
    quiet = build_dag(demo, load_portfolio(demo))
    assert "on_failure_callback" not in quiet.default_args  # each operator keeps fewer kwargs
    assert all(task.on_failure_callback == [] for task in quiet.tasks)


def waiting(approvers: tuple[str, ...] = ("asha", "ravi")) -> alerts.ApprovalWaiting:
    from datetime import UTC, datetime

    return alerts.ApprovalWaiting(
        portfolio="Demo Nifty Ten",
        account="zerodha_main",
        dag_id="rebalance_demo",
        airflow_run_id="scheduled__2026-11-30T15:10+05:30",
        subject="Approve rebalance of Demo Nifty Ten (zerodha_main): 6 orders, turnover 19.73%",
        link="http://af.example/dags/rebalance_demo/runs/r/tasks/zerodha_main.approval/required_actions",
        deadline=datetime(2026, 11, 30, 9, 55, tzinfo=UTC),  # 15:25 IST
        approvers=approvers,
        history_run=42,
    )


def test_the_waiting_approval_message_has_cutoff_in_ist_link_and_answerers() -> None:
    text = alerts.approval_waiting_message(waiting())
    first = text.splitlines()[0]
    assert first == "Rebalance approval waiting: Demo Nifty Ten / account zerodha_main"
    assert "6 orders, turnover 19.73%" in text
    assert "answer by: 2026-11-30 15:25 IST" in text  # 09:55 UTC shown in IST, labelled
    assert "who may answer: asha, ravi" in text
    assert "approve or reject: http://af.example/dags/rebalance_demo/runs/r/tasks/" in text
    assert "rebalance approve 42 --yes|--no" in text
    anyone = alerts.approval_waiting_message(waiting(approvers=()))
    assert "who may answer: anyone who may act on rebalance_demo" in anyone


def test_in_ist_labels_and_converts() -> None:
    from datetime import datetime

    assert alerts.in_ist(datetime(2026, 1, 1, 0, 0)) == "2026-01-01 05:30 IST"  # naive = UTC


def test_a_waiting_approval_reaches_the_webhook_and_the_log(
    webhook: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, received = webhook
    monkeypatch.setenv(alerts.WEBHOOK_ENV, url)
    monkeypatch.delenv(alerts.EMAIL_ENV, raising=False)
    (notifier,) = alerts.approval_notifiers(waiting())
    with caplog.at_level("WARNING", logger=alerts.__name__):
        notifier(context())  # Airflow's HITLOperator calls each notifier with the task context
    (body,) = received
    assert body["text"] == alerts.approval_waiting_message(waiting())
    assert "Rebalance approval waiting" in caplog.text


def test_without_channels_the_waiting_approval_is_still_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(alerts.WEBHOOK_ENV, raising=False)
    monkeypatch.delenv(alerts.EMAIL_ENV, raising=False)
    (notifier,) = alerts.approval_notifiers(waiting())
    assert isinstance(notifier, alerts.ApprovalWaitingNotifier)
    with caplog.at_level("WARNING", logger=alerts.__name__):
        notifier.notify(context())
    assert "answer by: 2026-11-30 15:25 IST" in caplog.text


def test_an_unreachable_webhook_does_not_stop_the_approval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    notifier = alerts.ApprovalWaitingNotifier(waiting(), webhook="http://127.0.0.1:9/hook")
    notifier.notify(context())  # logs the webhook error; the task goes on to wait
