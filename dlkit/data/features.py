"""Per-column feature steps: each `fit_*` learns a JSON plan from training values, `apply_*` re-applies it.

Numeric columns: optional log1p (heavily skewed, non-negative), outlier clipping (IQR or z-score
bounds), imputation (median, mean or a constant) with a missing-indicator feature, scaling.
Booleans become 0/1, datetimes their parts (hour, weekday, month...), free text its length.
Categoricals are filled (a "missing" category or the most frequent one), rare categories grouped
into "other", then one-hot, embedding indices, or frequency encoding when there are too many.

Plans hold only numbers and strings, so a fitted pipeline is data in the run directory, and the
same `apply_*` code runs at training, evaluation and prediction: the features cannot drift apart.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dlkit.data.clean_options import DATETIME_PARTS as DATETIME_PARTS  # the clean.datetime_parts choices
from dlkit.data.scaling import apply_scaler, fit_scaler

MISSING = "__missing__"
OTHER = "other"
TRUE_WORDS = frozenset({"1", "1.0", "true", "yes", "y", "t"})
FALSE_WORDS = frozenset({"0", "0.0", "false", "no", "n", "f"})
_SAMPLE = 200_000  # rows used for shape statistics (skewness); quantiles and means use every row


@dataclass
class Report:
    """What the cleaning stage did: one entry per step and column, with how many values or rows."""

    entries: list[dict] = field(default_factory=list)

    def add(self, step: str, columns: str | list[str], count: int | None = None, detail: str = "") -> None:
        names = [columns] if isinstance(columns, str) else list(columns)
        self.entries.append(
            {"step": step, "columns": names, "count": None if count is None else int(count), "detail": detail}
        )


# --- numeric ---------------------------------------------------------------------------------
def _skewness(values: np.ndarray) -> float:
    sample = values[:: max(1, values.size // _SAMPLE)].astype(np.float64)
    std = sample.std()
    return float(np.mean(((sample - sample.mean()) / std) ** 3)) if std > 0 else 0.0


def outlier_bounds(values: np.ndarray, method: str, iqr_k: float, z: float) -> list[float] | None:
    """Winsorizing bounds from training values; None when the method is off or the spread is zero."""
    if method == "none" or values.size == 0:
        return None
    if method == "iqr":
        q1, q3 = np.percentile(values, [25, 75])
        spread = q3 - q1
        low, high = q1 - iqr_k * spread, q3 + iqr_k * spread
    else:
        spread = float(np.std(values))
        low, high = np.mean(values) - z * spread, np.mean(values) + z * spread
    # a zero spread (mostly one value, e.g. a sparse count) would flatten every other value
    return [float(low), float(high)] if spread > 0 else None


def fit_numeric(values: np.ndarray, name: str, opts: dict, report: Report, transforms: bool = True) -> dict:
    """Plan for one numeric column; `transforms=False` skips log and clipping (e.g. datetime parts)."""
    missing = np.isnan(values)
    observed = values[~missing].astype(np.float64)
    plan: dict = {
        "log": False,
        "clip": None,
        "fill": 0.0,
        "scale": [0.0, 1.0],
        "indicator": bool(opts["missing_indicators"] and missing.any()),
    }
    threshold = opts["skew_threshold"]
    if transforms and threshold is not None and observed.size and observed.min() >= 0:
        skew = _skewness(observed)
        if skew > threshold:
            plan["log"] = True
            observed = np.log1p(observed)
            report.add("log1p (skewed)", name, None, f"skewness {skew:.1f}")
    if transforms:
        plan["clip"] = outlier_bounds(observed, opts["outliers"], opts["outlier_iqr_k"], opts["outlier_z"])
        if plan["clip"] is not None:
            low, high = plan["clip"]
            clipped = int(np.count_nonzero((observed < low) | (observed > high)))
            if clipped:
                observed = np.clip(observed, low, high)
                report.add(
                    f"outliers clipped ({opts['outliers']})",
                    name,
                    clipped,
                    f"bounds [{low:.4g}, {high:.4g}]" + (" on the log1p scale" if plan["log"] else ""),
                )
    strategy = opts["impute_numeric"]
    if strategy == "constant":
        plan["fill"] = float(opts["fill_value"])
    elif observed.size:
        plan["fill"] = float(np.median(observed) if strategy == "median" else np.mean(observed))
    if missing.any():
        report.add(
            "missing values imputed",
            name,
            int(missing.sum()),
            f"{strategy} {plan['fill']:.4g}" + (" + indicator" if plan["indicator"] else ""),
        )
    unscaled = _transform_numeric(values.astype(np.float32), plan)
    plan["scale"] = fit_scaler(unscaled, opts["scaling"])
    return plan


def _transform_numeric(values: np.ndarray, plan: dict) -> np.ndarray:
    """Log, clip and fill `values` (float32) in place, without scaling."""
    missing = np.isnan(values)
    if plan["log"]:
        np.maximum(values, 0, out=values)  # a negative value never seen in training
        np.log1p(values, out=values)
    if plan["clip"] is not None:
        np.clip(values, plan["clip"][0], plan["clip"][1], out=values)
    values[missing] = plan["fill"]
    return values


def numeric_width(plan: dict) -> int:
    return 1 + plan["indicator"]


def apply_numeric(values: np.ndarray, plan: dict, out: np.ndarray) -> None:
    """Write the feature into out[:, 0] and, when planned, its missing indicator into out[:, 1]."""
    missing = np.isnan(values) if plan["indicator"] else None
    out[:, 0] = apply_scaler(_transform_numeric(values, plan), plan["scale"])
    if missing is not None:
        out[:, 1] = missing


# --- booleans, datetimes, free text ------------------------------------------------------------
def boolean_values(series: pd.Series) -> np.ndarray:
    """1/0 as float32 (NaN when missing or not a yes/no word)."""
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        numbers = series.to_numpy(dtype=np.float32, na_value=np.nan, copy=True)
        numbers[(numbers != 0) & (numbers != 1)] = np.nan
        return numbers
    words = category_strings(series).str.strip().str.lower()
    out = np.full(len(series), np.nan, dtype=np.float32)
    out[words.isin(TRUE_WORDS).to_numpy()] = 1.0
    out[words.isin(FALSE_WORDS).to_numpy()] = 0.0
    return out


def fit_boolean(values: np.ndarray, name: str, opts: dict, report: Report) -> dict:
    missing = np.isnan(values)
    fill = float(np.nanmean(values) >= 0.5) if (~missing).any() else 0.0
    if missing.any():
        report.add("missing values imputed", name, int(missing.sum()), f"most frequent {int(fill)}")
    return {
        "log": False,
        "clip": None,
        "fill": fill,
        "scale": [0.0, 1.0],
        "indicator": bool(opts["missing_indicators"] and missing.any()),
    }


def datetime_format(series: pd.Series) -> str | None:
    """The strptime format of a column of date strings, guessed from its first value (None: let pandas)."""
    from pandas.tseries.api import guess_datetime_format

    first = series.dropna()
    if first.empty or pd.api.types.is_datetime64_any_dtype(series.dtype):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return guess_datetime_format(str(first.iloc[0]))


def parse_datetimes(series: pd.Series, fmt: str | None) -> pd.Series:
    """Timestamps (UTC); values that do not parse become NaT and are imputed like missing ones."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.to_datetime(series, errors="coerce", format=fmt, utc=True)


