"""Price an order from a quote and a pricing policy: pure, no I/O, no clock.

Since 1 April 2026 the brokers refuse unprotected MARKET orders placed through their APIs (SEBI's
retail-algo framework; see docs/brokers.md). An order is therefore either

* a LIMIT at the last price plus a buffer (buys) or minus it (sells), on the instrument's tick
  and inside the day's circuit band, or
* a MARKET order with an explicit ``market_protection`` percentage (or -1, the broker's automatic
  band), which the broker turns into a limit at the protection price.

Either way what does not fill rests open; the pipeline cancels it at its fill deadline and may
re-price the remainder (``round_number`` widens the buffer by ``reprice_step_pct`` per round).

    priced = price_order(Side.BUY, quote, PricingPolicy())   # limit, 0.5% buffer
    request = priced.request(symbol, exchange, side, quantity, tag)
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum

from rebalance.brokers.base import AUTO_PROTECTION, OrderRequest, check_market_protection
from rebalance.domain.market import Quote, Side

# NSE and BSE equity ticks are 0.01 or 0.05 rupees for the prices we trade; a multiple of 0.05 is
# valid under both, so it is the fallback when a broker gives no tick size (noted on the order).
FALLBACK_TICK = 0.05


class PricingKind(StrEnum):
    LIMIT = "limit"  # a limit at last price +/- buffer
    MARKET = "market"  # a market order with explicit protection


@dataclass(frozen=True)
class PricingPolicy:
    """How orders are priced. Percentages are percent numbers (0.5 means 0.5%).

    The default is a LIMIT with a 0.5% buffer: it fills at once in liquid stocks (the spread of
    a large-cap is a few paise), it can never fill worse than the buffer, and it does not depend
    on a broker's automatic protection band, which differs by broker and is not published per
    instrument. See docs/brokers.md ("Order pricing").
    """

    kind: PricingKind = PricingKind.LIMIT
    limit_buffer_pct: float = 0.5
    market_protection_pct: float = 1.0  # or -1 for the broker's automatic band
    reprice_step_pct: float = 0.25  # added to the buffer / protection per re-pricing round

    def __post_init__(self) -> None:
        if not 0 <= self.limit_buffer_pct <= 20:
            raise ValueError(f"limit_buffer_pct must be 0..20 percent, got {self.limit_buffer_pct}")
        check_market_protection(self.market_protection_pct, "pricing policy")
        if not 0 <= self.reprice_step_pct <= 5:
            raise ValueError(f"reprice_step_pct must be 0..5 percent, got {self.reprice_step_pct}")


@dataclass(frozen=True)
class PricedOrder:
    """The price part of one order. Exactly one of ``price`` / ``market_protection`` is set."""

    price: float | None  # LIMIT price, rupees
    market_protection: float | None  # MARKET protection, percent or -1
    reference_price: float  # the last price it was derived from
    worst_price: float | None  # the worst fill price (limit or protection price), when known
    notes: tuple[str, ...] = ()  # why the price is what it is (clamped to circuit, tick, ...)

    def request(
        self, symbol: str, exchange: str, side: Side, quantity: int, tag: str
    ) -> OrderRequest:
        return OrderRequest(
            symbol=symbol,
            exchange=exchange,
            side=side,
            quantity=quantity,
            tag=tag,
            price=self.price,
            market_protection=self.market_protection,
        )


def round_to_tick(price: float, tick: float, side: Side) -> float:
    """``price`` on the tick grid: buys round down, sells up (never worse than asked)."""
    if tick <= 0:
        raise ValueError(f"tick size must be > 0, got {tick}")
    d_tick = Decimal(str(tick))
    # Six decimals first: 1000 * 1.005 is 1004.9999999999999 in binary floating point.
    steps = (Decimal(str(round(price, 6))) / d_tick).quantize(
        Decimal(1), rounding=ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
    )
    return float(steps * d_tick)


def clamp_to_circuit(price: float, quote: Quote) -> tuple[float, str | None]:
    """``price`` inside the day's band [lower_circuit, upper_circuit]; with a note if moved."""
    if quote.upper_circuit is not None and price > quote.upper_circuit:
        return quote.upper_circuit, f"clamped to the upper circuit ₹{quote.upper_circuit:.2f}"
    if quote.lower_circuit is not None and price < quote.lower_circuit:
        return quote.lower_circuit, f"clamped to the lower circuit ₹{quote.lower_circuit:.2f}"
    return price, None


def price_order(
    side: Side, quote: Quote, policy: PricingPolicy, *, round_number: int = 0
) -> PricedOrder:
    """The price of a ``side`` order from ``quote`` under ``policy``; round n widens by n steps.

    Raises ValueError if the quote has no usable last price.
    """
    if not quote.last_price > 0:
        raise ValueError(f"{quote.symbol}: no usable last price to price an order from")
    if round_number < 0:
        raise ValueError(f"round_number must be >= 0, got {round_number}")
    ltp = quote.last_price
    sign = 1 if side is Side.BUY else -1
    notes: list[str] = []
    tick = quote.tick_size
    if not tick or tick <= 0:
        tick = FALLBACK_TICK
        notes.append(f"no tick size from the broker: rounded to ₹{FALLBACK_TICK}")
    widen = policy.reprice_step_pct * round_number

    if policy.kind is PricingKind.MARKET:
        protection = policy.market_protection_pct
        if protection != AUTO_PROTECTION:
            protection = min(100.0, protection + widen)
            worst, note = clamp_to_circuit(ltp * (1 + sign * protection / 100), quote)
            if note:
                notes.append(note)
            worst_price: float | None = round_to_tick(worst, tick, side)
        else:
            worst_price = None  # the broker's automatic band: not known in advance
        return PricedOrder(None, protection, ltp, worst_price, tuple(notes))

    buffer = policy.limit_buffer_pct + widen
    raw = ltp * (1 + sign * buffer / 100)
    clamped, note = clamp_to_circuit(raw, quote)
    if note:
        notes.append(note)
    price = round_to_tick(clamped, tick, side)
    # Rounding inwards can leave the band only if the band edge is off the tick grid.
    if quote.upper_circuit is not None and price > quote.upper_circuit:
        price = round_to_tick(quote.upper_circuit, tick, Side.BUY)
    if quote.lower_circuit is not None and price < quote.lower_circuit:
        price = round_to_tick(quote.lower_circuit, tick, Side.SELL)
    if price <= 0:
        raise ValueError(f"{quote.symbol}: the priced limit {price} is not a usable price")
    return PricedOrder(price, None, ltp, price, tuple(notes))


__all__ = [
    "FALLBACK_TICK",
    "PricedOrder",
    "PricingKind",
    "PricingPolicy",
    "clamp_to_circuit",
    "price_order",
    "round_to_tick",
]
