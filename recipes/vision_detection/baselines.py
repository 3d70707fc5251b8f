"""Baselines that never look at the pixels, fitted on the training boxes and kept in the state (JSON).

- `centre_prior` (trivial): each class's mean box size, centred in the image, scored by the class's
  share of the training boxes.
- `kmeans_priors` (strong classical): per class, the boxes that best cover its training boxes (k-means
  with 1 - GIoU as the distance, the way YOLOv2 picks anchors, but keeping positions), each scored by
  the class's share times its cluster's share. It finds every place and shape objects usually take
  (cars low in a street scene, a part in the middle of a tray), so a detector must beat where objects
  usually are, not just "something somewhere".
"""

from __future__ import annotations

import statistics

import numpy as np
import torch
from dlkit_recipes.vision_detection.boxes import Annotated

PRIORS_PER_CLASS = 25  # COCO scores the best 100 boxes per image and class
MAX_FIT_BOXES = 5000  # per class; k-means on more says nothing new


def _relative(images: list[Annotated], cls: str) -> np.ndarray:
    """The class's training boxes as xyxy fractions of their image's width and height."""
    return np.array(
        [
            [x1 / im.width, y1 / im.height, x2 / im.width, y2 / im.height]
            for im in images
            for (x1, y1, x2, y2), lab in zip(im.boxes, im.labels, strict=True)
            if lab == cls
        ],
        dtype=np.float64,
    ).reshape(-1, 4)


def giou_kmeans(boxes: np.ndarray, k: int, seed: int, iters: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """`k` xyxy boxes (fewer when there are fewer distinct boxes) minimising 1 - GIoU to their members,
    and each one's share of the boxes, largest first."""
    from torchvision.ops import generalized_box_iou

    rng = np.random.default_rng(seed)
    if len(boxes) > MAX_FIT_BOXES:
        boxes = boxes[rng.choice(len(boxes), MAX_FIT_BOXES, replace=False)]
    distinct = np.unique(boxes.round(4), axis=0)
    k = min(k, len(distinct))
    centres = distinct[rng.choice(len(distinct), k, replace=False)]
    data = torch.from_numpy(boxes)
    for _ in range(iters):
        assign = generalized_box_iou(data, torch.from_numpy(centres)).argmax(1).numpy()
        moved = np.stack(
            [boxes[assign == j].mean(0) if (assign == j).any() else centres[j] for j in range(k)]
        )
        if np.allclose(moved, centres, atol=1e-6):
            break
        centres = moved
    share = np.bincount(assign, minlength=k) / len(boxes)
    return merge_overlapping(centres, share)


def merge_overlapping(
    centres: np.ndarray, share: np.ndarray, iou: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Largest share first; a prior overlapping a kept one by more than `iou` would only ever be a
    duplicate detection, so it is dropped and its share joins the kept one it overlaps most."""
    from torchvision.ops import box_iou

    order = np.argsort(-share, kind="stable")
    centres, share = centres[order], share[order].copy()
    overlap = box_iou(torch.from_numpy(centres), torch.from_numpy(centres)).numpy()
    kept: list[int] = []
    for j in range(len(centres)):
        clash = [i for i in kept if overlap[i, j] > iou]
        if clash:
            share[max(clash, key=lambda i: overlap[i, j])] += share[j]
        else:
            kept.append(j)
    order = sorted(kept, key=lambda i: -share[i])
    return centres[order], share[order]


def fit_priors(train: list[Annotated], classes: list[str], seed: int) -> dict:
    """Both baselines' numbers: per class its share of the boxes, mean relative size, k-means priors."""
    rel = {c: _relative(train, c) for c in classes}
    total = sum(len(v) for v in rel.values())
    share = [len(rel[c]) / total for c in classes]
    size = [
        [statistics.fmean(rel[c][:, 2] - rel[c][:, 0]), statistics.fmean(rel[c][:, 3] - rel[c][:, 1])]
        for c in classes
    ]
    boxes, scores = [], []
    for c, s in zip(classes, share, strict=True):
        centres, weight = giou_kmeans(rel[c], PRIORS_PER_CLASS, seed)
        boxes.append(centres.round(5).tolist())
        scores.append([round(s * w, 6) for w in weight])
    return {
        "share": [round(s, 5) for s in share],
        "size": [[round(w, 5), round(h, 5)] for w, h in size],
        "kmeans": {"boxes": boxes, "scores": scores},
    }


class PriorBoxes:
    """A baseline predictor: the same boxes (fractions of the image) in every test image, letterboxed
    like the model's input, so the recipe's own mAP scores it like the model."""

    def __init__(self, boxes: list[list[list[float]]], scores: list[list[float]]):
        self.boxes = torch.tensor([b for per_class in boxes for b in per_class], dtype=torch.float32)
        self.scores = torch.tensor([s for per_class in scores for s in per_class], dtype=torch.float32)
        self.labels = torch.tensor([k + 1 for k, per_class in enumerate(boxes) for _ in per_class])

    def __call__(self, batch: dict) -> dict:
        preds, target = [], []
        for scale, size, boxes, labels in zip(
            batch["scale"], batch["size"], batch["boxes"], batch["labels"], strict=True
        ):
            w, h = (size * scale).tolist()  # the picture's part of the letterboxed input
            pixels = self.boxes * torch.tensor([w, h, w, h])
            preds.append({"boxes": pixels, "scores": self.scores.clone(), "labels": self.labels.clone()})
            target.append({"boxes": boxes, "labels": labels})
        return {"preds": preds, "target": target}


def baseline_predictors(prior: dict) -> dict[str, PriorBoxes]:
    centred = [
        [[[0.5 - w / 2, 0.5 - h / 2, 0.5 + w / 2, 0.5 + h / 2]] for w, h in prior["size"]],
        [[s] for s in prior["share"]],
    ]
    return {
        "centre_prior": PriorBoxes(*centred),
        "kmeans_priors": PriorBoxes(prior["kmeans"]["boxes"], prior["kmeans"]["scores"]),
    }
