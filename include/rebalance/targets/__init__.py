"""Where target weights come from: the target models (notes 1.B, 1.C) and the replacement universe
(notes 6.2), as pure functions.

* ``config``: the ``targets:`` section's ``model:`` block and the ``universe:`` block (pydantic).
* ``models``: each model as a function, prices or scores -> weights plus the record of its inputs.
* ``prices``: the quality check of a price history (gaps, stale closes, split-like jumps, length).
* ``scores``: the scores file, the watchlist file and the ``rebalance.scores`` entry points.
* ``universe``: which held symbols leave and which new ones enter, each with its reason.

Importing this package imports nothing heavy: the optimisation library (skfolio) loads inside the
model functions, pandas only with ``models`` / ``prices``. No Airflow, broker or database here.
See docs/targets.md.
"""
