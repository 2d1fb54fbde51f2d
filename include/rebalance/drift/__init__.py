"""The drift watch's pure core (issue 13): measure drift, decide triggers and alerts, keep records.

One module per concept, no Airflow, broker client or database (see docs/drift.md):

* ``config``: the portfolio file's ``trigger:`` section (schedule | drift | schedule_and_drift).
* ``measure``: live weights, drift per symbol, bands (the planner's rule), total and max drift.
* ``since_last``: winners / losers and P&L since the last completed rebalance (notes 13.6).
* ``trigger``: the decisions with their reasons: trigger a run, gate a scheduled run, alert once
  per breach episode, one login notice a day.
* ``record``: the drift record per account per day, and the breach's asset-event extra.
* ``render``: the text table of a series of records (``rebalance drift``).
"""
