"""Fixtures shared by the integration tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo portfolio in a private folder (so a test can vary it), with its holdings file.

    The folder is also REBALANCE_PORTFOLIOS_DIR: ``dag.test()`` serializes the DAG by parsing the
    DAG folder, which must see the same portfolio files as the test.
    """
    folder = tmp_path / "portfolios"
    shutil.copytree(ROOT / "portfolios", folder)
    monkeypatch.setenv("REBALANCE_PORTFOLIOS_DIR", str(folder))
    return folder / "demo.yaml"
