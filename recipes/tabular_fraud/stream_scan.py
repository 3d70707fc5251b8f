"""Tables larger than memory, part one: when to stream, how each row finds its split, and the one pass
over the table that counts the splits and their labels, checks every row, and keeps a bounded sample.

Splits come from a hash of each row's feature values and the seed, so the same row always lands in the
same split, chunk by chunk and run after run: identical rows share a split (no leakage, the in-memory
path's rule), and a split the data does not give is carved out of the rest by its fraction (not
stratified: at the sizes that stream, each split gets the fraction's share of every class).

The sample is the `data.stream_sample` training (and validation) rows with the smallest hash of their
row number: a uniform, seeded sample whatever the chunking. The cleaning pipeline and the baselines are
fitted on it; row and label counts are exact.
"""

from __future__ import annotations

import os
import resource
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from dlkit_recipes.tabular_fraud.data import ALL

from dlkit.data.cleaning import binary_target, numbers
from dlkit.data.features import TRUE_WORDS, category_strings
from dlkit.data.splits import SPLITS, parse_split_column
from dlkit.data.tables import iter_table, require_columns

CHUNK_ROWS = 50_000  # rows read and cleaned at a time
# data.stream_above=auto: stream tables bigger on disk than this share of the free memory (the in-memory
# path peaks at 20-30x a CSV's size: pandas objects, cleaned copies, the baselines; bench/stream_memory.py)
AUTO_SHARE = 1 / 30
TRAIN, VAL, TEST = range(3)


def available_memory() -> int:
    """Bytes this process may still use: the free system memory, or less under a cgroup (v2) limit or
    a data-size limit (`ulimit -d`, counted from zero: imports alone use part of it)."""
    free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    for limit in (resource.RLIMIT_DATA, resource.RLIMIT_AS):
        soft = resource.getrlimit(limit)[0]
        if soft != resource.RLIM_INFINITY:
            free = min(free, soft)
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            free = min(free, int(limit) - used)
    except (OSError, ValueError):
        pass
    return max(free, 0)


def should_stream(srcs: dict[str, list[Path]], above: float | str) -> bool:
    """`data.stream_above` (MB of table files; auto: AUTO_SHARE of the free memory) against the size of
    the tables on disk."""
    size = sum(p.stat().st_size for files in srcs.values() for p in files)
    limit = AUTO_SHARE * available_memory() if above == "auto" else float(above) * 2**20
    return size > limit


@dataclass
class StreamPlan:
    """Where the rows are and what decides which split each one is in (the run's state keeps `carve`,
    so evaluate and resume find the same splits)."""

    sources: dict[str, list[str]]  # split (or 'all') -> table files
    label: str
    split_column: str
    encoding: str
    seed: int
    carve: dict[str, float]  # val/test -> the share of unassigned rows carved out (0: the data gives it)
    evaluate_all: bool = False  # new labelled data for `dlkit evaluate --data`: every row is test

    def chunks(self) -> Iterator[tuple[str, Path, pd.DataFrame]]:
        """(source split, file, chunk) with rows indexed by their place in the file (errors name them),
        rows without a label dropped."""
        for split, files in self.sources.items():
            for name in files:
                offset = 0
                for chunk in iter_table(Path(name), CHUNK_ROWS, self.encoding):
                    chunk.index = pd.RangeIndex(offset, offset + len(chunk))
                    offset += len(chunk)
                    if self.label in chunk.columns:
                        chunk = chunk[chunk[self.label].notna()]
                    yield split, Path(name), chunk

    def assign(self, split: str, source: Path, chunk: pd.DataFrame) -> np.ndarray:
        """TRAIN/VAL/TEST for each row: the split its file or split column gives, else (train rows too,
        when the data gives no val or test) by the hash of its features."""
        if self.evaluate_all:
            return np.full(len(chunk), TEST, dtype=np.int8)
        if split != ALL:
            given = np.full(len(chunk), SPLITS.index(split), dtype=np.int8)
        elif self.split_column in chunk.columns:
            names = parse_split_column(
                chunk[self.split_column].tolist(), str(source), int(chunk.index[0]) + 2
            )
            given = np.array([TRAIN if n is None else SPLITS.index(n) for n in names], dtype=np.int8)
        else:
            given = np.zeros(len(chunk), dtype=np.int8)
        if not any(self.carve.values()):
            return given
        share = feature_hashes(chunk, [self.label, self.split_column], self.seed) / 2.0**64
        carved = np.where(share < self.carve["test"], TEST, TRAIN)
        carved[(share >= self.carve["test"]) & (share < self.carve["test"] + self.carve["val"])] = VAL
        return np.where(given == TRAIN, carved, given).astype(np.int8)


def feature_hashes(chunk: pd.DataFrame, exclude: list[str], seed: int) -> np.ndarray:
    """A seeded 64-bit hash of each row's feature values, the same for the same values in any chunk:
    numbers are hashed as float64 (a column read as integers in one chunk and floats in another)."""
    columns = [c for c in chunk.columns if c not in exclude]
    values = pd.DataFrame(
        {
            c: chunk[c].astype(np.float64) if pd.api.types.is_numeric_dtype(chunk[c].dtype) else chunk[c]
            for c in columns
        }
    )
    return pd.util.hash_pandas_object(values, index=False, hash_key=_key(seed)).to_numpy()


def _key(seed: int) -> str:
    return f"{seed % 10**11:011d}dlkit"  # hash_pandas_object takes a 16-character key


