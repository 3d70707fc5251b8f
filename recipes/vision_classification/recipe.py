"""vision-classification: images in class folders (or a path,label CSV) -> a timm classifier.

Images are decoded once, resized (shorter side) and centre-cropped to `data.image_size`, and kept
in memory as uint8 when they fit (`data.cache`), so an epoch costs augmentation and compute only.
Normalisation statistics, the label map, the class prior and the logistic-regression baselines (on
pixels and on HOG features) are fitted on the training split and saved in the run's state.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.nn import functional as F

from dlkit.data.images import ImageSet, check_bad_fraction, is_image
from dlkit.data.inputs import expand_inputs
from dlkit.data.splits import ALIAS_TEXT, SPLITS, assign_splits, indices
from dlkit.errors import UserError
from dlkit.recipe import Baseline, Finding, Recipe, RecipeData

from .baselines import fit_hog_logreg, fit_pixel_logreg, logreg_predictor, majority_predictor
from .config import LOSSES, recipe_config
from .data import (
    Item,
    auto_image_size,
    cache_fits,
    gather,
    normalisation,
    read_images,
    transform,
)

LOGREGS = ("pixel_logreg", "hog_logreg")  # fitted into the state by load_data


class VisionClassification(Recipe):
    name = "vision-classification"
    task = "image classification"
    description = "Classify images with any timm model; ImageFolder, split folders or path,label CSV."
    default_model = "resnet10t"
    sample_data = "sample_data/vision_classification"
    sample_inputs = (
        "sample_data/vision_classification/test/star",
        "sample_data/vision_classification/test/ring",
    )
    monitor = "accuracy"
    monitor_mode = "max"
    inference_keys = ("data.cache", "data.max_bad_fraction")

    @classmethod
    def config(cls) -> dict:
        return recipe_config()  # config.py: light, so `dlkit info` reads it without torch

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        self.loss: torch.nn.Module | None = None

    def setup(self, state: dict, fresh: bool) -> None:
        from dlkit.modeling import make_loss

        self.loss = make_loss(self.cfg["loss"], LOSSES)

    # --- data -----------------------------------------------------------------------------
    def _split(
        self, path: Path, items: list[Item], given: list[str | None], evaluate_all: bool
    ) -> dict[str, list[int]]:
        """Indices per split: the user's splits kept, a missing val/test carved out of train, stratified.

        New labelled data for `dlkit evaluate --data` is its test split when it names one, else all of it.
        """
        if evaluate_all:
            test = [i for i, g in enumerate(given) if g == "test"]
            return {"test": test or list(range(len(items)))}
        if not any(g in (None, "train") for g in given):
            raise UserError(
                f"'{path}' has no training images (only {', '.join(sorted(set(given)))})",
                f"add a train/ folder or train rows in the split column (names: {ALIAS_TEXT})",
            )
        d = self.cfg["data"]
        assigned = assign_splits(
            given, d["val_fraction"], d["test_fraction"], self.cfg["seed"], labels=[c for _, c in items]
        )
        return indices(assigned)

    @classmethod
    def tune_space(cls) -> dict:
        """Which timm architecture, besides the learning rate, weight decay and batch size."""
        return {
            "model.name": {"choices": ["resnet10t", "resnet18", "mobilenetv3_small_100"]},
            "train.lr": {"float": {"low": 1e-3, "high": 2e-2, "log": True}},
            "train.weight_decay": {"float": {"low": 1e-5, "high": 1e-1, "log": True}},
            "data.batch_size": {"choices": [16, 32, 64]},
        }

    def load_data(self, path: Path, state: dict | None = None, evaluate_all: bool = False) -> RecipeData:
        d = self.cfg["data"]
        items, given = gather(path)
        parts = self._split(path, items, given, evaluate_all)
        fitting = state is None
        if fitting:
            train_items = [items[i] for i in parts["train"]]
            classes = sorted({c for _, c in train_items})
            if len(classes) < 2:
                raise UserError(
                    f"the training data in '{path}' has {len(classes)} class(es)",
                    "image classification needs at least two class folders",
                )
            size = d["image_size"] if d["image_size"] > 0 else auto_image_size(train_items)
            state = {"classes": classes, "image_size": size, "channels": d["channels"]}
        index = {c: i for i, c in enumerate(state["classes"])}
        count = sum(len(idx) for idx in parts.values())
        cache, cache_note = cache_fits(d["cache"], count, state["image_size"], state["channels"])
        decoded = {}
        for split, idx in parts.items():
            unknown = sorted({items[i][1] for i in idx if items[i][1] not in index})
            if unknown:
                raise UserError(
                    f"{split} data in '{path}' has classes the model was not trained on: "
                    f"{', '.join(unknown[:5])}",
                    f"known classes: {', '.join(state['classes'][:20])}",
                )
            decoded[split] = read_images(
                [items[i][0] for i in idx],
                [index[items[i][1]] for i in idx],
                state["image_size"],
                state["channels"],
                cache,
            )
        bad = [b for s in decoded.values() for b in s.bad]
        total = sum(len(s) + len(s.bad) for s in decoded.values())
        note = check_bad_fraction(bad, total, d["max_bad_fraction"], path)
        if fitting:
            train = decoded["train"]
            state.update(normalisation(train))
            state["counts"] = {s: len(v) for s, v in decoded.items()}
            state["class_counts"] = torch.bincount(
                torch.tensor(train.labels, dtype=torch.long), minlength=len(state["classes"])
            ).tolist()
            for name, fit in (("pixel_logreg", fit_pixel_logreg), ("hog_logreg", fit_hog_logreg)):
                state[name] = fit(train, decoded.get("val"), state, self.cfg["seed"])
        sets = {s: ImageSet(v, transform(state, d, train=s == "train")) for s, v in decoded.items()}
        return RecipeData(
            sets.get("train"),
            sets.get("val"),
            sets.get("test"),
            state,
            notes=[n for n in (note, cache_note) if n],
        )

    def check(self, path: Path) -> list[Finding]:
        """The shared checks plus images per class in each split."""
        import pandas as pd

        from dlkit.data.checks import class_balance

        balance = []
        try:
            items, given = gather(path)
            parts = self._split(path, items, given, evaluate_all=False)
            labels = {s: pd.Series([items[i][1] for i in parts[s]], dtype=object) for s in SPLITS if parts[s]}
            balance = class_balance(labels)
        except UserError:
            pass  # the shared check reports it as fatal
        return super().check(path) + balance

    # --- model and step --------------------------------------------------------------------
    def build_model(self, state: dict) -> torch.nn.Module:
        from dlkit.modeling import timm_classifier

        m = self.cfg["model"]
        return timm_classifier(m["name"], len(state["classes"]), state["channels"], m["dropout"])

    def step(self, model: torch.nn.Module, batch: dict, stage: str) -> dict:
        logits = model(batch["image"])
        return {"loss": self.loss(logits, batch["label"]), "preds": logits.float(), "target": batch["label"]}

    def metrics(self, state: dict) -> dict:
        from torchmetrics.classification import (
            MulticlassAccuracy,
            MulticlassConfusionMatrix,
            MulticlassF1Score,
        )

        k = len(state["classes"])
        out = {
            "accuracy": MulticlassAccuracy(k, average="micro"),
            "macro_f1": MulticlassF1Score(k, average="macro"),
        }
        if k >= 5:
            out["top5_accuracy"] = MulticlassAccuracy(k, top_k=5, average="micro")
        out["confusion_matrix"] = MulticlassConfusionMatrix(k)
        return out

    # --- baselines and details ---------------------------------------------------------------
    def baselines(self, data: RecipeData) -> dict[str, Baseline]:
        """The training prior (majority class) and logistic regression on pixels and on HOG features."""
        state = data.state
        out: dict[str, Baseline] = {}
        if "class_counts" in state:
            out["majority_class"] = majority_predictor(state["class_counts"])
        for name in LOGREGS:
            if name in state:
                out[name] = logreg_predictor(state[name])
        return out

    def eval_details(self, data: RecipeData, metrics: dict, baselines: dict[str, dict]) -> dict:
        """Per-class precision/recall/F1 of the model, the majority class, how the logregs were fitted."""
        state = data.state
        classes = state["classes"]
        cm = metrics["confusion_matrix"].compute().double()  # rows: true class, columns: predicted
        hits, support, predicted = cm.diag(), cm.sum(1), cm.sum(0)
        precision = torch.where(predicted > 0, hits / predicted.clamp_min(1), 0.0)
        recall = torch.where(support > 0, hits / support.clamp_min(1), 0.0)
        f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall + 1e-12), 0.0)
        details: dict = {
            "per_class": {
                c: {
                    "precision": round(float(precision[i]), 4),
                    "recall": round(float(recall[i]), 4),
                    "f1": round(float(f1[i]), 4),
                    "support": int(support[i]),
                }
                for i, c in enumerate(classes)
            }
        }
        if "class_counts" in state:
            details["majority_class"] = classes[
                max(range(len(classes)), key=state["class_counts"].__getitem__)
            ]
        for name in LOGREGS:
            if name in state:
                fitted = state[name]
                details[name] = {k: fitted[k] for k in ("features", "C", "train_images", "val_accuracy")}
        return details

    # --- predict ---------------------------------------------------------------------------
    def read_inputs(self, inputs: list[str], state: dict) -> ImageSet:
        paths = expand_inputs(inputs, is_image, "image files")
        images = read_images(
            paths, [-1] * len(paths), state["image_size"], state["channels"], self.cfg["data"]["cache"]
        )
        if images.bad:
            names = ", ".join(str(b) for b in images.bad[:5])
            if not len(images):
                raise UserError(
                    f"no readable inputs: none of the {len(images.bad)} image(s) can be read ({names})",
                    "give PNG, JPEG, BMP, GIF, TIFF or WebP images",
                )
            from dlkit import console

            console.warn(f"skipped {len(images.bad)} unreadable input(s): {names}")
        return ImageSet(images, transform(state, self.cfg["data"], train=False))

    def report_sections(self, data: RecipeData, tested, evaluation: dict, folder: Path) -> list:
        from .report import sections

        return sections(self, data, tested, evaluation, folder)

    def predict_step(self, model: torch.nn.Module, batch: dict) -> dict:
        return {"probs": F.softmax(model(batch["image"]).float(), dim=-1)}

    def export_adapter(self, state: dict):
        from .export import ClassifierExport

        return ClassifierExport(self, state)

    def to_records(self, ids: list, outputs: dict, state: dict) -> list[dict]:
        classes = state["classes"]
        k = min(5, len(classes))
        top = outputs["probs"].topk(k, dim=-1)
        records = []
        for path, values, idx in zip(ids, top.values.tolist(), top.indices.tolist(), strict=True):
            records.append(
                {
                    "path": path,
                    "label": classes[idx[0]],
                    "score": round(values[0], 6),
                    "top_k": [
                        {"label": classes[i], "prob": round(v, 6)} for i, v in zip(idx, values, strict=True)
                    ],
                }
            )
        return records
