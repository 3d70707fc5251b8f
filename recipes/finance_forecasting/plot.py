"""The forecast plot written by predict: built from the prediction records and outputs alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from dlkit_recipes.finance_forecasting.series import frequency_offset

LIMIT = 6  # series per plot


def panels(records: list[dict], outputs: dict, state: dict) -> list[dict]:
    """One panel per forecast: recent history (from the `recent` output) and the forecast rows.

    Records come `horizon` per forecast, in the order of the outputs' rows (as `to_records` writes them).
    """
    horizon, offset = state["horizon"], frequency_offset(state["frequency"])
    out = []
    for i, recent in enumerate(outputs["recent"].numpy()):
        rows = records[i * horizon : (i + 1) * horizon]
        dates = pd.DatetimeIndex([pd.Timestamp(r["date"]) for r in rows])
        shown = recent[~np.isnan(recent)]
        history = pd.date_range(end=dates[0] - offset, periods=len(shown), freq=offset)
        bands = {k: [r[k] for r in rows] for k in ("forecast", "p10", "p90") if k in rows[0]}
        out.append({"name": rows[0]["series"], "history": (history, shown), "dates": dates, **bands})
    return out


def plot_forecasts(path: Path, shown: list[dict]) -> None:
    """History and forecast per series, with the p10-p90 band when trained with quantiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(shown), 1, figsize=(9, 2.6 * len(shown)), squeeze=False)
    for ax, panel in zip(axes[:, 0], shown, strict=True):
        dates, values = panel["history"]
        ax.plot(dates, values, color="0.3", lw=1, label="history")
        joined = dates[-1:].append(panel["dates"])  # the forecast line starts at the last observed value
        ax.plot(joined, [values[-1], *panel["forecast"]], color="tab:blue", lw=1.5, label="forecast")
        if "p10" in panel:
            ax.fill_between(
                joined,
                [values[-1], *panel["p10"]],
                [values[-1], *panel["p90"]],
                color="tab:blue",
                alpha=0.2,
                label="p10-p90",
            )
        ax.set_title(panel["name"], fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_plots(records: list[dict], outputs: dict, state: dict, out_dir: Path) -> list[Path]:
    """forecast.png (then forecast_2.png, ... for later chunks or more than LIMIT series) in `out_dir`."""
    written = []
    every = panels(records, outputs, state)
    for start in range(0, len(every), LIMIT):
        path, n = out_dir / "forecast.png", 1
        while path.exists():
            n += 1
            path = out_dir / f"forecast_{n}.png"
        plot_forecasts(path, every[start : start + LIMIT])
        written.append(path)
    return written
