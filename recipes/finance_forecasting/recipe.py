"""The finance-forecasting recipe: reading and gridding dated tables, windows, baselines and the verdict."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from dlkit_recipes.finance_forecasting.backtest import backtest_bounds, walk_forward
from dlkit_recipes.finance_forecasting.metrics import MASE, forecast_metrics
from dlkit_recipes.finance_forecasting.models import Forecaster
from dlkit_recipes.finance_forecasting.plot import plot_forecasts
from torch import nn

from dlkit import console
from dlkit.config import opt
from dlkit.data import timeseries as ts
from dlkit.data.tables import FORMATS, read_table, require_columns
from dlkit.errors import UserError
from dlkit.recipe import Finding, Recipe, RecipeData

QUANTILES = (0.1, 0.5, 0.9)
MODELS = ("mlp", "lstm", "gru", "tcn", "transformer")
SERIES_NAMES = ("series", "series_id", "id", "ticker", "symbol", "station", "item")
TARGET_NAMES = ("adj close", "adj_close", "close", "value", "price", "y", "target")
SIGNIFICANCE = 0.05  # the Diebold-Mariano p-value below which the model "beats naive"
MAX_GAPS = 0.5  # a series with more of its grid empty than this is refused (wrong frequency or a stray date)


# --- reading ---------------------------------------------------------------------------------
def _table_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(
        p
        for p in path.iterdir()
        if p.is_file() and p.suffix.lower() in FORMATS and not p.name.startswith(".")
    )
    if not files:
        raise UserError(
            f"no table files (.csv, .parquet, ...) in '{path}'",
            "give a CSV/Parquet file with a date column, or a folder of them (one per series)",
        )
    return files


def _pick_targets(df: pd.DataFrame, exclude: set, path: Path) -> tuple[list[str], str | None]:
    """The value column when data.target is unset: the only one, one named like a price, the only numeric."""
    rest = [c for c in df.columns if c not in exclude]
    if not rest:
        raise UserError(
            f"'{path}' has no value column besides the date (columns: {', '.join(map(str, df.columns))})",
            "add a column of values to forecast",
        )
    if len(rest) == 1:
        return rest, None
    by_name = {str(c).strip().lower(): c for c in rest}
    numeric = [c for c in rest if pd.api.types.is_numeric_dtype(df[c])]
    chosen = next((by_name[n] for n in TARGET_NAMES if n in by_name), None)
    chosen = chosen or (numeric[0] if len(numeric) == 1 else None)
    if chosen is None:
        raise UserError(
            f"'{path}' has several value columns ({', '.join(map(str, rest[:12]))}) and data.target "
            "is not set",
            "choose one with data.target=COLUMN (or several: data.target=a,b)",
        )
    others = ", ".join(str(c) for c in rest if c != chosen)
    return [chosen], f"data.target is not set: forecasting '{chosen}' (other columns: {others})"


def _find_series_column(df: pd.DataFrame, date: str) -> str | None:
    """A column named like a series id; else, if dates repeat, the non-float column that makes them unique."""
    by_name = {str(c).strip().lower(): c for c in df.columns if c != date}
    named = next((by_name[n] for n in SERIES_NAMES if n in by_name), None)
    if named is not None or not df[date].duplicated().any():
        return named
    for column in df.columns:
        if column == date or pd.api.types.is_float_dtype(df[column]) or df[column].nunique() > len(df) / 2:
            continue
        if not df.duplicated([column, date]).any():
            return column
    return None


@dataclass
class Raw:
    """Series read from the data, each on its regular grid with gaps still empty."""

    grids: dict[str, ts.Grid]
    columns: dict
    freq: str
    notes: list[str]


class FinanceForecasting(Recipe):
    name = "finance-forecasting"
    task = "time-series forecasting"
    description = (
        "Forecast dated values (prices, demand, climate) H steps ahead; honest baselines, backtests."
    )
    default_model = "mlp"
    sample_data = "sample_data/finance_forecasting/prices.csv"
    monitor = "mase"
    monitor_mode = "min"

    @classmethod
    def config(cls) -> dict:
        return {
            "data": {
                "date_column": opt(
                    None, "column of dates (null = one named date, datetime, timestamp, ds...)", type=str
                ),
                "date_format": opt(
                    None, "strftime format of the dates when ambiguous, e.g. %d/%m/%Y", type=str
                ),
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
                "fill": opt(
                    "ffill", "how gaps are filled (interpolation never crosses a split boundary)", ts.FILLS
                ),
                "transform": opt(
                    "level",
                    "what the model sees and forecasts: levels, differences, returns or "
                    "log-returns (all inverted exactly for metrics)",
                    ts.TRANSFORMS,
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
                    "give the model calendar features (day of week/year, month...) of past "
                    "and forecast dates",
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
            },
            "loss": {
                "name": "mae",
                "quantiles": opt(
                    False,
                    "train p10/p50/p90 with the pinball loss instead of loss.name; "
                    "forecasts get an 80% interval",
                ),
            },
            "train": {"epochs": 40, "lr": 2e-3, "patience": 8},
            "backtest": {
                "folds": opt(
                    0,
                    "after training, a walk-forward backtest: re-train on K expanding windows, each "
                    "tested on the next block (0 = off); results in preprocess/state.json",
                ),
            },
            "predict": {
                "plot": opt(
                    "forecast.png",
                    "PNG of history + forecast written by predict (null = none)",
                    type=str,
                    nullable=True,
                ),
            },
        }

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        from dlkit.modeling import make_loss

        self.quantiles = QUANTILES if cfg["loss"]["quantiles"] else None
        self.point_loss = None if self.quantiles else make_loss(cfg["loss"], ("mae", "mse"))
        self.last_mase: MASE | None = None
        self.history: list[ts.Series] = []
        self.raw: Raw | None = None

    # --- data -----------------------------------------------------------------------------
    def _columns(self, df: pd.DataFrame, path: Path, several_files: bool) -> tuple[dict, str | None]:
        """Date, series, value and covariate columns; also says which value column was picked when unset."""
        d = self.cfg["data"]
        date = ts.find_date_column(df, d["date_column"], path)
        series = None
        if d["series_column"] == "auto":
            series = _find_series_column(df, date)
        elif d["series_column"] != "none":
            require_columns(df, [d["series_column"]], path, "series column")
            series = d["series_column"]
        require_columns(df, d["covariates"], path, "covariate column")
        chosen = None
        if d["target"]:
            require_columns(df, d["target"], path, "value column")
            targets = list(d["target"])
        else:
            targets, chosen = _pick_targets(df, {date, series, *d["covariates"]}, path)
        source = "column" if series else ("file" if several_files else "none")
        return {
            "date": date,
            "series": series,
            "series_from": source,
            "targets": targets,
            "covariates": list(d["covariates"]),
        }, chosen

    def _read(self, files: list[Path], state: dict | None) -> Raw:
        """Every file's rows, grouped into series and put on the grid of the data's frequency."""
        notes: list[str] = []
        columns = state["columns"] if state else None
        rows: dict[str, list[tuple[pd.Series, np.ndarray]]] = {}
        for file in files:
            df = read_table(file)
            if columns is None:
                columns, chosen = self._columns(df, file, len(files) > 1)
                if chosen:
                    console.info(chosen)
            needed = [columns["date"], *columns["targets"], *columns["covariates"]]
            require_columns(df, needed + ([columns["series"]] if columns["series"] else []), file)
            dates = ts.parse_dates(
                df[columns["date"]], file, columns["date"], self.cfg["data"]["date_format"]
            )
            values = np.stack([ts.to_numeric(df[c], file, c) for c in needed[1:]], 1)
            ids = (
                df[columns["series"]].astype(str)
                if columns["series"]
                else pd.Series(file.stem if columns["series_from"] == "file" else "", index=df.index)
            )
            for key, take in ids.groupby(ids, sort=True).indices.items():
                rows.setdefault(str(key), []).append((dates.iloc[take], values[take]))
        per_series = {}
        for key, parts in rows.items():
            per_series[key] = (
                pd.concat([p[0] for p in parts], ignore_index=True),
                np.concatenate([p[1] for p in parts]),
            )
        self._single_points(per_series, columns, notes)
        freq = (state or {}).get("frequency") or self._frequency(
            [pd.DatetimeIndex(d.sort_values().unique()) for d, _ in per_series.values()]
        )
        grids: dict[str, ts.Grid] = {}
        k = len(columns["targets"])
        for key, (dates, values) in per_series.items():
            grid = ts.regularize(dates, values, freq)
            for j, target in enumerate(columns["targets"]):
                name = target if not key else (key if k == 1 else f"{key}/{target}")
                grids[name] = ts.Grid(
                    grid.dates,
                    grid.values[:, [j, *range(k, values.shape[1])]],
                    grid.duplicates,
                    grid.off_grid,
                )
        notes += self._grid_notes(grids, freq)
        return Raw(grids, columns, freq, notes)

    def _single_points(self, per_series: dict, columns: dict, notes: list[str]) -> None:
        """A series with one date has no history: refuse it (or drop it with data.skip_short)."""
        single = [k for k, (dates, _) in per_series.items() if dates.nunique() < 2]
        if not single:
            return
        if self.cfg["data"]["skip_short"] and len(single) < len(per_series):
            for key in single:
                del per_series[key]
            notes.append(f"skipped {len(single)} series with a single point: {', '.join(single[:5])}")
            return
        key = single[0]
        raise UserError(
            f"series '{key or columns['targets'][0]}' has a single point "
            f"({per_series[key][0].iloc[0].date()}); forecasting needs a history",
            "drop that series, or set data.skip_short=true"
            if len(per_series) > 1
            else "give at least lookback + horizon dated rows",
        )

    def _frequency(self, date_sets: list[pd.DatetimeIndex]) -> str:
        configured = self.cfg["data"]["frequency"]
        if configured != "auto":
            return ts.frequency_offset(configured).freqstr
        return ts.infer_frequency(date_sets)

    @staticmethod
    def _grid_notes(grids: dict[str, ts.Grid], freq: str) -> list[str]:
        notes = []
        dups = [(n, d) for n, g in grids.items() for d in g.duplicates]
        if dups:
            shown = ", ".join(f"{n} {d}" for n, d in dups[:3])
            notes.append(f"{len(dups)} duplicated date(s) (e.g. {shown}): kept the last row of each")
        off = [(n, d) for n, g in grids.items() for d in g.off_grid]
        if off:
            shown = ", ".join(f"{n} {d}" for n, d in off[:3])
            notes.append(
                f"{len(off)} timestamp(s) off the {freq} grid (e.g. {shown}) were moved to the period "
                "they fall in; set data.frequency if the frequency is wrong"
            )
        return notes

    def fill_series(self, raw: Raw, bounds: dict[str, list[int]]) -> tuple[list[ts.Series], list[str]]:
        """Fill gaps per series without crossing its split boundaries; report how many were filled."""
        method = self.cfg["data"]["fill"]
        series, filled, total = [], {}, 0
        for name, grid in raw.grids.items():
            missing = float(np.isnan(grid.values[:, 0]).mean())
            if missing > MAX_GAPS:
                raise UserError(
                    f"series '{name}' has no value on {missing:.0%} of its {raw.freq} grid "
                    f"({grid.dates[0].date()}..{grid.dates[-1].date()})",
                    "look for a stray date far from the others, or set data.frequency to the data's real one",
                )
            values, count = ts.fill_gaps(grid.values, method, bounds[name])
            total += grid.values.size
            if np.isnan(values).any():
                column = ([raw.columns["targets"][0]] + raw.columns["covariates"])[
                    int(np.isnan(values).any(0).argmax())
                ]
                raise UserError(
                    f"series '{name}' has no values at all in column '{column}'",
                    "remove the series or the column",
                )
            if count:
                filled[name] = count
            ts.check_transform(values[:, 0], self.cfg["data"]["transform"], name)
            series.append(ts.Series(name, grid.dates, values[:, 0], values[:, 1:]))
        notes = []
        if filled:
            shown = ", ".join(f"{n} {c}" for n, c in list(filled.items())[:5])
            notes.append(
                f"filled {sum(filled.values())} missing value(s) ({100 * sum(filled.values()) / total:.1f}% "
                f"of cells; gaps in the {raw.freq} grid or empty cells) by {method}: {shown}"
                + (" ..." if len(filled) > 5 else "")
            )
        return series, notes

    def _bounds(self, raw: Raw, horizon: int) -> dict[str, list[int]]:
        d = self.cfg["data"]
        return {
            n: [*ts.time_split(len(g.dates), d["val_fraction"], d["test_fraction"], horizon), len(g.dates)]
            for n, g in raw.grids.items()
        }

    def _needed(self, lookback: int, horizon: int) -> int:
        """The fewest points a series needs: one training window, then validation and test of >= horizon."""
        d = self.cfg["data"]
        n = lookback + 1 + 3 * horizon
        while ts.time_split(n, d["val_fraction"], d["test_fraction"], horizon)[0] < lookback + 1 + horizon:
            n += 1
        return n

    def _too_short(self, raw: Raw, lookback: int, horizon: int, notes: list[str]) -> None:
        """Refuse (or with data.skip_short drop) series shorter than one window plus validation and test."""
        needed = self._needed(lookback, horizon)
        short = {n: len(g.dates) for n, g in raw.grids.items() if len(g.dates) < needed}
        if not short:
            return
        name, n = next(iter(short.items()))
        message = (
            f"series '{name}' has {n} time steps after filling gaps, but lookback {lookback} + "
            f"horizon {horizon} need at least {needed} ({lookback + 1 + horizon} for one training window, "
            f"then validation and test parts of at least {horizon} steps each)"
        )
        if not self.cfg["data"]["skip_short"] or len(short) == len(raw.grids):
            hint = "give more history, lower data.lookback or data.horizon"
            raise UserError(message, hint + (", or set data.skip_short=true" if len(raw.grids) > 1 else ""))
        for name in short:
            del raw.grids[name]
        notes.append(
            f"skipped {len(short)} series too short for lookback {lookback} + horizon {horizon} "
            f"(need {needed} steps): {', '.join(list(short)[:5])}"
        )

    def _lookback(self, raw: Raw, horizon: int, season: int) -> int:
        """Configured, or max(3H, 2 x season) capped at 8H, shortened to fit the shortest series."""
        configured = self.cfg["data"]["lookback"]
        if configured > 0:
            return configured
        lookback = min(max(3 * horizon, 2 * season), 8 * horizon)
        shortest = min(len(g.dates) for g in raw.grids.values())
        while lookback > horizon and self._needed(lookback, horizon) > shortest:
            lookback -= 1
        return lookback

    def _plan(self, raw: Raw, notes: list[str]) -> tuple[dict, list[ts.Series], dict[str, list[int]]]:
        """Fit everything on the training parts: horizon, season, lookback, per-series scaling."""
        d = self.cfg["data"]
        horizon = d["horizon"] or ts.default_horizon(raw.freq)
        self._too_short(raw, d["lookback"] or horizon, horizon, notes)  # the shortest lookback allowed
        bounds = self._bounds(raw, horizon)
        series, fill_notes = self.fill_series(raw, bounds)
        notes += fill_notes
        season = d["season"] or ts.detect_season([s.y[: bounds[s.name][0]] for s in series], raw.freq)
        lookback = self._lookback(raw, horizon, season)
        state = {
            "columns": raw.columns,
            "frequency": raw.freq,
            "horizon": horizon,
            "lookback": lookback,
            "season": season,
            "transform": d["transform"],
            "calendar": ts.calendar_for(raw.freq) if d["calendar"] else [],
            "quantiles": list(self.quantiles) if self.quantiles else None,
            "series": {
                s.name: self.describe_series(s, bounds[s.name], season, d["transform"]) for s in series
            },
        }
        return state, series, bounds

    @staticmethod
    def describe_series(s: ts.Series, bounds: list[int], season: int, transform: str) -> dict:
        """The series' fitted scaling and MASE scale, with the dates of its train/validation/test parts."""
        edges = [0, *bounds]
        parts = {
            part: [str(s.dates[a].date()), str(s.dates[b - 1].date())]
            for part, a, b in zip(("train", "val", "test"), edges[:-1], edges[1:], strict=True)
        }
        return {**ts.fit_encoding(s, bounds[0], transform, season), "points": len(s.y), **parts}

    @staticmethod
    def spec(state: dict) -> ts.WindowSpec:
        return ts.WindowSpec(
            state["lookback"],
            state["horizon"],
            state["transform"],
            tuple(state["calendar"]),
            state["frequency"],
        )

    def _windows(
        self,
        series: list[ts.Series],
        encodings: list[dict],
        spec: ts.WindowSpec,
        spans: list[tuple[int, int]],
    ) -> ts.WindowSet:
        origins = [(k, t) for k, (a, b) in enumerate(spans) for t in ts.origins_between(a, b, spec)]
        return ts.WindowSet(series, origins, encodings, spec)

    def split_sets(
        self, series: list[ts.Series], state: dict, bounds: dict[str, list[int]]
    ) -> list[ts.WindowSet]:
        """Train, validation and test windows: each window's forecast steps lie inside its own part."""
        spec = self.spec(state)
        encodings = [state["series"][s.name] for s in series]
        parts = []
        for part in range(3):
            spans = []
            for s in series:
                edges = [0, *bounds[s.name]]
                spans.append((edges[part], edges[part + 1]))
            parts.append(self._windows(series, encodings, spec, spans))
        return parts

    def load_data(self, path: Path, state: dict | None = None, evaluate_all: bool = False) -> RecipeData:
        raw = self._read(_table_files(path), state)
        self.raw = raw
        notes = list(raw.notes)
        if state is None:
            state, series, bounds = self._plan(raw, notes)
            console.info(self._summary(state))
            if self.cfg["backtest"]["folds"] > 0:  # refuse now, not after training
                backtest_bounds(raw, self.spec(state), self.cfg["data"], self.cfg["backtest"]["folds"], 0)
        elif evaluate_all:
            return self._evaluate_all(raw, state, notes)
        else:
            unknown = sorted(set(raw.grids) - set(state["series"]))
            if unknown:
                raise UserError(
                    f"series {', '.join(unknown[:5])} in '{path}' were not in the training data",
                    "evaluate new series with `dlkit evaluate RUN --data FILE`",
                )
            self._too_short(raw, state["lookback"], state["horizon"], notes)
            bounds = self._bounds(raw, state["horizon"])
            series, fill_notes = self.fill_series(raw, bounds)
            notes += fill_notes
        train, val, test = self.split_sets(series, state, bounds)
        if len(train) < 20:
            notes.append(f"only {len(train)} training windows: expect a weak model; give more history")
        return RecipeData(train, val, test, state, notes=notes)

    def _evaluate_all(self, raw: Raw, state: dict, notes: list[str]) -> RecipeData:
        """Every window of new labelled data; series the run never saw are scaled on their first window."""
        spec = self.spec(state)
        series, fill_notes = self.fill_series(raw, {n: [] for n in raw.grids})
        notes += fill_notes
        series = [s for s in series if len(s.y) >= spec.history + spec.horizon]
        if not series:
            raise UserError(
                f"no series is long enough for lookback {spec.lookback} + horizon {spec.horizon}",
                f"each series needs at least {spec.history + spec.horizon} time steps",
            )
        encodings, overlap = [], []
        for s in series:
            known = state["series"].get(s.name)
            encodings.append(known or ts.fit_encoding(s, spec.history, spec.transform, state["season"]))
            if known is None:
                notes.append(
                    f"series '{s.name}' was not in the training data: scaled on its first "
                    f"{spec.history} steps"
                )
            elif s.dates[spec.history] <= pd.Timestamp(known["val"][1]):
                overlap.append(s.name)
        if overlap:
            notes.append(
                f"series {', '.join(overlap[:5])}: some evaluated windows fall in the period the model "
                "was trained or validated on, so those figures are optimistic"
            )
        test = self._windows(series, encodings, spec, [(0, len(s.y)) for s in series])
        return RecipeData(None, None, test, state, notes=notes)

    @staticmethod
    def _summary(state: dict) -> str:
        names = list(state["series"])
        return (
            f"{len(names)} series ({', '.join(names[:4])}{' ...' if len(names) > 4 else ''}), frequency "
            f"{state['frequency']}, season {state['season'] if state['season'] > 1 else 'none'}, "
            f"lookback {state['lookback']} -> horizon {state['horizon']}, target as {state['transform']}"
        )

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
        found.append(Finding("series", "info", self._summary(state)))
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

    # --- model and step --------------------------------------------------------------------
    def build_model(self, state: dict) -> nn.Module:
        m = self.cfg["model"]
        cal = 2 * len(state["calendar"])
        features = 1 + len(state["columns"]["covariates"]) + cal
        return Forecaster(
            m["name"],
            features,
            cal,
            state["lookback"],
            state["horizon"],
            len(state["quantiles"] or [0]),
            m["hidden"],
            m["layers"],
            self.cfg["model"]["activation"],
            m["dropout"],
        )

    def _loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.quantiles is None:
            return self.point_loss(out[..., 0], target)
        q = torch.tensor(self.quantiles, device=out.device, dtype=out.dtype)
        error = target.unsqueeze(-1) - out
        return torch.maximum(q * error, (q - 1) * error).mean()

    def _forecast(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(raw scaled outputs, forecasts in original units sorted along the quantile axis)."""
        out = model(batch["past"], batch["future"]).float()
        return out, ts.to_units(out.sort(-1).values, batch, self.cfg["data"]["transform"])

    def step(self, model: nn.Module, batch: dict) -> dict:
        out, preds = self._forecast(model, batch)
        truth = batch["truth"]
        target = torch.stack(
            [truth, batch["last"][:, None].expand_as(truth), batch["mase_scale"][:, None].expand_as(truth)],
            -1,
        )
        return {"loss": self._loss(out, batch["target"]), "preds": preds, "target": target}

    def metrics(self, state: dict) -> dict:
        """The metrics, remembering the MASE object so `baseline` can test the model against naive on it."""
        out = forecast_metrics(state)
        self.last_mase = out["mase"]
        return out

    # --- baselines and the verdict ------------------------------------------------------------
    def baseline_values(self, windows: ts.WindowSet, state: dict) -> dict:
        """Naive, seasonal naive and drift forecasts scored on exactly the given windows."""
        by_series: dict[int, list[int]] = {}
        for k, t in windows.origins:
            by_series.setdefault(k, []).append(t)
        forecasts: dict[str, list] = {}
        targets = []
        for k, origins in by_series.items():
            s = windows.series[k]
            h = np.arange(state["horizon"])
            t = np.asarray(origins)
            truth = s.y[t[:, None] + h]
            scale = np.full_like(truth, windows.encodings[k]["mase_scale"])
            targets.append(np.stack([truth, np.repeat(s.y[t - 1][:, None], len(h), 1), scale], -1))
            for name, f in ts.baseline_forecasts(s.y, origins, state["horizon"], state["season"]).items():
                forecasts.setdefault(name, []).append(f)
        target = torch.tensor(np.concatenate(targets), dtype=torch.float32)
        values: dict = {}
        for name, parts in forecasts.items():
            if len(parts) != len(by_series):  # seasonal naive needs a full season before every window
                continue
            preds = torch.tensor(np.concatenate(parts), dtype=torch.float32)[..., None]
            for metric, obj in forecast_metrics({**state, "quantiles": None}).items():
                if metric == "directional_accuracy" and name == "naive":
                    continue  # "no change" has no direction
                obj.update(preds, target)
                values[metric if name == "naive" else f"{name}_{metric}"] = float(obj.compute())
        values["season"] = state["season"]
        return values

    @staticmethod
    def verdict(mase: MASE, horizon: int) -> dict:
        """Whether the model beats naive on the same windows, tested for significance (Diebold-Mariano)."""
        model_err, naive_err = mase.errors()
        p = ts.diebold_mariano(model_err - naive_err, horizon)
        model, naive = float(model_err.mean()), float(naive_err.mean())
        beats = model < naive and p < SIGNIFICANCE
        if beats:
            text = (
                f"the model beats the naive forecast: MASE {model:.3f} vs {naive:.3f} "
                f"(Diebold-Mariano p={p:.2g})"
            )
        elif model < naive:
            text = (
                f"the model does NOT reliably beat the naive (last value) forecast: MASE {model:.3f} vs "
                f"{naive:.3f}, a difference within noise (Diebold-Mariano p={p:.2f})"
            )
        else:
            text = (
                f"the model does NOT beat the naive (last value) forecast: MASE {model:.3f} vs {naive:.3f}; "
                "predicting 'no change' is at least as good on these windows"
            )
        return {"beats_naive": bool(beats), "naive_pvalue": p, "verdict": text}

    def baseline(self, data: RecipeData) -> dict:
        """Baselines on the test windows, and (after the model's test pass) the verdict against naive."""
        values = self.baseline_values(data.test, data.state)
        line = f"baseline MASE on the same {len(data.test)} test windows: naive {values['mase']:.3f}"
        if "seasonal_naive_mase" in values:
            line += f", seasonal naive (season {values['season']}) {values['seasonal_naive_mase']:.3f}"
        console.info(f"{line}, drift {values['drift_mase']:.3f}")
        if self.last_mase is not None and self.last_mase.windows == len(data.test):
            values.update(self.verdict(self.last_mase, data.state["horizon"]))
            values["beats_baseline"] = values["beats_naive"]  # eval.json's verdict demands significance
            (console.info if values["beats_naive"] else console.warn)(values["verdict"])
        return values

    # --- walk-forward backtest -------------------------------------------------------------------
    def calibrate(self, ids: list, outputs: dict, data: RecipeData) -> dict:
        """Runs the walk-forward backtest when `backtest.folds` > 0 (the model itself is left as trained)."""
        folds = self.cfg["backtest"]["folds"]
        if folds <= 0:
            return {}
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            console.warn("backtest.folds is skipped in distributed training; run it on one process")
            return {}
        return {"backtest": walk_forward(self, self.raw, data.state, folds)}

    # --- predict -------------------------------------------------------------------------------
    def read_inputs(self, inputs: list[str], state: dict) -> ts.WindowSet:
        files = []
        for raw in inputs:
            path = Path(raw)
            if not path.exists():
                raise UserError(
                    f"input '{raw}' does not exist", "give the history as a CSV/Parquet file or folder"
                )
            files += _table_files(path)
        raw = self._read(files, state)
        spec = self.spec(state)
        series, notes = self.fill_series(raw, {n: [] for n in raw.grids})
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
            encodings.append(known or ts.fit_encoding(s, len(s.y), spec.transform, state["season"]))
        for note in notes + raw.notes:
            console.warn(note)
        self.history = series
        return ts.WindowSet(series, [(k, len(s.y)) for k, s in enumerate(series)], encodings, spec)

    def predict_step(self, model: nn.Module, batch: dict) -> dict:
        preds = self._forecast(model, batch)[1]
        if preds.shape[-1] == 1:
            return {"forecast": preds[..., 0]}
        return {"forecast": preds[..., 1], "p10": preds[..., 0], "p90": preds[..., 2]}

    def to_records(self, ids: list, outputs: dict, state: dict) -> list[dict]:
        offset = ts.frequency_offset(state["frequency"])
        daily = ts.step_seconds(state["frequency"]) >= 86_400
        records, plotted = [], {}
        for i, ident in enumerate(ids):
            name, last = ident.rsplit("@", 1)
            dates = pd.date_range(pd.Timestamp(last), periods=state["horizon"] + 1, freq=offset)[1:]
            rows = {k: v[i].tolist() for k, v in outputs.items()}
            plotted[name] = (dates, rows)
            for h, date in enumerate(dates):
                record = {
                    "series": name,
                    "date": str(date.date()) if daily else date.isoformat(),
                    "step": h + 1,
                }
                record.update({k: round(v[h], 6) for k, v in rows.items()})
                records.append(record)
        plot = self.cfg["predict"]["plot"]
        if plot:
            plot_forecasts(Path(plot), self.history, plotted, state["lookback"])
            console.info(f"wrote forecast plot to {plot}")
        return records
