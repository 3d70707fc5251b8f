"""LFW-style scoring of face embeddings: verification pairs, ROC figures, a threshold, identification.

All of it is pure numpy on (embeddings, person labels) in a fixed order, so the same images and seed
always give the same pairs, gallery and numbers, for the model and for every baseline alike.
"""

from __future__ import annotations

import numpy as np

FARS = (1e-2, 1e-3)  # false-accept rates at which the true-accept rate is reported


def draw_pairs(labels: np.ndarray, n_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Balanced verification pairs (a, b, same): up to n_pairs // 2 distinct same-person pairs (all of
    them when there are fewer) and as many distinct different-person pairs, drawn from `seed`."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    groups = [np.flatnonzero(labels == p) for p in np.unique(labels)]
    positive = [np.stack(np.triu_indices(len(g), 1), 1) for g in groups if len(g) >= 2]
    members = [g for g in groups if len(g) >= 2]
    if positive:
        sizes = np.array([len(p) for p in positive])
        take = min(n_pairs // 2, int(sizes.sum()))
        flat = np.sort(rng.choice(int(sizes.sum()), size=take, replace=False))
        owner = np.searchsorted(np.cumsum(sizes), flat, side="right")
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        same = np.array([members[o][positive[o][k - starts[o]]] for o, k in zip(owner, flat, strict=True)])
    else:
        take, same = 0, np.zeros((0, 2), dtype=int)
    different: set[tuple[int, int]] = set()
    n, tries = len(labels), 0
    possible = (n * n - sum(len(g) ** 2 for g in groups)) // 2
    while len(different) < min(take, possible) and tries < 100 * max(1, take):
        a, b = rng.integers(n, size=2)
        tries += 1
        if labels[a] != labels[b]:
            different.add((int(min(a, b)), int(max(a, b))))
    diff = np.array(sorted(different), dtype=int).reshape(-1, 2)
    if len(diff):
        diff = diff[rng.permutation(len(diff))]
    pairs = np.concatenate([same.reshape(-1, 2), diff])
    is_same = np.concatenate([np.ones(len(same), bool), np.zeros(len(diff), bool)])
    return pairs[:, 0], pairs[:, 1], is_same


def similarities(emb: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each pair (embeddings are normalised here, whatever their scale)."""
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return np.einsum("ij,ij->i", unit[a], unit[b])


def roc(scores: np.ndarray, same: np.ndarray) -> dict[str, float]:
    """ROC AUC, equal error rate and the true-accept rate at each of FARS."""
    from sklearn.metrics import roc_auc_score, roc_curve

    if same.all() or not same.any():
        return {
            "verification_auc": float("nan"),
            "eer": float("nan"),
            **{_tar(f): float("nan") for f in FARS},
        }
    fpr, tpr, _ = roc_curve(same, scores)
    fnr = 1 - tpr
    k = int(np.argmin(np.abs(fnr - fpr)))
    out = {"verification_auc": float(roc_auc_score(same, scores)), "eer": float((fpr[k] + fnr[k]) / 2)}
    for far in FARS:
        out[_tar(far)] = float(tpr[fpr <= far].max()) if (fpr <= far).any() else 0.0
    return out


def _tar(far: float) -> str:
    return f"tar_at_far_{far:g}"


def best_threshold(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy): the similarity cut (same person when >= it) that is right most often."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], same[order].astype(int)
    # accepting the first k pairs: right = accepted positives + rejected negatives
    right = np.concatenate([[0], np.cumsum(2 * y - 1)]) + (1 - y).sum()
    k = int(np.argmax(right))
    if k == 0:
        cut = float(s[0]) + 1e-6
    elif k == len(s):
        cut = float(s[-1])
    else:
        cut = float((s[k - 1] + s[k]) / 2)
    return cut, float(right[k] / len(s))


def accuracy_at(scores: np.ndarray, same: np.ndarray, threshold: float) -> float:
    return float(((scores >= threshold) == same).mean()) if len(same) else float("nan")


def identification(emb: np.ndarray, labels: np.ndarray, gallery_size: int, seed: int) -> dict[str, float]:
    """Rank-1 and rank-5 identification: `gallery_size` images per person (at most all but one) enrol
    them, the rest are probes; single-image persons are enrolled too, as distractors. A person's score
    against a probe is the best similarity over their gallery images."""
    rng = np.random.default_rng(seed + 1)
    persons = np.unique(labels)
    gallery, probes = [], []
    for p in persons:
        idx = np.flatnonzero(labels == p)
        idx = idx[rng.permutation(len(idx))]
        keep = min(gallery_size, max(1, len(idx) - 1))
        gallery += idx[:keep].tolist()
        probes += idx[keep:].tolist()
    if not probes or len(persons) < 2:
        return {"rank1": float("nan"), "rank5": float("nan")}
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    sims = unit[probes] @ unit[gallery].T  # probes x gallery images
    owner = np.searchsorted(persons, labels[gallery])
    per_person = np.full((len(probes), len(persons)), -np.inf)
    for j, o in enumerate(owner):
        per_person[:, o] = np.maximum(per_person[:, o], sims[:, j])
    truth = np.searchsorted(persons, labels[probes])
    true_score = per_person[np.arange(len(probes)), truth]
    rank = (per_person > true_score[:, None]).sum(1)
    return {"rank1": float((rank < 1).mean()), "rank5": float((rank < 5).mean())}


def score_embeddings(
    emb: np.ndarray, labels: np.ndarray, n_pairs: int, gallery_size: int, seed: int, threshold: float | None
) -> dict[str, float]:
    """Every figure for one scorer: ROC figures, accuracy at `threshold` (when None, at the best cut on
    these very pairs, as during training), rank-1/rank-5."""
    a, b, same = draw_pairs(labels, n_pairs, seed)
    scores = similarities(emb, a, b)
    out = roc(scores, same)
    if threshold is None or not np.isfinite(threshold):
        out["accuracy"] = best_threshold(scores, same)[1] if len(same) else float("nan")
    else:
        out["accuracy"] = accuracy_at(scores, same, threshold)
    out.update(identification(emb, labels, gallery_size, seed))
    return out


def calibrate_threshold(emb: np.ndarray, labels: np.ndarray, n_pairs: int, seed: int) -> dict:
    """The decision threshold chosen on validation pairs, with the figures it was chosen on."""
    a, b, same = draw_pairs(labels, n_pairs, seed)
    scores = similarities(emb, a, b)
    threshold, acc = best_threshold(scores, same)
    return {"threshold": round(threshold, 6), "val_accuracy": round(acc, 4), "val_pairs": int(len(same))}
