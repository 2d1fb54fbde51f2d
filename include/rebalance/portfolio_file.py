"""Reading a portfolio file, bounded: whatever the file holds, the result is data or a ConfigError.

The DAG file reads every portfolio file of the folder at each parse, inside Airflow's parse
timeout (which uses SIGALRM, so we cannot use it for our own bound). Every read here is therefore
bounded by construction, not by a timer:

* only a regular file is read: it is checked with ``os.stat`` and again, once opened with
  ``O_NONBLOCK`` (opening a named pipe with no writer would otherwise block), with ``fstat``; a
  named pipe, a device, a socket or a directory is refused without reading a byte;
* at most ``MAX_FILE_BYTES`` are read (a portfolio of 2,000 symbols is about 40 KiB);
* the bytes must be UTF-8 with no control characters (the message names the line and byte);
* YAML is parsed into events by libyaml (``CSafeLoader``'s parser, in C, when PyYAML has it) and
  built here without recursion, so nesting depth is checked as the events arrive (a 5,000-deep
  file fails at level ``MAX_DEPTH``, not in the interpreter's recursion limit); anchors and aliases
  are refused (no YAML bombs, no shared objects), a key must be a plain value (not ``? [a, b]``)
  and a key may appear once per mapping (plain YAML keeps the last one silently).

Every problem, whatever raised it, becomes a ConfigError that names the file (and the line where
there is one). This module is pure: no Airflow, no pydantic models.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml.nodes import ScalarNode

from rebalance.errors import ConfigError

# 256 KiB: the largest real portfolio (2,000 symbols with comments, several accounts) is ~40 KiB,
# so this leaves a wide margin while reading, decoding and parsing stay around a millisecond.
MAX_FILE_BYTES = 256 * 1024
# A portfolio nests four levels (file > accounts > account > value); twelve leaves room to grow.
MAX_DEPTH = 12

PORTFOLIO_ID = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
FALLBACK_ID_PREFIX = "invalid_"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_DEFAULT_TAGS = (
    None,
    "!",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
)
_STR_TAG = "tag:yaml.org,2002:str"
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def portfolio_files(folder: Path | str) -> list[Path]:
    """The portfolio files of a folder, sorted; ``_``-prefixed files are ignored (drafts).

    Every name ending in ``.yaml`` / ``.yml`` counts, whatever it is (a directory or a pipe named
    ``x.yaml`` is listed, and then refused by ``read_portfolio_data``), so nothing is skipped
    silently.
    """
    folder = Path(folder)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(
        folder / name
        for name in names
        if name.endswith((".yaml", ".yml")) and not name.startswith(("_", "."))
    )


def portfolio_id_from_path(path: Path) -> str:
    """``portfolios/Nifty Core.yaml`` -> ``nifty_core``; the DAG id is ``rebalance_<id>``."""
    stem = re.sub(r"[^a-z0-9]+", "_", path.stem.lower()).strip("_")
    if not PORTFOLIO_ID.match(stem):
        raise ConfigError(
            str(path),
            [
                f"file name {path.name!r} does not give a usable id (after lower-casing and "
                "turning other characters into _, it must be 1-64 of a-z, 0-9 and _, starting "
                "with a letter or digit); rename the file"
            ],
        )
    return stem


def fallback_portfolio_id(path: Path) -> str:
    """A stable id for a file whose name gives none: ``invalid_<10 hex of the name's SHA-1>``."""
    digest = hashlib.sha1(path.name.encode("utf-8", "surrogateescape"), usedforsecurity=False)
    return FALLBACK_ID_PREFIX + digest.hexdigest()[:10]


