"""The medical-imaging recipe: the contract's hooks, each handing the domain work to its module."""

from __future__ import annotations

from pathlib import Path

import torch
from dlkit_recipes.medical_imaging import checks, readers
from dlkit_recipes.medical_imaging.baselines import predictors
from dlkit_recipes.medical_imaging.config import recipe_config
from dlkit_recipes.medical_imaging.data import InputSet, check_fit, load
from dlkit_recipes.medical_imaging.metrics import class_scores, classification_metrics, segmentation_metrics
from dlkit_recipes.medical_imaging.models import SmallCNN, UNet, soft_dice_loss
from dlkit_recipes.medical_imaging.outputs import class_record, mask_record, write_masks
from dlkit_recipes.medical_imaging.scans import is_scan_file, scan_kind
from torch.utils.data import Dataset

from dlkit.data.inputs import expand_inputs
from dlkit.errors import UserError
from dlkit.recipe import Finding, Recipe, RecipeData

SCANS = "scans (NIfTI, DICOM files or series folders, PNG/JPEG)"


class MedicalImaging(Recipe):
    name = "medical-imaging"
    task = "medical image segmentation / classification"
    description = (
        "DICOM/NIfTI/PNG scans: U-Net segmentation or CNN/timm classification, 2D or 3D, split by patient."
    )
    default_model = "unet"
    sample_data = "sample_data/medical_imaging"
    sample_inputs = (
        "sample_data/medical_imaging/images/case_001.nii.gz",
        "sample_data/medical_imaging/images/case_002.nii.gz",
    )

    @classmethod
    def config(cls) -> dict:
        return recipe_config()  # config.py: light, so `dlkit info` reads it without torch

    @classmethod
    def resolve_config(cls, cfg: dict) -> dict:
        if cfg["model"]["name"] == "auto":
            cfg["model"]["name"] = "unet" if cfg["task"] == "segmentation" else "cnn"
        if cfg["data"]["augment"] == "auto":
            cfg["data"]["augment"] = cfg["task"] == "classification"
        return cfg

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        self.segmentation = cfg["task"] == "segmentation"
        self.monitor = "dice" if self.segmentation else "auroc"

    def setup(self, state: dict, fresh: bool) -> None:
        from dlkit.modeling import make_loss

        allowed = ("cross_entropy",) if self.segmentation else ("cross_entropy", "focal")
        self.loss = make_loss(self.cfg["loss"], allowed)
        binary = not self.segmentation and len(state["classes"]) == 2
        self.positive = state["positive"] if binary else None

    # --- data and model ------------------------------------------------------------------------
    def load_data(self, path: Path, state: dict | None = None, evaluate_all: bool = False) -> RecipeData:
        return load(path, self.cfg, state, evaluate_all)

    def build_model(self, state: dict) -> torch.nn.Module:
        m = self.cfg["model"]
        name = m["name"] if m["name"] != "auto" else ("unet" if self.segmentation else "cnn")
        dims = 2 if state["mode"] == "2d" else 3
        common = {
            "channels": m["channels"],
            "depth": m["depth"],
            "act": m["activation"],
            "dropout": m["dropout"],
        }
        if self.segmentation:
            if name != "unet":
                raise UserError(f"model.name '{name}' cannot segment", "use model.name=unet (or auto)")
            return UNet(dims, state["channels"], len(state["classes"]), **common)
        if name == "cnn":
            return SmallCNN(dims, state["channels"], len(state["classes"]), **common)
        if dims == 3:
            raise UserError(
                f"model.name '{name}' is not a 3D model", "use model.name=cnn (or auto) in 3d mode"
            )
        from dlkit.modeling import timm_classifier

        return timm_classifier(
            name, len(state["classes"]), in_chans=state["channels"], drop_rate=m["dropout"]
        )

    def step(self, model: torch.nn.Module, batch: dict, stage: str) -> dict:
        logits = model(batch["image"])
        if self.segmentation:
            target = batch["mask"]
            loss = self.loss(logits, target)
            weight = self.cfg["loss"]["dice_weight"]
            if weight > 0:
                loss = loss + weight * soft_dice_loss(logits, target)
            return {"loss": loss, "preds": logits.argmax(1), "target": target}
        out = class_scores(logits.float().softmax(-1), batch["label"], self.positive)
        return {"loss": self.loss(logits, batch["label"]), **out}

    def _threshold(self, state: dict) -> float:
        """The decision threshold: predict.threshold when set, else the one chosen on validation."""
        return self.cfg["predict"]["threshold"] or state.get("threshold", 0.5)

    def metrics(self, state: dict) -> dict:
        if self.segmentation:
            return segmentation_metrics(state["classes"])
        return classification_metrics(len(state["classes"]), self._threshold(state))

    def baselines(self, data: RecipeData) -> dict:
        return predictors(data.state)

    def eval_details(self, data: RecipeData, metrics: dict, baselines: dict[str, dict]) -> dict:
        state = data.state
        details = {"counts": state.get("counts"), "patients": state.get("patients")}
        if self.segmentation:
            scored = {"model": metrics, **baselines}
            names = state["classes"][1:]
            for key in ("dice", "iou"):  # None: a class no test image (nor prediction) holds
                details[f"{key}_per_class"] = {
                    who: _named(names, ms[key].by_class()) for who, ms in scored.items()
                }
            details["multi_otsu"] = state["baselines"]["multi_otsu"]
            return details
        prior = state["baselines"]["prior"]
        details["majority_label"] = state["classes"][max(range(len(prior)), key=prior.__getitem__)]
        if len(state["classes"]) == 2:
            details["positive_label"] = state["classes"][state["positive"]]
            details["threshold"] = self._threshold(state)
        return details

    def calibrate(self, ids: list, outputs: dict, data: RecipeData) -> dict:
        """Two labels: the decision threshold on the positive label's probability, from validation.

        `predict.threshold` 0 picks the one with the best sensitivity + specificity (Youden's J); the
        midpoint of the tied best ones keeps it away from any single validation scan.
        """
        state = data.state
        if self.segmentation or len(state["classes"]) != 2:
            return {}
        fixed = self.cfg["predict"]["threshold"]
        target = torch.tensor(data.val.targets) == state["positive"]
        if fixed > 0 or target.all() or not target.any():
            return {"threshold": fixed or 0.5}
        scores = outputs["probs"][:, state["positive"]]
        levels = torch.unique(scores)
        cuts = torch.cat([levels[:1] / 2, (levels[1:] + levels[:-1]) / 2, (levels[-1:] + 1) / 2])
        called = scores[None, :] >= cuts[:, None]
        youden = (called & target).sum(1) / target.sum() + (~called & ~target).sum(1) / (~target).sum() - 1
        best = cuts[youden >= youden.max() - 1e-9]
        return {"threshold": round(float(best[len(best) // 2]), 6)}

    # --- predict -----------------------------------------------------------------------------------
    def collate(self, items: list[dict]) -> dict:
        """Stack tensors of one shape (else a list: scans of different depths); ids and geometry as lists."""
        out: dict = {}
        for key in items[0]:
            values = [it[key] for it in items]
            if isinstance(values[0], torch.Tensor):
                same = all(v.shape == values[0].shape for v in values)
                out[key] = torch.stack(values) if same else values
            elif isinstance(values[0], int):
                out[key] = torch.tensor(values)
            else:
                out[key] = values
        return out

    def read_inputs(self, inputs: list[str], state: dict) -> Dataset:
        paths = expand_inputs(inputs, is_scan_file, SCANS, in_folder=readers.find_scans)
        for path in paths:  # headers only: a bad input stops predict before any model runs
            info = readers.probe(path)
            check_fit(path, info, state["mode"], state["task"])
            if scan_kind(path) != "image" and info.channels != state["channels"]:
                raise UserError(
                    f"'{path}' has {info.channels} channel(s), the model takes {state['channels']}",
                    "give scans with the channels the model was trained on",
                )
        return InputSet(paths, state)

    def export_adapter(self, state: dict):
        from .export import ScanExport

        return ScanExport(self, state)

    def report_sections(self, data: RecipeData, tested, evaluation: dict, folder: Path) -> list:
        from .report import sections

        return sections(self, data, tested, evaluation, folder)

    def predict_step(self, model: torch.nn.Module, batch: dict) -> dict:
        if not self.segmentation:
            return {"probs": model(batch["image"]).float().softmax(-1)}
        if "geometry" not in batch:  # held-out examples already on the grid
            return {"labels": model(batch["image"]).argmax(1).to(torch.uint8)}
        size = self.cfg["data"]["batch_size"]
        labels = []
        for grids, geometry in zip(batch["image"], batch["geometry"], strict=True):
            on_grid = torch.cat([model(grids[k : k + size]).argmax(1) for k in range(0, len(grids), size)])
            labels.append(geometry.to_source(on_grid).to(torch.uint8).cpu().numpy())
        # one uint8 array per scan, in that scan's own shape: what the NIfTI/PNG writers take
        return {"labels": labels, "geometry": batch["geometry"]}

    def to_records(self, ids: list, outputs: dict, state: dict) -> list[dict]:
        if not self.segmentation:
            threshold = self.cfg["predict"]["threshold"]
            return [
                class_record(path, probs, state, threshold)
                for path, probs in zip(ids, outputs["probs"].tolist(), strict=True)
            ]
        return [
            mask_record(path, labels, geometry.scan, state["classes"])
            for path, labels, geometry in zip(ids, outputs["labels"], outputs["geometry"], strict=True)
        ]

    def write_outputs(self, records: list[dict], outputs: dict, state: dict, out_dir: Path) -> None:
        if self.segmentation:
            write_masks(records, outputs, state, out_dir, self.cfg["predict"]["overlays"])

    # --- check -------------------------------------------------------------------------------------
    def check(self, path: Path) -> list[Finding]:
        return checks.findings(path, self.cfg, super().check)


def _named(names: list[str], values: torch.Tensor) -> dict:
    return {n: None if v != v else round(v, 6) for n, v in zip(names, values.tolist(), strict=True)}
