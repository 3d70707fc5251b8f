"""Baselines: the majority class, and TF-IDF (word uni- and bigrams) + logistic regression.

The logistic regression is fitted with scikit-learn on the training split when the state is fitted,
its regularisation picked on the validation split; what it learned (vocabulary, idf, coefficients)
goes into the run's state as JSON, so `dlkit evaluate` scores it again from the run alone, with
nothing but a fixed-vocabulary count and a matrix product.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

MAX_FEATURES = 20_000  # the most frequent uni- and bigrams kept: bounds state.json (about 1 MB at most)
NGRAMS = (1, 2)
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
    """Fit the vectorizer on train texts and a logistic regression per C in C_GRID on train; keep the one
    most accurate on validation. Returns its parameters as JSON-able lists."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(
        ngram_range=NGRAMS, max_features=MAX_FEATURES, sublinear_tf=True, lowercase=True, dtype=np.float64
    )
    x_train = vectorizer.fit_transform(train[0])
    x_val = vectorizer.transform(val[0])
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
    terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)  # column order
    return {
        "terms": terms,
        "idf": _round(vectorizer.idf_),
        "classes": [int(k) for k in model.classes_],  # the class indices the rows of coef score
        "coef": [_round(row) for row in model.coef_],
        "intercept": _round(model.intercept_),
        "C": c,
        "val_accuracy": round(accuracy, 4),
        "num_classes": num_classes,
    }


def tfidf_logits(params: dict, texts: list[str]) -> torch.Tensor:
    """(N, num_classes) scores of the stored model: sublinear tf x idf, L2-normalised, times the weights.

    Classes the training split lacked score -1e9; a binary model's one row scores the second class.
    """
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.preprocessing import normalize

    counts = CountVectorizer(ngram_range=NGRAMS, lowercase=True, vocabulary=params["terms"]).transform(texts)
    counts = counts.astype(np.float64)
    counts.data = 1.0 + np.log(counts.data)
    x = normalize(counts.multiply(np.asarray(params["idf"])).tocsr())
    scores = x @ np.asarray(params["coef"]).T + np.asarray(params["intercept"])
    k = params["num_classes"]
    out = np.full((len(texts), k), -1e9)
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
