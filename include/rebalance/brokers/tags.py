"""The order tag: our idempotency key, carried by every order we send.

Both brokers echo a client tag back in their order books (Kite ``tag``, SmartAPI ``ordertag``; both
allow 20 characters), so a retried task can find the orders an earlier attempt already placed.
"""

from __future__ import annotations

import hashlib
import re

TAG_MAX_LEN = 15  # a leg's tag (round 0); child tags of re-pricing rounds add 3 characters
CHILD_TAG_MAX_LEN = 20  # the brokers' limit (Kite ``tag``, SmartAPI ``ordertag``)
MAX_ROUND = 99
_HASH_LEN = 12  # base36 chars of the run/account hash: ~62 bits, collisions are not a concern
_LEG_DIGITS = 3
MAX_LEG = 10**_LEG_DIGITS - 1
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_TAG_RE = re.compile(rf"^[0-9A-Z]{{{_HASH_LEN}}}[0-9]{{{_LEG_DIGITS}}}(R[0-9]{{2}})?$")


def _base36(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 36)
        out.append(_ALPHABET[r])
    return "".join(reversed(out))


def run_prefix(run_key: str, account: str) -> str:
    """The first 12 characters shared by every tag of one run in one account."""
    if not run_key or not account:
        raise ValueError("order_tag needs a non-empty run_key and account")
    digest = hashlib.sha256(f"{run_key}\x1f{account}".encode()).digest()
    return _base36(int.from_bytes(digest[:10], "big"), _HASH_LEN)


def order_tag(run_key: str, account: str, leg: int) -> str:
    """A deterministic tag for leg ``leg`` (0..999) of run ``run_key`` in ``account``.

    Upper-case alphanumeric, exactly 15 characters: 12 base36 characters hashed from run and
    account, then the leg as 3 digits. The same inputs give the same tag in every process, so a
    retry recomputes the tags of the orders it may already have placed.
    """
    if isinstance(leg, bool) or not isinstance(leg, int) or not 0 <= leg <= MAX_LEG:
        raise ValueError(f"order leg must be an integer 0..{MAX_LEG}, got {leg!r}")
    tag = f"{run_prefix(run_key, account)}{leg:0{_LEG_DIGITS}d}"
    assert len(tag) <= TAG_MAX_LEN
    return tag


def child_tag(leg_tag: str, round_number: int) -> str:
    """The tag of re-pricing round ``round_number`` of the leg tagged ``leg_tag``.

    Round 0 is the leg's first order and keeps the leg's own 15-character tag (so orders placed
    before re-pricing existed still reconcile); round n (1..99) appends "R" and two digits:
    18 characters, within both brokers' 20. Deterministic, so a retried task recomputes it.
    """
    if not _TAG_RE.match(leg_tag) or len(leg_tag) != TAG_MAX_LEN:
        raise ValueError(f"{leg_tag!r} is not a leg tag made by order_tag")
    if isinstance(round_number, bool) or not isinstance(round_number, int):
        raise ValueError(f"re-pricing round must be an integer, got {round_number!r}")
    if not 0 <= round_number <= MAX_ROUND:
        raise ValueError(f"re-pricing round must be 0..{MAX_ROUND}, got {round_number}")
    if round_number == 0:
        return leg_tag
    tag = f"{leg_tag}R{round_number:02d}"
    assert len(tag) <= CHILD_TAG_MAX_LEN
    return tag


def split_tag(tag: str) -> tuple[str, int]:
    """(leg tag, round) of a tag made by ``order_tag`` or ``child_tag``; ValueError otherwise."""
    upper = tag.upper()
    if not _TAG_RE.match(upper):
        raise ValueError(f"{tag!r} is not one of our order tags")
    if len(upper) == TAG_MAX_LEN:
        return upper, 0
    return upper[:TAG_MAX_LEN], int(upper[TAG_MAX_LEN + 1 :])


def is_order_tag(value: str | None) -> bool:
    """True if ``value`` looks like a tag made by ``order_tag`` or ``child_tag`` (brokers may
    echo other tags)."""
    return value is not None and bool(_TAG_RE.match(value.upper()))


def tag_belongs_to_run(tag: str | None, run_key: str, account: str) -> bool:
    """True if ``tag`` was made by ``order_tag(run_key, account, ...)``."""
    return (
        is_order_tag(tag)
        and tag is not None
        and tag.upper().startswith(run_prefix(run_key, account))
    )


__all__ = [
    "CHILD_TAG_MAX_LEN",
    "MAX_LEG",
    "MAX_ROUND",
    "TAG_MAX_LEN",
    "child_tag",
    "is_order_tag",
    "order_tag",
    "run_prefix",
    "split_tag",
    "tag_belongs_to_run",
]
