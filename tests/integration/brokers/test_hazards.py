"""Secrets stay out of logs and files; the SmartAPI client's side effects stay contained."""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from brokers_support import ANGEL_CREDS, KITE_CREDS, angelone_broker, zerodha_broker  # type: ignore[import-not-found]

from rebalance.brokers.angelone import InstrumentMaster
from rebalance.brokers.base import BrokerError, OrderRequest, TemporaryBrokerError
from rebalance.brokers.retry import RetryPolicy
from rebalance.brokers.tags import order_tag
from rebalance.domain.market import Instrument, Side
from rebalance.testing.emulators import MISSING, KiteEmulator, SmartApiEmulator


def _tour(broker: Any, em: Any) -> list[str]:
    """Every path that logs or raises: success, auth, 429, timeouts, rejections, bad data."""
    said: list[str] = [repr(broker)]

    def attempt(call: Any) -> None:
        try:
            call()
        except BrokerError as exc:
            said.append(str(exc))
            said.append(repr(exc))

    tag = order_tag("leak", "acct", 1)
    attempt(broker.holdings)
    attempt(lambda: broker.quotes([Instrument("INFY"), Instrument("ITC")]))
    attempt(lambda: broker.place_order(OrderRequest("INFY", "NSE", Side.SELL, 1, tag)))
    em.faults.unauthorised_sells.add("TCS")
    attempt(lambda: broker.place_order(OrderRequest("TCS", "NSE", Side.SELL, 1, tag)))
    attempt(broker.orders)
    em.faults.reject_next_order = "RMS: margin exceeds"
    attempt(lambda: broker.place_order(OrderRequest("TCS", "NSE", Side.BUY, 1, tag)))
    em.faults.rate_limit_next = 5
    attempt(broker.funds)
    em.faults.server_error_next = 2
    attempt(broker.holdings)
    em.faults.holdings_patch["INFY"] = {"average_price": MISSING, "averageprice": MISSING}
    attempt(broker.holdings)
    em.faults.holdings_patch.clear()
    em.faults.place_then_timeout = 1
    em.faults.timeout_delay = 0.5
    attempt(lambda: broker.place_order(OrderRequest("INFY", "NSE", Side.SELL, 1, tag)))
    em.faults.slow_seconds = 0.5
    attempt(broker.holdings)
    em.faults.slow_seconds = 0.0
    em.faults.expired_token = True
    attempt(broker.funds)
    attempt(lambda: broker.place_order(OrderRequest("INFY", "NSE", Side.SELL, 1, tag)))
    em.faults.expired_token = False
    return said


