"""The seasonal-trend forecast: level + linear trend + additive season fitted by least squares to the recent
past of each origin, with the fit window chosen on validation.

It is a baseline (`baselines.py`) and, where it beats the last value on validation, the classical forecast
the net starts from and corrects (`windows.py`): cheap enough to compute for every training window, and it
only ever reads values before the origin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: windows.py imports this module
    from dlkit_recipes.finance_forecasting.windows import WindowSet

HARMONICS = 6  # at most this many sine/cosine pairs for the season (a 12-month season needs all 6)


def _design(steps: np.ndarray, season: int) -> np.ndarray:
    """Columns: level, linear trend and the season's sine/cosine pairs (none without a season)."""
    columns = [np.ones(len(steps)), steps / max(1, len(steps))]
    for k in range(1, min(HARMONICS, season // 2) + 1):
        angle = 2 * np.pi * k * steps / season
        columns += [np.sin(angle), np.cos(angle)]
    return np.stack(columns, 1)


def seasonal_trend(y: np.ndarray, t: np.ndarray, horizon: int, season: int, fit_window: int) -> np.ndarray:
    """Level + linear trend + additive season fitted by least squares to the last `fit_window` values before
    each origin (fewer where the series is shorter), extrapolated `horizon` steps.

    The terms are written in time relative to the window, which spans the same functions as absolute
    time, so one pseudo-inverse serves every window of the same length.
    """
    out = np.empty((len(t), horizon))
    widths = np.minimum(fit_window, t)
    for width in np.unique(widths):
        rows = np.flatnonzero(widths == width)
        steps = np.arange(width + horizon, dtype=float)
        design = _design(steps, season)
        solve = np.linalg.pinv(design[:width])  # (terms, width), minimum norm when short
        past = y[(t[rows] - width)[:, None] + np.arange(width)]
        out[rows] = past @ solve.T @ design[width:].T
    return out


def fit_window(state: dict) -> int:
    """How much recent past the seasonal-trend fit sees (chosen on validation by `choose`)."""
    return state.get("baseline_window") or state["lookback"] + 1


def _validation_mase(val: WindowSet, horizon: int, forecast) -> float:
    """MASE on the validation windows of `forecast(y, origins) -> (N, H)`, the metric's own definition."""
    by_series: dict[int, list[int]] = {}
    for k, t in val.origins:
        by_series.setdefault(k, []).append(t)
    errors = []
    for k, origins in by_series.items():
        y, t = val.series[k].y, np.asarray(origins)
        truth = y[t[:, None] + np.arange(horizon)]
        errors.append(np.abs(truth - forecast(y, t)).mean(1) / val.encodings[k]["mase_scale"])
    return float(np.concatenate(errors).mean()) if errors else float("inf")


def choose(val: WindowSet, state: dict) -> tuple[int, bool]:
    """The fit window with the lowest MASE on the validation windows (1, 2, 4 or 8 times the model's
    lookback + 1, or three seasons), tuned like the model is so the baseline is a fair rival; and whether
    that fit beats the last value there, which makes it the forecast the net starts from."""
    unit, horizon, season = state["lookback"] + 1, state["horizon"], state["season"]
    candidates = sorted({unit * m for m in (1, 2, 4, 8)} | ({3 * season} if season > 1 else set()))
    scores = [
        _validation_mase(val, horizon, lambda y, t, w=width: seasonal_trend(y, t, horizon, season, w))
        for width in candidates
    ]
    best = int(np.argmin(scores))
    naive = _validation_mase(val, horizon, lambda y, t: np.repeat(y[t - 1][:, None], horizon, 1))
    return candidates[best], scores[best] < naive
