"""The shared cleaning stage for tables: rows first, then a column pipeline fitted on train only.

Rows: rows with a missing label are dropped and counted; exact duplicate rows are kept by default (with
discrete features they are real repeated observations) but grouped so that identical rows never straddle
train and test (`duplicate_groups`), or removed (`clean.drop_duplicates`); duplicates whose label
disagrees are reported. Columns: each is typed (numeric, categorical, boolean, datetime,
free text, id-like, constant; `clean.types` overrides), id-like and constant ones dropped with a
note, and the rest turned into model features by the steps in `dlkit.data.features`, every
statistic (fill values, clip bounds, categories, scalers) learnt from the training split.

`CleaningPipeline.to_state()` is plain JSON for the run's preprocess/state.json;
`CleaningPipeline.from_state()` re-applies it identically at evaluate and predict time, chunk by
chunk if need be. Every recipe with tables or series uses it: add `"clean": CLEAN_OPTIONS` (from the
light `dlkit.data.clean_options`) to the recipe's config and call
`CleaningPipeline.fit(train_frame, cfg["clean"], exclude=[label])`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dlkit.data import features as F
from dlkit.data.clean_options import CLEAN_OPTIONS as CLEAN_OPTIONS  # re-exported for recipes
from dlkit.data.column_kinds import FEATURE_KINDS, KINDS, column_types, non_numeric_value, rows_of
from dlkit.errors import UserError


# --- rows --------------------------------------------------------------------------------------
def drop_missing_labels(frame: pd.DataFrame, label: str) -> tuple[pd.DataFrame, int]:
    keep = frame[label].notna().to_numpy()
    return (frame, 0) if keep.all() else (frame[keep], int((~keep).sum()))


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """One 64-bit hash per row (of the values only), for duplicate and leakage checks on big tables."""
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def duplicate_rows(frame: pd.DataFrame) -> np.ndarray:
    """True for each row identical (every column, label included) to an earlier one."""
    return pd.Series(row_hashes(frame)).duplicated().to_numpy()


def duplicate_groups(frame: pd.DataFrame, pool: np.ndarray) -> np.ndarray | None:
    """A group key per row, equal for rows with identical values (pass the feature columns), for a split
    that keeps each group in one split; None when no two rows of `pool` (a mask: the rows to be split)
    are identical, so there is nothing to group."""
    keys = row_hashes(frame)
    return keys if pd.Series(keys[pool]).duplicated().any() else None


def drop_exact_duplicates(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Keep the first of identical rows."""
    repeated = duplicate_rows(frame)
    return (frame, 0) if not repeated.any() else (frame[~repeated], int(repeated.sum()))


def conflicting_labels(frame: pd.DataFrame, label: str, columns: list[str]) -> int:
    """Rows whose feature columns equal another row's while the label differs."""
    if not columns:
        return 0
    keys = pd.Series(row_hashes(frame[columns]), index=frame.index)
    labels_per_key = frame[label].groupby(keys.to_numpy()).nunique()
    conflicting = labels_per_key.index[labels_per_key.to_numpy() > 1]
    return int(keys.isin(conflicting).sum())


def binary_target(values: pd.Series, positive: str | None, where: str) -> tuple[np.ndarray, list[str]]:
    """0/1 labels and [negative, positive] names; the positive class is given, or 1/true/yes, or the rarer."""
    names = F.category_strings(values)
    found = sorted(names.dropna().unique().tolist())
    if len(found) > 2:
        shown = ", ".join(found[:8]) + (" ..." if len(found) > 8 else "")
        raise UserError(
            f"label column '{values.name}' in {where} has {len(found)} values ({shown}); "
            "a binary task needs exactly two",
            "map it to two values, e.g. 0/1, or point data.label at the right column",
        )
    if len(found) < 2:
        raise UserError(
            f"label column '{values.name}' in {where} has only the value(s) {', '.join(found)}",
            "both classes (e.g. 0 and 1) must appear in the training data",
        )
    if positive is None:
        known = [v for v in found if v.strip().lower() in F.TRUE_WORDS | {"fraud", "positive", "pos"}]
        counts = names.value_counts()
        positive = known[0] if len(known) == 1 else str(counts.idxmin())
    if positive not in found:
        raise UserError(
            f"data.positive='{positive}' is not a value of label column '{values.name}'",
            f"its values are: {', '.join(found)}",
        )
    negative = next(v for v in found if v != positive)
    return (names == positive).to_numpy(dtype=np.int64), [negative, positive]


