"""finance-forecasting: dated values (prices, demand, temperatures) -> forecasts beside honest baselines.

A table with a date column, one or more value columns, optional covariates and an optional series id is
put on a regular grid per series (frequency inferred or configured; duplicates, off-grid dates and gaps
reported, gaps filled and counted), split by time (train, validation, then test at the end of each
series), scaled per series on the training part only, and cut into windows `lookback -> horizon`.
A small net (MLP, LSTM, GRU, TCN or transformer encoder) predicts the change from the last observed
value (untrained, it sits near the naive or drift forecast). Metrics are in original units beside
naive, seasonal naive and drift forecasts on the same test windows, with a significance test saying
plainly whether the model beats naive. `backtest.folds` adds a walk-forward backtest that re-trains per fold.
"""

from dlkit_recipes.finance_forecasting.recipe import FinanceForecasting

__all__ = ["FinanceForecasting"]
