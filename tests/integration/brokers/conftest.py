"""Fixtures: the emulators, and one ``BrokerUnderTest`` per broker for the contract suite."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from brokers_support import (  # type: ignore[import-not-found]
    ANGEL_CREDS,
    DEMO_CSV,
    KITE_CREDS,
    angelone_broker,
    zerodha_broker,
)

from rebalance.brokers.base import Broker, OrderRequest
from rebalance.brokers.paper import PaperBroker
from rebalance.domain.market import Instrument, Side
from rebalance.testing.emulators import KiteEmulator, SmartApiEmulator


@pytest.fixture
def kite() -> Iterator[KiteEmulator]:
    with KiteEmulator(
        api_key=KITE_CREDS["api_key"],
        access_token=KITE_CREDS["access_token"],
        api_secret=KITE_CREDS["api_secret"],
        request_token=KITE_CREDS["request_token"],
    ) as emulator:
        yield emulator  # type: ignore[misc]


@pytest.fixture
def angel() -> Iterator[SmartApiEmulator]:
    with SmartApiEmulator(
        api_key=ANGEL_CREDS["api_key"],
        client_code=ANGEL_CREDS["client_code"],
        pin=ANGEL_CREDS["pin"],
        totp_secret=ANGEL_CREDS["totp_secret"],
    ) as emulator:
        yield emulator  # type: ignore[misc]


@dataclass
class BrokerUnderTest:
    """A broker plus what the contract needs to know about its account."""

    broker: Broker
    held: str  # a symbol the account holds (with > 5 shares)
    not_held: str  # a symbol it can quote and buy but does not hold
    make_open_order: Callable[[str], str]  # tag -> id of an order left open


@pytest.fixture(params=["paper", "zerodha", "angelone"])
def under_test(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerUnderTest]:
    if request.param == "paper":
        csv = tmp_path / "holdings.csv"
        shutil.copy(DEMO_CSV, csv)
        with csv.open("a") as fh:  # a priced row with no shares: quotable, not held
            fh.write("NESTLEIND,NSE,0,2250.00,0,0,2240.00,,INE239A01024\n")
        broker = PaperBroker("contract", csv, 50_000.0, tmp_path / "state")

        def open_paper(tag: str) -> str:  # a limit buy below the market stays open
            return broker.place_order(OrderRequest("ITC", "NSE", Side.BUY, 2, tag, price=100.0))

        yield BrokerUnderTest(broker, "INFY", "NESTLEIND", open_paper)
        return
    with KiteEmulator() if request.param == "zerodha" else SmartApiEmulator() as emulator:
        if isinstance(emulator, KiteEmulator):
            b: Broker = zerodha_broker(emulator)
            emulator.holdings.pop("TCS")  # so one instrument is quotable but not held
            emulator.prices["TCS"] = 4102.30
        else:
            assert isinstance(emulator, SmartApiEmulator)
            b = angelone_broker(emulator, tmp_path / "cache")

        def open_emulated(tag: str) -> str:  # a partial fill stays open
            emulator.faults.partial_fill["INFY"] = 1
            try:
                return b.place_order(OrderRequest("INFY", "NSE", Side.BUY, 3, tag))
            finally:
                emulator.faults.partial_fill.clear()

        yield BrokerUnderTest(
            b, "INFY", "TCS" if request.param == "zerodha" else "ITC", open_emulated
        )


def instruments(*symbols: str) -> list[Instrument]:
    return [Instrument(s) for s in symbols]


@dataclass
class Emulated:
    """An emulated broker: the adapter (real client inside) and the emulator behind it."""

    name: str
    emulator: KiteEmulator | SmartApiEmulator
    make: Callable[..., Broker]  # keyword overrides -> a fresh adapter

    @property
    def broker(self) -> Broker:
        return self.make()


@pytest.fixture(params=["zerodha", "angelone"])
def emulated(
    request: pytest.FixtureRequest, tmp_path: Path, kite: KiteEmulator, angel: SmartApiEmulator
) -> Emulated:
    if request.param == "zerodha":
        return Emulated("zerodha", kite, lambda **kw: zerodha_broker(kite, **kw))
    return Emulated(
        "angelone", angel, lambda **kw: angelone_broker(angel, tmp_path / "cache", **kw)
    )
