"""Credentials and adapter builders shared by the broker tests (conftest.py holds fixtures)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rebalance.brokers.angelone import AngelOneBroker
from rebalance.brokers.ratelimit import UNLIMITED
from rebalance.brokers.retry import RetryPolicy
from rebalance.brokers.zerodha import ZerodhaBroker
from rebalance.testing.emulators import KiteEmulator, SmartApiEmulator
from rebalance.testing.emulators._server import fake_credential, fake_digits, fake_totp_secret

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEMO_CSV = PROJECT_ROOT / "portfolios" / "data" / "demo_holdings.csv"
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0, rate_limited_min_delay=0.0)
NO_SLEEP: Callable[[float], None] = lambda _s: None  # noqa: E731

# Made fresh each run (nothing credential-like is committed), distinctive enough that a leak scan
# cannot match by accident.
KITE_CREDS = {
    "api_key": fake_credential("kite-key"),
    "access_token": fake_credential("kite-token"),
    "api_secret": fake_credential("kite-secret"),
    "request_token": fake_credential("kite-request"),
}
ANGEL_CREDS = {
    "api_key": fake_credential("angel-key"),
    "client_code": "Z" + fake_digits(7),
    "pin": fake_digits(6),
    "totp_secret": fake_totp_secret(),
}


def zerodha_broker(kite: KiteEmulator, **kw: object) -> ZerodhaBroker:
    args: dict[str, object] = {
        "root": kite.url,
        "timeout": 0.5,
        "limits": UNLIMITED,
        "retry": FAST_RETRY,
        "sleep": NO_SLEEP,
    }
    args.update(kw)
    return ZerodhaBroker(kite.api_key, kite.access_token, **args)  # type: ignore[arg-type]


def angelone_broker(angel: SmartApiEmulator, cache_dir: Path, **kw: object) -> AngelOneBroker:
    args: dict[str, object] = {
        "cache_dir": cache_dir,
        "root": angel.url,
        "instrument_master_url": angel.master_url,
        "timeout": 0.5,
        "limits": UNLIMITED,
        "retry": FAST_RETRY,
        "sleep": NO_SLEEP,
    }
    args.update(kw)
    return AngelOneBroker(
        angel.api_key,
        angel.client_code,
        angel.pin,
        angel.totp_secret,
        **args,  # type: ignore[arg-type]
    )
