"""finance-forecasting's default config (`Recipe.config()` returns it), light: nothing heavy is imported, so
`dlkit info` reads it without torch. Constants it shares with the heavy modules live here.
"""

from __future__ import annotations

from dlkit.config import opt

MODELS = ("mlp", "lstm", "gru", "tcn", "transformer")
TRANSFORMS = ("level", "diff", "return", "log_return")
FILLS = ("ffill", "interpolate")


def recipe_config() -> dict:
    return {
        "data": {
            "date_column": opt(
                None, "column of dates (null = one named date, datetime, timestamp, ds...)", type=str
            ),
            "date_format": opt(None, "strftime format of the dates when ambiguous, e.g. %d/%m/%Y", type=str),
            "target": opt(
                [],
                "value column(s) to forecast, each one a series (empty = the only value "
                "column, or one named adj close/close/value/price/y)",
                type=list,
            ),
            "series_column": opt(
                "auto",
                "column naming each series (auto = series, id, ticker, symbol, "
                "station... if present; none = one series per file)",
            ),
            "covariates": opt(
                [], "numeric columns the model sees in the lookback window (past values only)", type=list
            ),
            "frequency": opt(
                "auto", "pandas frequency of the grid (auto = inferred; D, B, W-SUN, MS, ME, h...)"
            ),
            "split_column": opt(
                "split",
                "column naming each row's split (train; val, valid, validation or dev; test), used when "
                "present; each series' parts must follow one another in time (empty cells: by date)",
            ),
            "fill": opt("ffill", "how gaps are filled (interpolation never crosses a split boundary)", FILLS),
            "transform": opt(
                "level",
                "what the model sees and forecasts: levels, differences, returns or "
                "log-returns (all inverted exactly for metrics)",
                TRANSFORMS,
            ),
            "lookback": opt(
                0, "past steps per window (0 = max(3 x horizon, 2 x season), at most 8 x horizon)"
            ),
            "horizon": opt(
                0,
                "steps to forecast (0 = by frequency: 14 days, 10 business days, 8 weeks, 12 months...)",
            ),
            "season": opt(0, "season length in steps for seasonal naive and MASE (0 = detect, 1 = none)"),
            "calendar": opt(
                True,
                "give the model calendar features (day of week/year, month...) of past and forecast dates",
            ),
            "skip_short": opt(
                False, "skip series too short for lookback + horizon (with a warning) instead of stopping"
            ),
            "batch_size": 64,
        },
        "model": {
            "name": opt("mlp", "forecasting net over the window", MODELS),
            "hidden": opt(64, "hidden width (channels for tcn, model width for transformer)"),
            "layers": opt(
                2,
                "hidden layers (mlp), recurrent layers (lstm/gru), encoder layers (transformer), "
                "at least this many dilated blocks (tcn)",
            ),
            "dropout": 0.1,
            "base": opt(
                "naive",
                "classical forecast the net starts from and corrects: seasonal_trend (level + trend + "
                "season fitted to each window's past), naive (the last value), or auto = seasonal_trend "
                "where it beats the last value on validation",
                ["auto", "seasonal_trend", "naive"],
            ),
        },
        "loss": {
            "name": opt("mae", "training loss of the point forecast", ["mae", "mse"]),
            "quantiles": opt(
                False,
                "train p10/p50/p90 with the pinball loss instead of loss.name; forecasts get an 80% interval",
            ),
        },
        "train": {"lr": 2e-3, "patience": 8},  # epochs: the shared auto budget (train.min_steps)
        "backtest": {
            "folds": opt(
                0,
                "after training, a walk-forward backtest: re-train on K expanding windows, each "
                "tested on the next block (0 = off); results in preprocess/state.json",
            ),
        },
        "predict": {
            "plot": opt(
                True,
                "write forecast.png (recent history + forecast, up to 6 series per file) beside the "
                "predictions",
            ),
        },
    }
