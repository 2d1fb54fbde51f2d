"""Text rendering of a drift series: what ``rebalance drift [--portfolio X] [--days N]`` prints.

A pure function of records (oldest first in the output); the command, its options and the
history query come in a later step.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rebalance.domain.formatting import frac
from rebalance.drift.record import DriftRecord

_BLOCKS = " ▁▂▃▄▅▆▇█"
_HEADER = ("day", "account", "status", "total", "max", "outside band", "action", "since last")


def _since(record: DriftRecord) -> str:
    since = record.since_last
    if not since or since.get("winners_pct") is None:
        return "-"
    pnl = since.get("pnl") or 0.0
    sign = "+" if pnl >= 0 else "-"
    return f"{since['winners_pct']:.0f}% up, {sign}₹{abs(pnl):,.0f}"


def _row(record: DriftRecord) -> tuple[str, ...]:
    if not record.read:
        status = f"not read ({record.not_read_reason})" if record.not_read_reason else "not read"
        return (record.day.isoformat(), record.account, status, "-", "-", "-", "not_read", "-")
    worst = f" {record.max_drift_symbol}" if record.max_drift_symbol else ""
    outside = ", ".join(record.outside_band[:4]) + (" ..." if len(record.outside_band) > 4 else "")
    action = str(record.action) if record.action else "-"
    if record.alerted:
        action += " (alerted)"
    return (
        record.day.isoformat(),
        record.account,
        "read",
        frac(record.total_drift),
        frac(record.max_drift) + worst,
        outside or "-",
        action,
        _since(record),
    )


def _line(row: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()


def sparkline(values: Sequence[float | None], top: float | None = None) -> str:
    """One character per value, scaled to ``top`` (default the largest); a gap for None."""
    known = [v for v in values if v is not None]
    scale = top if top is not None else max(known, default=0.0)
    if scale <= 0:
        return "".join(" " if v is None else _BLOCKS[1] for v in values)
    chars = []
    for value in values:
        if value is None:
            chars.append(" ")
            continue
        level = round(min(value, scale) / scale * (len(_BLOCKS) - 2)) + 1
        chars.append(_BLOCKS[level])
    return "".join(chars)


def render_drift(records: Iterable[DriftRecord]) -> str:
    """A table of the records (by day, then account) and, per account, sparklines of total and
    max drift with its absolute band and the days a run was triggered (``^``)."""
    ordered = sorted(records, key=lambda r: (r.day, r.portfolio_id, r.account))
    if not ordered:
        return "no drift records"
    rows = [_HEADER, *(_row(r) for r in ordered)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    lines = [_line(rows[0], widths), "  ".join("-" * w for w in widths)]
    lines += [_line(row, widths) for row in rows[1:]]
    for key in sorted({(r.portfolio_id, r.account) for r in ordered}):
        series = [r for r in ordered if (r.portfolio_id, r.account) == key]
        band = next((r.band_abs_pct for r in reversed(series) if r.band_abs_pct is not None), None)
        top = max(
            [r.total_drift for r in series if r.total_drift is not None] + [(band or 0.0) / 100.0],
            default=0.0,
        )
        band_note = f" (abs band {band / 100.0:.2%})" if band is not None else ""
        lines += [
            "",
            f"{key[0]} / {key[1]}, {series[0].day} to {series[-1].day}",
            f"  total drift  {sparkline([r.total_drift for r in series], top)}",
            f"  max drift    {sparkline([r.max_drift for r in series], top)}{band_note}",
            f"  triggered    {''.join('^' if r.triggered else ' ' for r in series).rstrip()}",
        ]
    return "\n".join(lines)
