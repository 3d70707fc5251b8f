"""Series stages: dates and numbers read with clear errors, frequency, the regular grid, gaps, target
transforms, scaling, season detection and calendar features.

Everything that looks at values looks only at the past. Scalers, the MASE scale and season detection
see the training part only; gap filling never reaches across a split boundary into later values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from dlkit.data.splits import SPLITS
from dlkit.errors import UserError

DATE_NAMES = (
    "date",
    "datetime",
    "date time",
    "timestamp",
    "time",
    "ds",
    "dt",
    "day",
    "week",
    "month",
    "quarter",
    "year",
    "period",
)
_DAY = 86_400.0


# --- reading ---------------------------------------------------------------------------------
def _where(index: int, path: Path) -> str:
    """A place a person can find in the file: the line of a CSV (header = line 1), else the row."""
    return f"line {index + 2}" if path.suffix.lower() in (".csv", ".tsv", ".txt") else f"row {index + 1}"


def _examples(raw: pd.Series, bad: np.ndarray, path: Path, limit: int = 3) -> str:
    rows = np.flatnonzero(bad)[:limit]
    return ", ".join(f"{_where(int(i), path)}: {raw.iloc[i]!r}" for i in rows)


def find_date_column(df: pd.DataFrame, configured: str | None, path: Path) -> str:
    """The configured date column, one named like a date (date, timestamp, ds...), or one holding dates."""
    columns = [str(c) for c in df.columns]
    if configured:
        if configured not in columns:
            raise UserError(
                f"'{path}' has no date column '{configured}' (columns: {', '.join(columns[:30])})",
                "point data.date_column at the column holding the dates",
            )
        return configured
    by_name = {str(c).strip().lower(): c for c in df.columns}
    for name in DATE_NAMES:
        if name in by_name:
            return by_name[name]
    for column in df.columns:
        head = df[column].dropna().head(20)
        if len(head) and not pd.api.types.is_numeric_dtype(head):
            if pd.to_datetime(head.astype(str), errors="coerce", format="mixed").notna().mean() >= 0.9:
                return column
    raise UserError(
        f"'{path}' has no date column (columns: {', '.join(map(str, columns[:30]))})",
        "name it 'date' or set data.date_column=COLUMN",
    )


def _to_datetime(values: pd.Series, fmt: str | None, dayfirst: bool = False) -> pd.Series:
    """Local wall-clock times: a time zone is dropped as written; mixed offsets are converted to UTC first."""
    try:
        dates = pd.to_datetime(values, format=fmt, errors="coerce", dayfirst=dayfirst)
    except ValueError:
        dates = pd.to_datetime(values, format=fmt, errors="coerce", dayfirst=dayfirst, utc=True)
    return dates.dt.tz_localize(None) if dates.dt.tz is not None else dates


def parse_dates(raw: pd.Series, path: Path, column: str, fmt: str | None = None) -> pd.Series:
    """Timestamps; ones that cannot be read are shown with their row. Day-first dates are read as such."""
    values = raw
    if pd.api.types.is_integer_dtype(raw) and raw.between(1000, 3000).all():
        values, fmt = raw.astype(str), fmt or "%Y"  # a column of years
    try:
        dates = _to_datetime(values, fmt)
        if fmt is None and (dates.isna() & raw.notna()).any():  # 13/01/2020: day first, if that reads more
            dayfirst = _to_datetime(values, None, dayfirst=True)
            dates = dayfirst if dayfirst.notna().sum() > dates.notna().sum() else dates
    except (ValueError, TypeError) as exc:
        raise UserError(
            f"'{path}' column '{column}' cannot be read as dates: {exc}",
            "use ISO dates like 2024-01-31, or set data.date_format (e.g. %d/%m/%Y)",
        ) from None
    bad = (dates.isna() & raw.notna()).to_numpy()
    if bad.any() or raw.isna().any():
        shown = _examples(raw, bad | raw.isna().to_numpy(), path)
        raise UserError(
            f"'{path}' column '{column}' has {int(bad.sum() + raw.isna().sum())} value(s) that are "
            f"not dates, e.g. {shown}",
            "use ISO dates like 2024-01-31, or set data.date_format (e.g. %d/%m/%Y)",
        )
    return dates


def to_numeric(raw: pd.Series, path: Path, column: str) -> np.ndarray:
    """Floats; empty cells become NaN (gaps, filled later), anything else that is not a number is refused."""
    values = pd.to_numeric(raw, errors="coerce")
    bad = (values.isna() & raw.notna()).to_numpy()
    if bad.any():
        raise UserError(
            f"'{path}' column '{column}' has {int(bad.sum())} non-numeric value(s), "
            f"e.g. {_examples(raw, bad, path)}",
            "write plain numbers (no thousands separators or currency signs); "
            "leave a cell empty for a missing value",
        )
    return values.to_numpy(dtype=np.float64)


# --- frequency -------------------------------------------------------------------------------
def frequency_offset(freq: str):
    try:
        return to_offset(freq)
    except ValueError:
        raise UserError(
            f"data.frequency '{freq}' is not a pandas frequency",
            "use auto, or e.g. D (daily), B (business days), W-SUN, MS (month start), ME, QS, h",
        ) from None


def infer_frequency(date_sets: list[pd.DatetimeIndex]) -> str:
    """Daily, business-daily, weekly, monthly... from the typical spacing of dates within each series."""
    seconds = [d.to_numpy().astype("datetime64[s]").astype(np.int64) for d in date_sets]
    steps = np.concatenate([np.diff(s) for s in seconds] + [np.zeros(0)]).astype(float)
    steps = steps[steps > 0]
    if not len(steps):
        raise UserError(
            "cannot infer the frequency: no series has two different dates",
            "give each series at least two dated rows, or set data.frequency",
        )
    step = float(np.median(steps))
    dates = pd.DatetimeIndex(np.concatenate([d.to_numpy() for d in date_sets]))
    days = step / _DAY
    if days < 0.99:
        return to_offset(pd.Timedelta(seconds=round(step))).freqstr
    if days < 1.5:
        return "B" if (dates.day_of_week >= 5).mean() < 0.02 else "D"
    if 6 <= days <= 8:
        return (
            "W-"
            + ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")[int(np.bincount(dates.day_of_week).argmax())]
        )
    for low, high, start, end in ((27, 32, "MS", "ME"), (88, 93, "QS", "QE"), (360, 370, "YS", "YE")):
        if low <= days <= high:
            return end if dates.is_month_end.mean() > dates.is_month_start.mean() else start
    return f"{round(days)}D"


def default_horizon(freq: str) -> int:
    """Steps ahead people usually ask for at a frequency (two weeks of days, a year of months...)."""
    name = type(frequency_offset(freq)).__name__
    table = {
        "Day": 14,
        "BusinessDay": 10,
        "Week": 8,
        "MonthBegin": 12,
        "MonthEnd": 12,
        "QuarterBegin": 8,
        "QuarterEnd": 8,
        "YearBegin": 4,
        "YearEnd": 4,
    }
    return table.get(name, 24 if step_seconds(freq) < _DAY else 12)


def step_seconds(freq: str) -> float:
    """The length of one step in seconds (from 2001-01-01, so months and years are typical ones)."""
    stamp = pd.Timestamp("2001-01-01")
    return (stamp + frequency_offset(freq) - stamp).total_seconds()


def season_candidates(freq: str) -> list[int]:
    """Season lengths that make sense at a frequency: a week and a year of days, a day of hours..."""
    name = type(frequency_offset(freq)).__name__
    table = {
        "Day": [7, 365],
        "BusinessDay": [5, 261],
        "Week": [52],
        "MonthBegin": [12],
        "MonthEnd": [12],
        "QuarterBegin": [4],
        "QuarterEnd": [4],
    }
    if name in table:
        return table[name]
    seconds = step_seconds(freq)
    if seconds < _DAY:
        return [m for m in (round(_DAY / seconds), round(7 * _DAY / seconds)) if m > 1]
    return []


# --- regular grid and gaps ---------------------------------------------------------------
@dataclass
class Grid:
    """One series on a regular grid of dates; NaN where nothing was observed (a gap).

    `parts` holds the splits the data gave (a split column, file or folder): split -> (first, last) grid
    index of the rows marked with it.
    """

    dates: pd.DatetimeIndex
    values: np.ndarray  # (n, k)
    duplicates: list[str] = field(default_factory=list)
    off_grid: list[str] = field(default_factory=list)
    parts: dict[str, tuple[int, int]] = field(default_factory=dict)


def regularize(dates: pd.Series, values: np.ndarray, freq: str, splits: np.ndarray | None = None) -> Grid:
    """Snap dates to the grid (to the period they fall in), keep the last row of a duplicated date.

    `splits` (one split name or None per row) gives the grid span of each split the rows name.
    """
    offset = frequency_offset(freq)
    order = np.argsort(dates.to_numpy(), kind="stable")
    stamps = pd.DatetimeIndex(dates.to_numpy()[order])
    values = values[order]
    if step_seconds(freq) >= _DAY:
        stamps = stamps.normalize()
    grid = pd.date_range(offset.rollback(stamps[0]), stamps[-1], freq=offset)
    pos = grid.searchsorted(stamps, side="right") - 1
    off = grid[pos] != stamps
    last = np.r_[pos[1:] != pos[:-1], True]
    out = np.full((len(grid), values.shape[1]), np.nan)
    out[pos[last]] = values[last]
    duplicated = [str(grid[p].date()) for p in pos[~last]]
    parts = {}
    if splits is not None:
        splits = np.asarray(splits, dtype=object)[order]
        for name in SPLITS:
            where = pos[splits == name]
            if len(where):
                parts[name] = (int(where.min()), int(where.max()))
    return Grid(grid, out, duplicated, [str(s) for s in stamps[off]], parts)


def fill_gaps(values: np.ndarray, method: str, bounds: list[int]) -> tuple[np.ndarray, int]:
    """Fill NaNs without using later parts: interpolation stays inside each split part, then forward fill.

    Leading gaps of the first part take its first value (still inside the training part). Returns the
    filled values and how many cells were filled.
    """
    frame = pd.DataFrame(values)
    missing = int(frame.isna().to_numpy().sum())
    if not missing:
        return values, 0
    edges = [0, *bounds, len(frame)]
    parts = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        part = frame.iloc[a:b]
        if method == "interpolate":
            part = part.interpolate(limit_area="inside")
        parts.append(part)
    frame = pd.concat(parts).ffill()
    first_part = frame.iloc[: edges[1]].bfill()
    frame = pd.concat([first_part, frame.iloc[edges[1] :]])
    return frame.to_numpy(), missing


# --- target transforms and scaling ------------------------------------------------------------
def change(base, value, kind: str):
    """The change from `base` to `value`: a difference, a simple return or a log return."""
    if kind == "return":
        return value / base - 1
    if kind == "log_return":
        return np.log(value / base) if isinstance(value, np.ndarray) else (value / base).log()
    return value - base


def apply_change(base, delta, kind: str):
    """The exact inverse of `change`: apply_change(a, change(a, b)) == b."""
    if kind == "return":
        return base * (1 + delta)
    if kind == "log_return":
        return base * (np.exp(delta) if isinstance(delta, np.ndarray) else delta.exp())
    return base + delta


def to_target(y: np.ndarray, kind: str) -> np.ndarray:
    """The series as levels, or one-step changes (the first step, with no predecessor, is NaN)."""
    if kind == "level":
        return y.copy()
    return np.r_[np.nan, change(y[:-1], y[1:], kind)]


def from_target(z: np.ndarray, first: float, kind: str) -> np.ndarray:
    """Levels back from `to_target`, given the first level."""
    if kind == "level":
        return z.copy()
    if kind == "diff":
        return first + np.r_[0.0, np.cumsum(z[1:])]
    if kind == "log_return":
        return first * np.exp(np.r_[0.0, np.cumsum(z[1:])])
    return first * np.r_[1.0, np.cumprod(1 + z[1:])]


def check_transform(y: np.ndarray, kind: str, name: str) -> None:
    if kind in ("return", "log_return") and (y <= 0).any():
        raise UserError(
            f"series '{name}' has zero or negative values, so it has no {kind.replace('_', ' ')}s",
            "use data.transform=diff or level for such series",
        )


def fit_scaler(values: np.ndarray) -> dict:
    """Mean and standard deviation (kept away from zero) of the finite values."""
    finite = values[np.isfinite(values)]
    mean = float(finite.mean()) if len(finite) else 0.0
    std = float(finite.std()) if len(finite) > 1 else 0.0
    return {"mean": mean, "std": max(std, 1e-8 * max(1.0, abs(mean)))}


def naive_scale(y: np.ndarray, season: int) -> float:
    """The in-sample MAE of the (seasonal) naive forecast: the denominator of MASE."""
    for m in (season, 1):
        if 0 < m < len(y):
            scale = float(np.mean(np.abs(y[m:] - y[:-m])))
            if scale > 0:
                return scale
    return 1.0


# --- season and calendar ----------------------------------------------------------------------
def seasonal_autocorrelation(y: np.ndarray, m: int) -> float:
    """Autocorrelation at lag m after removing a centred moving average of one season (the trend)."""
    if m < 2 or len(y) < 3 * m:
        return 0.0
    kernel = np.ones(m + 1 - m % 2)
    if m % 2 == 0:
        kernel[[0, -1]] = 0.5
    trend = np.convolve(y, kernel / m, mode="valid")
    half = (len(kernel) - 1) // 2
    r = y[half : half + len(trend)] - trend
    r = r - r.mean()
    denom = float(np.dot(r, r))
    return float(np.dot(r[m:], r[:-m]) / denom) if denom > 0 else 0.0


def detect_season(train_parts: list[np.ndarray], freq: str, threshold: float = 0.3) -> int:
    """The season whose de-trended autocorrelation, pooled over series, is clearly positive, else 1."""
    best, best_score = 1, threshold
    for m in season_candidates(freq):
        usable = [y for y in train_parts if len(y) >= 3 * m]
        if not usable:
            continue
        weights = np.array([len(y) for y in usable], dtype=float)
        score = float(np.average([seasonal_autocorrelation(y, m) for y in usable], weights=weights))
        if score > best_score:
            best, best_score = m, score
    return best


def calendar_for(freq: str) -> list[str]:
    """Calendar features that can vary at this frequency (no day of week for monthly data...)."""
    seconds = step_seconds(freq)
    if seconds < _DAY:
        return ["hour_of_day", "day_of_week"]
    if seconds < 7 * _DAY:
        return ["day_of_week", "day_of_year"]
    if seconds < 28 * _DAY:
        return ["day_of_year"]
    if seconds < 360 * _DAY:
        return ["month_of_year"]
    return []


def calendar_features(dates: pd.DatetimeIndex, names: list[str]) -> np.ndarray:
    """Sine and cosine of each cycle position, so December sits next to January."""
    phase = {
        "hour_of_day": (dates.hour + dates.minute / 60) / 24,
        "day_of_week": dates.day_of_week / 7,
        "day_of_year": (dates.day_of_year - 1) / 365.25,
        "month_of_year": (dates.month - 1) / 12,
    }
    columns = []
    for name in names:
        angle = 2 * np.pi * np.asarray(phase[name], dtype=float)
        columns += [np.sin(angle), np.cos(angle)]
    return np.stack(columns, 1) if columns else np.zeros((len(dates), 0))
