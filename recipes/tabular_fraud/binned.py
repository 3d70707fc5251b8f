"""Ranking metrics in fixed memory, for streamed tables: each scorer keeps two histograms of its scores
(positives and negatives) over STREAM_BINS bins evenly spaced in log-odds, instead of every score (12 bytes
a row, copied again when sorted). A batch costs one bincount, whatever the number of bins.

Scores that fall in one bin count as tied, as equal scores do in the exact metrics; with 32,769 bins over
log-odds -16..16 two scores share a bin only when their odds differ by less than 0.1%, so the values agree
with the exact ones to about 1e-4 (tests/test_tabular_stream.py). Inputs are probabilities in [0, 1].
"""

from __future__ import annotations

import torch
from dlkit_recipes.tabular_fraud.config import STREAM_BINS
from torchmetrics import Metric

LOG_ODDS = 16.0  # bins span log-odds -16..16 (probabilities 1e-7 .. 1 - 1e-7); beyond, the end bins


class ScoreHistogram(Metric):
    """Counts of positive and negative rows per score bin; subclasses turn them into one number."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, bins: int = STREAM_BINS):
        super().__init__()
        self.bins = bins
        self.add_state("positives", torch.zeros(bins, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("negatives", torch.zeros(bins, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        odds = torch.logit(preds.detach().reshape(-1).double().clamp(1e-12, 1 - 1e-12))
        scale = (self.bins - 1) / (2 * LOG_ODDS)
        index = ((odds + LOG_ODDS) * scale).round().clamp(0, self.bins - 1).long()
        positive = target.reshape(-1).bool()
        self.positives += torch.bincount(index[positive], minlength=self.bins)
        self.negatives += torch.bincount(index[~positive], minlength=self.bins)

    def curve(self) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        """(true positives, false positives) flagging every bin from the top down to each non-empty
        bin, and the totals of positives and negatives."""
        pos, neg = self.positives.flip(0), self.negatives.flip(0)
        seen = (pos + neg) > 0
        tp, fp = pos.cumsum(0)[seen].double(), neg.cumsum(0)[seen].double()
        return tp, fp, int(pos.sum()), int(neg.sum())


class BinnedAveragePrecision(ScoreHistogram):
    """Area under the precision-recall steps: sum of (recall gained) x (precision there)."""

    def compute(self) -> torch.Tensor:
        tp, fp, positives, _ = self.curve()
        if positives == 0:
            return torch.tensor(float("nan"))
        recall = tp / positives
        gained = torch.diff(recall, prepend=recall.new_zeros(1))
        return (gained * tp / (tp + fp)).sum().float()


class BinnedAUROC(ScoreHistogram):
    """Area under the ROC curve (trapezoids; tied scores make a diagonal, as in the exact metric)."""

    def compute(self) -> torch.Tensor:
        tp, fp, positives, negatives = self.curve()
        if positives == 0 or negatives == 0:
            return torch.tensor(float("nan"))
        zero = tp.new_zeros(1)
        return torch.trapezoid(torch.cat([zero, tp / positives]), torch.cat([zero, fp / negatives])).float()


class BinnedRecallAtPrecision(ScoreHistogram):
    """The highest recall at a threshold whose precision reaches `min_precision` (0 when none does)."""

    def __init__(self, min_precision: float, bins: int = STREAM_BINS):
        super().__init__(bins)
        self.min_precision = min_precision

    def compute(self) -> torch.Tensor:
        tp, fp, positives, _ = self.curve()
        reached = tp / (tp + fp) >= self.min_precision
        if positives == 0 or not reached.any():
            return torch.tensor(0.0)
        return (tp[reached].max() / positives).float()
