"""Reading labelled tables and splitting them: one table (with an optional split column), split files
(train.csv, valid.parquet, test.csv) or split folders (train/, val/, test/ holding one table or several
parts). Rows without a label are dropped, and a missing val or test split is carved out of train,
stratified by the label, with rows of identical features kept together in one split (or exact duplicates
removed first: clean.drop_duplicates)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from dlkit.data.cleaning import (
    Features,
    binary_target,
    drop_missing_labels,
    duplicate_groups,
    duplicate_rows,
)
from dlkit.data.features import Report, category_strings
from dlkit.data.splits import assign_splits, indices, parse_split_column, split_dirs, split_files
from dlkit.data.tables import FORMATS, read_table, require_columns
from dlkit.errors import UserError

TABLES = tuple(FORMATS)  # file suffixes read as tables
ALL = "all"  # the key of a table that is not a split of its own


class TableSet(Dataset):
    """Feature rows as tensors. Batches are cut in one indexing call (`__getitems__`), not row by row.

    Each item's 'id' is its row number in the data (a tensor moves to the device in one call).
    """

    def __init__(self, features: Features, labels: np.ndarray, row_numbers: np.ndarray):
        self.numeric = torch.from_numpy(features.numeric)
        self.categorical = torch.from_numpy(features.categorical)
        self.labels = torch.from_numpy(labels)
        self.row_numbers = torch.from_numpy(np.array(row_numbers, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitems__(self, index: list[int]) -> dict:
        at = torch.as_tensor(index, dtype=torch.long)
        return {
            "numeric": self.numeric[at],
            "categorical": self.categorical[at],
            "label": self.labels[at],
            "id": self.row_numbers[at],
        }

    def __getitem__(self, i: int) -> dict:
        return {
            "numeric": self.numeric[i],
            "categorical": self.categorical[i],
            "label": self.labels[i],
            "id": self.row_numbers[i],
        }


def table_files(folder: Path) -> list[Path]:
    found = (p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return sorted(p for p in found if p.suffix.lower() in TABLES)


def sources(path: Path, need_train: bool = True) -> dict[str, list[Path]]:
    """The tables to read: {'all': [file]} for one table, else split -> its files (split files, or the
    tables in split folders). `need_train` refuses split files or folders without a train split."""
    if path.is_file():
        return {ALL: [path]}
    if not path.is_dir():
        raise UserError(f"data '{path}' does not exist", "give a .csv or .parquet file, or a folder of them")
    files, dirs = split_files(path, TABLES), split_dirs(path)
    if files and dirs:
        raise UserError(
            f"'{path}' has both split files ({', '.join(f.name for f in files.values())}) and split "
            f"folders ({', '.join(d.name + '/' for d in dirs.values())})",
            "keep one layout: train/val/test files, or train/ val/ test/ folders of tables",
        )
    found = {s: [f] for s, f in files.items()}
    for split, folder in dirs.items():
        found[split] = table_files(folder)
        if not found[split]:
            raise UserError(
                f"split folder '{folder}' holds no table",
                "put a .csv or .parquet file (or several parts of one table) in it",
            )
    if not found:
        tables = table_files(path)
        if len(tables) == 1:
            return {ALL: tables}
        if not tables:
            raise UserError(
                f"folder '{path}' holds no table",
                "give a .csv or .parquet file, train/val/test files, or train/ val/ test/ folders",
            )
        raise UserError(
            f"folder '{path}' holds several tables ({', '.join(p.name for p in tables[:5])}) and no "
            "train file",
            "give one file with --data, name the files train/val/test.csv, or put them in train/ val/ test/",
        )
    if need_train and "train" not in found:
        raise UserError(
            f"'{path}' has {' and '.join(found)} data but no train split",
            "add train.csv (or a train/ folder); val and test are carved out of train when missing",
        )
    return found


def read_labelled(
    srcs: dict[str, list[Path]], cfg: dict, report: Report, split_column: bool = True
) -> tuple[pd.DataFrame, list[str | None]]:
    """All rows with a label, and each row's given split (None: to be assigned). One table's split comes
    from `data.split_column` when it has one (and `split_column` is True)."""
    d = cfg["data"]
    frames, given = [], []
    for split, files in srcs.items():
        for source in files:
            frame = read_table(source, d["encoding"])
            require_columns(frame, [d["label"]], source, "label column")
            if split != ALL:
                splits = [split] * len(frame)
            elif split_column and d["split_column"] in frame.columns:
                splits = parse_split_column(frame[d["split_column"]].tolist(), str(source))
            else:
                splits = [None] * len(frame)
            kept, dropped = drop_missing_labels(frame, d["label"])
            if dropped:
                report.add("rows without a label dropped", d["label"], dropped, source.name)
                keep = frame[d["label"]].notna().to_numpy()
                splits = [s for s, k in zip(splits, keep, strict=True) if k]
            frames.append(kept)
            given += splits
    if len(frames) == 1:
        return frames[0], given
    return pd.concat(frames, ignore_index=True), given


def split_rows(
    frame: pd.DataFrame,
    given: list[str | None],
    cfg: dict,
    report: Report,
    classes: list[str] | None,
    where: str,
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Rows per split, and [negative, positive] label names (found in the rows that train unless given).

    Among the rows that train or are carved into val/test (the user's own val/test rows stay as given),
    rows with identical features are real repeated observations when features are discrete: they are
    kept, and each group of them goes to one split, so no row is both trained on and tested. With
    `clean.drop_duplicates` exact duplicates (the split column aside) are removed first.
    """
    d = cfg["data"]
    pool = np.array([g in (None, "train") for g in given], dtype=bool)
    if cfg["clean"]["drop_duplicates"] and pool.any():
        columns = [c for c in frame.columns if c != d["split_column"]]
        repeated = np.zeros(len(frame), dtype=bool)
        repeated[pool] = duplicate_rows(frame.loc[pool, columns])
        if repeated.any():
            report.add("exact duplicate rows removed", "all columns", int(repeated.sum()), where)
            frame = frame[~repeated]
            given = [g for g, r in zip(given, repeated, strict=True) if not r]
            pool = pool[~repeated]
    if classes is None:
        rows = "the training rows" if any(g is not None for g in given) else where
        classes = binary_target(frame.loc[pool, d["label"]], d["positive"], rows)[1]
    labels = category_strings(frame[d["label"]]).tolist()
    features = [c for c in frame.columns if c not in (d["label"], d["split_column"])]
    groups = duplicate_groups(frame[features], pool)
    if groups is not None:
        repeats = int(pd.Series(groups[pool]).duplicated().sum())
        report.add("rows with identical features kept, each group in one split", "features", repeats, where)
    assigned = assign_splits(
        given, d["val_fraction"], d["test_fraction"], cfg["seed"], labels=labels, groups=groups
    )
    return {s: frame.iloc[idx] for s, idx in indices(assigned).items()}, classes


def encode_labels(values: pd.Series, classes: list[str], where: str) -> np.ndarray:
    """0/1 labels for values that must be one of the run's two classes."""
    names = category_strings(values)
    unknown = names[~names.isin(classes)]
    if len(unknown):
        raise UserError(
            f"label column '{values.name}' in {where} has value '{unknown.iloc[0]}', but the model "
            f"knows only {classes[0]} and {classes[1]}",
            "map the labels to the training values",
        )
    return (names == classes[1]).to_numpy(dtype=np.int64)
