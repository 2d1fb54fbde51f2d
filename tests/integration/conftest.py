"""Fixtures shared by the integration tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo portfolio in a private folder (so a test can vary it), with its holdings file.

    The folder is also REBALANCE_PORTFOLIOS_DIR (``dag.test()`` serializes the DAG by parsing the
    DAG folder, which must see the same portfolio files as the test), and the test gets a state
    directory of its own.
    """
    folder = tmp_path / "portfolios"
    shutil.copytree(ROOT / "portfolios", folder)
    monkeypatch.setenv("REBALANCE_PORTFOLIOS_DIR", str(folder))
    # A fresh paper account too: fills of an earlier test must not rebalance this one's holdings.
    monkeypatch.setenv("REBALANCE_STATE_DIR", str(tmp_path / "state"))
    return folder / "demo.yaml"
