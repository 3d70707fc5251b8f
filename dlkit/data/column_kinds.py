"""Typing table columns from their training values: numeric, categorical, boolean, datetime, free text,
id-like or constant, with the user's `clean.types` overrides. Used by the cleaning stage and `dlkit check`.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from dlkit.data import features as F
from dlkit.errors import UserError

KINDS = ("numeric", "categorical", "boolean", "datetime", "text", "id", "constant", "drop")
FEATURE_KINDS = ("numeric", "categorical", "boolean", "datetime", "text")
_ID_NAME = re.compile(r"(^|[_\s-])(id|uuid|key)$|^id[_\s-]|^index$", re.IGNORECASE)
_DATE_CHARS = re.compile(r"\d[-/:.T ]\d|\d{4}")


def rows_of(frame: pd.DataFrame, name: str, rows: np.ndarray | None) -> pd.Series:
    """One column, restricted to `rows` (e.g. the training rows) when given."""
    return frame[name] if rows is None else frame[name].iloc[rows]


def _looks_datetime(strings: pd.Series) -> bool:
    """Dates when pandas recognises a format in the first value and >= 95% of a sample parse with it.

    Requiring a known format keeps codes like 'T0001234' out (a free-form parser reads them as times)
    and makes parsing fast; other date columns can be declared with clean.types.COLUMN=datetime.
    """
    sample = strings.dropna().astype("str").head(200)
    if sample.empty or not sample.str.contains(_DATE_CHARS).all():
        return False
    fmt = F.datetime_format(sample)
    return fmt is not None and bool(F.parse_datetimes(sample, fmt).notna().mean() >= 0.95)


def mostly_numbers(series: pd.Series) -> pd.Series | None:
    """The parsed numbers when >= 95% of a text column's values are numbers, else None."""
    present = series.dropna()
    if not len(present) or pd.to_numeric(present.head(1000), errors="coerce").notna().mean() < 0.95:
        return None  # the first values decide cheaply for the usual text column
    numbers = pd.to_numeric(present, errors="coerce")
    return numbers if numbers.notna().mean() >= 0.95 else None


def non_numeric_value(series: pd.Series, numbers: pd.Series, where: str) -> UserError:
    """The error for the first value of a numeric column that is not a number."""
    bad = numbers.isna() & series.loc[numbers.index].notna()
    first = bad.index[bad.to_numpy()][0]
    row = (
        int(first) + 1 if isinstance(first, (int, np.integer)) else first
    )  # frames keep the file's row index
    value = series.loc[first]
    return UserError(
        f"column '{series.name}' in {where} is numeric but row {row} holds {value!r} "
        f"({int(bad.sum())} such value(s))",
        f"fix or blank those values, or declare the column with clean.types.{series.name}=categorical",
    )


def infer_kind(series: pd.Series, opts: dict) -> str:
    """The type of one column from its training values (see KINDS)."""
    present = series.dropna()
    distinct = present.nunique()
    if distinct <= 1:
        return "constant"
    if pd.api.types.is_bool_dtype(series.dtype):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return "datetime"
    if pd.api.types.is_numeric_dtype(series.dtype):
        if distinct == 2 and set(present.unique().tolist()) <= {0, 1}:
            return "boolean"
        integers = pd.api.types.is_integer_dtype(series.dtype)
        if (
            integers
            and distinct == len(series)
            and (_ID_NAME.search(str(series.name)) or present.max() - present.min() + 1 == distinct)
        ):
            return "id"
        return "numeric"
    strings = present.astype("str")
    if distinct <= 2 and set(strings.str.strip().str.lower().unique()) <= F.TRUE_WORDS | F.FALSE_WORDS:
        return "boolean"
    if mostly_numbers(series) is not None:
        return "numeric"
    if _looks_datetime(strings):
        return "datetime"
    if strings.head(1000).str.count(" ").mean() >= 3:
        return "text"
    if distinct >= opts["id_unique_fraction"] * len(present) and len(present) >= 20:
        return "id"
    return "categorical"


def column_types(
    frame: pd.DataFrame, columns: list[str], opts: dict, where: str, rows: np.ndarray | None = None
) -> dict[str, str]:
    """Inferred types (from `rows` only, if given) with the user's overrides; all-missing columns refused."""
    overrides = opts["types"]
    for name, kind in overrides.items():
        if kind not in KINDS:
            raise UserError(
                f"clean.types.{name}={kind} is not a column type", f"choose one of: {', '.join(KINDS)}"
            )
        if name not in frame.columns:
            raise UserError(
                f"clean.types names column '{name}', which {where} does not have",
                f"columns: {', '.join(map(str, frame.columns[:30]))}",
            )
    kinds = {}
    for name in columns:
        if name in overrides:
            kinds[name] = overrides[name]
            continue
        series = rows_of(frame, name, rows)
        if series.isna().all():
            raise UserError(
                f"column '{name}' in {where} has no values at all (every row is missing)",
                f"remove the column, or set clean.types.{name}=drop",
            )
        kinds[name] = infer_kind(series, opts)
    return kinds
