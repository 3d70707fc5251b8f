"""Export of the 2D/3D CNN, U-Net or timm classifier: scans resampled and normalised onto the run's grid
-> logits (per class; per class and pixel/voxel for segmentation).

Intensity windowing, spacing and the grid shape are in the copied state (preprocess/state.json); a
segmentation mask is argmax over the class axis, resampled back to each scan with its own geometry.
"""

from __future__ import annotations

from pathlib import Path

from dlkit.export import ExportAdapter
from dlkit.export.native import load_timm, save_timm

from .outputs import decide


class ScanExport(ExportAdapter):
    inputs = ("image",)
    outputs = ("logits",)

    def __init__(self, recipe, state: dict):
        super().__init__(recipe, state)
        name = recipe.cfg["model"]["name"]
        self.timm = name not in ("auto", "cnn", "unet")
        self.formats = ("onnx", "torchscript", "native") if self.timm else ("onnx", "torchscript")

    def agreement(self, ref: tuple, got: tuple) -> tuple[int, int]:
        """Segmentation: the same class per pixel/voxel; classification: the same label (threshold kept)."""
        if self.recipe.segmentation:
            same = ref[0].argmax(1) == got[0].argmax(1)
            return int(same.sum()), same.numel()
        t = self.recipe.cfg["predict"]["threshold"]
        pairs = zip(ref[0].softmax(-1).tolist(), got[0].softmax(-1).tolist(), strict=True)
        same = [decide(r, self.state, t) == decide(g, self.state, t) for r, g in pairs]
        return sum(same), len(same)

    def describe(self) -> dict:
        keep = ("mode", "task", "channels", "classes", "positive", "threshold")
        out = {k: self.state[k] for k in keep if k in self.state}
        out["input"] = (
            "scans resampled and intensity-normalised onto the run's grid (preprocess/state.json), "
            "shape (batch, channels, *grid)"
        )
        out["output"] = (
            "logits per class and pixel/voxel: mask = argmax over axis 1"
            if self.recipe.segmentation
            else "logits per class; softmax for probabilities, threshold for two classes"
        )
        return out

    def save_native(self, model, folder: Path) -> dict:
        name = self.recipe.cfg["model"]["name"]
        return save_timm(model, name, len(self.state["classes"]), self.state["channels"], folder)

    def load_native(self, folder: Path, native: dict):
        return load_timm(folder, native)
