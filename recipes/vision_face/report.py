"""vision-face's report sections: ROC curves and the similarity of same/different-person pairs.

Drawn from the test pairs the metrics score (same draw, same seed), for the model and the baselines.
No face image is shown: faces are biometric data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlkit.report import plots
from dlkit.report.page import Figure, Section

from .verification import draw_pairs, similarities


def _embeddings(preds: list, targets: list) -> tuple[np.ndarray, np.ndarray]:
    """Scorer preds (threshold column first) in dataset order -> (embeddings, person labels)."""
    p, t = np.concatenate(preds), np.concatenate(targets)
    _, first = np.unique(t[:, 1], return_index=True)
    return p[first, 1:].astype(np.float64), t[first, 0]


def sections(recipe, data, tested, evaluation: dict, folder: Path) -> list:
    from sklearn.metrics import roc_curve

    predictors = recipe.baselines(data)
    preds: dict[str, list] = {"model": [], **{name: [] for name in predictors}}
    targets: list = []
    for item in tested:
        preds["model"].append(item["preds"].float().numpy())
        targets.append(item["target"].numpy())
        for name, predict in predictors.items():
            preds[name].append(predict(item["batch"])["preds"].float().numpy())
    if not targets:
        return []
    cfg = recipe.cfg
    fig, ax = plots.figure(6.4, 4.4)
    scores = {}
    for name, parts in preds.items():
        emb, labels = _embeddings(parts, targets)
        a, b, same = draw_pairs(labels, cfg["eval"]["pairs"], cfg["seed"])
        scores[name] = (similarities(emb, a, b), same)
        fpr, tpr, _ = roc_curve(same, scores[name][0])
        ax.plot(np.maximum(fpr, 1e-4), tpr, label=name)
    ax.set(xscale="log", xlabel="false accept rate (different persons accepted)", ylabel="true accept rate")
    ax.set_title("Verification ROC, test persons")
    ax.legend()
    roc = plots.save(fig, folder, "face_roc")
    fig, ax = plots.figure(6.4, 4.0)
    sims, same = scores["model"]
    ax.hist(sims[same], bins=30, alpha=0.6, label="same person")
    ax.hist(sims[~same], bins=30, alpha=0.6, label="different persons")
    threshold = data.state.get("threshold")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set(xlabel="cosine similarity", ylabel="pairs")
    ax.set_title("Model similarity of test pairs")
    ax.legend()
    hist = plots.save(fig, folder, "face_similarity")
    return [
        Section(
            "Face verification",
            text=[
                f"{int(same.sum())} same-person and {int((~same).sum())} different-person pairs of persons "
                "never seen in training; accept when the similarity reaches the threshold chosen on "
                "validation pairs. No face image is shown in this report."
            ],
            figures=[Figure(roc, "ROC: model and baselines"), Figure(hist, "similarity by pair kind")],
        )
    ]
