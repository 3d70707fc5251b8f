"""Sentence-pair tables -> cleaned pairs, splits and tokenised datasets; predict inputs."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from torch.utils.data import Dataset

from dlkit import hf
from dlkit.data.inputs import expand_inputs
from dlkit.data.splits import assign_splits, indices
from dlkit.data.tables import FORMATS
from dlkit.data.textdata import clean_text, read_text_table, read_text_tables
from dlkit.errors import UserError

WHAT = "source and target"
INPUT_KINDS = "text files (.txt, one sentence per line) or CSV/TSV/JSONL/Parquet tables"


# --- cleaning ------------------------------------------------------------------------------
@dataclass
class Cleaned:
    """Which pairs survived the filters, how many each filter removed, and what was only reported."""

    kept: list[int]
    removed: dict[str, int] = field(default_factory=dict)
    identical: int = 0
    median_ratio: float = 1.0

    def summary(self) -> str:
        return ", ".join(f"{reason}: {n}" for reason, n in self.removed.items()) or "nothing removed"


def _length_ratio(source: str, target: str) -> float:
    return (len(target) + 1) / (len(source) + 1)


def clean_pairs(
    pairs: list[tuple[str, str]], max_chars: int, max_ratio: float, median_ratio: float | None = None
) -> Cleaned:
    """Parallel-text filters, in order: an empty side, exact duplicate pairs, over-long pairs, misalignment.

    The length-ratio filter compares each pair's target/source length ratio with the corpus median
    (fitted on the training run and reused later), so it suits any language pair, English->Chinese as
    well as English->French: a pair more than `max_ratio` times off the median is likely misaligned.
    """
    removed = {"empty side": 0, "exact duplicates": 0, f"longer than {max_chars} characters": 0}
    seen: set[tuple[str, str]] = set()
    candidates = []
    for i, pair in enumerate(pairs):
        if not pair[0] or not pair[1]:
            removed["empty side"] += 1
        elif pair in seen:
            removed["exact duplicates"] += 1
        elif max_chars and max(len(pair[0]), len(pair[1])) > max_chars:
            seen.add(pair)
            removed[f"longer than {max_chars} characters"] += 1
        else:
            seen.add(pair)
            candidates.append(i)
    ratios = {i: _length_ratio(*pairs[i]) for i in candidates}
    if median_ratio is None:
        median_ratio = statistics.median(ratios.values()) if ratios else 1.0
    kept = candidates
    if max_ratio:
        label = f"length ratio over {max_ratio:g}x the median ({median_ratio:.2f})"
        kept = [i for i in candidates if max(ratios[i] / median_ratio, median_ratio / ratios[i]) <= max_ratio]
        removed[label] = len(candidates) - len(kept)
    identical = sum(pairs[i][0] == pairs[i][1] for i in kept)
    return Cleaned(kept, {k: v for k, v in removed.items() if v}, identical, median_ratio)


def clean(
    path: Path, pairs: list[tuple[str, str]], d: dict, median_ratio: float | None
) -> tuple[Cleaned, list[str]]:
    """`clean_pairs` with the configured filters, refusing a corpus with nothing left; notes for the user."""
    cleaned = clean_pairs(pairs, d["max_chars"], d["max_length_ratio"], median_ratio)
    if not cleaned.kept:
        raise UserError(
            f"no sentence pairs left in '{path}' after cleaning ({len(pairs)} rows read; removed by "
            f"{cleaned.summary()})",
            "check data.source_column / data.target_column point at the text columns, or relax "
            "data.max_chars / data.max_length_ratio",
        )
    notes = []
    if cleaned.removed:
        dropped = len(pairs) - len(cleaned.kept)
        notes.append(f"cleaning removed {dropped} of {len(pairs)} pairs in '{path}' ({cleaned.summary()})")
    if cleaned.identical:
        notes.append(
            f"{cleaned.identical} pair(s) have a target identical to the source (kept; many of them suggest "
            "untranslated rows)"
        )
    targets = [pairs[i][1] for i in cleaned.kept]
    if sum(t.endswith(" .") for t in targets) > len(targets) / 2:
        notes.append(
            "most targets look tokenized ('word .'): sacreBLEU expects detokenized text, so BLEU here is "
            "not comparable with published scores"
        )
    return cleaned, notes


# --- reading and splitting -------------------------------------------------------------------
def read_pairs(path: Path, d: dict) -> tuple[list[tuple[str, str]], list[str | None]]:
    """(source, target) pairs of every table, cleaned as text, and each pair's split (None = to assign)."""
    columns = [d["source_column"], d["target_column"]]
    pairs: list[tuple[str, str]] = []
    splits: list[str | None] = []
    for _, frame in read_text_tables(path, columns, d["encoding"], WHAT):
        pairs += list(zip(*(frame[c].map(clean_text) for c in columns), strict=True))
        splits += [s if isinstance(s, str) else None for s in frame["_split"]]
    return pairs, splits


