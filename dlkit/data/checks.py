"""Pre-flight checks for `dlkit check` that any recipe with tables (or label CSVs) can reuse.

Each function looks at one thing and returns `Finding`s: "ok" and "info" for the record,
"warning" for what training will work around (and says how), "fatal" for what must be fixed first
(the command then exits with code 2). Nothing here knows a domain: a recipe picks the checks that
fit its data and adds its own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from dlkit.data import cleaning, column_kinds
from dlkit.data.features import Report, fit_numeric
from dlkit.errors import UserError
from dlkit.recipe import Finding


def _names(columns: list, limit: int = 8) -> str:
    shown = ", ".join(map(str, columns[:limit]))
    return shown + (f" (+{len(columns) - limit} more)" if len(columns) > limit else "")


def readable_files(
    paths: list[Path], read: Callable[[Path], object]
) -> tuple[dict[Path, object], list[Finding]]:
    """Try `read` on every file; each unreadable one is a fatal finding carrying the reader's message."""
    loaded, findings = {}, []
    for path in paths:
        try:
            loaded[path] = read(path)
        except UserError as exc:
            findings.append(
                Finding("file readable", "fatal", exc.message, exc.hint or f"fix or remove '{path}'")
            )
    if loaded and not findings:
        findings.append(Finding("file readable", "ok", f"{len(loaded)} file(s) read"))
    return loaded, findings


def label_column(frame: pd.DataFrame, label: str, where: str) -> list[Finding]:
    """The configured label column exists (fatal otherwise, naming the columns there are)."""
    if label in frame.columns:
        return [Finding("label column", "ok", f"'{label}' found among {len(frame.columns)} columns")]
    return [
        Finding(
            "label column",
            "fatal",
            f"{where} has no label column '{label}' (columns: {_names(list(frame.columns), 30)})",
            "set data.label=COLUMN to the column that holds the label",
        )
    ]


def label_values(labels: pd.Series, classes: int | None = None) -> list[Finding]:
    """Missing labels (dropped in training) and, for a fixed number of classes, how many values there are."""
    found = []
    missing = int(labels.isna().sum())
    if missing:
        found.append(
            Finding(
                "missing labels",
                "warning",
                f"{missing} row(s) have no label",
                "they are dropped before training",
            )
        )
    values = labels.dropna().astype("str").unique().tolist()
    if classes is not None and len(values) != classes:
        shown = _names(sorted(values))
        found.append(
            Finding(
                "label values",
                "fatal",
                f"label '{labels.name}' has {len(values)} value(s): {shown}; expected {classes}",
                "map the label to exactly two values, e.g. 0/1",
            )
        )
    return found


def missing_values(frame: pd.DataFrame, exclude: list[str]) -> list[Finding]:
    """Missing values per column: all-missing columns are fatal, the rest are imputed."""
    counts = frame.drop(columns=[c for c in exclude if c in frame.columns]).isna().sum()
    empty = [c for c, n in counts.items() if n == len(frame)]
    partial = [(c, int(n)) for c, n in counts.items() if 0 < n < len(frame)]
    found = []
    if empty:
        found.append(
            Finding(
                "all-missing columns",
                "fatal",
                f"no value at all in: {_names(empty)}",
                f"remove them, or set clean.types.{empty[0]}=drop",
            )
        )
    if partial:
        text = ", ".join(f"{c} {n} ({n / len(frame):.1%})" for c, n in partial)
        found.append(
            Finding("missing values", "info", text, "imputed (clean.impute_*) with missing indicators")
        )
    if not empty and not partial:
        found.append(Finding("missing values", "ok", "no missing values"))
    return found


def non_numeric_values(frame: pd.DataFrame, exclude: list[str], where: str) -> list[Finding]:
    """Text columns that are numbers but for a few values: each names a bad row (fatal)."""
    found = []
    for name in frame.columns:
        series = frame[name]
        if name in exclude or pd.api.types.is_numeric_dtype(series.dtype) or series.isna().all():
            continue
        numbers = column_kinds.mostly_numbers(series)
        if numbers is not None and numbers.isna().any():
            exc = column_kinds.non_numeric_value(series, numbers, where)
            found.append(Finding("non-numeric values", "fatal", exc.message, exc.hint or ""))
    return found


def constant_columns(frame: pd.DataFrame, exclude: list[str]) -> list[Finding]:
    constant = [c for c in frame.columns if c not in exclude and frame[c].nunique(dropna=False) <= 1]
    if not constant:
        return []
    return [
        Finding(
            "constant columns",
            "warning",
            f"one value only: {_names(constant)}",
            "dropped before training; nothing to do",
        )
    ]


