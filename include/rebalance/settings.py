"""Where things live on disk, from the environment (with project-local defaults).

Read at call time, never at import, so tests and deployments can point them elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def portfolios_dir() -> Path:
    """Folder of portfolio files: ``REBALANCE_PORTFOLIOS_DIR`` or ``<project>/portfolios``."""
    return Path(os.environ.get("REBALANCE_PORTFOLIOS_DIR") or PROJECT_ROOT / "portfolios")


def state_dir() -> Path:
    """Working state (paper order books, instrument caches, Data Docs): ``REBALANCE_STATE_DIR``."""
    path = Path(os.environ.get("REBALANCE_STATE_DIR") or PROJECT_ROOT / ".state")
    path.mkdir(parents=True, exist_ok=True)
    return path
