"""Tables of texts (sentiment, translation): reading, cleaning, de-duplication and padded batches.

The NLP recipes share these stages so that every text table gets the same treatment: columns read
with the configured encoding and named in errors, texts cleaned with `dlkit.text.clean_text`, empty
and duplicate texts dropped and counted, and conflicting labels for the same text reported.
Batches are padded to their longest member only (dynamic padding), and evaluation sets can be put
in length order so that each batch holds texts of similar length (length bucketing).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from dlkit.data.tables import read_table, require_columns
from dlkit.errors import UserError
from dlkit.text import clean_text


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


def length_order(lengths: Sequence[int]) -> list[int]:
    """Indices sorted by length (stable): batches drawn in this order hold similar lengths, so
    dynamic padding wastes little. For evaluation and prediction, where order does not matter."""
    return sorted(range(len(lengths)), key=lambda i: lengths[i])


def pad_collate(items: list[dict], pad_values: dict[str, int], masks: dict[str, str] | None = None) -> dict:
    """Batch dataset items holding token-id lists, padding each list key to the batch's longest.

    `pad_values` names the keys to pad and the value to pad with (the tokenizer's pad id, or -100
    for labels the loss should ignore); `masks` maps a padded key to the name of the 0/1 mask
    built for it, e.g. {"input_ids": "attention_mask"}. Other tensor values are stacked, numbers
    become tensors, and everything else (ids, texts) stays a list.
    """
    masks = {"input_ids": "attention_mask"} if masks is None else masks
    batch: dict = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if key in pad_values:
            longest = max(len(v) for v in values)
            padded = torch.full((len(values), longest), pad_values[key], dtype=torch.long)
            mask = torch.zeros((len(values), longest), dtype=torch.long)
            for row, seq in enumerate(values):
                padded[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
                mask[row, : len(seq)] = 1
            batch[key] = padded
            if key in masks:
                batch[masks[key]] = mask
        elif isinstance(values[0], torch.Tensor):
            batch[key] = torch.stack(values)
        elif isinstance(values[0], (int, float)) and not isinstance(values[0], bool):
            batch[key] = torch.tensor(values)
        else:
            batch[key] = values
    return batch
