"""Sections shared by classifiers (images, texts, scans): the confusion matrix with per-class figures,
and the most confident mistakes, kept while streaming the test split (memory: a handful of examples)."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch

from dlkit.report import plots
from dlkit.report.page import Figure, Section, Table


def confident_mistakes(
    tested: Iterable[dict], classes: list[str], describe: Callable[[dict, int], object], keep: int = 12
) -> tuple[np.ndarray, list[tuple]]:
    """(confusion counts, mistakes as (confidence, id, true, predicted, describe(batch, i)), surest first).

    `preds` are logits (or probabilities) over `classes`; `describe` picks what to show of an example.
    """
    k = len(classes)
    cm = np.zeros((k, k), dtype=np.int64)
    heap: list[tuple] = []
    seen = 0
    for out in tested:
        preds = out["preds"].float()
        probs = (
            preds
            if preds.min() >= 0 and torch.allclose(preds.sum(-1), torch.ones(len(preds)))
            else preds.softmax(-1)
        )
        conf, guess = probs.max(-1)
        target = out["target"].long()
        np.add.at(cm, (target.numpy(), guess.numpy()), 1)
        for i in torch.nonzero(guess != target).flatten().tolist():
            seen += 1
            item = (
                float(conf[i]),
                seen,
                out["batch"]["id"][i],
                classes[int(target[i])],
                classes[int(guess[i])],
            )
            if len(heap) < keep:
                heapq.heappush(heap, (*item, describe(out["batch"], i)))
            elif item[0] > heap[0][0]:
                heapq.heapreplace(heap, (*item, describe(out["batch"], i)))
    mistakes = sorted(heap, reverse=True)
    return cm, [(c, ident, t, p, shown) for c, _, ident, t, p, shown in mistakes]


def confusion_section(cm: np.ndarray, classes: list[str], folder: Path) -> Section:
    hits, support, predicted = np.diag(cm), cm.sum(1), cm.sum(0)
    rows = []
    for i, c in enumerate(classes):
        precision = hits[i] / predicted[i] if predicted[i] else 0.0
        recall = hits[i] / support[i] if support[i] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append([c, float(precision), float(recall), float(f1), int(support[i])])
    worst = sorted(rows, key=lambda r: r[3])[0][0] if rows else None
    fig = plots.confusion_matrix(cm, classes, f"Confusion matrix, test split ({int(cm.sum())} examples)")
    text = [
        f"accuracy {hits.sum() / max(cm.sum(), 1):.3f}; the weakest class by F1 is '{worst}'. "
        "Rows are the true classes; off-diagonal cells are the confusions."
    ]
    return Section(
        "Confusion matrix",
        text=text,
        figures=[Figure(plots.save(fig, folder, "confusion"), "counts; colour = share of the true class")],
        tables=[Table(["class", "precision", "recall", "F1", "test examples"], rows)],
    )


def mistakes_table(mistakes: list[tuple], what: str) -> Section:
    """The surest mistakes as rows (id, true, predicted, confidence, the example's text)."""
    if not mistakes:
        return Section("Most confident mistakes", good=["no mistakes on the test split."])
    rows = [[str(shown)[:300], t, p, round(c, 4), str(ident)] for c, ident, t, p, shown in mistakes]
    return Section(
        "Most confident mistakes",
        text=[
            f"the {len(rows)} test {what} the model got wrong with the highest confidence: label errors or "
            "hard cases worth a look."
        ],
        tables=[
            Table([what[:-1] if what.endswith("s") else what, "true", "predicted", "confidence", "id"], rows)
        ],
    )
