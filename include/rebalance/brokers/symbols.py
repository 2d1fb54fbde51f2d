"""One canonical symbol per instrument across brokers.

Canonical = the exchange's trading symbol of the equity, as Kite shows it: NSE "INFY", BSE
"INFY". AngelOne's instrument master names NSE equities with a series suffix ("INFY-EQ",
"GOLDBEES-EQ", "SGBJUN31-GB" ...) and BSE equities without one. The ISIN, when a broker gives it,
is kept beside the symbol: it is the one identifier that is the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

# NSE series whose instruments we treat as delivery equities (EQ) or ETFs / bonds listed as such.
NSE_EQUITY_SERIES = ("EQ", "BE", "BZ", "SM", "ST", "GB", "IV", "RR")


@dataclass(frozen=True)
class CanonicalSymbol:
    symbol: str  # "INFY"
    exchange: str  # "NSE" | "BSE"
    isin: str | None = None

    @property
    def key(self) -> str:
        return f"{self.exchange}:{self.symbol}"


def canonical(symbol: str, exchange: str = "NSE") -> str:
    """The canonical symbol for a broker's trading symbol: "INFY-EQ" on NSE -> "INFY"."""
    s = symbol.strip().upper()
    if exchange.upper() == "NSE" and "-" in s:
        base, series = s.rsplit("-", 1)
        if series in NSE_EQUITY_SERIES and base:
            return base
    return s


def angelone_symbol(symbol: str, exchange: str = "NSE", series: str = "EQ") -> str:
    """AngelOne's trading symbol for a canonical one: NSE "INFY" -> "INFY-EQ"; BSE unchanged."""
    s = canonical(symbol, exchange)
    return f"{s}-{series}" if exchange.upper() == "NSE" else s


def kite_instrument(symbol: str, exchange: str = "NSE") -> str:
    """Kite's instrument key: "NSE:INFY"."""
    return f"{exchange.upper()}:{canonical(symbol, exchange)}"


__all__ = [
    "NSE_EQUITY_SERIES",
    "CanonicalSymbol",
    "angelone_symbol",
    "canonical",
    "kite_instrument",
]
