"""Gradient-boosted trees as plain arrays: scikit-learn's HistGradientBoostingClassifier fitted on train,
the number of trees chosen on validation, every tree dumped as JSON lists and predicted in numpy.

Why arrays: the run's state is JSON and loading never unpickles code, so `dlkit evaluate` re-scores the
baseline from the state alone. Each tree is sklearn's own node table (the predictor that `predict_proba`
walks): a row goes left when its feature is <= the node's threshold. The cleaned features have no
missing values and no categorical splits (categoricals arrive one-hot), so that rule is the whole tree.
"""

from __future__ import annotations

import numpy as np

MAX_TREES = 100  # scikit-learn's default; validation keeps the first k of them


def fit_trees(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray) -> dict:
    """{'bias', 'trees'}: the boosted trees, cut to the count with the lowest validation log-loss (the
    model's own early stopping), or all of them when validation holds a single class."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import log_loss

    model = HistGradientBoostingClassifier(max_iter=MAX_TREES, early_stopping=False, random_state=0)
    model.fit(x_train, y_train)
    keep = model.n_iter_
    if len(np.unique(y_val)) == 2:
        losses = [
            log_loss(y_val, 1 / (1 + np.exp(-raw.ravel())), labels=[0, 1])
            for raw in model.staged_decision_function(x_val)
        ]
        keep = int(np.argmin(losses)) + 1
    trees = [_dump(model._predictors[i][0].nodes) for i in range(keep)]
    return {"bias": float(np.ravel(model._baseline_prediction)[0]), "trees": trees}


def _dump(nodes: np.ndarray) -> dict:
    """One tree's node table as lists; a leaf has feature -1 and its value (already times the learning
    rate) is what it adds to the log-odds."""
    leaf = nodes["is_leaf"].astype(bool)
    return {
        "feature": np.where(leaf, -1, nodes["feature_idx"]).astype(int).tolist(),
        "threshold": nodes["num_threshold"].astype(float).tolist(),
        "left": nodes["left"].astype(int).tolist(),
        "right": nodes["right"].astype(int).tolist(),
        "value": nodes["value"].astype(float).tolist(),
    }


def tree_scores(params: dict, inputs: np.ndarray) -> np.ndarray:
    """P(positive) for each row: the sigmoid of the bias plus every tree's leaf value, all rows walked
    down each tree together."""
    x = inputs.astype(np.float64)
    rows = np.arange(len(x))
    raw = np.full(len(x), params["bias"])
    for tree in params["trees"]:
        feature, threshold = np.asarray(tree["feature"]), np.asarray(tree["threshold"])
        left, right = np.asarray(tree["left"]), np.asarray(tree["right"])
        node = np.zeros(len(x), dtype=np.int64)
        inner = feature[node] >= 0
        while inner.any():
            at = node[inner]
            go_left = x[rows[inner], feature[at]] <= threshold[at]
            node[inner] = np.where(go_left, left[at], right[at])
            inner = feature[node] >= 0
        raw += np.asarray(tree["value"])[node]
    return 1 / (1 + np.exp(-raw))