def datetime_part(stamps: pd.Series, part: str) -> np.ndarray:
    values = getattr(stamps.dt, "day_of_week" if part == "weekday" else part)
    return values.to_numpy(dtype=np.float32, na_value=np.nan)


def text_lengths(series: pd.Series) -> np.ndarray:
    return category_strings(series).str.len().to_numpy(dtype=np.float32, na_value=np.nan)


# --- categoricals ------------------------------------------------------------------------------
def category_strings(series: pd.Series) -> pd.Series:
    """Categories as strings, missing kept missing; whole-number floats (codes with NaN) lose the '.0'."""
    if isinstance(series.dtype, pd.StringDtype):
        return series
    if pd.api.types.is_float_dtype(series.dtype):
        numbers = series.dropna()
        if (numbers == numbers.round()).all():
            series = series.astype("Int64")
    return series.astype(str).where(series.notna())  # pandas < 3 would turn missing into 'nan'


def fit_categorical(strings: pd.Series, name: str, opts: dict, report: Report) -> dict:
    """Fill, group rare categories into "other", pick the encoding by how many categories remain."""
    missing = int(strings.isna().sum())
    if opts["impute_categorical"] == "constant" or missing == len(strings):
        fill = MISSING
    else:
        fill = str(strings.mode(dropna=True).iloc[0])
    counts = strings.fillna(fill).value_counts()
    if missing:
        report.add(
            "missing values imputed",
            name,
            missing,
            "as category 'missing'" if fill == MISSING else f"most frequent '{fill}'",
        )
    rare = counts[counts < opts["rare_min_count"]]
    kept = counts[counts >= opts["rare_min_count"]]
    categories = sorted(map(str, kept.index))
    if len(rare):
        if OTHER not in categories:
            categories.append(OTHER)
        report.add(
            "rare categories -> other",
            name,
            int(rare.sum()),
            f"{len(rare)} categories seen < {opts['rare_min_count']} times",
        )
    plan: dict = {"fill": fill, "categories": categories}
    if len(categories) > opts["max_categories"]:
        shares = counts.reindex(categories).fillna(0.0) / len(strings)
        if OTHER in categories:
            shares[OTHER] = (rare.sum() + counts.get(OTHER, 0)) / len(strings)
        plan.update(encoding="frequency", frequencies=[float(s) for s in shares])
        codes = category_codes(strings, plan)
        plan["scale"] = fit_scaler(np.asarray(plan["frequencies"], dtype=np.float32)[codes], opts["scaling"])
        report.add("frequency encoded", name, None, f"{len(categories)} categories")
    else:
        plan["encoding"] = opts["categorical"]
        report.add(
            "one-hot encoded" if plan["encoding"] == "onehot" else "embedding indices",
            name,
            None,
            f"{len(categories)} categories",
        )
    return plan


def category_codes(strings: pd.Series, plan: dict) -> np.ndarray:
    """Index of each value in the plan's categories; unseen values -> "other" (or -1 when there is none)."""
    categories = plan["categories"]
    codes = pd.Index(categories).get_indexer(strings.fillna(plan["fill"]))
    unseen = codes < 0
    if unseen.any():
        codes[unseen] = categories.index(OTHER) if OTHER in categories else -1
    return codes


def categorical_width(plan: dict) -> int:
    return {"onehot": len(plan["categories"]), "frequency": 1, "embedding": 0}[plan["encoding"]]


def apply_categorical(strings: pd.Series, plan: dict, out: np.ndarray) -> np.ndarray | None:
    """Write one-hot or frequency features into `out`; return embedding indices (0 = unseen) instead."""
    codes = category_codes(strings, plan)
    if plan["encoding"] == "embedding":
        return codes + 1
    if plan["encoding"] == "frequency":
        shares = np.append(np.asarray(plan["frequencies"], dtype=np.float32), 0.0)  # -1 -> unseen -> 0
        out[:, 0] = apply_scaler(shares[codes], plan["scale"])
        return None
    out[:] = 0.0
    seen = codes >= 0
    out[np.flatnonzero(seen), codes[seen]] = 1.0
    return None
