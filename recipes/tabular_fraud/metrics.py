"""The metrics of a fraud scorer: torchmetrics objects, imported only when metrics are asked for (predict
does without torchmetrics, which is slow to import)."""

from __future__ import annotations

import torch
from dlkit_recipes.tabular_fraud.binned import BinnedAUROC, BinnedAveragePrecision, BinnedRecallAtPrecision
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


def fraud_metrics(threshold: float, binned: bool = False) -> dict:
    """Ranking metrics (AUPRC, AUROC, recall at 90% precision) and decisions at `threshold` (score > it).
    `binned` (streamed tables): the ranking metrics on score histograms, in memory that does not grow
    with the rows (binned.py)."""
    if binned:
        ranking = {
            "average_precision": BinnedAveragePrecision(),
            "auroc": BinnedAUROC(),
            "recall_at_precision_90": BinnedRecallAtPrecision(MIN_PRECISION),
        }
    else:
        ranking = {
            "average_precision": BinaryAveragePrecision(),
            "auroc": BinaryAUROC(),
            "recall_at_precision_90": RecallAtPrecision(min_precision=MIN_PRECISION),
        }
    return {
        "average_precision": ranking["average_precision"],
        "auroc": ranking["auroc"],
        "precision": BinaryPrecision(threshold=threshold),
        "recall": BinaryRecall(threshold=threshold),
        "f1": BinaryF1Score(threshold=threshold),
        "recall_at_precision_90": ranking["recall_at_precision_90"],
        "confusion_matrix": BinaryConfusionMatrix(threshold=threshold),
    }
