"""Credentials and adapter builders shared by the broker tests (conftest.py holds fixtures)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rebalance.brokers.angelone import AngelOneBroker
from rebalance.brokers.ratelimit import UNLIMITED
from rebalance.brokers.retry import RetryPolicy
from rebalance.brokers.zerodha import ZerodhaBroker
from rebalance.testing.emulators import KiteEmulator, SmartApiEmulator

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEMO_CSV = PROJECT_ROOT / "portfolios" / "data" / "demo_holdings.csv"
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0, rate_limited_min_delay=0.0)
NO_SLEEP: Callable[[float], None] = lambda _s: None  # noqa: E731

# Credentials distinctive enough that a scan for them cannot match by accident.
KITE_CREDS = {
    "api_key": "kitekeyQ7w2Zp9",
    "access_token": "kiteTokenV4b8Nq1Lx3",
    "api_secret": "kiteSecretR6t0Yh5Mm",
    "request_token": "kiteReqTok2Jd8",
}
ANGEL_CREDS = {
    "api_key": "angelKeyP3s9Fw",
    "client_code": "Z7654321",
    "pin": "918273",
    "totp_secret": "KRUGS4ZANFZSAYJAON2HE2LOM4QQ",
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
