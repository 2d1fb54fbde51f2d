"""The load cache (``dag_factory._LOADED``) keeps each portfolio file's facts for the folder, and
its validated model only until the file's DAG is built (issue 19: memory per portfolio).

The shard files, the drift watch and the Rebalance page still read and validate each file once.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rebalance import dag_factory
from rebalance.dag_factory import PortfolioFacts, build_dags, folder_entries, loaded_portfolio
from rebalance.drift_dag import build_watch_dags
from rebalance.portfolio import load_portfolio, portfolio_files

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "portfolios"
    shutil.copytree(ROOT / "portfolios", folder)
    assert len(portfolio_files(folder)) >= 3
    return folder


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every portfolio file the load cache validates, in order."""
    seen: list[Path] = []
    real = dag_factory.portfolio_from_data

    def counting(data: object, path: Path) -> object:
        seen.append(path)
        return real(data, path)

    monkeypatch.setattr(dag_factory, "portfolio_from_data", counting)
    return seen


def _cached(folder: Path) -> list[dag_factory._Loaded]:
    return [loaded for path, (_, loaded) in dag_factory._LOADED.items() if path.parent == folder]


def test_a_built_dag_leaves_its_facts_and_not_its_model(folder: Path) -> None:
    dags = build_dags(folder)

    assert len(dags) == len(portfolio_files(folder))
    cached = _cached(folder)
    assert len(cached) == len(dags)
    assert all(loaded.portfolio is None for loaded in cached)
    assert all(isinstance(loaded.facts, PortfolioFacts) for loaded in cached)


def test_each_file_is_validated_once_by_every_shard_and_the_watch(
    folder: Path, validations: list[Path]
) -> None:
    files = portfolio_files(folder)
    shards = [build_dags(folder, shard, 2) for shard in range(2)]
    build_watch_dags(folder)

    assert sorted(validations) == files  # once each, whatever the order
    assert sum(len(dags) for dags in shards) == len(files)
    assert all(loaded.portfolio is None for loaded in _cached(folder))


def test_a_dag_built_again_validates_its_file_again(folder: Path, validations: list[Path]) -> None:
    first = build_dags(folder)
    again = build_dags(folder)

    assert sorted(validations) == sorted(portfolio_files(folder) * 2)
    assert first.keys() == again.keys()
    for dag_id, dag in first.items():
        assert again[dag_id].task_ids == dag.task_ids


def test_the_facts_are_the_models(folder: Path) -> None:
    for entry in folder_entries(folder):
        portfolio = load_portfolio(entry.path)
        facts = entry.facts
        assert facts is not None
        assert facts.id == portfolio.id
        assert facts.watch_time == portfolio.trigger.watch_time
        assert facts.holiday_overrides == portfolio.holiday_overrides
        assert [(a.name, a.broker, a.ledger) for a in facts.accounts] == [
            (a.name, str(a.broker), a.ledger) for a in portfolio.accounts
        ]


def test_the_rebalance_page_gets_the_model_after_the_dags_are_built(folder: Path) -> None:
    build_dags(folder)
    for path in portfolio_files(folder):
        portfolio, timetable, problems = loaded_portfolio(path)
        assert portfolio == load_portfolio(path)
        assert timetable is not None
        assert problems == ()
