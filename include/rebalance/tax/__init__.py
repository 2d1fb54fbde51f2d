"""Capital-gains tax on listed Indian equity: lots, FIFO per demat account, STCG/LTCG, tax.

A pure package (no Airflow, broker client or database imports), so the planner, the preview and
the ``rebalance tax`` command can all use it. The rules and their sources are in ``rules.py`` and
docs/tax.md; nothing here is tax advice.

* ``rules``     the dated rates table, financial years, the non-equity ("tax not modelled") list
* ``lots``      Lot records, FIFO consumption per demat account, splits and bonuses, the check
                of lots against the broker's quantity
* ``gains``     realised gains per sell, set-off, the exemption, the estimated tax of a year and of
                one more sell
* ``tradebook`` Zerodha Console and AngelOne tradebook importers, and the replay of trades into
                lots and realised gains
"""
