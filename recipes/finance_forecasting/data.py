"""From gridded series to the model's windows: each series' split by time (the data's own split where it
gives one), gap filling inside each part, the fitted state (horizon, season, lookback, per-series scaling
on the training part only) and the train/validation/test window sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
from dlkit_recipes.finance_forecasting import series as ts
from dlkit_recipes.finance_forecasting.reading import Raw
from dlkit_recipes.finance_forecasting.trend_season import choose, fit_window
from dlkit_recipes.finance_forecasting.windows import (
    Series,
    WindowSet,
    WindowSpec,
    fit_encoding,
    origins_between,
)

from dlkit.data.splits import time_split
from dlkit.errors import UserError

QUANTILES = (0.1, 0.5, 0.9)
MAX_GAPS = 0.5  # a series with more of its grid empty than this is refused (wrong frequency or a stray date)


# --- splits ------------------------------------------------------------------------------------------
def series_bounds(name: str, grid: ts.Grid, d: dict, horizon: int) -> tuple[list[int], str | None]:
    """[end of train, end of validation, end of test] on the series' grid, and a note when a part was carved.

    Without splits in the data: train, then validation, then test at the end (`time_split`, each part at
    least one horizon). With them: each part starts where its first marked row is; a missing validation
    part is the end of train, a missing test part the end of the last given part.
    """
    n, parts, dates = len(grid.dates), grid.parts, grid.dates
    if "val" not in parts and "test" not in parts:
        return [*time_split(n, d["val_fraction"], d["test_fraction"], horizon), n], None
    for early, late in (("train", "val"), ("val", "test"), ("train", "test")):
        if early in parts and late in parts and parts[early][1] >= parts[late][0]:
            raise UserError(
                f"series '{name}': rows marked {early} run to {dates[parts[early][1]].date()}, but rows "
                f"marked {late} start at {dates[parts[late][0]].date()}",
                f"each series' {early} rows must all come before its {late} rows (forecasts are tested "
                "on the future of what they learned from)",
            )
    note = None
    if "test" in parts:
        test = parts["test"][0]
    else:
        test = n - max(horizon, round(n * d["test_fraction"]))
        note = f"{name}: no test rows, so its last {n - test} steps are the test part"
    if "val" in parts:
        val = parts["val"][0]
    else:
        val = test - max(horizon, round(n * d["val_fraction"]))
        note = f"{name}: no validation rows, so the {test - val} steps before its test part validate"
    for part, size in (("validation", test - val), ("test", n - test)):
        if size < horizon:
            raise UserError(
                f"series '{name}' has {max(0, size)} steps in its {part} part, fewer than the horizon "
                f"({horizon}): no window can be scored there",
                "give that part more rows, or lower data.horizon",
            )
    return [val, test, n], note


def all_bounds(raw: Raw, d: dict, horizon: int, notes: list[str]) -> dict[str, list[int]]:
    bounds = {}
    carved = []
    for name, grid in raw.grids.items():
        bounds[name], note = series_bounds(name, grid, d, horizon)
        carved += [note] if note else []
    if carved:
        notes.append("; ".join(carved[:3]) + (f" (and {len(carved) - 3} more)" if len(carved) > 3 else ""))
    return bounds


def needed(d: dict, lookback: int, horizon: int) -> int:
    """The fewest points a series needs when split by time: one training window, then validation and
    test parts of at least one horizon each."""
    n = lookback + 1 + 3 * horizon
    while time_split(n, d["val_fraction"], d["test_fraction"], horizon)[0] < lookback + 1 + horizon:
        n += 1
    return n


def drop_short(raw: Raw, bounds: dict, d: dict, lookback: int, horizon: int, notes: list[str]) -> None:
    """Refuse (or with data.skip_short drop) series whose training part cannot hold one window."""
    window = lookback + 1 + horizon
    short = {n: b[0] for n, b in bounds.items() if b[0] < window}
    if not short:
        return
    name, train = next(iter(short.items()))
    n = len(raw.grids[name].dates)
    if raw.grids[name].parts:
        message = (
            f"series '{name}' has {train} time steps in its training part, but lookback {lookback} + "
            f"horizon {horizon} need at least {window} for one training window"
        )
    else:
        message = (
            f"series '{name}' has {n} time steps after filling gaps, but lookback {lookback} + "
            f"horizon {horizon} need at least {needed(d, lookback, horizon)} ({window} for one training "
            f"window, then validation and test parts of at least {horizon} steps each)"
        )
    if not d["skip_short"] or len(short) == len(raw.grids):
        hint = "give more history, lower data.lookback or data.horizon"
        raise UserError(message, hint + (", or set data.skip_short=true" if len(raw.grids) > 1 else ""))
    for name in short:
        del raw.grids[name], bounds[name]
    notes.append(
        f"skipped {len(short)} series too short for lookback {lookback} + horizon {horizon}: "
        f"{', '.join(list(short)[:5])}"
    )


def fill_series(raw: Raw, bounds: dict[str, list[int]], d: dict) -> tuple[list[Series], list[str]]:
    """Fill gaps per series without crossing its split boundaries; report how many were filled."""
    method = d["fill"]
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
        ts.check_transform(values[:, 0], d["transform"], name)
        series.append(Series(name, grid.dates, values[:, 0], values[:, 1:]))
    notes = []
    if filled:
        shown = ", ".join(f"{n} {c}" for n, c in list(filled.items())[:5])
        notes.append(
            f"filled {sum(filled.values())} missing value(s) ({100 * sum(filled.values()) / total:.1f}% "
            f"of cells; gaps in the {raw.freq} grid or empty cells) by {method}: {shown}"
            + (" ..." if len(filled) > 5 else "")
        )
    return series, notes


# --- the fitted state --------------------------------------------------------------------------------
def choose_lookback(d: dict, bounds: dict, horizon: int, season: int) -> int:
    """Configured, or max(3H, 2 x season) capped at 8H, shortened to fit the shortest training part."""
    if d["lookback"] > 0:
        return d["lookback"]
    lookback = min(max(3 * horizon, 2 * season), 8 * horizon)
    shortest = min(b[0] for b in bounds.values())
    while lookback > horizon and lookback + 1 + horizon > shortest:
        lookback -= 1
    return lookback


def describe_series(s: Series, bounds: list[int], season: int, transform: str) -> dict:
    """The series' fitted scaling and MASE scale, with the dates of its train/validation/test parts."""
    edges = [0, *bounds]
    parts = {
        part: [str(s.dates[a].date()), str(s.dates[b - 1].date())]
        for part, a, b in zip(("train", "val", "test"), edges[:-1], edges[1:], strict=True)
    }
    return {**fit_encoding(s, bounds[0], transform, season), "points": len(s.y), **parts}


