"""The metrics of a fraud scorer: torchmetrics objects, imported only when metrics are asked for (predict
does without torchmetrics, which is slow to import)."""

from __future__ import annotations

import torch
from torchmetrics.classification import (
    BinaryAUROC,
    BinaryAveragePrecision,
    BinaryConfusionMatrix,
    BinaryF1Score,
    BinaryPrecision,
    BinaryRecall,
    BinaryRecallAtFixedPrecision,
)

MIN_PRECISION = 0.9  # recall_at_precision_90


class RecallAtPrecision(BinaryRecallAtFixedPrecision):
    """torchmetrics' recall at the lowest threshold whose precision reaches `min_precision` (0 when none
    does), without the threshold it also returns: that one is on each scorer's own scale."""

    def compute(self) -> torch.Tensor:
        return super().compute()[0]


def fraud_metrics(threshold: float) -> dict:
    """Ranking metrics (AUPRC, AUROC, recall at 90% precision) and decisions at `threshold` (score > it)."""
    return {
        "average_precision": BinaryAveragePrecision(),
        "auroc": BinaryAUROC(),
        "precision": BinaryPrecision(threshold=threshold),
        "recall": BinaryRecall(threshold=threshold),
        "f1": BinaryF1Score(threshold=threshold),
        "recall_at_precision_90": RecallAtPrecision(min_precision=MIN_PRECISION),
        "confusion_matrix": BinaryConfusionMatrix(threshold=threshold),
    }