def test_no_credential_in_any_log_output_file_or_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    kite: KiteEmulator,
    angel: SmartApiEmulator,
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    caplog.set_level(logging.DEBUG)  # everything: urllib3, kiteconnect, SmartApi, ours
    logzero_logger = logging.getLogger("logzero_default")  # the client's header dumps go here
    logzero_logger.addHandler(caplog.handler)
    try:
        retry = RetryPolicy(attempts=2, base_delay=0, max_delay=0)
        said = _tour(zerodha_broker(kite, timeout=0.3, retry=retry), kite)
        said += _tour(angelone_broker(angel, tmp_path / "cache", timeout=0.3, retry=retry), angel)
    finally:
        logzero_logger.removeHandler(caplog.handler)
    out, err = capfd.readouterr()
    written = [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()]
    haystack = "\n".join(
        [caplog.text, *(str(r.args) for r in caplog.records), out, err, *written, *said]
    )
    secrets = [
        KITE_CREDS["api_key"],
        KITE_CREDS["access_token"],
        ANGEL_CREDS["api_key"],
        ANGEL_CREDS["pin"],
        ANGEL_CREDS["totp_secret"],
        *angel.jwt_tokens,
    ]
    assert angel.jwt_tokens, "the tour should have logged in to AngelOne"
    assert len(caplog.records) > 5, "the tour should have produced log records to scan"
    leaked = [s for s in secrets if s in haystack]
    assert leaked == []
    assert not (cwd / "logs").exists(), "the SmartAPI client wrote logs/ into the CWD"


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_importing_the_adapter_does_not_import_the_client(tmp_path: Path) -> None:
    result = _run(
        "import sys\n"
        "import rebalance.brokers.angelone, rebalance.brokers.factory, rebalance.brokers.zerodha\n"
        "assert 'SmartApi' not in sys.modules, 'SmartApi imported eagerly'\n"
        "assert 'kiteconnect' not in sys.modules, 'kiteconnect imported eagerly'\n"
        "print('ok')\n",
        tmp_path,
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_client_import_makes_no_network_call_and_writes_nothing(tmp_path: Path) -> None:
    result = _run(
        "import socket\n"
        "def refuse(host, *a, **k):\n"
        "    raise SystemExit('network lookup of ' + str(host))\n"
        "socket.getaddrinfo = refuse\n"
        "from rebalance.brokers.angelone import AngelOneBroker, _import_smartapi\n"
        "module = _import_smartapi()\n"
        "assert module.SmartConnect.clientMacAddress == '02:00:00:00:00:01'\n"
        "from pathlib import Path\n"
        "import pyotp\n"
        "b = AngelOneBroker('k', 'c', '1', pyotp.random_base32(), cache_dir=Path('c'))\n"
        "b._new_client()\n"
        "print('ok')\n",
        tmp_path,
    )
    assert result.stdout.strip() == "ok", result.stderr + result.stdout
    assert "ipify" not in result.stderr
    assert list(tmp_path.iterdir()) == [], "files written into the CWD"


def test_angelone_session_renewed_once_when_expired(
    tmp_path: Path, angel: SmartApiEmulator
) -> None:
    broker = angelone_broker(angel, tmp_path / "cache")
    broker.funds()
    angel.expire_sessions()
    assert broker.funds().available_cash > 0
    assert angel.logins == 2


def test_angelone_wrong_totp_is_an_auth_error(tmp_path: Path, angel: SmartApiEmulator) -> None:
    from rebalance.brokers.angelone import AngelOneBroker
    from rebalance.brokers.base import AuthError

    broker = AngelOneBroker(
        angel.api_key,
        angel.client_code,
        angel.pin,
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",  # someone else's secret
        cache_dir=tmp_path,
        root=angel.url,
        instrument_master_url=angel.master_url,
    )
    with pytest.raises(AuthError, match="TOTP"):
        broker.holdings()


def test_instrument_master_downloaded_at_most_daily(
    tmp_path: Path, angel: SmartApiEmulator
) -> None:
    day = [date(2026, 1, 5)]
    first = InstrumentMaster(tmp_path, angel.master_url, today=lambda: day[0])
    assert first.token("INFY") == ("1594", "INFY-EQ")
    assert first.token("INFY", "BSE") == ("500209", "INFY")
    assert first.token("NOSUCH") is None
    second = InstrumentMaster(tmp_path, angel.master_url, today=lambda: day[0])
    assert second.token("ITC") == ("1660", "ITC-EQ")
    assert angel.master_downloads == 1  # the second read the disk cache
    day[0] = date(2026, 1, 6)
    third = InstrumentMaster(tmp_path, angel.master_url, today=lambda: day[0])
    assert third.token("TCS") == ("11536", "TCS-EQ")
    assert angel.master_downloads == 2


def test_instrument_master_falls_back_to_yesterday_then_fails(
    tmp_path: Path, angel: SmartApiEmulator
) -> None:
    InstrumentMaster(tmp_path, angel.master_url, today=lambda: date(2026, 1, 5)).token("INFY")
    dead = "http://127.0.0.1:9/OpenAPIScripMaster.json"
    stale = InstrumentMaster(tmp_path, dead, timeout=0.5, today=lambda: date(2026, 1, 6))
    assert stale.token("INFY") == ("1594", "INFY-EQ")
    empty = InstrumentMaster(tmp_path / "none", dead, timeout=0.5)
    with pytest.raises(TemporaryBrokerError, match="instrument master"):
        empty.token("INFY")
