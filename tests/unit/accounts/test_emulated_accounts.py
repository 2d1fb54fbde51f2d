"""Both emulated brokers read through the real client libraries (kiteconnect, smartapi-python):
their holdings combined, planned both ways and allocated back to the accounts.

The Zerodha account holds 62% INFY, the AngelOne account none; the whole is near target except
a new ITC weight. Separate mode sells INFY at Zerodha and buys it at AngelOne; combined buys
only ITC, in the account that can fund it at the least charge.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rebalance.accounts.combine import AccountHoldings, combine_accounts
from rebalance.accounts.compare import compare_modes
from rebalance.brokers.angelone import AngelOneBroker
from rebalance.brokers.base import Broker
from rebalance.brokers.ratelimit import UNLIMITED
from rebalance.brokers.retry import RetryPolicy
from rebalance.brokers.zerodha import ZerodhaBroker
from rebalance.domain.market import Instrument, Side
from rebalance.policy import Policy
from rebalance.testing.emulators import KiteEmulator, SmartApiEmulator
from rebalance.testing.emulators._server import DEMO_HOLDINGS, Holding

from .support import TAKEN_AT, TODAY

TARGETS = {"INFY": 0.34, "TCS": 0.19, "HDFCBANK": 0.20, "RELIANCE": 0.24, "ITC": 0.03}
POLICY = Policy(rebalance_budget_pct=50, max_position_weight_pct=40)
RETRY = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0, rate_limited_min_delay=0.0)


def demo(symbol: str, quantity: int) -> Holding:
    """An emulator holding of a demo symbol (its ISIN, price and AngelOne token)."""
    found = next(h for h in DEMO_HOLDINGS if h.symbol == symbol)
    return Holding(**{**found.__dict__, "quantity": quantity})


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[tuple[Broker, Broker, SmartApiEmulator]]:
    kite_holdings = [demo("INFY", 95), demo("TCS", 20), demo("HDFCBANK", 10)]
    angel_holdings = [demo("RELIANCE", 100), demo("HDFCBANK", 50), demo("TCS", 5)]
    kite = KiteEmulator(cash=10_000.0, holdings=kite_holdings)
    angel = SmartApiEmulator(cash=10_000.0, holdings=angel_holdings, ddpi=False)
    with kite, angel:
        zerodha = ZerodhaBroker(
            kite.api_key, kite.access_token, root=kite.url, timeout=2.0, limits=UNLIMITED,
            retry=RETRY, sleep=lambda _s: None,
        )  # fmt: skip
        angelone = AngelOneBroker(
            angel.api_key, angel.client_code, angel.pin, angel.totp_secret,
            cache_dir=tmp_path / "cache", root=angel.url, instrument_master_url=angel.master_url,
            timeout=2.0, limits=UNLIMITED, retry=RETRY, sleep=lambda _s: None,
            demat_authorisation="tpin",
        )  # fmt: skip
        yield zerodha, angelone, angel


def read(name: str, broker_name: str, broker: Broker) -> AccountHoldings:
    return AccountHoldings(
        name, broker_name, tuple(broker.holdings()), broker.funds().available_cash
    )


def test_separate_trades_infy_both_ways_combined_only_buys_itc(
    brokers: tuple[Broker, Broker, SmartApiEmulator],
) -> None:
    zerodha, angelone, angel = brokers
    angel.authorise("RELIANCE", 30)  # AngelOne sells with CDSL TPIN: 30 of 100 authorised
    accounts = [read("kite", "zerodha", zerodha), read("angel", "angelone", angelone)]
    quotes = zerodha.quotes([Instrument(s) for s in TARGETS])
    combined = combine_accounts(accounts, taken_at=TAKEN_AT, quotes=quotes, target_symbols=TARGETS)
    assert combined.snapshot.cash == 20_000.0
    hdfc = combined.snapshot.positions.set_index("symbol").loc["HDFCBANK"]
    assert (hdfc["quantity"], hdfc["isin"]) == (60, "INE040A01034")
    assert combined.account("angel").sellable["RELIANCE"] == 30  # the authorisation, read back
    result = compare_modes(combined, TARGETS, POLICY, today=TODAY)

    separate = {(o.account, o.symbol): o.side for o in result.separate.orders}
    assert separate[("kite", "INFY")] is Side.SELL
    assert separate[("angel", "INFY")] is Side.BUY
    assert "INFY" in result.separate.both_ways
    # ITC only, split: neither account's ₹10,000 pays for the whole 3%
    assert {(o.symbol, o.side) for o in result.combined.orders} == {("ITC", Side.BUY)}
    (itc,) = result.plan.orders
    assert sum(o.quantity for o in result.combined.orders) == itc.quantity
    assert all(s.cash_after is not None and s.cash_after >= 0 for s in result.allocation.splits)
    assert result.allocation.complete
    assert result.combined.charges < result.separate.charges
    assert result.combined.turnover < result.separate.turnover / 5
