"""Export of the detectors. centernet-tiny (the default): letterboxed images -> class heatmap logits and
per-cell boxes, one graph; the peak picking (top-k and NMS) runs after it in `decode`, the same code as
the PyTorch path. torchvision detectors: native only (a state dict and the constructor call).
"""

from __future__ import annotations

import torch
from torch import nn

from dlkit.export import CallModel, ExportAdapter
from dlkit.export.native import save_state_dict

from .model import decode

PAD = 100  # detections per image in the padded outputs of a torchvision detector (native parity only)


class _Dense(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.dense(image)


class _Padded(nn.Module):
    """A torchvision detector's per-image detections as fixed-size tensors (boxes, scores, labels)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        dets = self.model(list(image))
        boxes = torch.zeros(len(dets), PAD, 4)
        scores = torch.zeros(len(dets), PAD)
        labels = torch.full((len(dets), PAD), -1.0)
        for i, d in enumerate(dets):
            n = min(PAD, len(d["scores"]))
            boxes[i, :n], scores[i, :n], labels[i, :n] = d["boxes"][:n], d["scores"][:n], d["labels"][:n]
        return boxes, scores, labels


class DetectionExport(ExportAdapter):
    inputs = ("image",)

    def __init__(self, recipe, state: dict):
        super().__init__(recipe, state)
        m = recipe.cfg["model"]
        self.centernet = m["name"] == "centernet-tiny"
        self.max_detections = m["max_detections"]
        self.formats = ("onnx", "torchscript") if self.centernet else ("native",)
        self.outputs = ("heatmap", "boxes") if self.centernet else ("boxes", "scores", "labels")

    def graph(self, model: nn.Module) -> nn.Module:
        return _Dense(model) if self.centernet else _Padded(model)

    def _decode(self, out: tuple, side: float) -> list[dict]:
        return decode(out[0], out[1], side, self.max_detections)

    def as_model(self, forward) -> nn.Module:
        def detect(images):
            x = torch.stack(list(images))
            return self._decode(forward(x), float(x.shape[-1]))

        return CallModel(detect)

    def agreement(self, ref: tuple, got: tuple) -> tuple[int, int]:
        """Images whose detections are the same: same labels, in the same order, boxes within a pixel."""
        if self.centernet:
            side = float(self.state["image_size"])
            ref, got = self._decode(ref, side), self._decode(got, side)
            pairs = [
                (r["boxes"], r["labels"], g["boxes"], g["labels"]) for r, g in zip(ref, got, strict=True)
            ]
        else:
            pairs = list(zip(ref[0], ref[2], got[0], got[2], strict=True))
        same = [
            rl.shape == gl.shape and bool((rl == gl).all()) and bool(((rb - gb).abs() <= 1.0).all())
            for rb, rl, gb, gl in pairs
        ]
        return sum(same), len(same)

    def describe(self) -> dict:
        side = self.state["image_size"]
        return {
            "input": f"RGB image letterboxed (scaled, padded right/bottom) to {side}x{side}, in [0, 1]",
            "image_size": side,
            "labels": self.state["classes"],
            "output": (
                "heatmap logits (batch, classes, H, W) and per-cell xyxy pixel boxes (batch, H, W, 4): "
                "detections are the 3x3 peaks of sigmoid(heatmap) above 0.01, best "
                f"{self.max_detections}, class-wise NMS at IoU 0.7"
                if self.centernet
                else "torchvision detections; labels 1..K (0 is background)"
            ),
        }

    def save_native(self, model: nn.Module, folder) -> dict:
        m = self.recipe.cfg["model"]
        kwargs = {"weights": None, "weights_backbone": None, "num_classes": len(self.state["classes"]) + 1}
        if not m["name"].startswith("ssd"):
            kwargs.update(min_size=self.state["image_size"], max_size=self.state["image_size"])
        save_state_dict(model, folder / "model.safetensors")
        call = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        return {
            "library": "torchvision",
            "weights": "model.safetensors",
            "architecture": m["name"],
            "kwargs": kwargs,
            "load": f"model = torchvision.models.get_model({m['name']!r}, {call}); "
            "model.load_state_dict(safetensors.torch.load_file('<this folder>/model.safetensors'))",
        }

    def load_native(self, folder, native: dict) -> nn.Module:
        import torchvision
        from safetensors.torch import load_file

        model = torchvision.models.get_model(native["architecture"], **native["kwargs"])
        model.load_state_dict(load_file(str(folder / native["weights"])))
        return model
