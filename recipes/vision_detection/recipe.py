"""The vision-detection recipe: COCO/YOLO data in, a detector trained and scored by COCO mAP, boxes out."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

import pandas as pd
import torch
from dlkit_recipes.vision_detection.baselines import baseline_predictors, fit_priors
from dlkit_recipes.vision_detection.boxes import BoxReport, read_boxes
from dlkit_recipes.vision_detection.config import recipe_config
from dlkit_recipes.vision_detection.data import (
    DetectionSet,
    InputImages,
    check_bad_images,
    split_images,
    transforms,
)
from dlkit_recipes.vision_detection.metrics import mean_ap_metrics
from dlkit_recipes.vision_detection.model import build_detector, load_backbone, read_backbone
from dlkit_recipes.vision_detection.outputs import write_prediction_files
from torch import nn
from torch.utils.data import Dataset

from dlkit import console
from dlkit.data.checks import class_balance
from dlkit.data.images import is_image
from dlkit.data.inputs import expand_inputs
from dlkit.errors import UserError
from dlkit.recipe import Finding, Recipe, RecipeData


class VisionDetection(Recipe):
    name = "vision-detection"
    task = "object detection"
    description = "Find and classify objects (boxes) in images; COCO JSON or YOLO txt; COCO mAP."
    default_model = "centernet-tiny"
    sample_data = "sample_data/vision_detection"
    sample_inputs = (
        "sample_data/vision_detection/images/scene_0205.jpg",
        "sample_data/vision_detection/images/scene_0206.jpg",
    )
    monitor = "map_50"
    monitor_mode = "max"
    # where the images are and how many bad ones to skip change nothing that was fitted
    inference_keys = ("data.image_dir", "data.cache", "data.max_bad_fraction")

    @classmethod
    def config(cls) -> dict:
        return recipe_config()  # config.py: light, so `dlkit info` reads it without torch

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        # ImageNet backbone weights read by `setup` for a new run only (later models load a checkpoint)
        self.backbone: dict[str, torch.Tensor] | None = None

    def setup(self, state: dict, fresh: bool) -> None:
        """A new run reads the backbone weights (once) and hears about a learning rate too high for
        torchvision detectors; a resumed run, evaluate and predict do neither.

        The core applies `model.init` to every layer after `build_model`, so it would overwrite the
        backbone weights loaded there: that pair is refused rather than silently losing the weights."""
        m, lr = self.cfg["model"], self.cfg["train"]["lr"]
        if fresh and m["backbone_weights"] and m["init"] != "default":
            raise UserError(
                f"model.init={m['init']} would re-initialise the backbone weights of model.backbone_weights",
                "leave model.init=default (the heads still start from torchvision's own init)",
            )
        self.backbone = read_backbone(m["backbone_weights"]) if fresh and m["backbone_weights"] else None
        if self.backbone is not None:
            console.info(f"backbone weights: {len(self.backbone)} tensors from {m['backbone_weights']}")
        if fresh and m["name"] != "centernet-tiny" and lr is not None and lr > 1e-3:
            console.warn(
                f"train.lr={lr} is high for {m['name']}: torchvision detectors usually need about "
                "3e-4 with AdamW (e.g. train.lr=3e-4)"
            )

    # --- data -----------------------------------------------------------------------------------
    def _fit_state(self, train: list, found: dict, report: BoxReport, path: Path) -> dict:
        """Classes (those with training boxes, in category-id order), input size and the baselines' priors."""
        if not train:
            raise UserError(f"no usable training images in '{path}'", "check the image paths and annotations")
        boxes = Counter(lab for im in train for lab in im.labels)
        if not boxes:
            raise UserError(
                f"the training images in '{path}' have no boxes",
                "a detector needs annotated objects to learn from",
            )
        categories: dict[str, int] = {}
        for split in reversed(list(found.values())):  # the training split's ids win
            categories.update(split.categories)
        classes = sorted((c for c in categories if boxes[c]), key=lambda c: (categories[c], c))
        unused = [c for c in categories if not boxes[c]]
        if unused:
            report.add("category with no training boxes (left out)", ", ".join(unused[:5]))
        longer = statistics.median(max(im.width, im.height) for im in train)
        size = self.cfg["data"]["image_size"] or int(min(320, max(64, round(longer / 32) * 32)))
        return {
            "classes": classes,
            "category_ids": [categories[c] for c in classes],
            "image_size": size,
            "prior": fit_priors(train, classes, self.cfg["seed"]),
            "boxes_per_class": {c: boxes[c] for c in classes},
        }

    def load_data(self, path: Path, state: dict | None = None, evaluate_all: bool = False) -> RecipeData:
        """Read COCO/YOLO, split (missing val/test carved out of train), fit the state on train, decode.

        What was found wrong while reading is in `extras["report"]` (for `check`) and `notes`."""
        d = self.cfg["data"]
        report = BoxReport()
        found = read_boxes(path, report, Path(d["image_dir"]).expanduser() if d["image_dir"] else None)
        groups = split_images(found, d, self.cfg["seed"], evaluate_all)
        check_bad_images(report, sum(len(g) for g in groups.values()), d["max_bad_fraction"], path)
        if state is None:
            state = self._fit_state(groups["train"], found, report, path)
        sets = {}
        for split, items in groups.items():
            transform = transforms(d, state["image_size"], train=split == "train")
            sets[split] = DetectionSet(
                items, state["classes"], state["image_size"], transform, d["cache"], report
            )
            for bad in sets[split].bad:
                report.bad_image("unreadable image", bad)
            for item in sets[split].items:
                if not item.boxes:
                    report.add("image with no boxes (kept as negative)", str(item.file))
        check_bad_images(report, sum(len(s) for s in sets.values()), d["max_bad_fraction"], path)
        state.setdefault("counts", {s: len(v) for s, v in sets.items()})
        data = RecipeData(sets.get("train"), sets.get("val"), sets.get("test"), state, notes=report.notes())
        data.extras["report"] = report
        return data

    def check(self, path: Path) -> list[Finding]:
        """One row per kind of problem found (with examples), the split sizes and the boxes per class."""
        try:
            data = self.load_data(path)
        except UserError as exc:
            return [Finding("data readable", "fatal", exc.message, exc.hint or "")]
        report: BoxReport = data.extras["report"]
        splits = {"train": data.train, "val": data.val, "test": data.test}
        sizes = " / ".join(f"{len(s) if s is not None else 0} {n}" for n, s in splits.items())
        found = [Finding("data readable", "ok", f"{sizes} images")]
        for kind, n in report.counts.items():
            found.append(
                Finding(
                    kind,
                    "info" if kind in BoxReport.INFO else "warning",
                    f"{n} (e.g. {'; '.join(report.examples[kind])})",
                    BoxReport.FIXES.get(kind, ""),
                )
            )
        labels = {
            split: pd.Series([lab for it in s.items for lab in it.labels], dtype=object)
            for split, s in splits.items()
            if s is not None and len(s)
        }
        return found + class_balance(labels)

    # --- model and step -------------------------------------------------------------------------
    def build_model(self, state: dict) -> nn.Module:
        m = self.cfg["model"]
        model = build_detector(m["name"], len(state["classes"]), state["image_size"], m)
        if self.backbone is not None:  # a new run; the core builds the model again later to load checkpoints
            load_backbone(model, self.backbone)
        return model

    def collate(self, items: list[dict]) -> dict:
        """Images stack (all letterboxed to one size); boxes and labels stay per-image lists."""
        batch = {"image": torch.stack([it["image"] for it in items]), "id": [it["id"] for it in items]}
        for key in ("scale", "size"):
            if key in items[0]:
                batch[key] = torch.stack([it[key] for it in items])
        if "boxes" in items[0]:
            batch["boxes"] = [it["boxes"] for it in items]
            batch["labels"] = [it["labels"] for it in items]
        return batch

    def step(self, model: nn.Module, batch: dict, stage: str) -> dict:
        """Train: the detector's own losses, summed. Val/test: detections for mAP (loss 0)."""
        images = list(batch["image"])
        targets = [
            {"boxes": b, "labels": lab} for b, lab in zip(batch["boxes"], batch["labels"], strict=True)
        ]
        if stage == "train":
            losses = model(images, targets)
            return {"loss": sum(losses.values()), "preds": [], "target": targets}
        preds = [
            {"boxes": p["boxes"].float(), "scores": p["scores"].float(), "labels": p["labels"]}
            for p in model(images)
        ]
        return {"loss": batch["image"].new_zeros((), dtype=torch.float32), "preds": preds, "target": targets}

    def metrics(self, state: dict) -> dict:
        return mean_ap_metrics(len(state["classes"]))

    def baselines(self, data: RecipeData) -> dict:
        """Prior boxes that never look at the image, from the training boxes (kept in the state)."""
        return baseline_predictors(data.state["prior"])

    def eval_details(self, data: RecipeData, metrics: dict, baselines: dict[str, dict]) -> dict:
        """AP per class by name, for the model and each baseline."""
        classes = data.state["classes"]

        def by_class(metric) -> dict[str, float]:
            values = metric.compute() if hasattr(metric, "compute") else metric
            return {c: round(float(v), 5) for c, v in zip(classes, values.reshape(-1).tolist(), strict=True)}

        table = {"model": by_class(metrics["ap_per_class"])}
        for name, ms in baselines.items():
            table[name] = by_class(ms["ap_per_class"])
        return {"ap_per_class": table}

    # --- predict --------------------------------------------------------------------------------
    def read_inputs(self, inputs: list[str], state: dict) -> Dataset:
        side = state["image_size"]
        paths = expand_inputs(inputs, is_image, "image files")
        dataset = InputImages(paths, side, transforms(self.cfg["data"], side, train=False))
        if dataset.bad:
            console.warn(
                f"skipped {len(dataset.bad)} unreadable input(s): " + ", ".join(map(str, dataset.bad[:5]))
            )
        if not len(dataset):
            raise UserError("none of the input images can be read", "give JPEG/PNG/... image files")
        return dataset

    def export_adapter(self, state: dict):
        from .export import DetectionExport

        return DetectionExport(self, state)

    def report_sections(self, data: RecipeData, tested, evaluation: dict, folder: Path) -> list:
        from .report import sections

        return sections(self, data, tested, evaluation, folder)

    def predict_step(self, model: nn.Module, batch: dict) -> dict:
        """Detections in the original image's pixels (letterbox undone, clipped to the image)."""
        out = []
        for det, (sx, sy), (w, h) in zip(
            model(list(batch["image"])), batch["scale"], batch["size"], strict=True
        ):
            boxes = det["boxes"].float() / torch.stack([sx, sy, sx, sy])
            boxes = torch.min(boxes.clamp_min(0), torch.stack([w, h, w, h]))
            out.append(
                {
                    "boxes": boxes.cpu(),
                    "scores": det["scores"].float().cpu(),
                    "labels": det["labels"].cpu() - 1,
                }
            )
        return {"detections": out, "size": batch["size"]}

    def _kept(self, det: dict) -> torch.Tensor:
        """Indices of boxes scoring at least the threshold, one label per object (best class wins)."""
        from torchvision.ops import nms

        p = self.cfg["predict"]
        keep = torch.nonzero(det["scores"] >= p["score_threshold"]).flatten()
        if p["merge_iou"] is not None:
            keep = keep[nms(det["boxes"][keep], det["scores"][keep], p["merge_iou"])]
        return keep

    def to_records(self, ids: list, outputs: dict, state: dict) -> list[dict]:
        classes = state["classes"]
        records = []
        for path, det, (w, h) in zip(ids, outputs["detections"], outputs["size"].tolist(), strict=True):
            keep = self._kept(det)
            records.append(
                {
                    "path": path,
                    "width": int(w),
                    "height": int(h),
                    "boxes": [[round(v, 2) for v in b] for b in det["boxes"][keep].tolist()],
                    "labels": [classes[i] for i in det["labels"][keep].tolist()],
                    "scores": [round(s, 4) for s in det["scores"][keep].tolist()],
                }
            )
        return records

    def write_outputs(self, records: list[dict], outputs: dict, state: dict, out_dir: Path) -> None:
        """coco_results.json (+ coco_images.json) appended and, with predict.draw, drawn/<image>.png."""
        write_prediction_files(
            records, state["classes"], state["category_ids"], out_dir, draw=self.cfg["predict"]["draw"]
        )
