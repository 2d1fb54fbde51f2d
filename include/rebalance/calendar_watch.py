"""Does the trading calendar reach far enough? Warned ahead, not found out on 1 January.

For each portfolio: the last date its calendar knows (exchange_calendars' XBOM data, extended
by its holiday override file), the trading days left until then, and the next run. A portfolio
is

* ``ok`` while more than ``warn_trading_days`` trading days of its calendar are left;
* ``warning`` when that many or fewer are left: a run after the calendar's end cannot be
  scheduled, so the exchange's list for the next year must be added now
  (``rebalance calendar update``);
* ``expired`` when its next run already falls past the known calendar (it will not run);
* ``invalid`` when the portfolio file itself does not load.

``rebalance calendar check`` prints this; the ``rebalance_maintenance`` DAG checks it daily and
alerts through the notifier channels. Pure: no Airflow, broker or database.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from rebalance.calendar import RebalanceSchedule, trading_calendar
from rebalance.domain.market import IST
from rebalance.errors import CalendarError, ConfigError
from rebalance.portfolio import portfolio_files
from rebalance.portfolio_check import check_portfolio_file

WARN_ENV = "REBALANCE_CALENDAR_WARN_TRADING_DAYS"
DEFAULT_WARN_TRADING_DAYS = 10


class HorizonStatus(StrEnum):
    OK = "ok"
    WARNING = "warning"
    EXPIRED = "expired"
    INVALID = "invalid"


@dataclass(frozen=True)
class Horizon:
    """How far one portfolio's calendar reaches, seen from ``today`` (an IST date)."""

    portfolio: str
    file: str
    status: HorizonStatus
    calendar_end: dt.date | None = None
    trading_days_left: int | None = None
    next_run: dt.datetime | None = None
    message: str = ""

    @property
    def needs_action(self) -> bool:
        return self.status is not HorizonStatus.OK


def warn_trading_days() -> int:
    """``REBALANCE_CALENDAR_WARN_TRADING_DAYS`` (default 10); a bad value is a ConfigError."""
    raw = os.environ.get(WARN_ENV, "").strip()
    if not raw:
        return DEFAULT_WARN_TRADING_DAYS
    if not raw.isdigit() or not 1 <= int(raw) <= 250:
        raise ConfigError(WARN_ENV, [f"must be a whole number of trading days 1..250, got {raw!r}"])
    return int(raw)


def portfolio_horizon(path: Path, now: dt.datetime, warn_days: int) -> Horizon:
    """The calendar horizon of one portfolio file at ``now`` (timezone-aware)."""
    try:
        checked = check_portfolio_file(path)
    except ConfigError as exc:
        return Horizon(path.stem, str(path), HorizonStatus.INVALID, message="; ".join(exc.problems))
    portfolio = checked.portfolio
    calendar = trading_calendar(checked.overrides)
    schedule = RebalanceSchedule(portfolio.schedule, calendar)
    today = now.astimezone(IST).date()
    end = calendar.end
    where = f"{portfolio.id} ({path.name})"
    try:
        next_run = schedule.next_run(now)
    except CalendarError:
        return Horizon(
            portfolio.id,
            str(path),
            HorizonStatus.EXPIRED,
            end,
            0,
            None,
            f"{where}: the next run is past the known trading calendar (known until {end}); "
            f"it will not run until the exchange's holiday list is added "
            f"(rebalance calendar update --from LIST, docs/schedule.md)",
        )
    left = (
        len(calendar.trading_days_between(today + dt.timedelta(days=1), end)) if today < end else 0
    )
    if left > warn_days:
        return Horizon(portfolio.id, str(path), HorizonStatus.OK, end, left, next_run)
    return Horizon(
        portfolio.id,
        str(path),
        HorizonStatus.WARNING,
        end,
        left,
        next_run,
        f"{where}: the trading calendar ends {end}, {left} trading day(s) from {today}; runs "
        f"after it cannot be scheduled. Add the exchange's {end.year + 1} holiday list now: "
        f"rebalance calendar update --from LIST (docs/schedule.md)",
    )


def check_calendars(
    folder: Path, now: dt.datetime | None = None, warn_days: int | None = None
) -> list[Horizon]:
    """The horizon of every portfolio file of ``folder``."""
    moment = now or dt.datetime.now(dt.UTC)
    days = warn_trading_days() if warn_days is None else warn_days
    return [portfolio_horizon(path, moment, days) for path in portfolio_files(folder)]


def alert_text(horizons: list[Horizon]) -> str:
    """One message for the operator about every portfolio that needs action ("" if none)."""
    lines = [h.message for h in horizons if h.needs_action and h.message]
    if not lines:
        return ""
    return "Trading calendar running out:\n" + "\n".join(f"- {line}" for line in lines)
