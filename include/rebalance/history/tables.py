"""The history schema (SQLAlchemy Core). Alembic migrations in ``migrations/`` create it.

Everything of the notes' section 9 is stored: run metadata, the policy and inputs snapshots, the
proposed orders with reasons and charges, the approval, the outcome of every order and the summary
metrics. Credentials are never stored.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

runs = Table(
    "rebalance_runs",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("portfolio_id", String(64), nullable=False),
    Column("portfolio_name", Text, nullable=False),
    Column("account", String(32), nullable=False),
    Column("broker", String(16), nullable=False),
    Column("dag_id", String(250), nullable=False),
    Column("airflow_run_id", String(250), nullable=False),
    Column("initiator", String(16), nullable=False),  # scheduled | manual
    Column("broker_scope", Text, nullable=False),  # the accounts this DAG run covers
    Column("mode", String(16), nullable=False),  # dry_run | paper | live
    Column("status", String(24), nullable=False),
    Column("status_reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("planned_at", DateTime(timezone=True)),
    Column("approved_at", DateTime(timezone=True)),
    Column("executed_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("policy", JSONB, nullable=False),
    Column("targets", JSONB, nullable=False),
    Column("snapshot", JSONB),  # holdings (qty, price, value, weight, pnl) and cash
    Column("validation", JSONB),  # schema + data-quality results, link to Data Docs
    Column("portfolio_value", Float),
    Column("cash", Float),
    Column("plan", JSONB),  # orders, positions before/after, summary, notes
    Column("plan_hash", String(64)),
    Column("approval_decision", String(16)),  # auto | approved | rejected | expired
    Column("approved_by", Text),
    Column("approval_note", Text),
    Column("turnover_pct", Float),
    Column("budget_used_pct", Float),
    Column("max_drift_before", Float),
    Column("max_drift_after", Float),
    Column("trades", Integer),
    Column("estimated_charges", Float),
    Column("placement", JSONB),  # 0002: counts and deadlines of the placement pass
    Column("trigger_event", JSONB),  # 0006: the drift breach that triggered the run
    UniqueConstraint("dag_id", "airflow_run_id", "account", name="uq_run_lane"),
)
Index("ix_runs_portfolio_created", runs.c.portfolio_id, runs.c.created_at.desc())

orders = Table(
    "rebalance_orders",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "run_id", BigInteger, ForeignKey("rebalance_runs.id", ondelete="CASCADE"), nullable=False
    ),
    Column("leg", Integer, nullable=False),
    Column("tag", String(20), nullable=False, unique=True),  # 0003: 15 -> 20 (child tags)
    Column("symbol", String(32), nullable=False),
    Column("exchange", String(8), nullable=False),
    Column("side", String(4), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("price", Float, nullable=False),
    Column("notional", Float, nullable=False),
    Column("reasons", JSONB, nullable=False),
    Column("charges", Float, nullable=False, server_default="0"),
    Column("state", String(24), nullable=False),
    Column("broker_order_id", String(64)),
    Column("filled_quantity", Integer, nullable=False, server_default="0"),
    Column("average_price", Float),
    Column("error", Text),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("sent_at", DateTime(timezone=True)),  # 0002: start of the latest send attempt
    Column("plan_hash", String(64)),  # 0002: the approved plan this leg belongs to
    Column(
        "broker_orders", Integer, nullable=False, server_default="0"
    ),  # 0002: orders with our tag
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("reprice_round", Integer, nullable=False, server_default="0"),  # 0005: current round
    Column(
        "children", JSONB, nullable=False, server_default=text("'[]'::jsonb")
    ),  # 0005: every order sent for the leg, one per round
    UniqueConstraint("run_id", "leg", name="uq_order_leg"),
)

events = Table(
    "rebalance_run_events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "run_id", BigInteger, ForeignKey("rebalance_runs.id", ondelete="CASCADE"), nullable=False
    ),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("from_status", String(24)),
    Column("to_status", String(24), nullable=False),
    Column("message", Text),
)
# 0004: indexes of a fleet's history (the migration says which query each serves).
Index("ix_runs_created", runs.c.created_at.desc(), runs.c.id.desc())
Index("ix_events_run", events.c.run_id, events.c.id)
Index(
    "ix_runs_placing",
    runs.c.account,
    runs.c.broker,
    postgresql_where=runs.c.status == "placing",
)

# 0003: one row per order request (placement or cancellation) sent for a broker account, so that
# every process trading the account shares its order rate limits (``SharedOrderLimiter``). The
# account is a hash of the broker's client identity: no identifier or credential is stored.
order_sends = Table(
    "broker_order_sends",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("account_key", String(64), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
)
Index("ix_order_sends_account_sent", order_sends.c.account_key, order_sends.c.sent_at)

# 0006: the drift watch's time series, one row per portfolio, account and IST trading day
# (``rebalance.drift.record.DriftRecord``; docs/drift.md).
drift_snapshots = Table(
    "drift_snapshots",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("portfolio_id", String(64), nullable=False),
    Column("account", String(32), nullable=False),
    Column("broker", String(16), nullable=False),
    Column("day", Date, nullable=False),
    Column("taken_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),  # read | not_read
    Column("not_read_reason", String(24)),
    Column("detail", Text),
    Column("portfolio_value", Float),
    Column("cash", Float),
    Column("cash_weight", Float),
    Column("cash_target", Float),
    Column("total_drift", Float),
    Column("max_drift", Float),
    Column("max_drift_symbol", String(32)),
    Column("outside_band", JSONB, nullable=False),
    Column("positions", JSONB, nullable=False),
    Column("band_abs_pct", Float),
    Column("band_rel_pct", Float),
    Column("targets_run_id", BigInteger),
    Column("since_last", JSONB),
    Column("breach_since", Date),
    Column("action", String(24)),
    Column("action_reason", Text),
    Column("alerted", Boolean, nullable=False, server_default="false"),
    Column("login_notice_sent", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("portfolio_id", "account", "day", name="uq_drift_day"),
)

# 0007: tax lots (issue 15; docs/tax.md). The trades lots are replayed from (imported tradebooks
# and the pipeline's own fills), corporate actions, the FMV of 31 January 2018 and the gains
# declared from elsewhere per financial year; read and written by ``history/tax_store.py``.
tax_trades = Table(
    "tax_trades",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("account", String(32), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("side", String(4), nullable=False),  # buy | sell
    Column("traded_on", Date, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("price", Float, nullable=False),
    Column("origin", String(16), nullable=False),  # tradebook | fill
    Column("trade_key", String(128), nullable=False),  # broker trade id, or the leg's tag
    Column("isin", String(16)),
    Column("source", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("account", "trade_key", name="uq_tax_trade"),
    CheckConstraint("quantity > 0", name="ck_tax_trade_quantity"),
    CheckConstraint("price >= 0", name="ck_tax_trade_price"),
)
Index("ix_tax_trades_account_symbol", tax_trades.c.account, tax_trades.c.symbol)

tax_corporate_actions = Table(
    "tax_corporate_actions",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("symbol", String(32), nullable=False),
    Column("kind", String(8), nullable=False),  # split | bonus
    Column("on_date", Date, nullable=False),
    Column("new", Integer, nullable=False),
    Column("old", Integer, nullable=False),
    Column("account", String(32), nullable=False, server_default=""),  # "": every account
    Column("quantity", Integer),
    Column("source", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("symbol", "kind", "on_date", "account", name="uq_tax_action"),
)

tax_fmv_2018 = Table(
    "tax_fmv_2018",
    metadata,
    Column("symbol", String(32), primary_key=True),
    Column("fmv", Float, nullable=False),  # rupees per share as quoted on 31 January 2018
)

tax_declared_gains = Table(
    "tax_declared_gains",
    metadata,
    Column("fy", String(7), primary_key=True),  # 2026-27
    Column("short_term", Float, nullable=False, server_default="0"),
    Column("long_term", Float, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# 0008: the combined accounts mode and the ledgers of several portfolios in one account
# (issue 16; docs/accounts.md). A combined run is one DAG run's plan for the whole; each account's
# lane keeps its own ``rebalance_runs`` row (its part), linked through ``combined_run_parts``.
combined_runs = Table(
    "combined_runs",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("portfolio_id", String(64), nullable=False),
    Column("dag_id", String(250), nullable=False),
    Column("airflow_run_id", String(250), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("status", String(24), nullable=False),
    Column("status_reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("snapshot", JSONB),  # the whole: positions, cash, each account's limits, notes
    Column("plan", JSONB),  # the combined TradePlan
    Column("plan_hash", String(64)),
    Column("allocation", JSONB),  # the per-account split (Allocation.to_dict)
    Column("allocation_hash", String(64)),
    Column("replanned", Boolean, nullable=False, server_default=text("false")),
    Column("approval_decision", String(16)),
    Column("approved_by", Text),
    Column("approved_at", DateTime(timezone=True)),
    Column("outcome", JSONB),  # per account: status, placed, left undone
    Column("finished_at", DateTime(timezone=True)),
    UniqueConstraint("dag_id", "airflow_run_id", name="uq_combined_run"),
)

combined_run_parts = Table(
    "combined_run_parts",
    metadata,
    Column(
        "combined_run_id",
        BigInteger,
        ForeignKey("combined_runs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("account", String(32), primary_key=True),
    Column("run_id", BigInteger, ForeignKey("rebalance_runs.id"), nullable=False, unique=True),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("account_key", String(300), nullable=False),  # broker/connection: the real account
    Column("portfolio", String(64), nullable=False),  # a portfolio id, or "(outside)"
    Column("kind", String(16), nullable=False),  # seed | fill | adjustment
    Column("at", DateTime(timezone=True), nullable=False),
    Column("symbol", String(32)),
    Column("shares", BigInteger, nullable=False, server_default=text("0")),
    Column("cash", Float, nullable=False, server_default=text("0")),
    Column("ref", String(64)),  # the order tag of a fill
    Column("by", Text),
    Column("note", Text, nullable=False, server_default=text("''")),
    Column("run_id", BigInteger, ForeignKey("rebalance_runs.id")),
)
Index(
    "uq_ledger_fill_ref",
    ledger_entries.c.account_key,
    ledger_entries.c.ref,
    unique=True,
    postgresql_where=ledger_entries.c.ref.isnot(None),
)
Index("ix_ledger_entries_account", ledger_entries.c.account_key, ledger_entries.c.id)

# 0009: the daily closes the risk models read (a cache of the brokers' candles), and each lane
# run's model output: the targets and the inputs that produced them (docs/targets.md).
price_history = Table(
    "price_history",
    metadata,
    Column("symbol", String(32), primary_key=True),
    Column("exchange", String(8), primary_key=True),
    Column("day", Date, primary_key=True),  # the trading day (IST)
    Column("open", Float),
    Column("high", Float),
    Column("low", Float),
    Column("close", Float, nullable=False),
    Column("volume", BigInteger),
    Column("source", String(16), nullable=False),  # the broker that served it
    Column("fetched_at", DateTime(timezone=True), nullable=False),
)

target_models = Table(
    "target_models",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "run_id",
        BigInteger,
        ForeignKey("rebalance_runs.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("portfolio_id", String(64), nullable=False),
    Column("account", String(32), nullable=False),
    Column("model", String(32), nullable=False),
    Column("as_of", Date),
    Column("weights", JSONB, nullable=False),  # symbol -> fraction of portfolio value
    Column("record", JSONB, nullable=False),  # inputs, parameters, library, replacements, notes
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("ix_target_models_portfolio", target_models.c.portfolio_id, target_models.c.created_at.desc())
