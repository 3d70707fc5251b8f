"""The one split and layout stage every recipe shares.

- Split names: one parser with one alias set (`train`; `val`/`valid`/`validation`/`dev`; `test`), for
  split columns, split files (`dev.tsv`) and split folders (`valid/`).
- Finding splits on disk: `split_files` (train.csv, val.jsonl, ...) and `split_dirs` (train/, test/, ...).
- Assigning missing splits: `assign_splits` keeps the splits a user gave and carves a missing val or
  test out of the rest: random, stratified by label, by group (no group in two splits) or by time
  (the latest items are held out). The low-level index functions are here too.

Everything is reproducible from the seed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from dlkit.errors import UserError

SPLITS = ("train", "val", "test")
ALIASES = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
}
ALIAS_TEXT = "train; val, valid, validation or dev; test"


# --- names ------------------------------------------------------------------------------------------
def split_name(value: object, where: str = "") -> str | None:
    """A split value as `train`/`val`/`test`; None when empty or missing (to be assigned).

    `where` ("'data.csv' row 7") names the place of a bad value in the error.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip().lower()
    if not text or text in ("nan", "none"):
        return None
    if text not in ALIASES:
        raise UserError(
            f"{where + ': ' if where else ''}split '{value}' is not a split name",
            f"use {ALIAS_TEXT} (or leave it empty to split automatically)",
        )
    return ALIASES[text]


def parse_split_column(values: Iterable, source: str, first_row: int = 2) -> list[str | None]:
    """Split names for a column of values; errors name the file and row (header = row 1)."""
    return [split_name(v, f"'{source}' row {first_row + i}") for i, v in enumerate(values)]


def split_files(folder: Path, suffixes: Sequence[str]) -> dict[str, Path]:
    """`train.csv`, `dev.tsv`, `test.jsonl`... in `folder`: split -> file (two for one split are refused)."""
    found: dict[str, Path] = {}
    wanted = {s.lower() for s in suffixes}
    for file in sorted(p for p in folder.iterdir() if p.is_file()):
        split = ALIASES.get(file.stem.lower())
        if split is None or file.suffix.lower() not in wanted:
            continue
        if split in found:
            raise UserError(
                f"'{folder}' has two files for the {split} split: {found[split].name} and {file.name}",
                "keep one file per split (train, val, test)",
            )
        found[split] = file
    return found


def split_dirs(folder: Path) -> dict[str, Path]:
    """`train/`, `valid/`, `test/`... under `folder`: split -> folder (two for one split are refused)."""
    found: dict[str, Path] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        split = ALIASES.get(sub.name.lower())
        if split is None:
            continue
        if split in found:
            raise UserError(
                f"'{folder}' has two folders for the {split} split: {found[split].name}/ and {sub.name}/",
                "keep one folder per split (train, val, test)",
            )
        found[split] = sub
    return found


# --- assigning ---------------------------------------------------------------------------------------
def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise UserError(
            f"data.val_fraction={val_fraction} and data.test_fraction={test_fraction} must be in [0, 1) "
            "and add up to less than 1"
        )


