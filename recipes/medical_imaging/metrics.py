"""The recipe's metrics, all torchmetrics `Metric`s, fed what `step` and the baselines return.

Segmentation: `preds` and `target` are label maps (N, *grid). Dice and IoU are torchmetrics' per-image
scores of each foreground class (background excluded), averaged over images, then over classes. An
image where neither the reference nor the prediction holds a class says nothing about it and is
skipped; a false positive on an image without the class scores 0 (the nnU-Net convention).

Classification with two labels: `preds` is the positive label's probability and `target` is 1 for the
positive label, so AUROC, sensitivity and specificity are the binary ones, thresholded at the decision
threshold chosen on validation. With more labels: probabilities per label, macro averages.
"""

from __future__ import annotations

import torch
from torchmetrics.segmentation import DiceScore, MeanIoU


class ClassDice(DiceScore):
    """torchmetrics' samplewise Dice per foreground class; `compute` gives the mean over classes, or
    the Dice of class `cls` alone; `by_class` gives every foreground class's."""

    def __init__(self, num_classes: int, cls: int | None = None, **kwargs):
        super().__init__(
            num_classes=num_classes,
            include_background=False,
            average="none",
            aggregation_level="samplewise",
            input_format="index",
            **kwargs,
        )
        self.cls = cls

    def by_class(self) -> torch.Tensor:
        return super().compute()

    def compute(self) -> torch.Tensor:
        scores = self.by_class()
        return scores.nanmean() if self.cls is None else scores[self.cls - 1]


class ClassIoU(MeanIoU):
    """torchmetrics' per-image IoU per foreground class (images where the class is in neither the
    reference nor the prediction skipped), averaged over images; then over classes, or class `cls`."""

    def __init__(self, num_classes: int, cls: int | None = None, **kwargs):
        super().__init__(
            num_classes=num_classes, include_background=False, per_class=True, input_format="index", **kwargs
        )
        self.cls = cls

    def by_class(self) -> torch.Tensor:
        return self.score / self.num_batches  # NaN for a class no image has shown yet

    def compute(self) -> torch.Tensor:
        scores = self.by_class()
        return scores.nanmean() if self.cls is None else scores[self.cls - 1]


def segmentation_metrics(classes: list[str]) -> dict:
    """Mean foreground Dice (monitored) and IoU; per class too when there are several foreground classes."""
    k = len(classes)
    out = {"dice": ClassDice(k), "iou": ClassIoU(k)}
    if k > 2:
        for c in range(1, k):
            out[f"dice_{classes[c]}"] = ClassDice(k, c)
            out[f"iou_{classes[c]}"] = ClassIoU(k, c)
    return out


def classification_metrics(k: int, threshold: float) -> dict:
    """AUROC (monitored), accuracy, sensitivity, specificity and the confusion matrix."""
    from torchmetrics import classification as tmc

    if k == 2:
        return {
            "auroc": tmc.BinaryAUROC(),
            "accuracy": tmc.BinaryAccuracy(threshold=threshold),
            "sensitivity": tmc.BinaryRecall(threshold=threshold),
            "specificity": tmc.BinarySpecificity(threshold=threshold),
            "confusion_matrix": tmc.BinaryConfusionMatrix(threshold=threshold),
        }
    return {
        "auroc": tmc.MulticlassAUROC(k),
        "accuracy": tmc.MulticlassAccuracy(k, average="micro"),
        "sensitivity": tmc.MulticlassRecall(k, average="macro"),
        "specificity": tmc.MulticlassSpecificity(k, average="macro"),
        "confusion_matrix": tmc.MulticlassConfusionMatrix(k),
    }


def class_scores(probs: torch.Tensor, labels: torch.Tensor, positive: int | None) -> dict:
    """Per-label probabilities and label indices -> {'preds', 'target'} in the form the metrics take:
    with two labels (`positive` given) the positive label's probability and 1 for the positive label."""
    if positive is not None:
        return {"preds": probs[:, positive], "target": (labels == positive).long()}
    return {"preds": probs, "target": labels}
