"""Build the Broker of one account from the portfolio's account entry and its credentials.

The task layer reads the account's Airflow connection and passes it here as a plain dict, so the
adapters never import Airflow::

    credentials = {"login": conn.login, "password": conn.password, "extra": conn.extra_dejson}
    broker = make_broker(account, credentials, state_dir=..., portfolio_file=...)

Connection layout (``conn_type`` "generic"; any field may also be given by name in ``extra``,
which wins over login/password):

=========  ==================  ==============  =====================================================
broker     login               password        extra (JSON)
=========  ==================  ==============  =====================================================
zerodha    api_key             access_token    ``api_secret`` (only ``rebalance broker login``
                                               needs it), ``user_id``, ``root``, ``timeout``,
                                               ``rate_limits``
angelone   client_code         pin             ``api_key``, ``totp_secret`` (required),
                                               ``root``, ``instrument_master_url``, ``timeout``,
                                               ``rate_limits``, ``public_ip``, ``local_ip``,
                                               ``mac_address``
=========  ==================  ==============  =====================================================

Both brokers, in extra (the 2026 rules, docs/brokers.md):

* ``registered_ips``: the static IP(s) registered for the API key (a list, or one string with
  commas); named in the refusal when an order leaves from another IP;
* ``demat_authorisation``: "ddpi" (default: a DDPI / POA is in place) or "tpin" (sells need the
  day's CDSL TPIN authorisation: holdings carry ``authorised_quantity``);
* ``default_market_protection``: the protection of a MARKET order that carries none (default
  -1, the broker's automatic band; "none" sends it unprotected, which the brokers refuse).

``root`` / ``instrument_master_url`` point the real clients elsewhere (tests: the emulators);
``rate_limits`` overrides fields of ``RateLimits`` (e.g. ``{"orders_per_second": 5}``).
The paper broker needs no connection: ``holdings_file`` (relative to the portfolio file) and
``cash_inr`` of the account.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rebalance.brokers.base import AuthError, Broker
from rebalance.errors import ConfigError
from rebalance.portfolio import Account, BrokerName

SECRET_FIELDS = frozenset(
    {"password", "access_token", "api_secret", "pin", "totp_secret", "api_key", "request_token"}
)


def connection_fields(credentials: Mapping[str, Any] | None, broker: str) -> dict[str, Any]:
    """The connection as one flat dict of our field names (see the table above)."""
    creds = dict(credentials or {})
    extra = creds.pop("extra", None) or {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra) if extra.strip() else {}
        except ValueError:
            raise ConfigError(f"{broker} connection", ["extra: is not valid JSON"]) from None
    if not isinstance(extra, Mapping):
        raise ConfigError(f"{broker} connection", ["extra: must be a JSON object"])
    login_as, password_as = {
        "zerodha": ("api_key", "access_token"),
        "angelone": ("client_code", "pin"),
    }.get(broker, ("login", "password"))
    fields: dict[str, Any] = {}
    if creds.get("login"):
        fields[login_as] = creds["login"]
    if creds.get("password"):
        fields[password_as] = creds["password"]
    for key, value in creds.items():
        if key not in ("login", "password") and value not in (None, ""):
            fields[key] = value
    fields.update({k: v for k, v in extra.items() if v not in (None, "")})
    return fields


def redacted(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A copy safe to log: every secret replaced by "REDACTED"."""
    return {k: ("REDACTED" if k in SECRET_FIELDS and v else v) for k, v in fields.items()}


