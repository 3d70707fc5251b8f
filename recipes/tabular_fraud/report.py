"""tabular-fraud's report sections: PR and ROC curves with the chosen threshold marked, and how the
scores of fraud and legitimate rows separate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dlkit.report import plots
from dlkit.report.page import Figure, Section, Table


def sections(recipe, data, tested, evaluation: dict, folder: Path) -> list:
    from sklearn.metrics import precision_recall_curve, roc_curve

    scores, labels = [], []
    for out in tested:
        scores.append(out["preds"].float())
        labels.append(out["target"].long())
    if not scores:
        return []
    score, label = torch.cat(scores).numpy(), torch.cat(labels).numpy()
    threshold = recipe._threshold(data.state)
    flagged = score >= threshold
    tp, fp = int((flagged & (label == 1)).sum()), int((flagged & (label == 0)).sum())
    fn = int((~flagged & (label == 1)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    fpr_at = fp / max(int((label == 0).sum()), 1)
    prevalence = float(label.mean())

    fig, (a, b, c) = plots.figure(15, 4.4, 1, 3)
    p, r, _ = precision_recall_curve(label, score)
    a.plot(r, p, label="model")
    a.axhline(prevalence, color="grey", linestyle=":", label=f"prevalence {prevalence:.3f}")
    a.scatter(
        [recall], [precision], s=80, color=plots.PALETTE[1], zorder=3, label=f"threshold {threshold:.3g}"
    )
    a.set(
        title="Precision-recall (test)",
        xlabel="recall (share of fraud caught)",
        ylabel="precision (share of flags that are fraud)",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    a.legend(loc="upper right")
    fpr, tpr, _ = roc_curve(label, score)
    b.plot(fpr, tpr, label="model")
    b.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    b.scatter([fpr_at], [recall], s=80, color=plots.PALETTE[1], zorder=3, label=f"threshold {threshold:.3g}")
    b.set(
        title="ROC (test)",
        xlabel="false positive rate (legit rows flagged)",
        ylabel="true positive rate (recall)",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    b.legend(loc="lower right")
    bins = np.linspace(0, 1, 41)
    c.hist(score[label == 0], bins=bins, alpha=0.7, label="legitimate", density=True)
    c.hist(score[label == 1], bins=bins, alpha=0.7, label="fraud", density=True)
    c.axvline(threshold, color="black", linestyle="--", label="threshold")
    c.set(
        title="Fraud score by true class",
        xlabel="predicted fraud probability",
        ylabel="density (per class)",
        yscale="log",
    )
    c.legend()
    choice = data.state.get("threshold_choice") or {}
    rows = [
        ["threshold", threshold],
        ["how it was chosen", ", ".join(f"{k} {v}" for k, v in choice.items()) or "-"],
        ["flagged rows", int(flagged.sum())],
        ["fraud caught (recall)", f"{tp} of {tp + fn} ({recall:.1%})"],
        ["false alarms", f"{fp} ({precision:.1%} of flags are fraud)"],
    ]
    text = [
        f"{len(score)} test rows, {int(label.sum())} fraud. "
        "The dot marks where the chosen threshold operates."
    ]
    return [
        Section(
            "Precision-recall and ROC at the chosen threshold",
            text=text,
            figures=[
                Figure(
                    plots.save(fig, folder, "pr-roc"), "PR and ROC curves; score distributions (log scale)"
                )
            ],
            tables=[Table(["", "value"], rows)],
        )
    ]