def read_portfolio_data(path: Path | str) -> Any:
    """The parsed YAML of one portfolio file (not yet validated), or a ConfigError naming it."""
    path = Path(path)
    try:
        text = _decode(path, _read_bytes(path))
        return _load_yaml(text)
    except ConfigError:
        raise
    except _RefusalError as exc:
        raise ConfigError(str(path), [str(exc)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or str(exc)
        if not isinstance(exc, yaml.constructor.ConstructorError):
            problem = f"malformed YAML: {problem}"
        raise ConfigError(str(path), [where + problem]) from None
    except RecursionError:
        raise ConfigError(str(path), ["the file is nested too deeply to read"]) from None
    except Exception as exc:  # anything else still names the file; nothing escapes unnamed
        raise ConfigError(
            str(path), [f"cannot read the file: {type(exc).__name__}: {exc}"]
        ) from None


def read_text_file(path: Path | str) -> str:
    """A small text file named in a portfolio (e.g. its holiday overrides), bounded the same way.

    Regular files only, at most ``MAX_FILE_BYTES``, strict UTF-8, no control characters; any
    problem is a ConfigError naming the file. Never blocks (a named pipe is refused unread).
    """
    path = Path(path)
    try:
        return _decode(path, _read_bytes(path))
    except _RefusalError as exc:
        raise ConfigError(str(path), [str(exc)]) from None


class _RefusalError(Exception):
    """A reason to refuse the file, worded for a person (wrapped into a ConfigError)."""


def _read_bytes(path: Path) -> bytes:
    try:
        before = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT and os.path.islink(path):
            target = os.readlink(path)
            raise _RefusalError(f"is a symbolic link to {target}, which does not exist") from None
        raise _RefusalError(_os_problem(exc)) from None
    _require_regular(before.st_mode)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _RefusalError(_os_problem(exc)) from None
    try:
        # Checked again on the open file: the name may have been swapped since the stat.
        opened = os.fstat(fd)
        _require_regular(opened.st_mode)
        if opened.st_size > MAX_FILE_BYTES:
            raise _RefusalError(_too_large(opened.st_size))
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_FILE_BYTES:  # it grew while we read
            raise _RefusalError(_too_large(size))
        return b"".join(chunks)
    except OSError as exc:
        raise _RefusalError(_os_problem(exc)) from None
    finally:
        os.close(fd)


def _require_regular(mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = (
        "a directory"
        if stat.S_ISDIR(mode)
        else "a named pipe (FIFO)"
        if stat.S_ISFIFO(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "not a regular file"
    )
    raise _RefusalError(f"is {kind}, not a regular file: nothing was read")


def _too_large(size: int) -> str:
    return (
        f"the file is {size:,} bytes, more than the limit of {MAX_FILE_BYTES:,} bytes "
        f"({MAX_FILE_BYTES // 1024} KiB) for a portfolio file: nothing was read"
    )


def _os_problem(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOENT:
        return "cannot read the file: it no longer exists (deleted or renamed while listed?)"
    if exc.errno == errno.ELOOP:
        return f"cannot read the file: a symbolic link loop ({reason})"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"cannot read the file: permission denied ({reason}); let Airflow's user read it"
    return f"cannot read the file: {reason}"


def _decode(path: Path, data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _RefusalError(
            f"line {line}, byte {column} of the line (byte {exc.start + 1} of the file): "
            f"byte 0x{data[exc.start]:02x} is not UTF-8; save the file as UTF-8"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]  # a byte order mark some editors write: harmless
    if bad := _CONTROL.search(text):
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise _RefusalError(
            f"line {line}, column {column}: control character "
            f"U+{ord(bad.group()):04X} (binary data?); a portfolio file is plain text"
        )
    return text


def _marked(message: str, event: Any) -> _RefusalError:
    mark = event.start_mark
    return _RefusalError(f"line {mark.line + 1}, column {mark.column + 1}: {message}")


def _load_yaml(text: str) -> Any:
    """One YAML document, built from parser events with an explicit stack (no recursion)."""
    loader = _Loader(text)
    try:
        return _build(loader)
    finally:
        loader.dispose()


def _build(loader: yaml.SafeLoader) -> Any:
    # A frame is [container, key_pending, key]: in a mapping, key_pending says the next value
    # completes the pair for ``key``; a key is whatever came first in the pair.
    stack: list[list[Any]] = []
    documents = 0
    root: Any = None
    while True:
        event = loader.get_event()
        if isinstance(event, StreamStartEvent | DocumentEndEvent):
            continue
        if isinstance(event, StreamEndEvent):
            return root
        if isinstance(event, DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise _marked("only one YAML document per file (a second '---' found)", event)
            continue
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _marked("anchors and aliases (& and *) are not allowed in a portfolio", event)
        if isinstance(event, CollectionStartEvent):
            if event.tag not in _DEFAULT_TAGS:
                raise _marked(f"the tag {event.tag} is not allowed", event)
            if stack and isinstance(stack[-1][0], dict) and not stack[-1][1]:
                raise _marked("a key must be a plain value, not a list or mapping", event)
            if len(stack) >= MAX_DEPTH:
                raise _marked(f"nested more than {MAX_DEPTH} levels deep", event)
            container: Any = {} if isinstance(event, MappingStartEvent) else []
            stack.append([container, False, None])
            continue
        if isinstance(event, MappingEndEvent | SequenceEndEvent):
            value = stack.pop()[0]
        elif isinstance(event, ScalarEvent):
            tag = event.tag
            if tag is None or tag == "!":
                tag = loader.resolve(ScalarNode, event.value, event.implicit)
            if tag == _STR_TAG:  # most scalars (every key): the constructor returns the text
                value = event.value
            else:
                # The C parser's marks are yaml._yaml.Mark, which the constructor reads alike.
                mark: Any = event.start_mark
                node = ScalarNode(tag, event.value, mark, mark, event.style)
                value = loader.construct_object(node, deep=True)
        else:  # pragma: no cover - every event kind of PyYAML is handled above
            raise _marked(f"unexpected YAML event {type(event).__name__}", event)
        if not stack:
            root = value
            continue
        frame = stack[-1]
        parent = frame[0]
        if isinstance(parent, list):
            parent.append(value)
        elif not frame[1]:
            try:
                duplicate = value in parent
            except TypeError:
                raise _marked("a key must be a plain value", event) from None
            if duplicate:
                raise _marked(f"duplicate key {value!r}", event)
            frame[1], frame[2] = True, value
        else:
            parent[frame[2]] = value
            frame[1], frame[2] = False, None