def make_broker(
    account: Account,
    credentials: Mapping[str, Any] | None,
    *,
    state_dir: Path,
    portfolio_file: Path,
    base_urls: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
    order_engine: Any = None,
) -> Broker:
    """The Broker of ``account``.

    ``state_dir``: where the paper broker keeps its order books and AngelOne its instrument cache
    (``cache_dir`` defaults to ``state_dir / "cache"``). ``base_urls`` overrides the connection's
    root URLs: keys "zerodha", "angelone", "angelone_instruments" (tests and the demo).
    ``order_engine``: the history database's SQLAlchemy engine; when given, the account's order
    rate limits are shared with every other process trading it (``SharedOrderLimiter``).
    """
    from rebalance.brokers.ratelimit import ANGELONE_LIMITS, ZERODHA_LIMITS

    urls = dict(base_urls or {})
    broker = BrokerName(account.broker)
    where = f"account {account.name} ({broker})"
    if broker is BrokerName.PAPER:
        from rebalance.brokers.paper import PaperBroker

        if account.holdings_file is None:
            raise ConfigError(
                str(portfolio_file), [f"{where}: a paper account needs holdings_file"]
            )
        holdings = Path(account.holdings_file)
        if not holdings.is_absolute():
            holdings = Path(portfolio_file).parent / holdings
        return PaperBroker(account.name, holdings, account.cash_inr or 0.0, Path(state_dir))

    fields = connection_fields(credentials, str(broker))
    if not credentials:
        raise AuthError(
            str(broker),
            f"{where}: no credentials; create the Airflow connection "
            f"{account.connection_id!r} (see docs/brokers.md)",
        )
    try:
        timeout = float(fields.get("timeout", 7.0))
        overrides = fields.get("rate_limits")
        if isinstance(overrides, str):
            overrides = json.loads(overrides)
        limits = ZERODHA_LIMITS if broker is BrokerName.ZERODHA else ANGELONE_LIMITS
        limits = limits.with_overrides(overrides)
        rules = rules_2026(fields)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"connection {account.connection_id}", [f"extra: {exc}"]) from None
    gate = None
    if order_engine is not None:
        from rebalance.brokers.shared_limits import SharedOrderLimiter, account_key

        identity = (
            fields.get("user_id") or fields.get("api_key")
            if broker is BrokerName.ZERODHA
            else fields.get("client_code")
        )
        gate = SharedOrderLimiter(
            order_engine, account_key(str(broker), str(identity)), limits, broker=str(broker)
        )

    if broker is BrokerName.ZERODHA:
        from rebalance.brokers.zerodha import ZerodhaBroker

        return ZerodhaBroker(
            str(fields.get("api_key", "")),
            str(fields.get("access_token", "")),
            root=urls.get("zerodha") or fields.get("root"),
            timeout=timeout,
            limits=limits,
            order_gate=gate,
            cache_dir=Path(cache_dir) if cache_dir else Path(state_dir) / "cache",
            **rules,
        )

    from rebalance.brokers.angelone import (
        DEFAULT_LOCAL_IP,
        DEFAULT_MAC,
        DEFAULT_PUBLIC_IP,
        INSTRUMENT_MASTER_URL,
        AngelOneBroker,
    )

    return AngelOneBroker(
        str(fields.get("api_key", "")),
        str(fields.get("client_code", "")),
        str(fields.get("pin", "")),
        str(fields.get("totp_secret", "")),
        cache_dir=Path(cache_dir) if cache_dir else Path(state_dir) / "cache",
        root=urls.get("angelone") or fields.get("root"),
        instrument_master_url=urls.get("angelone_instruments")
        or fields.get("instrument_master_url")
        or INSTRUMENT_MASTER_URL,
        timeout=timeout,
        limits=limits,
        public_ip=str(fields.get("public_ip", DEFAULT_PUBLIC_IP)),
        local_ip=str(fields.get("local_ip", DEFAULT_LOCAL_IP)),
        mac_address=str(fields.get("mac_address", DEFAULT_MAC)),
        order_gate=gate,
        **rules,
    )


def rules_2026(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The adapters' keyword arguments for the 2026 rules, from the connection's fields."""
    from rebalance.brokers.base import AUTO_PROTECTION, check_market_protection

    ips = fields.get("registered_ips") or ()
    if isinstance(ips, str):
        ips = [ip.strip() for ip in ips.split(",") if ip.strip()]
    if not isinstance(ips, list | tuple) or not all(isinstance(ip, str) for ip in ips):
        raise ValueError("registered_ips must be a list of IP addresses")
    mode = str(fields.get("demat_authorisation", "ddpi")).lower()
    if mode not in ("ddpi", "tpin"):
        raise ValueError(f"demat_authorisation must be 'ddpi' or 'tpin', got {mode!r}")
    protection = fields.get("default_market_protection", AUTO_PROTECTION)
    if isinstance(protection, str) and protection.strip().lower() in ("none", "off"):
        protection = None  # send unprotected (a JSON null is dropped with the empty fields)
    if protection is not None:
        protection = check_market_protection(float(protection), "default_market_protection")
    return {
        "registered_ips": tuple(ips),
        "demat_authorisation": mode,
        "default_market_protection": protection,
    }


__all__ = ["SECRET_FIELDS", "connection_fields", "make_broker", "redacted", "rules_2026"]
