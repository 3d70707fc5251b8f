"""Baselines the model has to beat, fitted on the training split into the state (so `dlkit evaluate`
scores them from the run alone) and scored by the core with the recipe's own metrics.

Segmentation: `all_background` (the trivial answer: no finding anywhere) and `multi_otsu`, the
classical one: multi-level Otsu thresholds on the intensity (on the same normalised grid the model
sees, mean over channels), each level mapped to a label learned on the training masks (see `otsu`).

Classification: `majority` (always the most common training label) and `histogram_logreg`: logistic
regression on a few intensity-histogram features of each scan (per channel: the share of voxels above
high quantiles of the training intensities, and the maximum), standardised on train.
"""

from __future__ import annotations

import numpy as np
import torch
from dlkit_recipes.medical_imaging import otsu
from dlkit_recipes.medical_imaging.metrics import class_scores
from torch.nn import functional as F

TAIL_QUANTILES = [0.5, 0.75, 0.9, 0.95, 0.975, 0.99, 0.995, 0.999]
MAX_VOXELS = 4_000_000  # voxels sampled (evenly) to fit the intensity quantiles


def fit(train, state: dict) -> dict:
    """What the classical baseline needs, fitted on the training examples (JSON-serialisable)."""
    if state["task"] == "segmentation":
        return {"multi_otsu": otsu.fit(train.images, train.targets, len(state["classes"]))}
    counts = np.bincount(np.asarray(train.targets, dtype=int), minlength=len(state["classes"]))
    return {"prior": counts.tolist(), "histogram_logreg": fit_logreg(train.images, train.targets)}


def predictors(state: dict) -> dict:
    """Name -> predictor(batch) -> {'preds', 'target'} in the form `step` returns them."""
    fitted = state["baselines"]
    if state["task"] == "segmentation":
        return {
            "all_background": lambda batch: {
                "preds": torch.zeros_like(batch["mask"]),
                "target": batch["mask"],
            },
            "multi_otsu": lambda batch: {
                "preds": otsu.predict(batch["image"], fitted["multi_otsu"]),
                "target": batch["mask"],
            },
        }
    k = len(state["classes"])
    positive = state["positive"] if k == 2 else None
    majority = int(np.argmax(fitted["prior"]))

    def constant(batch: dict) -> dict:
        probs = F.one_hot(torch.full((len(batch["label"]),), majority), k).float()
        return class_scores(probs, batch["label"], positive)

    def logreg(batch: dict) -> dict:
        return class_scores(
            logreg_probs(batch["image"], fitted["histogram_logreg"], k), batch["label"], positive
        )

    return {"majority": constant, "histogram_logreg": logreg}


# --- classification: logistic regression on histogram features ------------------------------------------
def histogram_features(images: torch.Tensor, levels: list[list[float]]) -> np.ndarray:
    """(N, C, *grid) -> (N, F): per channel, log share of voxels above each level, and the maximum."""
    flat = images.float().flatten(2)  # (N, C, V)
    columns = []
    for c, channel_levels in enumerate(levels):
        for level in channel_levels:
            share = (flat[:, c] > level).float().mean(1)
            columns.append(torch.log10(share + 1e-5))
        columns.append(flat[:, c].amax(1))
    return torch.stack(columns, 1).double().numpy()


def fit_logreg(images: list[torch.Tensor], labels: list[int]) -> dict:
    from sklearn.linear_model import LogisticRegression

    step = max(1, sum(im[0].numel() for im in images) // MAX_VOXELS)
    channels = images[0].shape[0]
    levels = [
        np.quantile(
            torch.cat([im[c].float().flatten()[::step] for im in images]).numpy(), TAIL_QUANTILES
        ).tolist()
        for c in range(channels)
    ]
    features = np.concatenate(
        [histogram_features(torch.stack(images[i : i + 256]), levels) for i in range(0, len(images), 256)]
    )
    mean, scale = features.mean(0), features.std(0) + 1e-6
    model = LogisticRegression(max_iter=2000, random_state=0)  # lbfgs draws nothing; seeded all the same
    model.fit((features - mean) / scale, labels)
    return {
        "levels": levels,
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "classes": model.classes_.tolist(),
        "coef": model.coef_.tolist(),
        "intercept": model.intercept_.tolist(),
    }


def logreg_probs(images: torch.Tensor, fitted: dict, k: int) -> torch.Tensor:
    """Per-label probabilities (N, k) from the fitted coefficients (labels unseen in train get 0)."""
    z = (histogram_features(images, fitted["levels"]) - np.array(fitted["mean"])) / np.array(fitted["scale"])
    logits = torch.from_numpy(z @ np.array(fitted["coef"]).T + np.array(fitted["intercept"])).float()
    if logits.shape[1] == 1:  # two labels seen: scikit-learn keeps one row, for the second
        logits = torch.cat([torch.zeros_like(logits), logits], 1)
    probs = torch.zeros(len(z), k)
    probs[:, fitted["classes"]] = logits.softmax(1)
    return probs
