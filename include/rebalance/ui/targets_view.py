"""The Rebalance page's "Targets" section of a run: where its targets came from (issue 17)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from rebalance.targets.describe import headline, parameter_text, replacement_lines, symbol_rows


def targets_section(targets: Mapping[str, Any] | None) -> str:
    """HTML for a run whose targets a model computed; empty for a file's fixed weights."""
    source = (targets or {}).get("source")
    if not source:
        return ""
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>"
        for row in symbol_rows(source)
    )
    notes = "".join(f"<li>{escape(line)}</li>" for line in replacement_lines(source))
    params = parameter_text(source)
    return (
        "<h2>Where the targets came from</h2>"
        f"<p id='target-source'>Targets from the {escape(headline(source))}.</p>"
        + (f"<p class='muted'>Parameters: {escape(params)}</p>" if params else "")
        + "<table id='target-inputs'><tr><th>symbol</th><th>target</th>"
        "<th>volatility (yearly)</th><th>risk contribution</th><th>score</th></tr>"
        f"{rows}</table>" + (f"<ul id='target-notes'>{notes}</ul>" if notes else "")
    )
