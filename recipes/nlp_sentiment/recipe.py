"""The nlp-sentiment recipe: config, data and state, model and step, metrics, baselines, predict."""

from __future__ import annotations

from pathlib import Path

import torch
from dlkit_recipes.nlp_sentiment.baselines import BLOCKS, blocks, fit_tfidf_logreg, predictors
from dlkit_recipes.nlp_sentiment.config import FINETUNE_LR, NGRAM_LR, SCRATCH_LR, recipe_config
from dlkit_recipes.nlp_sentiment.data import (
    SCRATCH,
    TextSet,
    fit_state,
    predict_set,
    read_rows,
    split_rows,
    text_set,
    unknown_labels,
)
from dlkit_recipes.nlp_sentiment.model import bert_config, build, model_inputs, save_native
from dlkit_recipes.nlp_sentiment.ngrams import collate as ngram_collate
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from dlkit import console, hf
from dlkit.data.checks import class_balance
from dlkit.errors import UserError
from dlkit.recipe import Finding, Recipe, RecipeData


class NlpSentiment(Recipe):
    name = "nlp-sentiment"
    task = "text classification (sentiment)"
    description = "Classify texts (CSV/TSV/JSONL text,label) with a small BERT, an RNN or any HF checkpoint."
    default_model = "ngram"
    sample_data = "sample_data/nlp_sentiment/reviews.csv"
    sample_inputs = ("sample_data/nlp_sentiment/reviews.csv",)  # its text column; labels are ignored
    monitor = "accuracy"
    monitor_mode = "max"
    # Reading other files at evaluate/predict time never changes the fitted model.
    inference_keys = ("data.encoding", "data.text_column", "data.label_column")

    @classmethod
    def config(cls) -> dict:
        return recipe_config()  # config.py: light, so `dlkit info` reads it without torch

    @classmethod
    def resolve_config(cls, cfg: dict) -> dict:
        """`train.lr: null` -> the rate for training from scratch or fine-tuning, recorded in config.yaml."""
        if cfg["train"]["lr"] is None:
            name = cfg["model"]["name"]
            scratch = NGRAM_LR if name == "ngram" else SCRATCH_LR
            cfg["train"]["lr"] = scratch if name in SCRATCH else FINETUNE_LR
        return cfg

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        name = cfg["model"]["name"]
        if name not in SCRATCH and cfg["model"]["init"] != "default":
            raise UserError(
                f"model.init={cfg['model']['init']} would overwrite the pretrained weights of '{name}'",
                "leave model.init=default when fine-tuning a checkpoint",
            )

    def setup(self, state: dict, fresh: bool) -> None:
        """Tokenizer, pad id and loss from the state; a new run from a checkpoint starts from its weights."""
        ngram = state["architecture"] == "ngram"
        self.tokenizer = None if ngram else hf.tokenizer_from_state(state["tokenizer"])
        self.pad_id = 0 if ngram else state["pad_id"]
        self.loss = self.make_loss(state)
        self.init_from = state.get("checkpoint") if fresh else None
        if self.init_from:
            console.info(
                f"fine-tuning pretrained weights of {self.init_from} "
                f"(a new classification head for {len(state['classes'])} labels)"
            )

    def make_loss(self, state: dict) -> nn.Module:
        from dlkit.modeling import make_loss

        weight = None
        if self.cfg["loss"]["class_weights"] == "balanced":
            counts = torch.tensor([state["class_counts"][c] for c in state["classes"]], dtype=torch.float)
            weight = counts.sum() / (len(counts) * counts)
        return make_loss(self.cfg["loss"], ("cross_entropy", "focal"), class_weight=weight)

    # --- data -----------------------------------------------------------------------------
    def load_data(self, path: Path, state: dict | None = None, evaluate_all: bool = False) -> RecipeData:
        cfg, label = self.cfg, self.cfg["data"]["label_column"]
        rows, notes = read_rows(path, cfg["data"])
        splits = {"test": rows} if evaluate_all else split_rows(rows, cfg, path)
        if state is None:
            state, tokenizer = fit_state(splits["train"], cfg, path)
            if state["architecture"] == "bert-tiny":
                state["hf_config"] = bert_config(cfg["model"], state)
            state["baselines"] = {"tfidf_logreg": self._fit_logreg(splits, state)}
        else:
            tokenizer = hf.tokenizer_from_state(state["tokenizer"]) if "tokenizer" in state else None
        sets: dict[str, TextSet] = {}
        for split, frame in splits.items():
            unknown = unknown_labels(frame, label, state)
            if unknown:
                raise UserError(
                    f"{split} data in '{path}' has labels the model was not trained on: "
                    f"{', '.join(unknown[:5])}",
                    f"known labels: {', '.join(state['classes'][:20])}",
                )
            sets[split], truncated = text_set(frame, cfg, state, tokenizer, by_length=split != "train")
            if split == "train" and truncated > 0.2 * len(frame):
                notes.append(
                    f"{truncated} of {len(frame)} training texts are longer than data.max_length="
                    f"{state['max_length']} tokens and were truncated; raise data.max_length to keep more"
                )
        return RecipeData(sets.get("train"), sets.get("val"), sets.get("test"), state, notes=notes)

    def _fit_logreg(self, splits: dict, state: dict) -> dict:
        d = self.cfg["data"]
        index = {c: i for i, c in enumerate(state["classes"])}

        def part(split: str) -> tuple[list[str], list[int]]:
            frame = splits[split]
            return frame[d["text_column"]].tolist(), [index.get(c, -1) for c in frame[d["label_column"]]]

        balanced = self.cfg["loss"]["class_weights"] == "balanced"
        return fit_tfidf_logreg(part("train"), part("val"), len(index), balanced, self.cfg["seed"])

    def collate(self, items: list[dict]) -> dict:
        """Dynamic padding: each batch is padded to its own longest text, not to max_length."""
        if "weights" in items[0]:
            return ngram_collate(items)
        return hf.pad_collate(items, {"input_ids": self.pad_id})

    # --- model, step, metrics, baselines -----------------------------------------------------
    def build_model(self, state: dict) -> nn.Module:
        return build(self.cfg["model"], state, self.init_from)

    def step(self, model: nn.Module, batch: dict, stage: str) -> dict:
        logits = model(**model_inputs(batch)).logits.float()
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

    def baselines(self, data: RecipeData) -> dict:
        """The majority class of the training split, and TF-IDF over word and character n-grams +
        logistic regression (fitted with the state, so evaluate scores it from the run alone)."""
        return predictors(data.state)

    def eval_details(self, data: RecipeData, metrics: dict, baselines: dict) -> dict:
        state = data.state
        fitted = state["baselines"]["tfidf_logreg"]
        return {
            "classes": state["classes"],
            "majority_class": max(state["classes"], key=lambda c: state["class_counts"][c]),
            "tfidf_logreg": {
                "features": {name: len(block["terms"]) for name, block in blocks(fitted).items()},
                "ngrams": {name: [BLOCKS[name][0], *BLOCKS[name][1]] for name in blocks(fitted)},
                "C": fitted["C"],
                "val_accuracy": fitted["val_accuracy"],
            },
        }

    # --- predict ---------------------------------------------------------------------------
    def read_inputs(self, inputs: list[str], state: dict) -> Dataset:
        """Literal texts, .txt files (one text per line), tables with the text column, or folders of them."""
        return predict_set(inputs, self.cfg, state, self.tokenizer)

    def report_sections(self, data: RecipeData, tested, evaluation: dict, folder: Path) -> list:
        from .report import sections

        return sections(self, data, tested, evaluation, folder)

    def export_adapter(self, state: dict):
        from .export import SentimentExport

        return SentimentExport(self, state)

    def predict_step(self, model: nn.Module, batch: dict) -> dict:
        logits = model(**model_inputs(batch)).logits
        return {"probs": F.softmax(logits.float(), dim=-1)}

    def to_records(self, ids: list, outputs: dict, state: dict) -> list[dict]:
        """One record per input text, back in input order (batches ran in length order)."""
        classes = state["classes"]
        records = []
        pairs = sorted(zip(ids, outputs["probs"].tolist(), strict=True), key=lambda pair: pair[0]["index"])
        for item, probs in pairs:
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
        """The shared checks plus the labels per split (dlkit.data.checks.class_balance)."""
        findings = super().check(path)
        if any(f.severity == "fatal" for f in findings):
            return findings
        rows, _ = read_rows(path, self.cfg["data"])
        splits = split_rows(rows, self.cfg, path)
        label = self.cfg["data"]["label_column"]
        return findings + class_balance({s: frame[label] for s, frame in splits.items()})

    def save_native(self, model: nn.Module, state: dict, folder: Path) -> None:
        save_native(model, self.tokenizer, self.cfg["model"], state, folder)
        console.info(f"saved the model and tokenizer in Hugging Face format in {folder}")