# --- the fitted pipeline -------------------------------------------------------------------------
@dataclass
class Features:
    """Model inputs for a block of rows: scaled numeric features and categorical embedding indices."""

    numeric: np.ndarray  # float32 (rows, numeric features)
    categorical: np.ndarray  # int64 (rows, embedded columns); 0 = a category unseen in training


class CleaningPipeline:
    """Column plans fitted on the training split; `transform` turns any rows into `Features`."""

    def __init__(self, columns: list[dict], report: list[dict] | None = None):
        self.columns = columns
        self.report = report or []

    # -- fitting
    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        opts: dict,
        exclude: list[str],
        where: str = "the data",
        report: F.Report | None = None,
        rows: np.ndarray | None = None,
    ) -> CleaningPipeline:
        """Type and plan every column but `exclude` (label, split...) from the training rows: all of
        `frame`, or its `rows` (positions), which spares copying the training split out of a big table."""
        report = report or F.Report()
        _check_parts(opts["datetime_parts"])
        names = [c for c in frame.columns if c not in exclude]
        kinds = column_types(frame, names, opts, where, rows)
        for kind in KINDS:
            chosen = [n for n in names if kinds[n] == kind]
            if chosen:
                dropped = {
                    "id": "dropped (id-like: nearly every value distinct)",
                    "constant": "dropped (constant)",
                    "drop": "dropped (clean.types)",
                }.get(kind, "")
                report.add(f"typed {kind}", chosen, len(chosen), dropped)
        columns = []
        for name in names:
            kind = kinds[name]
            if kind in FEATURE_KINDS:
                plan = _fit_column(rows_of(frame, name, rows), kind, opts, report, where)
                columns.append({"name": name, "kind": kind, **plan})
        if not columns:
            raise UserError(
                f"no usable feature column in {where} (all were id-like, constant or dropped)",
                "check the column types with `dlkit check`, or override them with clean.types",
            )
        scaled = [
            c["name"]
            for c in columns
            if c["kind"] in ("numeric", "datetime", "text") or c.get("encoding") == "frequency"
        ]
        if scaled and opts["scaling"] != "none":
            report.add(f"scaled ({opts['scaling']}, fitted on train)", scaled, len(scaled))
        return cls(columns, report.entries)

    # -- applying
    @property
    def input_columns(self) -> list[str]:
        return [c["name"] for c in self.columns]

    @property
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for c in self.columns:
            names += _feature_names(c)
        return names

    @property
    def cardinalities(self) -> list[int]:
        """Embedding table sizes (categories + 1 for unseen) of the embedded columns, in order."""
        return [len(c["categories"]) + 1 for c in self.columns if c.get("encoding") == "embedding"]

    def transform(
        self, frame: pd.DataFrame, where: str = "the data", rows: np.ndarray | None = None
    ) -> Features:
        """Features for `frame` (or its `rows`, by position) from the plans only; extra columns ignored."""
        missing = [n for n in self.input_columns if n not in frame.columns]
        if missing:
            raise UserError(
                f"{where} has no column '{missing[0]}', which the model was trained on"
                + (f" (nor {', '.join(missing[1:4])})" if len(missing) > 1 else ""),
                "give a table with the training columns (extra columns are ignored)",
            )
        n = len(frame) if rows is None else len(rows)
        numeric = np.empty((n, sum(_width(c) for c in self.columns)), dtype=np.float32)
        embedded = []
        at = 0
        for column in self.columns:
            width = _width(column)
            indices = _apply_column(
                rows_of(frame, column["name"], rows), column, numeric[:, at : at + width], where
            )
            if indices is not None:
                embedded.append(indices)
            at += width
        categorical = np.stack(embedded, axis=1) if embedded else np.zeros((n, 0), dtype=np.int64)
        return Features(numeric, categorical)

    # -- saving
    def to_state(self) -> dict:
        return {"columns": self.columns, "report": self.report}

    @classmethod
    def from_state(cls, state: dict) -> CleaningPipeline:
        return cls(state["columns"], state.get("report"))