def stratified_split(
    labels: list,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> tuple[list[int], list[int], list[int]]:
    """Indices for train/val/test keeping each class's share; every class keeps >= 1 training example."""
    _check_fractions(val_fraction, test_fraction)
    rng = np.random.default_rng(seed)
    by_class: dict = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    train, val, test = [], [], []
    for label in sorted(by_class, key=str):
        idx = np.array(by_class[label])
        rng.shuffle(idx)
        n = len(idx)
        n_test = int(round(n * test_fraction)) if n >= 3 else 0
        n_val = int(round(n * val_fraction)) if n >= 3 else 0
        n_test = min(n_test, n - 1)
        n_val = min(n_val, n - 1 - n_test)
        test += idx[:n_test].tolist()
        val += idx[n_test : n_test + n_val].tolist()
        train += idx[n_test + n_val :].tolist()
    return sorted(train), sorted(val), sorted(test)


def random_split(
    n: int,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> tuple[list[int], list[int], list[int]]:
    return stratified_split([0] * n, val_fraction, test_fraction, seed)


def group_split(
    groups: list[str],
    labels: list,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> tuple[list[int], list[int], list[int]]:
    """Indices for train/val/test with every group (patient, user...) in exactly one split.

    Groups are stratified by their most common label, so each split keeps the class mix. The
    fractions count groups, not examples. With one example per group this is `stratified_split`.
    """
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    names = list(members)
    group_labels = [Counter(str(labels[i]) for i in members[g]).most_common(1)[0][0] for g in names]
    parts = stratified_split(group_labels, val_fraction, test_fraction, seed)
    return tuple(sorted(i for g in part for i in members[names[g]]) for part in parts)


def time_split(n: int, val_fraction: float, test_fraction: float, min_part: int) -> tuple[int, int]:
    """(end of train, end of validation): train first, then validation, then test at the end."""
    if not 0 < val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise UserError(
            f"data.val_fraction={val_fraction} and data.test_fraction={test_fraction} must be "
            "in (0, 1) and add up to less than 1",
            "time-ordered data keeps its last part for validation and test",
        )
    n_test = max(min_part, round(n * test_fraction))
    n_val = max(min_part, round(n * val_fraction))
    return n - n_val - n_test, n - n_test


def leaking_groups(groups: list[str | None], splits: list[str | None]) -> dict[str, set[str]]:
    """Groups (patients, users...) found in more than one of the user's splits."""
    seen: dict[str, set[str]] = {}
    for g, s in zip(groups, splits, strict=True):
        if g is not None and s is not None:
            seen.setdefault(g, set()).add(s)
    return {g: s for g, s in seen.items() if len(s) > 1}


def assign_splits(
    given: Sequence[str | None],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    labels: Sequence | None = None,
    groups: Sequence[str] | None = None,
    order: Sequence | None = None,
) -> list[str]:
    """A split for every item: the ones the user gave are kept; the rest join train, and a val or test
    split the user did not give is carved out of that pool.

    How it is carved: by `groups` (no group in two splits, stratified by `labels` when given), by
    `order` (time: the latest items go to test, the ones before to val), stratified by `labels`, or
    at random, in that order of preference.
    """
    if len(given) and any(g is not None and g not in SPLITS for g in given):
        raise ValueError("assign_splits expects names from split_name()")
    present = {g for g in given if g is not None}
    fractions = {s: (0.0 if s in present else f) for s, f in (("val", val_fraction), ("test", test_fraction))}
    pool = [i for i, g in enumerate(given) if g in (None, "train")]
    out = [g or "train" for g in given]
    if not pool or (fractions["val"] == 0 and fractions["test"] == 0):
        return out
    if groups is not None:
        pool_labels = [labels[i] for i in pool] if labels is not None else [0] * len(pool)
        parts = group_split([groups[i] for i in pool], pool_labels, fractions["val"], fractions["test"], seed)
    elif order is not None:
        _check_fractions(fractions["val"], fractions["test"])
        ranked = sorted(range(len(pool)), key=lambda k: (order[pool[k]], k))
        n = len(pool)
        n_test = int(round(n * fractions["test"]))
        n_val = int(round(n * fractions["val"]))
        cut_val, cut_test = n - n_test - n_val, n - n_test
        parts = (ranked[:cut_val], ranked[cut_val:cut_test], ranked[cut_test:])
    elif labels is not None:
        parts = stratified_split([labels[i] for i in pool], fractions["val"], fractions["test"], seed)
    else:
        parts = random_split(len(pool), fractions["val"], fractions["test"], seed)
    for split, part in zip(SPLITS, parts, strict=True):
        for k in part:
            out[pool[k]] = split
    return out


def indices(assigned: Sequence[str]) -> dict[str, list[int]]:
    """split -> the indices assigned to it (all three keys, possibly empty)."""
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    for i, s in enumerate(assigned):
        out[s].append(i)
    return out
