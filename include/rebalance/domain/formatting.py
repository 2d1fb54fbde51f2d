"""Money, percent, time and outcome as a person reads them: one home for the CLI, the preview
and the page. ``-`` stands for a missing value everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rebalance.domain.market import IST


def pct(value: float | None, digits: int = 2) -> str:
    """A percent number (10 means 10%): ``10.00%``."""
    return "-" if value is None else f"{value:.{digits}f}%"


def frac(value: float | None, digits: int = 2) -> str:
    """A fraction as percent (0.1 means 10%): ``10.00%``."""
    return "-" if value is None else f"{100 * float(value):.{digits}f}%"


def inr(value: float | None) -> str:
    """Rupees with the sign and paise: ``₹1,234.50``."""
    return "-" if value is None else f"₹{value:,.2f}"


def money(value: float | None) -> str:
    """Rupees in a column headed ₹: ``1,234.50``."""
    return "-" if value is None else f"{value:,.2f}"


def drift_change(before: float | None, after: float | None) -> str:
    """Max drift before -> after (fractions): ``5.15% → 1.83% (−3.32 pp)``, ``-`` without a plan."""
    if before is None or after is None:
        return "-"
    change = 100 * (float(after) - float(before))
    return f"{frac(before)} → {frac(after)} ({change:+.2f} pp)".replace("-", "−")


def ist_minutes(value: datetime | None) -> str:
    """A moment in IST to the minute: ``2026-01-05 15:10``."""
    return "-" if value is None else value.astimezone(IST).strftime("%Y-%m-%d %H:%M")


def outcome(status: str, placement: Mapping[str, Any] | None) -> str:
    """A run's status, with the placement's outcome when the run was closed after placing:
    ``completed (partially_filled)``."""
    placed_as = placement.get("status") if isinstance(placement, Mapping) else None
    if placed_as and placed_as != status:
        return f"{status} ({placed_as})"
    return str(status)


def policy_summary(policy: Mapping[str, Any] | None) -> str:
    """A short line of a stored policy's main knobs, e.g. ``budget 10% · band 2%/15% · max 10``."""
    if not policy:
        return "-"
    parts = []
    if policy.get("rebalance_budget_inr") is not None:
        parts.append(f"budget ₹{policy['rebalance_budget_inr']:,.0f}")
    elif policy.get("rebalance_budget_pct") is not None:
        parts.append(f"budget {policy['rebalance_budget_pct']}%")
    if any(policy.get(k) is not None for k in ("drift_band_abs_pct", "drift_band_rel_pct")):
        band_abs, band_rel = policy.get("drift_band_abs_pct"), policy.get("drift_band_rel_pct")
        parts.append(f"band {band_abs}%/{band_rel}%")
    if policy.get("max_trades") is not None:
        parts.append(f"max {policy['max_trades']}")
    if policy.get("tilt_mode") not in (None, "neutral"):
        parts.append(f"tilt {policy['tilt_mode']}")
    return " · ".join(parts) or "-"
