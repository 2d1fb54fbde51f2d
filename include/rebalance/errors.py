"""Errors a person sees: each one names where the bad input is."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


_NAMES_A_FIELD = re.compile(r"^[A-Za-z_][\w.]*: ")


def validation_problems(exc: ValidationError) -> list[str]:
    """One line per pydantic error, ``field.path: message``, worded for a person."""
    problems = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        # A model-wide check names its own fields (``targets: ...``), one problem per line.
        for line in message.splitlines():
            if where:
                problems.append(f"{where}: {line}")
            else:
                problems.append(line if _NAMES_A_FIELD.match(line) else f"(top level): {line}")
    return problems


class RebalanceError(Exception):
    """Base of the project's own errors."""


class ConfigError(RebalanceError, ValueError):
    """A portfolio file (or an override, or a policy setting) is invalid.

    The message names the file and the field, e.g. ``portfolios/core.yaml: policy.max_trades: ...``.
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: invalid configuration\n{lines}")


class InputDataError(RebalanceError, ValueError):
    """Holdings or quotes that failed validation. Nothing is planned or ordered on such data."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: invalid data\n{lines}")


class CalendarError(RebalanceError):
    """A schedule date cannot be decided from the trading calendar.

    Raised when a date lies beyond the known calendar (exchange_calendars' XBOM data plus any
    holiday override file), or when a rule cannot be met in a period (e.g. the 19th trading day of
    a month with 18). Never answered by guessing that an unknown day is a trading day.
    """