def duplicates(frame: pd.DataFrame) -> list[Finding]:
    """Rows that repeat another row in every column."""
    repeated = int(pd.Series(cleaning.row_hashes(frame)).duplicated().sum())
    if not repeated:
        return [Finding("duplicates", "ok", "no exact duplicate rows")]
    return [
        Finding(
            "duplicates",
            "warning",
            f"{repeated} exact duplicate row(s) ({repeated / len(frame):.1%})",
            "kept as repeated observations, each group of identical rows in one split; "
            "clean.drop_duplicates=true removes them instead",
        )
    ]


def conflicting_labels(frame: pd.DataFrame, label: str, features: list[str]) -> list[Finding]:
    """Rows with the same feature values as another row but a different label."""
    conflicting = cleaning.conflicting_labels(frame.dropna(subset=[label]), label, features)
    if not conflicting:
        return [Finding("conflicting labels", "ok", "no identical rows with different labels")]
    return [
        Finding(
            "conflicting labels",
            "warning",
            f"{conflicting} row(s) share all feature values with a row of another label",
            "check how those rows were labelled; they are kept",
        )
    ]


def split_leakage(
    train: pd.DataFrame, test: pd.DataFrame, features: list[str], what: str = "test"
) -> list[Finding]:
    """Test rows whose feature values also appear in training: the score on them measures memory."""
    if train.empty or test.empty:
        return []
    leaked = int(np.isin(cleaning.row_hashes(test[features]), cleaning.row_hashes(train[features])).sum())
    if not leaked:
        return [Finding("train/test leakage", "ok", f"no {what} row repeats a training row")]
    return [
        Finding(
            "train/test leakage",
            "warning",
            f"{leaked} {what} row(s) ({leaked / len(test):.1%}) have the same feature values as a "
            "training row",
            "remove them from the test data, or split by a group (customer, card...)",
        )
    ]


def class_balance(labels: dict[str, pd.Series], minimum: int = 10) -> list[Finding]:
    """Rows per class in each split: a class absent from training is fatal, fewer than `minimum` a warning."""
    counts = {s: v.dropna().astype("str").value_counts().to_dict() for s, v in labels.items()}
    return class_counts(counts, {s: len(v) for s, v in labels.items()}, minimum)


def class_counts(
    counts: dict[str, dict[str, int]], rows: dict[str, int] | None = None, minimum: int = 10
) -> list[Finding]:
    """`class_balance` from counts already taken (split -> class -> rows; `rows`: each split's rows, missing
    labels included, default the sum), e.g. by a pass over a table too big to load."""
    classes = sorted({str(c) for per_class in counts.values() for c in per_class})
    parts = []
    worst = "ok"
    for split, per_class in counts.items():
        total = (rows or {}).get(split, sum(per_class.values()))
        parts.append(
            f"{split}: "
            + ", ".join(
                f"{c} {int(per_class.get(c, 0))} ({per_class.get(c, 0) / max(1, total):.1%})" for c in classes
            )
        )
        smallest = min(int(per_class.get(c, 0)) for c in classes) if classes else 0
        if smallest == 0 and split == "train":
            worst = "fatal"
        elif smallest < minimum and worst != "fatal":
            worst = "warning"
    fix = {
        "ok": "",
        "warning": f"fewer than {minimum} examples of a class in a split makes its scores noisy; "
        "add data or use a larger val/test fraction",
        "fatal": "every class needs training examples",
    }[worst]
    return [Finding("class balance", worst, "; ".join(parts), fix)]


def outliers(frame: pd.DataFrame, exclude: list[str], opts: dict) -> list[Finding]:
    """Numeric values the cleaning stage would clip (`opts` is the recipe's `clean` config), per column."""
    report = Report()
    for name in frame.columns:
        series = frame[name]
        if (
            name not in exclude
            and pd.api.types.is_numeric_dtype(series.dtype)
            and not pd.api.types.is_bool_dtype(series.dtype)
            and series.notna().any()
        ):
            fit_numeric(series.to_numpy(dtype=np.float32, na_value=np.nan), str(name), opts, report)
    hits = [
        f"{e['columns'][0]}: {e['count']} outside {e['detail']}"
        for e in report.entries
        if e["step"].startswith("outliers")
    ]
    if not hits:
        return [
            Finding(
                "outliers",
                "ok",
                "no value beyond the outlier bounds"
                if opts["outliers"] != "none"
                else "not looked for (clean.outliers=none)",
            )
        ]
    return [
        Finding(
            "outliers",
            "info",
            "; ".join(hits),
            f"clipped to bounds learnt on train (clean.outliers={opts['outliers']})",
        )
    ]
