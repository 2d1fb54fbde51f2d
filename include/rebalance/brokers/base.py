"""The one Broker interface, its value types and the project's broker error hierarchy.

Every adapter (``zerodha.py``, ``angelone.py``, ``paper.py``) implements ``Broker`` and translates
its client library's exceptions into the errors below, so that retry rules depend on our types:

* reads (holdings, quotes, cash, orders) may be retried on ``TemporaryBrokerError``;
* an order placement is never retried blindly: ``OrderOutcomeUnknown`` is settled by reading the
  order book and matching our tag (see ``execution.py``), ``OrderRejected`` is definitive.
"""

# ruff: noqa: N818  (the error names are a published contract: others code against them)

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Protocol, runtime_checkable

from rebalance.domain.market import Holding, Instrument, Quote, Side


class OrderStatus(StrEnum):
    """An order's state at the broker, in our words."""

    OPEN = "open"  # accepted, waiting in the book (includes trigger pending / modified)
    COMPLETE = "complete"  # fully filled
    PARTIALLY_FILLED = "partially_filled"  # some filled, the rest still open
    CANCELLED = "cancelled"  # cancelled, possibly after a partial fill (see filled_quantity)
    REJECTED = "rejected"  # refused by the broker or exchange

    @property
    def is_terminal(self) -> bool:
        return self in (OrderStatus.COMPLETE, OrderStatus.CANCELLED, OrderStatus.REJECTED)


MAX_TAG_LEN = 20  # both brokers: Kite ``tag`` and SmartAPI ``ordertag`` take up to 20 characters
AUTO_PROTECTION = -1.0  # market_protection: the broker picks the protection band (Kite's -1)


@dataclass(frozen=True)
class OrderRequest:
    """A delivery (CNC) order carrying our idempotency tag.

    * LIMIT: ``price`` set (rupees, on the tick, inside the day's circuit: see ``pricing.py``).
    * MARKET: ``price`` None. Since 1 April 2026 an API market order needs ``market_protection``:
      a percentage (0 < p <= 100) or ``-1`` (automatic); ``0`` is refused by the brokers and here.
      ``None`` leaves it to the adapter's default (see ``default_market_protection``).
    """

    symbol: str
    exchange: str
    side: Side
    quantity: int
    tag: str  # deterministic, alphanumeric, <= 20 chars (see brokers.tags)
    price: float | None = None  # None = market order
    market_protection: float | None = None  # percent, or -1 = automatic; market orders only

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise ValueError(f"{self.symbol}: order quantity must be positive, got {self.quantity}")
        if not self.tag.isalnum() or len(self.tag) > MAX_TAG_LEN:
            raise ValueError(
                f"order tag {self.tag!r} must be alphanumeric, at most {MAX_TAG_LEN} characters"
            )
        if self.price is not None and not self.price > 0:
            raise ValueError(f"{self.symbol}: a limit price must be > 0, got {self.price}")
        if self.market_protection is not None:
            check_market_protection(self.market_protection, self.symbol)
            if self.price is not None:
                raise ValueError(
                    f"{self.symbol}: market_protection is for market orders; a limit order "
                    "carries its price instead"
                )

    @property
    def order_type(self) -> str:
        return "MARKET" if self.price is None else "LIMIT"


