"""COCO mAP as torchmetrics `Metric`s: each a MeanAveragePrecision reporting one of its results."""

from __future__ import annotations

import torch
from torchmetrics.detection import MeanAveragePrecision

KEYS = ("map_50", "map", "map_75", "ap_per_class")


class MeanAP(MeanAveragePrecision):
    """torchmetrics' COCO mAP (pycocotools backend, boxes in pixel xyxy) reporting one result, `key`:

    `map` (AP over IoU 0.5:0.95), `map_50`, `map_75`, or `ap_per_class` (AP over IoU 0.5:0.95 per class
    in class order; -1 for a class with no boxes in the data). Its states are the library's (lists
    gathered across processes under DDP); `update` takes torchvision-style (preds, target) lists.
    """

    warn_on_many_detections = False  # COCO scores the best 100 per image, as intended

    def __init__(self, key: str, num_classes: int, **kwargs):
        if key not in KEYS:
            raise ValueError(f"MeanAP key must be one of {KEYS}, not {key!r}")
        super().__init__(
            box_format="xyxy",
            iou_type="bbox",
            class_metrics=key == "ap_per_class",
            backend="pycocotools",
            **kwargs,
        )
        self.key = key
        self.num_classes = num_classes

    def compute(self) -> torch.Tensor:
        result = super().compute()
        if self.key != "ap_per_class":
            return result[self.key]
        per_class = torch.full((self.num_classes,), -1.0)
        labels = result["classes"].reshape(-1).tolist()
        for label, ap in zip(labels, result["map_per_class"].reshape(-1).tolist(), strict=True):
            if 1 <= label <= self.num_classes:
                per_class[label - 1] = ap
        return per_class


def mean_ap_metrics(num_classes: int) -> dict[str, MeanAP]:
    """The recipe's metrics, `map_50` (the monitored one) first."""
    return {key: MeanAP(key, num_classes) for key in KEYS}