def print_report(entries: list[dict], title: str) -> None:
    """The cleaning report as a table on stderr (quiet under --json)."""
    from rich.table import Table

    from dlkit import console

    if console.is_quiet():
        return
    table = Table("step", "columns", "count", "detail", title=title)
    for e in entries:
        shown = ", ".join(e["columns"][:6]) + (
            f" (+{len(e['columns']) - 6})" if len(e["columns"]) > 6 else ""
        )
        table.add_row(e["step"], shown, "" if e["count"] is None else str(e["count"]), e["detail"])
    console.err.print(table)


def _check_parts(parts: list) -> None:
    unknown = [p for p in parts if p not in F.DATETIME_PARTS]
    if unknown:
        raise UserError(
            f"clean.datetime_parts has unknown part '{unknown[0]}'",
            f"choose from: {', '.join(F.DATETIME_PARTS)}",
        )


def numbers(series: pd.Series, where: str) -> np.ndarray:
    """A numeric column as float32; a value that is not a number is an error naming its row."""
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype=np.float32, na_value=np.nan, copy=True)  # transformed in place
    parsed = pd.to_numeric(series, errors="coerce")
    if (parsed.isna() & series.notna()).any():
        raise non_numeric_value(series, parsed, where)
    return parsed.to_numpy(dtype=np.float32, na_value=np.nan)


def _fit_column(series: pd.Series, kind: str, opts: dict, report: F.Report, where: str) -> dict:
    name = str(series.name)
    if kind == "numeric":
        return F.fit_numeric(numbers(series, where), name, opts, report)
    if kind == "boolean":
        return F.fit_boolean(F.boolean_values(series), name, opts, report)
    if kind == "text":
        report.add("free text -> length", name)
        return {"length": F.fit_numeric(F.text_lengths(series), name, opts, report)}
    if kind == "datetime":
        fmt = F.datetime_format(series)
        stamps = F.parse_datetimes(series, fmt)
        parts = {}
        for part in opts["datetime_parts"]:
            values = F.datetime_part(stamps, part)
            if np.unique(values[~np.isnan(values)]).size > 1:
                parts[part] = F.fit_numeric(values, f"{name}.{part}", opts, report, transforms=False)
        report.add("datetime parts", name, None, ", ".join(parts) or "none varies; column unused")
        return {"format": fmt, "parts": parts}
    return F.fit_categorical(F.category_strings(series), name, opts, report)


def _width(column: dict) -> int:
    kind = column["kind"]
    if kind in ("numeric", "boolean"):
        return F.numeric_width(column)
    if kind == "text":
        return F.numeric_width(column["length"])
    if kind == "datetime":
        return sum(F.numeric_width(p) for p in column["parts"].values())
    return F.categorical_width(column)


def _feature_names(column: dict) -> list[str]:
    name, kind = column["name"], column["kind"]
    if kind in ("numeric", "boolean"):
        return [name] + ([f"{name}__missing"] if column["indicator"] else [])
    if kind == "text":
        return [f"{name}__length"] + ([f"{name}__length__missing"] if column["length"]["indicator"] else [])
    if kind == "datetime":
        return [
            n
            for part, plan in column["parts"].items()
            for n in [f"{name}__{part}"] + ([f"{name}__{part}__missing"] if plan["indicator"] else [])
        ]
    if column["encoding"] == "onehot":
        return [f"{name}={c}" for c in column["categories"]]
    return [f"{name}__frequency"] if column["encoding"] == "frequency" else []


def _apply_column(series: pd.Series, column: dict, out: np.ndarray, where: str) -> np.ndarray | None:
    kind = column["kind"]
    if kind == "numeric":
        F.apply_numeric(numbers(series, where), column, out)
    elif kind == "boolean":
        F.apply_numeric(F.boolean_values(series), column, out)
    elif kind == "text":
        F.apply_numeric(F.text_lengths(series), column["length"], out)
    elif kind == "datetime":
        stamps = F.parse_datetimes(series, column["format"])
        at = 0
        for part, plan in column["parts"].items():
            width = F.numeric_width(plan)
            F.apply_numeric(F.datetime_part(stamps, part), plan, out[:, at : at + width])
            at += width
    else:
        return F.apply_categorical(F.category_strings(series), column, out)
    return None
