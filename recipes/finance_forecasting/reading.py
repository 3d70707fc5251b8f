"""Reading dated tables into series on a regular grid: which columns hold what, which files are which
split, one grid per series (and value column) at the data's frequency, with what was odd reported."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from dlkit_recipes.finance_forecasting import series as ts

from dlkit import console
from dlkit.data.splits import parse_split_column, split_dirs, split_files
from dlkit.data.tables import FORMATS, read_table, require_columns
from dlkit.errors import UserError

SERIES_NAMES = ("series", "series_id", "id", "ticker", "symbol", "station", "item")
TARGET_NAMES = ("adj close", "adj_close", "close", "value", "price", "y", "target")


@dataclass
class Raw:
    """Series read from the data, each on its regular grid with gaps still empty."""

    grids: dict[str, ts.Grid]
    columns: dict
    freq: str
    notes: list[str]


def is_table(path: Path) -> bool:
    return path.suffix.lower() in FORMATS and not path.name.startswith(".")


def table_files(path: Path) -> list[Path]:
    """A table file, or the tables in a folder (one per series, or one with a series column)."""
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and is_table(p))
    if not files:
        raise UserError(
            f"no table files (.csv, .parquet, ...) in '{path}'",
            "give a CSV/Parquet file with a date column, or a folder of them (one per series)",
        )
    return files


def table_sources(path: Path) -> list[tuple[Path, str | None]]:
    """(table, split) pairs: split folders (train/, val/ or valid/ or dev/, test/, each a file or folder of
    tables), split files (train.csv, test.csv...) or plain tables (split None: by a split column or time)."""
    if not path.exists():
        raise UserError(f"data path '{path}' does not exist", "give a CSV/Parquet file or a folder of them")
    if path.is_file():
        return [(path, None)]
    folders = split_dirs(path)
    if folders:
        return [(f, split) for split, folder in folders.items() for f in table_files(folder)]
    files = split_files(path, tuple(FORMATS))
    if files:
        others = sorted(p.name for p in table_files(path) if p not in files.values())
        if others:
            raise UserError(
                f"'{path}' holds split files ({', '.join(f.name for f in files.values())}) and other "
                f"tables ({', '.join(others[:5])})",
                "keep only train/val/test tables in the folder, or only one table per series",
            )
        return [(f, split) for split, f in files.items()]
    return [(f, None) for f in table_files(path)]


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


def _find_series_column(df: pd.DataFrame, date: str, exclude: set) -> str | None:
    """A column named like a series id; else, if dates repeat, the non-float column that makes them unique."""
    by_name = {str(c).strip().lower(): c for c in df.columns if c != date and c not in exclude}
    named = next((by_name[n] for n in SERIES_NAMES if n in by_name), None)
    if named is not None or not df[date].duplicated().any():
        return named
    for column in df.columns:
        if column == date or column in exclude:
            continue
        if pd.api.types.is_float_dtype(df[column]) or df[column].nunique() > len(df) / 2:
            continue
        if not df.duplicated([column, date]).any():
            return column
    return None


def find_columns(df: pd.DataFrame, path: Path, d: dict, several_files: bool) -> tuple[dict, str | None]:
    """Date, series, value and covariate columns; also says which value column was picked when unset."""
    date = ts.find_date_column(df, d["date_column"], path)
    split = {d["split_column"]} if d["split_column"] in df.columns else set()
    series = None
    if d["series_column"] == "auto":
        series = _find_series_column(df, date, split)
    elif d["series_column"] != "none":
        require_columns(df, [d["series_column"]], path, "series column")
        series = d["series_column"]
    require_columns(df, d["covariates"], path, "covariate column")
    chosen = None
    if d["target"]:
        require_columns(df, d["target"], path, "value column")
        targets = list(d["target"])
    else:
        targets, chosen = _pick_targets(df, {date, series, *d["covariates"], *split}, path)
    source = "column" if series else ("file" if several_files else "none")
    return {
        "date": date,
        "series": series,
        "series_from": source,
        "targets": targets,
        "covariates": list(d["covariates"]),
    }, chosen


def read_raw(sources: list[tuple[Path, str | None]], d: dict, state: dict | None, splits: bool = True) -> Raw:
    """Every table's rows, grouped into series and put on the grid of the data's frequency.

    With `splits`, each row's split comes from its file or folder, else from `data.split_column` when the
    table has one (empty cells: the part their date falls in); predict reads without.
    """
    notes: list[str] = []
    columns = state["columns"] if state else None
    per_split: dict = {}
    for _, split in sources:
        per_split[split] = per_split.get(split, 0) + 1
    several = max(per_split.values()) > 1
    rows: dict[str, list[tuple[pd.Series, np.ndarray, np.ndarray]]] = {}
    for file, split in sources:
        df = read_table(file)
        if columns is None:
            columns, chosen = find_columns(df, file, d, several)
            if chosen:
                console.info(chosen)
        needed = [columns["date"], *columns["targets"], *columns["covariates"]]
        require_columns(df, needed + ([columns["series"]] if columns["series"] else []), file)
        dates = ts.parse_dates(df[columns["date"]], file, columns["date"], d["date_format"])
        values = np.stack([ts.to_numeric(df[c], file, c) for c in needed[1:]], 1)
        labels = np.full(len(df), split if splits else None, dtype=object)
        if splits and split is None and d["split_column"] in df.columns:
            labels[:] = parse_split_column(df[d["split_column"]], str(file))
        ids = (
            df[columns["series"]].astype(str)
            if columns["series"]
            else pd.Series(file.stem if columns["series_from"] == "file" else "", index=df.index)
        )
        for key, take in ids.groupby(ids, sort=True).indices.items():
            rows.setdefault(str(key), []).append((dates.iloc[take], values[take], labels[take]))
    per_series = {
        key: (
            pd.concat([p[0] for p in parts], ignore_index=True),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
        )
        for key, parts in rows.items()
    }
    _single_points(per_series, columns, d, notes)
    freq = (state or {}).get("frequency") or _frequency(
        [pd.DatetimeIndex(v[0].sort_values().unique()) for v in per_series.values()], d
    )
    grids: dict[str, ts.Grid] = {}
    k = len(columns["targets"])
    for key, (dates, values, labels) in per_series.items():
        grid = ts.regularize(dates, values, freq, labels)
        for j, target in enumerate(columns["targets"]):
            name = target if not key else (key if k == 1 else f"{key}/{target}")
            grids[name] = ts.Grid(
                grid.dates,
                grid.values[:, [j, *range(k, values.shape[1])]],
                grid.duplicates,
                grid.off_grid,
                grid.parts,
            )
    notes += _grid_notes(grids, freq)
    return Raw(grids, columns, freq, notes)


def _single_points(per_series: dict, columns: dict, d: dict, notes: list[str]) -> None:
    """A series with one date has no history: refuse it (or drop it with data.skip_short)."""
    single = [k for k, v in per_series.items() if v[0].nunique() < 2]
    if not single:
        return
    if d["skip_short"] and len(single) < len(per_series):
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


def _frequency(date_sets: list[pd.DatetimeIndex], d: dict) -> str:
    if d["frequency"] != "auto":
        return ts.frequency_offset(d["frequency"]).freqstr
    return ts.infer_frequency(date_sets)


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
