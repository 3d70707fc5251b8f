"""Gradient-boosted trees as plain arrays: scikit-learn's HistGradientBoostingClassifier fitted on train,
the number of trees chosen on validation, every tree dumped as JSON lists and predicted in numpy.

Why arrays: the run's state is JSON and loading never unpickles code, so `dlkit evaluate` re-scores the
baseline from the state alone. Each tree is sklearn's own node table (the predictor that `predict_proba`
walks), stored and walked by the shared `dlkit.data.trees`.
"""

from __future__ import annotations

import numpy as np

from dlkit.data.trees import hist_gradient_boosting_table, leaf_values

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
    trees = [hist_gradient_boosting_table(model._predictors[i][0].nodes) for i in range(keep)]
    return {"bias": float(np.ravel(model._baseline_prediction)[0]), "trees": trees}


def tree_scores(params: dict, inputs: np.ndarray) -> np.ndarray:
    """P(positive) for each row: the sigmoid of the bias plus every tree's leaf value."""
    raw = np.full(len(inputs), params["bias"])
    for tree in params["trees"]:
        raw += leaf_values(tree, inputs)
    return 1 / (1 + np.exp(-raw))
