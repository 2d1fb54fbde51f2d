"""Checks on what a broker sends back, and the words for its rejections.

Adapters parse every field through these helpers, so a missing field, a zero price or a negative
quantity becomes a ``BadResponse`` that names the broker, the call, the symbol and the field,
instead of a KeyError or a wrong trade.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from rebalance.brokers.base import BadResponse, OrderRejected, OrderReport, SellNotAuthorised
from rebalance.domain.market import Holding

# Phrases the brokers use when the depository has not authorised a sell (no DDPI / POA, no
# eDIS / TPIN authorisation for today). Kite: "... holdings are not authorised for sale ...
# CDSL TPIN"; SmartAPI: "... Please authorize your holdings (eDIS) ...".
_SELL_AUTH = re.compile(
    r"not\s+authori[sz]ed|authori[sz]e\s+(your\s+)?holdings|\bedis\b|\bddpi\b|\btpin\b|"
    r"\bpoa\b|cdsl\s+authori[sz]ation|pledge.*not.*authori",
    re.IGNORECASE,
)


# The brokers' refusals of an order sent from an IP not registered for the API key (SEBI's
# retail-algo framework, from 1 April 2026). SmartAPI: "AG7002 Access denied: Unregistered IP
# address. Register your IP before retrying." Kite: the text is not published; its announcement
# says such orders "will be rejected", so any refusal naming an unregistered / not whitelisted
# IP is recognised.
UNREGISTERED_IP_CODES = frozenset({"AG7002"})
_UNREGISTERED_IP = re.compile(
    r"unregistered\s+ip|ip\s+(address\s+)?(is\s+)?not\s+(registered|whitelisted|allowed)|"
    r"not\s+(a\s+)?(registered|whitelisted)\s+ip|ip\s+whitelist",
    re.IGNORECASE,
)


def is_unregistered_ip(message: str | None, code: str | None = None) -> bool:
    return (code or "") in UNREGISTERED_IP_CODES or bool(_UNREGISTERED_IP.search(message or ""))


def unregistered_ip_text(broker: str, registered_ips: tuple[str, ...] | list[str]) -> str:
    where = {
        "zerodha": "developers.kite.trade > Profile > IP Whitelist (up to two IPs, changed at "
        "most once a week)",
        "angelone": "the SmartAPI app's settings at smartapi.angelone.in (primary static IP)",
    }.get(broker, "the broker's developer console")
    ips = f" ({', '.join(registered_ips)})" if registered_ips else ""
    return (
        f"order refused: it was sent from an IP that is not registered for this API key. Orders "
        f"must leave from the registered static IP{ips}: run place_orders on the worker queue "
        f"that egresses from it (docs/deploy.md), or register this worker's IP in {where}. "
        "Not retried"
    )


AUTHORISE_WHERE = {
    "zerodha": "Kite > Holdings > Authorisation (CDSL TPIN), or sign the DDPI",
    "angelone": "the Angel One app (eDIS authorisation with CDSL TPIN), or submit the DDPI",
}


def authorisation_needed(
    holdings: Sequence[Holding], sells: Mapping[str, int], broker: str
) -> list[dict[str, Any]]:
    """The sells that exceed today's depository authorisation, for the approval preview:
    ``[{"symbol", "shares", "authorised", "where"}]`` (shares = what still needs authorising).

    ``sells``: symbol -> shares the plan sells. Holdings without ``authorised_quantity`` (DDPI /
    POA) never need it.
    """
    by_symbol = {h.symbol: h for h in holdings}
    out = []
    for symbol, shares in sorted(sells.items()):
        held = by_symbol.get(symbol)
        if held is None or held.authorised_quantity is None or shares <= held.authorised_quantity:
            continue
        out.append(
            {
                "symbol": symbol,
                "shares": shares - held.authorised_quantity,
                "authorised": held.authorised_quantity,
                "where": AUTHORISE_WHERE.get(broker, "your depository (CDSL TPIN / eDIS)"),
            }
        )
    return out


def is_sell_not_authorised(message: str | None) -> bool:
    return bool(message) and bool(_SELL_AUTH.search(message or ""))


def sell_not_authorised_text(symbol: str, quantity: int | None, broker: str) -> str:
    qty = f"{quantity} " if quantity else ""
    how = {
        "zerodha": "authorise it in Kite (Holdings > Authorisation, CDSL TPIN) or sign the DDPI",
        "angelone": "authorise it in the Angel One app (eDIS with CDSL TPIN) or submit the DDPI",
    }.get(broker, "authorise the sale with your depository (eDIS / TPIN) or set up DDPI")
    return (
        f"sell of {qty}{symbol} was refused: your demat holdings of {symbol} are not authorised "
        f"for sale today; {how}, then run the rebalance again"
    )


def rejection_error(report: OrderReport, broker: str) -> OrderRejected:
    """The error that explains a REJECTED order report (SellNotAuthorised where it applies)."""
    details = {"order_id": report.broker_order_id, "symbol": report.symbol}
    raw = report.message or "no reason given"
    if report.side == "SELL" and is_sell_not_authorised(raw):
        return SellNotAuthorised(
            broker,
            sell_not_authorised_text(report.symbol, report.quantity, broker) + f" ({raw})",
            details,
        )
    return OrderRejected(broker, f"{report.side} {report.symbol} rejected: {raw}", details)


class Fields:
    """Typed access to one record of a broker response, with errors that say where."""

    def __init__(self, broker: str, what: str, record: Any, label: str | None = None) -> None:
        if not isinstance(record, Mapping):
            raise BadResponse(broker, f"{what}: expected an object, got {type(record).__name__}")
        self.broker = broker
        self.what = what
        self.record = record
        self.label = label

    def _where(self, name: str) -> str:
        who = f" {self.label}" if self.label else ""
        return f"{self.what}{who}: field '{name}'"

    def bad(self, name: str, problem: str) -> BadResponse:
        return BadResponse(
            self.broker, f"{self._where(name)} {problem}", {"field": name, "what": self.what}
        )

    def has(self, name: str) -> bool:
        return self.record.get(name) not in (None, "")

    def text(self, name: str, *, default: str | None = None) -> str:
        value = self.record.get(name)
        if value in (None, ""):
            if default is not None:
                return default
            raise self.bad(name, "is missing")
        return str(value)

    def opt_text(self, name: str) -> str | None:
        value = self.record.get(name)
        return None if value in (None, "") else str(value)

    def number(self, name: str, *, default: float | None = None) -> float:
        value = self.record.get(name)
        if value in (None, ""):
            if default is not None:
                return default
            raise self.bad(name, "is missing")
        if isinstance(value, bool):
            raise self.bad(name, f"is not a number ({value!r})")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise self.bad(name, f"is not a number ({value!r})") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise self.bad(name, f"is not a finite number ({value!r})")
        return number

    def price(self, name: str) -> float:
        """A price that must be > 0 rupees."""
        value = self.number(name)
        if value <= 0:
            raise self.bad(name, f"is {value:g}, not a usable price (must be > 0)")
        return value

    def quantity(self, name: str, *, default: int | None = None) -> int:
        """A share count that must be a whole number >= 0."""
        value = self.number(name, default=None if default is None else float(default))
        if value < 0:
            raise self.bad(name, f"is {value:g}, a negative quantity")
        if value != int(value):
            raise self.bad(name, f"is {value:g}, not a whole number of shares")
        return int(value)


__all__ = [
    "AUTHORISE_WHERE",
    "UNREGISTERED_IP_CODES",
    "Fields",
    "authorisation_needed",
    "is_sell_not_authorised",
    "is_unregistered_ip",
    "rejection_error",
    "sell_not_authorised_text",
    "unregistered_ip_text",
]
