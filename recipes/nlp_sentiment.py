"""nlp-sentiment: a table of texts and labels -> a transformers text classifier.

The default model trains fully offline: a WordPiece tokenizer is trained on the training texts and
a small BERT (2 layers x 128) learns from scratch. `model.name=rnn` swaps in a bidirectional
LSTM/GRU over the same tokenizer; any other name is a Hugging Face checkpoint (a local folder, or a
hub name already in the cache) fine-tuned with its own tokenizer.

The tokenizer is kept in the run's state as JSON and the model's architecture as its transformers
config, so evaluate and predict rebuild everything from the run alone. After training the model and
tokenizer are also saved with `save_pretrained` into `RUN/model/`, loadable by plain transformers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from dlkit import console
from dlkit.config import opt
from dlkit.data.splits import stratified_split
from dlkit.data.tables import FORMATS
from dlkit.data.textdata import (
    clean_text_columns,
    drop_duplicate_texts,
    length_order,
    pad_collate,
    read_text_table,
)
from dlkit.errors import UserError
from dlkit.recipe import Finding, Recipe, RecipeData
from dlkit.text import clean_text

SPLITS = ("train", "val", "test")
SCRATCH = ("bert-tiny", "rnn")  # model names dlkit builds itself; anything else is a checkpoint
SCRATCH_LR, FINETUNE_LR = 1e-3, 5e-5
TABLE_SUFFIXES = tuple(s for s in FORMATS if s != ".txt")  # a .txt input to predict is one text per line


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


class TextSet(Dataset):
    """Token-id lists with labels (-1 when unknown) as dicts {'input_ids', 'label', 'id'}."""

    def __init__(self, ids: list, token_ids: list[list[int]], labels: list[int], by_length: bool = False):
        order = length_order([len(t) for t in token_ids]) if by_length else range(len(token_ids))
        self.ids = [ids[i] for i in order]
        self.token_ids = [token_ids[i] for i in order]
        self.labels = [labels[i] for i in order]

    def __len__(self) -> int:
        return len(self.token_ids)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.token_ids[i], "label": self.labels[i], "id": self.ids[i]}


class RnnClassifier(nn.Module):
    """Embedding + bidirectional LSTM/GRU, mean- and max-pooled over the real (unpadded) tokens."""

    def __init__(
        self,
        vocab_size: int,
        num_labels: int,
        hidden: int,
        layers: int,
        cell: str,
        dropout: float,
        pad_id: int,
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, hidden, padding_idx=pad_id)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(
            hidden,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(4 * hidden, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
        from transformers.modeling_outputs import SequenceClassifierOutput

        lengths = attention_mask.sum(1).clamp_min(1).cpu()  # packing needs them on the host
        packed = pack_padded_sequence(self.embed(input_ids), lengths, batch_first=True, enforce_sorted=False)
        out, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=input_ids.shape[1])
        mask = attention_mask.unsqueeze(-1).to(out.dtype)
        mean = (out * mask).sum(1) / mask.sum(1).clamp_min(1)
        peak = out.masked_fill(mask == 0, -1e4).amax(1)
        return SequenceClassifierOutput(logits=self.head(self.dropout(torch.cat([mean, peak], -1))))


class NlpSentiment(Recipe):
    name = "nlp-sentiment"
    task = "text classification (sentiment)"
    description = "Classify texts (CSV/TSV/JSONL text,label) with a small BERT, an RNN or any HF checkpoint."
    default_model = "bert-tiny"
    sample_data = "sample_data/nlp_sentiment/reviews.csv"
    monitor = "accuracy"

    @classmethod
    def config(cls) -> dict:
        return {
            "data": {
                "batch_size": 32,
                "text_column": opt("text", "column holding the texts"),
                "label_column": opt("label", "column holding the labels (two or more classes)"),
                "encoding": opt("utf-8", "text encoding of CSV/TSV/JSONL files, e.g. latin-1 or cp1252"),
                "max_length": opt(128, "tokens kept per text (longer ones are truncated)"),
            },
            "model": {
                "name": opt(
                    "bert-tiny",
                    "bert-tiny (small BERT from scratch), rnn (bidirectional LSTM/GRU from scratch), or a "
                    "transformers checkpoint to fine-tune: a local folder, or a hub name in the local cache",
                ),
                "dropout": 0.1,
                "activation": "gelu",
                "tokenizer": opt(
                    "wordpiece",
                    "subword tokenizer trained on the training texts (bert-tiny, rnn)",
                    ["wordpiece", "bpe"],
                ),
                "vocab_size": opt(8000, "largest vocabulary of the trained tokenizer"),
                "lowercase": opt(True, "lowercase texts in the trained tokenizer"),
                "layers": opt(2, "encoder layers of bert-tiny"),
                "hidden": opt(
                    128, "hidden size of bert-tiny (feed-forward 2x), or embedding/RNN size of rnn"
                ),
                "heads": opt(2, "attention heads of bert-tiny"),
                "rnn": opt("lstm", "recurrent cell of model.name=rnn", ["lstm", "gru"]),
                "rnn_layers": opt(1, "stacked bidirectional layers of model.name=rnn"),
            },
            "loss": {
                "class_weights": opt(
                    "none",
                    "weight the loss by class: balanced = inverse class frequency (for imbalanced data)",
                    ["none", "balanced"],
                ),
            },
            "train": {
                "epochs": 8,
                "lr": opt(
                    None,
                    f"peak learning rate; null = {SCRATCH_LR} for bert-tiny/rnn trained from "
                    f"scratch, {FINETUNE_LR} to fine-tune a checkpoint",
                    type=float,
                ),
                "warmup": 0.1,
                "patience": 3,
            },
        }

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        name = cfg["model"]["name"]
        if cfg["train"]["lr"] is None:  # resolved here, so the run's config.yaml records the value used
            cfg["train"]["lr"] = SCRATCH_LR if name in SCRATCH else FINETUNE_LR
        if name not in SCRATCH and cfg["model"]["init"] != "default":
            raise UserError(
                f"model.init={cfg['model']['init']} would overwrite the pretrained weights of '{name}'",
                "leave model.init=default when fine-tuning a checkpoint",
            )
        self.loss: nn.Module | None = None
        self._pad_id = 0  # set from the state before any batch is built
        self._encoder = None
        self._fresh_checkpoint = False  # True between fitting a new state and building the model once

    # --- data -----------------------------------------------------------------------------
    def _tables(self, path: Path) -> dict[str, Path]:
        """Split name ('' = not given) -> table: one file, or a folder with train/val/test files."""
        if path.is_file():
            return {"": path}
        tables = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FORMATS)
        named = {p.stem.lower(): p for p in tables}
        if "train" in named:
            return {s: named[s] for s in SPLITS if s in named}
        if len(tables) == 1:
            return {"": tables[0]}
        found = ", ".join(p.name for p in tables) or "none"
        raise UserError(
            f"data folder '{path}' should hold one table, or train/val/test tables (found: {found})",
            "pass --data PATH to a CSV, TSV or JSONL file with text and label columns",
        )

    def _read(self, path: Path) -> tuple[pd.DataFrame, list[str]]:
        """Cleaned, de-duplicated rows (text, label, _split) of every table, and notes on what was dropped."""
        d = self.cfg["data"]
        text, label = d["text_column"], d["label_column"]
        frames, notes = [], []
        for split, file in self._tables(path).items():
            frame = read_text_table(file, [text, label], d["encoding"])
            frame["_split"] = split or self._split_column(frame, file)
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

    @staticmethod
    def _split_column(frame: pd.DataFrame, file: Path) -> pd.Series | str:
        if "split" not in frame.columns:
            return ""
        split = frame["split"].fillna("").astype(str).str.strip().str.lower()
        bad = split[~split.isin(SPLITS + ("",))]
        if len(bad):
            raise UserError(
                f"'{file}' row {int(bad.index[0]) + 2}: split '{bad.iloc[0]}' is not train, val or test",
                "use train, val, test (or leave it empty to split automatically)",
            )
        return split

    def _assign_splits(self, rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """Given splits are kept; missing val/test (or all, when none is given) are carved out of train."""
        d, label = self.cfg["data"], self.cfg["data"]["label_column"]
        given = {s: rows[rows["_split"] == s] for s in SPLITS}
        pool = pd.concat([given["train"], rows[rows["_split"] == ""]], ignore_index=True)
        fractions = {s: d[f"{s}_fraction"] if given[s].empty else 0.0 for s in ("val", "test")}
        tr, va, te = stratified_split(
            pool[label].tolist(), fractions["val"], fractions["test"], self.cfg["seed"]
        )
        return {
            "train": pool.iloc[tr],
            "val": given["val"] if not given["val"].empty else pool.iloc[va],
            "test": given["test"] if not given["test"].empty else pool.iloc[te],
        }

    def load_data(self, path: Path, state: dict | None = None, evaluate_all: bool = False) -> RecipeData:
        label = self.cfg["data"]["label_column"]
        rows, notes = self._read(path)
        splits = {"test": rows} if evaluate_all else self._assign_splits(rows)
        empty = [split for split, frame in splits.items() if frame.empty]
        if empty:
            raise UserError(
                f"'{path}' has only {len(rows)} usable labelled texts: too few for a "
                f"{' and '.join(empty)} split",
                "add data (at least 3 texts per label), or give train/val/test in a 'split' column",
            )
        if state is None:
            state = self._fit_state(splits["train"], path)
        self.loss = self._make_loss(state)
        self._pad_id = state["pad_id"]
        index = {c: i for i, c in enumerate(state["classes"])}
        sets: dict[str, TextSet] = {}
        for split, frame in splits.items():
            unknown = sorted(set(frame[label]) - set(index))
            if unknown:
                raise UserError(
                    f"{split} data in '{path}' has labels the model was not trained on: "
                    f"{', '.join(unknown[:5])}",
                    f"known labels: {', '.join(state['classes'][:20])}",
                )
            token_ids, truncated = self._encode(frame[self.cfg["data"]["text_column"]].tolist(), state)
            if split == "train" and truncated > 0.2 * len(frame):
                notes.append(
                    f"{truncated} of {len(frame)} training texts are longer than data.max_length="
                    f"{state['max_length']} tokens and were truncated; raise data.max_length to keep more"
                )
            sets[split] = TextSet(
                list(range(len(frame))),
                token_ids,
                [index[c] for c in frame[label]],
                by_length=split != "train",
            )
        return RecipeData(sets.get("train"), sets.get("val"), sets.get("test"), state, notes=notes)

    # --- fitted state: labels, tokenizer, architecture --------------------------------------
    def _fit_state(self, train: pd.DataFrame, path: Path) -> dict:
        d, m = self.cfg["data"], self.cfg["model"]
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
        if m["name"] in SCRATCH:
            state.update(self._trained_tokenizer(train[d["text_column"]].tolist()))
        else:
            state.update(self._checkpoint_state(m["name"], classes))
            self._fresh_checkpoint = True
        if state["architecture"] == "bert-tiny":
            state["hf_config"] = self._bert_config(state).to_dict()
        return state

    def _trained_tokenizer(self, texts: list[str]) -> dict:
        from dlkit.text import tokenizer_to_json, train_tokenizer

        m = self.cfg["model"]
        tokenizer = train_tokenizer(texts, m["vocab_size"], m["tokenizer"], m["lowercase"])
        return {
            "tokenizer": tokenizer_to_json(tokenizer),
            "pad_id": tokenizer.pad_token_id,
            "vocab_size": len(tokenizer),
            "max_length": self.cfg["data"]["max_length"],
        }

    def _bert_config(self, state: dict):
        from transformers import BertConfig

        m, k = self.cfg["model"], len(state["classes"])
        if m["hidden"] % m["heads"]:
            raise UserError(
                f"model.hidden={m['hidden']} is not a multiple of model.heads={m['heads']}",
                "each attention head gets hidden/heads dimensions, e.g. model.hidden=128 model.heads=2",
            )
        return BertConfig(
            vocab_size=state["vocab_size"],
            hidden_size=m["hidden"],
            num_hidden_layers=m["layers"],
            num_attention_heads=m["heads"],
            intermediate_size=2 * m["hidden"],
            hidden_act=m["activation"],
            max_position_embeddings=state["max_length"],
            classifier_dropout=m["dropout"],
            pad_token_id=state["pad_id"],
            num_labels=k,
            id2label=dict(enumerate(state["classes"])),
            label2id={c: i for i, c in enumerate(state["classes"])},
        )

    def _checkpoint_state(self, name: str, classes: list[str]) -> dict:
        """Config (with our labels) and tokenizer of a local or cached hub checkpoint, as JSON-able state."""
        from transformers import AutoConfig, AutoTokenizer
        from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

        source = _checkpoint_source(name)
        labels = {"id2label": dict(enumerate(classes)), "label2id": {c: i for i, c in enumerate(classes)}}
        try:
            config = AutoConfig.from_pretrained(source, local_files_only=_offline(), **labels)
        except (OSError, ValueError, KeyError) as exc:
            raise _not_a_checkpoint(name, exc) from None
        if type(config) not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING:
            raise UserError(
                f"model.name '{name}' is a {config.model_type} checkpoint, which transformers cannot "
                "use for sequence classification",
                "choose a text encoder such as BERT or RoBERTa",
            )
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=_offline())
        except (OSError, ValueError, KeyError) as exc:
            raise _not_a_checkpoint(name, exc) from None
        if not getattr(tokenizer, "is_fast", False):
            raise UserError(
                f"the tokenizer of '{name}' has no fast (tokenizers) version",
                "save the checkpoint with a tokenizer.json, or use model.name=bert-tiny",
            )
        pad_id = tokenizer.pad_token_id
        if pad_id is None:  # e.g. GPT-2: pad with end-of-text, which the model must also know
            pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
            config.pad_token_id = pad_id
        limit = (
            tokenizer.model_max_length
            if tokenizer.model_max_length < 100_000
            else getattr(config, "max_position_embeddings", self.cfg["data"]["max_length"])
        )
        return {
            "checkpoint": source,
            "tokenizer": tokenizer.backend_tokenizer.to_str(),
            "pad_id": pad_id,
            "vocab_size": len(tokenizer),
            "max_length": min(self.cfg["data"]["max_length"], limit),
            "hf_config": config.to_dict(),
        }

    def _encode(self, texts: list[str], state: dict) -> tuple[list[list[int]], int]:
        """Token ids (with the model's special tokens, truncated to max_length) and how many were cut."""
        if self._encoder is None:
            from tokenizers import Tokenizer

            self._encoder = Tokenizer.from_str(state["tokenizer"])
            self._encoder.no_padding()
            self._encoder.enable_truncation(state["max_length"])
        encodings = self._encoder.encode_batch(texts)
        return [e.ids for e in encodings], sum(bool(e.overflowing) for e in encodings)

    def _make_loss(self, state: dict) -> nn.Module:
        from dlkit.modeling import make_loss

        weight = None
        if self.cfg["loss"]["class_weights"] == "balanced":
            counts = torch.tensor([state["class_counts"][c] for c in state["classes"]], dtype=torch.float)
            weight = counts.sum() / (len(counts) * counts)
        return make_loss(self.cfg["loss"], ("cross_entropy", "focal"), class_weight=weight)

    def collate(self, items: list[dict]) -> dict:
        """Dynamic padding: each batch is padded to its own longest text, not to max_length."""
        return pad_collate(items, {"input_ids": self._pad_id})

    # --- model and step --------------------------------------------------------------------
    def build_model(self, state: dict) -> nn.Module:
        """The architecture from state alone; a checkpoint's pretrained weights only for a new run.

        Evaluate, predict and resume overwrite every weight from the run's checkpoint, so they build
        from the stored config and need neither the network nor the original checkpoint folder.
        """
        m = self.cfg["model"]
        if state["architecture"] == "rnn":
            return RnnClassifier(
                state["vocab_size"],
                len(state["classes"]),
                m["hidden"],
                m["rnn_layers"],
                m["rnn"],
                m["dropout"],
                state["pad_id"],
            )
        from transformers import AutoConfig, AutoModelForSequenceClassification
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        config = AutoConfig.for_model(**state["hf_config"])
        if not self._fresh_checkpoint:
            return AutoModelForSequenceClassification.from_config(config)
        self._fresh_checkpoint = False
        console.info(
            f"fine-tuning pretrained weights of {state['checkpoint']} "
            f"(a new classification head for {len(state['classes'])} labels)"
        )
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # its load report only says that the head is new, as intended
        try:
            return AutoModelForSequenceClassification.from_pretrained(
                state["checkpoint"], config=config, ignore_mismatched_sizes=True, local_files_only=_offline()
            )
        finally:
            hf_logging.set_verbosity(verbosity)

    def step(self, model: nn.Module, batch: dict) -> dict:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        loss = self.loss.to(logits.device)(logits, batch["label"])
        return {"loss": loss, "preds": logits, "target": batch["label"]}

    def metrics(self, state: dict) -> dict:
        from torchmetrics.classification import (
            MulticlassAccuracy,
            MulticlassConfusionMatrix,
            MulticlassF1Score,
            MulticlassPrecision,
            MulticlassRecall,
        )

        k = len(state["classes"])
        return {
            "accuracy": MulticlassAccuracy(k, average="micro"),
            "macro_f1": MulticlassF1Score(k, average="macro"),
            "precision": MulticlassPrecision(k, average=None),  # per class, in state["classes"] order
            "recall": MulticlassRecall(k, average=None),
            "confusion_matrix": MulticlassConfusionMatrix(k),
        }

    def baseline(self, data: RecipeData) -> dict:
        """Always answer the majority class of the training split."""
        state = data.state
        k = len(state["classes"])
        majority = max(state["classes"], key=lambda c: state["class_counts"][c])
        target = torch.tensor(data.test.labels)
        preds = F.one_hot(torch.full_like(target, state["classes"].index(majority)), k).float()
        values: dict = {}
        for name, metric in self.metrics(state).items():
            if name != "confusion_matrix":
                metric.update(preds, target)
                value = metric.compute()
                values[name] = float(value) if value.dim() == 0 else value.tolist()
        values["majority_class"] = majority
        return values

    # --- predict ---------------------------------------------------------------------------
    def read_inputs(self, inputs: list[str], state: dict) -> Dataset:
        """Literal texts, .txt files (one text per line) or tables with the text column."""
        texts: list[str] = []
        for raw in inputs:
            texts += self._input_texts(raw)
        self._pad_id = state["pad_id"]
        token_ids, _ = self._encode([clean_text(t) for t in texts], state)
        ids = [{"index": i, "text": t} for i, t in enumerate(texts)]
        return TextSet(ids, token_ids, [-1] * len(texts), by_length=True)

    def _input_texts(self, raw: str) -> list[str]:
        path = Path(raw).expanduser()
        suffix = path.suffix.lower()
        looks_like_file = " " not in raw and suffix in FORMATS
        if not path.is_file():
            if looks_like_file:
                raise UserError(
                    f"input file '{raw}' does not exist",
                    "give texts in quotes, .txt files (one text per line) or CSV/TSV/JSONL files",
                )
            return [raw]
        if suffix in TABLE_SUFFIXES:
            column = self.cfg["data"]["text_column"]
            return read_text_table(path, [column], self.cfg["data"]["encoding"])[column].tolist()
        try:
            lines = path.read_text(encoding=self.cfg["data"]["encoding"]).splitlines()
        except UnicodeDecodeError as exc:
            encoding = self.cfg["data"]["encoding"]
            raise UserError(
                f"'{path}' is not valid {encoding} text (byte {exc.start})",
                f"save it as {encoding}, the encoding this run was trained with (data.encoding)",
            ) from None
        return [line for line in lines if line.strip()]

    def predict_step(self, model: nn.Module, batch: dict) -> dict:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return {"probs": F.softmax(logits.float(), dim=-1)}

    def to_records(self, ids: list, outputs: dict, state: dict) -> list[dict]:
        """One record per input text, back in input order (batches ran in length order)."""
        classes = state["classes"]
        records = []
        for item, probs in sorted(
            zip(ids, outputs["probs"].tolist(), strict=True), key=lambda pair: pair[0]["index"]
        ):
            best = max(range(len(classes)), key=probs.__getitem__)
            records.append(
                {
                    "text": item["text"],
                    "label": classes[best],
                    "probs": {c: round(p, 6) for c, p in zip(classes, probs, strict=True)},
                }
            )
        return records

    # --- checks and native format ------------------------------------------------------------
    def check(self, path: Path) -> list[Finding]:
        """The shared checks plus the balance of labels over all cleaned rows."""
        findings = super().check(path)
        if any(f.severity == "fatal" for f in findings):
            return findings
        rows, _ = self._read(path)
        counts = rows[self.cfg["data"]["label_column"]].value_counts()
        text = ", ".join(f"{c} {n}" for c, n in sorted(counts.items(), key=lambda kv: str(kv[0])))
        if counts.max() > 3 * counts.min():
            findings.append(
                Finding(
                    "class balance",
                    "warning",
                    f"texts per label: {text}",
                    "set loss.class_weights=balanced and compare macro_f1",
                )
            )
        else:
            findings.append(Finding("class balance", "ok", f"texts per label: {text}"))
        return findings

    def save_native(self, model: nn.Module, state: dict, folder: Path) -> None:
        """Model and tokenizer with save_pretrained: `AutoModelForSequenceClassification.from_pretrained
        (folder)` and `AutoTokenizer.from_pretrained(folder)` load them. The RNN is not a transformers
        architecture: its weights go to model.safetensors beside the tokenizer."""
        folder.mkdir(parents=True, exist_ok=True)
        self._native_tokenizer(state).save_pretrained(folder)
        if state["architecture"] == "rnn":
            from safetensors.torch import save_file

            save_file(
                {k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors")
            )
            m = self.cfg["model"]
            layout = {
                "cell": m["rnn"],
                "hidden": m["hidden"],
                "layers": m["rnn_layers"],
                "classes": state["classes"],
                "pad_id": state["pad_id"],
            }
            (folder / "rnn_config.json").write_text(json.dumps(layout, indent=2))
            return
        model.save_pretrained(folder)
        console.info(f"saved the model in Hugging Face format in {folder}")

    def _native_tokenizer(self, state: dict):
        if state["architecture"] == "checkpoint":  # its own class and settings, from the source
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(state["checkpoint"], local_files_only=_offline())
        else:
            from dlkit.text import tokenizer_from_json

            tokenizer = tokenizer_from_json(state["tokenizer"])
        tokenizer.model_max_length = state["max_length"]
        return tokenizer


def _checkpoint_source(name: str) -> str:
    """A local checkpoint folder (absolute) or a hub name; a local path must hold config.json."""
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise UserError(
                f"model.name '{name}' is not a transformers checkpoint (no config.json in it)",
                "give a folder saved with save_pretrained (config.json, weights, tokenizer), "
                "or model.name=bert-tiny or rnn to train from scratch",
            )
        return str(path.resolve())
    return name


def _not_a_checkpoint(name: str, exc: Exception) -> UserError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if Path(name).expanduser().is_dir():
        return UserError(
            f"model.name '{name}' cannot be loaded as a transformers checkpoint: {reason}",
            "the folder needs config.json, model weights and tokenizer files from save_pretrained",
        )
    offline = " (HF_HUB_OFFLINE is set, so only cached models load)" if _offline() else ""
    return UserError(
        f"model.name '{name}' is not bert-tiny, rnn, a local checkpoint folder or a "
        f"loadable hub model{offline}: {reason}",
        "check the spelling, or download the model once and give its local folder",
    )
