"""finance-forecasting: dated values (prices, demand, temperatures) -> forecasts beside honest baselines.

A table with a date column, one or more value columns, optional covariates and an optional series id (or a
folder of them, train/val/test split files or folders, or a split column) is put on a regular grid per
series (frequency inferred or configured; duplicates, off-grid dates and gaps reported, gaps filled and
counted), split by time (train, validation, then test at the end of each series, unless the data names
its splits), scaled per series on the training part only, and cut into windows `lookback -> horizon`.
A small net (MLP, LSTM, GRU, TCN or transformer encoder) predicts the change from the last observed
value (untrained, it sits near the naive or drift forecast). Metrics are in original units; the core
scores naive, seasonal naive, drift and a seasonal-trend least-squares fit on the same test windows, and
a significance test says plainly whether the model beats the strongest of them. `backtest.folds` adds a
walk-forward backtest that re-trains per fold through the core's own train-and-evaluate job.
"""

from dlkit.registry import lazy_exports

RECIPE_META = {  # what `dlkit recipes` lists, without importing torch (dlkit/registry.py)
    "name": "finance-forecasting",
    "task": "time-series forecasting",
    "description": (
        "Forecast dated values (prices, demand, climate) H steps ahead; honest baselines, backtests."
    ),
    "default_model": "mlp",
    "sample_data": "sample_data/finance_forecasting/prices.csv",
    "monitor": "mase",  # `dlkit info`: monitored under the default config
}
__getattr__ = lazy_exports(__name__, FinanceForecasting="recipe", recipe_config="config")

__all__ = ["recipe_config", "FinanceForecasting"]
