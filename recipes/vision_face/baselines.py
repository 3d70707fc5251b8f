"""Baselines a face embedding has to beat, fitted on the training split into plain JSON.

- `raw_pixels` (trivial): the normalised image itself as the embedding, compared by cosine.
- `eigenfaces` (the classical one, Turk & Pentland 1991): pixels averaged down to a small grid,
  projected on the principal components of the training faces, compared by cosine. The grid (8 or
  16), colour or grey, the number of components and whether they are whitened (each divided by its
  standard deviation) are picked on the validation pairs' ROC AUC.

Each has its own decision threshold, chosen on the validation pairs like the model's. Everything lives
in the run's state (mean face and components as numbers), so `dlkit evaluate` re-scores from the state.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from .data import Faces
from .metrics import face_target, scorer_preds
from .verification import best_threshold, draw_pairs, roc, similarities

GRIDS = (8, 16)
COMPONENTS = (16, 32, 64, 128)
MAX_FIT_IMAGES = 3000


def pixels(images01: torch.Tensor, grid: int, colour: bool) -> torch.Tensor:
    """(B, C, H, W) in [0, 1] -> (B, C*grid*grid) (or grid*grid in grey): averaged down to the grid."""
    images01 = images01.float() if colour else images01.float().mean(1, keepdim=True)
    return F.adaptive_avg_pool2d(images01, grid).flatten(1)


def _as01(faces: Faces, index: list[int]) -> torch.Tensor:
    return torch.stack([faces.images[i] for i in index]).float() / 255


def _project(x: np.ndarray, params: dict) -> np.ndarray:
    z = (x - np.asarray(params["mean"])) @ np.asarray(params["components"]).T
    return z / np.asarray(params["scale"])


def _val_pairs(val: Faces, pairs: int, seed: int):
    return draw_pairs(np.asarray(val.labels), pairs, seed)


def fit_eigenfaces(train: Faces, val: Faces, pairs: int, seed: int) -> dict:
    """PCA of the training faces; grid, colour, components and whitening picked on the val pairs' AUC."""
    side, channels = int(train.images[0].shape[-1]), int(train.images[0].shape[0])
    index = list(range(0, len(train), max(1, -(-len(train) // MAX_FIT_IMAGES))))
    a, b, same = _val_pairs(val, pairs, seed)
    best = None
    for grid in sorted({min(g, side) for g in GRIDS}):
        for colour in (False, True) if channels == 3 else (False,):
            x = pixels(_as01(train, index), grid, colour).double().numpy()
            mean = x.mean(0)
            _, sv, vt = np.linalg.svd(x - mean, full_matrices=False)
            std = np.maximum(sv / np.sqrt(max(1, len(x) - 1)), 1e-6)
            xv = pixels(_as01(val, list(range(len(val)))), grid, colour).double().numpy()
            for k in sorted({min(c, len(std)) for c in COMPONENTS}):
                for whiten in (False, True):
                    params = {"mean": mean, "components": vt[:k], "scale": std[:k] if whiten else np.ones(k)}
                    scores = similarities(_project(xv, params), a, b)
                    auc = roc(scores, same)["verification_auc"]
                    if best is None or auc > best[0]:
                        best = (
                            auc,
                            {"grid": grid, "colour": colour, "components_kept": k, "whiten": whiten},
                            params,
                            scores,
                        )
    auc, chosen, params, scores = best
    return {
        **chosen,
        "val_auc": round(float(auc), 4),
        "threshold": round(best_threshold(scores, same)[0], 6),
        "mean": [float(f"{v:.5g}") for v in params["mean"]],
        "components": [[float(f"{v:.5g}") for v in row] for row in params["components"]],
        "scale": [float(f"{v:.5g}") for v in params["scale"]],
    }


def fit_raw_pixels(val: Faces, state: dict, pairs: int, seed: int) -> dict:
    """Nothing to learn but the decision threshold, on the validation pairs."""
    mean = torch.tensor(state["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(state["std"]).view(1, -1, 1, 1)
    x = ((_as01(val, list(range(len(val)))) - mean) / std).flatten(1).double().numpy()
    a, b, same = _val_pairs(val, pairs, seed)
    return {"threshold": round(best_threshold(similarities(x, a, b), same)[0], 6)}


def raw_pixels_predictor(params: dict):
    def predict(batch: dict) -> dict:
        return {
            "preds": scorer_preds(batch["image"].flatten(1), params["threshold"]),
            "target": face_target(batch),
        }

    return predict


def eigenfaces_predictor(params: dict, state: dict):
    mean = torch.tensor(state["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(state["std"]).view(1, -1, 1, 1)
    face_mean = torch.tensor(params["mean"], dtype=torch.float64)
    components = torch.tensor(params["components"], dtype=torch.float64)
    scale = torch.tensor(params["scale"], dtype=torch.float64)

    def predict(batch: dict) -> dict:
        x = pixels(batch["image"].float() * std + mean, params["grid"], params["colour"]).double()
        z = ((x - face_mean) @ components.T) / scale
        return {"preds": scorer_preds(z.float(), params["threshold"]), "target": face_target(batch)}

    return predict
