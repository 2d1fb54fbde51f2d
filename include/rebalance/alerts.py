"""Telling people when a run fails or runs late: on-failure notifications and a deadline alert.

Off by default. A deployment turns channels on with environment variables (read when the DAG file
is parsed; cheap, no network):

* ``REBALANCE_ALERT_WEBHOOK_URL``: POST a JSON message (Slack-compatible ``text`` field) there;
* ``REBALANCE_ALERT_EMAIL``: comma-separated addresses, sent through Airflow's SMTP connection
  (``smtp_default``, or ``[email] email_conn_id``).

A failure message says which portfolio and account, which task failed, the error, and what was or
was not ordered (read back from the history store at notification time). A waiting-approval
message (``ApprovalWaitingNotifier``, sent by the approval task when it starts waiting) says what
waits, who may answer, the cut-off in IST and the link to the Required Action.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from airflow.sdk import BaseNotifier

from rebalance.domain.market import IST
from rebalance.task_ids import split_task_id

log = logging.getLogger(__name__)

WEBHOOK_ENV = "REBALANCE_ALERT_WEBHOOK_URL"
EMAIL_ENV = "REBALANCE_ALERT_EMAIL"
DEADLINE_ENV = "REBALANCE_DEADLINE_ALERTS"
WEBHOOK_TIMEOUT_SECONDS = 10


def deadline_alerts_enabled() -> bool:
    """The market-close deadline alert is on unless ``REBALANCE_DEADLINE_ALERTS`` is off.

    ``rebalance demo`` and the ``dag.test()`` tests turn it off: Airflow 3.3.2's dag.test cannot
    complete a run of a DAG that has one.
    """
    return os.environ.get(DEADLINE_ENV, "on").strip().lower() not in ("off", "false", "0", "no")


def configured_channels() -> dict[str, Any]:
    """The alert channels this deployment turned on (empty: alerts off)."""
    url, emails = _environment_channels()
    channels: dict[str, Any] = {}
    if url:
        channels["webhook"] = url
    if emails:
        channels["email"] = list(emails)
    return channels


def _environment_channels() -> tuple[str, tuple[str, ...]]:
    """The webhook URL and the addresses this deployment's environment sets."""
    return _channel_values(os.environ.get(WEBHOOK_ENV, ""), os.environ.get(EMAIL_ENV, ""))


@functools.lru_cache(maxsize=4)
def _channel_values(webhook: str, emails: str) -> tuple[str, tuple[str, ...]]:
    """The webhook URL and addresses, one set of strings per process for as long as the variables
    do not change: every DAG of a fleet keeps them (its failure notifier, its deadline alert)."""
    return webhook.strip(), tuple(e.strip() for e in emails.split(",") if e.strip())


def orders_summary(dag_id: str, airflow_run_id: str, account: str) -> str:
    """What the history store says was ordered in this lane (never raises)."""
    try:
        from rebalance.history.store import RunKey
        from rebalance.wiring import open_store

        store = open_store()
        run_id = store.find_run(RunKey(dag_id, airflow_run_id, account))
        if run_id is None:
            return "no run record: nothing was ordered"
        orders = store.orders(run_id)
        if not orders:
            return f"run {run_id} ({store.status(run_id)}): nothing was ordered"
        states: dict[str, int] = {}
        for order in orders:
            states[order.state] = states.get(order.state, 0) + 1
        counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
        return f"run {run_id} ({store.status(run_id)}): {len(orders)} orders: {counts}"
    except Exception as exc:  # an alert must go out even when the history store is down
        return f"order state unknown (history store unavailable: {exc})"


def failure_message(context: Mapping[str, Any]) -> str:
    """One readable message about a failed task."""
    ti = context["ti"]
    dag_run = context["dag_run"]
    account, task = split_task_id(ti.task_id)
    lines = [
        f"Rebalance task failed: {ti.dag_id} / account {account or '-'} / {task}",
        f"run: {dag_run.run_id}",
        f"error: {context.get('exception') or 'see the task log'}",
        f"orders: {orders_summary(ti.dag_id, dag_run.run_id, account)}" if account else "",
    ]
    return "\n".join(line for line in lines if line)


def post_webhook(url: str, text: str) -> None:
    body = json.dumps({"text": text}).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS):
        pass


class RebalanceFailureNotifier(BaseNotifier):
    """Sends ``failure_message`` to the webhook and/or the e-mail addresses."""

    template_fields = ()

    def __init__(self, webhook: str | None = None, email: list[str] | None = None) -> None:
        super().__init__()
        self.webhook = webhook
        self.email = email or []

    def notify(self, context: Any) -> None:
        text = failure_message(context)
        log.error("%s", text)
        if self.webhook:
            try:
                post_webhook(self.webhook, text)
            except OSError as exc:
                log.error("alert webhook failed: %s", exc)
        if self.email:
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            subject, _, _ = text.partition("\n")
            SmtpNotifier(to=self.email, subject=subject, html_content=f"<pre>{text}</pre>").notify(
                context
            )