def plan(raw: Raw, d: dict, quantiles: bool, base: str, notes: list[str]) -> tuple[dict, list[Series], dict]:
    """Fit everything on the training parts: horizon, season, lookback, per-series scaling; then the
    seasonal-trend fit window and the net's starting forecast on validation."""
    horizon = d["horizon"] or ts.default_horizon(raw.freq)
    bounds = all_bounds(raw, d, horizon, notes)
    drop_short(raw, bounds, d, d["lookback"] or horizon, horizon, notes)  # the shortest lookback allowed
    series, fill_notes = fill_series(raw, bounds, d)
    notes += fill_notes
    season = d["season"] or ts.detect_season([s.y[: bounds[s.name][0]] for s in series], raw.freq)
    lookback = choose_lookback(d, bounds, horizon, season)
    state = {
        "columns": raw.columns,
        "frequency": raw.freq,
        "horizon": horizon,
        "lookback": lookback,
        "season": season,
        "transform": d["transform"],
        "calendar": ts.calendar_for(raw.freq) if d["calendar"] else [],
        "quantiles": list(QUANTILES) if quantiles else None,
        "series": {s.name: describe_series(s, bounds[s.name], season, d["transform"]) for s in series},
    }
    choose_base(series, state, bounds, base)
    return state, series, bounds


def choose_base(series: list[Series], state: dict, bounds: dict[str, list[int]], base: str) -> None:
    """Sets the seasonal-trend fit's window and the classical forecast the net corrects: that fit when
    `base` names it, or with `auto` when it beats the last value on the validation windows; else the last
    value (the net then learns the whole change)."""
    val = split_sets(series, {**state, "base": "naive"}, bounds)[1]
    state["baseline_window"], better = choose(val, state)
    state["base"] = "seasonal_trend" if base == "seasonal_trend" or (base == "auto" and better) else "naive"


def spec(state: dict) -> WindowSpec:
    based = state.get("base") == "seasonal_trend"
    return WindowSpec(
        state["lookback"],
        state["horizon"],
        state["transform"],
        tuple(state["calendar"]),
        state["frequency"],
        state["season"],
        fit_window(state) if based else 0,
    )


def windows(
    series: list[Series], encodings: list[dict], state: dict, spans: list[tuple[int, int]]
) -> WindowSet:
    s = spec(state)
    origins = [(k, t) for k, (a, b) in enumerate(spans) for t in origins_between(a, b, s)]
    return WindowSet(series, origins, encodings, s)


def split_sets(series: list[Series], state: dict, bounds: dict[str, list[int]]) -> list[WindowSet]:
    """Train, validation and test windows: each window's forecast steps lie inside its own part."""
    encodings = [state["series"][s.name] for s in series]
    parts = []
    for part in range(3):
        spans = []
        for s in series:
            edges = [0, *bounds[s.name]]
            spans.append((edges[part], edges[part + 1]))
        parts.append(windows(series, encodings, state, spans))
    return parts


def every_window(raw: Raw, state: dict, d: dict, notes: list[str]) -> WindowSet:
    """Every window of new labelled data; series the run never saw are scaled on their first window."""
    s = spec(state)
    series, fill_notes = fill_series(raw, {n: [] for n in raw.grids}, d)
    notes += fill_notes
    series = [x for x in series if len(x.y) >= s.history + s.horizon]
    if not series:
        raise UserError(
            f"no series is long enough for lookback {s.lookback} + horizon {s.horizon}",
            f"each series needs at least {s.history + s.horizon} time steps",
        )
    encodings, overlap = [], []
    for x in series:
        known = state["series"].get(x.name)
        encodings.append(known or fit_encoding(x, s.history, s.transform, state["season"]))
        if known is None:
            notes.append(
                f"series '{x.name}' was not in the training data: scaled on its first {s.history} steps"
            )
        elif x.dates[s.history] <= pd.Timestamp(known["val"][1]):
            overlap.append(x.name)
    if overlap:
        notes.append(
            f"series {', '.join(overlap[:5])}: some evaluated windows fall in the period the model "
            "was trained or validated on, so those figures are optimistic"
        )
    return windows(series, encodings, state, [(0, len(x.y)) for x in series])


def summary(state: dict) -> str:
    names = list(state["series"])
    return (
        f"{len(names)} series ({', '.join(names[:4])}{' ...' if len(names) > 4 else ''}), frequency "
        f"{state['frequency']}, season {state['season'] if state['season'] > 1 else 'none'}, "
        f"lookback {state['lookback']} -> horizon {state['horizon']}, target as {state['transform']}"
    )
