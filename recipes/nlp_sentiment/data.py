"""Text/label tables -> cleaned rows, splits, the fitted state (labels, tokenizer) and token-id datasets."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from torch.utils.data import Dataset

from dlkit import hf
from dlkit.data.inputs import expand_inputs
from dlkit.data.splits import SPLITS, assign_splits
from dlkit.data.tables import FORMATS
from dlkit.data.textdata import (
    clean_text,
    clean_text_columns,
    drop_duplicate_texts,
    read_text_table,
    read_text_tables,
)
from dlkit.errors import UserError

SCRATCH = ("ngram", "bert-tiny", "rnn")  # model names dlkit builds itself; anything else is a checkpoint
WORDS_PER_TOKEN, VOCAB_RANGE = 32, (1000, 8000)  # model.vocab_size=auto
WHAT = "text and label"
INPUT_KINDS = "text files (.txt, one text per line) or CSV/TSV/JSONL/Parquet tables"


class TextSet(Dataset):
    """Token-id lists with labels (-1 when unknown) as dicts {'input_ids', 'label', 'text', 'id'}, plus
    'weights' (each id's TF-IDF weight) for model.name=ngram, whose ids are n-gram features.

    The cleaned text travels with each item, so baselines score the very texts the model saw.
    """

    def __init__(
        self,
        ids: list,
        texts: list[str],
        token_ids: list[list[int]],
        labels: list[int],
        order=None,
        weights: list[list[float]] | None = None,
    ):
        order = range(len(texts)) if order is None else order
        self.ids = [ids[i] for i in order]
        self.texts = [texts[i] for i in order]
        self.token_ids = [token_ids[i] for i in order]
        self.labels = [labels[i] for i in order]
        self.weights = None if weights is None else [weights[i] for i in order]

    def __len__(self) -> int:
        return len(self.token_ids)

    def __getitem__(self, i: int) -> dict:
        item = {
            "input_ids": self.token_ids[i],
            "label": self.labels[i],
            "text": self.texts[i],
            "id": self.ids[i],
        }
        if self.weights is not None:
            item["weights"] = self.weights[i]
        return item


# --- rows and splits ---------------------------------------------------------------------------
def read_rows(path: Path, d: dict) -> tuple[pd.DataFrame, list[str]]:
    """Cleaned, de-duplicated rows (text, label, _split) of every table, and notes on what was dropped."""
    text, label = d["text_column"], d["label_column"]
    frames, notes = [], []
    for file, frame in read_text_tables(path, [text, label], d["encoding"], WHAT):
        frame, dropped = clean_text_columns(frame, [text], file)
        notes += dropped
        frame[label] = frame[label].str.strip()
        unlabelled = frame[label] == ""
        if unlabelled.all():
            raise UserError(
                f"column '{label}' of '{file}' is empty in every row",
                "point data.label_column at the column holding the labels",
            )
        if unlabelled.any():
            notes.append(f"dropped {int(unlabelled.sum())} row(s) without a label in '{file}'")
        frames.append(frame[~unlabelled][[text, label, "_split"]])
    rows, dup_notes = drop_duplicate_texts(pd.concat(frames, ignore_index=True), [text], label)
    return rows, notes + dup_notes


def split_rows(rows: pd.DataFrame, cfg: dict, path: Path) -> dict[str, pd.DataFrame]:
    """Given splits are kept; a missing val or test is carved out of train, stratified by label."""
    d = cfg["data"]
    assigned = assign_splits(
        [s if isinstance(s, str) else None for s in rows["_split"]],
        d["val_fraction"],
        d["test_fraction"],
        cfg["seed"],
        labels=rows[d["label_column"]].tolist(),
    )
    splits = {s: rows[[a == s for a in assigned]] for s in SPLITS}
    empty = [s for s, frame in splits.items() if frame.empty]
    if empty:
        raise UserError(
            f"'{path}' has only {len(rows)} usable labelled texts: too few for a {' and '.join(empty)} split",
            "add data (at least 3 texts per label), or give train/val/test in a 'split' column",
        )
    return splits


# --- the fitted state ----------------------------------------------------------------------------
def fit_state(train: pd.DataFrame, cfg: dict, path: Path) -> tuple[dict, object]:
    """Labels, the tokenizer (trained on the training texts, or the checkpoint's) and the model config,
    fitted on the training split; also the tokenizer object itself."""
    d, m = cfg["data"], cfg["model"]
    counts = train[d["label_column"]].value_counts()
    classes = sorted(counts.index, key=str)
    if len(classes) < 2:
        raise UserError(
            f"the training data in '{path}' has a single class in column '{d['label_column']}' "
            f"({classes[0]!r})",
            "sentiment classification needs two or more labels",
        )
    state: dict = {
        "classes": classes,
        "class_counts": {c: int(counts[c]) for c in classes},
        "architecture": m["name"] if m["name"] in SCRATCH else "checkpoint",
    }
    if m["name"] == "ngram":  # its features are the n-gram vocabulary fitted with the linear baseline
        state["max_length"] = d["max_length"]
        tokenizer = None
    elif m["name"] in SCRATCH:
        texts = train[d["text_column"]].tolist()
        tokenizer = hf.train_tokenizer(
            texts, vocab_size(m["vocab_size"], texts), m["tokenizer"], m["lowercase"]
        )
        state.update(
            tokenizer=hf.tokenizer_state(tokenizer, trained=True),
            pad_id=tokenizer.pad_token_id,
            vocab_size=len(tokenizer),
            max_length=d["max_length"],
        )
    else:
        tokenizer = _checkpoint_state(state, m["name"], d["max_length"])
    return state, tokenizer


def vocab_size(setting: int | str, texts: list[str]) -> int:
    """`model.vocab_size=auto`: one subword per WORDS_PER_TOKEN words of training text, within VOCAB_RANGE.

    Trained from scratch on a few thousand texts, a large vocabulary is mostly rare tokens whose
    embeddings the model memorises: on 3.9k real review snippets (~72k words) 2,000 tokens instead of
    8,000 left the training loss at 0.40 instead of 0.22 after three epochs and gave 0.726 test accuracy
    instead of 0.708 (one seed; seeds differ by about a point), bench/quality. Larger corpora get more
    tokens, up to the usual 8,000."""
    if setting != "auto":
        return int(setting)
    words = sum(len(t.split()) for t in texts)
    return min(VOCAB_RANGE[1], max(VOCAB_RANGE[0], words // WORDS_PER_TOKEN))


def _checkpoint_state(state: dict, name: str, max_length: int):
    """Config (with our labels) and tokenizer of a local or cached hub checkpoint, into the state."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

    classes = state["classes"]
    builtin = " or ".join(SCRATCH)
    config = hf.load_config(
        name,
        builtin=builtin,
        id2label=dict(enumerate(classes)),
        label2id={c: i for i, c in enumerate(classes)},
    )
    if type(config) not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING:
        raise UserError(
            f"model.name '{name}' is a {config.model_type} checkpoint, which transformers cannot use for "
            "sequence classification",
            "choose a text encoder such as BERT or RoBERTa",
        )
    tokenizer = hf.load_tokenizer(name, builtin=builtin)
    if not getattr(tokenizer, "is_fast", False):
        raise UserError(
            f"the tokenizer of '{name}' has no fast (tokenizers) version",
            "save the checkpoint with a tokenizer.json, or use model.name=bert-tiny",
        )
    pad_id = tokenizer.pad_token_id
    if pad_id is None:  # e.g. GPT-2: pad with end-of-text, which the model must also know
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        config.pad_token_id = pad_id
    limit = tokenizer.model_max_length
    if limit >= 100_000:  # "no limit" in transformers: the position embeddings are the limit
        limit = getattr(config, "max_position_embeddings", max_length)
    state.update(
        checkpoint=hf.source(name),
        tokenizer=hf.tokenizer_state(tokenizer, trained=False),
        pad_id=pad_id,
        vocab_size=len(tokenizer),
        max_length=min(max_length, limit),
        hf_config=config.to_dict(),
    )
    return tokenizer


# --- datasets ----------------------------------------------------------------------------------
def text_set(frame: pd.DataFrame, cfg: dict, state: dict, tokenizer, by_length: bool) -> tuple[TextSet, int]:
    """A split's dataset (evaluation ones in length order) and how many of its texts were truncated."""
    d = cfg["data"]
    index = {c: i for i, c in enumerate(state["classes"])}
    texts = frame[d["text_column"]].tolist()
    token_ids, weights, truncated = encode_texts(texts, state, tokenizer)
    order = hf.length_order([len(t) for t in token_ids]) if by_length else None
    labels = [index[c] for c in frame[d["label_column"]]]
    return TextSet(list(range(len(texts))), texts, token_ids, labels, order, weights), truncated


def encode_texts(texts: list[str], state: dict, tokenizer) -> tuple[list[list[int]], list | None, int]:
    """Token ids (and how many texts were truncated), or for model.name=ngram n-gram feature ids and
    their TF-IDF weights."""
    if state["architecture"] == "ngram":
        from dlkit_recipes.nlp_sentiment.ngrams import encode

        ids, weights = encode(state["baselines"]["tfidf_logreg"], texts)
        return ids, weights, 0
    token_ids, truncated = hf.encode(tokenizer, texts, state["max_length"])
    return token_ids, None, truncated


def unknown_labels(frame: pd.DataFrame, label: str, state: dict) -> list[str]:
    return sorted(set(frame[label]) - set(state["classes"]))


# --- predict inputs ------------------------------------------------------------------------------
def input_texts(raw: str, d: dict) -> list[str]:
    """One predict argument -> texts: a table's text column, a .txt file (one text a line), the files of
    a folder, or the argument itself as a text."""
    path = Path(raw).expanduser()
    if not path.exists():
        if " " not in raw and path.suffix.lower() in FORMATS:
            raise UserError(f"input file '{raw}' does not exist", f"give texts in quotes, {INPUT_KINDS}")
        return [raw]
    texts: list[str] = []
    for file in expand_inputs([raw], lambda p: p.suffix.lower() in FORMATS, INPUT_KINDS):
        if file.suffix.lower() != ".txt":
            column = d["text_column"]
            texts += read_text_table(file, [column], d["encoding"])[column].tolist()
            continue
        try:
            lines = file.read_text(encoding=d["encoding"]).splitlines()
        except UnicodeDecodeError as exc:
            raise UserError(
                f"'{file}' is not valid {d['encoding']} text (byte {exc.start})",
                "pass its encoding, e.g. data.encoding=latin-1",
            ) from None
        texts += [line for line in lines if line.strip()]
    return texts


def predict_set(inputs: list[str], cfg: dict, state: dict, tokenizer) -> TextSet:
    """Inputs as a dataset in blocks of length order (one block per predict chunk); ids keep the index
    and the text as given."""
    texts = [t for raw in inputs for t in input_texts(raw, cfg["data"])]
    cleaned = [clean_text(t) for t in texts]
    token_ids, weights, _ = encode_texts(cleaned, state, tokenizer)
    order = hf.length_order([len(t) for t in token_ids], hf.predict_block(cfg))
    ids = [{"index": i, "text": t} for i, t in enumerate(texts)]
    return TextSet(ids, cleaned, token_ids, [-1] * len(texts), order, weights)
