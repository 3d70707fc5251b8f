"""finance-forecasting's report sections: each series' history with the last test forecast and its
interval, the error by horizon step, and the walk-forward backtest folds when one was run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dlkit.report import plots
from dlkit.report.page import Figure, Section, Table

SHOWN = 4  # series drawn
CONTEXT = 6  # horizons of history shown before the forecast


def sections(recipe, data, tested, evaluation: dict, folder: Path) -> list:
    test, state = data.test, data.state
    quantiles = state.get("quantiles") or []
    last: dict[str, tuple] = {}  # series -> (origin date, forecast (H, Q))
    abs_err = []
    for out in tested:
        preds, truth = out["preds"].numpy(), out["target"][..., 0].numpy()
        mid = preds[..., len(quantiles) // 2] if preds.ndim == 3 else preds
        abs_err.append(np.abs(mid - truth))
        for ident, p in zip(out["batch"]["id"], preds, strict=True):
            name, at = ident.rsplit("@", 1)
            if name not in last or at > last[name][0]:
                last[name] = (at, p)
    found = [_forecast_section(test, state, last, quantiles, folder)] if last else []
    if abs_err:
        found.append(_horizon_section(np.concatenate(abs_err), state, folder))
    found.append(_backtest_section(state.get("backtest"), folder))
    return found


def _forecast_section(test, state, last: dict, quantiles: list, folder: Path) -> Section:
    from dlkit_recipes.finance_forecasting.series import frequency_offset

    offset = frequency_offset(state["frequency"])
    series = {s.name: s for s in test.series}
    names = [n for n in last if n in series][:SHOWN]
    fig, axes = plots.figure(11, 2.9 * len(names) + 0.3, len(names), 1, squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        s, (at, p) = series[name], last[name]
        origin = pd.Timestamp(at)
        dates = pd.date_range(origin, periods=len(p) + 1, freq=offset)[1:]
        recent = s.dates >= origin - offset * (CONTEXT * len(p))  # enough past to judge the forecast
        ax.plot(s.dates[recent], s.y[recent], color=plots.PALETTE[0], linewidth=1, label="observed")
        mid = p[:, len(quantiles) // 2] if p.ndim == 2 else p
        ax.plot(
            dates,
            mid,
            color=plots.PALETTE[1],
            linewidth=2,
            label="forecast" + (" (median)" if quantiles else ""),
        )
        if quantiles and p.shape[-1] > 1:
            ax.fill_between(
                dates,
                p[:, 0],
                p[:, -1],
                color=plots.PALETTE[1],
                alpha=0.25,
                label=f"p{quantiles[0] * 100:.0f}-p{quantiles[-1] * 100:.0f} interval",
            )
        ax.axvline(origin, color="grey", linestyle=":", label="forecast origin")
        ax.set(title=f"{name}: the last test forecast", xlabel="date", ylabel="value (original units)")
        ax.legend(loc="upper left", fontsize=8)
    text = [
        f"{len(last)} series in the test split; {len(names)} shown. Horizon {state['horizon']} steps, "
        f"lookback {state['lookback']}."
    ]
    if not quantiles:
        text.append(
            "no intervals: the model was trained for point forecasts "
            "(loss.quantiles=[0.1, 0.5, 0.9] adds them)."
        )
    return Section(
        "History and forecast",
        text=text,
        figures=[
            Figure(
                plots.save(fig, folder, "forecast"),
                "observed series, the forecast from the last test origin and its interval",
            )
        ],
    )


def _horizon_section(err: np.ndarray, state: dict, folder: Path) -> Section:
    steps = np.arange(1, err.shape[1] + 1)
    fig, ax = plots.figure(7, 3.8)
    ax.plot(steps, err.mean(0), marker="o", label="mean absolute error")
    ax.set(
        title="Error by forecast step (test windows)",
        xlabel=f"steps ahead ({state['frequency']})",
        ylabel="absolute error (original units)",
    )
    ax.legend()
    return Section(
        "Error by horizon",
        text=[f"{len(err)} test windows; errors usually grow with the distance ahead."],
        figures=[Figure(plots.save(fig, folder, "horizon"), "")],
    )


def _backtest_section(backtest, folder: Path) -> Section:
    if not backtest or not backtest.get("folds"):
        return Section(
            "Backtest folds",
            text=[
                "no walk-forward backtest in this run; backtest.folds=3 re-trains on 3 expanding "
                "windows after training."
            ],
        )
    folds = backtest["folds"]
    rows = [
        [
            f["fold"],
            str(f.get("train")),
            str(f.get("test")),
            f["metrics"].get("mase"),
            f["strongest_baseline"],
            f["baselines"][f["strongest_baseline"]].get("mase"),
            f["beats_baseline"],
        ]
        for f in folds
    ]
    fig, ax = plots.figure(7, 3.8)
    x = np.arange(len(folds))
    ax.bar(x - 0.2, [f["metrics"]["mase"] for f in folds], 0.4, label="model")
    ax.bar(
        x + 0.2,
        [f["baselines"][f["strongest_baseline"]]["mase"] for f in folds],
        0.4,
        label="strongest baseline",
    )
    ax.set_xticks(x, [f"fold {f['fold']}" for f in folds])
    ax.set(
        title="Walk-forward backtest",
        xlabel="fold (later folds test later periods)",
        ylabel="MASE (lower is better)",
    )
    ax.legend()
    return Section(
        "Backtest folds",
        figures=[Figure(plots.save(fig, folder, "backtest"), "")],
        tables=[
            Table(["fold", "train", "test", "model MASE", "strongest baseline", "its MASE", "beats it"], rows)
        ],
    )
