"""Baselines: the majority class, and TF-IDF over word AND character n-grams + logistic regression.

Word uni- and bigrams carry phrases ("not good"); character 2-5-grams within word boundaries carry
what a word list misses on short texts: inflections, misspellings, rare words that share a stem.
On real review snippets the pair beats words alone by about one point (bench/quality). Each block is
TF-IDF weighted (sublinear tf) and L2-normalised on its own, then the two sit side by side.

The logistic regression is fitted with scikit-learn on the training split when the state is fitted,
its regularisation picked on the validation split; what it learned (both vocabularies, idf,
coefficients) goes into the run's state as JSON, so `dlkit evaluate` scores it again from the run
alone, with nothing but fixed-vocabulary counts and a matrix product.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

# (analyzer, n-gram range, most frequent kept): the caps bound state.json (about 2 MB at most)
BLOCKS = {"word": ("word", (1, 2), 20_000), "char": ("char_wb", (2, 5), 30_000)}
C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)


def _round(values) -> list:
    return [float(f"{v:.6g}") for v in np.asarray(values, dtype=np.float64).ravel()]


def fit_tfidf_logreg(
    train: tuple[list[str], list[int]],
    val: tuple[list[str], list[int]],
    num_classes: int,
    balanced: bool,
    seed: int,
) -> dict:
    """Fit one vectorizer per block on train texts and a logistic regression per C in C_GRID on train;
    keep the one most accurate on validation. Returns its parameters as JSON-able lists."""
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizers = {
        name: TfidfVectorizer(
            analyzer=analyzer, ngram_range=ngrams, max_features=cap, sublinear_tf=True, dtype=np.float64
        )
        for name, (analyzer, ngrams, cap) in BLOCKS.items()
    }
    x_train = sp.hstack([v.fit_transform(train[0]) for v in vectorizers.values()]).tocsr()
    x_val = sp.hstack([v.transform(val[0]) for v in vectorizers.values()]).tocsr()
    best = None
    for c in C_GRID:
        model = LogisticRegression(
            C=c, max_iter=2000, class_weight="balanced" if balanced else None, random_state=seed
        )
        model.fit(x_train, train[1])
        accuracy = float((model.predict(x_val) == np.asarray(val[1])).mean()) if val[1] else 0.0
        if best is None or accuracy > best[0]:
            best = (accuracy, c, model)
    accuracy, c, model = best
    blocks = {
        name: {
            "terms": sorted(v.vocabulary_, key=v.vocabulary_.get),  # column order
            "idf": _round(v.idf_),
        }
        for name, v in vectorizers.items()
    }
    return {
        "blocks": blocks,
        "classes": [int(k) for k in model.classes_],  # the class indices the rows of coef score
        "coef": [_round(row) for row in model.coef_],
        "intercept": _round(model.intercept_),
        "C": c,
        "val_accuracy": round(accuracy, 4),
        "num_classes": num_classes,
    }


def blocks(params: dict) -> dict:
    """The fitted blocks; a run made before the character block was added kept words only."""
    return params.get("blocks") or {"word": {"terms": params["terms"], "idf": params["idf"]}}


def features(params: dict, texts: list[str]):
    """Sublinear tf x idf, L2-normalised per block, blocks side by side (as fitted)."""
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.preprocessing import normalize

    parts = []
    for name, block in blocks(params).items():
        analyzer, ngrams, _ = BLOCKS[name]
        counter = CountVectorizer(analyzer=analyzer, ngram_range=ngrams, vocabulary=block["terms"])
        counts = counter.transform(texts).astype(np.float64)
        counts.data = 1.0 + np.log(counts.data)
        parts.append(normalize(counts.multiply(np.asarray(block["idf"])).tocsr()))
    return sp.hstack(parts).tocsr()


def tfidf_logits(params: dict, texts: list[str]) -> torch.Tensor:
    """(N, num_classes) scores of the stored model.

    Classes the training split lacked score -1e9; a binary model's one row scores the second class.
    """
    scores = features(params, texts) @ np.asarray(params["coef"]).T + np.asarray(params["intercept"])
    out = np.full((len(texts), params["num_classes"]), -1e9)
    fitted = params["classes"]
    if len(fitted) == 2 and scores.shape[1] == 1:
        out[:, fitted[0]] = 0.0
        out[:, fitted[1]] = scores[:, 0]
    else:
        out[:, fitted] = scores
    return torch.from_numpy(out).float()


def predictors(state: dict) -> dict:
    """Named baseline predictors over collated batches (which carry the cleaned 'text' of each item)."""
    k = len(state["classes"])
    majority = max(range(k), key=lambda i: state["class_counts"][state["classes"][i]])
    fitted = state["baselines"]["tfidf_logreg"]

    def majority_class(batch: dict) -> dict:
        target = batch["label"]
        return {"preds": F.one_hot(torch.full_like(target, majority), k).float(), "target": target}

    def tfidf_logreg(batch: dict) -> dict:
        return {"preds": tfidf_logits(fitted, list(batch["text"])), "target": batch["label"]}

    return {"majority_class": majority_class, "tfidf_logreg": tfidf_logreg}
