"""The decision threshold: chosen on validation scores, and another scorer's threshold put on the model's
so the model's metric objects score that scorer's decisions fairly."""

from __future__ import annotations

import numpy as np
import torch


def on_threshold(scores: torch.Tensor, own: float, target: float) -> torch.Tensor:
    """Scores in [0, 1] moved so that `own` (this scorer's threshold) lands on `target` (the model's).

    The odds are multiplied by one constant, a strictly increasing map of [0, 1] onto itself: the
    ranking metrics do not change, and "moved score > target" flags exactly the rows "score > own" does.
    `own` <= 0 flags every row with a positive score, `own` >= 1 none.
    """
    s = scores.double()
    if own <= 0 or own >= 1:
        return torch.where(s > own, 1.0, 0.0).float()
    k = (target / (1 - target)) / (own / (1 - own))
    return (s * k / (s * k + (1 - s))).float()


def choose_threshold(scores: np.ndarray, labels: np.ndarray, rule: str, target: float) -> dict:
    """The decision threshold on validation scores: best F1, or the best recall at a target precision
    (rule=precision), or the best precision at a target recall (rule=recall).

    The threshold sits halfway between the chosen cut and the next lower score, so "score > threshold"
    flags exactly the rows at or above the cut. An unreachable target falls back to the best F1.
    """
    from sklearn.metrics import precision_recall_curve

    positives = int(labels.sum())
    if positives == 0 or positives == len(labels):
        return {"threshold": 0.5, "rule": "default 0.5", "note": "validation has a single class"}
    precision, recall, cuts = precision_recall_curve(labels, scores)
    precision, recall = precision[:-1], recall[:-1]  # the last point (precision 1, recall 0) has no cut
    f1 = np.divide(
        2 * precision * recall, precision + recall, out=np.zeros_like(precision), where=precision + recall > 0
    )
    i, note = int(np.argmax(f1)), ""
    if rule != "max_f1":
        reach, other = (precision, recall) if rule == "precision" else (recall, precision)
        ok = np.flatnonzero(reach >= target)
        if ok.size:  # the best of the other measure; ties go to the better of this one
            i = int(ok[np.lexsort((reach[ok], other[ok]))[-1]])
        else:
            note = f"no threshold reaches {rule} {target:g} on validation; used the best F1 instead"
    lower = scores[scores < cuts[i]]
    threshold = (float(cuts[i]) + float(lower.max())) / 2 if lower.size else float(cuts[i]) / 2
    chosen = {
        "threshold": threshold,
        "rule": rule if rule == "max_f1" else f"{rule} >= {target:g}",
        "val_precision": float(precision[i]),
        "val_recall": float(recall[i]),
        "val_f1": float(f1[i]),
    }
    return {**chosen, "note": note} if note else chosen