def split_pairs(given: list[str | None], cfg: dict) -> tuple[dict[str, list[int]], str | None]:
    """Indices per split (given splits kept, missing ones carved out of train at random) and a note on
    the validation cap: a validation split over `data.max_val_pairs` is cut; the pairs cut from an
    assigned one join training, from a given one they are left out."""
    d = cfg["data"]
    groups = indices(assign_splits(given, d["val_fraction"], d["test_fraction"], cfg["seed"]))
    cap = d["max_val_pairs"]
    if not cap or len(groups["val"]) <= cap:
        return groups, None
    given_val = "val" in given
    extra = groups["val"][cap:]
    groups["val"] = groups["val"][:cap]
    if not given_val:
        groups["train"] = sorted(groups["train"] + extra)
    return groups, (
        f"validation uses {cap} pairs (data.max_val_pairs); the other {len(extra)} "
        + ("are left out" if given_val else "joined training")
    )


# --- datasets ------------------------------------------------------------------------------
class PairSet(Dataset):
    """Tokenised sentence pairs as dicts {'input_ids', 'labels', 'source', 'target', 'id'}.

    Without targets (predict) items have no labels. Sources and targets stay as text so that
    evaluation scores the untouched references, not a detokenised copy of them (and baselines
    translate the very sources the model saw).
    """

    def __init__(self, sources: list[str], targets: list[str] | None, ids: list, encoded: dict, order=None):
        order = range(len(sources)) if order is None else order
        self.sources = [sources[i] for i in order]
        self.ids = [ids[i] for i in order]
        self.input_ids = [encoded["input_ids"][i] for i in order]
        self.targets = [targets[i] for i in order] if targets is not None else None
        self.labels = [encoded["labels"][i] for i in order] if targets is not None else None

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, i: int) -> dict:
        item = {"input_ids": self.input_ids[i], "source": self.sources[i], "id": self.ids[i]}
        if self.labels is not None:
            item["labels"] = self.labels[i]
            item["target"] = self.targets[i]
        return item


def encode(tokenizer, cfg: dict, sources: list[str], targets: list[str] | None, drafter=None) -> dict:
    """Token ids of sources (after model.source_prefix), and of targets if given; cut at data.max_length.

    With drafting on (drafts.py) the input is the text pair `draft [SEP] source`: the draft comes first
    so that its i-th token sits at encoder position i, near the decoder's position i in the translation
    (both are in the target language, in roughly the same order); behind a source of varying length the
    offset would vary and a model from scratch learns to copy from it far more slowly. The longest
    segment is truncated first."""
    if not sources:
        return {"input_ids": [], "labels": [] if targets is not None else None}
    prefixed = [cfg["model"]["source_prefix"] + s for s in sources]
    first, second = (drafter(sources, targets), prefixed) if drafter else (prefixed, None)
    return tokenizer(
        first,
        second,
        text_target=targets,
        truncation=True,
        max_length=cfg["data"]["max_length"],
    )


def pair_set(
    tokenizer, cfg: dict, pairs: list[tuple[str, str]], ids: list, by_length: bool, drafter=None
) -> PairSet:
    """A split's dataset; evaluation sets in source-length order, so a batch's sentences pad (and, in beam
    search, finish) together."""
    sources, targets = [s for s, _ in pairs], [t for _, t in pairs]
    encoded = encode(tokenizer, cfg, sources, targets, drafter)
    order = hf.length_order([len(t) for t in encoded["input_ids"]]) if by_length else None
    return PairSet(sources, targets, ids, encoded, order)


# --- predict inputs ------------------------------------------------------------------------
def sentences(raw: str, d: dict) -> list[str]:
    """One predict argument -> sentences: a table's source column, a text file (one a line), the files of a
    folder, or the argument itself."""
    if not raw.strip():
        return [""]
    path = Path(raw).expanduser()
    if not path.exists():
        if path.suffix.lower() in FORMATS and not any(c.isspace() for c in raw):
            raise UserError(
                f"input file '{raw}' does not exist",
                "to translate text that looks like a file name, add a space or punctuation",
            )
        return [clean_text(raw)]
    out: list[str] = []
    for file in expand_inputs([raw], lambda p: p.suffix.lower() in FORMATS, INPUT_KINDS):
        if file.suffix.lower() != ".txt":
            column = d["source_column"]
            out += read_text_table(file, [column], d["encoding"])[column].map(clean_text).tolist()
            continue
        try:
            out += [clean_text(line) for line in file.read_text(encoding=d["encoding"]).splitlines()]
        except UnicodeDecodeError as exc:
            raise UserError(
                f"'{file}' is not valid {d['encoding']} text ({exc.reason})",
                "pass its encoding, e.g. data.encoding=latin-1",
            ) from None
    return out


def predict_set(inputs: list[str], tokenizer, cfg: dict, drafter=None) -> PairSet:
    """Inputs in blocks of source-length order (one block per predict chunk); ids keep the input order."""
    found = [s for raw in inputs for s in sentences(raw, cfg["data"])]
    if found and not any(found):
        raise UserError(
            "nothing to translate: every input is empty",
            "pass a sentence in quotes, or a text file with one sentence per line",
        )
    encoded = encode(tokenizer, cfg, found, None, drafter)
    order = hf.length_order([len(t) for t in encoded["input_ids"]], hf.predict_block(cfg))
    return PairSet(found, None, list(range(len(found))), encoded, order)
