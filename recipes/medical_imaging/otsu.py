"""The `multi_otsu` segmentation baseline: what a radiologist's tool does first with an MRI or CT, split
the intensities into a few levels (multi-level Otsu), then call each level one tissue.

The thresholds come either from the pooled training histogram (`per_image` false: one scale for all
scans) or from each scan's own histogram at prediction time (`per_image` true: robust to a scan that
is brighter or darker overall). The number of levels (classes, up to two more, so that e.g. air and
fluid can both fall to background) and the level -> label mapping are learned on the training masks:
the combination with the best mean foreground Dice on training voxels wins. Everything fitted is a few
numbers (JSON in the run's state).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

BINS = 128
EXTRA_LEVELS = 2  # levels tried beyond the number of classes
MAX_IMAGES = 512  # training images (evenly spaced) used to fit
MAX_VOXELS = 4_000_000  # voxels (evenly spaced) of the pooled histogram


def otsu_thresholds(x: np.ndarray, levels: int, bins: int = BINS) -> list[float]:
    """Multi-level Otsu: the `levels - 1` thresholds that maximise the between-class variance of x.

    Exact on a histogram by dynamic programming over bin boundaries: the best split of bins [0, j)
    into l classes is the best split of [0, i) into l - 1 classes plus the class [i, j).
    """
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return [lo] * (levels - 1)
    counts, edges = np.histogram(x, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    w = np.concatenate([[0.0], np.cumsum(counts)])
    s = np.concatenate([[0.0], np.cumsum(counts * centres)])
    dw, ds = w[None, :] - w[:, None], s[None, :] - s[:, None]  # class [i, j): weight, sum
    gain = np.divide(ds**2, dw, out=np.zeros_like(ds), where=dw > 0)
    gain[np.tril_indices(bins + 1)] = -np.inf  # a class needs i < j
    best, back = gain[0], []
    for _ in range(levels - 1):
        total = best[:, None] + gain
        back.append(total.argmax(0))
        best = total.max(0)
    cuts, j = [], bins
    for arg in reversed(back):
        j = int(arg[j])
        cuts.append(j)
    return [float(edges[c]) for c in reversed(cuts)]


def _levels(x: np.ndarray, thresholds: list[float]) -> np.ndarray:
    return np.searchsorted(np.asarray(thresholds), x, side="right")


def _mean_dice(confusion: np.ndarray, mapping: list[int], k: int) -> float:
    """Mean foreground Dice over training voxels of calling level l label mapping[l]."""
    called = np.zeros((k, confusion.shape[1]))
    for level, label in enumerate(mapping):
        called[label] += confusion[level]
    tp, pred, true = np.diag(called), called.sum(1), called.sum(0)
    seen = true[1:] > 0
    dice = 2 * tp[1:] / np.maximum(pred[1:] + true[1:], 1)
    return float(dice[seen].mean()) if seen.any() else 0.0


def _best_mapping(confusion: np.ndarray, k: int) -> tuple[list[int], float]:
    """Level -> label: the majority label of each level, then relabel one level at a time while the
    mean Dice rises (coordinate ascent: exact search is k**levels, too many with many classes)."""
    mapping = confusion.argmax(1).tolist()
    score, improved = _mean_dice(confusion, mapping, k), True
    while improved:
        improved = False
        for level, label in itertools.product(range(len(mapping)), range(k)):
            trial = mapping[:level] + [label] + mapping[level + 1 :]
            trial_score = _mean_dice(confusion, trial, k)
            if trial_score > score + 1e-12:
                mapping, score, improved = trial, trial_score, True
    return mapping, score


def fit(images: list[torch.Tensor], targets: list[torch.Tensor], k: int) -> dict:
    """Pick per_image or pooled thresholds, the number of levels and the mapping by training Dice."""
    step = max(1, len(images) // MAX_IMAGES)
    xs = [im.float().mean(0).flatten().numpy() for im in images[::step]]
    ys = [t.long().flatten().numpy() for t in targets[::step]]
    pooled = np.concatenate(xs)
    pooled = pooled[:: max(1, pooled.size // MAX_VOXELS)]
    best: dict = {"score": -1.0}
    for levels in range(max(2, k), k + EXTRA_LEVELS + 1):
        shared = otsu_thresholds(pooled, levels)
        for per_image in (False, True):
            confusion = np.zeros((levels, k))
            for x, y in zip(xs, ys, strict=True):
                found = _levels(x, otsu_thresholds(x, levels) if per_image else shared)
                np.add.at(confusion, (found, y), 1)
            mapping, score = _best_mapping(confusion, k)
            if score > best["score"]:
                best = {"score": score, "levels": levels, "per_image": per_image, "labels": mapping}
                best["thresholds"] = None if per_image else shared
    return {key: best[key] for key in ("levels", "per_image", "thresholds", "labels")}


def predict(images: torch.Tensor, fitted: dict) -> torch.Tensor:
    """(N, C, *grid) images -> (N, *grid) labels."""
    mapping = torch.tensor(fitted["labels"])
    out = []
    for image in images.float().mean(1).cpu().numpy():
        thresholds = fitted["thresholds"] or otsu_thresholds(image, fitted["levels"])
        out.append(mapping[torch.from_numpy(_levels(image, thresholds))])
    return torch.stack(out).to(images.device)