def make_plan(srcs: dict[str, list[Path]], cfg: dict, evaluate_all: bool = False) -> StreamPlan:
    """The plan for these sources; a val or test split is carved only when the data gives none (a split
    column's values are looked at in a pass over that column alone)."""
    d = cfg["data"]
    present = {s for s in srcs if s != ALL}
    if ALL in srcs:
        source = srcs[ALL][0]
        reader = iter_table(source, 1, d["encoding"])
        head = next(reader)
        reader.close()
        if d["split_column"] in head.columns:
            offset = 0
            for chunk in iter_table(source, 1 << 20, d["encoding"], columns=[d["split_column"]]):
                present |= {
                    n for n in parse_split_column(chunk.iloc[:, 0].tolist(), str(source), offset + 2) if n
                }
                offset += len(chunk)
    carve = {s: 0.0 if s in present else float(d[f"{s}_fraction"]) for s in ("val", "test")}
    return StreamPlan(
        {s: [str(p) for p in files] for s, files in srcs.items()},
        d["label"],
        d["split_column"],
        d["encoding"],
        int(cfg["seed"]),
        carve,
        evaluate_all,
    )


@dataclass
class Scan:
    """What one pass over the table found."""

    label_counts: list[Counter] = field(default_factory=lambda: [Counter() for _ in SPLITS])
    ids: dict[int, list[np.ndarray]] = field(default_factory=lambda: {VAL: [], TEST: []})
    codes: dict[int, list[np.ndarray]] = field(default_factory=lambda: {VAL: [], TEST: []})
    vocabulary: dict[str, int] = field(default_factory=dict)  # label value -> its code in `codes`
    samples: dict[int, pd.DataFrame] = field(default_factory=dict)  # TRAIN/VAL -> the sampled raw rows
    missing_labels: int = 0

    def rows(self, split: int) -> int:
        return sum(self.label_counts[split].values())

    def labels(self, split: int, classes: list[str]) -> np.ndarray:
        """0/1 labels of a val/test split's rows, in file order."""
        codes = np.concatenate(self.codes[split]) if self.codes[split] else np.zeros(0, np.int16)
        return (codes == self.vocabulary.get(classes[1], -1)).astype(np.int8)  # 1 byte a row

    def row_ids(self, split: int) -> np.ndarray:
        return np.concatenate(self.ids[split]) if self.ids[split] else np.zeros(0, np.int64)


def scan(plan: StreamPlan, sample_rows: int, declared: set[str] = frozenset()) -> Scan:
    """One pass: each row's split, label counts per split, the val rows' ids, val/test labels, a seeded
    sample of `sample_rows` training and validation rows (none when 0), and every row checked: a value
    that is not a number in a column that is numeric in the table's first chunk stops here, named by file
    and row, before any training (columns `declared` another type in clean.types are left alone)."""
    found, offset, numeric_columns = Scan(), 0, None
    exclude = {plan.label, plan.split_column}
    for split, source, chunk in plan.chunks():
        require_columns(chunk, [plan.label], source, "label column")
        if numeric_columns is None:
            numeric_columns = {
                c
                for c in chunk.columns
                if c not in exclude | declared and pd.api.types.is_numeric_dtype(chunk[c].dtype)
            }
        for column in numeric_columns & set(chunk.columns):
            if not pd.api.types.is_numeric_dtype(chunk[column].dtype):
                numbers(chunk[column], f"'{source}'")  # raises, naming the row
        assigned = plan.assign(split, source, chunk)
        strings = category_strings(chunk[plan.label])
        for value in strings.unique():
            found.vocabulary.setdefault(value, len(found.vocabulary))
        codes = strings.map(found.vocabulary).to_numpy(dtype=np.int16)
        ids = offset + np.arange(len(chunk), dtype=np.int64)  # a row's id: its place among labelled rows
        for part in (TRAIN, VAL, TEST):
            mask = assigned == part
            found.label_counts[part].update(strings[mask].value_counts().to_dict())
            if part == VAL:
                found.ids[part].append(ids[mask])
            if part != TRAIN:
                found.codes[part].append(codes[mask])
            if sample_rows and part != TEST and mask.any():
                _keep_smallest(found.samples, part, chunk[mask], ids[mask], sample_rows, plan.seed)
        offset += len(chunk)
    for part in list(found.samples):
        found.samples[part] = found.samples[part].sort_index(kind="stable").drop(columns="__key")
    return found


def _keep_smallest(samples: dict, part: int, rows: pd.DataFrame, ids: np.ndarray, size: int, seed: int):
    """Bottom-k sampling: keep the `size` rows with the smallest seeded hash of their id."""
    keyed = rows.assign(__key=pd.util.hash_array(ids.astype(np.uint64), hash_key=_key(seed)))
    joined = keyed if part not in samples else pd.concat([samples[part], keyed])
    samples[part] = joined.nsmallest(size, "__key") if len(joined) > size else joined


def classes_of(counts: Counter, positive: str | None, label: str, where: str) -> list[str]:
    """[negative, positive] from the training rows' label counts, by the in-memory rule: the value
    given, else the one that reads as true/fraud, else the rarer."""
    if positive is None and len(counts) == 2:
        known = [v for v in counts if v.strip().lower() in TRUE_WORDS | {"fraud", "positive", "pos"}]
        positive = known[0] if len(known) == 1 else min(sorted(counts), key=counts.get)
    return binary_target(pd.Series(sorted(counts), name=label, dtype=object), positive, where)[1]
