"""Turn the exchange's published holiday list into the holiday override file (``calendar.py``).

Two inputs, both as the exchange publishes them (docs/schedule.md, "Updating the calendar"):

* NSE's holiday master, the JSON that https://www.nseindia.com/api/holiday-master?type=trading
  serves to its holiday page: ``{"CM": [{"Sr_no": 1, "tradingDate": "26-Jan-2026",
  "weekDay": "Monday", "description": "Republic Day"}, ...], "FO": [...], ...}``; the ``CM``
  (capital market: equities) segment is read;
* a circular's table as CSV: ``date, description`` (and optionally ``day``), the date as
  ``2027-01-26``, ``26-Jan-2027`` or ``January 26, 2027``.

The list is checked (one year, no duplicates, each weekday name matching its date, real dates)
and compared with what exchange_calendars' XBOM already knows for that year: additions (closed
per the exchange, open per the library), removals (the reverse) and agreements. Weekend entries
(holidays falling on a Saturday or Sunday, which NSE lists too) are closed anyway and not written.
Pure apart from reading the input file: no network, no Airflow.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rebalance.calendar import (
    DatedEntry,
    HolidayOverrides,
    TradingCalendar,
    library_calendar_end,
    library_closed_weekdays,
    parse_overrides,
)
from rebalance.errors import ConfigError

SEGMENT = "CM"  # NSE's capital market segment: equities (cash), what the portfolios trade
MAX_LIST_BYTES = 1024 * 1024  # a year's list is a few KB
# A year has about 15-20 weekday trading holidays; far more is not a holiday list.
MAX_WEEKDAY_HOLIDAYS = 40
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DATE_FORMATS = ("%Y-%m-%d", "%d-%b-%Y", "%B %d, %Y", "%d-%m-%Y", "%d/%m/%Y", "%b %d, %Y")


@dataclass(frozen=True)
class ListedHoliday:
    """One row of the exchange's list; ``row`` numbers it as the input names it (CSV line, or
    the JSON entry's position counting from 1)."""

    date: dt.date
    description: str
    row: int


@dataclass
class CalendarUpdate:
    """What a holiday list means against the library's calendar for its year."""

    year: int
    source: str
    listed: list[ListedHoliday]
    additions: list[ListedHoliday] = field(default_factory=list)
    agreements: list[ListedHoliday] = field(default_factory=list)
    removals: list[dt.date] = field(default_factory=list)  # library closed, the list does not
    weekend: list[ListedHoliday] = field(default_factory=list)

    def report(self) -> list[str]:
        """Lines a person reads: what changes, what agrees, what is left out and why."""
        lines = [f"{self.source}: {len(self.listed)} holidays listed for {self.year}"]
        for entry in self.additions:
            lines.append(f"  + {entry.date} {entry.date:%a} {entry.description} (new: closed)")
        for day in self.removals:
            lines.append(
                f"  - {day} {day:%a} closed in exchange_calendars XBOM but not in this list"
            )
        if self.agreements:
            lines.append(f"  = {len(self.agreements)} agree with exchange_calendars XBOM")
        for entry in self.weekend:
            muhurat = "*" in entry.description or "muhurat" in entry.description.lower()
            hint = "; Muhurat trading? add it under special_sessions" if muhurat else ""
            lines.append(
                f"  . {entry.date} {entry.date:%a} {entry.description} "
                f"(weekend: closed anyway{hint})"
            )
        return lines


def _bad(source: str, problems: list[str]) -> ConfigError:
    return ConfigError(source, problems)


