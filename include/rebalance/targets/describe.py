"""Where a run's targets came from, in words: for the approval preview and the Rebalance page.

``source`` is what the target_model task stores on the run (``rebalance_runs.targets["source"]``):
the model's record (``TargetResult.to_record()``), the replacement and the price history window.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rebalance.domain.formatting import frac

_SKIP_PARAMETERS = frozenset({"name", "weights_pct"})


def headline(source: Mapping[str, Any]) -> str:
    """``risk_parity model as of 2026-11-27 (skfolio 0.x, ledoit_wolf, 252 days)``."""
    parts = [f"{source.get('model', 'fixed')} model"]
    if source.get("as_of"):
        parts.append(f"as of {source['as_of']}")
    details = []
    if source.get("library"):
        details.append(f"{source['library']} {source.get('library_version') or ''}".strip())
    parameters = source.get("parameters") or {}
    if parameters.get("covariance"):
        details.append(f"covariance {parameters['covariance']}")
    if source.get("lookback_days"):
        details.append(f"{source['lookback_days']} days of returns")
    window = source.get("price_history")
    if window:
        details.append(
            f"closes {window['first_day']}..{window['last_day']} from {window['source']}"
        )
    text = " ".join(parts)
    return f"{text} ({'; '.join(details)})" if details else text


def parameter_text(source: Mapping[str, Any]) -> str:
    """The model's parameters as ``key=value`` pairs (weights as the file gave them omitted)."""
    parameters = source.get("parameters") or {}
    return ", ".join(f"{k}={v}" for k, v in sorted(parameters.items()) if k not in _SKIP_PARAMETERS)


def symbol_rows(source: Mapping[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(symbol, target, volatility, risk contribution, score) per symbol, as text."""
    targets = source.get("targets") or source.get("weights") or {}
    inputs = source.get("inputs") or {}
    rows = []
    for symbol in sorted(targets, key=lambda s: (-targets[s], s)):
        values = inputs.get(symbol) or {}
        rows.append(
            (
                symbol,
                frac(targets[symbol]),
                frac(values["volatility"]) if "volatility" in values else "",
                frac(values["risk_contribution"]) if "risk_contribution" in values else "",
                f"{values['score']:g}" if "score" in values else "",
            )
        )
    return rows


def replacement_lines(source: Mapping[str, Any]) -> list[str]:
    """One line per exit, entry and kept symbol, each with its reason."""
    replacement = source.get("replacement") or {}
    lines = [f"exit {e['symbol']}: {e['reason']}" for e in replacement.get("exits", [])]
    lines += [f"entry {e['symbol']}: {e['reason']}" for e in replacement.get("entries", [])]
    return lines + list(replacement.get("notes", [])) + list(source.get("notes") or [])


def source_markdown(source: Mapping[str, Any] | None) -> list[str]:
    """The preview's "Where the targets came from" section (empty for a file's fixed weights)."""
    if not source:
        return []
    lines = ["### Where the targets came from", "", f"Targets from the {headline(source)}."]
    if params := parameter_text(source):
        lines += ["", f"Parameters: {params}."]
    lines += [
        "",
        "| symbol | target | volatility (yearly) | risk contribution | score |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {' | '.join(row)} |" for row in symbol_rows(source)]
    lines += [f"\n> {line}" for line in replacement_lines(source)]
    return [*lines, ""]
