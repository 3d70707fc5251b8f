"""Baselines a trained classifier has to beat, fitted on the training split into plain JSON.

- `majority_class`: always the training prior (so the majority class first).
- `pixel_logreg`: multinomial logistic regression on the normalised image shrunk to a small grid
  (8x8 or 16x16 per channel, whichever does better on val): the linear model a practitioner tries
  first, and a strong one on centred, aligned images such as digits and glyphs.
- `hog_logreg`: the same on classical image features: a histogram of oriented gradients (HOG: 9
  unsigned orientations on a 4x4 grid of cells, each cell normalised by its neighbourhood) plus a
  4x4 thumbnail of each channel; stronger where shapes move or colours vary.

The regularisation strength (and the pixel grid) is picked on the validation split. The weights
(feature scaling folded in) live in the run's state, so `dlkit evaluate` scores them from the state
alone.
"""

from __future__ import annotations

import copy
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
PIXEL_GRIDS = (8, 16)  # pixel_logreg's candidate resolutions, picked on val


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


def pixel_features(images: torch.Tensor, grid: int) -> torch.Tensor:
    """Normalised images (B, C, H, W) -> each channel averaged down to grid x grid, (B, C*grid*grid)."""
    return F.adaptive_avg_pool2d(images.float(), grid).flatten(1)


def _features(images: Images, index: list[int], state: dict, featurize) -> np.ndarray:
    mean = torch.tensor(state["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(state["std"]).view(1, -1, 1, 1)
    out = []
    for start in range(0, len(index), 256):
        raw = torch.stack([images.raw(i) for i in index[start : start + 256]]).float() / 255
        out.append(featurize((raw - mean) / std))
    return torch.cat(out).numpy().astype(np.float64)


def _sample(n: int, limit: int) -> list[int]:
    return list(range(0, n, max(1, -(-n // limit))))


def _fit_logreg(train: Images, val: Images | None, state: dict, seed: int, featurize) -> tuple:
    """Logistic regression on `featurize(images)` of (a sample of) train, C picked on val.

    Returns (model, scaler, val accuracy or None, train images used)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    index = _sample(len(train), MAX_FIT_IMAGES)
    features = _features(train, index, state, featurize)
    scaler = StandardScaler().fit(features)
    x = scaler.transform(features)
    y = np.array([train.labels[i] for i in index])
    has_val = val is not None and len(val) > 0
    if has_val:
        v_index = _sample(len(val), MAX_FIT_IMAGES)
        xv = scaler.transform(_features(val, v_index, state, featurize))
        yv = np.array([val.labels[i] for i in v_index])
    # C from small to large, each fit starting from the last one's weights (the regularisation path):
    # a warm start converges in a fraction of the iterations a cold one needs at large C
    model = LogisticRegression(max_iter=300, tol=1e-3, random_state=seed, warm_start=True)
    best, best_acc = None, -1.0
    for c in C_GRID if has_val else (0.1,):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.set_params(C=c).fit(x, y)
        acc = float((model.predict(xv) == yv).mean()) if has_val else float("nan")
        if best is None or acc > best_acc:
            best, best_acc = copy.deepcopy(model), acc
    return best, scaler, (best_acc if has_val else None), len(index)


def _linear_params(model, scaler, k: int) -> dict:
    """The fitted model as one weight row and bias per class, the feature scaling folded in."""
    # w.(x - m)/s + b = (w/s).x + (b - w.m/s)
    coef = model.coef_ / scaler.scale_
    intercept = model.intercept_ - coef @ scaler.mean_
    weights, bias = np.zeros((k, coef.shape[1])), np.full(k, -1e4)  # a class absent from train: never
    if coef.shape[0] == 1:  # two classes: sklearn keeps one row, scoring the second against the first
        weights[model.classes_[1]], bias[model.classes_] = coef[0], [0.0, intercept[0]]
    else:
        weights[model.classes_], bias[model.classes_] = coef, intercept
    return {
        "C": model.C,
        "coef": [[float(f"{v:.5g}") for v in row] for row in weights],
        "intercept": [float(f"{v:.5g}") for v in bias],
    }


def fit_hog_logreg(train: Images, val: Images | None, state: dict, seed: int) -> dict:
    """Fit on (a sample of) train, pick C on val; JSON-able {C, val_accuracy, coef, intercept, ...}."""
    model, scaler, val_acc, used = _fit_logreg(train, val, state, seed, image_features)
    return {
        "features": f"HOG {BINS} orientations on {GRID}x{GRID} cells + {GRID}x{GRID} thumbnail per channel",
        "train_images": used,
        "val_accuracy": None if val_acc is None else round(val_acc, 4),
        **_linear_params(model, scaler, len(state["classes"])),
    }


def fit_pixel_logreg(train: Images, val: Images | None, state: dict, seed: int) -> dict:
    """Fit on pixels averaged down to each of PIXEL_GRIDS (no larger than the image); keep the best on val."""
    grids = [g for g in PIXEL_GRIDS if g <= state["image_size"]] or [state["image_size"]]
    best = None
    for grid in grids if val is not None and len(val) > 0 else grids[-1:]:
        fitted = _fit_logreg(train, val, state, seed, lambda images, g=grid: pixel_features(images, g))
        if best is None or (fitted[2] or 0.0) > (best[1][2] or 0.0):
            best = (grid, fitted)
    grid, (model, scaler, val_acc, used) = best
    return {
        "features": f"pixels averaged to {grid}x{grid} per channel",
        "grid": grid,
        "train_images": used,
        "val_accuracy": None if val_acc is None else round(val_acc, 4),
        **_linear_params(model, scaler, len(state["classes"])),
    }


def majority_predictor(class_counts: list[int]):
    prior = torch.tensor(class_counts, dtype=torch.float32)
    prior = prior / prior.sum().clamp_min(1)

    def predict(batch: dict) -> dict:
        target = batch["label"]
        return {"preds": prior.expand(len(target), -1).clone(), "target": target}

    return predict


def logreg_predictor(params: dict):
    """Scores of a fitted `hog_logreg` or `pixel_logreg` (pixels when its params name a grid)."""
    coef = torch.tensor(params["coef"], dtype=torch.float32)
    intercept = torch.tensor(params["intercept"], dtype=torch.float32)
    grid = params.get("grid")

    def predict(batch: dict) -> dict:
        images = batch["image"]
        features = image_features(images) if grid is None else pixel_features(images, grid)
        return {"preds": features @ coef.T + intercept, "target": batch["label"]}

    return predict
