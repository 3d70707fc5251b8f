"""The finance-forecasting recipe: config, the hooks the core calls, baselines and the verdict.

Reading is in `reading.py`, splits and windows in `data.py` / `windows.py`, the nets in `models.py`,
metrics in `metrics.py`, baselines and the significance test in `baselines.py`, the walk-forward
backtest in `backtest.py` and the predict plot in `plot.py`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from dlkit_recipes.finance_forecasting import data as fd
from dlkit_recipes.finance_forecasting import series as ts
from dlkit_recipes.finance_forecasting.backtest import backtest_bounds, walk_forward
from dlkit_recipes.finance_forecasting.baselines import baseline_tables, predictor, significance
from dlkit_recipes.finance_forecasting.config import recipe_config
from dlkit_recipes.finance_forecasting.metrics import forecast_metrics
from dlkit_recipes.finance_forecasting.models import Forecaster, PinballLoss, PointLoss
from dlkit_recipes.finance_forecasting.plot import write_plots
from dlkit_recipes.finance_forecasting.reading import is_table, read_raw, table_sources
from dlkit_recipes.finance_forecasting.windows import WindowSet, fit_encoding, pack_target, to_units
from torch import nn

from dlkit import console
from dlkit.data.inputs import expand_inputs
from dlkit.errors import UserError
from dlkit.recipe import Finding, Recipe, RecipeData

SIGNIFICANCE = 0.05  # the Diebold-Mariano p-value below which the model "beats" a baseline


class FinanceForecasting(Recipe):
    name = "finance-forecasting"
    task = "time-series forecasting"
    description = (
        "Forecast dated values (prices, demand, climate) H steps ahead; honest baselines, backtests."
    )
    default_model = "mlp"
    sample_data = "sample_data/finance_forecasting/prices.csv"
    sample_inputs = ("sample_data/finance_forecasting/prices.csv",)  # forecast past the end of every series
    monitor = "mase"
    monitor_mode = "min"

    @classmethod
    def config(cls) -> dict:
        return recipe_config()  # config.py: light, so `dlkit info` reads it without torch

    def setup(self, state: dict, fresh: bool) -> None:
        from dlkit.modeling import make_loss

        quantiles = state["quantiles"]
        self.loss = (
            PinballLoss(quantiles) if quantiles else PointLoss(make_loss(self.cfg["loss"], ("mae", "mse")))
        )

    # --- data -----------------------------------------------------------------------------------------
    def load_data(self, path: Path, state: dict | None = None, evaluate_all: bool = False) -> RecipeData:
        d = self.cfg["data"]
        raw = read_raw(table_sources(path), d, state, splits=not evaluate_all)
        notes = list(raw.notes)
        if state is None:
            state, series, bounds = fd.plan(
                raw, d, self.cfg["loss"]["quantiles"], self.cfg["model"]["base"], notes
            )
            console.info(fd.summary(state))
            if self.cfg["backtest"]["folds"] > 0:  # refuse now, not after training
                spec = fd.spec(state)
                backtest_bounds(bounds, spec.history, spec.horizon, self.cfg["backtest"]["folds"], 0)
        elif evaluate_all:
            test = fd.every_window(raw, state, d, notes)
            return RecipeData(None, None, test, state, notes=notes, extras={"raw": raw})
        else:
            unknown = sorted(set(raw.grids) - set(state["series"]))
            if unknown:
                raise UserError(
                    f"series {', '.join(unknown[:5])} in '{path}' were not in the training data",
                    "evaluate new series with `dlkit evaluate RUN --data FILE`",
                )
            bounds = fd.all_bounds(raw, d, state["horizon"], notes)
            fd.drop_short(raw, bounds, d, state["lookback"], state["horizon"], notes)
            series, fill_notes = fd.fill_series(raw, bounds, d)
            notes += fill_notes
        train, val, test = fd.split_sets(series, state, bounds)
        if len(train) < 20:
            notes.append(f"only {len(train)} training windows: expect a weak model; give more history")
        return RecipeData(train, val, test, state, notes=notes, extras={"raw": raw})

    def check(self, path: Path) -> list[Finding]:
        try:
            data = self.load_data(path)
        except UserError as exc:
            return [Finding("data readable", "fatal", exc.message, exc.hint or "")]
        state = data.state
        first = next(iter(state["series"].values()))
        found = [
            Finding(
                "data readable",
                "ok",
                f"{len(data.train)} train / {len(data.val)} val / {len(data.test)} test windows",
            )
        ]
        found += [Finding("data notes", "warning", note) for note in data.notes]
        found.append(Finding("series", "info", fd.summary(state)))
        found.append(
            Finding(
                "time split",
                "ok",
                f"train {first['train'][0]}..{first['train'][1]}, validation "
                f"{first['val'][0]}..{first['val'][1]}, test {first['test'][0]}..{first['test'][1]} "
                "(first series); scaling fitted on train only",
            )
        )
        return found

    # --- model and step -----------------------------------------------------------------------------
    def build_model(self, state: dict) -> nn.Module:
        m = self.cfg["model"]
        cal = 2 * len(state["calendar"])
        features = 1 + len(state["columns"]["covariates"]) + cal
        based = fd.spec(state).base_window > 0
        return Forecaster(
            m["name"],
            features,
            cal + based,
            state["lookback"],
            state["horizon"],
            len(state["quantiles"] or [0]),
            m["hidden"],
            m["layers"],
            m["activation"],
            m["dropout"],
            based,
        )

    def _forecast(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw scaled outputs, forecasts in original units sorted along the quantile axis)."""
        out = model(batch["past"], batch["future"]).float()
        return out, to_units(out.sort(-1).values, batch, self.cfg["data"]["transform"])

    def step(self, model: nn.Module, batch: dict, stage: str) -> dict:
        out, preds = self._forecast(model, batch)
        return {"loss": self.loss(out, batch["target"]), "preds": preds, "target": pack_target(batch)}

    def metrics(self, state: dict) -> dict:
        return forecast_metrics(state)

    # --- baselines and the verdict ------------------------------------------------------------------
    def baselines(self, data: RecipeData) -> dict:
        """Naive, seasonal naive (with a season), drift, the seasonal-trend fit and Holt-Winters, on the test
        windows."""
        quantiles = len(data.state["quantiles"] or [0])
        return {
            name: predictor(table, quantiles)
            for name, table in baseline_tables(data.test, data.state).items()
        }

    def eval_details(self, data: RecipeData, metrics: dict, baselines: dict[str, dict]) -> dict:
        """Diebold-Mariano tests of the model against each baseline on the same windows, and the verdict."""
        errors = {name: m["mase"].errors() for name, m in baselines.items()}
        tests, strongest, verdict = significance(
            metrics["mase"].errors(), errors, data.state["horizon"], SIGNIFICANCE
        )
        console.info(verdict)  # the core warns when the model does not win; this line says how sure it is
        return {
            "windows": len(data.test),
            "season": data.state["season"],
            "diebold_mariano": tests,
            "verdict": verdict,
        }

    def confirm_win(self, details: dict, strongest: str) -> bool:
        """Better is not enough: the model must beat the strongest baseline significantly."""
        return bool(details.get("diebold_mariano", {}).get(strongest, {}).get("beats", False))

    # --- walk-forward backtest ----------------------------------------------------------------------
    def calibrate(self, ids: list, outputs: dict, data: RecipeData) -> dict:
        """Runs the walk-forward backtest when `backtest.folds` > 0 (the model itself is left as trained)."""
        folds = self.cfg["backtest"]["folds"]
        if folds <= 0:
            return {}
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            console.warn("backtest.folds is skipped in distributed training; run it on one process")
            return {}
        raw = data.extras["raw"]
        bounds = fd.all_bounds(raw, self.cfg["data"], data.state["horizon"], [])
        return {"backtest": walk_forward(self, raw, bounds, data.state, folds)}

    def report_sections(self, data: RecipeData, tested, evaluation: dict, folder: Path) -> list:
        from .report import sections

        return sections(self, data, tested, evaluation, folder)

    # --- predict ------------------------------------------------------------------------------------
    def read_inputs(self, inputs: list[str], state: dict) -> WindowSet:
        d = self.cfg["data"]
        paths = expand_inputs(inputs, is_table, "table files (.csv, .parquet, ...)", recursive=False)
        raw = read_raw([(p, None) for p in paths], d, state, splits=False)
        spec = fd.spec(state)
        series, notes = fd.fill_series(raw, {n: [] for n in raw.grids}, d)
        encodings = []
        for s in series:
            if len(s.y) < spec.history:
                raise UserError(
                    f"series '{s.name}' has {len(s.y)} time steps of history, but the model reads the "
                    f"last {spec.history} (lookback {spec.lookback} + 1)",
                    "give a longer history",
                )
            known = state["series"].get(s.name)
            if known is None:
                notes.append(f"series '{s.name}' was not in the training data: scaled on its own history")
            encodings.append(known or fit_encoding(s, len(s.y), spec.transform, state["season"]))
        for note in notes + raw.notes:
            console.warn(note)
        recent = max(3 * spec.lookback, 4 * spec.horizon)  # history shown in the forecast plot
        return WindowSet(series, [(k, len(s.y)) for k, s in enumerate(series)], encodings, spec, recent)

    def export_adapter(self, state: dict):
        from .export import ForecastExport

        return ForecastExport(self, state)

    def predict_step(self, model: nn.Module, batch: dict) -> dict:
        preds = self._forecast(model, batch)[1]
        if preds.shape[-1] == 1:
            out = {"forecast": preds[..., 0]}
        else:
            out = {"forecast": preds[..., 1], "p10": preds[..., 0], "p90": preds[..., 2]}
        if "recent" in batch:  # predict inputs carry their recent history for the plot
            out["recent"] = batch["recent"]
        return out

    def to_records(self, ids: list, outputs: dict, state: dict) -> list[dict]:
        """One record per series and forecast step: series, date, step, forecast (and p10/p90)."""
        offset = ts.frequency_offset(state["frequency"])
        daily = ts.step_seconds(state["frequency"]) >= 86_400
        keys = [k for k in ("forecast", "p10", "p90") if k in outputs]
        records = []
        for i, ident in enumerate(ids):
            name, last = ident.rsplit("@", 1)
            dates = pd.date_range(pd.Timestamp(last), periods=state["horizon"] + 1, freq=offset)[1:]
            rows = {k: outputs[k][i].tolist() for k in keys}
            for h, date in enumerate(dates):
                record = {
                    "series": name,
                    "date": str(date.date()) if daily else date.isoformat(),
                    "step": h + 1,
                }
                record.update({k: round(v[h], 6) for k, v in rows.items()})
                records.append(record)
        return records

    def write_outputs(self, records: list[dict], outputs: dict, state: dict, out_dir: Path) -> None:
        """forecast.png (recent history + forecast per series) when `predict.plot` is on."""
        if self.cfg["predict"]["plot"] and records:
            for path in write_plots(records, outputs, state, out_dir):
                console.info(f"wrote forecast plot to {path}")
