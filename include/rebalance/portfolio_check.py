"""One check of a portfolio file for every consumer: the DAG factory and ``rebalance plan``.

``check_portfolio_file`` is what "the file is valid" means: the portfolio model validates, every
file it names (``holdings_file``, ``holiday_overrides``) stays inside the portfolio's folder once
symlinks are followed, and the holiday override file loads. The DAG reads the same overrides
through ``calendar.overrides_for_portfolio`` (``timetable.build_timetable``), so a file that fails
one fails the other with the same message. Pure: no Airflow, broker or database.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rebalance.calendar import HolidayOverrides, overrides_for_portfolio
from rebalance.portfolio import Portfolio, load_portfolio, resolve_inside


@dataclass(frozen=True)
class CheckedPortfolio:
    """A portfolio file that passed every check, with its loaded holiday overrides."""

    path: Path
    portfolio: Portfolio
    overrides: HolidayOverrides | None


def check_portfolio_file(path: Path | str) -> CheckedPortfolio:
    """Load and check one portfolio file; ConfigError naming the file and the field."""
    path = Path(path)
    portfolio = load_portfolio(path)
    check_named_files(portfolio, path)
    return CheckedPortfolio(path, portfolio, overrides_for_portfolio(portfolio, path))


def check_named_files(portfolio: Portfolio, path: Path) -> None:
    """Every holdings file a portfolio names stays inside its folder once symlinks are followed
    (the holiday override file is checked where it is loaded); ConfigError naming the field."""
    for index, account in enumerate(portfolio.accounts):
        if account.holdings_file is not None:
            resolve_inside(path, account.holdings_file, f"accounts.{index}.holdings_file")
