"""A small JSON state file shared safely between processes: the paper order books.

Airflow may run two copies of a task at once, in different processes, so every read-modify-write
of a book happens under an exclusive ``flock`` and lands atomically (temp file, fsync, rename).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

State = TypeVar("State")


@contextlib.contextmanager
def locked_json_state(path: Path, read: Callable[[Path], State]) -> Iterator[State]:
    """``read(path)`` under an exclusive lock; changes to the yielded value are written back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            state = read(path)
            before = json.dumps(state, sort_keys=True)
            yield state
            if json.dumps(state, sort_keys=True) != before:
                write_json_atomically(path, state)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def write_json_atomically(path: Path, value: Any) -> None:
    """Replace ``path`` with ``value`` as JSON: readers see the old file or the new, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(value, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
