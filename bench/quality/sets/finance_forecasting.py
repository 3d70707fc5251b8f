"""finance-forecasting quality sets: real series that statsmodels ships (a dlkit dependency, so nothing to
install), written as `date,series,value,split` CSVs with a fixed time split per series: the last 15% of
each series' steps test, the 15% before them validate, the rest train.

- elnino-monthly: statsmodels.datasets.elnino, monthly sea-surface temperature in the Nino 1+2 region,
  1950-2010 (732 months, season 12, horizon 12);
- co2-weekly: statsmodels.datasets.co2, weekly Mauna Loa CO2 1958-2001 (2,284 weeks, trend + season 52,
  horizon 8); the 59 weeks without a reading are left out of the file, so the series has real gaps;
- macro-quarterly: statsmodels.datasets.macrodata, eight US quarterly series 1959-2009 (GDP, consumption,
  investment, government spending, income, CPI, M1, population; 203 quarters each, horizon 8).

The hand-written peer is the model MEASURED.md describes: an MLP over the last lookback steps (3 x horizon,
or two seasons if longer), predicting every horizon step's change from the last value, per series scaled by
the training part's step size; Adam, the epoch with the best validation MASE. Its MASE is dlkit's: per
window, the mean absolute error over the horizon divided by the training part's (seasonal) naive error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from common import QualitySet

VAL, TEST = 0.15, 0.15
MACRO = ["realgdp", "realcons", "realinv", "realgovt", "realdpi", "cpi", "m1", "pop"]


def _split(n: int) -> list[str]:
    test, val = round(n * TEST), round(n * VAL)
    return ["train"] * (n - test - val) + ["val"] * val + ["test"] * test


def _write(dest: Path, frames: list[pd.DataFrame]) -> Path:
    rows = []
    for frame in frames:
        frame = frame.sort_values("date").reset_index(drop=True)
        frame["split"] = _split(len(frame))  # by grid position, before dropping gaps
        rows.append(frame.dropna(subset=["value"]))
    path = dest / "series.csv"
    pd.concat(rows)[["date", "series", "value", "split"]].to_csv(path, index=False)
    return path


def prepare_elnino(dest: Path) -> Path:
    import statsmodels.api as sm

    wide = sm.datasets.elnino.load_pandas().data
    values = wide.iloc[:, 1:].to_numpy().ravel()
    dates = pd.date_range(f"{int(wide['YEAR'].iloc[0])}-01-01", periods=len(values), freq="MS")
    return _write(dest, [pd.DataFrame({"date": dates, "series": "nino12", "value": values})])


def prepare_co2(dest: Path) -> Path:
    import statsmodels.api as sm

    co2 = sm.datasets.co2.load_pandas().data["co2"]
    return _write(dest, [pd.DataFrame({"date": co2.index, "series": "mauna_loa", "value": co2.to_numpy()})])


def prepare_macro(dest: Path) -> Path:
    import statsmodels.api as sm

    macro = sm.datasets.macrodata.load_pandas().data
    dates = pd.PeriodIndex.from_fields(
        year=macro["year"].astype(int), quarter=macro["quarter"].astype(int), freq="Q"
    ).to_timestamp()
    return _write(dest, [pd.DataFrame({"date": dates, "series": c, "value": macro[c]}) for c in MACRO])


def _windows(y: np.ndarray, origins: range, lookback: int, horizon: int, step: float):
    """Inputs: the window minus its last value; targets: each step's change from it; both / step."""
    x = np.stack([y[t - lookback : t] - y[t - 1] for t in origins]) / step
    z = np.stack([y[t : t + horizon] - y[t - 1] for t in origins]) / step
    return x.astype(np.float32), z.astype(np.float32), np.array([y[t - 1] for t in origins])


def handwritten(data: Path, seed: int, freq: str, horizon: int, epochs: int = 150) -> float:
    import torch
    from dlkit_recipes.finance_forecasting.series import detect_season, naive_scale
    from torch import nn

    torch.manual_seed(seed)
    frame = pd.read_csv(data, parse_dates=["date"])
    parts = {"train": [], "val": [], "test": []}
    grids = []
    for _, s in frame.groupby("series"):
        s = s.set_index("date")
        grid = pd.date_range(s.index[0], s.index[-1], freq=freq)
        split = s["split"].reindex(grid).bfill().to_numpy()
        grids.append((s["value"].reindex(grid).ffill().to_numpy(), split))
    season = detect_season([y[split == "train"] for y, split in grids], freq)
    lookback = max(3 * horizon, 2 * season)
    for y, split in grids:
        train_end, val_end = int((split == "train").sum()), int((split != "test").sum())
        step = np.abs(np.diff(y[:train_end])).mean()
        mase = naive_scale(y[:train_end], season)
        spans = {"train": (lookback, train_end), "val": (train_end, val_end), "test": (val_end, len(y))}
        for part, (a, b) in spans.items():
            x, z, last = _windows(y, range(max(a, lookback), b - horizon + 1), lookback, horizon, step)
            parts[part].append((x, z, last, step, mase))
    x = torch.from_numpy(np.concatenate([p[0] for p in parts["train"]]))
    z = torch.from_numpy(np.concatenate([p[1] for p in parts["train"]]))
    net = nn.Sequential(
        nn.Linear(lookback, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, horizon)
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def score(part: str) -> float:  # dlkit's MASE: per window, mean |error| over the horizon / scale
        errors = []
        with torch.no_grad():
            for x, z, _, step, mase in parts[part]:
                pred = net(torch.from_numpy(x)).numpy()
                errors.append(np.abs(pred - z).mean(1) * step / mase)
        return float(np.concatenate(errors).mean())

    best_val, best_test = float("inf"), float("nan")
    for _ in range(epochs):
        net.train()
        for idx in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            nn.functional.l1_loss(net(x[idx]), z[idx]).backward()
            opt.step()
        net.eval()
        val = score("val")
        if val < best_val:
            best_val, best_test = val, score("test")
    return best_test


def _set(name: str, source: str, prepare, freq: str, horizon: int) -> QualitySet:
    return QualitySet(
        name=name,
        recipe="finance-forecasting",
        source=source,
        metric="mase",
        mode="min",
        prepare=prepare,
        handwritten=lambda data, seed: handwritten(data, seed, freq, horizon),
    )


SETS = [
    _set("elnino-monthly", "statsmodels.datasets.elnino (monthly SST 1950-2010)", prepare_elnino, "MS", 12),
    _set("co2-weekly", "statsmodels.datasets.co2 (weekly Mauna Loa CO2 1958-2001)", prepare_co2, "W-SAT", 8),
    _set(
        "macro-quarterly",
        "statsmodels.datasets.macrodata (8 US quarterly series 1959-2009)",
        prepare_macro,
        "QS",
        8,
    ),
]