def check_market_protection(value: float, what: str = "order") -> float:
    """``value`` if it is a valid protection (-1, or 0 < p <= 100 percent), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what}: market_protection must be a number, got {value!r}")
    if value == AUTO_PROTECTION or 0 < value <= 100:
        return float(value)
    raise ValueError(
        f"{what}: market_protection must be -1 (automatic) or a percentage above 0 and at most "
        f"100, got {value!r} (0 means unprotected, which the brokers refuse since 1 April 2026)"
    )


@dataclass(frozen=True)
class OrderReport:
    """What the broker says about one order."""

    broker_order_id: str
    tag: str | None
    symbol: str
    exchange: str
    side: Side
    quantity: int
    status: OrderStatus
    filled_quantity: int = 0
    average_price: float | None = None
    message: str | None = None  # the broker's status message (e.g. rejection reason)
    raw_status: str | None = None


@dataclass(frozen=True)
class Funds:
    available_cash: float  # rupees usable for delivery buys now


# --- errors ---------------------------------------------------------------------------------


@dataclass
class BrokerError(Exception):
    """Base of every broker failure. ``broker`` names which, ``message`` says it in words."""

    broker: str
    message: str
    details: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.broker}: {self.message}"


class AuthError(BrokerError):
    """Credentials missing, wrong or expired (Kite's access token expires daily). Not retried."""


class TemporaryBrokerError(BrokerError):
    """Network error, timeout on a read, 5xx on a read: safe to retry a read."""


class RateLimited(TemporaryBrokerError):
    """HTTP 429 or the broker's 'too many requests'. Retry after a pause."""


class BadResponse(BrokerError):
    """The broker answered with data we cannot trust (missing fields, zero price, ...)."""


class OrderRejected(BrokerError):
    """Definitive: the broker refused the order. Nothing was placed."""


class SellNotAuthorised(OrderRejected):
    """A sell the depository has not authorised (no DDPI / POA / eDIS for this scrip today).

    Kite answers HTTP 428; SmartAPI a TPIN / eDIS refusal. Definite: nothing was placed.
    """


class UnregisteredIP(OrderRejected):
    """The order came from an IP not registered for the API key (SEBI retail-algo rules, 1 April
    2026). Definite, never retried: only routing the order worker through the registered static
    IP fixes it (docs/deploy.md)."""


class OrderOutcomeUnknown(BrokerError):
    """We sent an order and do not know whether it was placed (timeout, 5xx, unreadable reply).

    Never resend: settle by reading the order book and matching the tag.
    """


class OrderNotFound(BrokerError):
    """The broker has no order with this id (in today's book)."""


class CancelRejected(BrokerError):
    """The broker refused to cancel (the order is already complete, rejected or cancelled)."""


@dataclass(frozen=True)
class BrokerCapabilities:
    """What the pipeline may rely on for one broker adapter."""

    # Holdings include today's delivery buys exactly once (positions merged, tested against the
    # emulator): a second run on the same day plans on true quantities, so the one-live-run-per-
    # day refusal is not needed for this broker.
    same_day_quantities_reliable: bool = False
    # Holding.authorised_quantity is read from the broker (None where DDPI / POA applies).
    reads_sell_authorisation: bool = False
    # The broker estimates an order's charges itself (``estimate_charges``).
    charge_estimates: bool = False


@dataclass(frozen=True)
class ChargeEstimate:
    """The broker's own estimate of one order's charges, rupees (for the approval preview)."""

    symbol: str
    side: Side
    quantity: int
    price: float
    total: float
    breakdown: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Broker(Protocol):
    """One account at one broker."""

    name: str  # "zerodha" | "angelone" | "paper"

    def holdings(self) -> list[Holding]:
        """Delivery holdings with last prices. Raises BrokerError subclasses."""
        ...

    def quotes(self, instruments: Sequence[Instrument]) -> dict[str, Quote]:
        """Last prices keyed by canonical symbol; batches internally within the broker's limit."""
        ...

    def funds(self) -> Funds:
        """Cash available for delivery buys."""
        ...

    def place_order(self, order: OrderRequest) -> str:
        """Send one order; return the broker's order id.

        Raises OrderRejected (definitive) or OrderOutcomeUnknown (settle by reconciliation).
        """
        ...

    def orders(self) -> list[OrderReport]:
        """Today's order book (every order of the account, ours carry our tag)."""
        ...

    def order(self, broker_order_id: str) -> OrderReport:
        """The current state of one order, with fills."""
        ...

    def cancel(self, broker_order_id: str) -> None:
        """Cancel an open order."""
        ...


def capabilities_of(broker: object) -> BrokerCapabilities:
    """The capabilities a broker declares (``capabilities`` attribute); none if it declares none."""
    caps = getattr(broker, "capabilities", None)
    return caps if isinstance(caps, BrokerCapabilities) else BrokerCapabilities()


@dataclass(frozen=True)
class Candle:
    """One daily candle: the trading day (IST) and its prices in rupees, volume in shares."""

    day: date
    open: float
    high: float
    low: float
    close: float
    volume: int = 0


@runtime_checkable
class CandleSource(Protocol):
    """A broker that serves daily price history (Kite historical data, SmartAPI candle data)."""

    def candles(self, instrument: Instrument, first: date, last: date) -> list[Candle]:
        """Daily candles of ``instrument`` for the trading days in ``[first, last]``, oldest first.

        A read: retried on ``TemporaryBrokerError``; a day without a candle is simply absent.
        """
        ...
