"""Windows `lookback -> horizon` over filled series: per-series encodings fitted on train, the dataset the
model reads, and the way back from scaled outputs to forecasts in original units."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from dlkit_recipes.finance_forecasting.series import (
    apply_change,
    calendar_features,
    change,
    fit_scaler,
    frequency_offset,
    naive_scale,
    to_target,
)
from dlkit_recipes.finance_forecasting.trend_season import seasonal_trend
from torch.utils.data import Dataset


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
    season: int = 1
    base_window: int = 0  # > 0: the net corrects a seasonal-trend forecast fitted to this much past

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
    calendar features of the past; calendar features of the forecast dates, and with `spec.base_window`
    the seasonal-trend forecast from the past alone, in the target's units, as a last column (the net adds
    its correction to it). Target: the scaled change from the last observed value to each forecast step,
    minus the training drift, which `apply_change` turns back into original units exactly. Windows beyond
    the end of a series (for predict) have NaN truth. With `recent` > 0 each item also carries the last
    `recent` observed levels (NaN-padded in front), so a forecast plot needs nothing but the predict
    outputs.
    """

    def __init__(
        self,
        series: list[Series],
        origins: list[tuple[int, int]],
        encodings: list[dict],
        spec: WindowSpec,
        recent: int = 0,
    ):
        self.series, self.origins, self.encodings, self.spec = series, origins, encodings, spec
        self.recent = recent
        self.inputs = [self._encode_inputs(s, e) for s, e in zip(series, encodings, strict=True)]
        offset = frequency_offset(spec.freq)
        self.calendar = []
        for s in series:
            future = pd.date_range(s.dates[-1], periods=spec.horizon + 1, freq=offset)[1:]
            dates = s.dates.append(future)
            self.calendar.append(calendar_features(dates, list(spec.calendar)).astype(np.float32))
        self.base = self._base_forecasts() if spec.base_window else None

    def _base_forecasts(self) -> np.ndarray:
        """(N, H, 1) the seasonal-trend forecast at every origin, as the net's target is scaled."""
        spec, steps = self.spec, np.arange(1, self.spec.horizon + 1)
        out = np.zeros((len(self.origins), spec.horizon, 1), dtype=np.float32)
        ks = np.array([k for k, _ in self.origins])
        ts_ = np.array([t for _, t in self.origins])
        for k in np.unique(ks):
            rows = np.flatnonzero(ks == k)
            s, scaler = self.series[k], self.encodings[k]["target"]
            forecast = seasonal_trend(s.y, ts_[rows], spec.horizon, spec.season, spec.base_window)
            last = s.y[ts_[rows] - 1][:, None]
            drift = 0.0 if spec.transform == "level" else scaler["mean"]
            with np.errstate(all="ignore"):  # a return of a non-positive forecast: start from the drift
                scaled = (change(last, forecast, spec.transform) - drift * steps) / scaler["std"]
            out[rows, :, 0] = np.nan_to_num(scaled, nan=0.0, posinf=0.0, neginf=0.0)
        return out

    def _encode_inputs(self, s: Series, enc: dict) -> np.ndarray:
        scaler = enc["target"]
        z = np.nan_to_num((to_target(s.y, self.spec.transform) - scaler["mean"]) / scaler["std"])
        columns = [z] + [(s.covariates[:, j] - c["mean"]) / c["std"] for j, c in enumerate(enc["covariates"])]
        return np.stack(columns, 1).astype(np.float32)

    def __len__(self) -> int:
        return len(self.origins)

    def window_id(self, i: int) -> str:
        """`series@last observed date`: unique within a set, and all `to_records` needs besides the state."""
        k, t = self.origins[i]
        return f"{self.series[k].name}@{self.series[k].dates[t - 1].isoformat()}"

    def __getitem__(self, i: int) -> dict:
        k, t = self.origins[i]
        s, spec, scaler = self.series[k], self.spec, self.encodings[k]["target"]
        L, H = spec.lookback, spec.horizon
        past = self.inputs[k][t - L : t].copy()
        if spec.transform == "level":
            past[:, 0] -= past[-1, 0]
        calendar = self.calendar[k]
        last = s.y[t - 1]
        truth = np.full(H, np.nan)
        known = s.y[t : t + H]
        truth[: len(known)] = known
        drift = 0.0 if spec.transform == "level" else scaler["mean"]
        target = (change(last, truth, spec.transform) - drift * np.arange(1, H + 1)) / scaler["std"]
        future = calendar[t : t + H]
        if self.base is not None:
            future = np.concatenate([future, self.base[i]], 1)
        item = {
            "past": torch.from_numpy(np.concatenate([past, calendar[t - L : t]], 1)),
            "future": torch.from_numpy(future),
            "target": torch.from_numpy(np.nan_to_num(target).astype(np.float32)),
            "truth": torch.from_numpy(truth.astype(np.float32)),
            "last": torch.tensor(last, dtype=torch.float32),
            "std": torch.tensor(scaler["std"], dtype=torch.float32),
            "drift": torch.tensor(drift, dtype=torch.float32),
            "mase_scale": torch.tensor(self.encodings[k]["mase_scale"], dtype=torch.float32),
            "id": self.window_id(i),
        }
        if self.recent:
            shown = s.y[max(0, t - self.recent) : t]
            recent = np.full(self.recent, np.nan, dtype=np.float32)
            recent[self.recent - len(shown) :] = shown
            item["recent"] = torch.from_numpy(recent)
        return item


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


def pack_target(batch: dict) -> torch.Tensor:
    """What the metrics compare a forecast with, (B, H, 3): the truth, the last observed value (for
    direction) and the series' MASE scale, so every metric works in original units."""
    truth = batch["truth"]
    return torch.stack(
        [truth, batch["last"][:, None].expand_as(truth), batch["mase_scale"][:, None].expand_as(truth)], -1
    )
