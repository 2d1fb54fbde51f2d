"""Read a broker's Airflow connection with every credential masked, at every log level.

``airflow.sdk.log.mask_secret`` adds the value to this process's secrets masker and then sends it
to the task supervisor as a ``MaskSecret`` message, so that the supervisor, which redacts the logs
of a task subprocess, knows it too. Airflow 3.3's ``Connection.get`` and ``extra_dejson`` call it
for the password and the extra. With ``AIRFLOW__LOGGING__LOGGING_LEVEL=DEBUG`` the in-process
supervisor (``InProcessSupervisorComms``: ``dag.test()``, ``airflow dags test``) logs every
message it is sent, ``Sending request ... msg=MaskSecret(value='<the secret>')``, before any
redaction can apply (the masker redacts strings, dicts and lists, not a pydantic message's repr).
A real task subprocess's supervisor logs that message with the body omitted.

``connection_credentials`` therefore reads the connection inside ``_masked_locally()``: while it
runs, a ``MaskSecret`` bound for an *in-process* supervisor is added to the (shared, same-process)
secrets masker directly and never sent through the channel that logs it; every other message
passes through. With a real supervisor nothing is changed: the secrets still reach it, so the
logs it writes are redacted. Every credential field of the connection (``factory.SECRET_FIELDS``,
including those inside ``extra``) is registered by name on top of what Airflow registers.

Only the task layer calls this module (it imports Airflow); the adapters never do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rebalance.brokers.factory import SECRET_FIELDS, connection_fields

_IN_PROCESS_COMMS = "InProcessSupervisorComms"


class _MaskLocally:
    """Wraps the in-process supervisor comms: ``MaskSecret`` is applied here, not sent."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def send(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import MaskSecret

        if isinstance(msg, MaskSecret):
            _register(msg.value, msg.name)
            return None
        return self._inner.send(msg)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _register(value: Any, name: str | None = None) -> None:
    """Add ``value`` to this process's secrets masker only (no message to a supervisor)."""
    from airflow.sdk._shared.secrets_masker import _secrets_masker

    _secrets_masker().add_mask(value, name)


def _in_process_comms() -> Any:
    from airflow.sdk.execution_time import task_runner

    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    return comms if type(comms).__name__ == _IN_PROCESS_COMMS else None


@contextlib.contextmanager
def _masked_locally() -> Iterator[bool]:
    """While active, secrets meant for an in-process supervisor are masked without being sent
    through its logging channel. Yields True if the comms were wrapped."""
    from airflow.sdk.execution_time import task_runner

    comms = _in_process_comms()
    if comms is None:
        yield False
        return
    task_runner.SUPERVISOR_COMMS = _MaskLocally(comms)  # type: ignore[assignment]
    try:
        yield True
    finally:
        task_runner.SUPERVISOR_COMMS = comms


def mask(value: Any, name: str | None = None) -> None:
    """Mask ``value`` in every log of this task, without it appearing in a DEBUG log line."""
    from airflow.sdk.log import mask_secret

    if value in (None, ""):
        return
    with _masked_locally():
        mask_secret(value, name)


def connection_credentials(conn_id: str, broker: str) -> dict[str, Any]:
    """An Airflow connection as the broker factory's plain dict (``login``, ``password``,
    ``extra``), every credential in it masked in the task's logs at every level."""
    from airflow.sdk import Connection
    from airflow.sdk.log import mask_secret

    with _masked_locally():
        conn = Connection.get(conn_id)
        credentials = {"login": conn.login, "password": conn.password, "extra": conn.extra_dejson}
        if conn.password:
            mask_secret(conn.password, "password")
        for key, value in connection_fields(credentials, broker).items():
            if key in SECRET_FIELDS and value not in (None, ""):
                mask_secret(str(value), key)
    return credentials


__all__ = ["connection_credentials", "mask"]
