"""Baseline forecasts on the model's own test windows, and the significance test that says whether the
model really beats the strongest of them.

- naive: the last observed value (a random walk's best forecast);
- seasonal_naive: the last season repeated (only when a season was detected and every window has one);
- drift: the last value plus the average change since the series began;
- seasonal_trend: a least-squares fit of level + linear trend + additive season (Fourier terms) to each
  window's recent past, extrapolated;
- holt_winters: the strong classical one, exponential smoothing with additive trend and season
  (statsmodels) re-fitted at the origins (`holt_winters.py`).
The last two only ever see values before each origin and need nothing fitted on the training data, so
`dlkit evaluate` rebuilds them from the data alone.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from dlkit_recipes.finance_forecasting.holt_winters import fits_per_series, holt_winters
from dlkit_recipes.finance_forecasting.trend_season import fit_window, seasonal_trend
from dlkit_recipes.finance_forecasting.windows import WindowSet, pack_target


def baseline_forecasts(
    y: np.ndarray, origins: list[int], horizon: int, season: int, fit_window: int, fits: int
) -> dict[str, np.ndarray]:
    """Every baseline's forecasts (N, H) for one series at the given origins (first forecast steps).

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
    out["seasonal_trend"] = seasonal_trend(y, t, horizon, season, fit_window)
    out["holt_winters"] = holt_winters(y, origins, horizon, season, fits)
    return out


def baseline_tables(windows: WindowSet, state: dict) -> dict[str, dict[str, np.ndarray]]:
    """name -> window id -> forecast (H,) for every window of the set; a baseline that some series cannot
    give (seasonal naive without a full season of history) is left out."""
    by_series: dict[int, list[int]] = {}
    for i, (k, _) in enumerate(windows.origins):
        by_series.setdefault(k, []).append(i)
    tables: dict[str, dict[str, np.ndarray]] = {}
    counts: dict[str, int] = {}
    fits = fits_per_series(len(by_series), state["season"])
    for k, items in by_series.items():
        origins = [windows.origins[i][1] for i in items]
        forecasts = baseline_forecasts(
            windows.series[k].y, origins, state["horizon"], state["season"], fit_window(state), fits
        )
        for name, values in forecasts.items():
            table = tables.setdefault(name, {})
            counts[name] = counts.get(name, 0) + 1
            for i, row in zip(items, values, strict=True):
                table[windows.window_id(i)] = row
    return {name: table for name, table in tables.items() if counts[name] == len(by_series)}


def predictor(table: dict[str, np.ndarray], quantiles: int):
    """A baseline predictor: a collated batch -> its forecasts, looked up by window id, in `step`'s form
    (a point forecast repeated along the quantile axis: an interval of width zero)."""

    def predict(batch: dict) -> dict:
        rows = np.stack([table[i] for i in batch["id"]])
        preds = torch.as_tensor(rows, dtype=torch.float32)[..., None].expand(-1, -1, quantiles)
        return {"preds": preds, "target": pack_target(batch)}

    return predict


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


def significance(
    model_errors: np.ndarray, baseline_errors: dict[str, np.ndarray], horizon: int, alpha: float
):
    """Per baseline: both MASEs on the same windows, the Diebold-Mariano p-value and whether the model
    beats it (lower MASE and p < alpha); plus the verdict against the strongest (lowest MASE) baseline."""
    tests = {}
    for name, errors in baseline_errors.items():
        if len(errors) != len(model_errors) or not len(errors):
            continue
        p = diebold_mariano(model_errors - errors, horizon)
        model, base = float(model_errors.mean()), float(errors.mean())
        tests[name] = {
            "model_mase": model,
            "baseline_mase": base,
            "pvalue": p,
            "beats": model < base and p < alpha,
        }
    if not tests:
        return tests, None, "no baseline was scored on the same windows"
    strongest = min(tests, key=lambda n: tests[n]["baseline_mase"])
    t = tests[strongest]
    name = f"the strongest baseline ({strongest})"
    mase = f"MASE {t['model_mase']:.3f} vs {t['baseline_mase']:.3f}"
    if t["beats"]:
        text = f"the model beats {name}: {mase} (Diebold-Mariano p={t['pvalue']:.2g})"
    elif t["model_mase"] < t["baseline_mase"]:
        text = (
            f"the model does NOT reliably beat {name}: {mase}, a difference within noise "
            f"(Diebold-Mariano p={t['pvalue']:.2f})"
        )
    else:
        text = (
            f"the model does NOT beat {name}: {mase}; the {strongest} forecast is at least as good on "
            "these windows"
        )
    return tests, strongest, text
