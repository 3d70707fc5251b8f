"""Face metrics as torchmetrics `Metric`s: each gathers every embedding of the split, then scores.

A scorer's `preds` are (B, 1 + D): column 0 its decision threshold calibrated on validation pairs
(NaN: the run's, from the state; before calibration, the best cut on the pairs scored), then its
embedding. Baselines calibrate their own threshold, so every scorer's `accuracy` is at its own
validation-chosen cut. `target` is (B, 2): the person within the split and the image's position in
it, so embeddings are put back in dataset order (and de-duplicated under DDP) before pairs are drawn.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torchmetrics import Metric

from .verification import score_embeddings


class FaceScore(Metric):
    """One figure of `score_embeddings` (`key`) over every embedding seen since the last reset."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, key: str, pairs: int, gallery_size: int, seed: int, threshold: float | None):
        super().__init__()
        self.key, self.pairs, self.gallery_size, self.seed = key, pairs, gallery_size, seed
        self.threshold = threshold
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        self.preds.append(preds.detach().float())
        self.target.append(target.detach().long())

    def compute(self) -> torch.Tensor:
        preds = self.preds if isinstance(self.preds, torch.Tensor) else torch.cat(self.preds)
        target = self.target if isinstance(self.target, torch.Tensor) else torch.cat(self.target)
        preds, target = preds.cpu().numpy(), target.cpu().numpy()
        _, first = np.unique(target[:, 1], return_index=True)  # dataset order, each image once
        preds, target = preds[first], target[first]
        own = float(preds[0, 0]) if len(preds) else math.nan
        threshold = own if math.isfinite(own) else self.threshold
        scores = score_embeddings(
            preds[:, 1:].astype(np.float64), target[:, 0], self.pairs, self.gallery_size, self.seed, threshold
        )
        return torch.tensor(scores[self.key], dtype=torch.float64)


KEYS = ("verification_auc", "eer", "tar_at_far_0.01", "tar_at_far_0.001", "accuracy", "rank1", "rank5")


def face_metrics(pairs: int, gallery_size: int, seed: int, threshold: float | None) -> dict[str, Metric]:
    return {k: FaceScore(k, pairs, gallery_size, seed, threshold) for k in KEYS}


def scorer_preds(embeddings: torch.Tensor, threshold: float | None = None) -> torch.Tensor:
    """(B, D) embeddings -> (B, 1 + D) preds with the scorer's threshold (NaN: the run's) in column 0."""
    value = math.nan if threshold is None else threshold
    column = torch.full((len(embeddings), 1), value, device=embeddings.device)
    return torch.cat([column, embeddings.float()], 1)


def face_target(batch: dict) -> torch.Tensor:
    return torch.stack([torch.as_tensor(batch["label"]), torch.as_tensor(batch["index"])], 1)
