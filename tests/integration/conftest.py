"""Fixtures shared by the integration tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo_copy(tmp_path: Path) -> Path:
    """The demo portfolio in a private folder (so a test can vary it), with its holdings file."""
    folder = tmp_path / "portfolios"
    shutil.copytree(ROOT / "portfolios", folder)
    return folder / "demo.yaml"
