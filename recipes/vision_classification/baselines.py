"""Baselines a trained classifier has to beat, fitted on the training split into plain JSON.

- `majority_class`: always the training prior (so the majority class first).
- `hog_logreg`: multinomial logistic regression on classical image features of the normalised image:
  a histogram of oriented gradients (HOG: 9 unsigned orientations on a 4x4 grid of cells, each cell
  normalised by its neighbourhood) plus a 4x4 thumbnail of each channel. The regularisation strength is picked
  on the validation split. Its weights (feature scaling folded in) live in the run's state, so
  `dlkit evaluate` scores it from the state alone.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch.nn import functional as F

from .data import Images

GRID = 4  # cells (and thumbnail pixels) per side
BINS = 9  # unsigned gradient orientations per cell
MAX_FIT_IMAGES = 5000  # images the logistic regression is fitted on, at most (a strided sample)
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)


def hog(images: torch.Tensor, grid: int = GRID, bins: int = BINS) -> torch.Tensor:
    """(B, C, H, W) -> (B, bins*grid*grid): gradient magnitude binned by orientation (0-180 degrees, soft
    binning) per cell, each cell divided by the gradient energy of its 3x3 cell neighbourhood."""
    grey = images.float().mean(1, keepdim=True)
    dx = torch.tensor([[[[-1.0, 0.0, 1.0]]]])
    gx = F.conv2d(F.pad(grey, (1, 1, 0, 0), mode="replicate"), dx)
    gy = F.conv2d(F.pad(grey, (0, 0, 1, 1), mode="replicate"), dx.transpose(2, 3))
    magnitude = torch.sqrt(gx**2 + gy**2)
    position = torch.atan2(gy, gx).remainder(math.pi) / math.pi * bins - 0.5
    low = torch.floor(position)
    weight = position - low
    low = low.long().remainder(bins)
    hist = torch.zeros(images.shape[0], bins, *images.shape[2:])
    hist.scatter_add_(1, low, magnitude * (1 - weight))
    hist.scatter_add_(1, (low + 1).remainder(bins), magnitude * weight)
    cells = F.adaptive_avg_pool2d(hist, grid)
    energy = F.avg_pool2d(cells.pow(2).sum(1, keepdim=True), 3, 1, 1, count_include_pad=False)
    return (cells / (3 * energy.sqrt() + 1e-3)).flatten(1)


def image_features(images: torch.Tensor) -> torch.Tensor:
    """Normalised images (B, C, H, W) -> HOG plus a GRID x GRID thumbnail per channel, (B, features)."""
    return torch.cat([hog(images), F.adaptive_avg_pool2d(images.float(), GRID).flatten(1)], 1)


def _features(images: Images, index: list[int], state: dict) -> np.ndarray:
    mean = torch.tensor(state["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(state["std"]).view(1, -1, 1, 1)
    out = []
    for start in range(0, len(index), 256):
        raw = torch.stack([images.raw(i) for i in index[start : start + 256]]).float() / 255
        out.append(image_features((raw - mean) / std))
    return torch.cat(out).numpy().astype(np.float64)


def _sample(n: int, limit: int) -> list[int]:
    return list(range(0, n, max(1, -(-n // limit))))


def fit_hog_logreg(train: Images, val: Images | None, state: dict, seed: int) -> dict:
    """Fit on (a sample of) train, pick C on val; JSON-able {C, val_accuracy, coef, intercept, ...}."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    k = len(state["classes"])
    index = _sample(len(train), MAX_FIT_IMAGES)
    features = _features(train, index, state)
    scaler = StandardScaler().fit(features)
    x = scaler.transform(features)
    y = np.array([train.labels[i] for i in index])
    has_val = val is not None and len(val) > 0
    if has_val:
        v_index = _sample(len(val), MAX_FIT_IMAGES)
        xv = scaler.transform(_features(val, v_index, state))
        yv = np.array([val.labels[i] for i in v_index])
    best, best_acc = None, -1.0
    for c in C_GRID if has_val else (0.1,):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = LogisticRegression(C=c, max_iter=300, random_state=seed).fit(x, y)
        acc = float((model.predict(xv) == yv).mean()) if has_val else float("nan")
        if best is None or acc > best_acc:
            best, best_acc = model, acc
    # Fold the scaling into the weights: w.(x - m)/s + b = (w/s).x + (b - w.m/s); one row per class.
    coef = best.coef_ / scaler.scale_
    intercept = best.intercept_ - coef @ scaler.mean_
    weights, bias = np.zeros((k, coef.shape[1])), np.full(k, -1e4)  # a class absent from train: never
    if coef.shape[0] == 1:  # two classes: sklearn keeps one row, scoring the second against the first
        weights[best.classes_[1]], bias[best.classes_] = coef[0], [0.0, intercept[0]]
    else:
        weights[best.classes_], bias[best.classes_] = coef, intercept
    return {
        "features": f"HOG {BINS} orientations on {GRID}x{GRID} cells + {GRID}x{GRID} thumbnail per channel",
        "C": best.C,
        "train_images": len(index),
        "val_accuracy": round(best_acc, 4) if has_val else None,
        "coef": [[float(f"{v:.5g}") for v in row] for row in weights],
        "intercept": [float(f"{v:.5g}") for v in bias],
    }


def majority_predictor(class_counts: list[int]):
    prior = torch.tensor(class_counts, dtype=torch.float32)
    prior = prior / prior.sum().clamp_min(1)

    def predict(batch: dict) -> dict:
        target = batch["label"]
        return {"preds": prior.expand(len(target), -1).clone(), "target": target}

    return predict


def hog_logreg_predictor(params: dict):
    coef = torch.tensor(params["coef"], dtype=torch.float32)
    intercept = torch.tensor(params["intercept"], dtype=torch.float32)

    def predict(batch: dict) -> dict:
        return {"preds": image_features(batch["image"]) @ coef.T + intercept, "target": batch["label"]}

    return predict
