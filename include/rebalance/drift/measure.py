"""Live weights and drift of one account's holdings against the targets (notes 2, 4.1, 4.2).

The portfolio is valued exactly as the planner values it (``planning.book.build_book``: the same
checks, the same treatment of cash and of holdings outside the targets), so the watch and a
rebalance of the same snapshot see the same weights. The band rule is the planner's (notes 4.2:
``|drift| >= abs band`` or ``|drift| >= rel band x target``); it lives inside the planner's
private ``_drift_goal`` together with the max-weight trim, so it is mirrored here in
``outside_band`` and a test checks on random inputs that both agree.

Weights and drifts are fractions (0.02 = 2%); values are rupees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rebalance.planning.book import build_book
from rebalance.planning.intents import EPSILON
from rebalance.policy import Policy
from rebalance.snapshot import HoldingsSnapshot


def band_width(target: float, policy: Policy) -> float:
    """The smallest |drift| (fraction) that is outside the band of a symbol with ``target``:
    the tighter of the absolute band and the relative band times the target."""
    return min(policy.drift_band_abs_pct / 100.0, policy.drift_band_rel_pct / 100.0 * target)


def outside_band(drift: float, target: float, policy: Policy) -> bool:
    """True when ``drift`` (weight - target, fractions) is outside the symbol's band.

    The planner's rule to the letter, its tolerance included: a drift within 1e-9 of a band
    counts as outside (bands are ">="), and a drift within 1e-9 of zero never does.
    """
    size = abs(drift)
    return size > EPSILON and (
        size >= policy.drift_band_abs_pct / 100.0 - EPSILON
        or size >= policy.drift_band_rel_pct / 100.0 * target - EPSILON
    )


@dataclass(frozen=True)
class SymbolDrift:
    """One symbol of the measured portfolio. ``listed`` is False for a holding outside the
    targets that ``unlisted_holdings: sell`` wants gone (target 0)."""

    symbol: str
    quantity: int  # shares
    price: float  # rupees, the snapshot's last price
    value: float  # rupees
    weight: float  # fraction of portfolio value
    target: float  # fraction
    drift: float  # weight - target, fraction
    band: float  # band_width(target), fraction
    outside_band: bool
    listed: bool = True


@dataclass(frozen=True)
class DriftMeasurement:
    """Drift of one account at the snapshot's moment.

    ``total_drift`` is the sum of |drift| over the symbols plus the cash's |drift| (when the
    cash is known); ``symbols_total_drift`` and ``max_drift`` cover the symbols only, as the
    plan summary's ``total_drift_before`` / ``max_drift_before`` do. Cash has no band: the
    planner never trades to fix the cash alone, so cash drift never makes a breach.
    """

    portfolio_value: float  # rupees: the symbols' value + cash
    cash: float | None  # rupees, None when the snapshot has no cash figure
    cash_weight: float | None  # fraction, None when the cash is unknown
    cash_target: float  # fraction (0 = fully invested)
    symbols: tuple[SymbolDrift, ...]  # sorted by symbol
    ignored: tuple[str, ...]  # held outside the targets and left alone (unlisted: ignore)

    @property
    def cash_drift(self) -> float | None:
        return None if self.cash_weight is None else self.cash_weight - self.cash_target

    @property
    def symbols_total_drift(self) -> float:
        return sum(abs(s.drift) for s in self.symbols)

    @property
    def total_drift(self) -> float:
        return self.symbols_total_drift + abs(self.cash_drift or 0.0)

    @property
    def max_drift(self) -> float:
        return max((abs(s.drift) for s in self.symbols), default=0.0)

    @property
    def max_drift_symbol(self) -> str | None:
        if not self.symbols:
            return None
        return max(self.symbols, key=lambda s: (abs(s.drift), s.symbol)).symbol

    @property
    def outside(self) -> tuple[SymbolDrift, ...]:
        """The symbols outside their band, largest |drift| first."""
        return tuple(
            sorted(
                (s for s in self.symbols if s.outside_band),
                key=lambda s: (-abs(s.drift), s.symbol),
            )
        )

    @property
    def breached(self) -> bool:
        return any(s.outside_band for s in self.symbols)


def measure_drift(
    snapshot: HoldingsSnapshot,
    targets: Mapping[str, float],
    policy: Policy,
    *,
    cash_target: float | None = None,
) -> DriftMeasurement:
    """Measure ``snapshot`` against ``targets`` (fractions summing to 1 with ``cash_target``).

    For a model portfolio, ``targets`` are the ones stored by the last completed run (issue 13).
    Raises InputDataError / ConfigError exactly where the planner would.
    """
    book = build_book(snapshot, targets, policy, cash_target=cash_target, today=None)
    symbols = tuple(
        SymbolDrift(
            symbol=line.symbol,
            quantity=line.quantity,
            price=line.price,
            value=line.value,
            weight=line.value / book.value,
            target=line.target,
            drift=line.value / book.value - line.target,
            band=band_width(line.target, policy),
            outside_band=outside_band(line.value / book.value - line.target, line.target, policy),
            listed=line.listed,
        )
        for line in sorted(book.lines, key=lambda ln: ln.symbol)
    )
    return DriftMeasurement(
        portfolio_value=book.value,
        cash=book.cash if book.cash_known else None,
        cash_weight=book.cash / book.value if book.cash_known else None,
        cash_target=book.cash_target,
        symbols=symbols,
        ignored=tuple(sorted(line.symbol for line in book.ignored)),
    )
