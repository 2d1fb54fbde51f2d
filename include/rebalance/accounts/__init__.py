"""One portfolio across several accounts, and several portfolios in one account (issue 16).

Pure modules (no Airflow, broker client or database), one concept each:

* ``combine``: one snapshot across accounts (joined by ISIN, else symbol) plus each account's
  cash and sellable quantity, for the combined mode.
* ``allocate``: the combined plan's orders assigned to accounts (a MILP, HiGHS): each account's
  cash and sellable quantity are hard limits, charges are minimised, then the number of orders.
* ``ledger``: several portfolios in one account: each portfolio's shares and cash, moved by its
  own fills, reconciled against the broker's totals; differences are listed, never guessed.
* ``compare``: the separate and the combined mode on the same holdings (turnover, charges).

docs/accounts.md says when to use each mode.
"""
