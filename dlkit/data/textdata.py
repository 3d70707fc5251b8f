"""Tables of texts (sentiment, translation): layouts, reading, cleaning and de-duplication.

The NLP recipes share these stages so that every text table gets the same treatment:
- layouts (`read_text_tables`): one table (with an optional `split` column), a folder of split tables
  (train.tsv, dev.csv, test.jsonl...), or a folder of split folders (train/, valid/, test/) each
  holding one table; split names through `dlkit.data.splits`, so every alias works everywhere;
- columns read with the configured encoding and named in errors; texts cleaned with `clean_text`
  (Unicode NFKC, HTML removed, whitespace collapsed);
- empty and duplicate texts dropped and counted, and conflicting labels for the same text reported.

Tokenizers, dynamic padding and length ordering are Hugging Face glue: see `dlkit.hf`.
"""

from __future__ import annotations

import html
import re
import unicodedata
from pathlib import Path

import pandas as pd

from dlkit.data.splits import ALIAS_TEXT, SPLITS, parse_split_column, split_dirs, split_files
from dlkit.data.tables import FORMATS, read_table, require_columns
from dlkit.errors import UserError

SPLIT_COLUMN = "split"
_TAG = re.compile(r"<[^>]{0,200}>")
_SPACE = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """Unicode NFKC, HTML tags and entities removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", str(text))
    text = html.unescape(_TAG.sub(" ", text))
    return _SPACE.sub(" ", text).strip()


# --- layouts -------------------------------------------------------------------------------------
def _tables_in(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in FORMATS and not p.name.startswith(".")
    )


def find_tables(path: Path, what: str) -> list[tuple[str | None, Path]]:
    """(split or None, table file) for a data path; `what` ("text,label") goes in the hints.

    A table file; a folder of split folders (train/, val|valid|validation|dev/, test/) each holding one
    table; a folder of split tables (train.csv, dev.tsv, test.jsonl...); or a folder holding one table.
    Split tables come in train, val, test order (so de-duplication keeps a text in train).
    """
    if path.is_file():
        return [(None, path)]
    dirs, files = split_dirs(path), split_files(path, tuple(FORMATS))
    if dirs and files:
        raise UserError(
            f"'{path}' holds both split folders ({', '.join(p.name + '/' for p in dirs.values())}) and "
            f"split tables ({', '.join(p.name for p in files.values())})",
            "keep one layout: split tables, or split folders each holding one table",
        )
    if dirs:
        found = []
        for split, folder in dirs.items():
            tables = _tables_in(folder)
            if len(tables) != 1:
                names = ", ".join(p.name for p in tables) or "none"
                raise UserError(
                    f"split folder '{folder}' should hold one table of {what} (found: {names})",
                    "put one CSV, TSV, JSONL or Parquet file in each of train/, val/ and test/",
                )
            found.append((split, tables[0]))
        return sorted(found, key=lambda item: SPLITS.index(item[0]))
    if files:
        return sorted(files.items(), key=lambda item: SPLITS.index(item[0]))
    tables = _tables_in(path)
    if len(tables) == 1:
        return [(None, tables[0])]
    names = ", ".join(p.name for p in tables) or "none"
    raise UserError(
        f"data folder '{path}' should hold one table, split tables (train, val, test) or split folders "
        f"(found: {names})",
        f"pass --data PATH to a CSV, TSV or JSONL file with {what} columns; split names: {ALIAS_TEXT}",
    )


def read_text_tables(
    path: Path, columns: list[str], encoding: str, what: str
) -> list[tuple[Path, pd.DataFrame]]:
    """Every table of a data path (see `find_tables`) as (file, rows), the rows holding `columns` as
    strings and each row's split in `_split`: the table's split, else its `split` column (any alias),
    else None (to be assigned)."""
    out = []
    for split, file in find_tables(path, what):
        frame = read_text_table(file, columns, encoding)
        if split is not None:
            frame["_split"] = split
        elif SPLIT_COLUMN in frame.columns and SPLIT_COLUMN not in columns:
            frame["_split"] = parse_split_column(frame[SPLIT_COLUMN], str(file))
        else:
            frame["_split"] = None
        out.append((file, frame))
    return out


# --- reading and cleaning ------------------------------------------------------------------------
def read_text_table(path: Path, columns: list[str], encoding: str = "utf-8") -> pd.DataFrame:
    """The table's rows with `columns` as strings (missing cells become ""); other columns are kept.

    A missing column is refused with the names of those present; a wrong encoding with a hint to
    pass `data.encoding`.
    """
    frame = read_table(path, encoding=encoding)
    require_columns(frame, columns, path)
    frame = frame.reset_index(drop=True)
    for column in columns:
        frame[column] = frame[column].map(_as_text)
    return frame


def _as_text(value) -> str:
    """A cell as text; whole floats lose their '.0' (a label column with a gap reads 1 as 1.0)."""
    if pd.isna(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def clean_text_columns(frame: pd.DataFrame, columns: list[str], path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Clean every text column and drop rows where any of them is empty afterwards.

    Returns the kept rows and notes counting what was dropped. If nothing is left the data cannot
    be used at all, so that is an error naming the column.
    """
    frame = frame.copy()
    for column in columns:
        frame[column] = frame[column].map(clean_text)
    empty = (frame[columns] == "").any(axis=1)
    if empty.all():
        names = " or ".join(f"'{c}'" for c in columns)
        raise UserError(
            f"every row of '{path}' has an empty text in column {names} (after removing HTML and whitespace)",
            "check that the configured text column is the one holding the texts",
        )
    notes = [f"dropped {int(empty.sum())} row(s) with an empty text in '{path}'"] if empty.any() else []
    return frame[~empty].reset_index(drop=True), notes


def drop_duplicate_texts(
    frame: pd.DataFrame,
    key: list[str],
    label: str | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Keep one row per distinct `key` (e.g. the text), so no text can sit in both train and test.

    With a `label` column, a text seen with different labels keeps its most frequent label (the
    first seen on a tie) and is reported, since such conflicts are usually labelling mistakes.
    """
    notes: list[str] = []
    if label is not None:
        conflicts = _label_conflicts(frame, key, label)
        if conflicts:
            examples = "; ".join(
                f"{text[:40]!r}: {'/'.join(labels)}" for text, labels in list(conflicts.items())[:3]
            )
            notes.append(
                f"{len(conflicts)} text(s) appear with different labels (kept the most frequent "
                f"label of each): {examples}"
            )
            frame = _majority_label(frame, key, label)
    kept = frame.drop_duplicates(subset=key, keep="first").reset_index(drop=True)
    if len(kept) < len(frame):
        notes.append(f"dropped {len(frame) - len(kept)} duplicate row(s)")
    return kept, notes


def _label_conflicts(frame: pd.DataFrame, key: list[str], label: str) -> dict[str, list[str]]:
    """Text (the key columns joined by ' | ') -> its distinct labels, for texts with more than one."""
    groups = frame.groupby(key, sort=False)[label].unique()
    out = {}
    for text, labels in groups.items():
        if len(labels) > 1:
            joined = " | ".join(text) if isinstance(text, tuple) else str(text)
            out[joined] = sorted(map(str, labels))
    return out


def _majority_label(frame: pd.DataFrame, key: list[str], label: str) -> pd.DataFrame:
    """Set each key's label to its most frequent one, counting in order of appearance for ties."""
    counts = frame.groupby(key + [label], sort=False).size().reset_index(name="_n")
    best = counts.loc[counts.groupby(key, sort=False)["_n"].idxmax(), key + [label]]
    return frame.drop(columns=[label]).merge(best, on=key, how="left")[frame.columns]
