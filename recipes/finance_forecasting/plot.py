"""The forecast plot written by predict."""

from __future__ import annotations

from pathlib import Path

from dlkit.data import timeseries as ts


def plot_forecasts(
    path: Path, history: list[ts.Series], forecasts: dict, lookback: int, limit: int = 6
) -> None:
    """History (the last few windows) and forecast per series, with the p10-p90 band when trained."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [s for s in history if s.name in forecasts][:limit]
    fig, axes = plt.subplots(len(shown), 1, figsize=(9, 2.6 * len(shown)), squeeze=False)
    for ax, s in zip(axes[:, 0], shown, strict=True):
        dates, rows = forecasts[s.name]
        keep = max(3 * lookback, 4 * len(dates))
        ax.plot(s.dates[-keep:], s.y[-keep:], color="0.3", lw=1, label="history")
        joined = s.dates[-1:].append(dates)  # the forecast line starts at the last observed value
        ax.plot(joined, [s.y[-1], *rows["forecast"]], color="tab:blue", lw=1.5, label="forecast")
        if "p10" in rows:
            ax.fill_between(
                joined,
                [s.y[-1], *rows["p10"]],
                [s.y[-1], *rows["p90"]],
                color="tab:blue",
                alpha=0.2,
                label="p10-p90",
            )
        ax.set_title(s.name, fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
