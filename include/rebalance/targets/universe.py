"""The replacement universe (notes 6.2) as pure functions: which held symbols leave, which enter.

``replace_when`` says when a held symbol is replaced: it ranks below the top M of the universe by
score (``leaves_top``), or its score falls below a threshold (``score_below``). ``pick`` takes the
best-scoring symbols not held. Each exit is paired with an entry: a symbol that should leave but
has no qualifying replacement is kept (with a note saying so), so a replacement never shrinks the
portfolio. An entry must itself pass ``replace_when`` (else it would be replaced at the next run).
A held symbol the universe does not score is kept, with a note: missing scores are not a reason to
sell.

The planner receives the exits and entries as targets (``replaced_weights``) and applies its own
rules (budget, max trades, bands); the ``tag`` goes into the order's reasons, the ``detail`` into
the preview and the history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

EXIT_TAG = "replacement_exit"
ENTRY_TAG = "replacement_entry"


@dataclass(frozen=True)
class Exit:
    symbol: str
    score: float
    rank: int  # 1 = best of the universe
    replaced_by: str
    detail: str
    tag: str = EXIT_TAG


@dataclass(frozen=True)
class Entry:
    symbol: str
    score: float
    rank: int
    replaces: str
    detail: str
    tag: str = ENTRY_TAG


@dataclass(frozen=True)
class Replacement:
    exits: tuple[Exit, ...]
    entries: tuple[Entry, ...]
    notes: tuple[str, ...]  # symbols that should leave but stay, and why

    def members(self, held: Iterable[str]) -> list[str]:
        """The held symbols after the replacement, each entry where its exit was."""
        swap = {e.symbol: e.replaced_by for e in self.exits}
        return [swap.get(symbol, symbol) for symbol in held]


def ranking(scores: Mapping[str, float]) -> dict[str, int]:
    """Rank 1 = the highest score; ties broken by symbol so the order is the same every run."""
    ordered = sorted(scores, key=lambda symbol: (-scores[symbol], symbol))
    return {symbol: rank for rank, symbol in enumerate(ordered, start=1)}


def _why_leave(
    score: float, rank: int, size: int, leaves_top: int | None, score_below: float | None
) -> str | None:
    if leaves_top is not None and rank > leaves_top:
        return f"ranks {rank} of {size}, outside the top {leaves_top} (replace_when.leaves_top)"
    if score_below is not None and score < score_below:
        return f"score {score:g} is below {score_below:g} (replace_when.score_below)"
    return None


def plan_replacements(
    held: Iterable[str],
    scores: Mapping[str, float],
    *,
    leaves_top: int | None = None,
    score_below: float | None = None,
    max_entries: int | None = None,
    candidates: Iterable[str] | None = None,
    never_buy: Iterable[str] = (),
    never_sell: Iterable[str] = (),
) -> Replacement:
    """Exits (worst first) paired with entries (best first), each with the reason in words.

    ``scores``: the universe, higher is better (a watchlist's order via ``watchlist_scores``).
    ``candidates``: entries only from these (a watchlist limiting a scores file).
    ``max_entries``: at most this many pairs (None = as many as there are exits).
    ``never_buy`` / ``never_sell``: the policy's no-buy and no-sell lists, respected here too.
    """
    if leaves_top is None and score_below is None:
        raise ValueError("replace_when needs leaves_top and/or score_below")
    held_list = list(dict.fromkeys(held))
    held_set = set(held_list)
    ranks = ranking(scores)
    size = len(ranks)
    blocked_buys, blocked_sells = set(never_buy), set(never_sell)
    allowed = set(candidates) if candidates is not None else None
    notes: list[str] = []

    leaving: list[tuple[str, str]] = []
    for symbol in held_list:
        if symbol not in scores:
            notes.append(f"{symbol}: held but not scored by the universe; kept")
            continue
        why = _why_leave(scores[symbol], ranks[symbol], size, leaves_top, score_below)
        if why is None:
            continue
        if symbol in blocked_sells:
            notes.append(f"{symbol}: {why}, but it is on the no-sell list; kept")
            continue
        leaving.append((symbol, why))
    leaving.sort(key=lambda item: (-ranks[item[0]], item[0]))  # worst first

    picks = [
        symbol
        for symbol in sorted(scores, key=ranks.__getitem__)
        if symbol not in held_set
        and symbol not in blocked_buys
        and (allowed is None or symbol in allowed)
        and _why_leave(scores[symbol], ranks[symbol], size, leaves_top, score_below) is None
    ]
    limit = len(leaving) if max_entries is None else min(max_entries, len(leaving))
    exits: list[Exit] = []
    entries: list[Entry] = []
    for (symbol, why), pick in zip(leaving[:limit], picks, strict=False):
        exits.append(
            Exit(
                symbol,
                scores[symbol],
                ranks[symbol],
                pick,
                f"replacement: {symbol} {why}; replaced by {pick}",
            )
        )
        entries.append(
            Entry(
                pick,
                scores[pick],
                ranks[pick],
                symbol,
                f"replacement: {pick} is the best-scoring symbol not held (rank {ranks[pick]} "
                f"of {size}, score {scores[pick]:g}); replaces {symbol}",
            )
        )
    for symbol, why in leaving[len(exits) :]:
        reason = (
            "no candidate qualifies"
            if len(exits) < limit or max_entries is None
            else f"pick.max_entries {max_entries} reached"
        )
        notes.append(f"{symbol}: {why}, but {reason}; kept")
    return Replacement(tuple(exits), tuple(entries), tuple(notes))


def replaced_weights(weights: Mapping[str, float], replacement: Replacement) -> dict[str, float]:
    """Fixed weights after a replacement: each entry takes its exit's weight, in its place."""
    swap = {e.symbol: e.replaced_by for e in replacement.exits}
    return {swap.get(symbol, symbol): weight for symbol, weight in weights.items()}
