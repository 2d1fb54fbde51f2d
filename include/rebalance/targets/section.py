"""A portfolio file's ``targets:`` key read as a ``TargetsSection`` (config.py), for portfolio.py.

Three spellings are valid: today's ``targets: {INFY: 60, TCS: 40}`` and ``targets: [INFY, TCS]``
(the fixed model, left to portfolio.py as before), and the section::

    targets:
      model: {name: risk_parity, lookback_days: 252}
      symbols: [INFY, TCS, HDFCBANK]

The section is kept on the portfolio as ``target_model``; ``targets`` then holds its *nominal*
weights, what the file alone says: the fixed weights, or an equal share of the members for a
model that computes its weights at run time (the checks of no_buy / no_sell and the weight sum
read them). The run's real targets come from the model task (docs/targets.md).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from rebalance.errors import validation_problems
from rebalance.targets.config import TargetsSection

SECTION_KEYS = frozenset({"model", "weights", "symbols"})
INTERNAL_KEY = "target_model"
TOP = "(top level): "


def split_targets(data: Any) -> Any:
    """The portfolio data with a ``targets:`` section split into nominal weights + the section.

    Raises ValueError with one ``targets.<field>: message`` line per problem.
    """
    if not isinstance(data, dict):
        return data
    if INTERNAL_KEY in data:
        raise ValueError(f"{INTERNAL_KEY}: unknown key (write the model under targets: model:)")
    value = data.get("targets")
    if not isinstance(value, dict) or not SECTION_KEYS & set(value):
        return data
    try:
        section = TargetsSection.model_validate(value)
    except ValidationError as exc:
        lines = [
            f"targets: {p.removeprefix(TOP)}" if p.startswith(TOP) else f"targets.{p}"
            for p in validation_problems(exc)
        ]
        raise ValueError("\n".join(lines)) from None
    if section.weights is not None:
        nominal = dict(section.weights)
    elif section.symbols:
        cash = data.get("cash_target_pct")
        invested = 100.0 - (cash if isinstance(cash, int | float) and cash > 0 else 0.0)
        nominal = {symbol: invested / len(section.symbols) for symbol in section.symbols}
    else:
        raise ValueError(
            "targets.symbols: a portfolio file's scores model needs symbols (the candidates "
            "it picks its top_n from)"
        )
    return {**data, "targets": nominal, INTERNAL_KEY: section}
