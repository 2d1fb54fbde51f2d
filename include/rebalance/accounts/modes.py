"""What the combined accounts mode cannot do yet, said once for the file and the run.

The combined mode plans the whole and splits its orders (``accounts.allocate``); three settings
would need more than that split, and are refused rather than silently ignored:

* ``policy.tax: limit | minimise``: the allocation does not weigh which account's FIFO lots a
  sell realises, so a cap or a tax objective could not be kept across the split
  (``tax: report`` is supported: each account's part carries its own estimate);
* ``ledger: true`` on an account: a ledgered account is shared with other portfolios, and the
  combined snapshot would need each account's ledger part, reconciled first;
* targets from a model or a universe (``targets.model``, ``universe:``): the combined plan reads
  the file's fixed weights, so computed targets would be ignored.

The portfolio file is refused at load (``Portfolio``), and a run whose form picks the combined
mode, or whose ``tax`` override asks for limit/minimise, fails before anything is planned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rebalance.policy import Policy, TaxMode


class _Account(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def ledger(self) -> bool: ...


def combined_refusals(
    policy: Policy, accounts: Sequence[_Account], *, computed_targets: bool = False
) -> list[str]:
    """Why ``policy`` and ``accounts`` cannot be planned in the combined mode (empty: they can);
    ``computed_targets``: the portfolio's targets come from a model or a universe."""
    problems = []
    if computed_targets:
        problems.append(
            "accounts_mode: combined plans on fixed target weights only; targets.model and "
            "universe need accounts_mode: separate"
        )
    if policy.tax in (TaxMode.LIMIT, TaxMode.MINIMISE):
        problems.append(
            f"policy.tax: {policy.tax} needs accounts_mode: separate (the combined split does "
            "not weigh each account's tax lots; tax: report works in both modes)"
        )
    if ledgered := [a.name for a in accounts if a.ledger]:
        problems.append(
            f"accounts: {', '.join(ledgered)} has ledger: true, which needs accounts_mode: "
            "separate (a shared account's part is reconciled per portfolio, not combined)"
        )
    return problems
