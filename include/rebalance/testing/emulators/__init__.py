"""Local HTTP emulators of the brokers' REST APIs, for tests that run the real client libraries.

    from rebalance.testing.emulators import KiteEmulator, SmartApiEmulator

    with KiteEmulator() as kite:            # 127.0.0.1, a free port, a daemon thread
        kite.url                            # root URL for KiteConnect(root=...)
        kite.faults.rate_limit_next = 2     # fault knobs: see Faults
        kite.orders_received                # placement requests received
        kite.orders_for_tag("ABC123")       # orders placed with that tag

Fault knobs (``emulator.faults``, a ``Faults``; ``reset_faults()`` clears them): expired_token,
rate_limit_next, server_error_next, slow_seconds, reject_next_order, unauthorised_sells,
partial_fill, place_then_timeout, timeout_without_placing, timeout_delay, holdings_patch,
quote_patch (``MISSING`` removes a field).
"""

from rebalance.testing.emulators._server import DEMO_HOLDINGS, MISSING, Faults, Holding
from rebalance.testing.emulators.kite import KiteEmulator
from rebalance.testing.emulators.smartapi import SmartApiEmulator

__all__ = ["DEMO_HOLDINGS", "MISSING", "Faults", "Holding", "KiteEmulator", "SmartApiEmulator"]
