"""What each task of a lane does and what to do when it fails (the ``doc_md`` in Airflow)."""

FETCH_HOLDINGS = """\
**Reads the account**: holdings (with sellable quantity), last prices of every held and
target symbol, and available cash, through the broker's official client; opens the run record.

*When it fails*: network errors and rate limits are retried with backoff. An expired Zerodha
token fails at once: run `rebalance broker login zerodha` and clear the task. Bad data from the
broker (missing fields, zero prices) fails without retry and is recorded. A scheduled run on a
day beyond the known trading calendar fails here: extend the holiday override file."""

VALIDATE_SNAPSHOT = """\
**Checks the data** before anything is planned: the Pandera schema (types, ranges,
unique symbols, prices > 0, quantities >= 0) and the Great Expectations suite (target symbols
quoted, prices present, value = quantity x price, snapshot age). The result and its Data Docs
page are kept on the run record.

*When it fails*: the log and `rebalance history show RUN` list the bad rows by symbol and
check. Nothing was planned or ordered. Fix the source (or wait for fresh quotes) and re-run."""

TARGET_MODEL = """\
**Computes the targets** (only for a portfolio whose `targets:` names a model other than
`fixed`, or a `universe:`): the replacement universe's exits and entries, then the model
(equal, inverse_volatility, risk_parity, scores) on the price history, read through the broker
and cached in the history database. The targets and their inputs are stored for the plan, the
preview and the drift watch (docs/targets.md).

*When it fails*: gaps, stale days or split-like jumps in the price history, or bad scores, are
listed by symbol and day in the log and on the run; nothing was planned or ordered. Re-run
after the broker's history is complete, or adjust the model's `max_missing_days`,
`max_stale_days` or `split_jump_pct`."""

PLAN_TRADES = """\
**Plans the trades** with the portfolio's policy (bands, budget, whole shares, max
trades, min value, max weight, lists, overlays, charges). The plan and its hash are recorded
before anything else happens; each order says why it exists.

*When it fails*: an input the planner refuses (for example a target without a price) is named
in the log. Nothing was ordered. `rebalance plan` reproduces a plan offline."""

APPROVAL = """\
**Approves the plan.** With `approval: auto` it is approved at once (while turnover stays
under `auto_approve_max_turnover_pct`, if set); dry runs and empty plans need no approval.
Otherwise the preview waits in **Required Actions**: Approve or Reject (or
`rebalance approve RUN --yes/--no`). No answer by the deadline (live: `approval_cutoff`, 15:25
IST) = expired: recorded, nothing ordered.

*When it is skipped*: the plan was rejected or expired; the run record says by whom and when."""

PLACE_ORDERS = """\
**Places exactly the approved plan, once**: checks the plan hash and that prices have
not moved more than `max_price_move_pct` since planning, takes the run's lock, writes every order
ahead with its tag, sends sells before buys, reconciles the broker's order book by tag on any
retry, and polls fills until the deadline.

*When it fails*: do not place orders by hand. Clear the task (or run `rebalance resume RUN`): it
reads the order book and sends only the legs never sent, in the same run, while the approval is
valid. If prices moved, re-run the DAG to re-plan."""

RECORD_RUN = """\
**Closes the run record** whatever happened upstream: completed, or failed / invalid
/ rejected / expired with the reason, and the summary metrics. A placement that died is first
settled from the broker's order book.

*When it fails*: the run ended failed, invalid or interrupted, or left legs never sent (see its
reason in the log and on the Rebalance page); this task fails so that the DAG run shows it and
alerts fire. An interrupted run: clear place_orders or `rebalance resume RUN`; a run left
placing: `rebalance settle RUN`."""
