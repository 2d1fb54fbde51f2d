"""`rebalance broker login zerodha` against the Kite emulator; make_broker's connection layout."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from brokers_support import ANGEL_CREDS, KITE_CREDS, PROJECT_ROOT  # type: ignore[import-not-found]
from typer.testing import CliRunner

import rebalance.cli.broker  # noqa: F401  (registers the command)
from rebalance.brokers.angelone import AngelOneBroker
from rebalance.brokers.base import AuthError
from rebalance.brokers.factory import connection_fields, make_broker, redacted
from rebalance.brokers.paper import PaperBroker
from rebalance.brokers.zerodha import ZerodhaBroker
from rebalance.cli import app
from rebalance.domain.market import Instrument
from rebalance.portfolio import Account
from rebalance.testing.emulators import KiteEmulator, SmartApiEmulator

runner = CliRunner()


def _login(kite: KiteEmulator, env_file: Path, *extra: str, secret: str | None = None) -> object:
    args = [
        "broker", "login", "zerodha",
        "--api-key", kite.api_key,
        "--request-token", KITE_CREDS["request_token"],
        "--root", kite.url,
        "--env-file", str(env_file),
        *extra,
    ]  # fmt: skip
    env = {"KITE_API_SECRET": secret} if secret else {"KITE_API_SECRET": ""}
    return runner.invoke(app, args, env=env, input=None if secret else kite.api_secret + "\n")


def test_login_stores_the_token_in_the_env_file_and_the_factory_uses_it(
    tmp_path: Path, kite: KiteEmulator
) -> None:
    env_file = tmp_path / ".env"
    old = {"conn_type": "generic", "login": "old", "password": "stale", "extra": {"timeout": 5}}
    env_file.write_text(f"AIRFLOW_UID=50000\nAIRFLOW_CONN_ZERODHA_MAIN='{json.dumps(old)}'\n")
    result = _login(kite, env_file, secret=KITE_CREDS["api_secret"])
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    output = result.output  # type: ignore[attr-defined]
    assert "Stored today's access token" in output
    assert KITE_CREDS["api_secret"] not in output
    assert kite.access_token not in output  # the new token is not echoed
    text = env_file.read_text()
    assert text.startswith("AIRFLOW_UID=50000\n")
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert KITE_CREDS["api_secret"] not in text
    line = next(x for x in text.splitlines() if x.startswith("AIRFLOW_CONN_ZERODHA_MAIN="))
    conn = json.loads(line.split("=", 1)[1].strip("'"))
    assert conn["password"] == kite.access_token
    assert conn["extra"]["timeout"] == 5  # other fields kept
    account = Account(name="zerodha_main", broker="zerodha", connection_id="zerodha_main")
    broker = make_broker(
        account, conn, state_dir=tmp_path, portfolio_file=tmp_path / "p.yaml"
    )  # the connection's extra.root points at the emulator
    assert isinstance(broker, ZerodhaBroker)
    assert broker.funds().available_cash > 0


def test_login_prompts_for_the_secret_without_echo(tmp_path: Path, kite: KiteEmulator) -> None:
    result = _login(kite, tmp_path / ".env")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert kite.api_secret not in result.output  # type: ignore[attr-defined]


def test_login_with_a_used_request_token_says_what_to_do(
    tmp_path: Path, kite: KiteEmulator
) -> None:
    kite.request_token = "alreadyused"
    result = _login(kite, tmp_path / ".env", secret=KITE_CREDS["api_secret"])
    assert result.exit_code == 1
    assert "request_token" in result.output  # type: ignore[attr-defined]
    assert not (tmp_path / ".env").exists()


def test_login_print_store(tmp_path: Path, kite: KiteEmulator) -> None:
    result = _login(kite, tmp_path / ".env", "--store", "print", secret=KITE_CREDS["api_secret"])
    assert result.exit_code == 0
    assert "export AIRFLOW_CONN_ZERODHA_MAIN='" in result.output  # type: ignore[attr-defined]
    assert KITE_CREDS["api_secret"] not in result.output  # type: ignore[attr-defined]


def test_connection_layout() -> None:
    fields = connection_fields(
        {"login": "Z1", "password": "1234", "extra": '{"api_key": "k", "totp_secret": "T"}'},
        "angelone",
    )
    assert fields == {"client_code": "Z1", "pin": "1234", "api_key": "k", "totp_secret": "T"}
    assert redacted(fields) == {
        "client_code": "Z1",
        "pin": "REDACTED",
        "api_key": "REDACTED",
        "totp_secret": "REDACTED",
    }
    assert connection_fields({"login": "k", "password": "t"}, "zerodha") == {
        "api_key": "k",
        "access_token": "t",
    }


def test_make_broker_paper_from_the_demo_portfolio(tmp_path: Path) -> None:
    account = Account(name="paper", broker="paper", holdings_file="data/demo_holdings.csv")
    broker = make_broker(
        account, None, state_dir=tmp_path, portfolio_file=PROJECT_ROOT / "portfolios" / "demo.yaml"
    )
    assert isinstance(broker, PaperBroker)
    assert len(broker.holdings()) == 10


def test_make_broker_angelone_with_emulator_urls(tmp_path: Path, angel: SmartApiEmulator) -> None:
    account = Account(name="angel_main", broker="angelone", connection_id="angelone_main")
    credentials = {
        "login": ANGEL_CREDS["client_code"],
        "password": ANGEL_CREDS["pin"],
        "extra": {"api_key": ANGEL_CREDS["api_key"], "totp_secret": ANGEL_CREDS["totp_secret"]},
    }
    broker = make_broker(
        account,
        credentials,
        state_dir=tmp_path,
        portfolio_file=tmp_path / "p.yaml",
        base_urls={"angelone": angel.url, "angelone_instruments": angel.master_url},
    )
    assert isinstance(broker, AngelOneBroker)
    assert {h.symbol for h in broker.holdings()} >= {"INFY"}
    assert (tmp_path / "cache").exists() is False  # master loaded lazily: not yet needed
    assert broker.quotes([Instrument("INFY")])["INFY"].last_price > 0
    assert (tmp_path / "cache" / "angelone-instruments.json").exists()


def test_make_broker_without_credentials_names_the_connection(tmp_path: Path) -> None:
    account = Account(name="z", broker="zerodha", connection_id="zerodha_main")
    with pytest.raises(AuthError, match="zerodha_main"):
        make_broker(account, None, state_dir=tmp_path, portfolio_file=tmp_path / "p.yaml")


def test_rules_2026_from_the_connection() -> None:
    from rebalance.brokers.factory import rules_2026

    assert rules_2026({}) == {
        "registered_ips": (),
        "demat_authorisation": "ddpi",
        "default_market_protection": -1.0,
    }
    fields = {
        "registered_ips": "203.0.113.7, 198.51.100.2",
        "demat_authorisation": "TPIN",
        "default_market_protection": "2.5",
    }
    assert rules_2026(fields) == {
        "registered_ips": ("203.0.113.7", "198.51.100.2"),
        "demat_authorisation": "tpin",
        "default_market_protection": 2.5,
    }
    assert rules_2026({"default_market_protection": "none"})["default_market_protection"] is None
    for bad in ({"default_market_protection": 0}, {"demat_authorisation": "poa"}):
        with pytest.raises(ValueError, match=r"market_protection|demat_authorisation"):
            rules_2026(bad)


def test_bad_2026_fields_name_the_connection(tmp_path: Path) -> None:
    from rebalance.errors import ConfigError

    account = Account(name="z", broker="zerodha", connection_id="zerodha_main")
    credentials = {"login": "k", "password": "t", "extra": {"default_market_protection": 0}}
    with pytest.raises(ConfigError, match="zerodha_main"):
        make_broker(account, credentials, state_dir=tmp_path, portfolio_file=tmp_path / "p.yaml")


def test_make_broker_shares_the_order_budget_through_the_history_db(
    tmp_path: Path, kite: KiteEmulator, history_db: str
) -> None:
    from sqlalchemy import create_engine, text

    from rebalance.brokers.base import OrderRequest
    from rebalance.brokers.shared_limits import SharedOrderLimiter, account_key
    from rebalance.domain.market import Side

    engine = create_engine(history_db)
    account = Account(name="zerodha_main", broker="zerodha", connection_id="zerodha_main")
    credentials = {
        "login": kite.api_key,
        "password": kite.access_token,
        "extra": {"root": kite.url, "user_id": "ZX1234", "registered_ips": ["127.0.0.1"]},
    }
    broker = make_broker(
        account, credentials, state_dir=tmp_path, portfolio_file=tmp_path / "p.yaml",
        order_engine=engine,
    )  # fmt: skip
    assert isinstance(broker, ZerodhaBroker)
    gate = broker._gate
    assert isinstance(gate, SharedOrderLimiter)
    assert gate.key == account_key("zerodha", "ZX1234")
    assert kite.api_key not in gate.key  # a hash, not the identity or a credential
    broker.place_order(OrderRequest("INFY", "NSE", Side.BUY, 1, "TAG1", price=1890.15))
    with engine.connect() as conn:
        keys = conn.execute(text("SELECT account_key FROM broker_order_sends")).scalars().all()
    assert keys == [gate.key]
    engine.dispose()