def read_holiday_list(path: Path | str, *, segment: str = SEGMENT) -> list[ListedHoliday]:
    """Read NSE's holiday master JSON or a circular's CSV table; errors name file, row, field."""
    path = Path(path)
    source = str(path)
    try:
        if path.stat().st_size > MAX_LIST_BYTES:
            raise _bad(source, [f"the file is over {MAX_LIST_BYTES // 1024} KiB: not a list"])
        data = path.read_bytes()
    except OSError as exc:
        raise _bad(source, [f"cannot read the file: {exc.strerror}"]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _bad(source, [f"row {line}: not UTF-8 (byte 0x{data[exc.start]:02x})"]) from None
    if text.lstrip().startswith(("{", "[")):
        return _from_json(text, source, segment)
    return _from_csv(text, source)


def _from_json(text: str, source: str, segment: str) -> list[ListedHoliday]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad(source, [f"row {exc.lineno}: malformed JSON ({exc.msg})"]) from None
    if not isinstance(data, dict) or not isinstance(data.get(segment), list):
        keys = ", ".join(sorted(data)) if isinstance(data, dict) else type(data).__name__
        raise _bad(
            source,
            [f"{segment}: expected NSE's holiday master ({{'{segment}': [...]}}), got {keys}"],
        )
    entries: list[ListedHoliday] = []
    problems: list[str] = []
    for index, item in enumerate(data[segment], start=1):
        where = f"{segment}.{index}"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected an object with tradingDate and description")
            continue
        raw_date, description = item.get("tradingDate"), item.get("description")
        weekday = item.get("weekDay")
        entry = _entry(raw_date, description, weekday, index, where, problems)
        if entry is not None:
            entries.append(entry)
    if problems:
        raise _bad(source, problems)
    return entries


def _from_csv(text: str, source: str) -> list[ListedHoliday]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    entries: list[ListedHoliday] = []
    problems: list[str] = []
    try:
        for fields in reader:
            line = reader.line_num
            if not fields or all(not f.strip() for f in fields):
                continue
            if header is None:
                header = [f.strip().lower() for f in fields]
                missing = [c for c in ("date", "description") if c not in header]
                if missing:
                    raise _bad(
                        source,
                        [
                            f"row {line}: missing column(s) {', '.join(missing)} "
                            "(a circular's table: date, description[, day])"
                        ],
                    )
                continue
            if len(fields) != len(header):
                problems.append(f"row {line}: {len(fields)} fields, the header has {len(header)}")
                continue
            cells = dict(zip(header, (f.strip() for f in fields), strict=True))
            entry = _entry(
                cells["date"], cells["description"], cells.get("day"), line, f"row {line}", problems
            )
            if entry is not None:
                entries.append(entry)
    except csv.Error as exc:
        problems.append(f"row {reader.line_num}: cannot read CSV ({exc})")
    if header is None:
        problems.append("row 1: no header line (date, description)")
    if problems:
        raise _bad(source, problems)
    return entries


def _entry(
    raw_date: Any, description: Any, weekday: Any, row: int, where: str, problems: list[str]
) -> ListedHoliday | None:
    day = _parse_date(raw_date)
    if day is None:
        problems.append(f"{where}, date: {raw_date!r} is not a date (e.g. 26-Jan-2027)")
        return None
    if not isinstance(description, str) or not description.strip():
        problems.append(f"{where}, description: the holiday's name is missing")
        return None
    if weekday is not None and str(weekday).strip():
        named = str(weekday).strip().lower()
        if named not in _WEEKDAYS:
            problems.append(f"{where}, weekDay: {weekday!r} is not a day of the week")
            return None
        if _WEEKDAYS.index(named) != day.weekday():
            problems.append(
                f"{where}, date: {day} is a {day:%A}, the list says {weekday}: a wrong date?"
            )
            return None
    return ListedHoliday(day, " ".join(description.split()), row)


def _parse_date(raw: Any) -> dt.date | None:
    if not isinstance(raw, str):
        return None
    text = re.sub(r"\s+", " ", raw.strip())
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def compare_with_library(
    listed: list[ListedHoliday], source: str, year: int | None = None
) -> CalendarUpdate:
    """Check the list is one year's, without duplicates, and compare it with XBOM."""
    if not listed:
        raise _bad(source, ["the list has no holidays"])
    years = sorted({e.date.year for e in listed})
    chosen = (
        year
        if year is not None
        else max(years, key=lambda y: sum(e.date.year == y for e in listed))
    )
    problems = [
        f"row {e.row}, date: {e.date} is not in {chosen}; a list covers one calendar year"
        for e in listed
        if e.date.year != chosen
    ]
    seen: dict[dt.date, int] = {}
    for e in listed:
        if e.date in seen:
            problems.append(
                f"row {e.row}, date: {e.date} is listed twice (also row {seen[e.date]})"
            )
        seen.setdefault(e.date, e.row)
    weekdays = [e for e in listed if e.date.weekday() < 5]
    if len(weekdays) > MAX_WEEKDAY_HOLIDAYS:
        problems.append(
            f"{len(weekdays)} weekday holidays in {chosen}: more than {MAX_WEEKDAY_HOLIDAYS}, "
            "not an exchange holiday list"
        )
    if problems:
        raise _bad(source, problems)
    update = CalendarUpdate(year=chosen, source=source, listed=sorted(listed, key=lambda e: e.date))
    known_closed = library_closed_weekdays(chosen)  # None: the library has no data for the year
    for entry in update.listed:
        if entry.date.weekday() >= 5:
            update.weekend.append(entry)
        elif known_closed is not None and entry.date in known_closed:
            update.agreements.append(entry)
        else:
            update.additions.append(entry)
    if known_closed is not None:
        listed_days = {e.date for e in listed}
        update.removals = sorted(d for d in known_closed if d not in listed_days)
    return update


def merged_overrides(
    update: CalendarUpdate,
    existing: HolidayOverrides | None,
    *,
    source_note: str,
    accept_removals: bool,
) -> HolidayOverrides:
    """The override file after this update: the year's entries replaced, other years kept.

    Refuses a gap: between the library's end and the new year, every year must be covered
    (the file must list every holiday up to covers_until).
    """
    year_start, year_end = dt.date(update.year, 1, 1), dt.date(update.year, 12, 31)
    known_until = max(library_calendar_end(), existing.covers_until if existing else dt.date.min)
    if year_start > known_until + dt.timedelta(days=1):
        raise _bad(
            update.source,
            [
                f"the calendar is known until {known_until}: add the list for "
                f"{known_until.year + 1} first (a gap would make its holidays trading days)"
            ],
        )

    def other_years(entries: tuple[Any, ...]) -> list[Any]:
        return [e for e in entries if not year_start <= e.date <= year_end]

    holidays = [
        *(other_years(existing.holidays) if existing else []),
        *(
            DatedEntry(date=e.date, note=e.description, source=source_note)
            for e in update.additions
        ),
    ]
    removals = [
        *(other_years(existing.remove_holidays) if existing else []),
        *(
            DatedEntry(date=d, note=f"open per {source_note}", source=source_note)
            for d in (update.removals if accept_removals else [])
        ),
    ]
    specials = list(existing.special_sessions) if existing else []
    data = {
        "source": source_note
        if existing is None or not existing.source
        else f"{existing.source}; {source_note}",
        "covers_until": max(year_end, existing.covers_until if existing else year_end),
        "holidays": [e.model_dump() for e in sorted(holidays, key=lambda e: e.date)],
        "remove_holidays": [e.model_dump() for e in sorted(removals, key=lambda e: e.date)],
        "special_sessions": [e.model_dump() for e in specials],
    }
    overrides = parse_overrides(data, update.source)
    TradingCalendar(overrides)  # the merged file must make a consistent calendar
    return overrides


def overrides_yaml(overrides: HolidayOverrides, header: str) -> str:
    """The override file's text: a comment header, then the fields in a person's order."""

    def entry(e: Any) -> str:
        text = f"  - date: {e.date.isoformat()}\n    note: {json.dumps(e.note)}\n"
        if e.source:
            text += f"    source: {json.dumps(e.source)}\n"
        for key in ("start", "end"):
            value = getattr(e, key, None)
            if value is not None:
                text += f'    {key}: "{value:%H:%M}"\n'
        return text

    lines = [*(f"# {line}".rstrip() for line in header.splitlines()), ""]
    lines.append(f"source: {json.dumps(overrides.source or '')}")
    lines.append(f"covers_until: {overrides.covers_until.isoformat()}")
    body = "\n".join(lines) + "\n"
    for key in ("holidays", "remove_holidays", "special_sessions"):
        entries = getattr(overrides, key)
        body += f"{key}:{' []' if not entries else ''}\n" + "".join(entry(e) for e in entries)
    return body
