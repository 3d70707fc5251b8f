"""Export of the forecaster: the scaled past window and the forecast dates' features -> scaled forecasts.

Windowing and scaling live in the copied state (lookback, horizon, quantiles, calendar, frequency,
per-series scaling); the graph's output is in scaled units, (batch, horizon, quantiles), as the model's.
"""

from __future__ import annotations

from dlkit.export import ExportAdapter


class ForecastExport(ExportAdapter):
    inputs = ("past", "future")
    outputs = ("forecast_scaled",)

    def agreement(self, ref: tuple, got: tuple) -> tuple[int, int]:
        """Windows whose whole forecast is the same to 1% of that window's largest value (or 0.01)."""
        r, g = ref[0].flatten(1), got[0].flatten(1)
        scale = r.abs().amax(1).clamp_min(1.0)
        same = (r - g).abs().amax(1) <= 0.01 * scale
        return int(same.sum()), same.numel()

    def describe(self) -> dict:
        s = self.state
        return {
            "input": "past: the last `lookback` (+1) scaled steps with covariates and calendar features; "
            "future: the calendar features of the forecast dates (see preprocess/state.json)",
            "lookback": s["lookback"],
            "horizon": s["horizon"],
            "quantiles": s["quantiles"],
            "frequency": s["frequency"],
            "calendar": s["calendar"],
            "transform": self.recipe.cfg["data"]["transform"],
            "output": "forecasts in scaled units (batch, horizon, quantiles): undo the series' scaling",
        }