def in_ist(when: datetime) -> str:
    """``2026-12-02 15:25 IST``: every time a person reads is labelled with its zone."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return f"{aware.astimezone(IST):%Y-%m-%d %H:%M} IST"


@dataclass(frozen=True)
class ApprovalWaiting:
    """What a person needs to answer a waiting approval."""

    portfolio: str  # the portfolio's name
    account: str
    dag_id: str
    airflow_run_id: str
    subject: str  # "Approve rebalance of ...: 6 orders, turnover 19.73%"
    link: str  # the approval task's Required Actions page
    deadline: datetime  # no answer by then: the plan expires, nothing is ordered
    approvers: Sequence[str] = ()  # empty: anyone who may act on the DAG
    history_run: int | None = None  # the history run id (for ``rebalance approve``)


def approval_waiting_message(waiting: ApprovalWaiting) -> str:
    """One readable message: what waits, the cut-off in IST, who may answer, and where."""
    who = (
        ", ".join(waiting.approvers)
        if waiting.approvers
        else f"anyone who may act on {waiting.dag_id}"
    )
    lines = [
        f"Rebalance approval waiting: {waiting.portfolio} / account {waiting.account}",
        waiting.subject,
        f"answer by: {in_ist(waiting.deadline)} (no answer by then: the plan expires, "
        "nothing is ordered)",
        f"who may answer: {who}",
        f"approve or reject: {waiting.link}",
        f"run: {waiting.dag_id} / {waiting.airflow_run_id}",
    ]
    if waiting.history_run is not None:
        lines.append(f"or in a terminal: rebalance approve {waiting.history_run} --yes|--no")
    return "\n".join(lines)


class ApprovalWaitingNotifier(BaseNotifier):
    """Tells people that an approval waits: the task log always, the webhook / e-mail if set.

    Airflow's HITL operators call their ``notifiers`` once the request is written, just before
    the task starts waiting (``HITLOperator.execute``).
    """

    template_fields = ()

    def __init__(
        self, waiting: ApprovalWaiting, webhook: str | None = None, email: list[str] | None = None
    ) -> None:
        super().__init__()
        self.waiting = waiting
        self.webhook = webhook
        self.email = email or []

    def notify(self, context: Any) -> None:
        text = approval_waiting_message(self.waiting)
        log.warning("%s", text)
        if self.webhook:
            try:
                post_webhook(self.webhook, text)
            except OSError as exc:  # a waiting approval must not fail because a webhook is down
                log.error("approval webhook failed: %s", exc)
        if self.email:
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            subject, _, _ = text.partition("\n")
            try:
                SmtpNotifier(
                    to=self.email, subject=subject, html_content=f"<pre>{escape(text)}</pre>"
                ).notify(context)
            except Exception as exc:  # SMTP down or not configured: the task still waits
                log.error("approval e-mail failed: %s", exc)


def approval_notifiers(waiting: ApprovalWaiting) -> list[BaseNotifier]:
    """The notifiers of a waiting approval: always one (it logs), sending where configured."""
    channels = configured_channels()
    return [ApprovalWaitingNotifier(waiting, channels.get("webhook"), channels.get("email"))]


def failure_notifiers() -> list[BaseNotifier]:
    """The on-failure callbacks for a DAG: none unless a channel is configured."""
    url, emails = _environment_channels()
    if not url and not emails:
        return []
    return [_failure_notifier(url or None, emails)]


@functools.lru_cache(maxsize=4)
def _failure_notifier(webhook: str | None, emails: tuple[str, ...]) -> RebalanceFailureNotifier:
    """One notifier per channel set, shared by every DAG (and task) of the process: it holds no
    state of a run (no template fields), and a fleet's parse builds thousands of DAGs."""
    return RebalanceFailureNotifier(webhook, list(emails))


async def notify_deadline_missed(context: Any = None, **kwargs: Any) -> None:
    """Deadline callback (runs in the triggerer): the run is not finished by market close."""
    portfolio = kwargs.get("portfolio", "?")
    text = (
        f"Rebalance of {portfolio} is not finished by market close "
        f"({kwargs.get('dag_id', '?')}); check the run and its approval."
    )
    log.error("%s", text)
    if url := kwargs.get("webhook"):
        import asyncio

        try:
            await asyncio.to_thread(post_webhook, url, text)
        except OSError as exc:
            log.error("alert webhook failed: %s", exc)


def send_drift_notice(text: str, context: Any) -> bool:
    """A drift-watch notice (breach, recovery, "log in") through the configured channels.

    Always logged; sent to the webhook and the e-mail addresses where configured. Returns True
    when at least one channel took it (the watch records that the notice went out, so a retry
    of the watch never sends it twice); a failing channel is logged and does not fail the watch.
    """
    log.warning("%s", text)
    channels = configured_channels()
    sent = False
    if url := channels.get("webhook"):
        try:
            post_webhook(url, text)
            sent = True
        except OSError as exc:
            log.error("drift notice webhook failed: %s", exc)
    if emails := channels.get("email"):
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        subject, _, _ = text.partition(":")
        try:
            SmtpNotifier(
                to=emails, subject=subject, html_content=f"<pre>{escape(text)}</pre>"
            ).notify(context)
            sent = True
        except Exception as exc:  # SMTP down or not configured: the watch still records
            log.error("drift notice e-mail failed: %s", exc)
    return sent or not channels
