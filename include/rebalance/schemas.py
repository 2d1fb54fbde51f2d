"""Pandera models of the tables that cross a boundary: the holdings snapshot and the plan.

``validate_frame`` runs a model lazily and turns every failure into one line a person can act on
(file or source, row, column, what is wrong) instead of a stack trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors
from pandera.typing import Series

from rebalance.errors import InputDataError


class HoldingsSnapshotSchema(pa.DataFrameModel):
    """One row per symbol held (or quoted) in one account. Rupees and whole shares."""

    symbol: Series[str] = pa.Field(unique=True, str_matches=r"^[A-Z0-9][A-Z0-9&_.\-]{0,29}$")
    exchange: Series[str] = pa.Field(isin=["NSE", "BSE"])
    quantity: Series[int] = pa.Field(ge=0)
    sellable_quantity: Series[int] = pa.Field(ge=0)
    last_price: Series[float] = pa.Field(gt=0, nullable=False)
    average_price: Series[float] = pa.Field(ge=0, nullable=True)

    @pa.dataframe_check(error="sellable_quantity exceeds quantity")
    @classmethod
    def sellable_within_held(cls, df: pd.DataFrame) -> Series[bool]:
        return df["sellable_quantity"] <= df["quantity"]

    class Config:
        strict = False  # optional columns (previous_close, acquired_on, isin) may follow
        coerce = True


class PlanOrdersSchema(pa.DataFrameModel):
    """The orders of a plan (``TradePlan.to_dict()["orders"]`` as a table). Rupees, whole shares."""

    symbol: Series[str] = pa.Field(unique=True)
    exchange: Series[str] = pa.Field(isin=["NSE", "BSE"])
    side: Series[str] = pa.Field(isin=["BUY", "SELL"])
    quantity: Series[int] = pa.Field(gt=0)
    price: Series[float] = pa.Field(gt=0)
    notional: Series[float] = pa.Field(gt=0)
    charges: Series[float] = pa.Field(ge=0)

    @pa.dataframe_check(error="notional is not quantity x price")
    @classmethod
    def notional_is_quantity_times_price(cls, df: pd.DataFrame) -> Series[bool]:
        return (df["quantity"] * df["price"] - df["notional"]).abs() < 1e-6

    class Config:
        strict = False  # reasons (a list per order) may follow
        coerce = True


class PlanPositionsSchema(pa.DataFrameModel):
    """The per-symbol lines of a plan: weights are fractions of portfolio value."""

    symbol: Series[str] = pa.Field(unique=True)
    weight_before: Series[float] = pa.Field(ge=0)
    target_weight: Series[float] = pa.Field(ge=0, le=1)
    weight_after: Series[float] = pa.Field(ge=0)
    quantity_before: Series[int] = pa.Field(ge=0)
    quantity_after: Series[int] = pa.Field(ge=0)

    class Config:
        strict = False  # skipped (a list per symbol) may follow
        coerce = True


def describe_failures(
    exc: SchemaErrors, row_offset: int = 0, symbols: Sequence[object] = ()
) -> list[str]:
    """One line per failed check: ``row 3 (TCS), last_price: must be > 0 (got 0.0)``.

    ``row_offset`` turns a DataFrame index into the row number a person sees (2 for a CSV file
    with a header line, counting from 1); ``symbols`` (by index) names the row's instrument.
    """
    problems: list[str] = []
    cases = exc.failure_cases.fillna({"column": "", "index": -1})
    for case in cases.itertuples(index=False):
        column = str(getattr(case, "column", "") or "")
        check = str(getattr(case, "check", ""))
        value = getattr(case, "failure_case", None)
        index = getattr(case, "index", -1)
        where = "table"
        if isinstance(index, int | float) and index >= 0:
            where = f"row {int(index) + row_offset}"
            if int(index) < len(symbols):
                where += f" ({symbols[int(index)]})"
        field = f", {column}" if column and column != "None" else ""
        problems.append(f"{where}{field}: fails {_readable_check(check)} (got {value!r})")
    return problems


def _readable_check(check: str) -> str:
    replacements = {
        "greater_than(0)": "must be > 0",
        "greater_than_or_equal_to(0)": "must be >= 0",
        "field_uniqueness": "must be unique",
        "column_in_dataframe": "required column is missing",
        "not_nullable": "must not be empty",
    }
    return replacements.get(check, check)


def validate_frame(
    model: type[pa.DataFrameModel], frame: pd.DataFrame, source: str, row_offset: int = 0
) -> pd.DataFrame:
    """Validate ``frame`` against ``model`` collecting every failure; raise InputDataError."""
    try:
        validated: Any = model.validate(frame, lazy=True)
    except SchemaErrors as exc:
        symbols = list(frame["symbol"]) if "symbol" in frame else []
        raise InputDataError(source, describe_failures(exc, row_offset, symbols)) from None
    return pd.DataFrame(validated)
