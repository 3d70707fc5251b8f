"""Time-series stages for forecasting recipes: regular grids, gaps, time splits, scaling, windows, baselines.

Everything that looks at values looks only at the past. Splits are by time (train, then validation,
then test at the end of each series); scalers, the MASE scale and season detection see the training
part only; gap filling never reaches across a split boundary into later values. A model evaluated on
these windows can therefore look no better than it would have been in real time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pandas.tseries.frequencies import to_offset
from torch.utils.data import Dataset

from dlkit.errors import UserError

TRANSFORMS = ("level", "diff", "return", "log_return")
FILLS = ("ffill", "interpolate")
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


# --- regular grid, gaps, split ---------------------------------------------------------------
@dataclass
class Grid:
    """One series on a regular grid of dates; NaN where nothing was observed (a gap)."""

    dates: pd.DatetimeIndex
    values: np.ndarray  # (n, k)
    duplicates: list[str] = field(default_factory=list)
    off_grid: list[str] = field(default_factory=list)


def regularize(dates: pd.Series, values: np.ndarray, freq: str) -> Grid:
    """Snap dates to the grid (to the period they fall in), keep the last row of a duplicated date."""
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
    return Grid(grid, out, duplicated, [str(s) for s in stamps[off]])


def time_split(n: int, val_fraction: float, test_fraction: float, min_part: int) -> tuple[int, int]:
    """(end of train, end of validation): train first, then validation, then test at the end."""
    if not 0 < val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise UserError(
            f"data.val_fraction={val_fraction} and data.test_fraction={test_fraction} must be "
            "in (0, 1) and add up to less than 1",
            "forecasting keeps the last part of each series for validation and test",
        )
    n_test = max(min_part, round(n * test_fraction))
    n_val = max(min_part, round(n * val_fraction))
    return n - n_val - n_test, n - n_test


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


# --- windows -----------------------------------------------------------------------------------
@dataclass
class Series:
    """One filled series on its grid, with its lagged covariates (original units)."""

    name: str
    dates: pd.DatetimeIndex
    y: np.ndarray
    covariates: np.ndarray  # (n, k)


@dataclass(frozen=True)
class WindowSpec:
    lookback: int
    horizon: int
    transform: str
    calendar: tuple[str, ...]
    freq: str

    @property
    def history(self) -> int:
        """Points before an origin a window reads: the lookback plus one, for the first change."""
        return self.lookback + 1


def fit_encoding(s: Series, train_end: int, kind: str, season: int) -> dict:
    """Per-series scaling fitted on the training part only, plus its MASE scale."""
    y = s.y[:train_end]
    return {
        "target": fit_scaler(to_target(y, kind)),
        "covariates": [fit_scaler(s.covariates[:train_end, j]) for j in range(s.covariates.shape[1])],
        "mase_scale": naive_scale(y, season),
    }


class WindowSet(Dataset):
    """Windows `lookback -> horizon` at the given origins (index of the first forecast step).

    Inputs: the target's scaled changes (level: scaled level minus the last one), scaled covariates and
    calendar features of the past; calendar features of the forecast dates. Target: the scaled change
    from the last observed value to each forecast step, minus the training drift, which `apply_change`
    turns back into original units exactly. Windows beyond the end of a series (for predict) have NaN truth.
    """

    def __init__(
        self, series: list[Series], origins: list[tuple[int, int]], encodings: list[dict], spec: WindowSpec
    ):
        self.series, self.origins, self.encodings, self.spec = series, origins, encodings, spec
        self._inputs = [self._encode_inputs(s, e) for s, e in zip(series, encodings, strict=True)]
        offset = frequency_offset(spec.freq)
        self._calendar = []
        for s in series:
            future = pd.date_range(s.dates[-1], periods=spec.horizon + 1, freq=offset)[1:]
            dates = s.dates.append(future)
            self._calendar.append(calendar_features(dates, list(spec.calendar)).astype(np.float32))

    def _encode_inputs(self, s: Series, enc: dict) -> np.ndarray:
        scaler = enc["target"]
        z = np.nan_to_num((to_target(s.y, self.spec.transform) - scaler["mean"]) / scaler["std"])
        columns = [z] + [(s.covariates[:, j] - c["mean"]) / c["std"] for j, c in enumerate(enc["covariates"])]
        return np.stack(columns, 1).astype(np.float32)

    def __len__(self) -> int:
        return len(self.origins)

    def __getitem__(self, i: int) -> dict:
        k, t = self.origins[i]
        s, spec, scaler = self.series[k], self.spec, self.encodings[k]["target"]
        L, H = spec.lookback, spec.horizon
        past = self._inputs[k][t - L : t].copy()
        if spec.transform == "level":
            past[:, 0] -= past[-1, 0]
        calendar = self._calendar[k]
        last = s.y[t - 1]
        truth = np.full(H, np.nan)
        known = s.y[t : t + H]
        truth[: len(known)] = known
        drift = 0.0 if spec.transform == "level" else scaler["mean"]
        target = (change(last, truth, spec.transform) - drift * np.arange(1, H + 1)) / scaler["std"]
        return {
            "past": torch.from_numpy(np.concatenate([past, calendar[t - L : t]], 1)),
            "future": torch.from_numpy(calendar[t : t + H]),
            "target": torch.from_numpy(np.nan_to_num(target).astype(np.float32)),
            "truth": torch.from_numpy(truth.astype(np.float32)),
            "last": torch.tensor(last, dtype=torch.float32),
            "std": torch.tensor(scaler["std"], dtype=torch.float32),
            "drift": torch.tensor(drift, dtype=torch.float32),
            "mase_scale": torch.tensor(self.encodings[k]["mase_scale"], dtype=torch.float32),
            "id": f"{s.name}@{s.dates[t - 1].isoformat()}",
        }


def origins_between(start: int, end: int, spec: WindowSpec) -> range:
    """Origins whose whole horizon lies in [start, end) and whose history starts at 0 or later."""
    return range(max(start, spec.history), end - spec.horizon + 1)


def to_units(scaled: torch.Tensor, batch: dict, kind: str) -> torch.Tensor:
    """Scaled cumulative changes (B, H, ...) -> forecasts in original units."""
    steps = torch.arange(1, scaled.shape[1] + 1, device=scaled.device, dtype=scaled.dtype)
    shape = (-1,) + (1,) * (scaled.dim() - 1)
    steps = steps.view((1, -1) + (1,) * (scaled.dim() - 2))
    delta = scaled * batch["std"].view(shape) + batch["drift"].view(shape) * steps
    return apply_change(batch["last"].view(shape), delta, kind)


# --- baselines and significance ---------------------------------------------------------------
def baseline_forecasts(y: np.ndarray, origins: list[int], horizon: int, season: int) -> dict[str, np.ndarray]:
    """Naive (last value), seasonal naive (last season repeated) and drift forecasts, (N, H) each.

    Seasonal naive is left out unless every origin has a full season of history.
    """
    t = np.asarray(origins)
    h = np.arange(horizon)
    last = y[t - 1]
    out = {"naive": np.repeat(last[:, None], horizon, 1)}
    if season > 1 and (t >= season).all():
        out["seasonal_naive"] = y[(t - season)[:, None] + h % season]
    slope = np.where(t > 1, (last - y[0]) / np.maximum(t - 1, 1), 0.0)
    out["drift"] = last[:, None] + slope[:, None] * (h + 1)
    return out


def diebold_mariano(loss_diff: np.ndarray, horizon: int) -> float:
    """One-sided p-value that the first forecast's loss is lower (negative mean difference).

    The variance uses Newey-West weights up to lag horizon-1, since overlapping windows are correlated.
    """
    d = np.asarray(loss_diff, dtype=float)
    n = len(d)
    if n < 3:
        return 1.0
    centred = d - d.mean()
    var = float(np.dot(centred, centred)) / n
    for lag in range(1, min(horizon, n - 1)):
        var += 2 * (1 - lag / horizon) * float(np.dot(centred[lag:], centred[:-lag])) / n
    if var <= 0:
        return 0.0 if d.mean() < 0 else 1.0
    stat = d.mean() / math.sqrt(var / n)
    return 0.5 * math.erfc(-stat / math.sqrt(2))
