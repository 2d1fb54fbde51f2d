"""Price histories with known volatilities and correlations, for hand-checked model examples."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

# Columns of a 4x4 Hadamard matrix without the constant one: zero mean and mutually orthogonal,
# so the sample covariance of returns built from them is exactly diagonal.
ORTHOGONAL = np.array([[1, 1, 1], [-1, 1, -1], [1, -1, -1], [-1, -1, 1]], dtype=float)


def prices_from_returns(returns: np.ndarray, symbols: list[str], start: str = "2026-01-01"):
    """Daily closes starting at 100 whose simple returns are exactly ``returns``."""
    closes = 100.0 * np.vstack([np.ones(returns.shape[1]), np.cumprod(1.0 + returns, axis=0)])
    days = [d.date() for d in pd.bdate_range(start, periods=len(closes))]
    return pd.DataFrame(closes, index=pd.Index(days), columns=symbols)


def uncorrelated_prices(daily_vols: list[float], days: int = 40) -> pd.DataFrame:
    """Returns +/- sigma_i on alternating patterns: uncorrelated, daily sample std known exactly."""
    n = len(daily_vols)
    pattern = np.tile(ORTHOGONAL[:, :n], (days // 4, 1))
    return prices_from_returns(pattern * np.array(daily_vols), ["A", "B", "C"][:n])


def flat_history(symbols: list[str], days: int, start: str = "2026-01-01") -> pd.DataFrame:
    """Gently moving closes with no problem the price check looks for."""
    rng = np.random.default_rng(7)
    returns = rng.normal(0.0, 0.01, size=(days - 1, len(symbols)))
    return prices_from_returns(returns, symbols, start)


def day(text: str) -> date:
    return date.fromisoformat(text)
