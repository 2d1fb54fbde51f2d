"""No portfolio file hides another: every hostile input becomes its own failing DAG.

One folder holds the good demo portfolio and every input of issue 11 point 1 (and more). A DagBag
of ``dags/`` then must show: no import error at all, the demo DAG exactly as it is without the bad
files beside it, and for each bad file a DAG under the id the file would have when valid, whose one
task fails at once (no retry, with the failure alert) naming the file and the problem.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import AirflowFailException
from airflow.serialization.serialized_objects import DagSerialization

from rebalance import dag_factory, portfolio_file
from rebalance.alerts import RebalanceFailureNotifier
from rebalance.dag_factory import INVALID_TASK_ID, PortfolioFileInvalidOperator
from rebalance.portfolio_file import MAX_DEPTH, MAX_FILE_BYTES, fallback_portfolio_id
from rebalance.timetable import TradingCalendarTimetable

ROOT = Path(__file__).resolve().parents[2]
DEMO = (ROOT / "portfolios" / "demo.yaml").read_text(encoding="utf-8")
LONG_NAME = "a" * 70 + ".yaml"
KITE = DEMO.replace("name: Demo Nifty Ten", "name: Kite Main").replace(
    "    broker: paper\n    holdings_file: data/demo_holdings.csv\n    cash_inr: 50000\n",
    "    broker: zerodha\n    connection_id: kite_main_conn\n",
)
assert "kite_main_conn" in KITE
PIPE_OVERRIDES = "holiday_overrides: holidays_from_a_pipe.fifo\n"


def _text(content: str) -> Callable[[Path], object]:
    return lambda path: path.write_text(content, encoding="utf-8")


def _bytes(content: bytes) -> Callable[[Path], object]:
    return lambda path: path.write_bytes(content)


def _sparse(size: int) -> Callable[[Path], object]:
    def write(path: Path) -> None:
        with path.open("wb") as f:
            f.truncate(size)

    return write


def _demo_with(old: str, new: str) -> Callable[[Path], object]:
    assert old in DEMO
    return _text(DEMO.replace(old, new))


def _block_nesting(levels: int) -> str:
    return "".join(f"{'  ' * i}k{i}:\n" for i in range(levels)) + f"{'  ' * levels}leaf\n"


BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
    for i in range(8)
)


@dataclass(frozen=True)
class Hostile:
    name: str  # the file name in the folder
    make: Callable[[Path], object]
    expect: tuple[str, ...]  # each of these is in the failure message (any case)
    dag_id: str = ""  # default: rebalance_<stem>


HOSTILE = [
    # Issue 11, point 1.
    Hostile("weights_108.yaml", _demo_with("RELIANCE: 12", "RELIANCE: 20"), ("108%",)),
    Hostile("latin1.yaml", _bytes(b"name: caf\xe9\n"), ("line 1", "0xe9", "not utf-8")),
    Hostile("binary.yaml", _bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00"), ("control character",)),
    Hostile("png.yaml", _bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), ("0x89", "not utf-8")),
    Hostile("deep_5000.yaml", _text("a: " + "[" * 5000 + "]" * 5000 + "\n"), ("nesting",)),
    Hostile("list_key.yaml", _text("? [a, b]\n: 1\n"), ("line 1", "key must be a plain value")),
    Hostile(
        "nested_target.yaml",
        _demo_with("  RELIANCE: 12\n", "  [[INFY]]: 12\n"),
        ("key must be a plain value",),
    ),
    Hostile(
        "targets_list_of_lists.yaml",
        _text(
            "name: X\ntargets: [[INFY]]\n"
            "accounts: [{name: p, broker: paper, holdings_file: data/other.csv}]\n"
        ),
        ("targets",),
    ),
    Hostile("huge_50mb.yaml", _sparse(50 * 1024 * 1024), ("52,428,800 bytes", "limit")),
    Hostile("named_pipe.yaml", lambda p: os.mkfifo(p), ("named pipe",)),
    # More.
    Hostile("just_over_cap.yaml", _text("#" * MAX_FILE_BYTES + "\n"), ("limit",)),
    Hostile("empty.yaml", _text(""), ("expected a mapping",)),
    Hostile("a_list.yaml", _text("- INFY\n- TCS\n"), ("expected a mapping",)),
    Hostile("folder.yaml", lambda p: p.mkdir(), ("is a directory",)),
    Hostile("link_loop.yaml", lambda p: p.symlink_to(p.name), ("symbolic link loop",)),
    Hostile(
        "dangling_link.yaml", lambda p: p.symlink_to("nowhere.yaml"), ("link to nowhere.yaml",)
    ),
    Hostile("unreadable.yaml", _text(DEMO), ("permission denied",)),
    Hostile(
        "deep_block.yaml", _text(_block_nesting(MAX_DEPTH + 3)), (f"more than {MAX_DEPTH} levels",)
    ),
    Hostile("billion_laughs.yaml", _text(BILLION_LAUGHS), ("anchors and aliases",)),
    Hostile("duplicate_key.yaml", _text(DEMO + "name: Again\n"), ("duplicate key 'name'",)),
    Hostile("two_documents.yaml", _text(DEMO + "---\nname: B\n"), ("only one yaml document",)),
    Hostile(
        "python_tag.yaml",
        _text("name: !!python/object/apply:os.system ['true']\n"),
        ("python/object/apply", "not allowed"),
    ),
    Hostile("malformed.yaml", _text("name: [unclosed\n"), ("malformed yaml", "line 2")),
    Hostile("utf8_line_3.yaml", _bytes(b"a: 1\nb: 2\nname: S\xe3o\n"), ("line 3", "0xe3")),
    Hostile("typo_key.yaml", _demo_with("targets:", "target:"), ("target: unknown key",)),
    Hostile(
        "bad_holiday_overrides.yaml",
        _text(DEMO + "holiday_overrides: nope.yaml\n"),
        ("holiday_overrides",),
    ),
    Hostile(  # sorts before kite_main.yaml, names its account, but claims nothing: it is broken
        "broken_kite.yaml", _text(KITE.replace("RELIANCE: 12", "RELIANCE: 20")), ("108%",)
    ),
    Hostile(
        "holidays_from_a_pipe.yaml",
        lambda p: (os.mkfifo(p.with_suffix(".fifo")), p.write_text(DEMO + PIPE_OVERRIDES)),
        ("holiday_overrides", "named pipe"),
    ),
    Hostile(
        "shares_kite_account.yaml",  # valid, but kite_main.yaml has this Zerodha account
        _text(KITE.replace("name: Kite Main", "name: Same Account")),
        ("already used by", "kite_main.yaml", "zerodha", "kite_main_conn"),
    ),
    # Names that give no usable id: a stable fallback id, and the reason.
    Hostile(
        "!!!.yaml",
        _text(DEMO),
        ("does not give a usable id",),
        f"rebalance_{fallback_portfolio_id(Path('!!!.yaml'))}",
    ),
    Hostile(
        LONG_NAME,
        _text(DEMO),
        ("does not give a usable id",),
        f"rebalance_{fallback_portfolio_id(Path(LONG_NAME))}",
    ),
    Hostile(
        "Demo.yml",  # would take rebalance_demo from demo.yaml
        _text(DEMO),
        ("rebalance_demo", "demo.yaml", "rename one"),
        f"rebalance_{fallback_portfolio_id(Path('Demo.yml'))}",
    ),
]
VANISHED = "vanished.yaml"  # listed, then deleted before it is read


def _dag_id(case: Hostile) -> str:
    return case.dag_id or f"rebalance_{Path(case.name).stem}"


GOOD = {
    "demo.yaml": DEMO,
    "kite_main.yaml": KITE,
    # A paper account is the portfolio's own (its book lives under the portfolio's id): another
    # portfolio may start from the same holdings file.
    "paper_copy.yaml": DEMO.replace("name: Demo Nifty Ten", "name: Paper Copy"),
}


def _good_folder(folder: Path) -> Path:
    folder.mkdir()
    shutil.copytree(ROOT / "portfolios" / "data", folder / "data")
    for name, text in GOOD.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _bag(folder: Path) -> DagBag:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REBALANCE_PORTFOLIOS_DIR", str(folder))
        mp.setenv("REBALANCE_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/alerts")
        real_open, real_list = os.open, dag_factory.portfolio_files
        unreadable = str(folder / "unreadable.yaml")

        def refusing_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            # We run as root in CI, where chmod 000 does not stop a read: refuse it here.
            if str(path) == unreadable:
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_open(path, flags, *args, **kwargs)

        mp.setattr(portfolio_file.os, "open", refusing_open)
        mp.setattr(
            dag_factory,
            "portfolio_files",
            lambda f: sorted([*real_list(f), Path(f) / VANISHED]),
        )
        return DagBag(str(ROOT / "dags"))


def _summary(bag: DagBag, dag_id: str) -> str:
    timetable = bag.dags[dag_id].timetable
    assert isinstance(timetable, TradingCalendarTimetable)
    return timetable.summary


def _serialized(bag: DagBag, dag_id: str) -> dict[str, Any]:
    return json.loads(json.dumps(DagSerialization.to_dict(bag.dags[dag_id]), sort_keys=True))


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[DagBag, DagBag, Path]:
    root = tmp_path_factory.mktemp("hostile")
    clean = _bag(_good_folder(root / "clean"))
    folder = _good_folder(root / "hostile")
    for case in HOSTILE:
        case.make(folder / case.name)
    return clean, _bag(folder), folder


@pytest.fixture(scope="module")
def hostile_bag(folders: tuple[DagBag, DagBag, Path]) -> DagBag:
    return folders[1]


def test_no_import_errors(hostile_bag: DagBag) -> None:
    assert hostile_bag.import_errors == {}


def test_one_dag_per_file_and_no_other(
    folders: tuple[DagBag, DagBag, Path], hostile_bag: DagBag
) -> None:
    good = {f"rebalance_{Path(name).stem}" for name in GOOD}
    expected = {*good, f"rebalance_{Path(VANISHED).stem}", *map(_dag_id, HOSTILE)}
    watch = {d for d in hostile_bag.dag_ids if d.startswith("rebalance_drift_watch_")}
    portfolio_dags = set(hostile_bag.dag_ids) - {"rebalance_maintenance"} - watch
    assert portfolio_dags == expected
    # The drift watch reads the valid portfolios only: a broken file has its own failing DAG.
    (watch_id,) = watch
    watched = hostile_bag.dags[watch_id].task_dict["decide"].portfolio_files
    assert {f"rebalance_{pid}" for pid in watched} <= good


@pytest.mark.parametrize("name", GOOD)
def test_the_good_dags_are_unchanged(folders: tuple[DagBag, DagBag, Path], name: str) -> None:
    clean, hostile, _ = folders
    dag_id = f"rebalance_{Path(name).stem}"
    assert "invalid" not in hostile.dags[dag_id].tags
    assert _serialized(hostile, dag_id) == _serialized(clean, dag_id)


def _failure(bag: DagBag, dag_id: str) -> str:
    dag = bag.dags[dag_id]
    assert {"rebalance", "invalid"} <= set(dag.tags)
    (task,) = dag.tasks
    assert isinstance(task, PortfolioFileInvalidOperator)
    assert task.task_id == INVALID_TASK_ID
    assert task.retries == 0
    notifiers = task.on_failure_callback
    assert isinstance(notifiers, list)
    assert any(isinstance(n, RebalanceFailureNotifier) for n in notifiers)
    with pytest.raises(AirflowFailException) as info:
        task.execute({})
    return str(info.value)


@pytest.mark.parametrize("case", HOSTILE, ids=lambda c: c.name)
def test_each_bad_file_fails_its_first_task_naming_file_and_problem(
    folders: tuple[DagBag, DagBag, Path], case: Hostile
) -> None:
    _, bag, folder = folders
    message = _failure(bag, _dag_id(case))
    assert message.startswith(str(folder / case.name)), message
    for fragment in case.expect:
        assert fragment.lower() in message.lower(), (fragment, message)
    assert "nothing was read, planned or ordered" in message
    assert str(folder / case.name) in (bag.dags[_dag_id(case)].doc_md or "")


def test_a_file_deleted_between_listing_and_reading(folders: tuple[DagBag, DagBag, Path]) -> None:
    _, bag, folder = folders
    message = _failure(bag, "rebalance_vanished")
    assert message.startswith(str(folder / VANISHED))
    assert "no longer exists" in message


def test_a_broken_file_keeps_its_own_schedule_when_that_section_validates(
    hostile_bag: DagBag,
) -> None:
    # weights_108.yaml is the demo with one weight changed: its monthly schedule stands.
    kept = _summary(hostile_bag, "rebalance_weights_108")
    assert kept == _summary(hostile_bag, "rebalance_demo")
    assert kept.startswith("monthly, last trading day, 15:10")


def test_an_unreadable_file_runs_and_fails_every_trading_day(hostile_bag: DagBag) -> None:
    summary = _summary(hostile_bag, "rebalance_latin1")
    assert summary.startswith("every 1 trading days")
    assert "15:10 IST" in summary


def test_a_typo_in_the_schedule_still_schedules(tmp_path: Path) -> None:
    folder = _good_folder(tmp_path / "p")
    (folder / "typo.yaml").write_text(
        DEMO.replace("frequency: monthly", "frequency: montly"), encoding="utf-8"
    )
    bag = _bag(folder)
    assert bag.import_errors == {}
    assert _summary(bag, "rebalance_typo").startswith("every 1 trading days")
    assert "frequency" in _failure(bag, "rebalance_typo")


def test_a_valid_file_losing_a_cross_file_check_keeps_its_own_schedule_and_owner(
    tmp_path: Path,
) -> None:
    # The folder's load cache keeps no parsed text of a valid file: its broken DAG reads it again.
    folder = _good_folder(tmp_path / "p")
    twin = (
        KITE.replace("name: Kite Main", "name: Weekly Twin")
        .replace("owner: rebalance", "owner: twin-owner")
        .replace("frequency: monthly\n  day_rule: last_trading_day\n", "frequency: weekly\n")
    )
    assert "owner: twin-owner" in twin
    assert "frequency: weekly" in twin
    (folder / "weekly_twin.yaml").write_text(twin, encoding="utf-8")
    bag = _bag(folder)
    assert "already used by" in _failure(bag, "rebalance_weekly_twin")
    assert _summary(bag, "rebalance_weekly_twin").startswith("weekly")
    assert bag.dags["rebalance_weekly_twin"].owner == "twin-owner"
