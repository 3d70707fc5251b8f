"""Export of the timm classifier: images (normalised, `image_size` square) -> class logits."""

from __future__ import annotations

from pathlib import Path

from dlkit.export import ExportAdapter
from dlkit.export.native import load_timm, save_timm


class ClassifierExport(ExportAdapter):
    inputs = ("image",)
    outputs = ("logits",)
    formats = ("onnx", "torchscript", "native")

    def describe(self) -> dict:
        s = self.state
        return {
            "input": f"RGB/greyscale image resized (shorter side) and centre-cropped to {s['image_size']}, "
            "scaled to [0, 1], then (x - mean) / std per channel",
            "image_size": s["image_size"],
            "channels": s["channels"],
            "mean": s["mean"],
            "std": s["std"],
            "labels": s["classes"],
            "output": "logits over labels; softmax for probabilities",
        }

    def save_native(self, model, folder: Path) -> dict:
        return save_timm(
            model,
            self.recipe.cfg["model"]["name"],
            len(self.state["classes"]),
            self.state["channels"],
            folder,
        )

    def load_native(self, folder: Path, native: dict):
        return load_timm(folder, native)
